"""Segment-based F1 and error rate (sed_eval ``SegmentBasedMetrics``) on 1 s segments.

A recording is evaluated over its duration when known, else up to its last event.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping

import pandas as pd

from ._common import audio_id, event_dicts, prepare, quiet_sed_eval, summarise

SEGMENT_SECONDS = 1.0


def evaluate(
    reference: pd.DataFrame,
    estimated: pd.DataFrame,
    *,
    labels: Iterable[str] | None = None,
    segment_seconds: float = SEGMENT_SECONDS,
    durations: Mapping[str, float] | None = None,
) -> dict:
    """Segment-based F1 / error rate on ``segment_seconds`` segments.

    ``durations`` (recording -> seconds) sets each recording's evaluated length;
    recordings listed there without any event count too (their estimated
    events are insertions; an empty one adds true-negative segments).
    """
    sed_eval = quiet_sed_eval()
    classes, ref, est = prepare(reference, estimated, labels)
    lengths = {audio_id(k): float(v) for k, v in (durations or {}).items()}
    metric = sed_eval.sound_event.SegmentBasedMetrics(
        event_label_list=classes, time_resolution=segment_seconds
    )
    for key in sorted(set(ref["audio_id"]) | set(est["audio_id"]) | set(lengths)):
        r, e = ref[ref["audio_id"] == key], est[est["audio_id"] == key]
        length = lengths.get(key)
        if length is None:
            length = float(max([0.0, *r["offset"], *e["offset"]]))
        if length <= 0:
            continue
        metric.evaluate(
            reference_event_list=event_dicts(r),
            estimated_event_list=event_dicts(e),
            evaluated_length_seconds=length,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        results = metric.results()
    return summarise(results, ref, est)
