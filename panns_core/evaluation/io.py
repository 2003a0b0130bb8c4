"""Reading evaluation inputs from files: annotations, durations, score tables.

The metric modules take DataFrames and mappings only; files are read here, at the entry.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import FormatError
from ._common import audio_id


def _read_dcase(path: Path) -> pd.DataFrame:
    """Fallback reader: a DCASE TSV with ``filename onset offset event_label``."""
    try:
        frame = pd.read_csv(path, sep="\t", dtype={"filename": str, "event_label": str})
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise FormatError(f"{path}: not a tab-separated annotation file ({error}).") from error
    need = {"filename", "onset", "offset", "event_label"}
    if not need <= set(frame.columns):
        raise FormatError(
            f"{path}: expected the columns filename, onset, offset, event_label "
            f"(DCASE TSV), found {list(frame.columns)}."
        )
    return pd.DataFrame(
        {
            "recording": frame["filename"].astype(str),
            "onset": pd.to_numeric(frame["onset"], errors="coerce"),
            "offset": pd.to_numeric(frame["offset"], errors="coerce"),
            "label": frame["event_label"],
        }
    ).dropna(subset=["label"])


def read_events(path: str | Path) -> pd.DataFrame:
    """Read an annotation file in any format :mod:`panns_core.annotations.formats` knows."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path} does not exist; give an annotation file.")
    try:
        from ..annotations.formats import read_annotations
    except ImportError:
        return _read_dcase(path)
    return read_annotations(path)


def read_durations(path: str | Path) -> dict[str, float]:
    """A ``filename duration`` TSV -> {audio_id: seconds}."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, sep="\t")
    except (OSError, pd.errors.ParserError) as error:
        raise FormatError(f"{path}: cannot read durations ({error}).") from error
    if not {"filename", "duration"} <= set(frame.columns):
        raise FormatError(f"{path}: expected the columns filename, duration.")
    return {audio_id(f): float(d) for f, d in zip(frame["filename"], frame["duration"])}


def read_score_tables(directory: str | Path) -> dict[str, pd.DataFrame]:
    """Read a directory of sed_scores_eval score TSVs (``<audio_id>.tsv`` each)."""
    from sed_scores_eval.base_modules.io import read_sed_scores

    directory = Path(directory)
    if not directory.is_dir():
        raise FormatError(f"{directory} is not a directory of score TSVs; pass --scores DIR.")
    files = sorted(p for p in directory.iterdir() if p.suffix == ".tsv")
    if not files:
        raise FormatError(f"{directory} holds no .tsv score files (one per recording).")
    tables = {}
    for path in files:
        try:
            tables[path.stem] = read_sed_scores(path)
        except (ValueError, KeyError, pd.errors.ParserError) as error:
            raise FormatError(
                f"{path} is not a score table 'onset offset <class>...': {error}"
            ) from error
    return tables
