"""Recording inside the annotator window: File ▸ Record (Ctrl+Shift+R) starts and stops.

The :class:`RecordingController` is the "Record" dock's widget: it owns a
:class:`~app.panels.recording.widget.RecordPanel` (built the first time the dock is
shown (so PortAudio is not touched at start-up). New files go to a
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

from PySide6.QtCore import QEvent, QObject, Qt
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

from ... import settings
from .. import BOTTOM, Panel
from .widget import RecordPanel

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

    from ..detection import load_model

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
class RecordingController(QWidget):
    """The Record dock's widget: a hint line and, once shown, the record panel; wires
    them, the Record action and the document together."""

    def __init__(self, window) -> None:
        super().__init__()
        self.window = window
        self.document = window.document
        self.panel: RecordPanel | None = None
        self.filter: HotkeyFilter | None = None
        self.last_recording_id: int | None = None
        self.dock = None  # the window's dock and action, given by attach()
        self.action = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.hint = QLabel("")
        self.hint.setWordWrap(True)
        self.hint.setContentsMargins(10, 4, 10, 0)
        self.hint.setStyleSheet("color: #9aa0aa;")
        layout.addWidget(self.hint)
        self.document.events.vocabulary.connect(self._on_vocabulary)
        window.installEventFilter(self)
        self._update_hint()

    def attach(self, dock) -> None:
        """Take the window's dock (hidden until used) and add the Record action."""
        self.dock = dock
        dock.visibilityChanged.connect(self._on_dock_visible)
        dock.toggleViewAction().setText("Record panel")
        self.action = self.window.add_action(
            "File", "&Record", self.toggle, SHORTCUT,
            tip="Record from an input device into the project; tag live with the "
                "vocabulary's hotkeys. Press again to stop.")
        self._place_action()

    def _place_action(self) -> None:
        """Put Record after the Open/New entries (before Quit's separator)."""
        menu = self.window.menus["File"]
        actions = menu.actions()
        anchor = next((a for a in actions if a.isSeparator()), None)
        if anchor is not None:
            menu.removeAction(self.action)
            menu.insertAction(anchor, self.action)

    # -- the panel, built on first use -------------------------------------------------
    def ensure_panel(self) -> RecordPanel:
        if self.panel is None:
            panel = RecordPanel(
                self.next_path,
                hotkeys=vocabulary_hotkeys(self.document),
                detector_factory=self.make_detector,
                compact=True,
            )
            panel.finished.connect(self._on_finished)
            panel.failed.connect(self._on_failed)
            panel.recording_changed.connect(self._on_recording_changed)
            self.layout().addWidget(panel, 1)
            self.panel = panel
            self._restore_input()
            self._update_hint()
        return self.panel

    def _on_dock_visible(self, visible: bool) -> None:
        if visible and self.panel is None:
            self.window.guard(self.ensure_panel)

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
    def _on_finished(self, result) -> None:
        self.add_to_project(result)
        if self.panel is not None and self.panel.stream_abandoned:
            _skip_portaudio_teardown()

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


def _add_actions(window, controller: RecordingController) -> None:
    controller.attach(window.docks["record"])


PANEL = Panel("record", "Record", BOTTOM, RecordingController, _add_actions,
              tabify_with="events_table", hidden=True)
