"""How hertz map to the y coordinate of a time-frequency view (Qt-free).

A view's image has ``rows`` rows stacked from ``y_origin`` over ``y_span``; row ``k``'s
centre is where its frequency maps. Three scales:

* ``linear`` (native-rate spectrogram): y is hertz; rows every ``rate / n_fft``;
* ``log`` (native-rate spectrogram): y is log10 hertz from one FFT bin (at least 10 Hz)
  to Nyquist;
* ``mel`` (log-mel view): y is the mel bin; the mel scale is linear in y, bin ``i``'s
  centre at ``i + 0.5``.

Frequencies below or above the view map to its bottom or top edge; the bottom edge of a
linear or log axis is 0 Hz and the top is the Nyquist frequency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .mel import hz_to_mel, mel_to_hz


@dataclass(frozen=True)
class FrequencyAxis:
    scale: str  # linear, log or mel
    rows: int
    low_hz: float  # the lowest row's frequency (mel: fmin of the filterbank)
    high_hz: float  # the highest row's frequency (linear/log: Nyquist; mel: fmax)

    @classmethod
    def native(cls, settings, sample_rate: int) -> FrequencyAxis:
        """The axis of a native-rate spectrogram with ``settings``
        (:class:`~panns_core.display.spectrogram.SpectrogramSettings`)."""
        from .spectrogram import log_fmin, row_frequencies

        rows = len(row_frequencies(settings, sample_rate))
        low = 0.0 if settings.scale == "linear" else log_fmin(settings, sample_rate)
        return cls(settings.scale, rows, low, sample_rate / 2)

    @classmethod
    def mel(cls, n_mels: int, fmin: float, fmax: float) -> FrequencyAxis:
        return cls("mel", n_mels, float(fmin), float(fmax))

    # ------------------------------------------------------------- geometry
    @property
    def _step(self) -> float:
        """y distance between neighbouring rows."""
        if self.scale == "linear":
            return (self.high_hz - self.low_hz) / (self.rows - 1)
        if self.scale == "log":
            return (math.log10(self.high_hz) - math.log10(self.low_hz)) / (self.rows - 1)
        return 1.0

    @property
    def y_origin(self) -> float:
        if self.scale == "linear":
            return self.low_hz - self._step / 2
        if self.scale == "log":
            return math.log10(self.low_hz) - self._step / 2
        return 0.0

    @property
    def y_span(self) -> float:
        return self.rows * self._step

    @property
    def y_top(self) -> float:
        return self.y_origin + self.y_span

    def _mel(self) -> tuple[float, float]:
        low = float(hz_to_mel(self.low_hz))
        return low, (float(hz_to_mel(self.high_hz)) - low) / (self.rows + 1)

    # -------------------------------------------------------------- mapping
    def hz_to_y(self, hz):
        """View y of frequencies (array or float)."""
        hz = np.asarray(hz, np.float64)
        if self.scale == "linear":
            y = np.clip(hz, self.low_hz, self.high_hz)
        elif self.scale == "log":
            y = np.log10(np.clip(hz, self.low_hz, self.high_hz))
            y = np.where(hz < self.low_hz, self.y_origin, y)
        else:
            low, step = self._mel()
            y = np.clip((hz_to_mel(np.maximum(hz, 0.0)) - low) / step - 0.5, 0.0,
                        float(self.rows))
        return float(y) if np.ndim(y) == 0 else y

    def y_to_hz(self, y):
        """Frequencies of view y (the edges: 0 Hz and Nyquist for linear and log)."""
        y = np.clip(np.asarray(y, np.float64), self.y_origin, self.y_top)
        if self.scale == "linear":
            hz = np.clip(y, 0.0, self.high_hz)
        elif self.scale == "log":
            hz = np.clip(10.0 ** y, self.low_hz, self.high_hz)
            hz = np.where(y <= self.y_origin, 0.0, hz)
        else:
            low, step = self._mel()
            hz = mel_to_hz(low + (y + 0.5) * step)
        return float(hz) if np.ndim(hz) == 0 else hz
