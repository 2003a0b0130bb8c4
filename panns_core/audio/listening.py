"""Listening closely: time-expanded, band-passed and heterodyne playback (no Qt).

A :class:`ListeningChain` turns blocks of a recording at its own rate into blocks for
an output device, in this order:

1. **band-pass** to a box's band (Butterworth, second-order sections, state carried from
   block to block, so the blocks give what one pass over the whole signal gives);
2. **heterodyne**, as a bat detector does: ``y = LP(2 x cos(2 pi f_c t))``, the mix with a
   carrier (phase continuous across blocks) then a low-pass, which moves a call near
   ``f_c`` down to ``|f - f_c|`` with its amplitude kept;
3. **time expansion** by ``speed`` (1/20 to 2): the samples are played as if the file
   had been recorded at ``rate x speed``, so time stretches by ``1 / speed`` and every
   frequency is multiplied by ``speed`` (at 1/10, 40 kHz becomes 4 kHz, as recordists
   expect); the stream is resampled (soxr) to a rate output devices take.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import PannsError

MIN_SPEED, MAX_SPEED = 1 / 20, 2.0
SPEEDS = (2.0, 1.5, 1.0, 0.5, 0.25, 0.125, 0.1, 0.05)  # the menu's choices
DEVICE_RATES = (8000, 11025, 16000, 22050, 32000, 44100, 48000)
DEFAULT_DEVICE_RATE = 48000
FILTER_ORDER = 8  # Butterworth order of the band-pass (as sections) and the low-pass
HETERODYNE_LOWPASS_HZ = 5000.0  # what a heterodyne bat detector lets through


@dataclass(frozen=True)
class ListeningSettings:
    """How to play: ``speed`` (time expansion), ``band`` (low, high) Hz to band-pass
    (None: everything), ``carrier_hz`` for heterodyne (None: off)."""

    speed: float = 1.0
    band: tuple[float, float] | None = None
    carrier_hz: float | None = None
    lowpass_hz: float = HETERODYNE_LOWPASS_HZ

    def __post_init__(self) -> None:
        if not MIN_SPEED - 1e-9 <= self.speed <= MAX_SPEED + 1e-9:
            raise PannsError(f"Playback speed {self.speed:g}x is out of range; choose 1/20x "
                             "(0.05) to 2x.")
        if self.band is not None and not 0 <= self.band[0] < self.band[1]:
            raise PannsError(f"The band {self.band!r} Hz is not a band: give low < high, "
                             "both 0 or more.")
        if self.carrier_hz is not None and self.carrier_hz <= 0:
            raise PannsError("The heterodyne carrier must be above 0 Hz, e.g. 40000.")


def output_rate(sample_rate: int, speed: float = 1.0) -> int:
    """The device rate for playing a ``sample_rate`` file at ``speed``: ``sample_rate x
    speed`` when that is a usual device rate (no resampling), else 48 kHz."""
    effective = sample_rate * speed
    if abs(effective - round(effective)) < 1e-6 and round(effective) in DEVICE_RATES:
        return round(effective)
    return DEFAULT_DEVICE_RATE


def bandpass_sos(low: float, high: float, sample_rate: int,
                 order: int = FILTER_ORDER) -> np.ndarray | None:
    """Butterworth sections passing ``low``..``high`` Hz (a low- or high-pass when one
    edge is at 0 or at Nyquist; None when the band is everything)."""
    from scipy.signal import butter

    nyquist = sample_rate / 2
    low_edge = low > 0
    high_edge = high < nyquist * 0.999
    if low_edge and high_edge:
        return butter(order // 2, [low, high], btype="bandpass", fs=sample_rate, output="sos")
    if low_edge:
        return butter(order, min(low, nyquist * 0.999), btype="highpass", fs=sample_rate,
                      output="sos")
    if high_edge:
        return butter(order, high, btype="lowpass", fs=sample_rate, output="sos")
    return None


def lowpass_sos(cutoff: float, sample_rate: int, order: int = FILTER_ORDER) -> np.ndarray:
    from scipy.signal import butter

    return butter(order, min(cutoff, sample_rate / 2 * 0.999), btype="lowpass",
                  fs=sample_rate, output="sos")


class _Filter:
    """Sections with their state carried over blocks."""

    def __init__(self, sos: np.ndarray) -> None:
        self.sos = sos
        self.zi = np.zeros((sos.shape[0], 2))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        from scipy.signal import sosfilt

        if not len(x):
            return x
        y, self.zi = sosfilt(self.sos, x, zi=self.zi)
        return y


class ListeningChain:
    """Blocks at the file's rate in, blocks at :attr:`out_rate` out (see the module)."""

    def __init__(self, sample_rate: int, settings: ListeningSettings | None = None) -> None:
        self.settings = settings or ListeningSettings()
        self.in_rate = int(sample_rate)
        s = self.settings
        self.out_rate = output_rate(self.in_rate, s.speed)
        self._band = None
        if s.band is not None:
            sos = bandpass_sos(*s.band, self.in_rate)
            self._band = _Filter(sos) if sos is not None else None
        self._carrier_step = None
        if s.carrier_hz is not None and s.carrier_hz >= self.in_rate / 2:
            raise PannsError(
                f"The heterodyne carrier ({s.carrier_hz / 1000:g} kHz) is above what this "
                f"recording holds (up to {self.in_rate / 2000:g} kHz); choose a lower one, "
                "near the calls you want to hear.")
        if s.carrier_hz is not None:
            self._carrier_step = 2 * math.pi * s.carrier_hz / self.in_rate
            self._phase = 0.0
            self._lowpass = _Filter(lowpass_sos(s.lowpass_hz, self.in_rate))
        nominal = self.in_rate * s.speed
        self._resampler = None
        if abs(nominal - self.out_rate) > 1e-6:
            import soxr

            self._resampler = soxr.ResampleStream(nominal, self.out_rate, 1, dtype="float32",
                                                  quality="HQ")

    @property
    def passthrough(self) -> bool:
        return self._band is None and self._carrier_step is None and self._resampler is None

    def process(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        """The output for the next block ``x`` (mono); ``last=True`` flushes the rest."""
        y = np.asarray(x, np.float64)
        if self._band is not None:
            y = self._band(y)
        if self._carrier_step is not None:
            n = np.arange(len(y))
            carrier = np.cos(self._phase + self._carrier_step * n)
            self._phase = (self._phase + self._carrier_step * len(y)) % (2 * math.pi)
            y = self._lowpass(2.0 * y * carrier)
        y = y.astype(np.float32)
        if self._resampler is not None:
            y = self._resampler.resample_chunk(y, last=last)
        return np.ascontiguousarray(y, dtype=np.float32)


def render(x: np.ndarray, sample_rate: int, settings: ListeningSettings | None = None,
           block: int = 65536) -> tuple[np.ndarray, int]:
    """A whole signal through a :class:`ListeningChain` in blocks: (output, its rate)."""
    chain = ListeningChain(sample_rate, settings)
    parts = [chain.process(x[i:i + block], last=i + block >= len(x))
             for i in range(0, max(1, len(x)), block)]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32), chain.out_rate
