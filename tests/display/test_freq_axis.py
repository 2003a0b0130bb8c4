"""Frequency axes of the time-frequency views: rows where their frequencies are, both
directions of the mapping, the edges."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panns_core.display.freq_axis import FrequencyAxis
from panns_core.display.mel import mel_frequencies
from panns_core.display.spectrogram import SpectrogramSettings, row_frequencies


@pytest.mark.parametrize("scale", ["linear", "log"])
@pytest.mark.parametrize("rate", [22050, 44100, 384000])
@pytest.mark.parametrize("n_fft", [256, 2048])
def test_native_axes_put_rows_at_their_frequencies(scale, rate, n_fft):
    spec = SpectrogramSettings(n_fft=n_fft, scale=scale)
    axis = FrequencyAxis.native(spec, rate)
    rows = row_frequencies(spec, rate)
    assert axis.rows == len(rows)
    centres = axis.y_origin + (np.arange(len(rows)) + 0.5) * axis.y_span / len(rows)
    np.testing.assert_allclose(axis.hz_to_y(rows), centres, rtol=0, atol=1e-9 * rate)
    hz = np.geomspace(rows[1], rate / 2, 50)
    np.testing.assert_allclose(axis.y_to_hz(axis.hz_to_y(hz)), hz, rtol=1e-9)
    assert axis.y_to_hz(axis.y_top) == rate / 2  # the top edge is Nyquist
    assert axis.y_to_hz(axis.y_origin) == 0.0  # the bottom edge is 0 Hz
    assert axis.hz_to_y(0.0) == pytest.approx(0.0 if scale == "linear" else axis.y_origin)
    assert axis.hz_to_y(10 * rate) == pytest.approx(axis.hz_to_y(rate / 2))


def test_mel_axis_puts_bin_centres_at_half_rows():
    axis = FrequencyAxis.mel(64, 50.0, 14000.0)
    centres = mel_frequencies(64, 50.0, 14000.0)
    np.testing.assert_allclose(axis.hz_to_y(centres), np.arange(64) + 0.5, atol=1e-9)
    assert (axis.y_origin, axis.y_span) == (0.0, 64.0)
    assert axis.hz_to_y(0.0) == 0.0 and axis.hz_to_y(20000.0) == 64.0


@settings(max_examples=60, deadline=None)
@given(y=st.floats(0.0, 1.0), scale=st.sampled_from(["linear", "log", "mel"]),
       rate=st.sampled_from([16000, 48000, 256000, 384000]))
def test_any_point_of_a_view_maps_to_hertz_and_back(y, scale, rate):
    axis = (FrequencyAxis.mel(64, 50.0, min(14000.0, rate / 2)) if scale == "mel"
            else FrequencyAxis.native(SpectrogramSettings(scale=scale), rate))
    inside = axis.y_origin + y * axis.y_span
    hz = axis.y_to_hz(inside)
    assert 0.0 <= hz <= rate / 2
    half_row = axis.y_span / axis.rows / 2
    if scale != "mel" and not half_row <= inside - axis.y_origin <= axis.y_span - half_row:
        # the outer half rows are the lowest and highest rows' frequencies (or the edges)
        assert hz in (0.0, axis.low_hz, axis.high_hz)
        return
    assert axis.hz_to_y(hz) == pytest.approx(inside, abs=1e-9 * max(1.0, abs(inside)))
