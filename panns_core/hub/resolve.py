"""Turn what a user typed (``--model NAME``, a path, or nothing) into a model.

Lookup order: an installed model (name, any case, or a catalogue alias of an installed
download), then a checkpoint file path; ``None`` means the registry's default model.
Anything else is a :class:`ModelNotFoundError` that says how to get the model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ModelNotFoundError
from .installed import ModelRecord, ModelRegistry

if TYPE_CHECKING:
    import torch

    from .checkpoints import LoadedCheckpoint
    from .detector import Detector

Spec = str | os.PathLike[str] | None


def resolve_record(spec: Spec, registry: ModelRegistry | None = None) -> ModelRecord | None:
    """The installed model ``spec`` names (None: the default), or None for a file path."""
    registry = registry or ModelRegistry()
    if spec is None:
        return registry.default_model()
    text = os.fspath(spec)
    record = registry.find(text)
    if record is not None:
        if not record.path.is_file():
            raise ModelNotFoundError(
                f"The file of model {record.name} is missing ({record.path}). Remove it with "
                f"`panns-sed models remove {record.name}` and install it again."
            )
        return record
    path = Path(text).expanduser()
    if path.is_file():
        return None
    if registry.catalogue.find(text) is None and _looks_like_path(text):
        raise ModelNotFoundError(f"No checkpoint file at {path}. Check the path, or give the "
                                 "name of an installed model (`panns-sed models list`).")
    registry.get_model(text)  # raises with advice (download NAME / import PATH)
    raise AssertionError("unreachable")  # pragma: no cover


def resolve_checkpoint_path(spec: Spec, registry: ModelRegistry | None = None) -> Path:
    """The checkpoint file ``spec`` refers to, without loading it."""
    record = resolve_record(spec, registry)
    return record.path if record is not None else Path(os.fspath(spec)).expanduser()


def resolve_checkpoint(spec: Spec = None, registry: ModelRegistry | None = None
                       ) -> LoadedCheckpoint:
    """Load the checkpoint of a registry name, a ``.pth`` path, or (None) the default."""
    path = resolve_checkpoint_path(spec, registry)  # errors before importing torch
    from .checkpoints import load_checkpoint

    return load_checkpoint(path)


def load_detector(spec: Spec = None, *, device: str | torch.device = "cpu",
                  registry: ModelRegistry | None = None) -> Detector:
    """The :class:`Detector` of a registry name, a ``.pth`` path, or (None) the default."""
    from .checkpoints import load_checkpoint
    from .detector import Detector, calibrated_postprocess, checkpoint_model_id, record_model_id

    record = resolve_record(spec, registry)
    path = record.path if record is not None else Path(os.fspath(spec)).expanduser()
    # the weights are mapped and taken as they are (no copy): a detector whose engine is
    # the cached onnxruntime graph never reads them, so they cost no memory
    loaded = load_checkpoint(path, mmap=True)
    model_id = record_model_id(record) if record is not None else checkpoint_model_id(loaded)
    module = loaded.build_model(device, assign=True)
    return Detector(module, tuple(loaded.labels), model_id, loaded.path,
                    calibrated_postprocess(loaded.metadata))


def resolve_model_labels(spec: Spec = None, registry: ModelRegistry | None = None) -> list[str]:
    """Class names of a model; installed models answer from the registry (no torch)."""
    record = resolve_record(spec, registry)
    if record is not None:
        return list(record.labels)
    return list(resolve_checkpoint(spec, registry).labels)


def _looks_like_path(text: str) -> bool:
    return (os.sep in text or "/" in text or text.startswith("~")
            or text.lower().endswith((".pth", ".pt", ".ckpt")))
