"""The native-rate spectrogram tiles: tones where they are, at the level they have, per
channel, equal to a whole-file pass; PCEN as defined."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from panns_core.display.spectrogram import (
    SpectrogramSettings,
    pcen,
    power_frames,
    row_frequencies,
    spectrogram_tile,
)
from panns_core.display.tiles import TILE_FRAMES
from panns_core.errors import PannsError

SR = 384000
BIN = SR / 1024  # 375 Hz


@pytest.fixture(scope="module")
def bat_file(tmp_path_factory):
    """2.5 s, 384 kHz, two channels: 0.5 x 100,125 Hz on the first, 0.25 x 40,125 Hz on
    the second (both on FFT bins of a 1024-point frame)."""
    t = np.arange(int(SR * 2.5)) / SR
    x = np.stack([0.5 * np.sin(2 * np.pi * 267 * BIN * t),
                  0.25 * np.sin(2 * np.pi * 107 * BIN * t)], axis=1)
    path = tmp_path_factory.mktemp("bats") / "bats.wav"
    sf.write(path, x.astype(np.float32), SR, subtype="FLOAT")
    return path, x


@pytest.mark.parametrize("channel, hz, amplitude", [(0, 267 * BIN, 0.5), (1, 107 * BIN, 0.25),
                                                     (None, 267 * BIN, 0.25)])
def test_a_tone_is_at_its_frequency_and_level(bat_file, channel, hz, amplitude) -> None:
    path, _ = bat_file
    settings = SpectrogramSettings(channel=channel)
    image = spectrogram_tile(path, 1, settings)
    rows = row_frequencies(settings, SR)
    assert image.shape == (TILE_FRAMES, 513)
    assert rows[-1] == SR / 2 == 192000
    middle = image[TILE_FRAMES // 2]
    assert rows[np.argmax(middle)] == hz
    # a sine of amplitude A on a bin: 20 log10(A) dB in that bin (the mix halves it)
    assert middle.max() == pytest.approx(20 * math.log10(amplitude), abs=0.01)


def test_log_axis_finds_the_tone_and_keeps_its_level(bat_file) -> None:
    path, _ = bat_file
    settings = SpectrogramSettings(channel=1, scale="log")
    image = spectrogram_tile(path, 0, settings)
    rows = row_frequencies(settings, SR)
    assert rows[0] == pytest.approx(BIN) and rows[-1] == pytest.approx(SR / 2)
    peak = np.argmax(image[600])
    assert rows[peak - 1] <= 107 * BIN <= rows[peak + 1]
    assert image[600].max() == pytest.approx(20 * math.log10(0.25), abs=0.01)


def test_tiles_equal_a_whole_file_pass(bat_file) -> None:
    path, x = bat_file
    settings = SpectrogramSettings(n_fft=2048, overlap=0.5, window="blackman", channel=0)
    hop = settings.hop
    padded = np.pad(x[:, 0].astype(np.float32), (1024, 1024 + hop))
    whole = 10 * np.log10(np.maximum(power_frames(padded, settings), 1e-20))
    n_frames = len(x) // hop + 1
    tiles = []
    tile = 0
    while True:
        image = spectrogram_tile(path, tile, settings)
        if not len(image):
            break
        tiles.append(image)
        tile += 1
    joined = np.concatenate(tiles)
    assert len(joined) == n_frames
    np.testing.assert_allclose(joined, whole[:n_frames], atol=1e-3)


def test_pcen_follows_its_definition() -> None:
    rng = np.random.default_rng(3)
    energy = rng.gamma(2.0, 1e6, (300, 7))
    settings = SpectrogramSettings(pcen=True)
    out = pcen(energy, settings, 48000)
    b = 0.4 * 48000 / settings.hop
    s = (math.sqrt(1 + 4 * b * b) - 1) / (2 * b * b)
    smooth = energy[0].copy()
    for t in range(len(energy)):
        smooth = energy[t] if t == 0 else (1 - s) * smooth + s * energy[t]
        expected = (energy[t] / (1e-6 + smooth) ** 0.98 + 2.0) ** 0.5 - 2.0 ** 0.5
        np.testing.assert_allclose(out[t], expected, rtol=2e-5)


def test_a_pcen_tile_runs_its_smoother_in_from_before_the_tile(bat_file) -> None:
    """Tile 2 starts 1.37 s in, within the 2 s warm-up: it equals a whole-file pass."""
    path, x = bat_file
    settings = SpectrogramSettings(pcen=True, channel=0)
    padded = np.pad(x[:, 0].astype(np.float32), (512, 512 + settings.hop))
    whole = pcen(np.sqrt(power_frames(padded, settings)) * 2.0**31, settings, SR)
    tile = spectrogram_tile(path, 2, settings)
    np.testing.assert_allclose(tile, whole[2 * TILE_FRAMES: 3 * TILE_FRAMES], rtol=1e-4,
                               atol=1e-6)
    assert 0 < tile.max() < 1.0  # a steady tone is evened out (what PCEN is for)


@pytest.mark.parametrize("bad, words", [({"n_fft": 8}, "FFT size"), ({"overlap": 0.99}, "Overlap"),
                                        ({"window": "kaiser"}, "window"),
                                        ({"scale": "mel"}, "axis"), ({"channel": -1}, "0")])
def test_unusable_settings_say_what_to_choose(bad, words) -> None:
    with pytest.raises(PannsError, match=words):
        SpectrogramSettings(**bad)


def test_a_channel_the_file_lacks_is_refused(bat_file) -> None:
    with pytest.raises(PannsError, match="2 channel"):
        spectrogram_tile(bat_file[0], 0, SpectrogramSettings(channel=2))
