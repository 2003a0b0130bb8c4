"""Loading and saving model checkpoints, safely.

One loader for every file a user may have: the official PANNs releases
(``{'model': state_dict, 'iteration': ..., 'sampler': ...}``), bare state_dicts,
DataParallel (``module.``) and ``torch.compile`` (``_orig_mod.``) prefixes, and our
own files, which add metadata (architecture, feature config, labels, parent model,
creation time, metrics). Files are always read with ``torch.load(weights_only=True)``;
the only extra globals allowed are the numpy ones that the official Cnn14_16k file
needs for its stored sampler state.

The architecture is recognised from the state_dict keys and shapes (the number of
classes from the output layer), or read from our metadata.
"""

from __future__ import annotations

import functools
import json
import os
import pickle
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import CheckpointError
from ..labels import audioset_labels
from ..models import FeatureConfig, architecture_spec, build_model, list_architectures

if TYPE_CHECKING:
    import torch
    from torch import nn

FORMAT_NAME = "panns-annotator-checkpoint"
FORMAT_VERSION = 1
_PREFIXES = ("module.", "_orig_mod.")
_STATE_DICT_KEYS = ("model", "state_dict", "model_state_dict")
_HEAD_WEIGHTS = ("fc_audioset.weight", "att_block.cla.weight")


@dataclass
class LoadedCheckpoint:
    """A checkpoint read from disk: weights plus what is needed to rebuild the model."""

    path: Path | None
    state_dict: dict[str, torch.Tensor]
    architecture: str
    feature_config: FeatureConfig
    labels: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def classes_num(self) -> int:
        return len(self.labels)

    def build_model(self, device: str | torch.device = "cpu", *, assign: bool = False
                    ) -> nn.Module:  # fmt: skip
        """The model with these weights loaded (strict), in eval mode, on ``device``.

        ``assign`` builds it on the meta device and takes these tensors as its weights (no
        random initialisation, no copy: with a memory-mapped load nothing is read until
        used); the model then shares them with this checkpoint.
        """
        import torch

        if assign:
            with torch.device("meta"):
                model = build_model(self.architecture, self.classes_num, self.feature_config)
        else:
            model = build_model(self.architecture, self.classes_num, self.feature_config)
        try:
            model.load_state_dict(self.state_dict, strict=True, assign=assign)
            tensors = (*model.parameters(), *model.buffers())
            if assign and any(t.is_meta or (t.is_floating_point() and t.dtype != torch.float32)
                              for t in tensors):  # fmt: skip
                return self.build_model(device)
        except RuntimeError as error:  # checked at load time, so only a broken object gets here
            raise CheckpointError(f"Weights of {self._name()} do not fit: {error}") from None
        return model.to(device).eval()

    def _name(self) -> str:
        return str(self.path) if self.path else "the checkpoint"


# ---------------------------------------------------------------------- safe loading
def numpy_safe_globals() -> list[Any]:
    """The numpy globals an official PANNs file may pickle (Cnn14_16k's sampler state).

    Arrays pickle as ``_reconstruct`` + ``ndarray`` + ``dtype`` (plus the dtype's own
    class, e.g. ``numpy.dtypes.UInt32DType``, since numpy 1.25) and scalars as
    ``scalar``; files written with numpy 1.x name the ``numpy.core`` module, numpy 2
    the ``numpy._core`` one.
    """
    import numpy as np

    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray  # type: ignore[no-redef]

    allowed: list[Any] = [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed.append((multiarray._reconstruct, f"{module}._reconstruct"))
        allowed.append((multiarray.scalar, f"{module}.scalar"))
    kinds = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
             np.uint64, np.float16, np.float32, np.float64)  # fmt: skip
    for kind in kinds:
        dtype_class = type(np.dtype(kind))
        if dtype_class is not np.dtype and dtype_class not in allowed:
            allowed.append(dtype_class)
    return allowed


def _torch_load(path: Path, mmap: bool = False) -> Any:
    import torch

    try:
        with torch.serialization.safe_globals(numpy_safe_globals()), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            if mmap:  # zip-format files only; older ones are read whole below
                try:
                    return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                except (RuntimeError, ValueError):
                    pass
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        refused = _refused_global(str(error))
        if refused:
            raise CheckpointError(
                f"{path} holds Python objects that a safe load refuses ({refused}). It is "
                "not a plain weights file, and loading it could run code. Use a checkpoint "
                "saved as a state_dict, or re-save the weights where the file is trusted."
            ) from None
        reason = "not a PyTorch checkpoint, or damaged"
    except (PermissionError, FileNotFoundError) as error:
        raise CheckpointError(f"Cannot read checkpoint {path}: {error}.") from None
    except Exception as error:  # torch.load fails in many ways on files that are not its own
        reason = f"not a PyTorch checkpoint, or damaged ({type(error).__name__})"
    raise CheckpointError(f"{path} is {reason}. Download or export it again.")


def _refused_global(message: str) -> str | None:
    """The object a weights_only load refused, from torch's error message."""
    found = re.search(r"GLOBAL (\S+) was not an allowed global", message)
    if found:
        return found.group(1)
    found = re.search(r"Can only build .*? but got (<class '[^']+'>)", message)
    return found.group(1) if found else None


# -------------------------------------------------------------------- state dicts
def clean_state_dict(state_dict: dict[str, Any]) -> dict[str, Any]:
    """Strip ``module.`` / ``_orig_mod.`` prefixes (DataParallel, torch.compile)."""
    cleaned: dict[str, Any] = {}
    for key, value in state_dict.items():
        while key.startswith(_PREFIXES):
            key = key.split(".", 1)[1]
        cleaned[key] = value
    return cleaned


def _extract(obj: Any, path: Path | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state_dict, our metadata or {}) from whatever ``torch.load`` returned."""
    import torch

    name = str(path) if path else "The checkpoint"
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"{name} holds a {type(obj).__name__}, not model weights. "
            "Expected a state_dict or a dict with a 'model' entry."
        )
    metadata: dict[str, Any] = {}
    if obj.get("format") == FORMAT_NAME:
        metadata = dict(obj.get("metadata") or {})
    state_dict: Any = obj
    for key in _STATE_DICT_KEYS:
        if isinstance(obj.get(key), dict):
            state_dict = obj[key]
            break
    tensors = {k: v for k, v in state_dict.items() if isinstance(v, torch.Tensor)}
    if not tensors or len(tensors) != len(state_dict):
        others = sorted(str(k) for k, v in state_dict.items() if not isinstance(v, torch.Tensor))
        raise CheckpointError(
            f"{name} has no model weights (entries that are not tensors: "
            f"{', '.join(others[:8]) or 'none'}). Expected a PANNs checkpoint or a state_dict."
        )
    return clean_state_dict(state_dict), metadata


def _classes_num(state_dict: dict[str, Any]) -> int | None:
    for key in _HEAD_WEIGHTS:
        if key in state_dict and state_dict[key].dim() >= 1:
            return int(state_dict[key].shape[0])
    return None


@functools.lru_cache(maxsize=64)
def _expected_shapes(
    arch: str, classes_num: int, feature_config: FeatureConfig
) -> dict[str, tuple[int, ...]]:
    """Keys and shapes of ``arch``'s state_dict, from a build on the meta device."""
    import torch

    with torch.device("meta"):
        model = build_model(arch, classes_num, feature_config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@dataclass(frozen=True)
class _Match:
    arch: str
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    mismatched: tuple[str, ...]  # "key: got (..) expected (..)"

    @property
    def exact(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    @property
    def distance(self) -> int:
        return len(self.missing) + len(self.unexpected) + len(self.mismatched)

    def describe(self, limit: int = 6) -> str:
        parts = []
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected),
                            ("different shape", self.mismatched)):  # fmt: skip
            if keys:
                more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
                parts.append(f"{label}: {', '.join(keys[:limit])}{more}")
        return "; ".join(parts)


def _compare(
    state_dict: dict[str, Any], arch: str, feature_config: FeatureConfig | None = None
) -> _Match:
    classes = _classes_num(state_dict) or 527
    expected = _expected_shapes(
        arch, classes, feature_config or architecture_spec(arch).feature_config
    )
    got = {k: tuple(v.shape) for k, v in state_dict.items()}
    mismatched = tuple(
        f"{k} {list(got[k])} instead of {list(expected[k])}"
        for k in expected
        if k in got and got[k] != expected[k]
    )
    return _Match(
        arch=arch,
        missing=tuple(k for k in expected if k not in got),
        unexpected=tuple(k for k in got if k not in expected),
        mismatched=mismatched,
    )


def architecture_candidates(state_dict: dict[str, Any]) -> list[str]:
    """Every registered architecture whose keys and shapes match ``state_dict`` exactly.

    Cnn14, Cnn14_DecisionLevelMax and Cnn14_DecisionLevelAvg have identical weights
    (only the pooling differs), so a CNN14 state_dict matches all three.
    """
    state_dict = clean_state_dict(state_dict)
    return [a for a in list_architectures() if _compare(state_dict, a).exact]


def detect_architecture(state_dict: dict[str, Any], hint: str | None = None) -> str:
    """The architecture of ``state_dict``, recognised from its keys and shapes.

    When several architectures fit (the CNN14 heads), ``hint`` (a file name or an
    architecture name) decides if it names one of them; otherwise the first
    registered one wins (Cnn14_DecisionLevelMax, the event-detection model). A
    state_dict that fits nothing raises :class:`CheckpointError` naming the closest
    architecture and the keys that differ.
    """
    state_dict = clean_state_dict(state_dict)
    matches = [_compare(state_dict, a) for a in list_architectures()]
    exact = [m.arch for m in matches if m.exact]
    if exact:
        if hint and len(exact) > 1:
            folded = hint.casefold()
            for arch in sorted(exact, key=len, reverse=True):
                if arch.casefold() in folded:
                    return arch
        return exact[0]
    closest = min(matches, key=lambda m: m.distance)
    raise CheckpointError(
        "The weights match no known architecture. Closest is "
        f"{closest.arch} ({closest.describe()}). Use a PANNs checkpoint "
        f"({', '.join(list_architectures())}) or one saved by this program."
    )


# --------------------------------------------------------------------------- loading
def load_checkpoint(
    path: str | os.PathLike[str], architecture: str | None = None, *, mmap: bool = False
) -> LoadedCheckpoint:
    """Read a checkpoint file safely and recognise what it holds.

    ``architecture`` forces the architecture (it must still match the weights);
    otherwise our metadata, then the keys and shapes (with the file name as a hint
    between architectures with identical weights) decide. ``mmap`` maps the weights
    instead of reading them (pages are read when used).
    """

    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file. Give a .pth file.")
    if not path.is_file():
        raise CheckpointError(
            f"Checkpoint {path} does not exist. Check the path, or list installed models "
            "with `panns-sed models list`."
        )
    state_dict, metadata = _extract(_torch_load(path, mmap), path)

    arch = architecture or metadata.get("architecture")
    feature_config = None
    if metadata.get("feature_config"):
        try:
            feature_config = FeatureConfig.from_dict(metadata["feature_config"])
        except Exception as error:
            raise CheckpointError(f"{path}: metadata has a bad feature config: {error}") from None
    if arch:
        try:
            arch = architecture_spec(arch).name
        except Exception:
            raise CheckpointError(
                f"{path} names architecture {arch!r}, which this program does not know. "
                f"Known: {', '.join(list_architectures())}."
            ) from None
        match = _compare(state_dict, arch, feature_config)
        if not match.exact:
            raise CheckpointError(
                f"{path}: the weights do not fit architecture {arch} ({match.describe()}). "
                "The file is damaged or was saved for another architecture."
            )
    else:
        arch = detect_architecture(state_dict, hint=path.name)
    spec = architecture_spec(arch)
    candidates = architecture_candidates(state_dict) if not metadata.get("architecture") else [arch]

    classes_num = _classes_num(state_dict) or 0
    labels = metadata.get("labels")
    if labels is None:
        from .detector import default_labels

        labels = default_labels(classes_num)
    labels = [str(label) for label in labels]
    if len(labels) != classes_num:
        raise CheckpointError(
            f"{path} stores {len(labels)} labels for a model with {classes_num} outputs. "
            "The file is inconsistent; export it again."
        )
    info = {k: v for k, v in metadata.items() if k not in ("labels",)}
    if len(candidates) > 1:
        info["architecture_candidates"] = candidates
    return LoadedCheckpoint(
        path=path,
        state_dict=state_dict,
        architecture=arch,
        feature_config=feature_config or spec.feature_config,
        labels=labels,
        metadata=info,
    )


# ---------------------------------------------------------------------------- saving
def _json_clean(value: Any, what: str) -> Any:
    """``value`` as plain JSON types (so a weights_only load can read it back)."""
    try:
        return json.loads(json.dumps(value, allow_nan=True, default=_json_default))
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"Cannot store {what} in a checkpoint: {error}") from None


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy / torch scalars and arrays
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def save_checkpoint(
    path: str | os.PathLike[str],
    model_or_state_dict: nn.Module | dict[str, torch.Tensor],
    *,
    architecture: str,
    feature_config: FeatureConfig,
    labels: list[str] | None = None,
    parent: str | None = None,
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write our checkpoint format (weights + metadata) atomically; returns the path.

    ``labels=None`` means the AudioSet classes, for a model with 527 outputs.

    The file is ``{'format', 'format_version', 'model': state_dict, 'metadata': {...}}``,
    so code that expects an official PANNs file (``checkpoint['model']``) reads it too.
    """
    import torch
    from torch import nn

    path = Path(path)
    if isinstance(model_or_state_dict, nn.Module):
        state_dict = model_or_state_dict.state_dict()
    else:
        state_dict = dict(model_or_state_dict)
    state_dict = {k: v.detach().cpu().clone() for k, v in clean_state_dict(state_dict).items()}
    arch = architecture_spec(architecture).name
    match = _compare(state_dict, arch, feature_config)
    if not match.exact:
        raise CheckpointError(f"The weights do not fit architecture {arch} ({match.describe()}).")
    classes_num = _classes_num(state_dict)
    if labels is None and classes_num == len(audioset_labels()):
        labels = audioset_labels().names
    if labels is None or len(labels) != classes_num:
        raise CheckpointError(
            f"{len(labels or [])} labels given for a model with {classes_num} outputs; "
            "pass one label per output class."
        )
    metadata = {
        "architecture": arch,
        "feature_config": feature_config.to_dict(),
        "labels": [str(label) for label in labels],
        "parent": parent,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "metrics": _json_clean(metrics or {}, "metrics"),
        "extra": _json_clean(extra or {}, "extra"),
        "software": f"panns-annotator {__version__}",
    }
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model": state_dict,
        "metadata": metadata,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
