"""Plain data describing the PANNs architectures (no torch import here).

A :class:`FeatureConfig` is the front end of a model (the log-mel it computes), an
:class:`ArchSpec` is what the program needs to know about an architecture before
building it: its default front end, whether it has a time axis, its minimum input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import PannsError


@dataclass(frozen=True)
class FeatureConfig:
    """The log-mel front end of a model: STFT and mel filter bank settings."""

    sample_rate: int
    window_size: int
    hop_size: int
    mel_bins: int
    fmin: float
    fmax: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureConfig:
        try:
            return cls(
                sample_rate=int(data["sample_rate"]),
                window_size=int(data["window_size"]),
                hop_size=int(data["hop_size"]),
                mel_bins=int(data["mel_bins"]),
                fmin=data["fmin"],
                fmax=data["fmax"],
            )
        except (KeyError, TypeError, ValueError) as error:
            raise PannsError(
                f"Feature config {dict(data)!r} is incomplete or malformed ({error}); it needs "
                "sample_rate, window_size, hop_size, mel_bins, fmin and fmax."
            ) from None

    def num_frames(self, num_samples: int) -> int:
        """Log-mel frames of a centred STFT over ``num_samples`` samples."""
        return num_samples // self.hop_size + 1

    @property
    def frame_seconds(self) -> float:
        return self.hop_size / self.sample_rate


FEATURES_32K = FeatureConfig(32000, 1024, 320, 64, 50, 14000)
FEATURES_16K = FeatureConfig(16000, 512, 160, 64, 50, 8000)


def min_samples_for(feature_config: FeatureConfig, segment_frames: int) -> int:
    """Shortest input that leaves one time step after the network's time pooling.

    ``segment_frames`` frames are pooled into one step, so the STFT must give at
    least that many frames; the reflect padding of a centred STFT also needs more
    than half a window.
    """
    by_pooling = (segment_frames - 1) * feature_config.hop_size
    by_padding = feature_config.window_size // 2 + 1
    return max(by_pooling, by_padding)


Builder = Callable[[int, FeatureConfig], Any]


@dataclass(frozen=True)
class ArchSpec:
    """What is known about an architecture before it is built.

    ``segment_frames`` is the number of log-mel frames pooled into one time step of
    the network's last feature map: for the SED models, the true time resolution of
    their output (32 frames = 0.32 s at 32 kHz).
    """

    name: str
    feature_config: FeatureConfig
    framewise: bool
    segment_frames: int
    embedding_dim: int
    description: str = ""
    reference: bool = True
    builder: Builder | None = field(default=None, repr=False, compare=False)

    @property
    def min_samples(self) -> int:
        return min_samples_for(self.feature_config, self.segment_frames)

    @property
    def segment_samples(self) -> int:
        return self.segment_frames * self.feature_config.hop_size

    @property
    def min_seconds(self) -> float:
        return self.min_samples / self.feature_config.sample_rate

    @property
    def segment_seconds(self) -> float:
        return self.segment_samples / self.feature_config.sample_rate


def frames_to_segments(num_frames: int, segment_frames: int) -> int:
    """Time steps left after pooling ``num_frames`` frames by halving (floor) each time."""
    steps = num_frames
    for _ in range(int(math.log2(segment_frames))):
        steps //= 2
    return steps
