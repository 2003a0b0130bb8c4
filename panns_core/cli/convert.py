"""``panns-sed convert``: turn an annotation file into another format."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert an annotation file to another format",
        description=(
            "Read annotations (DCASE TSV, Audacity labels, Raven selection table, Sonic "
            "Visualiser CSV, Label Studio JSON; detected from the content) and write them "
            "in another format."
        ),
    )
    parser.add_argument("input", type=Path, help="annotation file to read")
    parser.add_argument("--to", required=True, dest="to_format",
                        help="format to write: dcase, audacity, raven, sonic_visualiser, "
                             "label_studio")
    parser.add_argument("--from", dest="from_format", help="format of the input (default: detect)")
    parser.add_argument("--out", type=Path,
                        help="file to write (default: the input's name with the new extension)")
    parser.add_argument("--recording",
                        help="recording name for events whose file names none (Audacity, "
                             "Sonic Visualiser); default when writing a format that names "
                             "recordings: the input file's stem")
    parser.set_defaults(func=run)


def output_path(source: Path, fmt: str) -> Path:
    from ..annotations.formats import EXTENSIONS

    stem = source.name
    for suffix in (".selections.txt", *EXTENSIONS.values()):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return source.with_name(stem + EXTENSIONS[fmt])


def source_stem(source: Path) -> str:
    """The input's name without its annotation extension (``a.selections.txt`` -> ``a``)."""
    return output_path(source, "dcase").name[: -len(".tsv")]


def run(args: argparse.Namespace) -> int:
    from ..annotations.formats import (
        MULTI_RECORDING,
        format_name,
        read_annotations,
        write_annotations,
    )
    from ..errors import FormatError

    fmt = format_name(args.to_format)
    events = read_annotations(args.input, args.from_format)
    out = args.out or output_path(args.input, fmt)
    if out.resolve() == args.input.resolve():
        raise FormatError(f"Refusing to overwrite the input {args.input}; pass --out.")
    unnamed = events["recording"].astype(str) == ""
    if unnamed.any() and fmt in MULTI_RECORDING:
        # A target that names each event's recording never gets an empty filename column.
        if args.recording is not None:
            name, why = args.recording, "given with --recording"
        else:
            name, why = source_stem(args.input), "the file's stem; choose another with --recording"
        events.loc[unnamed, "recording"] = name
        print(f"{args.input.name} names no recording; its events are written for "
              f"recording {name!r} ({why}).")
    # files a DCASE input listed without events stay listed
    write_annotations(events, out, fmt, recordings=events.attrs.get("recordings"))
    print(f"{len(events)} events -> {out}")
    return 0
