"""Helpers shared by the metric families: recording keys, event cleaning, sed_eval glue.

Recordings are matched by file name without extension, as sed_scores_eval does, so
``dir/a.wav``, ``a.wav`` and ``a`` are the same recording.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from pathlib import PurePath
from typing import Any

import pandas as pd

from ..errors import FormatError


def audio_id(recording: str) -> str:
    """The key a recording is matched by: its file name without extension."""
    name = PurePath(str(recording).replace("\\", "/")).name
    stem, dot, ext = name.rpartition(".")
    return stem if dot and stem and ext.isalnum() and len(ext) <= 5 else name


def quiet_sed_eval() -> Any:
    """Import sed_eval without its import-time deprecation warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import sed_eval
    return sed_eval


def clean_events(events: pd.DataFrame, name: str) -> pd.DataFrame:
    """Unlabelled rows dropped, typed columns, an ``audio_id`` column; bad times are errors."""
    missing = [c for c in ("onset", "offset", "label") if c not in events.columns]
    if missing:
        raise FormatError(f"{name} events lack the columns {missing}; give onset, offset, label.")
    frame = events.copy()
    if "recording" not in frame.columns:
        frame["recording"] = ""
    frame = frame[frame["label"].notna() & (frame["label"].astype(str) != "")]
    frame = frame.assign(
        audio_id=frame["recording"].astype(str).map(audio_id),
        onset=frame["onset"].astype(float),
        offset=frame["offset"].astype(float),
        label=frame["label"].astype(str),
    )
    bad = frame[~(frame["offset"] > frame["onset"])]
    if len(bad):
        row = bad.iloc[0]
        raise FormatError(
            f"{name} event {row['label']!r} in {row['recording']!r} has offset "
            f"{row['offset']} <= onset {row['onset']}; fix or drop it."
        )
    return frame


def prepare(
    reference: pd.DataFrame, estimated: pd.DataFrame, labels: Iterable[str] | None
) -> tuple[list[str], pd.DataFrame, pd.DataFrame]:
    """Both event tables cleaned (:func:`clean_events`), the evaluated classes
    (``labels`` in order, else every label seen, sorted), and the two tables
    restricted to those classes."""
    ref = clean_events(reference, "reference")
    est = clean_events(estimated, "estimated")
    if labels is not None:
        classes = list(dict.fromkeys(labels))
    else:
        classes = sorted(set(ref["label"]) | set(est["label"]))
    return classes, ref[ref["label"].isin(classes)], est[est["label"].isin(classes)]


def event_dicts(frame: pd.DataFrame) -> list[dict]:
    """Cleaned events -> sed_eval's event list."""
    return [
        {"event_label": lab, "onset": float(on), "offset": float(off), "filename": rec}
        for rec, on, off, lab in zip(
            frame["audio_id"], frame["onset"], frame["offset"], frame["label"]
        )
    ]


ERROR_RATE_KEYS = ("error_rate", "substitution_rate", "deletion_rate", "insertion_rate")


def _nan_to_none(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def summarise(results: dict, reference: pd.DataFrame, estimated: pd.DataFrame) -> dict:
    """sed_eval's nested result dict -> our flat dict of floats (NaN -> None)."""

    def one(block: dict) -> dict:
        f, e, nan = block.get("f_measure", {}), block.get("error_rate", {}), float("nan")
        values = {
            "f1": f.get("f_measure", nan),
            "precision": f.get("precision", nan),
            "recall": f.get("recall", nan),
            **{key: e.get(key, nan) for key in ERROR_RATE_KEYS},
        }
        return {key: _nan_to_none(value) for key, value in values.items()}

    overall = one(results["overall"])
    overall["n_ref"] = len(reference)
    overall["n_sys"] = len(estimated)
    class_wise = {}
    for label, block in results["class_wise"].items():
        entry = one(block)
        entry.pop("substitution_rate", None)
        entry["n_ref"] = int((reference["label"] == label).sum())
        entry["n_sys"] = int((estimated["label"] == label).sum())
        if entry["n_ref"] == 0:  # rates per reference event are undefined, not (I / eps)
            for key in ERROR_RATE_KEYS:
                if key in entry:
                    entry[key] = None
        class_wise[label] = entry
    macro = one(results["class_wise_average"])
    return {
        "overall": overall,
        "class_wise": class_wise,
        "macro_f1": macro["f1"],
        "macro_error_rate": macro["error_rate"],
    }
