"""Evaluation of detected events against a reference, with sed_eval and sed_scores_eval.

One module per metric family, pure functions on DataFrames (events in the
:mod:`panns_core.events` schema) returning plain dicts of floats, ready for JSON:

* :mod:`.event_based` -- event-based F1 / error rate (200 ms onset collar, offset
  collar max(200 ms, 20 % of length));
* :mod:`.segment_based` -- segment-based F1 / error rate on 1 s segments;
* :mod:`.psds` -- PSDS scenarios 1 and 2 from framewise score tables;
* :mod:`.report` -- both F1 families together, and a plain-text report;
* :mod:`.io` -- reading annotations, durations and score tables from files.

Recordings are matched by file name without extension (:func:`audio_id`).
Importing this package is cheap: the modules, pandas, sed_eval and sed_scores_eval
load on first use of a name below.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "audio_id": "_common",
    "evaluate_events": "report",
    "format_report": "report",
    "read_events": "io",
    "read_durations": "io",
    "read_score_tables": "io",
    "merge_overlapping": "psds",
    "ground_truth_dict": "psds",
    "PSDS_SCENARIOS": "psds",
}

__all__ = [
    "event_based",
    "segment_based",
    "psds",
    "report",
    "io",
    *_EXPORTS,
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    if name in ("event_based", "segment_based", "psds", "report", "io"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
