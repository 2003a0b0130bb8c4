"""Recording in the annotator window, with real capture (ALSA file plugin via a FIFO).

The window's Record action starts and stops; vocabulary hotkeys pressed anywhere in
the window tag (even keys the window uses itself); the recording lands in the project
with its samples and its tags as one undoable step; errors show in the window; closing
the window mid-recording keeps the file in the project.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from capture_feed import FifoSource
from PySide6.QtCore import Qt

from panns_core import events as ev
from panns_core.annotations.store import ProjectStore

pytestmark = pytest.mark.gui

RATE = 16000
BLOCK = 1024


@pytest.fixture
def fifo(tmp_path, monkeypatch):
    source = FifoSource(tmp_path / "mic.fifo", amplitude=12000)
    monkeypatch.setenv("SD_TEST_INFILE", str(source.path))
    yield source
    source.close()


def record_window(make_main_window, labels=(("Dog", "d"), ("Bird", "1"))):
    window = make_main_window()
    for name, key in labels:
        window.document.add_label(name, hotkey=key)
    controller = window.panels["record"]
    panel = controller.ensure_panel()
    panel.select_device("wavsrc")
    panel.rate_box.setCurrentIndex(panel.rate_box.findData(RATE))
    return window, controller, panel


def test_record_tag_stop_adds_the_recording_and_its_tags_in_one_undo_step(
        qtbot, make_main_window, fifo, tmp_path):
    window, controller, panel = record_window(make_main_window)
    doc = window.document
    assert panel.hotkeys == {"D": "Dog", "1": "Bird"}
    assert "<b>D</b> Dog" in controller.hint.text()
    default_label = doc.default_label

    window.panels["record"].action.trigger()
    rec = panel.recorder
    assert rec is not None and window.docks["record"].isVisible()
    assert window.panels["record"].action.text() == "Stop &recording"
    assert rec.path.parent == tmp_path / "recordings"  # next to the project file
    fifo.feed(10)
    qtbot.waitUntil(lambda: rec.frames == 10 * BLOCK)
    # Keys go to a view of the window, not to the panel: held D tags Dog...
    qtbot.keyPress(window.spectrogram, Qt.Key.Key_D)
    fifo.feed(6)
    qtbot.waitUntil(lambda: rec.frames == 16 * BLOCK)
    qtbot.waitUntil(lambda: "Dog" in panel.tags_label.text())
    qtbot.wait(450)
    qtbot.keyRelease(window.spectrogram, Qt.Key.Key_D)
    # ...and "1", also the window's "label 1 from the vocabulary" key, taps Bird on/off.
    qtbot.keyClick(window.spectrogram, Qt.Key.Key_1)
    fifo.feed(5)
    qtbot.waitUntil(lambda: rec.frames == 21 * BLOCK)
    qtbot.keyClick(window.spectrogram, Qt.Key.Key_1)
    qtbot.waitUntil(lambda: rec.open_tags == {})
    panel.toggle_pause()  # nothing more is written while the FIFO closes
    fifo.close()
    with qtbot.waitSignal(panel.finished, timeout=30000) as blocker:
        window.panels["record"].action.trigger()
    result = blocker.args[0]
    assert result.error is None and not panel.stream_abandoned
    assert window.panels["record"].action.text() == "&Record"
    assert doc.default_label == default_label  # "1" tagged; the window did not take it

    # The recording is in the project and shown.
    store = doc.store
    (stored,) = [r for r in store.recordings() if r.path == result.path]
    assert doc.recording.id == stored.id == controller.last_recording_id
    assert stored.duration == pytest.approx(21 * BLOCK / RATE, abs=1e-9)
    assert doc.duration == pytest.approx(21 * BLOCK / RATE, abs=1e-9)
    got, rate = sf.read(stored.path, dtype="int16", always_2d=True)
    assert rate == RATE
    np.testing.assert_array_equal(got, fifo.samples)

    # Its tags are human events at the sample-counter times.
    events = store.events(stored.id).sort_values("onset")
    assert list(events["label"]) == ["Dog", "Bird"]
    np.testing.assert_array_equal(events["onset"], np.array([10, 16]) * BLOCK / RATE)
    np.testing.assert_array_equal(events["offset"], np.array([16, 21]) * BLOCK / RATE)
    assert set(events["source"]) == {ev.HUMAN} and set(events["status"]) == {ev.ADDED}
    assert len(doc.annotations) == 2

    # One undo step removes both tags (the recording stays); redo brings them back.
    assert doc.history.undo_text.startswith("Tags of recording-")
    window.undo_action.trigger()
    assert store.events(stored.id).empty and doc.annotations.empty
    assert doc.recording.id == stored.id
    window.redo_action.trigger()
    assert list(store.events(stored.id).sort_values("onset")["label"]) == ["Dog", "Bird"]

    # Not recording: the window has its keys back ("1" sets the default label again).
    qtbot.keyClick(window.spectrogram, Qt.Key.Key_1)
    assert doc.default_label == "Bird"


def test_a_missing_device_is_reported_in_the_window(qtbot, make_main_window, tmp_path,
                                                     monkeypatch):
    window, _, panel = record_window(make_main_window)
    monkeypatch.setenv("SD_TEST_INFILE", str(tmp_path / "unplugged.raw"))
    recordings = len(window.document.recordings)
    window.panels["record"].action.trigger()
    assert "Cannot open the input device 'wavsrc'" in window.last_error
    assert not panel.is_recording and window.panels["record"].action.text() == "&Record"
    assert len(window.document.recordings) == recordings
    # Plugged in again: recording works without restarting anything.
    monkeypatch.setenv("SD_TEST_INFILE", "/dev/zero")
    window.panels["record"].action.trigger()
    assert panel.is_recording
    qtbot.waitUntil(lambda: panel.recorder.frames >= 4 * BLOCK)
    with qtbot.waitSignal(panel.finished, timeout=30000) as blocker:
        window.panels["record"].action.trigger()
    assert blocker.args[0].frames >= 4 * BLOCK
    assert window.document.recording.path == blocker.args[0].path


def test_a_device_that_stops_delivering_keeps_what_was_recorded(qtbot, make_main_window,
                                                                 fifo):
    window = make_main_window()
    panel = window.panels["record"].ensure_panel()
    panel.recorder_options = {"stall_seconds": 0.4}
    panel.select_device("wavsrc")
    panel.rate_box.setCurrentIndex(panel.rate_box.findData(RATE))
    window.panels["record"].action.trigger()
    fifo.feed(8)
    with qtbot.waitSignal(panel.finished, timeout=30000) as blocker:
        pass
    fifo.close()
    result = blocker.args[0]
    assert "delivered no audio" in result.error
    assert "delivered no audio" in window.last_error
    assert window.document.recording.path == result.path
    assert window.document.duration == pytest.approx(8 * BLOCK / RATE)
    got, _ = sf.read(result.path, dtype="int16", always_2d=True)
    np.testing.assert_array_equal(got, fifo.samples)
    assert window.panels["record"].action.text() == "&Record"


def test_closing_the_window_while_recording_keeps_the_file_and_its_tags(
        qtbot, make_main_window, fifo, tmp_path):
    window, _, panel = record_window(make_main_window)
    project = window.document.project_path
    window.panels["record"].action.trigger()
    rec = panel.recorder
    fifo.feed(4)
    qtbot.waitUntil(lambda: rec.frames == 4 * BLOCK)
    qtbot.keyPress(window.waveform, Qt.Key.Key_D)  # still held when the window closes
    qtbot.waitUntil(lambda: "Dog" in rec.open_tags)
    fifo.pace()  # a live input keeps delivering while the window closes
    qtbot.waitUntil(lambda: rec.frames >= 10 * BLOCK)
    window.close()
    # the device let go of its stream within the recorder's own wait (not abandoned to
    # a hung driver) and the recording is stopped, whatever the machine's speed
    assert not panel.stream_abandoned and not rec.stream_abandoned
    assert rec.state.value == "stopped"
    fifo.close()

    store = ProjectStore(project)
    try:
        (stored,) = store.recordings()
        got, _ = sf.read(stored.path, dtype="int16", always_2d=True)
        assert len(got) >= 10 * BLOCK and len(got) % BLOCK == 0
        np.testing.assert_array_equal(got, fifo.samples[: len(got)])
        assert stored.duration == pytest.approx(len(got) / RATE)
        events = store.events(stored.id)
        assert list(events["label"]) == ["Dog"]
        assert events["onset"].iloc[0] == 4 * BLOCK / RATE
        assert events["offset"].iloc[0] == pytest.approx(len(got) / RATE)
    finally:
        store.close()


@pytest.mark.slow
def test_live_detection_uses_the_windows_model_on_the_fast_path(
        qtbot, make_main_window, fifo, sed_checkpoint):
    from panns_core.detection.device import fast_mode
    from panns_core.hub.checkpoints import load_checkpoint

    window, _, panel = record_window(make_main_window)
    window.document.model = str(sed_checkpoint)
    window.panels["record"].action.trigger()
    qtbot.mouseClick(panel.detect_box, Qt.MouseButton.LeftButton)
    detector = panel.detector
    assert detector.spec == str(sed_checkpoint)
    fifo.pace()  # a live input (the fast-path model loads meanwhile, off the Qt thread)
    qtbot.waitUntil(lambda: max(panel.live_probabilities, default=0) >= 0.96, timeout=40000)
    assert detector.error is None
    names = load_checkpoint(sed_checkpoint).labels
    assert panel.labels == names and set(panel.prob_curves) <= set(names)
    predictor = detector.detector.predictor
    # the fast path the engine measured on this CPU (exact where nothing beats it)
    assert detector.precision == fast_mode(predictor.device, True, predictor.model)
    assert detector.precision in ("fp32", "bf16", "int8")
    panel.toggle_pause()
    fifo.close()
    with qtbot.waitSignal(panel.finished, timeout=30000):
        window.panels["record"].action.trigger()
    assert panel.detector is None and not detector.detector.running
