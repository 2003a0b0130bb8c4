"""DCASE / sed_eval tab-separated files.

* strong labels: ``filename<TAB>onset<TAB>offset<TAB>event_label`` (header optional;
  a row with only a filename means "no events in this file"; a 3-column file without
  filename holds one recording's ``onset offset label``);
* weak labels: ``filename<TAB>event_labels`` with the labels joined by commas;
* durations: ``filename<TAB>duration``.

Tabs and line breaks cannot appear in a filename or label (refused on write); weak
labels additionally cannot hold commas.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from ...errors import FormatError
from ._common import (
    check_events,
    check_times,
    fmt,
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


def _header(fields: list[str]) -> tuple[str, ...]:
    return tuple(f.strip().lower() for f in fields)


def read(text: str, name: str) -> pd.DataFrame:
    rows: list[dict] = []
    columns: dict[str, int] | None = None
    for number, line in lines(text):
        if not line.strip():
            continue
        fields = line.split("\t")
        if columns is None and not rows:
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
        if len(fields) == 1 and "filename" in columns:
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
        onset = parse_number(fields[columns["onset"]], name, number, "onset")
        offset = parse_number(fields[columns["offset"]], name, number, "offset")
        check_times(onset, offset, name, number)
        rows.append(
            {
                "recording": fields[columns["filename"]] if "filename" in columns else "",
                "onset": onset,
                "offset": offset,
                "label": fields[columns["event_label"]],
            }
        )
    return to_frame(rows)


def write(events: pd.DataFrame) -> str:
    frame = check_events(events)
    out = ["\t".join(HEADER)]
    for row in frame.itertuples(index=False):
        recording, label = text_field(row.recording), text_field(row.label)
        refuse_breaks(recording, "file name", NAME, "\t")
        refuse_breaks(label, "label", NAME, "\t")
        out.append(f"{recording}\t{fmt(row.onset)}\t{fmt(row.offset)}\t{label}")
    return "\n".join(out) + "\n"


def read_weak(text: str, name: str) -> dict[str, list[str]]:
    """Weak labels: {filename: [labels]} (a file with no labels maps to [])."""
    result: dict[str, list[str]] = {}
    for number, line in lines(text):
        if not line.strip():
            continue
        fields = line.split("\t")
        if not result and _header(fields) == WEAK_HEADER:
            continue
        if len(fields) > 2:
            raise FormatError(
                f"{where(name, number)}: expected 'filename<TAB>label,label,...', "
                f"found {len(fields)} columns."
            )
        labels = [] if len(fields) == 1 or fields[1] == "" else fields[1].split(",")
        result.setdefault(fields[0], []).extend(labels)
    return result


def write_weak(labels: Mapping[str, list[str]]) -> str:
    out = ["\t".join(WEAK_HEADER)]
    for filename, names in labels.items():
        refuse_breaks(filename, "file name", "weak-label TSV", "\t")
        for label in names:
            refuse_breaks(label, "label", "weak-label TSV", "\t,")
        out.append(f"{filename}\t{','.join(names)}")
    return "\n".join(out) + "\n"


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
        fields = line.split("\t")
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
    out = ["\t".join(DURATION_HEADER)]
    for filename, duration in durations.items():
        refuse_breaks(filename, "file name", "duration TSV", "\t")
        if not math.isfinite(duration) or duration < 0:
            raise FormatError(f"The duration of {filename!r} ({duration!r}) is not valid.")
        out.append(f"{filename}\t{fmt(duration)}")
    return "\n".join(out) + "\n"
