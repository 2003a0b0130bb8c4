"""The record panel with real capture (ALSA file plugin through a FIFO we feed)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from capture_feed import FifoSource
from PySide6.QtCore import Qt

from app.panels.recording.widget import RecordPanel

pytestmark = pytest.mark.gui

RATE = 16000
BLOCK = 1024


@pytest.fixture
def fifo(tmp_path, monkeypatch):
    source = FifoSource(tmp_path / "mic.fifo", amplitude=12000)
    monkeypatch.setenv("SD_TEST_INFILE", str(source.path))
    yield source
    source.close()


def make_panel(qtbot, tmp_path, **kwargs) -> RecordPanel:
    results = []
    panel = RecordPanel(tmp_path / "recordings", on_finished=results.append, **kwargs)
    panel.results = results
    qtbot.addWidget(panel)
    panel.resize(900, 700)
    panel.show()
    panel.select_device("wavsrc")
    panel.rate_box.setCurrentIndex(panel.rate_box.findData(RATE))
    return panel


def test_devices_rates_and_channels_are_offered(qtbot, tmp_path):
    panel = make_panel(qtbot, tmp_path)
    names = [panel.device_box.itemData(i).name for i in range(panel.device_box.count())]
    assert {"wavsrc", "default"} <= set(names)
    rates = [panel.rate_box.itemData(i) for i in range(panel.rate_box.count())]
    assert {16000, 32000, 48000} <= set(rates)
    assert panel.channels_box.maximum() == 8
    assert panel.record_button.isEnabled() and not panel.stop_button.isEnabled()


def test_record_pause_tag_and_stop(qtbot, tmp_path, fifo):
    panel = make_panel(qtbot, tmp_path, hotkeys={"d": "Dog", "b": "Bird"})
    qtbot.mouseClick(panel.record_button, Qt.MouseButton.LeftButton)
    rec = panel.recorder
    assert rec is not None and not panel.device_box.isEnabled()
    fifo.feed(10)
    qtbot.waitUntil(lambda: rec.frames == 10 * BLOCK)
    qtbot.keyPress(panel, Qt.Key.Key_D)  # held for longer than a tap
    fifo.feed(6)
    qtbot.waitUntil(lambda: rec.frames == 16 * BLOCK)
    qtbot.waitUntil(lambda: "Dog" in panel.tags_label.text())
    qtbot.wait(450)
    qtbot.keyRelease(panel, Qt.Key.Key_D)
    qtbot.keyClick(panel, Qt.Key.Key_B)  # tap: runs until the next tap
    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    assert panel.pause_button.text() == "Resume"
    fifo.feed(4)  # paused: not recorded
    qtbot.waitUntil(lambda: rec.captured_frames == 20 * BLOCK)
    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    fifo.feed(5)
    qtbot.waitUntil(lambda: rec.frames == 21 * BLOCK)
    qtbot.keyClick(panel, Qt.Key.Key_B)
    # The live views follow the recording.
    qtbot.waitUntil(lambda: panel.time_label.text() == "0:01.3")
    qtbot.waitUntil(lambda: len(panel.wave_curve.getData()[0] if panel.wave_curve.getData()[0]
                                is not None else []) > 100)
    assert panel.mel_image.image is not None and panel.mel_image.image.shape[0] == 64
    # Uniform noise in +-12000: RMS 12000/sqrt(3) = -13.5 dBFS, peak just under -8.7 dBFS.
    assert panel.meter.rms_db == pytest.approx(-13.5, abs=0.3)
    assert panel.meter.peak_db == pytest.approx(-8.7, abs=0.1)
    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    fifo.close()
    with qtbot.waitSignal(panel.finished, timeout=30000) as blocker:
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    result = blocker.args[0]
    assert panel.results == [result] and result.error is None
    assert result.path.parent == tmp_path / "recordings"
    got, _ = sf.read(result.path, dtype="int16", always_2d=True)
    fed = np.concatenate(fifo.fed)
    np.testing.assert_array_equal(got, np.concatenate([fed[: 16 * BLOCK], fed[20 * BLOCK :]]))
    tags = result.tags
    assert list(tags["label"]) == ["Dog", "Bird"]
    np.testing.assert_array_equal(tags["onset"], np.array([10, 16]) * BLOCK / RATE)
    np.testing.assert_array_equal(tags["offset"], np.array([16, 21]) * BLOCK / RATE)
    assert panel.record_button.isEnabled() and panel.device_box.isEnabled()
    assert "Saved 1.3 s" in panel.status_label.text()


def test_a_missing_device_is_reported_and_the_panel_stays_usable(qtbot, tmp_path, monkeypatch):
    panel = make_panel(qtbot, tmp_path)
    monkeypatch.setenv("SD_TEST_INFILE", str(tmp_path / "unplugged.raw"))
    with qtbot.waitSignal(panel.failed) as blocker:
        assert not panel.start_recording()
    assert "Cannot open the input device 'wavsrc'" in blocker.args[0]
    assert "Cannot open" in panel.status_label.text()
    assert panel.recorder is None and panel.record_button.isEnabled()
    assert not (tmp_path / "recordings").exists() or not any((tmp_path / "recordings").iterdir())


def test_a_device_that_goes_quiet_stops_the_recording_and_keeps_it(qtbot, tmp_path, fifo):
    panel = make_panel(qtbot, tmp_path, recorder_options={"stall_seconds": 0.4})
    assert panel.start_recording()
    fifo.feed(8)
    with qtbot.waitSignal(panel.finished, timeout=30000) as blocker:
        pass
    result = blocker.args[0]
    fifo.close()
    assert "delivered no audio" in result.error
    assert "delivered no audio" in panel.status_label.text()
    got, _ = sf.read(result.path, dtype="int16", always_2d=True)
    np.testing.assert_array_equal(got, np.concatenate(fifo.fed))
    assert panel.record_button.isEnabled()


@pytest.mark.slow
def test_live_detection_toggle_draws_probabilities(qtbot, tmp_path, fifo):
    import torch

    from panns_core.hub.detector import Detector
    from panns_core.models import build_model
    from panns_core.recording.live import LiveDetector, SegmentPredictor

    sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "reference"))
    from deterministic_weights import deterministic_state_dict

    torch.manual_seed(0)
    model = build_model("Cnn6_DecisionLevelMax", classes_num=6)
    model.load_state_dict(deterministic_state_dict(model.state_dict()))
    labels = ["Speech", "Dog", "Bird", "Car", "Rain", "Music"]
    predictor = SegmentPredictor(Detector.from_module(model, labels))
    made = []

    def factory(recorder):
        made.append(LiveDetector(recorder.ring, recorder.sample_rate, predictor,
                                 window_seconds=0.96))
        return made[-1]

    panel = make_panel(qtbot, tmp_path, detector_factory=factory, labels=labels)
    assert panel.start_recording()
    qtbot.mouseClick(panel.detect_box, Qt.MouseButton.LeftButton)
    assert panel.detect_box.isChecked() and panel.prob_plot.isVisible() and made
    for _ in range(4):
        fifo.feed(5)
        qtbot.wait(50)
    rec = panel.recorder
    qtbot.waitUntil(lambda: rec.frames == 20 * BLOCK)
    qtbot.waitUntil(lambda: max(panel.live_probabilities, default=0) >= 1.12, timeout=60000)
    assert set(panel.prob_curves) <= set(labels) and len(panel.prob_curves) == 5
    qtbot.mouseClick(panel.detect_box, Qt.MouseButton.LeftButton)
    assert panel.detector is None and not made[0].running
    panel.toggle_pause()
    fifo.close()
    panel.stop_recording()
