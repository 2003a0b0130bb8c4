"""``TinySED``, the narrow event detector the fine-tuning tests and benchmarks train.

It is registered with the other architectures in :mod:`panns_core.models.architectures`
(so any process can load its checkpoints); these names are kept for the training code.
"""

from __future__ import annotations

from ..models import architecture_spec

TINY_SED = "TinySED"
TINY_FEATURES = architecture_spec(TINY_SED).feature_config
