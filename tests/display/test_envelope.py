"""The waveform envelope pyramid: exact min/max, level choice, preview, cache."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from panns_core.display.envelope import (
    EnvelopePyramid,
    cache_path,
    compute_envelope,
    iter_envelope,
    read_samples,
)
from panns_core.errors import AudioError, Cancelled


def _signal(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.5 * rng.standard_normal(n)).clip(-1, 0.99).astype(np.float32)


def _write(path, x, sr=8000, subtype="FLOAT", fmt=None):
    sf.write(str(path), x, sr, subtype=subtype, format=fmt)
    return path


def test_base_level_is_exact_min_max(tmp_path):
    x = _signal(256 * 50 + 77)
    path = _write(tmp_path / "a.wav", x)
    pyr = compute_envelope(path, use_cache=False, block_frames=1000)
    n_bins = -(-len(x) // 256)
    assert len(pyr.mins[0]) == n_bins
    padded = np.concatenate([x, np.full(n_bins * 256 - len(x), np.nan, np.float32)])
    shaped = padded.reshape(-1, 256)
    np.testing.assert_array_equal(pyr.mins[0], np.nanmin(shaped, axis=1))
    np.testing.assert_array_equal(pyr.maxs[0], np.nanmax(shaped, axis=1))
    assert pyr.complete and not pyr.preview


def test_stereo_is_mixed_to_mono(tmp_path):
    left, right = _signal(4096, 1), _signal(4096, 2)
    path = _write(tmp_path / "s.wav", np.stack([left, right], axis=1))
    pyr = compute_envelope(path, use_cache=False)
    mono = ((left + right) / 2).reshape(-1, 256)
    np.testing.assert_allclose(pyr.maxs[0], mono.max(axis=1), atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    n_bins=st.integers(1, 30000),
    start=st.floats(0, 1),
    span=st.floats(1e-3, 1),
    points=st.integers(1, 3000),
)
def test_envelope_bounds_the_signal(n_bins, start, span, points):
    rng = np.random.default_rng(n_bins)
    base = rng.standard_normal(n_bins).astype(np.float32)
    pyr = EnvelopePyramid(sample_rate=1000, frames=n_bins * 256)
    pyr.mins, pyr.maxs = [base - 1], [base + 1]
    pyr.build_levels(min_top_bins=64)
    duration = pyr.duration
    t0, t1 = start * duration, min(duration, start * duration + span * duration)
    times, lo, hi = pyr.envelope(t0, t1, points)
    assert len(times) == len(lo) == len(hi)
    assert len(lo) <= 2 * points + 4
    if len(lo):
        assert np.all(lo <= hi)
        # every covered base bin is inside the returned extremes
        a = int(t0 * 1000 // 256)
        b = min(n_bins, int(np.ceil(t1 * 1000 / 256)))
        if b > a:
            assert lo.min() <= base[a:b].min() - 1 + 1e-6
            assert hi.max() >= base[a:b].max() + 1 - 1e-6


def test_flac_preview_then_exact(tmp_path):
    x = _signal(8000 * 40)
    path = _write(tmp_path / "p.flac", x, subtype="PCM_16")
    states = [
        (p.preview, p.filled_frames)
        for p in iter_envelope(path, use_cache=False, block_frames=4096, preview_probes=64)
    ]
    assert states[0] == (True, 0)
    assert states[-1] == (False, len(x))
    final = compute_envelope(path, use_cache=False)
    exact = sf.read(str(path), dtype="float32")[0]
    np.testing.assert_array_equal(final.maxs[0], exact.reshape(-1, 256).max(1))
    np.testing.assert_array_equal(final.mins[0], exact.reshape(-1, 256).min(1))


def test_cache_roundtrip(tmp_path, app_home):
    path = _write(tmp_path / "c.wav", _signal(100_000))
    first = compute_envelope(path)
    assert cache_path(path).is_file()
    assert str(cache_path(path)).startswith(str(app_home))
    again = list(iter_envelope(path))
    assert len(again) == 1 and again[0].complete
    for a, b in zip(first.mins, again[0].mins):
        np.testing.assert_array_equal(a, b)


def test_cancel_and_errors(tmp_path):
    path = _write(tmp_path / "x.wav", _signal(200_000))
    cancel = threading.Event()
    gen = iter_envelope(path, use_cache=False, block_frames=1024, cancel=cancel)
    next(gen)
    cancel.set()
    with pytest.raises(Cancelled):
        list(gen)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(AudioError, match="cannot read"):
        compute_envelope(bad, use_cache=False)
    with pytest.raises(AudioError, match="not found"):
        compute_envelope(tmp_path / "missing.wav", use_cache=False)


def test_read_samples_range(tmp_path):
    x = _signal(16000)
    path = _write(tmp_path / "r.wav", x)
    y, sr = read_samples(path, 0.5, 1.0)
    assert sr == 8000
    np.testing.assert_array_equal(y, x[4000:8000])
