"""The one mel scale (Slaney, librosa's default: linear below 1 kHz, log above) and a
cheap numpy log-mel for live views of incoming audio (no torch, no librosa).

The filterbank is area normalised, the same shape as the model's front end, so the live
picture looks like the file views, and :func:`mel_frequencies` labels the log-mel views'
frequency axis. Display only; detection uses the model's own front end.
"""

from __future__ import annotations

import numpy as np


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-9) / min_log_hz)
                    / logstep, hz / f_sp)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)),
                    f_sp * mel)


def mel_frequencies(n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Centre frequencies (Hz) of the ``n_mels`` filters between ``fmin`` and ``fmax``."""
    return mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))[1:-1]


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int = 64, fmin: float = 50.0,
                   fmax: float | None = None) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters, Slaney area normalisation."""
    fmax = sample_rate / 2 if fmax is None else min(fmax, sample_rate / 2)
    fft_hz = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    mel_hz = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(mel_hz)
    ramps = mel_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_hz[2:] - mel_hz[:-2]))[:, None]
    return weights.astype(np.float32)


class LiveLogMel:
    """Log-mel frames (dB) of mono float audio: 10 ms hop, ~32 ms Hann window."""

    def __init__(self, sample_rate: int, n_mels: int = 64, fmin: float = 50.0,
                 fmax: float | None = 14000.0) -> None:
        self.sample_rate = int(sample_rate)
        self.hop = max(1, self.sample_rate // 100)
        self.n_fft = 1 << int(np.ceil(np.log2(self.sample_rate * 0.032)))
        self.window = np.hanning(self.n_fft + 1)[:-1].astype(np.float32)
        self.filters = mel_filterbank(self.sample_rate, self.n_fft, n_mels, fmin, fmax)

    def __call__(self, mono: np.ndarray) -> np.ndarray:
        """(frames, n_mels) in dB (power, floored at -100 dB); frame k starts at k*hop."""
        mono = np.asarray(mono, dtype=np.float32)
        if len(mono) < self.n_fft:
            return np.zeros((0, self.filters.shape[0]), np.float32)
        frames = np.lib.stride_tricks.sliding_window_view(mono, self.n_fft)[:: self.hop]
        power = np.abs(np.fft.rfft(frames * self.window, axis=1)) ** 2
        mel = power @ self.filters.T
        return (10.0 * np.log10(np.maximum(mel, 1e-10))).astype(np.float32)
