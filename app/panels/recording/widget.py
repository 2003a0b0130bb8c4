"""The record panel: pick an input, watch levels, record with pause, tag live with
hotkeys, and optionally watch live detection. Self-contained: it takes everything it
needs in its constructor, so the main window's record controller
(:mod:`app.panels.recording.controller`) or a dialog just embeds it and talks to it
through its public methods and signals.

The Qt side only pulls: a 30 Hz timer reads the recorder's level meter and ring buffer
and drains the live detector's results (Friture's pattern). Nothing here runs a model or
touches the audio callback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QKeyEvent, QKeySequence, QPainter
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from panns_core.display.mel import LiveLogMel
from panns_core.errors import PannsError
from panns_core.recording import (
    HotkeyTagger,
    Recorder,
    RecordingResult,
    list_input_devices,
    supported_rates,
)
from panns_core.recording.levels import SILENCE_DB
from panns_core.recording.writer import next_recording_path

DetectorFactory = Callable[[Recorder], Any]  # -> object with start/stop/results()/error


class LevelMeter(QWidget):
    """A horizontal meter: RMS bar, peak tick, red when clipping; -60..0 dBFS."""

    FLOOR_DB = -60.0

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.peak_db = SILENCE_DB
        self.rms_db = SILENCE_DB
        self.clipped = False
        self.setMinimumSize(160, 14)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_level(self, peak_db: float, rms_db: float, clipped: bool = False) -> None:
        self.peak_db, self.rms_db, self.clipped = peak_db, rms_db, clipped
        self.setToolTip(f"peak {peak_db:.1f} dBFS, RMS {rms_db:.1f} dBFS")
        self.update()

    def _x(self, db: float) -> float:
        frac = (max(db, self.FLOOR_DB) - self.FLOOR_DB) / -self.FLOOR_DB
        return frac * self.width()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(30, 30, 30))
        colour = QColor(220, 40, 40) if self.clipped else QColor(60, 190, 90)
        p.fillRect(QRectF(0, 0, self._x(self.rms_db), self.height()), colour)
        p.fillRect(QRectF(self._x(self.peak_db) - 1, 0, 2, self.height()), QColor(240, 240, 240))
        p.end()


class RecordPanel(QWidget):
    """Everything for recording in one widget.

    ``output_dir``: where new recordings go (``recording-YYYYmmdd-HHMMSS.wav``), or a
    callable returning the path of the next file. ``hotkeys``: key text -> label (e.g.
    the project vocabulary's hotkeys). ``detector_factory(recorder)`` builds a live
    detector (panns_core.recording.live.LiveDetector) when the user turns detection on;
    ``labels`` name its classes. ``on_finished(result)`` receives each finished
    :class:`RecordingResult` (also emitted as ``finished``), e.g. to open it in the
    project with its tags as human events. ``compact=True`` tidies the live views for a
    low dock (one time alignment, fewer tick labels, class names in a line below the
    probabilities instead of a legend).
    """

    finished = Signal(object)  # RecordingResult
    failed = Signal(str)  # a message for the user
    recording_changed = Signal(bool)  # started (True) / stopping (False, before finished)

    VIEW_SECONDS = 10.0

    def __init__(
        self,
        output_dir: str | Path | Callable[[], Path],
        *,
        hotkeys: Mapping[str, str] | None = None,
        detector_factory: DetectorFactory | None = None,
        labels: list[str] | None = None,
        on_finished: Callable[[RecordingResult], None] | None = None,
        recorder_options: Mapping[str, Any] | None = None,
        compact: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.output = output_dir
        self.hotkeys = {k.upper(): v for k, v in (hotkeys or {}).items()}
        self.detector_factory = detector_factory
        self.labels = labels
        self.recorder_options = dict(recorder_options or {})
        if on_finished is not None:
            self.finished.connect(on_finished)
        self.recorder: Recorder | None = None
        self.tagger: HotkeyTagger | None = None
        self.detector: Any = None
        self.last_result: RecordingResult | None = None
        self.stream_abandoned = False  # the last recording's device kept its stream
        self.classes_label: QLabel | None = None  # compact mode: the curves' names
        self._mel: LiveLogMel | None = None
        self._probabilities: dict[float, np.ndarray] = {}  # segment start -> probabilities
        self._segment_seconds = 0.0
        self._frame = 0
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._build()
        if compact:
            self._compact()
        self.refresh_devices()
        self.timer = QTimer(self)
        self.timer.setInterval(33)
        self.timer.timeout.connect(self._tick)

    # -- layout ----------------------------------------------------------------------------
    def _build(self) -> None:
        self.device_box = QComboBox()
        self.device_box.currentIndexChanged.connect(self._device_changed)
        self.rate_box = QComboBox()
        self.channels_box = QSpinBox()
        self.channels_box.setRange(1, 2)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh_devices)
        self.record_button = QPushButton("Record")
        self.record_button.clicked.connect(self.start_recording)
        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop_recording)
        self.detect_box = QCheckBox("Live detection")
        self.detect_box.setEnabled(self.detector_factory is not None)
        self.detect_box.toggled.connect(self._detection_toggled)
        self.time_label = QLabel("0:00.0")
        self.tags_label = QLabel("")
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.meter = LevelMeter()

        top = QHBoxLayout()
        for text, widget in (("Input", self.device_box), ("Rate", self.rate_box),
                             ("Channels", self.channels_box)):
            top.addWidget(QLabel(text))
            top.addWidget(widget)
        top.addWidget(self.refresh_button)
        controls = QHBoxLayout()
        for widget in (self.record_button, self.pause_button, self.stop_button,
                       self.time_label, self.detect_box):
            controls.addWidget(widget)
        controls.addWidget(self.meter, 1)

        self.wave_plot = pg.PlotWidget()
        self.wave_plot.setYRange(-1, 1)
        self.wave_plot.setMouseEnabled(False, False)
        self.wave_plot.setLabel("bottom", "s")
        self.wave_curve = self.wave_plot.plot(pen=pg.mkPen((80, 160, 255)))
        self.mel_plot = pg.PlotWidget()
        self.mel_plot.setMouseEnabled(False, False)
        self.mel_image = pg.ImageItem(axisOrder="row-major")
        self.mel_image.setLookupTable(pg.colormap.get("inferno").getLookupTable(nPts=256))
        self.mel_plot.addItem(self.mel_image)
        self.prob_plot = pg.PlotWidget()
        self.prob_plot.setYRange(0, 1)
        self.prob_plot.setMouseEnabled(False, False)
        self.prob_plot.addLegend(offset=(5, 5))
        self.prob_curves: dict[str, pg.PlotDataItem] = {}
        self.prob_plot.setVisible(False)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(controls)
        layout.addWidget(self.wave_plot, 1)
        layout.addWidget(self.mel_plot, 1)
        layout.addWidget(self.prob_plot, 1)
        layout.addWidget(self.tags_label)
        layout.addWidget(self.status_label)
        if self.hotkeys:
            keys = ", ".join(f"{k}: {v}" for k, v in self.hotkeys.items())
            self.tags_label.setToolTip(f"Hold or tap to tag while recording: {keys}")
        self._update_buttons()

    def _compact(self) -> None:
        for plot in (self.wave_plot, self.mel_plot, self.prob_plot):
            plot.getAxis("left").setWidth(34)
        self.wave_plot.setLabel("bottom", "")
        self.wave_plot.getAxis("left").setTicks([[(-1, "-1"), (0, "0"), (1, "1")]])
        self.mel_plot.getAxis("left").setTicks([[(0, "0"), (32, "32"), (64, "64")]])
        self.prob_plot.getAxis("left").setTicks([[(0, "0"), (0.5, ".5"), (1, "1")]])
        # A legend inside a plot this low hides the curves: name them in a line below.
        legend = self.prob_plot.plotItem.legend
        if legend is not None:
            legend.hide()
        self.classes_label = QLabel("")
        self.classes_label.setVisible(False)
        layout = self.layout()
        layout.insertWidget(layout.indexOf(self.prob_plot) + 1, self.classes_label)
        self.detect_box.toggled.connect(self.classes_label.setVisible)

    # -- devices ---------------------------------------------------------------------------
    def refresh_devices(self) -> None:
        self.device_box.blockSignals(True)
        self.device_box.clear()
        try:
            devices = list_input_devices()
        except PannsError as error:
            devices = []
            self._show_error(str(error))
        default = 0
        for i, device in enumerate(devices):
            self.device_box.addItem(f"{device.name} ({device.hostapi})", device)
            if device.is_default:
                default = i
        self.device_box.blockSignals(False)
        if devices:
            self.device_box.setCurrentIndex(default)
            self._device_changed()
        elif not self.status_label.text():
            self._show_error("No audio input device found. Connect one and press Refresh.")
        self._update_buttons()

    def select_device(self, name: str) -> None:
        for i in range(self.device_box.count()):
            if self.device_box.itemData(i).name == name:
                self.device_box.setCurrentIndex(i)
                return
        raise ValueError(f"no input device named {name!r}")

    def _device_changed(self) -> None:
        device = self.device_box.currentData()
        if device is None:
            return
        self.channels_box.setRange(1, max(1, min(device.max_channels, 8)))
        current = self.rate_box.currentData()
        self.rate_box.clear()
        try:
            rates = supported_rates(device)
        except PannsError:
            rates = []
        for rate in rates or [int(device.default_rate)]:
            self.rate_box.addItem(f"{rate} Hz", rate)
        wanted = current or 32000
        index = self.rate_box.findData(wanted)
        self.rate_box.setCurrentIndex(index if index >= 0 else self.rate_box.count() - 1)

    # -- recording -------------------------------------------------------------------------
    @property
    def is_recording(self) -> bool:
        return self.recorder is not None

    def _next_path(self) -> Path:
        if callable(self.output):
            return Path(self.output())
        return next_recording_path(self.output)

    def start_recording(self) -> bool:
        """Start a new recording with the chosen input; False (message shown) on failure."""
        if self.recorder is not None:
            return False
        device = self.device_box.currentData()
        rate = self.rate_box.currentData()
        if device is None or rate is None:
            self._show_error("Choose an input device first (press Refresh if it is missing).")
            return False
        recorder = Recorder(
            self._next_path(),
            device=device.index,
            sample_rate=int(rate),
            channels=self.channels_box.value(),
            ring_seconds=max(self.VIEW_SECONDS, 12.0),
            **self.recorder_options,
        )
        try:
            recorder.start()
        except PannsError as error:
            self._show_error(str(error))
            return False
        self.recorder = recorder
        self.tagger = HotkeyTagger(recorder)
        self._mel = LiveLogMel(recorder.sample_rate)
        self._probabilities.clear()
        self.status_label.setText(f"Recording to {recorder.work_path}")
        self.status_label.setStyleSheet("")
        self.timer.start()
        if self.detect_box.isChecked():
            self._start_detection()
        self._update_buttons()
        self.setFocus()
        self.recording_changed.emit(True)
        return True

    def toggle_pause(self) -> None:
        if self.recorder is None:
            return
        if self.recorder.state.value == "paused":
            self.recorder.resume()
        else:
            self.recorder.pause()
        self._update_buttons()

    def stop_recording(self) -> RecordingResult | None:
        """Stop, close the file and emit ``finished`` with the result."""
        if self.recorder is None:
            return None
        self.recording_changed.emit(False)  # before `finished` reaches a project
        recorder, self.recorder = self.recorder, None
        self._stop_detection()
        self.timer.stop()
        # A device that stopped delivering may not let go of its stream: do not freeze.
        result = recorder.stop(close_timeout=0.5 if recorder.failed else 2.0)
        self.tagger = None
        self.last_result = result
        self.stream_abandoned = recorder.stream_abandoned
        self._tick_views(recorder)  # final picture
        if result.error:
            self._show_error(result.error)
        else:
            msg = f"Saved {result.duration:.1f} s to {result.path}"
            if result.overflows:
                msg += f" ({result.overflows} input overflow(s): some audio was dropped)"
            self.status_label.setText(msg)
        self._update_buttons()
        self.tags_label.setText(f"{len(result.tags)} tag(s)")
        self.finished.emit(result)
        return result

    def _show_error(self, message: str) -> None:
        self.status_label.setText(message)
        self.status_label.setStyleSheet("color: #d33;")
        self.failed.emit(message)

    def _update_buttons(self) -> None:
        recording = self.recorder is not None
        has_device = self.device_box.count() > 0
        self.record_button.setEnabled(not recording and has_device)
        self.pause_button.setEnabled(recording)
        self.stop_button.setEnabled(recording)
        for widget in (self.device_box, self.rate_box, self.channels_box, self.refresh_button):
            widget.setEnabled(not recording)
        paused = recording and self.recorder.state.value == "paused"
        self.pause_button.setText("Resume" if paused else "Pause")

    # -- hotkeys ---------------------------------------------------------------------------
    def _label_for(self, event: QKeyEvent) -> str | None:
        text = QKeySequence(event.key()).toString().upper()
        return self.hotkeys.get(text)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt API
        label = self._label_for(event)
        if label is None or self.tagger is None:
            super().keyPressEvent(event)
            return
        if not event.isAutoRepeat():
            self.tagger.press(label)
        event.accept()

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt API
        label = self._label_for(event)
        if label is None or self.tagger is None:
            super().keyReleaseEvent(event)
            return
        if not event.isAutoRepeat():
            self.tagger.release(label)
        event.accept()

    # -- live detection --------------------------------------------------------------------
    def _detection_toggled(self, on: bool) -> None:
        self.prob_plot.setVisible(on)
        if self.recorder is None:
            return
        if on:
            self._start_detection()
        else:
            self._stop_detection()

    def _start_detection(self) -> None:
        if self.detector_factory is None or self.recorder is None or self.detector is not None:
            return
        try:
            self.detector = self.detector_factory(self.recorder)
            self.detector.start()
        except (PannsError, ValueError) as error:
            self.detector = None
            self._show_error(f"Live detection is unavailable: {error}")
            self.detect_box.setChecked(False)

    def _stop_detection(self) -> None:
        detector, self.detector = self.detector, None
        if detector is not None:
            detector.stop()

    # -- the 30 Hz pull --------------------------------------------------------------------
    def _tick(self) -> None:
        recorder = self.recorder
        if recorder is None:
            return
        level = recorder.level()
        if level.peak_db > SILENCE_DB or level.rms_db > SILENCE_DB:
            self.meter.set_level(level.peak_db, level.rms_db, level.clipped)
        seconds = recorder.seconds
        self.time_label.setText(f"{int(seconds // 60)}:{seconds % 60:04.1f}")
        running = sorted(recorder.open_tags)
        self.tags_label.setText("Tagging: " + ", ".join(running) if running else "")
        if recorder.overflows:
            self.status_label.setText(
                f"Recording to {recorder.work_path} - {recorder.overflows} input overflow(s)"
            )
        self._drain_detector()
        self._frame += 1
        self._tick_views(recorder, mel=self._frame % 3 == 0)
        if recorder.failed:
            self.stop_recording()  # keeps the file; the message says what happened

    def _tick_views(self, recorder: Recorder, mel: bool = True) -> None:
        if not self.isVisible() and self.last_result is None:
            return
        rate = recorder.sample_rate
        frames, start = recorder.ring.latest(int(self.VIEW_SECONDS * rate))
        if not len(frames):
            return
        mono = frames.mean(axis=1)
        t0 = start / rate
        step = max(1, len(mono) // 2000)
        n = len(mono) // step * step
        if n:
            blocks = mono[:n].reshape(-1, step)
            lo, hi = blocks.min(axis=1), blocks.max(axis=1)
            env = np.empty(2 * len(lo), np.float32)
            env[0::2], env[1::2] = lo, hi
            times = t0 + np.repeat(np.arange(len(lo)) * step, 2) / rate
            self.wave_curve.setData(times, env)
        if mel and self._mel is not None:
            spec = self._mel(mono)
            if len(spec):
                self.mel_image.setImage(spec.T, autoLevels=False, levels=(-100, 0))
                hop = self._mel.hop / rate
                self.mel_image.setRect(QRectF(t0, 0, len(spec) * hop, spec.shape[1]))
        end = (start + len(frames)) / rate
        for plot in (self.wave_plot, self.mel_plot, self.prob_plot):
            plot.setXRange(max(0.0, end - self.VIEW_SECONDS), max(end, self.VIEW_SECONDS),
                           padding=0)

    def _drain_detector(self) -> None:
        detector = self.detector
        if detector is None:
            return
        labels = getattr(detector, "labels", None)  # a detector may name its classes late
        if labels and labels is not self.labels:
            self.labels = labels
        if getattr(detector, "error", None) is not None:
            self._show_error(f"Live detection stopped: {detector.error}")
            self._stop_detection()
            self.detect_box.setChecked(False)
            return
        results = detector.results()
        if not results:
            return
        for scores in results:
            self._segment_seconds = scores.segment_seconds
            for k, row in enumerate(scores.probabilities):
                self._probabilities[round(scores.start + k * scores.segment_seconds, 6)] = row
        horizon = max(self._probabilities) - self.VIEW_SECONDS
        for key in [k for k in self._probabilities if k < horizon]:
            del self._probabilities[key]
        self._draw_probabilities()

    def _draw_probabilities(self, top: int = 5) -> None:
        times = np.array(sorted(self._probabilities))
        probs = np.stack([self._probabilities[t] for t in times])
        best = np.argsort(probs.max(axis=0))[::-1][:top]
        names = [self.labels[i] if self.labels and i < len(self.labels) else f"class {i}"
                 for i in best]
        for name in list(self.prob_curves):
            if name not in names:
                self.prob_plot.removeItem(self.prob_curves.pop(name))
        for rank, (i, name) in enumerate(zip(best, names)):
            curve = self.prob_curves.get(name)
            if curve is None:
                curve = self.prob_plot.plot(pen=pg.mkPen(pg.intColor(rank, top)), name=name)
                self.prob_curves[name] = curve
            curve.setData(times + self._segment_seconds / 2, probs[:, i])
        if self.classes_label is not None:
            self.classes_label.setText("  ".join(
                f"<span style='color:{curve.opts['pen'].color().name()}'>━</span> {name}"
                for name, curve in self.prob_curves.items()))

    @property
    def live_probabilities(self) -> dict[float, np.ndarray]:
        """Segment start (recording seconds) -> class probabilities, for the last view."""
        return dict(self._probabilities)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self.recorder is not None:
            self.stop_recording()
        super().closeEvent(event)
