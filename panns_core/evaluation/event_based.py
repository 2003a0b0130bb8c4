"""Event-based F1 and error rate (sed_eval ``EventBasedMetrics``).

An estimated event matches a reference event of the same label when its onset is
within ``onset_collar`` (200 ms) and its offset within max(200 ms, 20 % of the
reference event's length); optimal (Hungarian) matching. Events follow the
:mod:`panns_core.events` schema (only ``recording``, ``onset``, ``offset`` and
``label`` are used).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import pandas as pd

from ._common import event_dicts, prepare, quiet_sed_eval, summarise

ONSET_COLLAR = 0.2
OFFSET_COLLAR_RATE = 0.2


TIE_SECONDS = 5e-7


def evaluate(
    reference: pd.DataFrame,
    estimated: pd.DataFrame,
    *,
    labels: Iterable[str] | None = None,
    onset_collar: float = ONSET_COLLAR,
    offset_collar_rate: float = OFFSET_COLLAR_RATE,
) -> dict:
    """Event-based F1 / error rate, overall (micro), per class and macro-averaged.

    ``labels`` restricts and orders the classes (default: every label seen);
    estimated events of other labels are ignored.
    """
    sed_eval = quiet_sed_eval()
    classes, ref, est = prepare(reference, estimated, labels)
    metric = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=classes,
        # a boundary tie counts as inside the collar: sed_scores_eval rounds |distance| -
        # collar to 1e-6 s, while sed_eval compares floats (8.32 - 8.12 > 0.2 there)
        t_collar=onset_collar + TIE_SECONDS,
        percentage_of_length=offset_collar_rate,
        evaluate_onset=True,
        evaluate_offset=True,
        event_matching_type="optimal",
    )
    with warnings.catch_warnings():  # "mean of empty slice" for classes without events
        warnings.simplefilter("ignore", RuntimeWarning)
        for key in sorted(set(ref["audio_id"]) | set(est["audio_id"])):
            metric.evaluate(
                reference_event_list=event_dicts(ref[ref["audio_id"] == key]),
                estimated_event_list=event_dicts(est[est["audio_id"] == key]),
            )
        results = metric.results()
    return summarise(results, ref, est)
