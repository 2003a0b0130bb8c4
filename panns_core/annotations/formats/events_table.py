"""This program's own event tables: every schema column, as CSV or as JSON records.

``panns-sed detect --format csv|json`` writes them (plus ``mean_confidence``); reading
them back keeps everything, status and source included (an accepted event comes back
accepted). CSV is written; both are read.
"""

from __future__ import annotations

import csv
import io
import json
import math

import pandas as pd

from ...errors import FormatError
from ...events import EVENT_COLUMNS, STATUSES, make_events
from ._common import check_events, fmt

NAME = "events table"
#: the first columns of a table written here; how the format is recognised
HEAD = ("recording", "onset", "offset", "label")


def is_events_csv(first_line: str) -> bool:
    return tuple(c.strip() for c in first_line.split(",")[:4]) == HEAD


def is_events_json(document: object) -> bool:
    return (isinstance(document, list) and bool(document) and isinstance(document[0], dict)
            and set(HEAD) <= set(document[0]) and "data" not in document[0])


_NUMBERS = ("onset", "offset", "confidence", "low_freq", "high_freq", "created", "modified")


def _records(text: str, name: str) -> list[dict]:
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("["):
        try:
            document = json.loads(stripped)
        except (ValueError, RecursionError) as error:
            raise FormatError(f"{name}: not valid JSON ({error}).") from None
        if not isinstance(document, list) or not all(isinstance(r, dict) for r in document):
            raise FormatError(f"{name}: an events table in JSON is a list of objects.")
        return document
    try:
        return list(csv.DictReader(io.StringIO(stripped, newline="")))
    except csv.Error as error:
        raise FormatError(f"{name}: not a readable events table ({error}).") from None


def _number(value: object, name: str, row: int, column: str) -> float:
    if value is None or value == "":
        if column in ("onset", "offset"):
            raise FormatError(f"{name}, row {row}: {column} is missing.")
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise FormatError(f"{name}, row {row}: {column} {value!r} is not a number.") from None


def read(text: str, name: str) -> pd.DataFrame:
    records = _records(text, name)
    rows = []
    for number, record in enumerate(records, start=2):
        missing = [c for c in HEAD if c not in record]
        if missing:
            raise FormatError(f"{name}: the events table lacks the column(s) "
                              f"{', '.join(missing)}.")
        row = {c: record[c] for c in EVENT_COLUMNS if c in record}
        for column in _NUMBERS:
            if column in row:
                row[column] = _number(row[column], name, number, column)
        for column in ("source", "status"):  # empty: the schema's default
            if row.get(column) in (None, ""):
                row.pop(column, None)
        for column in ("recording", "label", "source", "status", "note"):
            if column in row and not isinstance(row[column], str):
                row[column] = "" if row[column] is None else str(row[column])
        if row.get("status", STATUSES[0]) not in STATUSES:
            raise FormatError(f"{name}, row {number}: unknown status {row['status']!r}; one "
                              f"of {', '.join(STATUSES)}.")
        rows.append(row)
    try:
        return check_events(make_events(rows) if rows else make_events(None))
    except (ValueError, TypeError) as error:
        raise FormatError(f"{name}: {error}") from None


def write(events: pd.DataFrame) -> str:
    return write_table(check_events(events))


def write_table(frame: pd.DataFrame) -> str:
    """Any frame as RFC 4180 CSV (CRLF line ends, so the csv module quotes a cell holding
    a line break or a lone CR, which pandas' writer leaves bare); floats as their shortest
    exact text, NaN as an empty cell."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(frame.columns)
    for row in frame.itertuples(index=False):
        writer.writerow(_cell(v) for v in row)
    return out.getvalue()


def _cell(value: object) -> object:
    if isinstance(value, float):
        return "" if math.isnan(value) else fmt(value)
    return value
