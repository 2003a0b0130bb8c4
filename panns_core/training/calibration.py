"""Post-processing calibrated on the validation recordings, shipped with a fine-tuned model.

Detection turns segment probabilities into events with an on threshold, an off
threshold (hysteresis) and a median filter (:mod:`panns_core.detection.postprocess`).
Their defaults (0.5, none, none) suit no model in particular: a model trained for
minutes on a few hundred recordings gives rare classes probabilities well below
0.5, and its best median is about 1 s. So after training, with the best weights,
:func:`calibrate` searches a small grid on the validation recordings:

* for every median length in ``medians`` and on threshold in ``thresholds`` with
  off = on x each of ``off_ratios``, the event-based F1 of every class (one
  sed_eval pass per combination, all classes at once);
* the best *global* setting (one threshold, off = on, one median) by micro event F1;
* per class, the (median, on, off) with the best class-wise event F1; ties go to the
  setting nearest the global one, and classes without validation events take the
  global setting.

The per-class setting is kept when its micro event F1 on the validation recordings
beats the global one's by ``prefer_global_margin`` (thresholds fitted per class on
few recordings are noisy; the global ones generalise better when the gain is small);
otherwise the global one is. The result is a
:class:`~panns_core.detection.postprocess.PostprocessParams`, stored in the fine-tuned
checkpoint's metadata (``extra["postprocess"]``) so ``panns-sed detect`` uses it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .data import LabelledRecording

THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6)
OFF_RATIOS = (1.0, 0.5)
MEDIANS = (0.0, 0.8, 1.12, 1.44)
PREFER_GLOBAL_MARGIN = 0.05


def _events(predictions, labels, segment_seconds: float, params):
    import pandas as pd

    from ..detection.postprocess import scores_to_events
    from ..detection.scores import Scores

    frames = []
    for rec, probs in predictions:
        duration = max(rec.duration, (len(probs) - 1) * segment_seconds + 1e-6)
        scores = Scores(probs, segment_seconds, list(labels), duration=duration)
        frames.append(scores_to_events(scores, params, recording=rec.key))
    return pd.concat(frames) if frames else pd.DataFrame()


def _f1(value: Any) -> float:
    return float(value) if value is not None and np.isfinite(value) else 0.0


def calibrate(
    predictions: Sequence[tuple[LabelledRecording, np.ndarray]],
    labels: Sequence[str],
    segment_seconds: float,
    *,
    thresholds: Sequence[float] = THRESHOLDS,
    off_ratios: Sequence[float] = OFF_RATIOS,
    medians: Sequence[float] = MEDIANS,
    prefer_global_margin: float = PREFER_GLOBAL_MARGIN,
    deadline: float | None = None,
) -> tuple[Any, dict[str, Any]] | tuple[None, dict[str, Any]]:
    """(PostprocessParams or None, a report) from validation ``predictions``.

    ``predictions``: (recording, segment probabilities (segment, label)) pairs.
    ``deadline`` (``time.monotonic()`` value): medians not started by then are skipped
    (at least one is always searched). None when there is nothing to calibrate on.
    """
    import pandas as pd

    from ..detection.postprocess import PostprocessParams
    from ..evaluation import event_based

    labels = list(labels)
    if not predictions:
        return None, {"skipped": "no validation recordings"}
    reference = pd.concat([rec.reference_events(labels) for rec, _ in predictions])
    present = set(reference["label"])
    if not present:
        return None, {"skipped": "no validation events"}
    t0 = time.monotonic()
    grid: dict[tuple[float, float, float], dict[str, Any]] = {}
    searched = []
    for k, median in enumerate(medians):
        if k and deadline is not None and time.monotonic() > deadline:
            break
        searched.append(float(median))
        for on in thresholds:
            for ratio in off_ratios:
                params = PostprocessParams(threshold=float(on), off_threshold=float(on * ratio),
                                           median_seconds=float(median))  # fmt: skip
                est = _events(predictions, labels, segment_seconds, params)
                result = event_based.evaluate(reference, est, labels=labels)
                grid[(float(median), float(on), float(ratio))] = {
                    "overall": _f1(result["overall"]["f1"]),
                    "class": {c: _f1(v["f1"]) for c, v in result["class_wise"].items()},
                }
    plain = {k: v for k, v in grid.items() if k[2] == 1.0} or grid
    g_key = max(plain, key=lambda k: (plain[k]["overall"], -k[1]))
    g_median, g_on, _ = g_key
    global_params = PostprocessParams(threshold=g_on, median_seconds=g_median)

    def nearness(key: tuple[float, float, float]) -> tuple[float, float, float]:
        return (-abs(key[1] - g_on), -abs(key[0] - g_median), key[2])

    on_t, off_t, med_t = {}, {}, {}
    for label in labels:
        if label not in present:
            continue
        key = max(grid, key=lambda k: (grid[k]["class"].get(label, 0.0), *nearness(k)))
        if grid[key]["class"].get(label, 0.0) <= 0.0:
            continue  # never found: the global setting
        on_t[label], off_t[label] = key[1], key[1] * key[2]
        med_t[label] = key[0]
    per_class = PostprocessParams(
        threshold=g_on, median_seconds=g_median, class_thresholds=on_t,
        class_off_thresholds=off_t, class_median_seconds=med_t,
    )  # fmt: skip
    est = _events(predictions, labels, segment_seconds, per_class)
    per_class_f1 = _f1(event_based.evaluate(reference, est, labels=labels)["overall"]["f1"])
    global_f1 = grid[g_key]["overall"]
    use_per_class = per_class_f1 >= global_f1 + prefer_global_margin
    report = {
        "global": {"threshold": g_on, "median_seconds": g_median, "event_f1": global_f1},
        "per_class_event_f1": per_class_f1,
        "chosen": "per_class" if use_per_class else "global",
        "event_f1": per_class_f1 if use_per_class else global_f1,
        "medians_searched": searched,
        "evaluations": len(grid) + 1,
        "seconds": round(time.monotonic() - t0, 3),
    }
    return (per_class if use_per_class else global_params), report
