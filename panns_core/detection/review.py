"""The order in which a person reviews the model's proposals: most uncertain first.

An event's confidence is the model's peak probability over it; the closer that is to
the threshold that made it an event, the less sure the model was, so those events
come first. Used by the annotator's review mode; no Qt here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from ..events import PROPOSED

Threshold = float | Mapping[str, float] | Callable[[str], float]


def _thresholds(labels: pd.Series, threshold: Threshold) -> np.ndarray:
    if callable(threshold):
        return np.array([float(threshold(str(x))) for x in labels], dtype=np.float64)
    if isinstance(threshold, Mapping):
        default = float(threshold.get("", 0.5))
        return np.array([float(threshold.get(str(x), default)) for x in labels],
                        dtype=np.float64)
    return np.full(len(labels), float(threshold), dtype=np.float64)


def uncertainty(events: pd.DataFrame, threshold: Threshold) -> np.ndarray:
    """|confidence - threshold| per event (NaN where the confidence is unknown)."""
    conf = events["confidence"].to_numpy(dtype=np.float64)
    return np.abs(conf - _thresholds(events["label"], threshold))


def review_order(events: pd.DataFrame, threshold: Threshold, *,
                 statuses: Iterable[str] = (PROPOSED,)) -> list[int]:
    """Ids of the events to review (by default the proposed ones), most uncertain first.

    ``threshold`` is one value, a {label: value} mapping (key ``""`` as the default,
    else 0.5), or a function of the label, e.g. ``PostprocessParams.on_threshold``.
    Ties go by onset then id; events without a confidence come last, in time order.
    """
    wanted = set(statuses)
    frame = events[events["status"].isin(wanted)] if wanted else events.iloc[0:0]
    if frame.empty:
        return []
    distance = uncertainty(frame, threshold)
    unknown = np.isnan(distance)
    keys = (frame["id"].to_numpy(), frame["onset"].to_numpy(dtype=np.float64),
            np.where(unknown, 0.0, distance), unknown)
    order = np.lexsort(keys)
    return [int(i) for i in frame["id"].to_numpy()[order]]
