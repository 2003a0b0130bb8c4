"""Detection panel: model choice, run / run-all with progress and cancel, and the
post-processing controls that re-derive events live from the cached scores.

Detection runs in a worker: the checkpoint is loaded there (torch is imported there,
never on the Qt thread at start-up), windows of about 10 s are scored one after the
other and each chunk's probabilities go to the document at once, so the views fill in
while it runs. Moving a control re-derives the proposed events from the scores
already computed (no model run); consecutive changes fold into one undo step.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from panns_core.labels import split_label_list

from ..model import Document
from ..workers import Worker, while_alive
from . import RIGHT, Panel

log = logging.getLogger(__name__)



def list_model_names() -> tuple[list[str], str | None]:
    """(installed model names, default name) from the registry; cheap (no torch)."""
    from panns_core.hub.installed import get_registry

    registry = get_registry()
    names = [record.name for record in registry.list_models()]
    try:
        default = registry.default_name()
    except Exception:  # a broken registry entry must not break the menu
        default = None
    return names, default


#: windows the window asks for: short, so results stream in and a run can stop halfway
BODY_SECONDS = 10.24
_MODEL_CACHE: dict = {}


def load_model(spec: str | None):
    """The :class:`Detector` for a registry name/path (cached; runs on a worker)."""
    from panns_core.hub.resolve import load_detector

    key = spec or "<default>"
    detector = _MODEL_CACHE.get(key)
    if detector is None:
        detector = load_detector(spec)
        _MODEL_CACHE.clear()
        _MODEL_CACHE[key] = detector
    return detector


def model_calibration(spec: str | None):
    """The calibrated post-processing the checkpoint of ``spec`` carries (None: none);
    reads only the file's metadata (runs on a worker)."""
    from panns_core.hub.checkpoints import load_checkpoint
    from panns_core.hub.detector import calibrated_postprocess
    from panns_core.hub.resolve import resolve_checkpoint_path

    key = spec or "<default>"
    if key in _MODEL_CACHE:
        return _MODEL_CACHE[key].postprocess
    return calibrated_postprocess(load_checkpoint(resolve_checkpoint_path(spec),
                                                  mmap=True).metadata)


def engine_text(engine) -> str:
    """What runs, for the status bar: "onnxruntime, int8", with the engine's note (why the
    fast path runs exact) where it has one."""
    text = f"{engine.name}, {engine.precision}"
    note = getattr(engine, "note", "")
    return f"{text}: {note}" if note else text


def detection_job(jobs: list[tuple], spec: str | None, fast: bool = False,
                  cancel=None):
    """Yield ("model", None, the model's calibrated params or None) once the model is
    loaded, ("engine", None, what runs: :func:`engine_text`) once the engine is chosen,
    then ("chunk", rec_id, partial Scores) while scoring, ("done", rec_id, Scores).
    A job is (rec_id, path) or (rec_id, path, channel): one channel of a multichannel
    file (its scores' audio hash says which, :func:`panns_core.detection.scores.channel_hash`)."""
    from panns_core.audio.hashing import file_sha256
    from panns_core.detection.engines import select_engine
    from panns_core.detection.inference import ScoreAssembly, iter_detect
    from panns_core.detection.scores import channel_hash

    detector = load_model(spec)
    yield ("model", None, detector.postprocess)
    # the engine the command line would choose; its precision and the audio hash key the
    # score cache (app.model.detection)
    engine = select_engine(detector, fast=fast)
    precision = engine.precision
    yield ("engine", None, engine_text(engine))
    for job in jobs:
        rec_id, path = job[:2]
        channel = job[2] if len(job) > 2 else None
        assembly = ScoreAssembly(detector)
        for chunk in iter_detect(path, detector, engine=engine, body_seconds=BODY_SECONDS,
                                 channel=channel, cancel=cancel):
            assembly.add(chunk)
            if chunk.is_last:
                audio_hash = channel_hash(file_sha256(path), channel)
                yield ("done", rec_id, assembly.scores(audio_hash=audio_hash,
                                                       precision=precision))
            else:
                yield ("chunk", rec_id, assembly.scores(), chunk.fraction)


class DetectionPanel(QWidget):
    """The dock widget; ``run()`` / ``run_all()`` / ``cancel()`` drive it from menus too."""

    started = Signal()
    finished = Signal()
    failed = Signal(object)
    manage_models = Signal()

    def __init__(self, document: Document, parent=None) -> None:
        super().__init__(parent)
        self.document = document
        self.worker: Worker | None = None
        self.worker_spec: str | None = None
        self._jobs_total = 0
        self._jobs_done = 0
        self._rederive_timer = QTimer(self)
        self._rederive_timer.setSingleShot(True)
        self._rederive_timer.setInterval(250)
        self._rederive_timer.timeout.connect(self._rederive)
        self._rederive_after_run = False  # a re-derivation was skipped while a run went on

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)

        model_box = QGroupBox("Model")
        model_layout = QVBoxLayout(model_box)
        row = QHBoxLayout()
        self.model_combo = QComboBox()
        self.model_combo.setToolTip("Installed models (Models ▸ Model manager to add more)")
        self.model_combo.currentIndexChanged.connect(self._on_model_chosen)
        manage = QPushButton("Manage…")
        manage.clicked.connect(self.manage_models.emit)
        row.addWidget(self.model_combo, 1)
        row.addWidget(manage)
        model_layout.addLayout(row)
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Detect")
        self.run_button.setToolTip("Run detection on the current recording (Ctrl+D)")
        self.run_button.clicked.connect(self.run)
        self.run_all_button = QPushButton("Detect all")
        self.run_all_button.setToolTip("Run detection on every recording of the project")
        self.run_all_button.clicked.connect(self.run_all)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        for button in (self.run_button, self.run_all_button, self.cancel_button):
            buttons.addWidget(button)
        model_layout.addLayout(buttons)
        self.fast_check = QCheckBox("Fast (reduced precision where it is faster here)")
        self.fast_check.setToolTip(
            "Reduced precision where it measures faster than the exact run here and keeps "
            "the model's events on check audio: int8 (ONNX Runtime) or bf16 on CPUs, fp16 "
            "on GPUs. Measured once per model (its first fast run takes seconds longer), then "
            "cached; otherwise the exact run. The status bar says which runs."
        )  # fmt: skip
        model_layout.addWidget(self.fast_check)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("idle")
        self.progress.setValue(0)
        model_layout.addWidget(self.progress)
        layout.addWidget(model_box)

        params_box = QGroupBox("Events from scores")
        form = QFormLayout(params_box)
        params = document.params
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(1, 99)
        self.threshold_slider.setValue(round(params.threshold * 100))
        self.threshold_spin = _spin(0.01, 0.99, 0.01, params.threshold, 2)
        trow = QHBoxLayout()
        trow.addWidget(self.threshold_slider, 1)
        trow.addWidget(self.threshold_spin)
        form.addRow("Threshold", trow)
        off = params.off_threshold if params.off_threshold is not None else params.threshold
        self.off_spin = _spin(0.01, 0.99, 0.01, off, 2)
        self.off_spin.setToolTip("Hysteresis: an event ends when the probability drops below this")
        form.addRow("Off threshold", self.off_spin)
        self.median_spin = _spin(0.0, 5.0, 0.32, params.median_seconds, 2, " s")
        form.addRow("Median filter", self.median_spin)
        self.min_duration_spin = _spin(0.0, 10.0, 0.1, params.min_duration, 2, " s")
        form.addRow("Min duration", self.min_duration_spin)
        self.merge_spin = _spin(0.0, 10.0, 0.1, params.merge_gap, 2, " s")
        form.addRow("Merge gaps <", self.merge_spin)
        self.top_k_spin = QSpinBox()
        self.top_k_spin.setRange(0, 527)
        self.top_k_spin.setSpecialValueText("all classes")
        self.top_k_spin.setValue(params.top_k or 0)
        self.top_k_spin.setToolTip("Look for events only in the k classes with the highest peaks")
        form.addRow("Top classes", self.top_k_spin)
        self.classes_edit = QLineEdit()
        self.classes_edit.setPlaceholderText("all (or: Dog, Bird, Speech)")
        self.classes_edit.setToolTip(
            'Only these classes, comma separated; class names with commas ("Cattle, '
            'bovinae") are recognised, or put a name in double quotes')
        form.addRow("Class filter", self.classes_edit)
        calibration = QHBoxLayout()
        self.params_source = QLabel("")
        self.params_source.setWordWrap(True)
        self.use_model_button = QPushButton("Use the model's")
        self.use_model_button.setToolTip(
            "Back to the post-processing calibrated for the chosen model (its thresholds "
            "per class and median, fitted on its validation recordings when it was trained)")
        self.use_model_button.clicked.connect(self.use_model_params)
        calibration.addWidget(self.params_source, 1)
        calibration.addWidget(self.use_model_button)
        form.addRow(calibration)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        form.addRow(self.summary)
        layout.addWidget(params_box)
        legend_box = QGroupBox("Event styles")
        legend_layout = QVBoxLayout(legend_box)
        legend_layout.addWidget(ProvenanceLegend())
        layout.addWidget(legend_box)
        layout.addStretch(1)

        self.threshold_slider.valueChanged.connect(
            lambda v: self.threshold_spin.setValue(v / 100.0))
        self.threshold_spin.valueChanged.connect(self._on_threshold_spin)
        for widget in (self.off_spin, self.median_spin, self.min_duration_spin, self.merge_spin):
            widget.valueChanged.connect(self._controls_changed)
        self.top_k_spin.valueChanged.connect(self._controls_changed)
        self.classes_edit.editingFinished.connect(self._controls_changed)
        document.detection.events.params.connect(self._on_params)
        document.detection.events.model.connect(self._on_model)
        document.events.recording.connect(self._update_buttons)
        document.events.recordings.connect(self._update_buttons)
        document.events.annotations.connect(lambda _e: self._update_summary())
        self._calibration_worker: Worker | None = None
        self.refresh_models()
        self._update_buttons()
        self._update_params_source()

    # ------------------------------------------------------------------- models
    def refresh_models(self) -> None:
        try:
            names, default = list_model_names()
        except Exception as error:
            names, default = [], None
            log.debug("listing models failed: %s", error)
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        if not names:
            self.model_combo.addItem("No model installed", None)
        for name in names:
            text = f"{name}  (default)" if name == default else name
            self.model_combo.addItem(text, name)
        current = self.document.model or default
        index = self.model_combo.findData(current)
        self.model_combo.setCurrentIndex(max(0, index))
        self.model_combo.blockSignals(False)
        if self.document.model is None and names:
            self.document.model = self.model_combo.currentData()
        self._update_buttons()

    def _on_model_chosen(self, index: int) -> None:
        self.document.model = self.model_combo.itemData(index)

    def _on_model(self, event) -> None:
        index = self.model_combo.findData(event.value)
        if index >= 0 and index != self.model_combo.currentIndex():
            self.model_combo.blockSignals(True)
            self.model_combo.setCurrentIndex(index)
            self.model_combo.blockSignals(False)
        self.read_model_calibration()
        self._update_params_source()

    # ------------------------------------------------- the model's calibration
    def read_model_calibration(self) -> None:
        """Learn (on a worker) whether the chosen model carries calibrated params; they
        become the document's unless the user set the params by hand."""
        spec = self.document.model
        if spec is None and self.model_combo.currentData() is None:
            return  # no model installed
        worker = Worker(model_calibration, spec)
        worker.returned.connect(
            while_alive(self, lambda panel, params: panel._model_params_known(spec, params))
        )
        worker.errored.connect(lambda error: log.debug("calibration not read: %s", error))
        worker.finished.connect(self._calibration_done)
        self._calibration_worker = worker
        worker.start()

    def _calibration_done(self) -> None:
        self._calibration_worker = None

    def _model_params_known(self, spec, params) -> None:
        self.document.detection.adopt_model_params(spec, params)
        self._update_params_source()

    def use_model_params(self) -> None:
        self.document.detection.use_model_params()
        self._update_params_source()

    def _update_params_source(self) -> None:
        detection = self.document.detection
        model = detection.model_params
        self.use_model_button.setVisible(model is not None and not detection.params_are_models)
        if model is None:
            self.params_source.setText("")
            self.params_source.setToolTip("")
            self.params_source.setVisible(False)
            return
        self.params_source.setVisible(True)
        self.params_source.setToolTip(calibration_table(model))
        if detection.params_are_models:
            self.params_source.setText(f"The model's calibrated post-processing: "
                                       f"{describe_calibration(model)}")  # fmt: skip
        else:
            self.params_source.setText("Set by hand for this project (the model has "
                                       "calibrated values).")  # fmt: skip

    # -------------------------------------------------------------------- runs
    @property
    def running(self) -> bool:
        return self.worker is not None

    def _update_buttons(self, *_args) -> None:
        has_model = self.model_combo.currentData() is not None
        busy = self.running
        self.run_button.setEnabled(has_model and not busy and self.document.recording is not None)
        self.run_all_button.setEnabled(has_model and not busy and bool(self.document.recordings))
        self.cancel_button.setEnabled(busy)

    def run(self) -> None:
        rec = self.document.recording
        if rec is not None:
            self._start([self._job(rec)])

    def run_all(self) -> None:
        self._start([self._job(r) for r in self.document.recordings])

    def _job(self, rec) -> tuple:
        """(rec_id, path, channel): the document's channel where the file has it."""
        channel = self.document.channel
        if channel is not None and channel >= rec.channels:
            channel = None
        return (rec.id, str(rec.path), channel)

    def _start(self, jobs: list[tuple[int, str]]) -> None:
        if self.running or not jobs:
            return
        spec = self.document.model
        self.worker_spec = spec
        self._jobs_total = len(jobs)
        self._jobs_done = 0
        self.worker = Worker(detection_job, jobs, spec, self.fast_check.isChecked())
        self.worker.yielded.connect(self._on_yield)
        self.worker.errored.connect(self._on_error)
        self.worker.aborted.connect(self._on_aborted)
        self.worker.finished.connect(self._on_finished)
        self.progress.setValue(0)
        self.progress.setFormat("loading model…")
        self.worker.start()
        self._update_buttons()
        self.started.emit()
        self.document.status(f"Detecting with {spec or 'the default model'}…")

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.progress.setFormat("cancelling…")

    def _on_yield(self, item) -> None:
        if self.worker is None or self.worker.is_cancelled:
            return  # results queued before the cancel took effect are dropped
        kind, rec_id = item[0], item[1]
        scores = item[2]
        doc = self.document
        if kind == "model":  # the model is loaded: what it carries is known
            self._model_params_known(self.worker_spec, scores)
            # exporting a new model's graph, or timing and checking the fast candidates,
            # takes seconds once
            self.progress.setFormat("preparing the engine…")
            return
        if kind == "engine":  # chosen (for the fast path: measured and checked once)
            doc.status(f"Detecting with {self.worker_spec or 'the default model'} "
                       f"({scores})…")  # fmt: skip
            return
        if kind == "chunk":
            fraction = (self._jobs_done + item[3]) / self._jobs_total
            self._set_progress(fraction)
            if rec_id in {r.id for r in doc.recordings}:
                doc.set_scores(scores, partial=True, recording_id=rec_id)
            return
        self._jobs_done += 1
        self._set_progress(self._jobs_done / self._jobs_total)
        if rec_id not in {r.id for r in doc.recordings}:
            # taken out of the project while the run went on: its results go nowhere
            doc.status("A recording was removed while detection ran; its results were "
                       "dropped.")
            return
        doc.set_scores(scores, partial=False, recording_id=rec_id)
        doc.save_scores(rec_id, scores)
        events = _derive(scores, doc.params, rec_id, doc)
        doc.apply_detection_to(rec_id, events)
        self._update_summary()

    def _set_progress(self, fraction: float) -> None:
        self.progress.setValue(round(fraction * 1000))
        extra = f" ({self._jobs_done}/{self._jobs_total} files)" if self._jobs_total > 1 else ""
        self.progress.setFormat(f"{fraction * 100:.0f} %{extra}")

    def _on_error(self, error) -> None:
        self.progress.setFormat("failed")
        self.failed.emit(error)

    def _on_aborted(self) -> None:
        self.progress.setFormat("cancelled")
        doc = self.document
        if doc.scores_partial:  # drop the half-drawn scores of the cancelled run
            previous = doc.finished_scores(doc.recording.id) if doc.recording else None
            doc.set_scores(previous, partial=False)
        doc.status("Detection cancelled; the events of finished recordings are kept.")

    def _on_finished(self) -> None:
        done = self.progress.format() not in ("cancelled", "failed")
        self.worker = None
        if done:
            self.progress.setFormat("done")
            self.progress.setValue(1000)
            self.document.status("Detection finished.")
        self._update_buttons()
        if self._rederive_after_run or self._rederive_timer.isActive():
            # params changed while the run went on (e.g. the model's calibrated ones):
            # the current recording's events follow them now, as one step after the run's
            self._rederive_after_run = False
            self._rederive_timer.stop()
            self._rederive()
        self.finished.emit()

    # ------------------------------------------------------------------ params
    def _on_threshold_spin(self, value: float) -> None:
        self.threshold_slider.blockSignals(True)
        self.threshold_slider.setValue(round(value * 100))
        self.threshold_slider.blockSignals(False)
        if self.off_spin.value() > value:
            self.off_spin.blockSignals(True)
            self.off_spin.setValue(value)
            self.off_spin.blockSignals(False)
        self._controls_changed()

    def _controls_changed(self, *_args) -> None:
        """The user changed a control: the params become "set by hand". A threshold
        moved means one threshold for all classes (calibrated per-class values go), a
        median moved one median for all."""
        from dataclasses import replace

        params = self.document.params
        classes = split_label_list(self.classes_edit.text(), self._known_labels()) or None
        threshold = self.threshold_spin.value()
        off = min(self.off_spin.value(), threshold)
        shown_off = params.off_threshold if params.off_threshold is not None else params.threshold
        changes: dict = dict(
            median_seconds=self.median_spin.value(),
            min_duration=self.min_duration_spin.value(),
            merge_gap=self.merge_spin.value(),
            top_k=self.top_k_spin.value() or None,
            classes=classes,
        )
        if abs(threshold - params.threshold) > 1e-9:
            changes.update(threshold=threshold, class_thresholds={}, class_off_thresholds={})
        if abs(off - shown_off) > 1e-9 or "threshold" in changes:
            changes["off_threshold"] = off
            if abs(off - shown_off) > 1e-9:
                changes["class_off_thresholds"] = {}
        if abs(changes["median_seconds"] - params.median_seconds) > 1e-9:
            changes["class_median_seconds"] = {}
        if replace(params, **changes) != params:
            self.document.detection.set_params_by_hand(**changes)

    def _known_labels(self) -> list[str]:
        """Names the class filter can mean: the scores' classes and the vocabulary."""
        doc = self.document
        known = list(doc.scores.labels) if doc.scores is not None else []
        if doc.store is not None:
            known += [entry.name for entry in doc.store.labels()]
        return known

    def _on_params(self, event) -> None:
        params = event.value
        for widget, value in (
            (self.threshold_spin, params.threshold),
            (self.off_spin, params.off_threshold if params.off_threshold is not None
             else params.threshold),
            (self.median_spin, params.median_seconds),
            (self.min_duration_spin, params.min_duration),
            (self.merge_spin, params.merge_gap),
        ):
            if abs(widget.value() - value) > 1e-9:
                widget.blockSignals(True)
                widget.setValue(value)
                widget.blockSignals(False)
        self.threshold_slider.blockSignals(True)
        self.threshold_slider.setValue(round(params.threshold * 100))
        self.threshold_slider.blockSignals(False)
        if self.top_k_spin.value() != (params.top_k or 0):
            self.top_k_spin.blockSignals(True)
            self.top_k_spin.setValue(params.top_k or 0)
            self.top_k_spin.blockSignals(False)
        classes = ", ".join(params.classes or ())
        if self.classes_edit.text().strip() != classes:
            self.classes_edit.setText(classes)
        if self.document.scores is not None and not self.document.scores_partial:
            self._rederive_timer.start()
        self._update_params_source()

    def _rederive(self) -> None:
        doc = self.document
        if self.running:
            self._rederive_after_run = True  # the run's end applies it (_on_finished)
            return
        if doc.scores is None or doc.recording is None:
            return
        try:
            n = doc.rederive_events()
        except Exception as error:
            self.failed.emit(error)
            return
        self._update_summary(n)

    def flush(self) -> None:
        """Apply a pending re-derivation now (tests, before closing)."""
        if self._rederive_timer.isActive():
            self._rederive_timer.stop()
            self._rederive()

    def _update_summary(self, n: int | None = None) -> None:
        counts = self.document.annotations["status"].value_counts().to_dict()
        parts = [f"{v} {k}" for k, v in sorted(counts.items())]
        self.summary.setText("Events: " + (", ".join(parts) if parts else "none"))

    def shutdown(self) -> None:
        self._rederive_timer.stop()
        self._rederive_after_run = False  # a run cancelled by the close changes nothing
        if self.worker is not None:
            self.worker.cancel()
        if self._calibration_worker is not None:
            self._calibration_worker.cancel()


class ProvenanceLegend(QWidget):
    """The five event styles of the events track, drawn the same way, with their names."""

    ROW = 22

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        from ..views import theme

        self._theme = theme
        self.setMinimumHeight(self.ROW * len(theme.STATUS_STYLE) + 4)

    def paintEvent(self, event) -> None:  # noqa: N802
        from PySide6.QtCore import QRectF
        from PySide6.QtGui import QBrush, QColor, QPainter, QPen

        theme = self._theme
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        base = QColor(theme.PALETTE[0])
        for i, (status, style) in enumerate(theme.STATUS_STYLE.items()):
            alpha, pen_style, pen_width, pattern, marker = style
            colour = theme.REJECTED_COLOR if status == "rejected" else base
            fill = QColor(colour)
            fill.setAlpha(alpha)
            rect = QRectF(4, 3 + i * self.ROW, 54, self.ROW - 6)
            painter.setBrush(QBrush(fill, pattern))
            pen = QPen(colour.lighter(130), pen_width)
            pen.setStyle(pen_style)
            painter.setPen(pen)
            painter.drawRoundedRect(rect, 3, 3)
            painter.setPen(self.palette().windowText().color())
            painter.drawText(QRectF(66, rect.top(), self.width() - 70, rect.height()),
                             Qt.AlignmentFlag.AlignVCenter,
                             f"{marker}  {theme.STATUS_TEXT[status]}")
        painter.end()


def describe_calibration(params) -> str:
    """A short line: the range of the per-class thresholds and medians."""

    def span(values, unit=""):
        low, high = min(values), max(values)
        return f"{low:g}{unit}" if abs(high - low) < 1e-9 else f"{low:g}–{high:g}{unit}"

    ons = [params.threshold, *params.class_thresholds.values()]
    medians = [params.median_seconds, *params.class_median_seconds.values()]
    text = f"threshold {span(ons)}"
    if params.class_thresholds:
        text += f" ({len(params.class_thresholds)} classes their own)"
    text += ", no median" if max(medians) == 0 else f", median {span(medians, ' s')}"
    return text + " (hover for the table)."


def calibration_table(params) -> str:
    """Per class on / off / median of calibrated params (HTML, for a tooltip)."""
    labels = sorted({*params.class_thresholds, *params.class_off_thresholds,
                     *params.class_median_seconds})  # fmt: skip
    rows = "".join(
        f"<tr><td>{label}</td><td>{params.on_threshold(label):.2f}</td>"
        f"<td>{params.off_threshold_for(label):.2f}</td><td>{params.median_for(label):.2f}</td></tr>"
        for label in labels
    )
    off = params.off_threshold if params.off_threshold is not None else params.threshold
    rows += (f"<tr><td><i>other classes</i></td><td>{params.threshold:.2f}</td>"
             f"<td>{min(off, params.threshold):.2f}</td><td>{params.median_seconds:.2f}</td></tr>")
    return ("<b>Calibrated on the model's validation recordings</b><table>"
            "<tr><th align=left>class</th><th>on</th><th>off</th><th>median s</th></tr>"
            f"{rows}</table>")


def _derive(scores, params, rec_id, doc):
    from panns_core.detection.postprocess import scores_to_events

    from ..model.detection import params_for

    path = next((str(r.path) for r in doc.recordings if r.id == rec_id), "")
    return scores_to_events(scores, params_for(scores, params), recording=path)


def _spin(low, high, step, value, decimals, suffix=""):
    spin = QDoubleSpinBox()
    spin.setRange(low, high)
    spin.setSingleStep(step)
    spin.setDecimals(decimals)
    spin.setValue(value)
    if suffix:
        spin.setSuffix(suffix)
    spin.setKeyboardTracking(False)
    return spin


def _create(window) -> DetectionPanel:
    panel = DetectionPanel(window.document)
    panel.failed.connect(window.show_error)
    panel.manage_models.connect(window.open_model_manager)
    return panel


PANEL = Panel("detection", "Detection", RIGHT, _create, view_toggle=False, width=300)
