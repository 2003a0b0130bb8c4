"""``TinySED``: a narrow CNN6-like event-detection network for tests and benchmarks.

Four 3x3 ConvBlocks of 16-128 channels on a 16 kHz, 32-mel front end, with the
PANNs SED head (max over 0.16 s segments). About 1.4 M parameters: small enough to
be trained from random initialisation on two CPU cores in a CI run. It is
registered like the reference architectures (``reference=False``), so its
checkpoints save, load, and run through detection like any other model, in any
process that imported :mod:`panns_core.training`.
"""

from __future__ import annotations

from typing import Any

from ..models import ARCHITECTURES, ArchSpec, FeatureConfig
from ..models.registry import register_architecture

TINY_SED = "TinySED"
TINY_FEATURES = FeatureConfig(16000, 512, 160, 32, 50, 8000)
TINY_CHANNELS = (16, 32, 64, 128)


def _build(classes_num: int, feature_config: FeatureConfig) -> Any:
    from ..models.network import PannsCNN

    model = PannsCNN(
        arch_name=TINY_SED,
        feature_config=feature_config,
        classes_num=classes_num,
        channels=TINY_CHANNELS,
        last_pool=(2, 2),
        head="max",
    )
    # Lighter dropout than the reference (0.2 / 0.5): a net this narrow trained from
    # scratch on little data learns several times faster with it.
    model.block_dropout, model.head_dropout = 0.1, 0.2
    return model


if TINY_SED not in ARCHITECTURES:
    register_architecture(
        ArchSpec(
            name=TINY_SED,
            feature_config=TINY_FEATURES,
            framewise=True,
            segment_frames=16,
            embedding_dim=TINY_CHANNELS[-1],
            description="narrow CNN6-like event detector for tests (not pretrained)",
            reference=False,
        )
    )(_build)
