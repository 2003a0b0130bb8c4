"""Audacity label tracks: ``start<TAB>end<TAB>label`` lines, each optionally followed
by a spectral-selection line ``\\<TAB>low_Hz<TAB>high_Hz``.

The label is the rest of the line after the second tab, so tabs inside a label
survive our own round trip; line breaks cannot be held (refused on write). One file
is one recording: the format has no file name. An unknown frequency bound is written
as -1 (Audacity's "undefined") and read back as NaN.
"""

from __future__ import annotations

import math

import pandas as pd

from ...errors import FormatError
from ._common import (
    check_events,
    check_times,
    fmt_audacity,
    lines,
    parse_number,
    refuse_breaks,
    text_field,
    to_frame,
    where,
)

NAME = "Audacity label"


def _freq(text: str, name: str, line: int, what: str) -> float:
    value = parse_number(text, name, line, what)
    return math.nan if value < 0 else value


def read(text: str, name: str) -> pd.DataFrame:
    rows: list[dict] = []
    for number, line in lines(text):
        if not line.strip():
            continue
        if line.startswith("\\"):
            fields = line.split("\t")
            if not rows:
                raise FormatError(
                    f"{where(name, number)}: a frequency line ('\\' low high) before any label."
                )
            if len(fields) != 3 or fields[0].strip() != "\\":
                raise FormatError(
                    f"{where(name, number)}: a frequency line must be "
                    "'\\<TAB>low_Hz<TAB>high_Hz'."
                )
            rows[-1]["low_freq"] = _freq(fields[1], name, number, "low frequency")
            rows[-1]["high_freq"] = _freq(fields[2], name, number, "high frequency")
            continue
        fields = line.split("\t", 2)
        if len(fields) < 2:
            raise FormatError(
                f"{where(name, number)}: expected 'start<TAB>end<TAB>label', found {line[:80]!r}."
            )
        onset = parse_number(fields[0], name, number, "start time")
        offset = parse_number(fields[1], name, number, "end time")
        check_times(onset, offset, name, number)
        rows.append(
            {
                "onset": onset,
                "offset": offset,
                "label": fields[2] if len(fields) == 3 else "",
                "low_freq": math.nan,
                "high_freq": math.nan,
            }
        )
    return to_frame(rows)


def write(events: pd.DataFrame) -> str:
    frame = check_events(events)
    out: list[str] = []
    for row in frame.itertuples(index=False):
        label = text_field(row.label)
        refuse_breaks(label, "label", NAME)
        out.append(f"{fmt_audacity(row.onset)}\t{fmt_audacity(row.offset)}\t{label}")
        low, high = row.low_freq, row.high_freq
        if not (math.isnan(low) and math.isnan(high)):
            for value in (low, high):
                if not math.isnan(value) and (value < 0 or not math.isfinite(value)):
                    raise FormatError(f"Frequency {value!r} Hz cannot be written; it must be >= 0.")
            low_text = "-1" if math.isnan(low) else fmt_audacity(low)
            high_text = "-1" if math.isnan(high) else fmt_audacity(high)
            out.append(f"\\\t{low_text}\t{high_text}")
    return "".join(line + "\n" for line in out)
