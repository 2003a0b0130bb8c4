"""The training panel: runs ``panns-sed train ... --json`` as a separate process and
shows its progress, loss and validation curves; cancel keeps the last checkpoint; at
the end it offers the new model, re-runs detection with it, and shows the validation
metrics before and after.

The new model is compared with its base on the validation recordings (the registry's
``val_before`` / ``val_after``, :func:`compare_with_base`): one that is not worse
becomes the default and the window's model; one that is worse is said so plainly, is
not made the default, and detecting with it asks first; one that could not be
measured (nothing held out) is offered but not made the default.

The process speaks the JSON-lines protocol of :mod:`panns_core.training.progress`
(one object per line on stdout). The window stays usable: the process runs on its
own and QProcess delivers its output through the event loop.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import QProcess, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..views import theme
from . import BOTTOM, Panel

METRIC_ROWS = (
    ("event_f1", "Event F1"),
    ("segment_f1", "Segment F1"),
    ("event_error_rate", "Event error rate"),
    ("loss", "Validation loss"),
    ("segment_map", "Segment mAP"),
)
CANCEL_GRACE_MS = 60_000  # then the process is killed
#: the validation metrics a new model is compared with its base on, first found in both
#: (event F1 is what the best epoch is chosen by; see panns_core.training.validation)
COMPARED = (("event_f1", "event F1", 1), ("segment_f1", "segment F1", 1))
BETTER, SAME, WORSE, UNMEASURED = "better", "same", "worse", "unmeasured"


@dataclass(frozen=True)
class Comparison:
    """How a new model scored against its base on the validation recordings."""

    verdict: str  # BETTER, SAME, WORSE or UNMEASURED
    metric: str | None = None  # the title of the metric compared
    before: float | None = None
    after: float | None = None

    @property
    def worse(self) -> bool:
        return self.verdict == WORSE

    def text(self) -> str:
        if self.metric is None:
            return ""
        return f"{self.metric} {self.after:.3f} against {self.before:.3f} for its base"


def compare_with_base(before: dict | None, after: dict | None) -> Comparison:
    """The verdict on the validation metrics before (the base) and after training."""
    for key, title, sign in COMPARED:
        a = (before or {}).get(key)
        b = (after or {}).get(key)
        if a is None or b is None:
            continue
        a, b = float(a), float(b)
        if sign * (b - a) < -1e-6:
            verdict = WORSE
        elif sign * (b - a) > 1e-6:
            verdict = BETTER
        else:
            verdict = SAME
        return Comparison(verdict, title, a, b)
    return Comparison(UNMEASURED)


def registered_metrics(name: str, event: dict) -> tuple[dict | None, dict | None]:
    """(val_before, val_after) of a registered model (the run's own figures when the
    registry cannot be read)."""
    result = event.get("result") or {}
    before, after = result.get("metrics_before"), result.get("metrics_after")
    try:
        from panns_core.hub.installed import get_registry

        record = get_registry().find(name)
    except Exception:  # the figures of the run are the same numbers
        record = None
    if record is not None and ("val_before" in record.metrics or "val_after" in record.metrics):
        before = record.metrics.get("val_before")
        after = record.metrics.get("val_after")
    return before, after


def calibration_rows(postprocess: dict | None, labels: list[str] | None = None
                     ) -> list[tuple[str, float, float, float]]:
    """(class, on threshold, off threshold, median seconds) for each class of calibrated
    post-processing (``PostprocessParams.to_dict()``, as a training run reports it);
    ``labels`` (the run's classes) lists the classes that use the global values too."""
    if not postprocess:
        return []
    from panns_core.detection.postprocess import PostprocessParams

    try:
        params = PostprocessParams.from_dict(postprocess)
    except (TypeError, ValueError):
        return []
    names = list(labels or [])
    names += sorted({*params.class_thresholds, *params.class_off_thresholds,
                     *params.class_median_seconds} - set(names))  # fmt: skip
    return [(name, params.on_threshold(name), params.off_threshold_for(name),
             params.median_for(name)) for name in names]  # fmt: skip


def ask_yes_no(parent, title: str, text: str) -> bool:
    answer = QMessageBox.question(parent, title, text,
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def train_command(args: list[str]) -> tuple[str, list[str]]:
    """(program, arguments) running ``panns-sed train ARGS --json`` with this Python."""
    args = list(args)
    if "--json" not in args:
        args.append("--json")
    return sys.executable, ["-m", "panns_core", "train", *args]


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.3f}"


class TrainingPanel(QWidget):
    """See the module docstring. ``start(args)``, ``cancel()``, ``handle(event)``."""

    finished = Signal(dict)  # the "done" event (or {"event": "error", ...})
    use_model_requested = Signal(str)
    detect_requested = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.process: QProcess | None = None
        self.events: list[dict] = []
        self.result: dict | None = None
        self.model_name: str | None = None
        self.error: str | None = None
        self.comparison: Comparison | None = None
        #: (title, question) -> yes? Asked before detecting with a model worse than its
        #: base; tests replace it.
        self.confirm: Callable[[str, str], bool] = lambda title, text: ask_yes_no(
            self, title, text)
        self._buffer = b""
        self._stderr: list[str] = []
        self._steps: list[tuple[int, float]] = []
        self._steps_per_epoch = 1
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._kill)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        top = QHBoxLayout()
        self.status = QLabel("No fine-tuning run yet (Models ▸ Fine-tune on this project…).")
        self.status.setWordWrap(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the current step; the last checkpoint is kept")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        top.addWidget(self.status, 1)
        top.addWidget(self.cancel_button)
        layout.addLayout(top)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%p %")
        layout.addWidget(self.progress)

        plots = QHBoxLayout()
        self.loss_plot = pg.PlotWidget(background=theme.PANEL)
        self.loss_plot.setTitle("Loss", color=theme.AXIS_TEXT, size="9pt")
        self.loss_plot.setLabel("bottom", "epoch")
        self.loss_plot.addLegend(offset=(-5, 5), labelTextColor=theme.AXIS_TEXT, colCount=3)
        self.loss_plot.showGrid(x=True, y=True, alpha=0.15)
        self.step_curve = self.loss_plot.plot([], [], pen=pg.mkPen("#5fb3ff", width=1),
                                              name="train (step)")
        self.train_curve = self.loss_plot.plot([], [], pen=pg.mkPen("#ff9f40", width=2),
                                               symbol="o", symbolSize=5, name="train (epoch)")
        self.val_loss_curve = self.loss_plot.plot([], [], pen=pg.mkPen("#45c46b", width=2),
                                                  symbol="s", symbolSize=5, name="validation")
        self.f1_plot = pg.PlotWidget(background=theme.PANEL)
        self.f1_plot.setTitle("Validation", color=theme.AXIS_TEXT, size="9pt")
        self.f1_plot.setLabel("bottom", "epoch")
        self.f1_plot.setYRange(0, 1)
        self.f1_plot.addLegend(offset=(-5, 5), labelTextColor=theme.AXIS_TEXT, colCount=2)
        self.f1_plot.showGrid(x=True, y=True, alpha=0.15)
        self.event_f1_curve = self.f1_plot.plot([], [], pen=pg.mkPen("#ff5a5f", width=2),
                                                symbol="o", symbolSize=5, name="event F1")
        self.segment_f1_curve = self.f1_plot.plot([], [], pen=pg.mkPen("#b68cff", width=2),
                                                  symbol="t", symbolSize=6, name="segment F1")
        for plot in (self.loss_plot, self.f1_plot):
            plot.setMinimumHeight(140)
            plots.addWidget(plot, 1)
        side = QVBoxLayout()
        self.metrics = _MetricsGrid()
        side.addWidget(self.metrics)
        self.use_button = QPushButton("Use the new model")
        self.use_button.clicked.connect(lambda: self.use_model_requested.emit(self.model_name))
        self.detect_button = QPushButton("Detect again with it")
        self.detect_button.clicked.connect(self._detect_clicked)
        for button in (self.use_button, self.detect_button):
            button.setEnabled(False)
            side.addWidget(button)
        side.addStretch(1)
        plots.addLayout(side)
        # the post-processing calibrated on the held-out recordings, shipped with the model
        calibration = QVBoxLayout()
        self.calibration_label = QLabel("")
        self.calibration_label.setWordWrap(True)
        self.calibration_table = QTableWidget(0, 4)
        self.calibration_table.setHorizontalHeaderLabels(["Class", "On", "Off", "Median s"])
        self.calibration_table.verticalHeader().setVisible(False)
        self.calibration_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.calibration_table.horizontalHeader().setSectionResizeMode(
            0, QHeaderView.ResizeMode.Stretch)
        self.calibration_table.setMinimumWidth(230)
        self.calibration_table.setToolTip(
            "Thresholds and median filter per class, calibrated on the held-out recordings "
            "after training; detection with the new model uses them by default")
        calibration.addWidget(self.calibration_label)
        calibration.addWidget(self.calibration_table, 1)
        plots.addLayout(calibration)
        layout.addLayout(plots, 1)
        self._clear_metrics()
        self._show_calibration(None)

    # ----------------------------------------------------------------- process
    @property
    def running(self) -> bool:
        return self.process is not None

    def start(self, args: list[str]) -> None:
        """Start ``panns-sed train ARGS --json`` in a separate process."""
        from panns_core.errors import TrainingError

        if self.running:
            raise TrainingError("A fine-tuning run is already going; wait or cancel it first.")
        self._reset()
        program, arguments = train_command(args)
        process = QProcess(self)
        process.setProgram(program)
        process.setArguments(arguments)
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_process_error)
        self.process = process
        self.status.setText("Starting the training process…")
        self.cancel_button.setEnabled(True)
        process.start()

    def cancel(self) -> None:
        """Ask the run to stop after the current step (SIGTERM); it keeps its checkpoint."""
        if self.process is None:
            return
        self.status.setText("Cancelling after the current step…")
        self.cancel_button.setEnabled(False)
        self.process.terminate()
        self._kill_timer.start(CANCEL_GRACE_MS)

    def _kill(self) -> None:
        if self.process is not None:
            self.process.kill()

    def shutdown(self, wait_ms: int = 15_000) -> None:
        """Stop a running process (window closing): terminate, wait, then kill."""
        process = self.process
        if process is None:
            return
        process.terminate()
        if not process.waitForFinished(wait_ms):
            process.kill()
            process.waitForFinished(3000)

    def _read_stdout(self) -> None:
        if self.process is None:
            return
        self._buffer += bytes(self.process.readAllStandardOutput())
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            try:
                event = json.loads(line.decode("utf-8", "replace"))
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict) and "event" in event:
                self.handle(event)

    def _read_stderr(self) -> None:
        if self.process is None:
            return
        text = bytes(self.process.readAllStandardError()).decode("utf-8", "replace")
        self._stderr = (self._stderr + text.splitlines())[-50:]

    def _on_process_error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._fail(f"Could not start the training process ({self.process.errorString()}).")
            self._done_process()

    def _on_finished(self, exit_code: int, _status) -> None:
        self._read_stdout()
        self._read_stderr()
        if self.result is None and self.error is None:
            # no "done" and no "error" event: say what the process said last
            message = next((line for line in reversed(self._stderr)
                            if line.strip() and not line.startswith(" ")), "")
            message = message.removeprefix("panns-sed: error: ").removeprefix("panns-sed: ")
            self._fail(message or f"The training process stopped (exit code {exit_code}).")
        self._done_process()

    def _done_process(self) -> None:
        self._kill_timer.stop()
        process, self.process = self.process, None
        if process is not None:
            process.deleteLater()
        self.cancel_button.setEnabled(False)

    # ---------------------------------------------------------------- protocol
    def handle(self, event: dict) -> None:
        """Show one protocol event (see panns_core.training.progress)."""
        self.events.append(event)
        kind = event.get("event")
        if kind == "start":
            self._steps_per_epoch = max(1, int(event.get("steps_per_epoch") or 1))
            self.progress.setRange(0, max(1, int(event.get("total_steps") or 1)))
            self.progress.setValue(int(event.get("global_step") or 0))
            data = event.get("data") or {}
            train = data.get("train_events") or {}
            self.status.setText(
                f"Fine-tuning {event.get('architecture')} ({event.get('strategy')}) on "
                f"{sum(train.values())} events of {len(event.get('labels') or [])} classes; "
                f"{len(data.get('val_recordings') or [])} recording(s) held out.")
        elif kind == "validation":
            self._add_validation(int(event.get("epoch", 0)), event.get("metrics"))
            self._set_metric_column(0, event.get("metrics"))
        elif kind == "step":
            total = int(event.get("total_steps") or self.progress.maximum())
            self.progress.setMaximum(max(1, total))
            self.progress.setValue(int(event.get("global_step") or 0))
            x = (int(event["epoch"]) - 1) + int(event["step"]) / self._steps_per_epoch
            self._steps.append((x, float(event["loss"])))
            xs, ys = zip(*self._steps, strict=True)
            self.step_curve.setData(list(xs), list(ys))
            self.status.setText(f"Epoch {event['epoch']}, step {event['global_step']} of "
                                f"{total}: loss {float(event['loss']):.4f}")
        elif kind == "epoch":
            epoch = int(event["epoch"])
            xs, ys = self.train_curve.getData()
            xs = [] if xs is None else list(xs)
            ys = [] if ys is None else list(ys)
            self.train_curve.setData([*xs, epoch], [*ys, float(event["train_loss"])])
            self._add_validation(epoch, event.get("metrics"))
            planned = event.get("planned_epochs")
            best = event.get("best_f1")
            self.status.setText(
                f"Epoch {epoch}{f' of {planned}' if planned else ''} done"
                f"{' (best so far)' if event.get('improved') else ''}; best validation "
                f"event F1 {_fmt(best)} at epoch {event.get('best_epoch')}.")
        elif kind == "calibration" and event.get("stage") == "start":
            self.status.setText("Calibrating the thresholds on the held-out recordings…")
        elif kind == "done":
            self.result = event
            result = event.get("result") or {}
            self.model_name = result.get("model")
            self._show_calibration(result.get("postprocess"))
            self._set_metric_column(0, result.get("metrics_before"))
            self._set_metric_column(1, result.get("metrics_after"))
            status = event.get("status", "")
            words = {"completed": "Finished", "early_stopped": "Stopped early (no gain)",
                     "time_budget": "Time budget reached", "cancelled": "Cancelled"}
            text = words.get(status, status)
            if self.model_name:
                self.comparison = compare_with_base(*registered_metrics(self.model_name, event))
                text += ": " + self._verdict_text(self.model_name, self.comparison)
            elif status == "cancelled" and result.get("state"):
                text += f"; the last checkpoint is kept in {result.get('state')}."
            elif result.get("checkpoint"):
                text += f"; the weights are in {result.get('checkpoint')}."
            self.status.setText(text)
            has_model = bool(self.model_name)
            self.use_button.setEnabled(has_model)
            self.detect_button.setEnabled(has_model)
            if status != "cancelled":
                self.progress.setValue(self.progress.maximum())
            self.finished.emit(event)
        elif kind == "error":
            self._fail(str(event.get("message", "The training run failed.")))

    @staticmethod
    def _verdict_text(name: str, comparison: Comparison) -> str:
        if comparison.verdict == WORSE:
            return (f"<span style='color:#ff6f61'>the new model {name} scores worse than its "
                    f"base</span> on the held-out recordings ({comparison.text()}). It is in "
                    "the model list but not made the default; detection asks before using it.")
        if comparison.verdict == UNMEASURED:
            return (f"the new model {name} is in the model list. It could not be compared "
                    "with its base (no recording was held out), so it is not made the "
                    "default; choose it to detect with it.")
        how = "better than" if comparison.verdict == BETTER else "as well as"
        return (f"the new model {name} scores {how} its base ({comparison.text()}) and is "
                "now the default.")

    def _detect_clicked(self) -> None:
        name = self.model_name
        if not name:
            return
        comparison = self.comparison
        if comparison is not None and comparison.worse and not self.confirm(
                "Detect with a weaker model?",
                f"{name} scored worse than its base on the held-out recordings "
                f"({comparison.text()}). Detect again with it anyway? (Undo brings back "
                "the proposed events of now.)"):
            return
        self.detect_requested.emit(name)

    def _fail(self, message: str) -> None:
        self.error = message
        self.status.setText(f"<span style='color:#ff6f61'>Training failed:</span> {message}")
        self.finished.emit({"event": "error", "message": message})

    def _add_validation(self, epoch: int, metrics: dict | None) -> None:
        if not metrics:
            return
        for curve, key in ((self.event_f1_curve, "event_f1"),
                           (self.segment_f1_curve, "segment_f1"),
                           (self.val_loss_curve, "loss")):
            value = metrics.get(key)
            if value is None:
                continue
            xs, ys = curve.getData()
            xs = [] if xs is None else list(xs)
            ys = [] if ys is None else list(ys)
            curve.setData([*xs, epoch], [*ys, float(value)])

    def _show_calibration(self, postprocess: dict | None) -> None:
        """Fill the per-class on / off / median table of the run's calibration."""
        labels = next((e.get("labels") for e in self.events if e.get("event") == "start"), None)
        rows = calibration_rows(postprocess, labels)
        self.calibration_table.setRowCount(len(rows))
        for r, (name, on, off, median) in enumerate(rows):
            for c, text in enumerate((name, f"{on:.2f}", f"{off:.2f}", f"{median:.2f}")):
                item = QTableWidgetItem(text)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.calibration_table.setItem(r, c, item)
        self.calibration_table.setVisible(bool(rows))
        if rows:
            report = next((e.get("report") for e in reversed(self.events)
                           if e.get("event") == "calibration" and e.get("report")), None)
            f1 = (report or {}).get("event_f1")
            score = f" (validation event F1 {f1:.3f})" if isinstance(f1, (int, float)) else ""
            self.calibration_label.setText(
                f"<b>Calibrated post-processing</b>{score}: shipped with the model, used by "
                "detection unless you change the thresholds.")
        else:
            self.calibration_label.setText(
                "" if self.result is None else "No calibrated post-processing (no recording "
                "was held out, or the run stopped before it).")

    def _set_metric_column(self, column: int, metrics: dict | None) -> None:
        for row, (key, _) in enumerate(METRIC_ROWS):
            self.metrics.set(row, column, _fmt((metrics or {}).get(key)))

    def _clear_metrics(self) -> None:
        for column in (0, 1):
            self._set_metric_column(column, None)

    def _reset(self) -> None:
        self.events = []
        self.result = None
        self.model_name = None
        self.error = None
        self.comparison = None
        self._buffer = b""
        self._stderr = []
        self._steps = []
        for curve in (self.step_curve, self.train_curve, self.val_loss_curve,
                      self.event_f1_curve, self.segment_f1_curve):
            curve.setData([], [])
        self._clear_metrics()
        self._show_calibration(None)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.use_button.setEnabled(False)
        self.detect_button.setEnabled(False)


class _MetricsGrid(QWidget):
    """Validation metrics before and after training, as a small grid of labels."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(4, 0, 4, 0)
        grid.setHorizontalSpacing(18)
        grid.setVerticalSpacing(2)
        for column, text in enumerate(("Validation", "Before", "After")):
            header = QLabel(f"<b>{text}</b>")
            grid.addWidget(header, 0, column)
        self.cells: dict[tuple[int, int], QLabel] = {}
        for row, (_, text) in enumerate(METRIC_ROWS):
            grid.addWidget(QLabel(text), row + 1, 0)
            for column in (0, 1):
                cell = QLabel("—")
                cell.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.cells[row, column] = cell
                grid.addWidget(cell, row + 1, column + 1)
        grid.setColumnStretch(3, 1)

    def set(self, row: int, column: int, text: str) -> None:
        self.cells[row, column].setText(text)

    def text(self, row: int, column: int) -> str:
        return self.cells[row, column].text()


def _add_actions(window, panel: TrainingPanel) -> None:
    from ..dialogs.finetune import open_finetune

    detection = window.panels["detection"]

    def use_model(name: str) -> None:
        detection.refresh_models()
        window.document.model = name
        window.document.status(f"Detection now uses {name}.")

    def detect_with(name: str) -> None:
        use_model(name)
        detection.run()

    def on_finished(_event: dict) -> None:
        """A new model that is not worse than its base becomes the default."""
        name, comparison = panel.model_name, panel.comparison
        if name and comparison is not None and comparison.verdict in (BETTER, SAME):
            from panns_core.hub.installed import set_default

            window.guard(set_default, name)
            detection.refresh_models()
            window.document.model = name
        else:
            detection.refresh_models()

    panel.use_model_requested.connect(use_model)
    panel.detect_requested.connect(detect_with)
    panel.finished.connect(on_finished)
    window.add_action("Models", "&Fine-tune on this project…", lambda: open_finetune(window),
                      "Ctrl+Shift+T", tip="Train a model on your corrected events")
    window.add_action("Models", "Cancel fine-tuning", panel.cancel)
    window.closed.connect(panel.shutdown)  # never leave a training process behind


PANEL = Panel("training", "Training", BOTTOM, lambda _window: TrainingPanel(), _add_actions,
              tabify_with="events_table")
