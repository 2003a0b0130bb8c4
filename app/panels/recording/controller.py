"""Recording inside the annotator window: File ▸ Record (Ctrl+Shift+R) starts and stops.

The :class:`~app.record_panel.RecordPanel` lives in a "Record" dock, built the first
time it is shown (so PortAudio is not touched at start-up). New files go to a
``recordings/`` folder next to the project file (``data_dir()/recordings`` for an
unsaved project). While recording, the vocabulary's hotkeys tag window-wide (they win
over the window's own keys, e.g. 1-9 or A/R, until the recording stops); live detection
uses the window's current model with the fast path, loaded off the Qt thread. When a
recording ends, also after a device error or a full disk, whatever reached the disk is
added to the project and shown, and its tags become human events in one undo step.
Closing the window stops the recording first and keeps the file.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from panns_core import events as ev
from panns_core.errors import PannsError
from panns_core.recording.writer import next_recording_path

from .. import settings
from ..record_panel import RecordPanel

SHORTCUT = "Ctrl+Shift+R"
FOLDER = "recordings"
_TEXT_INPUTS = (QLineEdit, QTextEdit, QPlainTextEdit, QAbstractSpinBox)


# ------------------------------------------------------------------------ plain helpers
def recordings_folder(document) -> Path:
    """``recordings/`` beside the project file, or in the app's data dir when unsaved."""
    if document.project_path is not None:
        return Path(document.project_path).parent / FOLDER
    from panns_core.paths import data_dir

    return data_dir() / FOLDER


def vocabulary_hotkeys(document) -> dict[str, str]:
    """Hotkey text -> label name, from the project vocabulary."""
    return {entry.hotkey: entry.name for entry in document.vocabulary() if entry.hotkey}


def tag_records(tags, recording_id: int) -> list[dict[str, Any]]:
    """A recording's live tags as rows for :class:`panns_core.annotations.store.AddEvents`."""
    return [
        {"recording_id": int(recording_id), "onset": float(row.onset),
         "offset": float(row.offset), "label": str(row.label),
         "source": ev.HUMAN, "status": ev.ADDED}
        for row in tags.itertuples(index=False)
    ]


# ------------------------------------------------------------------------ live model
_PREDICTORS: dict[tuple[str, int], Any] = {}
_PREDICTOR_LOCK = threading.Lock()


def live_predictor(spec: str | None):
    """A fast-path SegmentPredictor for a model spec (cached: int8 calibration is slow)."""
    from panns_core.recording.live import SegmentPredictor

    from .detection import load_model

    detector = load_model(spec)  # the detection panel's cache: one copy per model
    key = (spec or "<default>", id(detector))
    with _PREDICTOR_LOCK:
        predictor = _PREDICTORS.get(key)
        if predictor is None:
            predictor = SegmentPredictor(detector, fast=True)
            _PREDICTORS.clear()
            _PREDICTORS[key] = predictor
    return predictor


class ModelLiveDetector:
    """A LiveDetector for the window's model whose model is loaded on its own thread.

    Same face as :class:`panns_core.recording.live.LiveDetector` for the panel
    (start/stop/results()/error); ``labels`` are the model's once it is loaded.
    """

    def __init__(self, recorder, spec: str | None) -> None:
        self.recorder = recorder
        self.spec = spec
        self.labels: list[str] | None = None
        self.precision: str | None = None
        self.detector = None
        self._error: BaseException | None = None
        self._stopped = False
        self._lock = threading.Lock()
        self._loader: threading.Thread | None = None

    @property
    def error(self) -> BaseException | None:
        if self._error is not None:
            return self._error
        return None if self.detector is None else self.detector.error

    def start(self) -> None:
        self._loader = threading.Thread(target=self._load, name="live-model", daemon=True)
        self._loader.start()

    def _load(self) -> None:
        from panns_core.recording.live import LiveDetector

        try:
            predictor = live_predictor(self.spec)
            detector = LiveDetector(self.recorder.ring, self.recorder.sample_rate, predictor)
        except BaseException as error:  # shown by the panel, never lost
            self._error = error
            return
        with self._lock:
            if self._stopped:
                return
            self.labels = predictor.labels
            self.precision = predictor.precision
            self.detector = detector
            detector.start()

    def stop(self) -> None:
        # The loader is not joined: a model still loading finishes in the background
        # (and is cached for next time) instead of freezing the window.
        with self._lock:
            self._stopped = True
            detector = self.detector
        if detector is not None:
            detector.stop()

    def results(self) -> list:
        return [] if self.detector is None else self.detector.results()


# ------------------------------------------------------------------------ the panel
class WindowRecordPanel(RecordPanel):
    """The record panel plus ``recording_changed(bool)`` and model labels on arrival."""

    recording_changed = Signal(bool)
    stream_abandoned = False  # the last recording's device did not release its stream

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fit_dock()

    def _fit_dock(self) -> None:
        """Tidy the live views for a low dock: one time alignment, fewer labels."""
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

    def _draw_probabilities(self, top: int = 5) -> None:
        super()._draw_probabilities(top)
        parts = []
        for name, curve in self.prob_curves.items():
            colour = curve.opts["pen"].color().name()
            parts.append(f"<span style='color:{colour}'>━</span> {name}")
        self.classes_label.setText("  ".join(parts))

    def start_recording(self) -> bool:
        started = super().start_recording()
        if started:
            self.recording_changed.emit(True)
        return started

    def stop_recording(self):
        recorder = self.recorder
        if recorder is None:
            return None
        self.recording_changed.emit(False)  # before `finished` reaches the project
        result = super().stop_recording()
        self.stream_abandoned = recorder.stream_abandoned
        if recorder.stream_abandoned:
            _skip_portaudio_teardown()
        return result

    def _drain_detector(self) -> None:
        labels = getattr(self.detector, "labels", None)
        if labels and labels is not self.labels:
            self.labels = labels
        super()._drain_detector()


class HotkeyFilter(QObject):
    """Application event filter, installed only while recording: a vocabulary hotkey
    pressed anywhere in the window (outside text fields) tags instead of doing what
    the window's shortcut on that key would do."""

    def __init__(self, window, panel: RecordPanel) -> None:
        super().__init__(panel)
        self.window = window
        self.panel = panel

    def _label(self, obj, event) -> str | None:
        if not isinstance(obj, QWidget) or self.panel.tagger is None:
            return None
        allowed = Qt.KeyboardModifier.NoModifier | Qt.KeyboardModifier.KeypadModifier
        if event.modifiers() & ~allowed:
            return None
        if isinstance(obj, _TEXT_INPUTS) or (isinstance(obj, QComboBox) and obj.isEditable()):
            return None
        widget = obj
        while widget is not None and widget is not self.window:
            widget = widget.parentWidget()
        if widget is None:
            return None
        return self.panel.hotkeys.get(QKeySequence(event.key()).toString().upper())

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
        kind = event.type()
        if kind not in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress,
                        QEvent.Type.KeyRelease):
            return False
        label = self._label(obj, event)
        if label is None:
            return False
        event.accept()
        if kind == QEvent.Type.ShortcutOverride or event.isAutoRepeat():
            return True
        if kind == QEvent.Type.KeyPress:
            self.panel.tagger.press(label)
        else:
            self.panel.tagger.release(label)
        return True


# ------------------------------------------------------------------------ the controller
class RecordingController(QObject):
    """Wires the record dock, the Record action and the document together."""

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.document = window.document
        self.panel: WindowRecordPanel | None = None
        self.filter: HotkeyFilter | None = None
        self.last_recording_id: int | None = None

        self.container = QWidget()
        layout = QVBoxLayout(self.container)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.hint = QLabel("")
        self.hint.setWordWrap(True)
        self.hint.setContentsMargins(10, 4, 10, 0)
        self.hint.setStyleSheet("color: #9aa0aa;")
        layout.addWidget(self.hint)
        self.dock = window.add_dock("Record", self.container,
                                    Qt.DockWidgetArea.BottomDockWidgetArea)
        table_dock = getattr(window, "events_table_dock", None)
        if table_dock is not None:
            window.tabifyDockWidget(table_dock, self.dock)
            table_dock.raise_()
        self.dock.hide()
        self.dock.visibilityChanged.connect(self._on_dock_visible)
        self.dock.toggleViewAction().setText("Record panel")

        self.action = window.add_action(
            "File", "&Record", self.toggle, SHORTCUT,
            tip="Record from an input device into the project; tag live with the "
                "vocabulary's hotkeys. Press again to stop.")
        self._place_action()
        self.document.events.vocabulary.connect(self._on_vocabulary)
        window.installEventFilter(self)
        self._update_hint()

    def _place_action(self) -> None:
        """Put Record after the Open/New entries (before Quit's separator)."""
        menu = self.window.menus["File"]
        actions = menu.actions()
        anchor = next((a for a in actions if a.isSeparator()), None)
        if anchor is not None:
            menu.removeAction(self.action)
            menu.insertAction(anchor, self.action)

    # -- the panel, built on first use -------------------------------------------------
    def ensure_panel(self) -> WindowRecordPanel:
        if self.panel is None:
            panel = WindowRecordPanel(
                self.next_path,
                hotkeys=vocabulary_hotkeys(self.document),
                detector_factory=self.make_detector,
            )
            panel.finished.connect(self.add_to_project)
            panel.failed.connect(self._on_failed)
            panel.recording_changed.connect(self._on_recording_changed)
            self.container.layout().addWidget(panel, 1)
            self.panel = panel
            self._restore_input()
            self._update_hint()
        return self.panel

    def _on_dock_visible(self, visible: bool) -> None:
        if visible and self.panel is None:
            self.window._guard(self.ensure_panel)

    def show_dock(self) -> None:
        first = not self.dock.isVisible()
        self.dock.show()
        self.dock.raise_()
        self.ensure_panel()
        if first and not self.dock.isFloating():
            self.window.resizeDocks([self.dock], [max(260, int(self.window.height() * 0.4))],
                                    Qt.Orientation.Vertical)

    @property
    def recording(self) -> bool:
        return self.panel is not None and self.panel.is_recording

    def toggle(self) -> None:
        """The Record action: show the dock and start, or stop a running recording."""
        self.show_dock()
        panel = self.ensure_panel()
        if panel.is_recording:
            panel.stop_recording()
        elif panel.start_recording():
            self._remember_input()

    def next_path(self) -> Path:
        return next_recording_path(recordings_folder(self.document))

    def make_detector(self, recorder) -> ModelLiveDetector:
        model = self.document.model or "the default model"
        self.document.status(f"Live detection: loading {Path(model).name} (fast path)…")
        return ModelLiveDetector(recorder, self.document.model)

    # -- state -------------------------------------------------------------------------
    def _on_recording_changed(self, recording: bool) -> None:
        self.action.setText("Stop &recording" if recording else "&Record")
        app = QApplication.instance()
        if recording:
            if self.filter is None:
                self.filter = HotkeyFilter(self.window, self.panel)
            app.installEventFilter(self.filter)
            self.panel.setFocus()
        elif self.filter is not None:
            app.removeEventFilter(self.filter)

    def _on_vocabulary(self, event) -> None:
        if self.panel is not None:
            self.panel.hotkeys = {k.upper(): v for k, v in
                                  vocabulary_hotkeys(self.document).items()}
        self._update_hint()

    def _update_hint(self) -> None:
        keys = vocabulary_hotkeys(self.document)
        if keys:
            listed = " · ".join(f"<b>{k.upper()}</b> {name}" for k, name in keys.items())
            text = (f"Tag while recording: {listed} — hold for the sound's duration, or "
                    "tap to start and tap again to stop.")
        else:
            text = ("Give labels hotkeys in the vocabulary to tag while recording. "
                    f"{SHORTCUT} starts and stops.")
        self.hint.setText(text)

    def _on_failed(self, message: str) -> None:
        self.window.show_error(PannsError(message))

    # -- the result --------------------------------------------------------------------
    def add_to_project(self, result) -> None:
        """Open a finished recording in the project; its tags in one undo step."""
        doc = self.document
        if result.frames == 0:
            if not result.error:
                doc.status("Nothing was recorded (stopped before any audio arrived).")
            return
        try:
            (rec_id,) = doc.add_recordings([result.path])
            doc.set_recording(rec_id)
            self.last_recording_id = rec_id
            records = tag_records(result.tags, rec_id)
            if records:
                from panns_core.annotations.store import AddEvents

                doc.apply(AddEvents.from_records(records),
                          f"Tags of {result.path.name} ({len(records)})")
                doc.history.seal()
            settings.add_recent_file(result.path)
        except Exception as error:
            self.window.show_error(error)
            return
        if not result.error:
            doc.status(f"Recorded {result.duration:.1f} s with {len(records)} tag(s): "
                       f"{result.path}")

    def _remember_input(self) -> None:
        panel = self.panel
        device = panel.device_box.currentData()
        if device is not None:
            settings.set_value("record_input", {
                "device": device.name, "rate": panel.rate_box.currentData(),
                "channels": panel.channels_box.value()})

    def _restore_input(self) -> None:
        saved = settings.value("record_input") or {}
        panel = self.panel
        try:
            panel.select_device(saved["device"])
        except (KeyError, TypeError, ValueError):
            return
        index = panel.rate_box.findData(saved.get("rate"))
        if index >= 0:
            panel.rate_box.setCurrentIndex(index)
        if saved.get("channels"):
            panel.channels_box.setValue(int(saved["channels"]))

    # -- window close ------------------------------------------------------------------
    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
        if obj is self.window and event.type() == QEvent.Type.Close and self.recording:
            self.panel.stop_recording()  # keeps the file and adds it while the store is open
        return False


def _skip_portaudio_teardown() -> None:
    """A driver kept its stream: PortAudio's teardown at exit (sounddevice's exit
    handler) would wait for it forever, so the process leaves without it."""
    import atexit

    sd = sys.modules.get("sounddevice")
    if sd is not None and hasattr(sd, "_exit_handler"):
        atexit.unregister(sd._exit_handler)


def install(window) -> RecordingController:
    controller = RecordingController(window)
    window.record_controller = controller
    window.record_dock = controller.dock
    window.record_action = controller.action
    return controller
