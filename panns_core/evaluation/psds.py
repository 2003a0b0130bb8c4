"""PSDS, DCASE scenarios 1 and 2, through ``sed_scores_eval.intersection_based.psds``.

Scores are framewise score tables in the sed_scores_eval layout (``onset offset
<class>...``, one DataFrame per recording, keyed by recording); reading them from
files is :func:`panns_core.evaluation.io.read_score_tables`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FormatError
from ._common import audio_id, clean_events

#: DCASE 2021-2023 task 4 PSDS settings.
PSDS_SCENARIOS: dict[str, dict[str, Any]] = {
    "psds1": {
        "dtc_threshold": 0.7,
        "gtc_threshold": 0.7,
        "cttc_threshold": None,
        "alpha_ct": 0.0,
        "alpha_st": 1.0,
        "max_efpr": 100.0,
    },
    "psds2": {
        "dtc_threshold": 0.1,
        "gtc_threshold": 0.1,
        "cttc_threshold": 0.3,
        "alpha_ct": 0.5,
        "alpha_st": 1.0,
        "max_efpr": 100.0,
    },
}


def sed_scores_eval_writable() -> None:
    """Work around sed_scores_eval 0.0.4 under pandas 3 copy-on-write.

    Its Cython ``onset_offset_curves`` wants writable buffers, but pandas 3 hands out
    read-only views from ``DataFrame.to_numpy()`` ("buffer source array is
    read-only"). Wrap the one call site so the arrays are copied when read-only.
    """
    from sed_scores_eval.base_modules import statistics

    original = statistics.onset_offset_curves
    if getattr(original, "_writable_inputs", False):
        return

    def onset_offset_curves(scores, timestamps, change_point_candidates=None):
        return original(
            np.require(scores, requirements="W"),
            np.require(timestamps, requirements="W"),
            change_point_candidates,
        )

    onset_offset_curves._writable_inputs = True  # type: ignore[attr-defined]
    onset_offset_curves._original = original  # type: ignore[attr-defined] # tests compare
    statistics.onset_offset_curves = onset_offset_curves


def merge_overlapping(events: pd.DataFrame) -> pd.DataFrame:
    """Join events of the same recording and label that overlap or touch.

    sed_scores_eval refuses ground truth with connected same-class events.
    """
    frame = clean_events(events, "reference")
    rows = []
    for (rec, label), group in frame.groupby(["audio_id", "label"], sort=True):
        current: list[float] | None = None
        for on, off in sorted(zip(group["onset"], group["offset"])):
            if current is not None and on <= current[1]:
                current[1] = max(current[1], off)
            else:
                if current is not None:
                    rows.append((rec, current[0], current[1], label))
                current = [on, off]
        if current is not None:
            rows.append((rec, current[0], current[1], label))
    return pd.DataFrame(rows, columns=["recording", "onset", "offset", "label"])


def ground_truth_dict(events: pd.DataFrame, audio_ids: Iterable[str] = ()) -> dict:
    """Events -> sed_scores_eval ground truth ``{audio_id: [[onset, offset, label], ...]}``."""
    merged = merge_overlapping(events)
    truth: dict[str, list] = {key: [] for key in audio_ids}
    for rec, on, off, label in merged.itertuples(index=False):
        truth.setdefault(rec, []).append([float(on), float(off), label])
    return truth


def evaluate(
    scores: Mapping[str, pd.DataFrame],
    reference: pd.DataFrame,
    durations: Mapping[str, float],
    *,
    scenarios: Iterable[str] = ("psds1", "psds2"),
) -> dict:
    """PSDS for each DCASE scenario: ``{name: {"psds": x, "class_wise": {...}}}``.

    ``scores``: ``{recording: score DataFrame}``. Reference labels missing from the
    score columns are an error; score columns without reference events are left out
    (sed_scores_eval cannot rate a class without ground truth; DCASE's PSDS averages
    over the classes of the reference) and listed as ``"classes_left_out"``.
    """
    from sed_scores_eval import intersection_based

    sed_scores_eval_writable()
    tables = {audio_id(k): v for k, v in scores.items()}
    ids = sorted(tables)
    lengths = {audio_id(k): float(v) for k, v in durations.items()}
    missing = [k for k in ids if k not in lengths]
    if missing:
        raise FormatError(f"no duration for {missing[:5]}; list every scored recording.")
    truth = ground_truth_dict(reference, ids)
    extra = sorted(set(truth) - set(ids))
    if extra:
        raise FormatError(
            f"the reference has events for {extra[:5]} but there are no scores for them."
        )
    classes = [c for c in next(iter(tables.values())).columns if c not in ("onset", "offset")]
    unknown = sorted({e[2] for events in truth.values() for e in events} - set(classes))
    if unknown:
        raise FormatError(f"reference labels {unknown} have no column in the score tables.")
    present = {e[2] for events in truth.values() for e in events}
    left_out = [c for c in classes if c not in present]
    if left_out:
        keep = ["onset", "offset", *(c for c in classes if c in present)]
        tables = {k: v.loc[:, keep] for k, v in tables.items()}
    out = {}
    for name in scenarios:
        params = PSDS_SCENARIOS[name]
        value, class_wise, *_ = intersection_based.psds(
            scores=tables,
            ground_truth=truth,
            audio_durations={k: lengths[k] for k in ids},
            **params,
        )
        out[name] = {
            "psds": float(value),
            "class_wise": {k: float(v) for k, v in class_wise.items()},
        }
        if left_out:
            out[name]["classes_left_out"] = left_out
    return out
