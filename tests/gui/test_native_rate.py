"""A 384 kHz, two-channel bat recording in the window: the native-rate spectrogram up to
192 kHz for the chosen channel, and playback for listening closely, heard through a real
PortAudio output stream into ALSA's file plugin (``wavsink`` in tests/fixtures/asoundrc
writes what is played to $SD_TEST_OUTFILE), with the frequencies measured here."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QPointF

SR = 384000
BIN = SR / 1024


@pytest.fixture
def bat_recording(tmp_path):
    """1.2 s: channel 1 a 40,125 Hz tone (0.5), channel 2 a 100,125 Hz tone (0.3)."""
    t = np.arange(int(SR * 1.2)) / SR
    x = np.stack([0.5 * np.sin(2 * np.pi * 107 * BIN * t),
                  0.3 * np.sin(2 * np.pi * 267 * BIN * t)], axis=1)
    path = tmp_path / "bats_384k.wav"
    sf.write(path, x.astype(np.float32), SR, subtype="FLOAT")
    return path


def heard(path) -> np.ndarray:
    """What the output device was given (float32 mono), without the leading and trailing
    silence of the stream."""
    y = np.fromfile(path, np.float32)
    loud = np.flatnonzero(np.abs(y) > 1e-3)
    assert len(loud), "nothing was played"
    return y[loud[0]: loud[-1] + 1]


def spectrum_peaks(y: np.ndarray, rate: int = 48000) -> tuple[float, np.ndarray, np.ndarray]:
    middle = y[len(y) // 8: -len(y) // 8]
    w = np.hanning(len(middle))
    spectrum = np.abs(np.fft.rfft(middle * w)) * 2 / w.sum()
    freqs = np.fft.rfftfreq(len(middle), 1 / rate)
    return float(freqs[np.argmax(spectrum)]), freqs, spectrum


def play_and_record(window, qtbot, monkeypatch, out, **kwargs) -> np.ndarray:
    monkeypatch.setenv("SD_TEST_OUTFILE", str(out))
    player = window.player
    if "event" in kwargs:
        player.play_event(kwargs["event"])
    else:
        player.play(*kwargs["span"])
    qtbot.waitUntil(lambda: player.state == "stopped", timeout=30000)
    assert player.device_ok is True
    return heard(out)


@pytest.mark.slow
def test_bat_recording_native_spectrogram_and_slowed_playback(make_main_window, qtbot,
                                                              bat_recording, tmp_path,
                                                              monkeypatch):
    from app.dialogs.spectrogram_settings import SpectrogramSettingsDialog

    window = make_main_window()
    window.open_files([bat_recording])
    doc = window.document
    assert doc.recording.sample_rate == SR and doc.recording.channels == 2
    view = window.native_spectrogram
    # above 48 kHz the native-rate view opens by itself, up to the Nyquist frequency
    assert view.isVisible()
    assert view.nyquist == 192000
    assert view.y_to_hz(view.y_top()) == 192000
    assert view.getViewBox().viewRange()[1][1] == pytest.approx(view.y_top())

    def peak_row() -> float:
        key = view.tile_key(0)
        image = view.cache.get(key)
        assert image is not None
        return float(view.y_to_hz(view.y_origin + (np.argmax(image[500]) + 0.5)
                                  * view.y_span() / image.shape[1]))

    # channel 1 chosen in the settings dialog: the tile shows its 40 kHz tone
    dialog = SpectrogramSettingsDialog(window)
    dialog.channel.setCurrentIndex(dialog.channel.findData(0))
    dialog.apply()
    assert doc.channel == 0
    qtbot.waitUntil(lambda: view.cache.get(view.tile_key(0)) is not None, timeout=30000)
    assert peak_row() == pytest.approx(107 * BIN, abs=BIN)
    # channel 2 from the View menu's channel list: 100 kHz
    window._fill_channel_menu()
    next(a for a in window.channel_menu.actions() if a.text() == "Channel 2").trigger()
    assert doc.channel == 1
    qtbot.waitUntil(lambda: view.cache.get(view.tile_key(0)) is not None, timeout=30000)
    assert peak_row() == pytest.approx(267 * BIN, abs=BIN)
    # the read-out under the pointer is in kHz, with the level
    view.hover(QPointF(0.6, view.hz_to_y(267 * BIN)))
    assert "100.12 kHz" in window.readout_label.text()
    assert window.readout_label.text().endswith("dB")

    # the other settings: FFT size, overlap, window, log axis, PCEN, levels
    dialog.fft.setCurrentIndex(dialog.fft.findData(4096))
    dialog.overlap.setCurrentIndex(dialog.overlap.findData(0.875))
    dialog.window_kind.setCurrentIndex(dialog.window_kind.findData("blackmanharris"))
    dialog.scale.setCurrentIndex(dialog.scale.findData("log"))
    dialog.pcen.setChecked(True)
    dialog.channel.setCurrentIndex(dialog.channel.findData(1))
    dialog.apply()
    s = view.settings
    assert (s.n_fft, s.overlap, s.window, s.scale, s.pcen, s.channel) == (
        4096, 0.875, "blackmanharris", "log", True, 1)
    assert view.frame_seconds == pytest.approx(512 / SR)
    qtbot.waitUntil(lambda: view.cache.get(view.tile_key(0)) is not None, timeout=30000)
    image = view.cache.get(view.tile_key(0))
    assert image.shape[1] == s.log_rows == view.n_bins
    hover_at = QPointF(0.6, view.hz_to_y(267 * BIN))
    view.hover(hover_at)
    assert window.readout_label.text().endswith("PCEN")
    from app import settings as app_settings

    assert app_settings.value("spectrogram")["n_fft"] == 4096  # kept for the next start
    dialog.auto_levels.setChecked(False)
    dialog.floor.setValue(-1.0)
    dialog.ceiling.setValue(5.0)
    dialog.pcen.setChecked(False)
    dialog.apply()
    assert view.levels == (-1.0, 5.0) and not view.auto_levels
    dialog.deleteLater()

    window.player.device = "wavsink"
    bar = window.listening_bar
    # 1/10 speed on channel 1: 40 kHz is heard at 4 kHz, for ten times as long
    doc.channel = 0
    bar.set_speed(0.1)
    y = play_and_record(window, qtbot, monkeypatch, tmp_path / "slow.raw", span=(0.2, 0.5))
    assert len(y) / 48000 == pytest.approx(3.0, abs=0.05)
    assert spectrum_peaks(y)[0] == pytest.approx(107 * BIN / 10, abs=2)
    # 1/8 speed on channel 2: 100 kHz at 12.5 kHz
    doc.channel = 1
    bar.set_speed(0.125)
    y = play_and_record(window, qtbot, monkeypatch, tmp_path / "eighth.raw", span=(0.2, 0.4))
    assert spectrum_peaks(y)[0] == pytest.approx(267 * BIN / 8, abs=2)

    # heterodyne at full speed on channel 1, carrier 38 kHz: 40.125 kHz -> 2.125 kHz
    doc.channel = 0
    bar.set_speed(1.0)
    bar.carrier.setValue(38.0)
    bar.heterodyne.setChecked(True)
    y = play_and_record(window, qtbot, monkeypatch, tmp_path / "het.raw", span=(0.2, 0.7))
    found, freqs, spectrum = spectrum_peaks(y)
    assert found == pytest.approx(107 * BIN - 38000, abs=2)
    assert spectrum.max() == pytest.approx(0.5, rel=0.05)  # the call's own amplitude
    bar.heterodyne.setChecked(False)

    # a box on the mix, 90-110 kHz, played alone at 1/10 speed: only 10 kHz is heard
    doc.channel = None
    bar.set_speed(0.1)
    box = doc.add_event(0.3, 0.5, "Bat", band=(90000.0, 110000.0))
    y = play_and_record(window, qtbot, monkeypatch, tmp_path / "box.raw", event=box)
    found, freqs, spectrum = spectrum_peaks(y)
    assert found == pytest.approx(267 * BIN / 10, abs=2)
    other = spectrum[np.abs(freqs - 107 * BIN / 10) < 20].max()
    assert 20 * np.log10(other / spectrum.max()) < -40  # the 40 kHz tone is filtered out
    # keys: ] faster, [ slower, H heterodyne on and off
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    window.activateWindow()
    target = QApplication.focusWidget() or window
    QTest.keyClick(target, Qt.Key.Key_BracketRight)
    assert window.player.speed == 0.125
    QTest.keyClick(target, Qt.Key.Key_BracketLeft)
    QTest.keyClick(target, Qt.Key.Key_BracketLeft)
    assert window.player.speed == 0.05
    QTest.keyClick(target, Qt.Key.Key_H)
    assert window.player.carrier_hz == 38000.0
    QTest.keyClick(target, Qt.Key.Key_H)
    assert window.player.carrier_hz is None
    bar.set_speed(0.1)
    # with band-pass off, both tones are heard
    bar.band.setChecked(False)
    y = play_and_record(window, qtbot, monkeypatch, tmp_path / "both.raw", event=box)
    found, freqs, spectrum = spectrum_peaks(y)
    other = spectrum[np.abs(freqs - 107 * BIN / 10) < 20].max()
    assert 20 * np.log10(other / spectrum.max()) > -3


@pytest.mark.slow
def test_detection_listens_to_the_chosen_channel(sed_checkpoint, demo_path, tmp_path):
    """A job on channel 1 of a stereo file scores what a mono file of that channel
    scores; its scores name the channel; the silent channel scores differently."""
    from app.panels.detection import detection_job
    from panns_core.audio import load_audio

    x, _ = load_audio(demo_path, sample_rate=32000, stop=6.0)
    quiet = 0.001 * np.random.default_rng(0).standard_normal(len(x))
    stereo, mono = tmp_path / "stereo.wav", tmp_path / "mono.wav"
    sf.write(stereo, np.stack([x, quiet], axis=1).astype(np.float32), 32000, subtype="FLOAT")
    sf.write(mono, x, 32000, subtype="FLOAT")

    def scores(job):
        done = [item for item in detection_job([job], str(sed_checkpoint))
                if item[0] == "done"]
        return done[0][2]

    first = scores((1, str(stereo), 0))
    alone = scores((2, str(mono), None))
    second = scores((1, str(stereo), 1))
    assert first.audio_hash.endswith("-ch1") and second.audio_hash.endswith("-ch2")
    assert not alone.audio_hash.endswith(("-ch1", "-ch2"))
    np.testing.assert_allclose(first.probabilities, alone.probabilities, atol=1e-5)
    assert np.abs(second.probabilities - first.probabilities).max() > 0.05
