"""Entry of the desktop bundle: the window, or ``panns-sed`` when started under that name.

The bundle holds one executable, ``panns-annotator``; ``build.sh`` links ``panns-sed`` to
it, so both commands share one copy of torch and Qt.
"""

from __future__ import annotations

import multiprocessing
import os
import sys


def main() -> int:
    multiprocessing.freeze_support()
    if os.path.basename(sys.argv[0]).startswith("panns-sed"):
        from panns_core.cli import main as command_line

        return command_line()
    from app.main import main as window

    return window()


if __name__ == "__main__":
    sys.exit(main())
