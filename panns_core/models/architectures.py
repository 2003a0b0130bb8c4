"""The registered architectures: each is one line of arguments to :class:`PannsCNN`.

Names are the reference class names, so a checkpoint file name such as
``Cnn14_DecisionLevelMax_mAP=0.385.pth`` tells which one it holds.
"""

from __future__ import annotations

from typing import Any

from .config import FEATURES_16K, FEATURES_32K, ArchSpec, FeatureConfig
from .registry import register_architecture

CNN14 = {"channels": (64, 128, 256, 512, 1024, 2048), "last_pool": (1, 1)}
CNN10 = {"channels": (64, 128, 256, 512), "last_pool": (2, 2)}
CNN6 = {"channels": (64, 128, 256, 512), "last_pool": (2, 2), "kernel_size": 5}
MOBILENET_V1 = {"trunk": "mobilenet_v1"}


def _register(
    name: str,
    description: str,
    *,
    features: FeatureConfig = FEATURES_32K,
    embedding_dim: int = 2048,
    segment_frames: int = 32,
    reference: bool = True,
    dropout: tuple[float, float] | None = None,
    **model_args: Any,
) -> None:
    spec = ArchSpec(
        name=name,
        feature_config=features,
        framewise=model_args.get("head", "clip") != "clip",
        segment_frames=segment_frames,
        embedding_dim=embedding_dim,
        description=description,
        reference=reference,
    )

    def builder(classes_num: int, feature_config: FeatureConfig) -> Any:
        from .network import PannsCNN  # torch is imported only when a model is built

        model = PannsCNN(
            arch_name=name, feature_config=feature_config, classes_num=classes_num, **model_args
        )
        if dropout is not None:
            model.block_dropout, model.head_dropout = dropout
        return model

    builder.__name__ = builder.__qualname__ = name
    register_architecture(spec)(builder)


_register("Cnn14_DecisionLevelMax", "CNN14 event detection, max over 0.32 s segments",
          head="max", **CNN14)  # fmt: skip
_register("Cnn14_DecisionLevelAvg", "CNN14 event detection, mean over 0.32 s segments",
          head="avg", **CNN14)  # fmt: skip
_register("Cnn14_DecisionLevelAtt", "CNN14 event detection, attention over 0.32 s segments",
          head="att", **CNN14)  # fmt: skip
_register("Cnn14", "CNN14 audio tagging (clip level), 32 kHz", **CNN14)
_register("Cnn14_16k", "CNN14 audio tagging, 16 kHz", features=FEATURES_16K, **CNN14)
_register("Wavegram_Logmel_Cnn14", "CNN14 on log-mel plus a learned Wavegram",
          wavegram=True, **CNN14)  # fmt: skip
_register("Cnn10", "CNN10 audio tagging (smaller)", embedding_dim=512, segment_frames=16,
          **CNN10)  # fmt: skip
_register("Cnn6", "CNN6 audio tagging (5x5 convs, fast)", embedding_dim=512,
          segment_frames=16, **CNN6)  # fmt: skip
_register("MobileNetV1", "MobileNetV1 audio tagging (fast)", embedding_dim=1024,
          **MOBILENET_V1)  # fmt: skip

# Not a released model: a small event detector to fine-tune quickly on a CPU (and the
# tiny model of fast tests). Same weights as Cnn6, so Cnn6 checkpoints initialise it.
_register("Cnn6_DecisionLevelMax", "CNN6 event detection, max over 0.16 s segments (ours)",
          head="max", embedding_dim=512, segment_frames=16, reference=False, **CNN6)  # fmt: skip

# Not a released model: a narrow CNN6-like event detector on a 16 kHz, 32-mel front end
# (about 0.6 M parameters), small enough to train from random initialisation on two CPU
# cores; the model of the fine-tuning proof and of fast tests. Lighter dropout than the
# reference (0.2 / 0.5): a net this narrow, trained from scratch on little data, learns
# several times faster with it.
TINY_SED_FEATURES = FeatureConfig(16000, 512, 160, 32, 50, 8000)
_register("TinySED", "narrow CNN6-like event detector for tests (not pretrained)",
          features=TINY_SED_FEATURES, head="max", embedding_dim=128, segment_frames=16,
          reference=False, dropout=(0.1, 0.2), channels=(16, 32, 64, 128),
          last_pool=(2, 2))  # fmt: skip
