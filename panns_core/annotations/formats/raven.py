"""Raven selection tables (tab-separated, header row, CRLF as Raven writes them).

A selection shown in several views (Waveform 1, Spectrogram 1) is one row per view
with the same ``Selection`` number; it is read once, from the spectrogram row when
there is one. With ``Begin File`` and ``File Offset (s)`` columns the times are taken
relative to that file. The label comes from the first annotation column found
(Annotation, Label, Species, Class, ...). Tabs and line breaks cannot be held in a
cell (refused on write).
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
    lines,
    parse_number,
    parse_optional,
    refuse_breaks,
    text_field,
    to_frame,
    where,
)

NAME = "Raven selection table"
BEGIN, END = "Begin Time (s)", "End Time (s)"
LOW, HIGH = "Low Freq (Hz)", "High Freq (Hz)"
BEGIN_FILE, FILE_OFFSET = "Begin File", "File Offset (s)"
STANDARD = ("Selection", "View", "Channel", BEGIN, END, LOW, HIGH)
LABEL_COLUMNS = (
    "annotation", "label", "species", "class", "call type", "sound type", "type", "tag", "tags",
)
KNOWN = {c.lower() for c in (*STANDARD, BEGIN_FILE, FILE_OFFSET, "Confidence", "Note",
                             "Begin Path", "End File", "Delta Time (s)", "Delta Freq (Hz)")}


def _label_column(header: list[str]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    for wanted in LABEL_COLUMNS:
        if wanted in lowered:
            return lowered.index(wanted)
    for index, column in enumerate(lowered):
        if column not in KNOWN and "(" not in column:
            return index
    return None


def read(text: str, name: str) -> pd.DataFrame:
    numbered = [(n, line) for n, line in lines(text) if line.strip()]
    if not numbered:
        return to_frame([])
    header_line, header_text = numbered[0]
    header = [h.strip() for h in header_text.split("\t")]
    for required in (BEGIN, END):
        if required not in header:
            raise FormatError(
                f"{where(name, header_line)}: a Raven selection table needs a {required!r} "
                f"column; the header is {header[:12]!r}."
            )
    col = {h: i for i, h in reversed(list(enumerate(header)))}
    label_at = _label_column(header)
    confidence_at = col.get("Confidence")
    note_at = col.get("Note")
    by_selection: dict[str, int] = {}
    rows: list[dict] = []
    for number, line in numbered[1:]:
        fields = line.split("\t")
        if len(fields) > len(header):
            raise FormatError(
                f"{where(name, number)}: {len(fields)} columns but the header has {len(header)}."
            )
        fields += [""] * (len(header) - len(fields))
        begin = parse_number(fields[col[BEGIN]], name, number, BEGIN)
        end = parse_number(fields[col[END]], name, number, END)
        recording = ""
        onset, offset = begin, end
        if BEGIN_FILE in col and FILE_OFFSET in col and fields[col[FILE_OFFSET]].strip():
            recording = fields[col[BEGIN_FILE]]
            onset = parse_number(fields[col[FILE_OFFSET]], name, number, FILE_OFFSET)
            if onset != begin:
                offset = onset + (end - begin)
        check_times(onset, offset, name, number)
        row = {
            "recording": recording,
            "onset": onset,
            "offset": offset,
            "label": fields[label_at] if label_at is not None else "",
            "low_freq": parse_optional(fields[col[LOW]], name, number, LOW) if LOW in col
            else math.nan,
            "high_freq": parse_optional(fields[col[HIGH]], name, number, HIGH) if HIGH in col
            else math.nan,
            "confidence": math.nan,
            "note": fields[note_at] if note_at is not None else "",
        }
        if confidence_at is not None:
            row["confidence"] = parse_optional(fields[confidence_at], name, number, "Confidence")
        view = fields[col["View"]] if "View" in col else ""
        selection = fields[col["Selection"]].strip() if "Selection" in col else ""
        if selection and selection in by_selection:
            # The same selection in another view: keep one row, the spectrogram's.
            index = by_selection[selection]
            if view.startswith("Spectrogram") and not rows[index]["_spectrogram"]:
                rows[index] = {**row, "_spectrogram": True}
            continue
        if selection:
            by_selection[selection] = len(rows)
        rows.append({**row, "_spectrogram": view.startswith("Spectrogram")})
    return to_frame([{k: v for k, v in r.items() if k != "_spectrogram"} for r in rows])


def write(events: pd.DataFrame) -> str:
    frame = check_events(events)
    with_files = bool((frame["recording"].map(text_field) != "").any())
    with_confidence = bool(frame["confidence"].notna().any())
    with_note = bool((frame["note"].map(text_field) != "").any())
    header = list(STANDARD)
    if with_files:
        header += [BEGIN_FILE, FILE_OFFSET]
    header.append("Annotation")
    if with_confidence:
        header.append("Confidence")
    if with_note:
        header.append("Note")
    out = ["\t".join(header)]
    for number, row in enumerate(frame.itertuples(index=False), start=1):
        label, recording, note = (text_field(v) for v in (row.label, row.recording, row.note))
        refuse_breaks(label, "label", NAME, "\t")
        refuse_breaks(recording, "file name", NAME, "\t")
        refuse_breaks(note, "note", NAME, "\t")
        cells = [
            str(number), "Spectrogram 1", "1", fmt_decimal(row.onset),
            fmt_decimal(row.offset),
            "" if math.isnan(row.low_freq) else fmt_decimal(row.low_freq),
            "" if math.isnan(row.high_freq) else fmt_decimal(row.high_freq),
        ]
        if with_files:
            cells += [recording, fmt_decimal(row.onset)]
        cells.append(label)
        if with_confidence:
            cells.append("" if math.isnan(row.confidence) else fmt(row.confidence))
        if with_note:
            cells.append(note)
        out.append("\t".join(cells))
    return "".join(line + "\r\n" for line in out)
