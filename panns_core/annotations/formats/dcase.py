"""DCASE / sed_eval tab-separated files.

* strong labels: ``filename<TAB>onset<TAB>offset<TAB>event_label`` (header optional;
  a row with a filename and empty onset, offset and label -- or only a filename --
  means "this file was annotated and has no events", as in the DESED metadata and
  sed_eval's reader; a 3-column file without filename holds one recording's
  ``onset offset label``);
* weak labels: ``filename<TAB>event_labels`` with the labels joined by commas (an
  empty second column: no labels);
* durations: ``filename<TAB>duration``.

Cells follow the csv module's quoting rules (as pandas, dcase_util and sed_eval read
them): a cell holding a double quote is written quoted with the quote doubled, and a
quoted cell reads back without its quotes. Every filename listed, with or without
events, is kept in the read frame's ``attrs["recordings"]``; the writer adds an empty
row for each recording passed in ``recordings`` that has no events.

Tabs and line breaks cannot appear in a filename or label (refused on write); weak
labels additionally cannot hold commas.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping

import pandas as pd

from ...errors import FormatError
from ._common import (
    check_events,
    check_times,
    fmt,
    fmt_decimal,
    is_number,
    lines,
    parse_number,
    refuse_breaks,
    text_field,
    to_frame,
    where,
)

NAME = "DCASE TSV"
HEADER = ("filename", "onset", "offset", "event_label")
WEAK_HEADER = ("filename", "event_labels")
DURATION_HEADER = ("filename", "duration")
#: ``frame.attrs`` key of every recording a DCASE file lists (with or without events)
RECORDINGS_ATTR = "recordings"


def _header(fields: list[str]) -> tuple[str, ...]:
    return tuple(f.strip().lower() for f in fields)


def split_row(line: str, name: str = "<text>", number: int | None = None) -> list[str]:
    """One line's tab-separated cells, unquoted as the csv module (and pandas) read them."""
    try:
        return next(csv.reader([line], delimiter="\t", quotechar='"', strict=False), [""])
    except csv.Error as error:
        problem = ("a carriage return inside the line (cells cannot hold line breaks)"
                   if "\r" in line else str(error))
        raise FormatError(f"{where(name, number)}: {problem}.") from None


def join_rows(rows: Iterable[Iterable[str]]) -> str:
    """Tab-separated lines, quoted where the csv module needs it (cells with a ``"``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", quotechar='"', lineterminator="\n",
                        quoting=csv.QUOTE_MINIMAL)
    writer.writerows(rows)
    return buffer.getvalue()


def _no_events(fields: list[str]) -> bool:
    """A row naming a file and nothing else (trailing cells empty): a file without events."""
    return len(fields) <= 4 and fields[0].strip() != "" and all(
        not f.strip() for f in fields[1:]
    )


def read(text: str, name: str) -> pd.DataFrame:
    rows: list[dict] = []
    listed: dict[str, None] = {}
    columns: dict[str, int] | None = None
    for number, line in lines(text):
        if not line.strip():
            continue
        fields = split_row(line, name, number)
        if columns is None and not rows and not listed:
            head = _header(fields)
            if head and head[0] == "filename":
                if head == WEAK_HEADER:
                    raise FormatError(
                        f"{name}: this is a weak-label file (filename, event_labels) without "
                        "times; read it with read_weak_labels()."
                    )
                if head == DURATION_HEADER:
                    raise FormatError(
                        f"{name}: this is a duration file (filename, duration), not events; "
                        "read it with read_durations()."
                    )
                need = ("onset", "offset", "event_label")
                if not all(n in head for n in need):
                    raise FormatError(
                        f"{where(name, number)}: the header {fields!r} lacks one of "
                        f"{list(HEADER)}."
                    )
                columns = {n: head.index(n) for n in HEADER}
                continue
            if len(fields) == 3 and is_number(fields[0]) and is_number(fields[1]):
                columns = {"onset": 0, "offset": 1, "event_label": 2}
            else:
                columns = {n: i for i, n in enumerate(HEADER)}
        if "filename" in columns and _no_events(fields):
            listed.setdefault(fields[columns["filename"]] if len(fields) > columns["filename"]
                              else fields[0], None)
            continue  # a file without events
        width = max(columns.values()) + 1
        if len(fields) != width:
            if len(fields) == width - 1 and columns.get("event_label") == width - 1:
                fields.append("")
            else:
                raise FormatError(
                    f"{where(name, number)}: expected {width} tab-separated columns "
                    f"({', '.join(n for n in columns)}), found {len(fields)}."
                )
        if not fields[columns["onset"]].strip() and not fields[columns["offset"]].strip():
            raise FormatError(
                f"{where(name, number)}: the label {fields[columns['event_label']]!r} has no "
                "onset and offset; a weak label (no times) belongs in a weak-label file "
                "(filename, event_labels)."
            )
        onset = parse_number(fields[columns["onset"]], name, number, "onset")
        offset = parse_number(fields[columns["offset"]], name, number, "offset")
        check_times(onset, offset, name, number)
        recording = fields[columns["filename"]] if "filename" in columns else ""
        if "filename" in columns:
            listed.setdefault(recording, None)
        rows.append(
            {
                "recording": recording,
                "onset": onset,
                "offset": offset,
                "label": fields[columns["event_label"]],
            }
        )
    frame = to_frame(rows)
    if listed:
        frame.attrs[RECORDINGS_ATTR] = list(listed)
    return frame


def write(events: pd.DataFrame, recordings: Iterable[str] | None = None) -> str:
    """The TSV of ``events``; ``recordings`` without events get an empty row (DESED style).

    With ``recordings`` (e.g. the ``attrs["recordings"]`` :func:`read` left), rows are
    grouped by recording in that order (events of other recordings last). It is never
    taken from ``attrs`` implicitly: a frame filtered after reading still carries them.
    """
    frame = check_events(events)
    names = [text_field(r) for r in frame["recording"]]
    for name in dict.fromkeys(names):
        refuse_breaks(name, "file name", NAME, "\t")
    order = list(range(len(frame)))
    empty: list[str] = []
    rank: dict[str, int] = {}
    if recordings is not None:
        wanted = [text_field(r) for r in dict.fromkeys(recordings)]
        rank = {name: i for i, name in enumerate(wanted)}
        order.sort(key=lambda i: rank.get(names[i], len(wanted)))
        have = set(names)
        for name in wanted:
            refuse_breaks(name, "file name", NAME, "\t")
        empty = [name for name in wanted if name not in have and name != ""]
    rows: list[list[str]] = [list(HEADER)]
    records = list(frame.itertuples(index=False))
    for i in order:
        row = records[i]
        label = text_field(row.label)
        refuse_breaks(label, "label", NAME, "\t")
        while empty and rank[empty[0]] < rank.get(names[i], len(rank)):
            rows.append([empty.pop(0), "", "", ""])
        rows.append([names[i], fmt_decimal(row.onset), fmt_decimal(row.offset), label])
    rows.extend([name, "", "", ""] for name in empty)
    return join_rows(rows)


def read_weak(text: str, name: str) -> dict[str, list[str]]:
    """Weak labels: {filename: [labels]} (a file with no labels maps to [])."""
    result: dict[str, list[str]] = {}
    for number, line in lines(text):
        if not line.strip():
            continue
        fields = split_row(line, name, number)
        if not result and _header(fields) == WEAK_HEADER:
            continue
        if len(fields) > 2:
            raise FormatError(
                f"{where(name, number)}: expected 'filename<TAB>label,label,...', "
                f"found {len(fields)} columns."
            )
        labels = [] if len(fields) == 1 or not fields[1].strip() else fields[1].split(",")
        result.setdefault(fields[0], []).extend(labels)
    return result


def write_weak(labels: Mapping[str, list[str]]) -> str:
    rows = [list(WEAK_HEADER)]
    for filename, names in labels.items():
        refuse_breaks(filename, "file name", "weak-label TSV", "\t")
        for label in names:
            refuse_breaks(label, "label", "weak-label TSV", "\t,")
        rows.append([filename, ",".join(names)])
    return join_rows(rows)


def weak_from_events(events: pd.DataFrame) -> dict[str, list[str]]:
    """Clip-level labels: the distinct labels of each recording, in order of appearance."""
    result: dict[str, list[str]] = {}
    for recording, label in zip(events["recording"], events["label"]):
        names = result.setdefault(text_field(recording), [])
        if label not in names:
            names.append(text_field(label))
    return result


def read_durations(text: str, name: str) -> dict[str, float]:
    result: dict[str, float] = {}
    for number, line in lines(text):
        if not line.strip():
            continue
        fields = split_row(line, name, number)
        if not result and _header(fields) == DURATION_HEADER:
            continue
        if len(fields) != 2:
            raise FormatError(
                f"{where(name, number)}: expected 'filename<TAB>duration', "
                f"found {len(fields)} columns."
            )
        duration = parse_number(fields[1], name, number, "duration")
        if duration < 0:
            raise FormatError(f"{where(name, number)}: negative duration {duration!r}.")
        result[fields[0]] = duration
    return result


def write_durations(durations: Mapping[str, float]) -> str:
    rows = [list(DURATION_HEADER)]
    for filename, duration in durations.items():
        refuse_breaks(filename, "file name", "duration TSV", "\t")
        if not math.isfinite(duration) or duration < 0:
            raise FormatError(f"The duration of {filename!r} ({duration!r}) is not valid.")
        rows.append([filename, fmt(duration)])
    return join_rows(rows)
