"""Annotation files other tools read and write, as events DataFrames (events.py schema).

``read_annotations(path, format=None)`` detects the format from content and extension;
``write_annotations(events, path, format=None)`` takes it from the extension when not
given. ``loads_annotations`` / ``dumps_annotations`` do the same on text in memory.
Every malformed input raises :class:`~panns_core.errors.FormatError` naming the file,
the line (or JSON task) and the problem; nothing else escapes a parser.

What each format holds (other columns get the schema's defaults on read):

==================  ======================================================================
dcase               recording (file name), onset, offset, label
audacity            onset, offset, label, low/high frequency; one recording per file
raven               onset, offset, label, low/high frequency, confidence, note, recording
                    (``Begin File``)
sonic_visualiser    onset, offset, label, confidence (``value``); one recording per file
label_studio        recording, onset, offset, label, confidence, note, source, status and
                    low/high frequency (in the region's ``meta.panns``)
events_table        every column (this program's CSV/JSON table, ``detect --format csv``)
==================  ======================================================================

Tabs cannot be held in dcase and raven cells (refused on write); line breaks cannot be
held by any format but label_studio. DCASE cells are quoted as the csv module does, so a
file written here reads back the same in pandas, sed_eval and this program.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

import pandas as pd

from ...errors import FormatError
from ._common import decode, is_number, lines

FORMATS: Final = ("dcase", "audacity", "raven", "sonic_visualiser", "label_studio",
                  "events_table")
EXTENSIONS: Final = {
    "dcase": ".tsv",
    "audacity": ".txt",
    "raven": ".selections.txt",
    "sonic_visualiser": ".csv",
    "label_studio": ".json",
    "events_table": ".events.csv",
}
# Formats whose files name the recording of each event (others hold one recording).
MULTI_RECORDING: Final = frozenset({"dcase", "raven", "label_studio", "events_table"})
ALIASES: Final = {
    "tsv": "dcase", "sed_eval": "dcase", "dcase_tsv": "dcase",
    "aud": "audacity", "audacity_labels": "audacity",
    "raven_pro": "raven", "selections": "raven",
    "sv": "sonic_visualiser", "sonic-visualiser": "sonic_visualiser", "csv": "sonic_visualiser",
    "ls": "label_studio", "label-studio": "label_studio", "json": "label_studio",
    "events": "events_table", "table": "events_table",
}
_MODULES: Final = {f: f for f in FORMATS}

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "MULTI_RECORDING",
    "detect_format",
    "dumps_annotations",
    "format_name",
    "loads_annotations",
    "read_annotations",
    "read_durations",
    "read_weak_labels",
    "weak_labels_from_events",
    "write_annotations",
    "write_durations",
    "write_weak_labels",
]


def format_name(name: str) -> str:
    """The canonical format name for a name or alias (FormatError when unknown)."""
    key = name.strip().lower().replace(" ", "_")
    key = ALIASES.get(key, key)
    if key not in FORMATS:
        raise FormatError(
            f"Unknown annotation format {name!r}. Known formats: {', '.join(FORMATS)}."
        )
    return key


def _module(fmt: str):
    return importlib.import_module(f"{__name__}.{_MODULES[fmt]}")


def _from_extension(name: str) -> str | None:
    lower = os.path.basename(name).lower()
    if lower.endswith(".selections.txt"):
        return "raven"
    if lower.endswith(".events.csv"):
        return "events_table"
    suffix = os.path.splitext(lower)[1]
    return {".tsv": "dcase", ".csv": "sonic_visualiser", ".json": "label_studio",
            ".txt": "audacity"}.get(suffix)


def detect_format(text: str, name: str = "<text>") -> str:
    """Guess the format of annotation text from its content, then its file name."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("["):
        from .events_table import is_events_json

        try:
            document = json.loads(stripped)
        except (ValueError, RecursionError):
            document = None
        if is_events_json(document):
            return "events_table"
    if stripped.startswith(("[", "{")):
        return "label_studio"
    first = next((line for _, line in lines(text) if line.strip()), "")
    if first:
        from .events_table import is_events_csv

        if is_events_csv(first):
            return "events_table"
        tabs = first.split("\t")
        if "Begin Time (s)" in (t.strip() for t in tabs):
            return "raven"
        if tabs[0].strip().lower() == "filename":
            return "dcase"
        if first.startswith("\\"):
            return "audacity"
        if len(tabs) >= 2 and is_number(tabs[0]) and is_number(tabs[1]):
            return "audacity"
        if len(tabs) == 4 and is_number(tabs[1]) and is_number(tabs[2]):
            return "dcase"
        if len(tabs) == 4 and tabs[0].strip() and not "".join(tabs[1:]).strip():
            return "dcase"  # a file listed without events (DESED style)
        commas = first.split(",")
        if len(commas) >= 2 and is_number(commas[0]) and not is_number(tabs[0]):
            return "sonic_visualiser"
    guess = _from_extension(name)
    if guess is not None:
        return guess
    raise FormatError(
        f"{name}: cannot tell which annotation format this is (first line {first[:60]!r}). "
        f"Name the format explicitly ({', '.join(FORMATS)})."
    )


def loads_annotations(
    data: bytes | str, format: str | None = None, *, name: str = "<text>",
    recording: str | None = None,
) -> pd.DataFrame:
    """Parse annotation text or bytes into an events frame.

    ``recording`` fills the recording of events whose file does not name one.
    """
    text = decode(data, name)
    fmt = format_name(format) if format else detect_format(text, name)
    # No catch-all here: the parsers themselves turn every bad input into FormatError
    # (the fuzz tests hold them to it).
    events = _module(fmt).read(text, name)
    if recording is not None and len(events):
        events.loc[events["recording"] == "", "recording"] = recording
    return events


def read_annotations(
    path: str | os.PathLike, format: str | None = None, *, recording: str | None = None,
) -> pd.DataFrame:
    """Read an annotation file (format detected when not given) into an events frame."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise FormatError(f"Cannot read {path}: {error.strerror or error}.") from None
    return loads_annotations(data, format, name=str(path), recording=recording)


def dumps_annotations(
    events: pd.DataFrame, format: str, *, recordings: Iterable[str] | None = None,
) -> str:
    """The text of an annotation file holding ``events`` in ``format``.

    ``recordings``: every recording the file covers; in DCASE each one without events
    gets an empty row, as the DESED metadata and sed_eval expect (pass the
    ``attrs["recordings"]`` a DCASE read left to write such a file back). Other formats
    ignore it.
    """
    fmt = format_name(format)
    if fmt == "dcase":
        from .dcase import write as write_dcase

        return write_dcase(events, recordings)
    return _module(fmt).write(events)


def write_annotations(
    events: pd.DataFrame, path: str | os.PathLike, format: str | None = None, *,
    recordings: Iterable[str] | None = None,
) -> Path:
    """Write events to ``path`` (format from the extension when not given).

    ``recordings``: see :func:`dumps_annotations`.
    """
    path = Path(path)
    fmt = format_name(format) if format else _from_extension(path.name)
    if fmt is None:
        raise FormatError(
            f"Cannot tell the format from the name {path.name!r}; pass one of {', '.join(FORMATS)}."
        )
    text = dumps_annotations(events, fmt, recordings=recordings)
    _write_text(path, text)
    return path


def _write_text(path: Path, text: str) -> None:
    """Write through a temporary file so a failure never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise FormatError(f"Cannot write {path}: {error.strerror or error}.") from None


def read_weak_labels(path: str | os.PathLike) -> dict[str, list[str]]:
    """DCASE weak labels (``filename<TAB>label,label``) as {filename: [labels]}."""
    from .dcase import read_weak

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise FormatError(f"Cannot read {path}: {error.strerror or error}.") from None
    return read_weak(decode(data, str(path)), str(path))


def write_weak_labels(labels: Mapping[str, list[str]], path: str | os.PathLike) -> Path:
    from .dcase import write_weak

    path = Path(path)
    _write_text(path, write_weak(labels))
    return path


def weak_labels_from_events(events: pd.DataFrame) -> dict[str, list[str]]:
    from .dcase import weak_from_events

    return weak_from_events(events)


def read_durations(path: str | os.PathLike) -> dict[str, float]:
    """DCASE duration file (``filename<TAB>duration``) as {filename: seconds}."""
    from .dcase import read_durations as parse

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise FormatError(f"Cannot read {path}: {error.strerror or error}.") from None
    return parse(decode(data, str(path)), str(path))


def write_durations(durations: Mapping[str, float], path: str | os.PathLike) -> Path:
    from .dcase import write_durations as dump

    path = Path(path)
    _write_text(path, dump(durations))
    return path
