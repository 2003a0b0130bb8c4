"""Peak and RMS levels in dBFS for a level meter."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

SILENCE_DB = -120.0


def full_scale(dtype: np.dtype | str) -> float:
    """The value that maps to 0 dBFS for samples of this dtype."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return 1.0
    return float(2 ** (8 * dtype.itemsize - 1))


def to_float(block: np.ndarray) -> np.ndarray:
    """Samples as float32 in [-1, 1] (integers scaled by their full scale)."""
    if block.dtype.kind == "f":
        return block.astype(np.float32, copy=False)
    return block.astype(np.float32) / np.float32(full_scale(block.dtype))


def to_db(value: float) -> float:
    """Amplitude (1.0 = full scale) in dBFS, floored at SILENCE_DB."""
    return 20.0 * math.log10(value) if value > 10 ** (SILENCE_DB / 20) else SILENCE_DB


@dataclass(frozen=True)
class Level:
    """Loudness since the previous reading: peak and RMS in dBFS, and clipping."""

    peak_db: float = SILENCE_DB
    rms_db: float = SILENCE_DB
    clipped: bool = False


class LevelMeter:
    """Accumulates blocks (from the writer thread); ``read()`` returns and resets."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._peak = 0.0
        self._sumsq = 0.0
        self._count = 0

    def add(self, block: np.ndarray) -> None:
        """``block`` is float in [-1, 1], any shape; all channels count."""
        if block.size == 0:
            return
        peak = float(np.max(np.abs(block)))
        sumsq = float(np.dot(block.ravel(), block.ravel()))
        with self._lock:
            self._peak = max(self._peak, peak)
            self._sumsq += sumsq
            self._count += block.size

    def read(self) -> Level:
        with self._lock:
            if not self._count:
                return Level()
            rms = math.sqrt(self._sumsq / self._count)
            level = Level(to_db(self._peak), to_db(rms), self._peak >= 0.999)
            self._reset()
        return level
