"""The PANNs model family: registry, feature configs and builders.

Importing this package is cheap (no torch); :func:`build_model` imports torch when it
builds a model (the front end is our own, :mod:`.frontend`: no librosa, scipy or numba).

    >>> from panns_core.models import build_model, architecture_spec
    >>> model = build_model("Cnn14_DecisionLevelMax")  # doctest: +SKIP
"""

from . import architectures as _architectures  # noqa: F401  (registers the builders)
from .config import (
    FEATURES_16K,
    FEATURES_32K,
    ArchSpec,
    FeatureConfig,
    frames_to_segments,
    min_samples_for,
)
from .registry import ARCHITECTURES, architecture_spec, build_model, list_architectures

__all__ = [
    "ARCHITECTURES",
    "FEATURES_16K",
    "FEATURES_32K",
    "ArchSpec",
    "FeatureConfig",
    "architecture_spec",
    "build_model",
    "frames_to_segments",
    "list_architectures",
    "min_samples_for",
]
