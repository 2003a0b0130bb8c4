"""Reading evaluation inputs from files: annotations, durations, score tables.

The metric modules take DataFrames and mappings only; files are read here, at the entry.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import FormatError
from ._common import audio_id


def read_events(path: str | Path) -> pd.DataFrame:
    """Read an annotation file in any format :mod:`panns_core.annotations.formats` knows."""
    from ..annotations.formats import read_annotations

    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path} does not exist; give an annotation file.")
    return read_annotations(path)


def read_durations(path: str | Path) -> dict[str, float]:
    """A DCASE ``filename duration`` TSV -> {audio_id: seconds} (the one DCASE reader)."""
    from ..annotations.formats import read_durations as read_dcase_durations

    return {audio_id(name): seconds for name, seconds in read_dcase_durations(path).items()}


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
