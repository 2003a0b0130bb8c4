"""``panns-annotator [FILE ...]``: start the annotator window.

The window is shown before anything imports torch (views and detection import it
lazily on workers), so the first paint is fast. Files given on the command line are
opened (a ``.panns`` file as the project, a folder's audio files recursively); on the
very first start the shipped demo recording is opened.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="panns-annotator",
                                     description="Annotate sound events with PANNs models.")
    parser.add_argument("files", nargs="*",
                        help="a project (.panns), audio files or folders to open")
    parser.add_argument("--project", help="project file to open or create (.panns)")
    parser.add_argument("--demo", action="store_true", help="open the demo recording")
    return parser


def apply_style(app) -> None:
    """Fusion with a dark palette that matches the views."""
    from PySide6.QtGui import QColor, QPalette

    app.setStyle("Fusion")
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: "#25272d",
        QPalette.ColorRole.WindowText: "#dfe2e8",
        QPalette.ColorRole.Base: "#1c1d22",
        QPalette.ColorRole.AlternateBase: "#25272d",
        QPalette.ColorRole.Text: "#dfe2e8",
        QPalette.ColorRole.Button: "#30333a",
        QPalette.ColorRole.ButtonText: "#dfe2e8",
        QPalette.ColorRole.Highlight: "#3d7bd9",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.ToolTipBase: "#30333a",
        QPalette.ColorRole.ToolTipText: "#eef0f4",
        QPalette.ColorRole.PlaceholderText: "#858a94",
    }
    for role, colour in roles.items():
        palette.setColor(role, QColor(colour))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#6b6f78"))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#6b6f78"))
    app.setPalette(palette)


def create_window(files: Sequence[str] = (), project: str | None = None, demo: bool = False):
    """Build and show the main window (the QApplication must exist)."""
    from . import settings
    from .main_window import MainWindow
    from .opening import sort_paths

    found = sort_paths(files)
    if found.projects and project is None:  # `panns-annotator birds.panns`
        project = str(found.projects[-1])
    others = [*found.folders, *found.audio]
    window = MainWindow(project=project)
    window.show()
    if others:
        window.guard(window.open_paths, others)
    elif demo or (settings.first_start() and not found.projects):
        window.guard(window.open_demo)
    settings.mark_started()
    return window


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:  # a missing piece is one line saying what to install, not a traceback
        import pyqtgraph  # noqa: F401
        from PySide6.QtWidgets import QApplication
    except ImportError as error:
        from panns_core.errors import missing_module_message

        problem = (missing_module_message(error) if isinstance(error, ModuleNotFoundError)
                   else f"Qt cannot start: {error} (install the system library it names)")
        print(f"panns-annotator: error: {problem}", file=sys.stderr)
        return 1

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("PANNs Annotator")
    app.setOrganizationName("panns-annotator")
    apply_style(app)
    window = create_window(args.files, args.project, args.demo)
    del window  # kept alive by Qt until closed
    return app.exec()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
