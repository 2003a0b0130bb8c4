"""Spectrogram tiles at a recording's own sample rate (numpy, no torch): the recording as
it is, up to its Nyquist frequency (192 kHz for a 384 kHz bat recording), where the
log-mel view shows what the model hears at 32 kHz.

:class:`SpectrogramSettings` holds what a user sets: FFT size, overlap, window, a linear
or log frequency axis, PCEN instead of dB, and the channel (None mixes the channels by
their mean, as detection does by default). A tile is ``TILE_FRAMES`` centred STFT frames
(frame ``i`` is centred on sample ``i * hop``; the file is zero-padded beyond its ends),
computed from its own stretch of audio, so a file of any length is read a tile at a time
and tiles equal the same frames of a whole-file pass. Levels are dB relative to a full
-scale sine (a sine of amplitude 1 peaks at 0 dB in its bin, whatever the window).

PCEN (per-channel energy normalisation, Wang et al. 2017, with librosa's defaults) is a
recursive smoother over time: each tile starts it ``pcen_warmup_frames`` earlier, so
neighbouring tiles agree to display precision once the smoother has forgotten its start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..errors import PannsError
from .tiles import TILE_FRAMES

WINDOWS = ("hann", "hamming", "blackman", "blackmanharris", "bartlett", "rectangular")
SCALES = ("linear", "log")
FFT_SIZES = (128, 256, 512, 1024, 2048, 4096, 8192)  # offered in the window
LOG_ROWS = 384
FLOOR_DB = -200.0
PCEN_TIME_CONSTANT = 0.4  # seconds (librosa's default)
PCEN_GAIN, PCEN_BIAS, PCEN_POWER, PCEN_EPS = 0.98, 2.0, 0.5, 1e-6


@dataclass(frozen=True)
class SpectrogramSettings:
    """What the native-rate spectrogram shows (hashable: part of a tile's cache key)."""

    n_fft: int = 1024
    overlap: float = 0.75  # fraction of a frame shared with the next
    window: str = "hann"
    scale: str = "linear"  # frequency axis: linear or log
    pcen: bool = False
    channel: int | None = None  # None: the mean of all channels
    log_rows: int = LOG_ROWS

    def __post_init__(self) -> None:
        if int(self.n_fft) != self.n_fft or not 16 <= self.n_fft <= 65536:
            raise PannsError(f"FFT size {self.n_fft!r} is not usable; choose 16 to 65536 "
                             "samples (a power of two is fastest).")
        if not 0.0 <= self.overlap <= 0.97:
            raise PannsError(f"Overlap {self.overlap!r} is not usable; choose 0 to 0.97 "
                             "(e.g. 0.75 for 75 %).")
        if self.window not in WINDOWS:
            raise PannsError(f"Unknown window {self.window!r}; choose one of "
                             f"{', '.join(WINDOWS)}.")
        if self.scale not in SCALES:
            raise PannsError(f"Unknown frequency axis {self.scale!r}; choose linear or log.")
        if self.channel is not None and int(self.channel) < 0:
            raise PannsError("Channels are counted from 0; give 0 or more, or None for the "
                             "mix of all channels.")

    @property
    def hop(self) -> int:
        return max(1, round(self.n_fft * (1.0 - self.overlap)))

    def with_(self, **changes) -> SpectrogramSettings:
        return replace(self, **changes)


def window(name: str, n: int) -> np.ndarray:
    """A periodic (DFT-even) window of ``n`` samples."""
    if name == "rectangular":
        return np.ones(n)
    from scipy.signal import get_window

    return get_window(name, n, fftbins=True)


def row_frequencies(settings: SpectrogramSettings, sample_rate: int) -> np.ndarray:
    """The frequency (Hz) of each image row, bottom to top."""
    nyquist = sample_rate / 2
    if settings.scale == "linear":
        return np.fft.rfftfreq(settings.n_fft, 1.0 / sample_rate)
    return np.geomspace(log_fmin(settings, sample_rate), nyquist, settings.log_rows)


def log_fmin(settings: SpectrogramSettings, sample_rate: int) -> float:
    """The lowest frequency of a log axis: one FFT bin, at least 10 Hz."""
    return max(10.0, sample_rate / settings.n_fft)


def pcen_warmup_frames(settings: SpectrogramSettings, sample_rate: int) -> int:
    frame_seconds = settings.hop / sample_rate
    return int(min(8192, math.ceil(5 * PCEN_TIME_CONSTANT / frame_seconds)))


def power_frames(x: np.ndarray, settings: SpectrogramSettings) -> np.ndarray:
    """Power spectra (frames, n_fft // 2 + 1) of the frames that start every ``hop``
    samples of ``x``, scaled so that a sine of amplitude 1 has power 1 in its bin."""
    n_fft, hop = settings.n_fft, settings.hop
    if len(x) < n_fft:
        return np.zeros((0, n_fft // 2 + 1), np.float64)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    w = window(settings.window, n_fft)
    spectrum = np.fft.rfft(frames * w, axis=1)
    scale = 2.0 / w.sum()
    return (np.abs(spectrum) * scale) ** 2


def to_rows(power: np.ndarray, settings: SpectrogramSettings, sample_rate: int) -> np.ndarray:
    """Linear FFT bins to the image rows (log axis: interpolated at the rows' frequencies,
    the strongest bin kept where several bins fall into one row)."""
    if settings.scale == "linear":
        return power
    bins = np.fft.rfftfreq(settings.n_fft, 1.0 / sample_rate)
    rows = row_frequencies(settings, sample_rate)
    interpolated = np.empty((len(power), len(rows)))
    position = np.interp(rows, bins, np.arange(len(bins)))
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, len(bins) - 1)
    weight = position - low
    interpolated[:] = power[:, low] * (1 - weight) + power[:, high] * weight
    # where a row covers several bins, keep their maximum (a tone never disappears)
    edges = np.interp(np.sqrt(rows[:-1] * rows[1:]), bins, np.arange(len(bins)))
    edges = np.concatenate([[position[0]], edges, [position[-1]]])
    starts = np.ceil(edges[:-1]).astype(int)
    stops = np.floor(edges[1:]).astype(int) + 1
    wide = np.flatnonzero(stops - starts > 1)
    for k in wide:
        interpolated[:, k] = power[:, starts[k]:stops[k]].max(axis=1)
    return interpolated


def pcen(energy: np.ndarray, settings: SpectrogramSettings, sample_rate: int) -> np.ndarray:
    """PCEN over time (axis 0) of non-negative ``energy`` (frames, rows):
    ``M[t] = (1 - s) M[t-1] + s E[t]`` (``M[0] = E[0]``),
    ``P = (E / (eps + M)^gain + bias)^power - bias^power``, with ``s`` from a 0.4 s time
    constant at this hop, as librosa.pcen computes it."""
    from scipy.signal import lfilter

    if not len(energy):
        return energy.astype(np.float32)
    b = PCEN_TIME_CONSTANT * sample_rate / settings.hop
    s = (math.sqrt(1 + 4 * b**2) - 1) / (2 * b**2)
    zi = (1 - s) * energy[:1]  # so that M[0] = E[0]
    smooth, _ = lfilter([s], [1, s - 1], energy, axis=0, zi=zi)
    out = (energy / np.exp(PCEN_GAIN * np.log(PCEN_EPS + smooth)) + PCEN_BIAS) ** PCEN_POWER
    return (out - PCEN_BIAS**PCEN_POWER).astype(np.float32)


def _audio(path, first_sample: int, n: int, sample_rate: int, channel: int | None,
           frames_in_file: int) -> np.ndarray:
    """Samples ``first_sample`` .. ``first_sample + n`` of the file at its own rate, with
    zeros outside the file."""
    from ..audio import read_range

    out = np.zeros(n, np.float32)
    a, b = max(0, first_sample), min(frames_in_file, first_sample + n)
    if b > a:
        x = read_range(path, a / sample_rate, b / sample_rate, channel=channel)
        take = min(len(x), b - a)
        out[a - first_sample: a - first_sample + take] = x[:take]
    return out


def spectrogram_tile(path, tile: int, settings: SpectrogramSettings, *,
                     frames: int = TILE_FRAMES) -> np.ndarray:
    """Tile ``tile`` of the native-rate spectrogram: (frames, rows) float32 in dB (PCEN
    values with ``settings.pcen``); fewer frames at the end of the file."""
    from ..audio import audio_info

    info = audio_info(path)
    sample_rate = int(info.sample_rate)
    if settings.channel is not None and settings.channel >= info.channels:
        raise PannsError(f"{path} has {info.channels} channel(s); there is no channel "
                         f"{settings.channel + 1}. Choose another channel or the mix.")
    hop, n_fft = settings.hop, settings.n_fft
    total = info.frames // hop + 1  # centred frames of the whole file
    first = tile * frames
    count = max(0, min(frames, total - first))
    if count == 0:
        return np.zeros((0, len(row_frequencies(settings, sample_rate))), np.float32)
    warmup = min(first, pcen_warmup_frames(settings, sample_rate)) if settings.pcen else 0
    start_frame = first - warmup
    start = start_frame * hop - n_fft // 2
    n = (count + warmup - 1) * hop + n_fft
    x = _audio(path, start, n, sample_rate, settings.channel, info.frames)
    power = power_frames(x, settings)
    rows = to_rows(power, settings, sample_rate)
    if settings.pcen:
        image = pcen(np.sqrt(rows) * float(2**31), settings, sample_rate)[warmup:]
    else:
        image = 10.0 * np.log10(np.maximum(rows, 10 ** (FLOOR_DB / 10)))
    return np.ascontiguousarray(image[:count], dtype=np.float32)
