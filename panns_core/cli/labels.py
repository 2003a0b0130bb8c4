"""``panns-sed labels``: list the classes a model predicts."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "labels",
        help="list the classes of a model (default: the 527 AudioSet classes)",
        description="List the classes a model predicts, one per line: index, mid, name.",
    )
    parser.add_argument(
        "--model",
        help="registry name or checkpoint file (default: the AudioSet classes)",
    )
    parser.add_argument("--grep", help="show only classes whose name contains this text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..labels import audioset_labels

    if args.model:
        from ..hub.resolve import resolve_model_labels

        rows = [(i, "", name) for i, name in enumerate(resolve_model_labels(args.model))]
    else:
        rows = [(c.index, c.mid, c.name) for c in audioset_labels()]
    needle = (args.grep or "").casefold()
    for index, mid, name in rows:
        if needle in name.casefold():
            print(f"{index}\t{mid}\t{name}")
    return 0
