"""Helpers shared by the format readers and writers: decoding, numbers, errors."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pandas as pd

from ...errors import FormatError
from ...events import make_events

# Characters that end a line in at least one of the formats; no label may hold them.
LINE_BREAKS = ("\n", "\r")


def decode(data: bytes | str, name: str) -> str:
    """Bytes to text: UTF-8 (with or without BOM), UTF-16 with BOM, else Windows-1252."""
    if isinstance(data, str):
        return data[1:] if data.startswith("\ufeff") else data
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as error:
            raise FormatError(f"{name}: broken UTF-16 text ({error}).") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        # Raven and Audacity on Windows may write the system code page.
        return data.decode("cp1252")
    except UnicodeDecodeError:
        raise FormatError(
            f"{name}: not a text file (neither UTF-8 nor Windows-1252). "
            "Save the annotations as UTF-8 text and try again."
        ) from None


def lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number from 1, line without its CR/LF). Only LF and CRLF end a line."""
    for number, line in enumerate(text.split("\n"), start=1):
        yield number, line[:-1] if line.endswith("\r") else line


def where(name: str, line: int | None) -> str:
    return f"{name}, line {line}" if line is not None else name


def parse_number(text: str, name: str, line: int | None, what: str) -> float:
    """A finite float, or FormatError naming file, line and column."""
    try:
        value = float(text)
    except (ValueError, OverflowError):
        raise FormatError(
            f"{where(name, line)}: {what} {text!r} is not a number."
        ) from None
    if not math.isfinite(value):
        raise FormatError(f"{where(name, line)}: {what} {text!r} is not a finite number.")
    return value


def parse_optional(text: str, name: str, line: int | None, what: str) -> float:
    """Like parse_number, but an empty field is NaN."""
    if not text.strip():
        return math.nan
    return parse_number(text, name, line, what)


def is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except (ValueError, OverflowError):
        return False


def check_times(onset: float, offset: float, name: str, line: int | None) -> None:
    if onset < 0:
        raise FormatError(f"{where(name, line)}: negative onset {onset!r} s.")
    if offset < onset:
        raise FormatError(
            f"{where(name, line)}: the event ends ({offset!r} s) before it starts ({onset!r} s)."
        )


def to_frame(rows: list[dict]) -> pd.DataFrame:
    return make_events(rows) if rows else make_events(None)


def fmt(value: float) -> str:
    """Shortest text that reads back as exactly the same float."""
    return repr(float(value))


#: Seconds and Hz are written to the nanosecond (Raven's own precision): a sample of any
#: rate up to hundreds of kHz stays where it was, and no 17-digit float artefact is written.
DECIMALS = 9


def fmt_decimal(value: float, decimals: int = DECIMALS) -> str:
    """``value`` rounded to ``decimals`` places, trailing zeros dropped (``2.5``, ``3.0``)."""
    text = f"{float(value):.{decimals}f}".rstrip("0")
    text = text + "0" if text.endswith(".") else text
    return "0.0" if text in ("-0.0", "-0") else text


def fmt_audacity(value: float) -> str:
    """Six decimals, as Audacity writes label times and frequencies."""
    text = f"{float(value):.6f}"
    return "0.000000" if text == "-0.000000" else text


def text_field(value: object) -> str:
    """A label/recording/note cell as text ('' for missing)."""
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value)


def refuse_breaks(value: str, what: str, fmt_name: str, extra: str = "") -> None:
    """Refuse text this format cannot hold (line breaks, and ``extra`` characters)."""
    bad = [c for c in (*LINE_BREAKS, *extra) if c in value]
    if bad:
        spoken = {"\n": "a line feed", "\r": "a carriage return", "\t": "a tab"}
        names = ", ".join(spoken.get(c, repr(c)) for c in bad)
        raise FormatError(
            f"The {what} {value!r} contains {names}, which a {fmt_name} file cannot hold. "
            f"Rename it or export to Label Studio JSON, which can."
        )


def check_events(events: pd.DataFrame) -> pd.DataFrame:
    """Events about to be written: the schema's columns, finite ordered times."""
    missing = [c for c in ("onset", "offset", "label") if c not in events.columns]
    if missing:
        raise FormatError(f"Cannot write events without the columns {missing}.")
    frame = make_events(events) if len(events) else make_events(None)
    for index, row in enumerate(frame.itertuples(index=False)):
        if not (math.isfinite(row.onset) and math.isfinite(row.offset)):
            raise FormatError(f"Event {index} has a time that is not a finite number.")
        if row.onset < 0 or row.offset < row.onset:
            raise FormatError(
                f"Event {index} has onset {row.onset!r} s and offset {row.offset!r} s; "
                "times must be >= 0 and the offset not before the onset."
            )
    return frame
