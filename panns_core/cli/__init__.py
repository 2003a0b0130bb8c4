"""The ``panns-sed`` command line.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with the
parsed arguments, returning an exit code). Heavy imports happen inside ``func`` so
``panns-sed --help`` stays fast. Every :class:`~panns_core.errors.PannsError` is printed
as one line and turns into exit code 1: no traceback reaches the user for bad input; a
missing Python package is one line naming what to install.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import Cancelled, PannsError, missing_module_message

# One module per subcommand group, in the order shown by --help.
COMMAND_MODULES: tuple[str, ...] = (
    "detect",
    "labels",
    "convert",
    "project",
    "models",
    "evaluate",
    "train",
    "search",
    "record",
    "listen",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="panns-sed",
        description=(
            "Sound-event detection with PANNs CNN14 models: detect events in recordings, "
            "manage models, convert and manage annotations, record, fine-tune, evaluate."
        ),
    )
    parser.add_argument("--version", action="version", version=f"panns-sed {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except Cancelled as error:
        print(f"panns-sed: {error}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("panns-sed: interrupted.", file=sys.stderr)
        return 130
    except PannsError as error:
        print(f"panns-sed: error: {error}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as error:  # an optional piece missing: say what to install
        if (error.name or "").split(".")[0] in ("panns_core", "app", ""):
            raise  # our own module: a bug, not something to install
        print(f"panns-sed: error: {missing_module_message(error)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
