"""Sonic Visualiser CSV, as its "Export Annotation Layer" writes a regions layer:
``time,value,duration,label`` rows, no header (an optional header row is skipped),
times in seconds.

Quoting follows Sonic Visualiser's own CSV reader (StringBits::splitQuoted): a field may
be wrapped in double (or single) quotes, and a backslash escapes the next character.
We quote a label when it holds a comma, a quote, a backslash or surrounding spaces.
Line breaks cannot be held (refused on write).

``value`` carries the confidence: written when known (empty otherwise; Sonic Visualiser
reads empty as 0), read as confidence when it lies in [0, 1]. Other layouts read:
``time,value,duration`` (no label), ``time,value,label`` and ``time,label`` (instants,
zero-length events).
"""

from __future__ import annotations

import math

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
    parse_optional,
    refuse_breaks,
    text_field,
    to_frame,
    where,
)

NAME = "Sonic Visualiser CSV"
_NEEDS_QUOTES = (",", '"', "'", "\\")


def split_quoted(line: str, separator: str = ",") -> list[str]:
    """Split one line the way Sonic Visualiser's CSV reader does."""
    tokens: list[str] = []
    token = ""
    mode = "sep"  # sep: after a separator, unq: unquoted, q1: in '...', q2: in "..."
    i = 0
    while i < len(line):
        c = line[i]
        if c == "'" or c == '"':
            quote_mode = "q1" if c == "'" else "q2"
            if mode == "sep":
                mode = quote_mode
            elif mode == quote_mode:
                mode = "unq"
            else:
                token += c
        elif c == separator:
            if mode == "sep":
                tokens.append("")
            elif mode == "unq":
                tokens.append(token)
                token, mode = "", "sep"
            else:
                token += c
        elif c == "\\":
            i += 1
            if i < len(line):
                token += line[i]
                if mode == "sep":
                    mode = "unq"
        else:
            token += c
            if mode == "sep":
                mode = "unq"
        i += 1
    if token or mode != "sep":
        prefix = {"q1": "'", "q2": '"'}.get(mode, "")
        tokens.append(prefix + token)
    return tokens


def quote(text: str) -> str:
    if not text or (not any(c in text for c in _NEEDS_QUOTES) and text == text.strip()):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exact_duration(onset: float, offset: float) -> float:
    """A duration d with onset + d == offset exactly (so the offset survives)."""
    duration = offset - onset
    for _ in range(64):
        total = onset + duration
        if total == offset:
            return duration
        duration = math.nextafter(duration, math.inf if total < offset else -math.inf)
    raise FormatError(
        f"The event {onset!r}..{offset!r} s cannot be written as time + duration exactly."
    )


def _confidence(value: float) -> float:
    return value if 0.0 <= value <= 1.0 else math.nan


def read(text: str, name: str) -> pd.DataFrame:
    rows: list[dict] = []
    first = True
    for number, line in lines(text):
        if not line.strip():
            continue
        fields = split_quoted(line)
        if first and fields and not is_number(fields[0]) and fields[0].strip().lower() in (
            "time", "frame", "start",
        ):
            first = False
            continue  # header row
        first = False
        if len(fields) < 2:
            raise FormatError(
                f"{where(name, number)}: expected 'time,value,duration,label', "
                f"found {line[:80]!r}."
            )
        onset = parse_number(fields[0], name, number, "time")
        confidence, duration, label = math.nan, 0.0, ""
        if len(fields) >= 4:
            confidence = _confidence(parse_optional(fields[1], name, number, "value"))
            duration = parse_number(fields[2], name, number, "duration")
            label = ",".join(fields[3:])  # an unquoted label with commas
        elif len(fields) == 3 and is_number(fields[2]):
            confidence = _confidence(parse_optional(fields[1], name, number, "value"))
            duration = parse_number(fields[2], name, number, "duration")
        elif len(fields) == 3:
            confidence = _confidence(parse_optional(fields[1], name, number, "value"))
            label = fields[2]
        else:
            label = fields[1]
        if duration < 0:
            raise FormatError(f"{where(name, number)}: negative duration {duration!r}.")
        offset = onset + duration
        check_times(onset, offset, name, number)
        rows.append(
            {"onset": onset, "offset": offset, "label": label, "confidence": confidence,
             "_duration": duration}
        )
    for row in rows:
        row.pop("_duration")
    return to_frame(rows)


def write(events: pd.DataFrame) -> str:
    frame = check_events(events)
    out: list[str] = []
    for row in frame.itertuples(index=False):
        label = text_field(row.label)
        refuse_breaks(label, "label", NAME)
        duration = exact_duration(row.onset, row.offset)
        value = "" if math.isnan(row.confidence) else fmt(row.confidence)
        out.append(f"{fmt_decimal(row.onset)},{value},{fmt_decimal(duration)},{quote(label)}")
    return "".join(line + "\n" for line in out)
