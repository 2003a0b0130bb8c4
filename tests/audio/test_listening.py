"""Time expansion, band-pass and heterodyne playback against their definitions on tones."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import sosfilt

from panns_core.audio.listening import (
    ListeningChain,
    ListeningSettings,
    bandpass_sos,
    lowpass_sos,
    output_rate,
    render,
)
from panns_core.errors import PannsError


def tone(hz: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def peak(x: np.ndarray, rate: int) -> tuple[float, float]:
    """(frequency of the strongest component, by a Hann-windowed FFT with parabolic
    interpolation of the peak; the amplitude of ``x`` as a single tone)."""
    w = np.hanning(len(x))
    spectrum = np.abs(np.fft.rfft(x * w)) * 2 / w.sum()
    k = int(np.argmax(spectrum[1:-1])) + 1
    a, b, c = np.log(spectrum[k - 1: k + 2] + 1e-30)
    shift = 0.5 * (a - c) / (a - 2 * b + c)
    # a single tone's amplitude from its RMS (exact wherever the peak falls)
    return (k + shift) * rate / len(x), float(np.sqrt(2 * np.mean(np.square(x, dtype=float))))


def level_db(x: np.ndarray) -> float:
    return 20 * math.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-30)


@pytest.mark.parametrize("speed", [0.05, 0.1, 0.25, 0.5, 1.0, 2.0])
def test_time_expansion_multiplies_frequencies_and_stretches_time(speed) -> None:
    rate = 384000 if speed <= 0.1 else 48000
    hz = 40000.0 if speed <= 0.1 else 3000.0
    x = tone(hz, rate, 0.2)
    out, out_rate = render(x, rate, ListeningSettings(speed=speed))
    assert out_rate == output_rate(rate, speed)
    assert len(out) / out_rate == pytest.approx(len(x) / rate / speed, rel=1e-3)
    found, amplitude = peak(out[len(out) // 10: -len(out) // 10], out_rate)
    assert found == pytest.approx(hz * speed, rel=2e-3)
    assert amplitude == pytest.approx(0.5, rel=0.02)


def test_a_tenth_of_the_speed_moves_40_khz_to_4_khz() -> None:
    assert output_rate(384000, 0.1) == 48000  # 38.4 kHz nominal, resampled for the device
    assert output_rate(441000 // 10, 1.0) == 44100
    out, out_rate = render(tone(40000, 384000, 0.1), 384000, ListeningSettings(speed=0.1))
    assert peak(out, out_rate)[0] == pytest.approx(4000, abs=5)


def test_band_pass_is_its_filter_in_blocks_and_keeps_only_the_band() -> None:
    rate = 192000
    inside, below, above = tone(30000, rate, 0.3), tone(7500, rate, 0.3), tone(90000, rate, 0.3)
    mix = inside + below + above
    settings = ListeningSettings(band=(20000.0, 45000.0))
    out, out_rate = render(mix, rate, settings, block=4096)
    assert out_rate == 48000  # 192 kHz is played through a 48 kHz device stream
    # the definition: the Butterworth sections over the whole signal, then the device rate
    whole = sosfilt(bandpass_sos(20000.0, 45000.0, rate), mix.astype(np.float64))
    reference, _ = render(whole.astype(np.float32), rate, ListeningSettings())
    np.testing.assert_allclose(out, reference, atol=2e-5)
    # at the file's rate: the band stays at its level, tones an octave or more away do not
    native = sosfilt(bandpass_sos(20000.0, 45000.0, rate), mix.astype(np.float64))
    steady = slice(rate // 10, None)
    assert level_db(native[steady]) == pytest.approx(level_db(inside[steady]), abs=0.2)
    for other in (below, above):
        alone = sosfilt(bandpass_sos(20000.0, 45000.0, rate), other.astype(np.float64))
        assert level_db(alone[steady]) < level_db(other[steady]) - 40


def test_band_pass_edges_at_the_ends_are_low_and_high_passes() -> None:
    assert bandpass_sos(0.0, 48000.0, 96000) is None  # the whole band: no filter
    high_pass = bandpass_sos(10000.0, 48000.0, 96000)
    low_pass = bandpass_sos(0.0, 10000.0, 96000)
    x = tone(2000, 96000, 0.2) + tone(30000, 96000, 0.2)
    steady = slice(9600, None)
    assert peak(sosfilt(high_pass, x)[steady], 96000)[0] == pytest.approx(30000, rel=1e-3)
    assert peak(sosfilt(low_pass, x)[steady], 96000)[0] == pytest.approx(2000, rel=1e-3)


def test_heterodyne_is_the_low_passed_mix_with_the_carrier() -> None:
    rate = 384000
    x = tone(45000, rate, 0.25, amplitude=0.4)
    settings = ListeningSettings(carrier_hz=42000.0)
    chain = ListeningChain(rate, settings)
    # at the file's rate, by blocks, against y = LP(2 x cos(2 pi fc n / rate)) in one pass
    chain._resampler = None
    blocks = [chain.process(x[i:i + 10000]) for i in range(0, len(x), 10000)]
    out = np.concatenate(blocks)
    n = np.arange(len(x))
    expected = sosfilt(lowpass_sos(5000.0, rate),
                       2.0 * x.astype(np.float64) * np.cos(2 * np.pi * 42000.0 * n / rate))
    np.testing.assert_allclose(out, expected, atol=1e-5)
    # cos a cos b = (cos(a - b) + cos(a + b)) / 2: the difference tone at the input's
    # amplitude, the sum (87 kHz) gone
    steady = out[rate // 20:]
    found, amplitude = peak(steady, rate)
    assert found == pytest.approx(3000.0, rel=1e-3)
    assert amplitude == pytest.approx(0.4, rel=0.02)
    spectrum = np.abs(np.fft.rfft(steady * np.hanning(len(steady))))
    k_sum = round(87000 * len(steady) / rate)
    assert spectrum[k_sum - 5: k_sum + 5].max() < spectrum.max() * 1e-4
    # through the whole chain the device gets 3 kHz at 48 kHz
    heard, heard_rate = render(x, rate, settings)
    assert heard_rate == 48000
    assert peak(heard[heard_rate // 20:], heard_rate)[0] == pytest.approx(3000.0, rel=1e-3)


def test_settings_out_of_range_say_what_to_choose() -> None:
    with pytest.raises(PannsError, match="1/20x"):
        ListeningSettings(speed=0.01)
    with pytest.raises(PannsError, match="low < high"):
        ListeningSettings(band=(5000.0, 100.0))
    with pytest.raises(PannsError, match="carrier"):
        ListeningSettings(carrier_hz=0.0)
    with pytest.raises(PannsError, match="up to 24 kHz"):
        ListeningChain(48000, ListeningSettings(carrier_hz=40000.0))


@settings(max_examples=12, deadline=None)
@given(speed=st.floats(0.05, 2.0), rate=st.sampled_from([44100, 96000, 250000, 384000]),
       fraction=st.floats(0.05, 0.4))
def test_any_speed_scales_any_tone(speed, rate, fraction) -> None:
    """Time expansion at any speed in range: a tone at f is heard at f x speed (as long as
    that is below the device's Nyquist), for 1 / speed as long."""
    hz = fraction * min(rate / 2, 20000 / speed)
    x = tone(hz, rate, 0.15)
    out, out_rate = render(x, rate, ListeningSettings(speed=speed))
    assert len(out) / out_rate == pytest.approx(0.15 / speed, rel=2e-3)
    found, amplitude = peak(out[len(out) // 10: -len(out) // 10], out_rate)
    assert found == pytest.approx(hz * speed, rel=5e-3, abs=2 * out_rate / len(out))
    assert amplitude == pytest.approx(0.5, rel=0.03)
