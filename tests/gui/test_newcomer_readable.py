"""Readable at real sizes: 12+ labels keep lanes tall enough (scrolling, following the
selection), a quiet file's waveform is scaled and zooms vertically, the curves' legend
is above the curves, and the Wavegram's message fits its strip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from panns_core import events as ev

pytestmark = pytest.mark.gui

CORPUS = Path("/work/shared/corpus/soundscapes")
LABELS = ["Acoustic guitar", "Aircraft", "Bird", "Camera", "Cattle, bovinae",
          "Computer keyboard", "Dog", "Door", "Drum kit", "Explosion", "Fire", "Flute"]


def _recording(tmp_path: Path) -> Path:
    real = CORPUS / "audio" / "dev_0000.flac"
    if real.is_file():
        return real
    path = tmp_path / "soundscape.wav"
    rng = np.random.default_rng(0)
    sf.write(path, (0.2 * rng.standard_normal(32000 * 10)).astype(np.float32), 32000)
    return path


def _lane_pixels(track) -> float:
    low, high = track.getViewBox().viewRange()[1]
    return track.getViewBox().height() / (high - low)


def _wheel(view, x: float, y: float, modifiers=Qt.KeyboardModifier.NoModifier, up=True):
    pos = QPointF(x, y)
    event = QWheelEvent(pos, QPointF(view.mapToGlobal(pos.toPoint())), QPoint(0, 0),
                        QPoint(0, 120 if up else -120), Qt.MouseButton.NoButton, modifiers,
                        Qt.ScrollPhase.NoScrollPhase, False)
    view.wheelEvent(event)
    QApplication.processEvents()


def test_twelve_labels_keep_lanes_legible(make_main_window, qtbot, tmp_path):
    from app.views.events_track import MIN_LANE_PIXELS

    window = make_main_window()
    window.resize(1400, 860)
    window.open_files([_recording(tmp_path)])
    doc = window.document
    rows = [{"onset": 0.6 * i, "offset": 0.6 * i + 1.0, "label": label, "source": "m",
             "status": ev.PROPOSED, "confidence": 0.5} for i, label in enumerate(LABELS)]
    doc.store.add_events(ev.make_events(rows), doc.recording.id)
    window.apply_default_layout()
    QApplication.processEvents()
    track = window.events_track
    assert track.n_lanes == 13  # twelve labels and the "new" lane
    assert _lane_pixels(track) >= MIN_LANE_PIXELS - 0.5
    # the lane names are whole words, not "Acoustic gu…"
    ticks = [t[1] for t in track.getPlotItem().getAxis("left")._tickLevels[0]]
    assert "Acoustic guitar" in ticks and "Computer keyboard" in ticks
    # squeezed, the lanes scroll instead of getting thinner
    sizes = window.splitter.sizes()
    at = window.views.index(track)
    sizes[at] = 150
    window.splitter.setSizes(sizes)
    QApplication.processEvents()
    assert _lane_pixels(track) >= MIN_LANE_PIXELS - 0.5
    assert track.lane_bar.isVisible() and track.lanes_shown < track.n_lanes
    low, high = track.getViewBox().viewRange()[1]
    assert low == 0 and high == track.lanes_shown
    # the wheel over the lane names scrolls them; the selection brings its lane into view
    _wheel(track, 20, track.height() / 2, up=False)
    assert track.first_lane == 1
    last = doc.annotations[doc.annotations["label"] == "Flute"]["id"].iloc[0]
    doc.selection = {int(last)}
    lane = track.lane_of("Flute")
    low, high = track.getViewBox().viewRange()[1]
    assert low <= lane < high
    track.lane_bar.setValue(0)
    assert track.getViewBox().viewRange()[1][0] == 0


def test_a_quiet_file_fills_the_waveform_and_zooms_vertically(make_main_window, qtbot,
                                                              tmp_path):
    quiet = tmp_path / "quiet.wav"
    t = np.arange(16000 * 3) / 16000
    sf.write(quiet, (0.02 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000)
    window = make_main_window()
    window.open_files([quiet])
    wave = window.waveform
    qtbot.waitUntil(lambda: wave.envelope_complete, timeout=20000)
    assert wave.gain == pytest.approx(0.9 / 0.02, rel=0.05)  # was: a flat line at +-1
    low, high = wave.getViewBox().viewRange()[1]
    assert high == pytest.approx(1.02 / wave.gain) and low == pytest.approx(-high)
    ticks = [t[1] for t in wave.getPlotItem().getAxis("left")._tickLevels[0]]
    assert ticks[-1] == f"{1 / wave.gain:.2g}"  # true amplitudes on the axis
    before = wave.gain
    view_range = window.document.view_range
    _wheel(wave, 300, wave.height() / 2, Qt.KeyboardModifier.ControlModifier)
    assert wave.gain == pytest.approx(before * 1.25) and not wave.auto_gain
    assert window.document.view_range == view_range  # Ctrl+wheel is not a time zoom
    _wheel(wave, 20, wave.height() / 2, up=False)  # the wheel over the amplitude axis
    assert wave.gain == pytest.approx(before)
    wave.zoom_amplitude(4.0)
    wave.fit_amplitude()
    assert wave.gain == pytest.approx(before) and wave.auto_gain


def test_curve_legend_is_above_the_curves(make_main_window, tmp_path):
    from panns_core.detection.scores import Scores

    window = make_main_window()
    window.open_files([_recording(tmp_path)])
    n = 31
    probs = np.tile(np.linspace(0.0, 1.0, n)[:, None], (1, 4)).astype(np.float32)
    window.document.set_scores(Scores(probs, 0.32, LABELS[:4], model_id="m", duration=10.0))
    QApplication.processEvents()
    curves = window.curves
    assert len(curves.legend.items) == 4
    legend = curves.legend.sceneBoundingRect()
    plot = curves.getViewBox().sceneBoundingRect()
    assert legend.bottom() <= plot.top() + 2  # in the strip above, not over a curve
    assert legend.width() > 0


def test_wavegram_message_fits_its_strip(make_main_window, tmp_path):
    window = make_main_window()
    window.resize(900, 700)
    window.wavegram.show()
    window.open_files([_recording(tmp_path)])
    QApplication.processEvents()
    view = window.wavegram
    assert view.message.isVisible()
    text = view.message.sceneBoundingRect()
    plot = view.getViewBox().sceneBoundingRect()
    assert text.width() <= plot.width()
    assert plot.left() - 1 <= text.left() and text.right() <= plot.right() + 1


def test_a_view_too_short_for_its_title_shows_none_rather_than_a_clipped_one(
        make_main_window, tmp_path):
    window = make_main_window()
    window.open_files([_recording(tmp_path)])
    wave = window.waveform
    axis = wave.getPlotItem().getAxis("left")
    wave.resize(wave.width(), 200)
    assert axis.labelText == "Waveform"
    wave.resize(wave.width(), 48)  # a laptop screen with every view shown
    assert axis.labelText == ""  # was a clipped "aveform"
    wave.resize(wave.width(), 120)
    assert axis.labelText == "Waveform"
