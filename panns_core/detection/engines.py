"""The engines that run a detector on windows of audio, and which one a run uses.

An engine maps a batch of equal-length windows (batch, samples) at the model's rate to
segment probabilities (batch, segments, classes), and carries the window geometry that
suits it (``body_seconds``, ``batch_size``) and the ``precision`` stored with the scores.

- **Exact** (fp32): on the CPU, :class:`~.onnx_engine.OrtEngine` (ONNX Runtime, about twice
  torch's speed, equal to ~1e-6) where onnxruntime is installed and the model is a PANNs
  SED model without the Wavegram branch; otherwise torch. CUDA and MPS: torch.
- **Fast**: fp16 autocast on CUDA and MPS. On the CPU the candidates are the exact
  engine, ONNX Runtime's int8 form of its graph (:mod:`.int8_graph`), and, where bf16 is
  native (AVX512-BF16, AMX), torch bf16 autocast over batches of short windows. They are
  timed once (a few seconds), and the fastest that beats exact by 10% and whose events on
  check audio agree >= 99% with exact is cached in ``cache_dir()/engines``. When none
  does, the fast path says so (:attr:`Engine.note`) and runs exact.
  ``precision="int8"`` forces ONNX Runtime's int8 (torch's quantized model with
  ``engine="torch"`` or without onnxruntime).

Training, CUDA and MPS stay on torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ..hub.detector import Detector

ENGINES = ("auto", "torch", "onnxruntime")
PRECISIONS = ("fp32", "bf16", "fp16", "int8")
CONTEXT_SECONDS = 1.92  # = inference.DEFAULT_CONTEXT_SECONDS
# torch on the CPU: fp32 forward calls have a fixed cost, so windows are long-ish; 30.72 s
# keeps the activations (and the peak RSS) well under 1 GB. bf16 autocast only pays over
# batches of short windows (one 120-s window ran no faster than fp32).
TORCH_CPU_GEOMETRY = {"fp32": (30.72, 1), "int8": (30.72, 1), "bf16": (20.48, 2)}
TORCH_GPU_GEOMETRY = (10.24, 8)
_LOCK = threading.Lock()
NOTHING_FASTER = "this CPU has no path faster than exact here: running exact (fp32)"


class Engine(Protocol):
    name: str
    precision: str
    body_seconds: float
    batch_size: int

    def __call__(self, waves: np.ndarray) -> np.ndarray: ...

    def embed(self, waves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, segment embeddings (batch, segments, dim)) of one forward pass."""
        ...

    def release(self) -> None:
        """Give back memory kept between windows, at the end of a recording."""
        ...


class TorchEngine:
    """The torch module itself (fp32, autocast bf16/fp16, or its int8 copy)."""

    name = "torch"
    note = ""

    def __init__(self, detector: Detector, device: torch.device, precision: str = "fp32") -> None:
        from ..errors import DeviceError

        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        self.detector = detector.to(device)
        self.device = device
        self.precision = precision
        module = self.detector.module
        self.runner = module
        if precision == "int8":
            from .quantized import int8_model, supports_int8

            if device.type != "cpu" or not supports_int8(module):
                raise DeviceError(
                    f"int8 runs on the CPU with PANNs conv models only (device {device}, "
                    f"{getattr(module, 'arch_name', 'model')}); use fast=True or fp32."
                )
            self.runner = int8_model(module)
        if device.type == "cpu":
            self.body_seconds, self.batch_size = TORCH_CPU_GEOMETRY.get(precision, (30.72, 1))
        else:
            self.body_seconds, self.batch_size = TORCH_GPU_GEOMETRY

    def __call__(self, waves: np.ndarray) -> np.ndarray:
        return self._forward(waves, False)[0]

    def embed(self, waves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and ``segment_embedding`` of the same forward pass."""
        probs, embedding = self._forward(waves, True)
        return probs, embedding

    def release(self) -> None:
        """Nothing to give back: torch's CPU allocator frees as it goes, and its CUDA
        cache is kept for the next recording on purpose."""

    def _forward(self, waves: np.ndarray, with_embedding: bool) -> tuple[np.ndarray, Any]:
        import torch

        from .device import autocast

        x = torch.from_numpy(np.ascontiguousarray(waves, dtype=np.float32)).to(self.device)
        with torch.inference_mode(), autocast(self.device, self.precision):
            out = self.runner(x)
        probs = out["segmentwise_output"].float().cpu().numpy()
        embedding = out["segment_embedding"].float().cpu().numpy() if with_embedding else None
        return probs, embedding


def exact_engine(detector: Detector, device: torch.device, engine: str = "auto") -> Engine:
    """fp32: onnxruntime on the CPU where it serves the model (and agrees), else torch."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    if device.type == "cpu" and engine != "torch":
        from . import onnx_engine

        if onnx_engine.available() and onnx_engine.supports(detector.module):
            try:
                return onnx_engine.OrtEngine(detector.to(device))
            except onnx_engine.EngineUnavailable as error:
                if engine == "onnxruntime":
                    raise
                warnings.warn(f"{error}; detecting with torch", RuntimeWarning, stacklevel=2)
            except Exception as error:  # an export problem must not stop detection
                if engine == "onnxruntime":
                    raise
                warnings.warn(f"onnxruntime export failed ({error}); detecting with torch",
                              RuntimeWarning, stacklevel=2)  # fmt: skip
        elif engine == "onnxruntime":
            from . import onnx_engine as oe

            raise oe.EngineUnavailable(
                "onnxruntime is not installed" if not oe.available()
                else f"onnxruntime does not serve {detector.architecture}"
            )
    return TorchEngine(detector, device, "fp32")


def select_engine(
    detector: Detector,
    device: str | torch.device | None = None,
    *,
    fast: bool = False,
    precision: str | None = None,
    engine: str = "auto",
) -> Engine:
    """The engine a run uses: ``precision`` forces one precision; otherwise exact, or the
    measured fast path with ``fast=True``."""
    from .device import choose_device

    dev = choose_device(device)
    detector.require_sed()
    engine = engine or "auto"
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision == "fp32" or (precision is None and not fast):
        return exact_engine(detector, dev, engine)
    if precision == "int8" and dev.type == "cpu" and engine != "torch":
        int8 = int8_ort_engine(exact_engine(detector, dev, engine), checked=False)
        if int8 is not None:
            return int8
    if precision is not None:
        return TorchEngine(detector, dev, precision)
    if dev.type != "cpu":
        return TorchEngine(detector, dev, "fp16")
    choice = fast_cpu_choice(detector, engine)
    if choice == "bf16":
        return TorchEngine(detector, dev, "bf16")
    chosen = exact_engine(detector, dev, engine)
    if choice == "int8":
        int8 = int8_ort_engine(chosen)
        if int8 is not None:
            return int8
    chosen.note = NOTHING_FASTER
    return chosen


def int8_ort_engine(exact: Engine, *, checked: bool = True) -> Engine | None:
    """The int8 form of an ONNX Runtime exact engine (:mod:`.int8_graph`): None where the
    exact engine is not ONNX Runtime's or (``checked``) the int8 graph lost events."""
    from . import int8_graph
    from .onnx_engine import OrtEngine

    if not isinstance(exact, OrtEngine):
        return None
    if checked:
        graph = int8_graph.build(exact)
    else:
        graph = int8_graph.int8_path(exact.path)
        if not graph.exists():
            int8_graph.quantize_for(exact)
    return None if graph is None else OrtEngine.variant(exact, graph, "int8")


# -- the fast path on this CPU, measured once ---------------------------------------------
def cpu_signature() -> str:
    """CPU model and instruction-set flags (what decides which path is fastest)."""
    text = platform.processor() + platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as handle:
            for line in handle:
                if line.startswith(("model name", "flags")):
                    text += line
                if line.strip() == "":
                    break  # the first CPU is enough
    except OSError:  # pragma: no cover - not Linux
        pass
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cpu_flags() -> list[str]:
    """The vector-instruction flags that matter here (avx2, avx512*, amx*)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    return sorted(f for f in flags if f.startswith(("avx", "amx", "fma")))
    except OSError:  # pragma: no cover
        pass
    return []


def _choice_key(detector: Detector, threads: int) -> str:
    from .device import torch_version

    try:
        import onnxruntime

        ort = onnxruntime.__version__
    except ImportError:
        ort = "-"
    # the model too: speed is the architecture's, but whether int8 keeps the events is
    # each model's own (its check); "fast2": choices made before int8 was a candidate
    return (f"{cpu_signature()}|{detector.architecture}|{threads}|torch{torch_version()}"
            f"|ort{ort}|{detector.model_id}|fast2")  # fmt: skip


def known_fast_choice(detector: Any, threads: int, engine: str = "auto") -> str | None:
    """The fast path's precision measured before for this model, CPU, thread count and
    versions ("fp32": nothing beats exact), or None: not measured."""
    if not _has_candidates(engine):
        return "fp32"
    try:
        known = json.loads(_choice_file().read_text())
    except (OSError, ValueError):
        return None
    entry = known.get(_choice_key(detector, threads) + f"|{engine}")
    return None if entry is None else str(entry.get("precision"))


def _has_candidates(engine: str) -> bool:
    """Whether anything could beat exact on this CPU: int8 through ONNX Runtime, or bf16
    where it is native (elsewhere bf16 autocast is ~10x slower)."""
    from . import onnx_engine
    from .quantized import cpu_has_native_bf16

    return cpu_has_native_bf16() or (engine != "torch" and onnx_engine.available())


def _choice_file() -> Any:
    from ..paths import cache_dir

    folder = cache_dir() / "engines"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "fast_choice.json"


def measure_throughput(engine: Engine, sample_rate: int, segment_samples: int) -> float:
    """Kept audio seconds per wall second for one batch of ``engine``'s own windows."""
    context = -(-round(CONTEXT_SECONDS * sample_rate) // segment_samples) * segment_samples
    body = -(-round(engine.body_seconds * sample_rate) // segment_samples) * segment_samples
    rng = np.random.default_rng(0)
    waves = (0.1 * rng.standard_normal((engine.batch_size, body + 2 * context))).astype(
        np.float32
    )
    engine(waves)  # warm-up: kernels are made per shape, and a run reuses one shape
    started = time.perf_counter()
    engine(waves)
    return engine.batch_size * body / sample_rate / (time.perf_counter() - started)


def fast_cpu_choice(detector: Detector, engine: str = "auto", *, remeasure: bool = False) -> str:
    """The fastest CPU path that keeps the model's events: "int8" (ONNX Runtime),
    "bf16" (torch autocast, where native), or "fp32" when neither beats exact by 10%.

    The candidates faster than exact are checked, fastest first: one is used only if its
    events on the check audio agree >= 99% with exact (:func:`.int8_graph.agreement`);
    what was refused is kept with the choice. Measured once per (CPU, model, threads,
    torch and onnxruntime versions) and cached with what was measured.
    """
    import torch

    from . import int8_graph
    from .quantized import cpu_has_native_bf16

    if not _has_candidates(engine):
        return "fp32"
    threads = torch.get_num_threads()
    key = _choice_key(detector, threads) + f"|{engine}"
    with _LOCK:
        path = _choice_file()
        try:
            known = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError):
            known = {}
        if not remeasure and key in known:
            return str(known[key]["precision"])
        cpu = torch.device("cpu")
        exact = exact_engine(detector, cpu, engine)
        rate, seg = detector.sample_rate, detector.segment_samples
        candidates: dict[str, Engine] = {}
        if engine != "torch":
            int8 = int8_ort_engine(exact, checked=False)
            if int8 is not None:
                candidates["int8"] = int8
        if cpu_has_native_bf16():
            candidates["bf16"] = TorchEngine(detector, cpu, "bf16")
        speeds = {"exact": measure_throughput(exact, rate, seg)}
        for name, candidate in candidates.items():
            speeds[name] = measure_throughput(candidate, rate, seg)
        # the fastest candidate that wins clearly (within 10% is noise and exact is exact)
        # and keeps the events; a check costs a minute of audio per engine, so only
        # those that would be used are checked
        precision, refused = "fp32", {}
        for name in sorted(candidates, key=speeds.__getitem__, reverse=True):
            if speeds[name] <= 1.1 * speeds["exact"]:
                break
            if name == "int8":
                ok = int8_graph.build(exact) is not None
                check = _read_json(int8_graph.check_path(exact.path))
            else:
                check = int8_graph.agreement(exact, candidates[name], detector.postprocess,
                                             int8_graph.check_audio(rate), rate)  # fmt: skip
                ok = int8_graph.keeps_events(check)
            if ok:
                precision = name
                break
            refused[name] = check
        known[key] = {"precision": precision, "exact_engine": exact.name,
                      "speeds_x_realtime": speeds, "refused": refused,
                      "measured": time.time()}  # fmt: skip
        tmp = path.with_suffix(f".{os.getpid()}.part")
        tmp.write_text(json.dumps(known, indent=1))
        os.replace(tmp, path)
        return precision


def _read_json(path: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def fast_precision(detector: Detector, device: torch.device, engine: str = "auto") -> str:
    """The precision ``fast=True`` runs at (measures on the first call on a bf16 CPU)."""
    if device.type != "cpu":
        return "fp16"
    return fast_cpu_choice(detector, engine)


def cached_fast_precision(architecture: str | None = None) -> str | None:
    """The fast CPU precision measured before on this CPU (any model of ``architecture``),
    or None when nothing was measured yet."""
    try:
        known = json.loads(_choice_file().read_text())
    except (OSError, ValueError):
        return None
    sig = cpu_signature()
    for key, value in known.items():
        parts = key.split("|")
        if parts[0] == sig and (architecture is None or parts[1] == architecture):
            return str(value.get("precision"))
    return None
