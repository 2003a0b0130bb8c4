"""Segment embeddings pooled to windows a user would listen to (about 1 s, with hop).

A model segment is 0.32 s for CNN14 at 32 kHz (0.16 s for TinySED); a window is the mean
of ``window`` consecutive segments, one every ``hop`` segments (about half a window). The
mean, not a normalised vector, is stored: a linear head on it is the model's own output
layer applied to each segment and averaged (:mod:`.agile` registers it as such), and
cosine search normalises on the fly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

WINDOW_SECONDS = 1.0
HOP_FRACTION = 0.5


@dataclass(frozen=True)
class WindowGeometry:
    """Windows of ``window`` segments every ``hop`` segments of ``segment_seconds``."""

    segment_seconds: float
    window: int
    hop: int

    @classmethod
    def for_segment(cls, segment_seconds: float, window_seconds: float = WINDOW_SECONDS,
                    hop_fraction: float = HOP_FRACTION) -> WindowGeometry:  # fmt: skip
        window = max(1, round(window_seconds / segment_seconds))
        hop = max(1, math.ceil(window * hop_fraction))
        return cls(float(segment_seconds), window, hop)

    @property
    def window_seconds(self) -> float:
        return self.window * self.segment_seconds

    @property
    def hop_seconds(self) -> float:
        return self.hop * self.segment_seconds

    def count(self, segments: int) -> int:
        """Windows over ``segments`` segments (a short recording still has one)."""
        if segments <= 0:
            return 0
        return 1 + max(0, math.ceil((segments - self.window) / self.hop))

    def starts(self, count: int) -> np.ndarray:
        """Onsets (s) of the first ``count`` windows."""
        return np.arange(count, dtype=np.float64) * self.hop_seconds

    def to_dict(self) -> dict[str, float | int]:
        return {"segment_seconds": self.segment_seconds, "window": self.window, "hop": self.hop}


def pool(segments: np.ndarray, geometry: WindowGeometry) -> np.ndarray:
    """(segments, dim) -> (windows, dim) float32 means; the last window may be shorter."""
    segments = np.asarray(segments, dtype=np.float32)
    n = geometry.count(len(segments))
    if n == 0:
        return np.zeros((0, segments.shape[1] if segments.ndim == 2 else 0), np.float32)
    csum = np.concatenate([np.zeros((1, segments.shape[1]), np.float64),
                           np.cumsum(segments, axis=0, dtype=np.float64)])  # fmt: skip
    lo = np.arange(n) * geometry.hop
    hi = np.minimum(lo + geometry.window, len(segments))
    return ((csum[hi] - csum[lo]) / (hi - lo)[:, None]).astype(np.float32)
