"""One object for "a model ready to use": the network plus what is needed to use it.

A :class:`Detector` is what the hub resolves a user's model name to, and what detection,
live detection, the embedding pass and fine-tuning take (in the spirit of torchaudio's
pipeline bundles). Nothing is patched onto the ``nn.Module``: labels, the model id and the
feature config travel with it here.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CheckpointError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ..detection.postprocess import PostprocessParams
    from ..models import FeatureConfig
    from .checkpoints import LoadedCheckpoint
    from .installed import ModelRecord


@dataclass(frozen=True, eq=False)
class Detector:
    """A PANNs network in eval mode with its labels and identity.

    ``model_id`` names the weights for caches and provenance: ``name@sha12`` for an
    installed model, ``file-stem@sha12`` for a checkpoint file, the architecture name for
    a module built in memory. Empty ``labels`` mean an untrained network (a base for
    training from scratch).
    """

    module: nn.Module
    labels: tuple[str, ...]
    model_id: str
    path: Path | None = None
    postprocess: PostprocessParams | None = None
    """Post-processing calibrated for this model (a fine-tuned model saves it with
    ``save_checkpoint(..., extra={"postprocess": params.to_dict()})``); None: defaults."""

    def __post_init__(self) -> None:
        classes = getattr(self.module, "classes_num", None)
        if self.labels and classes is not None and len(self.labels) != classes:
            raise CheckpointError(
                f"{len(self.labels)} labels given for a model with {classes} classes."
            )

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_module(cls, module: nn.Module, labels: list[str] | tuple[str, ...] | None = None,
                    model_id: str | None = None) -> Detector:
        """Wrap a module built in memory (tests, benchmarks, training)."""
        if labels is None:
            labels = default_labels(int(module.classes_num))
        return cls(module.eval(), tuple(str(label) for label in labels),
                   model_id or str(getattr(module, "arch_name", type(module).__name__)))

    @classmethod
    def from_checkpoint(cls, loaded: LoadedCheckpoint, device: str | torch.device = "cpu",
                        model_id: str | None = None) -> Detector:
        """Build the network of a loaded checkpoint on ``device``."""
        module = loaded.build_model(device)
        return cls(module, tuple(loaded.labels), model_id or checkpoint_model_id(loaded),
                   loaded.path, calibrated_postprocess(loaded.metadata))

    def to(self, device: str | torch.device) -> Detector:
        """The same detector with its network on ``device``."""
        return replace(self, module=self.module.to(device).eval())

    # -- what users of a detector ask -------------------------------------------------
    @property
    def architecture(self) -> str:
        return str(getattr(self.module, "arch_name", type(self.module).__name__))

    @property
    def feature_config(self) -> FeatureConfig:
        return self.module.feature_config

    @property
    def sample_rate(self) -> int:
        return int(self.module.feature_config.sample_rate)

    @property
    def segment_samples(self) -> int:
        return int(self.module.segment_samples)

    @property
    def segment_seconds(self) -> float:
        """The model's true time resolution: one score per segment."""
        return self.segment_samples / self.sample_rate

    @property
    def min_samples(self) -> int:
        return int(getattr(self.module, "min_samples", self.segment_samples))

    @property
    def framewise(self) -> bool:
        """True for sound-event-detection models (scores over time)."""
        return bool(getattr(self.module, "framewise", False))

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def require_sed(self) -> None:
        """Raise unless the model gives scores over time."""
        if not self.framewise:
            raise CheckpointError(
                f"{self.architecture} is a tagging model (one score per clip); detection "
                "needs a sound-event-detection model such as Cnn14_DecisionLevelMax. Install "
                "one with `panns-sed models download Cnn14_DecisionLevelMax`."
            )


def calibrated_postprocess(metadata: dict) -> PostprocessParams | None:
    """The post-processing a checkpoint's metadata carries, if any (bad values: None)."""
    metadata = metadata or {}
    data = metadata.get("postprocess") or (metadata.get("extra") or {}).get("postprocess")
    if not data:
        return None
    from ..detection.postprocess import PostprocessParams

    try:
        return PostprocessParams.from_dict(data)
    except (TypeError, ValueError):
        return None


def default_labels(classes_num: int) -> list[str]:
    """AudioSet names for 527 outputs, else ``class_<i>``."""
    from ..labels import audioset_labels

    names = audioset_labels().names
    if classes_num == len(names):
        return list(names)
    return [f"class_{i}" for i in range(classes_num)]


def record_model_id(record: ModelRecord) -> str:
    return f"{record.name}@{record.sha256[:12]}"


def checkpoint_model_id(loaded: LoadedCheckpoint) -> str:
    """``file-stem@sha12`` of the checkpoint file (its content, not its place)."""
    if loaded.path is None:
        return loaded.architecture
    with open(os.fspath(loaded.path), "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return f"{Path(loaded.path).stem}@{digest[:12]}"
