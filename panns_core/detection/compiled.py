"""A detector that needs no torch: the cached ONNX graph plus what detection asks of a model.

Importing torch and building the network cost a `panns-sed detect` process about 1.5 s of
its ~10 s over 10 minutes of audio, for a graph that ONNX Runtime runs without them. Once
a checkpoint's graph has been exported and verified against torch on this CPU
(:class:`~.onnx_engine.OrtEngine`), a *compiled detector* is saved beside it: the labels,
model id, calibrated post-processing, the front end's mel matrix and window, and the
graph's name. Later CPU runs of the same weights load that instead of the checkpoint.

It is keyed by the model id (``name@sha12`` of an installed model, ``stem@sha12`` of a
checkpoint file, whose content is hashed once: an index maps a file's path, size and
modification time to its id). Anything missing, stale or unreadable means None: the
caller takes the torch path, which writes the compiled detector again.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

VERSION = 1


@dataclass(frozen=True, eq=False)
class CompiledDetector:
    """What detection asks of a :class:`~panns_core.hub.detector.Detector`, torch-free."""

    labels: tuple[str, ...]
    model_id: str
    architecture: str
    sample_rate: int
    segment_samples: int
    min_samples: int
    graph: Path
    """The exported ONNX graph (its optimized form for this CPU sits beside it)."""
    front_end: dict = field(repr=False)
    path: Path | None = None
    postprocess: Any = None
    framewise: bool = True

    @property
    def segment_seconds(self) -> float:
        return self.segment_samples / self.sample_rate

    def require_sed(self) -> None:
        """Only sound-event-detection models are compiled."""


# -- where things are ----------------------------------------------------------------------
def _folder() -> Path:
    from ..paths import cache_dir

    return cache_dir() / "onnx" / "detectors"


def bundle_path(model_id: str) -> Path:
    """The compiled detector of ``model_id`` on this CPU and onnxruntime version (a new
    onnxruntime exports and verifies the graph again, through torch)."""
    import onnxruntime

    from .engines import cpu_signature

    key = hashlib.sha256(model_id.encode()).hexdigest()[:20]
    return _folder() / f"{key}-v{VERSION}-ort{onnxruntime.__version__}-cpu{cpu_signature()}.npz"


def _index_path() -> Path:
    return _folder() / "files.json"


def _file_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def _read_index() -> dict[str, str]:
    try:
        data = json.loads(_index_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _atomic_write(target: Path, write) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.part")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


# -- writing (after the graph was verified against torch) -----------------------------------
def save(detector: Any, graph: Path, front_end: dict) -> Path:
    """Save ``detector``'s compiled form (graph ``graph``, verified) for torch-free runs."""
    postprocess = detector.postprocess.to_dict() if detector.postprocess is not None else None
    meta = {
        "version": VERSION,
        "model_id": detector.model_id,
        "labels": list(detector.labels),
        "architecture": detector.architecture,
        "sample_rate": int(detector.sample_rate),
        "segment_samples": int(detector.segment_samples),
        "min_samples": int(detector.min_samples),
        "graph": graph.name,
        "postprocess": postprocess,
        "n_fft": int(front_end["n_fft"]),
        "hop": int(front_end["hop"]),
    }
    target = bundle_path(detector.model_id)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, meta=np.array(json.dumps(meta)), mel=front_end["mel"],
                     window=front_end["window"])  # fmt: skip

    _atomic_write(target, write)
    if detector.path is not None and "@" in detector.model_id:
        file = Path(detector.path)
        index = _read_index()
        index[_file_key(file)] = detector.model_id
        # forget entries of files that are gone or changed, so the index stays small
        index = {key: value for key, value in index.items() if _still_there(key)}
        _atomic_write(_index_path(), lambda tmp: tmp.write_text(json.dumps(index, indent=0)))
    return target


def _still_there(key: str) -> bool:
    name = key.rsplit("|", 2)[0]
    try:
        return _file_key(Path(name)) == key
    except OSError:
        return False


# -- loading -------------------------------------------------------------------------------
def gpu_possible() -> bool:
    """True unless this is a Linux machine with no GPU device node (no NVIDIA, ROCm or
    WSL GPU): elsewhere only torch can tell, so the torch path decides."""
    if not sys.platform.startswith("linux"):
        return True
    nodes = ("/dev/nvidia*", "/dev/kfd", "/dev/dxg")
    return any(glob.glob(pattern) for pattern in nodes)


def load(spec: Any, device: str | None = "auto") -> CompiledDetector | None:
    """The compiled detector of the model ``spec`` names (as ``--model`` takes it), or None
    when the torch path must run: a GPU may be used, the model was never compiled here,
    or its files changed or went missing."""
    device = (device or "auto").strip().lower()
    if device not in ("auto", "cpu") or (device == "auto" and gpu_possible()):
        return None
    from . import onnx_engine

    if not onnx_engine.available():
        return None
    try:
        return _load(spec)
    except Exception as error:  # a cache problem is never the user's: take the torch path
        log.debug("no compiled detector for %s: %s", spec, error)
        return None


def _load(spec: Any) -> CompiledDetector | None:
    from ..hub.detector import record_model_id
    from ..hub.resolve import resolve_record

    record = resolve_record(spec)
    if record is not None:
        model_id = record_model_id(record)
        file = record.path
    else:
        file = Path(os.fspath(spec)).expanduser()
        model_id = _read_index().get(_file_key(file))
        if model_id is None:
            return None
    bundle = bundle_path(model_id)
    if not bundle.is_file():
        return None
    with np.load(bundle, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        mel = np.ascontiguousarray(data["mel"], dtype=np.float32)
        window = np.ascontiguousarray(data["window"], dtype=np.float32)
    if meta.get("version") != VERSION or meta.get("model_id") != model_id:
        return None
    graph = bundle.parent.parent / meta["graph"]
    from .onnx_engine import optimized_path, verified

    if not graph.is_file() or not verified(graph):
        return None
    if not optimized_path(graph).is_file():
        return None  # the torch path makes it (once per CPU)
    postprocess = None
    if meta.get("postprocess"):
        from .postprocess import PostprocessParams

        postprocess = PostprocessParams.from_dict(meta["postprocess"])
    front_end = {"n_fft": meta["n_fft"], "hop": meta["hop"], "min_samples": meta["min_samples"],
                 "mel": mel, "window": window}  # fmt: skip
    return CompiledDetector(
        labels=tuple(meta["labels"]), model_id=model_id, architecture=meta["architecture"],
        sample_rate=int(meta["sample_rate"]), segment_samples=int(meta["segment_samples"]),
        min_samples=int(meta["min_samples"]), graph=graph, front_end=front_end,
        path=Path(file), postprocess=postprocess,
    )  # fmt: skip
