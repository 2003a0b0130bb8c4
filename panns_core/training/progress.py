"""Progress of a fine-tuning run: the JSON-lines protocol (``panns-sed train --json``).

The trainer reports through a callback receiving one dict per event; with
``--json`` the CLI writes each as one line of JSON on stdout (flushed), and every
run also appends them to ``<run_dir>/events.jsonl``. A GUI starts
``panns-sed train ... --json`` as a separate process, reads stdout line by line
and ``json.loads`` each line. Lines that are not JSON objects can be ignored.
Cancel: send SIGINT or SIGTERM; the run stops after the current step, writes its
checkpoint and ends with a ``done`` event of status ``cancelled`` (exit code 130).

Every object has ``"event"`` (its type) and ``"time"`` (seconds since the run
started). Types, in the order they occur:

``start``
    ``run_dir``, ``architecture``, ``base`` (parent model), ``strategy``,
    ``labels`` (list), ``head_init`` ({label: base label it starts from, or null}),
    ``data`` (summary: ``train_events``/``val_events`` {label: count},
    ``rejected_events``, ``train_recordings``, ``val_recordings``, ``event_clips``,
    ``background_clips``, seconds), ``epochs``, ``steps_per_epoch``,
    ``total_steps``, ``batch_size``, ``world_size``, ``device``, ``precision``,
    ``resumed`` (bool), ``epoch``/``step`` (where it starts), ``config`` (all settings).
``validation``
    ``epoch`` (0 = the base model before any training), ``metrics``.
``step``
    ``epoch`` (1-based), ``step`` (1-based within the epoch), ``global_step``,
    ``total_steps``, ``loss`` (this step, all processes), ``lr``.
    Every ``log_every`` steps.
``epoch``
    ``epoch``, ``train_loss`` (mean over the epoch), ``metrics`` (validation, or
    null without validation), ``best_epoch``, ``best_score`` (its value of the
    selection measure ``selection_metric``, "segment_map"), ``best_f1`` (its
    validation event F1), ``improved`` (bool),
    ``checkpoint`` (path of the resumable state), ``best_checkpoint`` (path of the
    best weights so far), ``planned_epochs`` (after a time budget re-plan),
    ``seconds`` (this epoch).
``calibration``
    After the last epoch, with the kept weights: ``stage`` "start", then "done" with
    ``report`` (the chosen post-processing's validation event F1, the global and
    per-class results; see :mod:`.calibration`).
``done``
    ``status``: ``completed`` | ``early_stopped`` | ``time_budget`` | ``cancelled``;
    ``result``: ``checkpoint`` (final weights, null when cancelled before any
    epoch), ``state`` (resumable state), ``best_epoch``, ``epochs_run``,
    ``metrics_before``, ``metrics_after``, and after registration ``model``
    (registry name) - the CLI adds it to this same event.
``error``
    ``message`` (written by the CLI when the run fails; exit code 1).

``metrics`` objects: ``event_f1``, ``event_precision``, ``event_recall``,
``event_error_rate``, ``segment_f1``, ``segment_error_rate``, ``segment_map``
(threshold-free segment-level mean average precision: what selects the best epoch),
``loss`` (validation BCE), and ``class_event_f1`` {label: F1 or null}.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

ProgressCallback = Callable[[dict[str, Any]], None]

EVENT_TYPES = ("start", "validation", "step", "epoch", "calibration", "done", "error")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def to_json_line(event: dict[str, Any]) -> str:
    """One event as one line of strict JSON (NaN -> null, paths -> strings)."""
    return json.dumps(_clean(event), allow_nan=False, default=str)


class JsonLines:
    """A progress callback writing JSON lines to a stream (stdout by default)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, event: dict[str, Any]) -> None:
        self.stream.write(to_json_line(event) + "\n")
        self.stream.flush()


class EventLog:
    """Appends every event to a file (``<run_dir>/events.jsonl``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __call__(self, event: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(to_json_line(event) + "\n")


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """Parse a JSON-lines progress stream, skipping lines that are not JSON objects."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and "event" in obj:
            out.append(obj)
    return out


class TqdmReporter:
    """Human progress: a tqdm bar over steps, one line per epoch (stderr)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.bar = None
        self.started = time.monotonic()

    def __call__(self, event: dict[str, Any]) -> None:
        from tqdm import tqdm

        kind = event.get("event")
        if kind == "start":
            data = event.get("data", {})
            counts = ", ".join(f"{k}: {v}" for k, v in data.get("train_events", {}).items())
            self._write(
                f"Fine-tuning {event['architecture']} ({event['strategy']}) on "
                f"{len(data.get('train_recordings', []))} recordings [{counts}], "
                f"validating on {len(data.get('val_recordings', []))}; run dir {event['run_dir']}"
            )
            self.bar = tqdm(
                total=event["total_steps"], initial=event.get("global_step", 0),
                unit="step", file=self.stream, dynamic_ncols=True,
            )  # fmt: skip
        elif kind == "step" and self.bar is not None:
            self.bar.update(event["global_step"] - self.bar.n)
            self.bar.set_postfix(epoch=event["epoch"], loss=f"{event['loss']:.4f}")
        elif kind == "validation":
            self._write(f"before training: {_metrics_text(event.get('metrics'))}")
        elif kind == "epoch":
            mark = " *" if event.get("improved") else ""
            self._write(
                f"epoch {event['epoch']}: loss {event['train_loss']:.4f}  "
                f"{_metrics_text(event.get('metrics'))}{mark}"
            )
            if self.bar is not None and event.get("total_steps"):
                self.bar.total = event["total_steps"]
                self.bar.refresh()
        elif kind == "calibration" and event.get("stage") == "done":
            report = event.get("report") or {}
            if "event_f1" in report:
                g = report["global"]
                self._write(
                    f"calibrated post-processing ({report['chosen']}): val event F1 "
                    f"{report['event_f1']:.3f} (global threshold {g['threshold']}, median "
                    f"{g['median_seconds']} s: {g['event_f1']:.3f})"
                )
        elif kind == "done":
            if self.bar is not None:
                self.bar.close()
            result = event.get("result", {})
            if self.bar is not None:
                self.bar = None
            self._write(
                f"{event['status']}: best epoch {result.get('best_epoch')}, "
                f"{_metrics_text(result.get('metrics_after'))}; "
                f"checkpoint {result.get('checkpoint')}"
            )

    def _write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream)


def _metrics_text(metrics: dict[str, Any] | None) -> str:
    if not metrics:
        return "no validation"

    def f(x: Any) -> str:
        return "-" if x is None else f"{x:.3f}"

    return (
        f"val mAP {f(metrics.get('segment_map'))}, event F1 {f(metrics.get('event_f1'))}, "
        f"segment F1 {f(metrics.get('segment_f1'))}, loss {f(metrics.get('loss'))}"
    )
