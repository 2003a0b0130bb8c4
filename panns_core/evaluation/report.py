"""Event- and segment-based evaluation together, and a plain-text report of the result."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from . import event_based, segment_based


def evaluate_events(
    reference: pd.DataFrame,
    estimated: pd.DataFrame,
    *,
    labels: Iterable[str] | None = None,
    durations: Mapping[str, float] | None = None,
) -> dict:
    """``{"event": event_based.evaluate(...), "segment": segment_based.evaluate(...)}``
    with the default collars and segment length."""
    return {
        "event": event_based.evaluate(reference, estimated, labels=labels),
        "segment": segment_based.evaluate(reference, estimated, labels=labels, durations=durations),
    }


def format_report(result: dict) -> str:
    """A plain-text table of an :func:`evaluate_events` (+ ``"psds"``) result."""

    def fmt(x: float | None) -> str:
        return "   -  " if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:6.3f}"

    lines = []
    for kind in ("event", "segment"):
        if kind not in result:
            continue
        block = result[kind]
        o = block["overall"]
        lines.append(
            f"{kind}-based  F1 {fmt(o['f1'])}  P {fmt(o['precision'])}  R {fmt(o['recall'])}"
            f"  ER {fmt(o['error_rate'])}  (macro F1 {fmt(block['macro_f1'])})"
        )
        width = max([10, *(len(k) for k in block["class_wise"])])
        lines.append(f"  {'class':<{width}}     F1      P      R     ER   nref  nsys")
        for label, c in block["class_wise"].items():
            lines.append(
                f"  {label:<{width}} {fmt(c['f1'])} {fmt(c['precision'])} {fmt(c['recall'])}"
                f" {fmt(c['error_rate'])} {c['n_ref']:6d} {c['n_sys']:5d}"
            )
    for name in ("psds1", "psds2"):
        if name in result.get("psds", {}):
            lines.append(f"{name.upper()} {result['psds'][name]['psds']:.4f}")
    return "\n".join(lines)
