"""From segment-wise scores to events: thresholds, hysteresis, median filter, merging.

Pure numpy. For each class taken into account (all, a class list, and/or the top-k
classes by peak probability):

1. median filter of the probabilities over ``median_seconds`` (rounded to an odd
   number of segments, edges repeated);
2. hysteresis: an event starts where the filtered probability is *above* the on
   threshold and lasts while it stays *above* the off threshold (off = on gives plain
   thresholding). "Above" is strict, so a threshold of 1.0 never fires;
3. events of one class whose gap is shorter than ``merge_gap`` are merged;
4. events shorter than ``min_duration`` are dropped (after merging).

Each event carries the maximum and the duration-weighted mean of the *unfiltered*
model probability inside it. :func:`find_events` returns that table
(``onset, offset, label, confidence, mean_confidence``); :func:`scores_to_events`
returns the project's event schema (:mod:`panns_core.events`) with
``confidence`` = maximum probability, ``source`` = model id, ``status`` = proposed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .scores import Scores

RAW_COLUMNS = ("onset", "offset", "label", "confidence", "mean_confidence")


@dataclass(frozen=True)
class PostprocessParams:
    """How scores become events. Times in seconds; thresholds in [0, 1].

    ``class_thresholds`` / ``class_off_thresholds`` / ``class_median_seconds`` override
    the global values per class label (a fine-tuned model ships such values, calibrated
    on its validation recordings). ``off_threshold=None`` means "same as the on threshold". Where a
    class's off threshold would exceed its on threshold, the on threshold is used.
    """

    threshold: float = 0.5
    off_threshold: float | None = None
    class_thresholds: Mapping[str, float] = field(default_factory=dict)
    class_off_thresholds: Mapping[str, float] = field(default_factory=dict)
    median_seconds: float = 0.0
    min_duration: float = 0.0
    merge_gap: float = 0.0
    classes: Sequence[str] | None = None
    top_k: int | None = None
    class_median_seconds: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        values = [self.threshold, *self.class_thresholds.values()]
        values += [] if self.off_threshold is None else [self.off_threshold]
        values += list(self.class_off_thresholds.values())
        for value in values:
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"thresholds must lie in [0, 1], got {value}")
        if self.off_threshold is not None and self.off_threshold > self.threshold:
            raise ValueError(
                f"the off threshold ({self.off_threshold}) must not exceed the on "
                f"threshold ({self.threshold})"
            )
        for name in ("median_seconds", "min_duration", "merge_gap"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if any(float(v) < 0 for v in self.class_median_seconds.values()):
            raise ValueError("median_seconds must not be negative")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError("top_k must be at least 1")

    def on_threshold(self, label: str) -> float:
        return float(self.class_thresholds.get(label, self.threshold))

    def median_for(self, label: str) -> float:
        return float(self.class_median_seconds.get(label, self.median_seconds))

    def to_dict(self) -> dict:
        """Plain JSON-able values (stored with a model, in settings)."""
        data = asdict(self)
        for name in ("class_thresholds", "class_off_thresholds", "class_median_seconds"):
            data[name] = {str(k): float(v) for k, v in data[name].items()}
        if data["classes"] is not None:
            data["classes"] = list(data["classes"])
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> PostprocessParams:
        """The inverse of :meth:`to_dict`; unknown keys are ignored (older/newer files)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in dict(data).items() if k in known})

    def off_threshold_for(self, label: str) -> float:
        on = self.on_threshold(label)
        if label in self.class_off_thresholds:
            off = self.class_off_thresholds[label]
        elif self.off_threshold is not None:
            off = self.off_threshold
        else:
            off = on
        return float(min(off, on))


def median_filter(values: np.ndarray, width: int) -> np.ndarray:
    """Running median over axis 0 with an odd ``width``, edges repeated."""
    if width <= 1 or len(values) == 0:
        return values
    if width % 2 == 0:
        width += 1
    half = width // 2
    pad = [(half, half)] + [(0, 0)] * (values.ndim - 1)
    padded = np.pad(values, pad, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, width, axis=0)
    return np.median(windows, axis=-1)


def median_width(median_seconds: float, segment_seconds: float) -> int:
    """The odd number of segments a median of ``median_seconds`` spans (at least 1)."""
    width = max(1, round(median_seconds / segment_seconds))
    return width if width % 2 else width + 1


def hysteresis_runs(values: np.ndarray, on: float, off: float) -> np.ndarray:
    """Runs ``[start, stop)`` where ``values > off`` and that contain a value ``> on``.

    Returns an int array of shape (n_runs, 2).
    """
    above_off = np.concatenate(([False], values > off, [False]))
    change = np.flatnonzero(above_off[1:] != above_off[:-1])
    runs = change.reshape(-1, 2)
    if not len(runs):
        return runs
    above_on = values > on
    cumulative = np.concatenate(([0], np.cumsum(above_on)))
    keep = cumulative[runs[:, 1]] > cumulative[runs[:, 0]]
    return runs[keep]


def merge_runs(runs: np.ndarray, edges: np.ndarray, max_gap: float) -> np.ndarray:
    """Merge consecutive runs whose gap (in seconds, from ``edges``) is < ``max_gap``."""
    if len(runs) < 2 or max_gap <= 0:
        return runs
    gaps = edges[runs[1:, 0]] - edges[runs[:-1, 1]]
    starts_new = np.concatenate(([True], gaps >= max_gap))
    first = np.flatnonzero(starts_new)
    last = np.concatenate((first[1:] - 1, [len(runs) - 1]))
    return np.stack([runs[first, 0], runs[last, 1]], axis=1)


def selected_classes(scores: Scores, params: PostprocessParams) -> list[int]:
    """Indices of the classes events are looked for in (class list, then top-k)."""
    if params.classes is not None:
        missing = [c for c in params.classes if c not in scores.labels]
        if missing:
            raise KeyError(f"unknown classes {missing}; see `panns-sed labels` for the names")
        indices = [scores.labels.index(c) for c in dict.fromkeys(params.classes)]
    else:
        indices = list(range(scores.n_classes))
    if params.top_k is not None and len(indices) > params.top_k and scores.n_segments:
        peaks = scores.probabilities[:, indices].max(axis=0)
        order = np.argsort(-peaks, kind="stable")[: params.top_k]
        indices = [indices[i] for i in sorted(order)]
    return indices


def find_events(scores: Scores, params: PostprocessParams | None = None) -> pd.DataFrame:
    """Events as a plain table: onset, offset, label, confidence (max), mean_confidence.

    Sorted by onset, then label.
    """
    import pandas as pd

    params = params or PostprocessParams()
    edges = scores.timestamps
    widths = np.diff(edges)
    probs = scores.probabilities
    rows: dict[str, list] = {name: [] for name in RAW_COLUMNS}
    for c in selected_classes(scores, params):
        label = scores.labels[c]
        on = params.on_threshold(label)
        raw = probs[:, c].astype(np.float64)
        if not len(raw) or raw.max() <= on:  # a median never exceeds the maximum
            continue
        width = median_width(params.median_for(label), scores.segment_seconds)
        filtered = median_filter(raw, width)
        runs = hysteresis_runs(filtered, on, params.off_threshold_for(label))
        runs = merge_runs(runs, edges, params.merge_gap)
        if not len(runs):
            continue
        durations = edges[runs[:, 1]] - edges[runs[:, 0]]
        runs = runs[durations >= params.min_duration]
        for start, stop in runs:
            segment = raw[start:stop]
            rows["onset"].append(float(edges[start]))
            rows["offset"].append(float(edges[stop]))
            rows["label"].append(label)
            rows["confidence"].append(float(segment.max()))
            rows["mean_confidence"].append(float(np.average(segment, weights=widths[start:stop])))
    frame = pd.DataFrame(rows, columns=list(RAW_COLUMNS))
    frame = frame.astype(
        {"onset": float, "offset": float, "confidence": float, "mean_confidence": float}
    )
    return frame.sort_values(["onset", "label"], kind="stable").reset_index(drop=True)


def scores_to_events(
    scores: Scores,
    params: PostprocessParams | None = None,
    recording: str = "",
    *,
    mean_confidence: bool = False,
) -> pd.DataFrame:
    """Events in the project schema: confidence = max probability, status = proposed.

    ``mean_confidence=True`` appends the mean probability over each event as a last
    column (the command line writes it to CSV/JSON; the schema has no column for it).
    """
    from ..events import EVENT_COLUMNS, PROPOSED, make_events

    table = find_events(scores, params)
    events = make_events(
        table.drop(columns=["mean_confidence"]),
        recording=recording,
        source=scores.model_id or "model",
        status=PROPOSED,
    )
    if mean_confidence:
        events["mean_confidence"] = table["mean_confidence"].to_numpy()
        events = events.loc[:, [*EVENT_COLUMNS, "mean_confidence"]]
    return events
