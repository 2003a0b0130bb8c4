"""Exact CPU detection with ONNX Runtime: the model's conv trunk and head as an ONNX graph.

On the CPUs this project runs on, ONNX Runtime's CPU provider runs the PANNs trunk about
twice as fast as torch in fp32, with the same results to ~1e-6. The front end stays out of
the graph (torchlibrosa's DFT-as-convolution front end does not export faithfully): the
log-mel is computed here with a real FFT in numpy/scipy, with the model's own mel matrix
(no librosa), and fed to a graph that starts at ``bn0``.

The graph is exported once per checkpoint with ``torch.onnx.export`` (opset 17, dynamic
batch and frames, weights in an external file), cached under ``cache_dir()/onnx`` keyed by
the weights' content hash, the architecture, this module's export version and the
onnxruntime version. ONNX Runtime's optimized form of it is saved once per CPU (its
layouts are the CPU's), and verified against the torch model on a probe input before it
is first used; the verification is stored beside it, so later processes start in a
fraction of a second, map the weights instead of copying them, and never run torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..hub.detector import Detector

EXPORT_VERSION = 2  # 2: the graph also outputs segment_embedding (search indexes it)
OPSET = 17
# Largest |ORT - torch| accepted on the probe (measured: ~1.5e-6 for CNN14).
TOLERANCE = 1e-5
PROBE_SECONDS = 7.04

_LOCK = threading.Lock()
_SESSIONS: dict[tuple[str, int], Any] = {}


class EngineUnavailable(RuntimeError):
    """This engine cannot serve this model here (missing package, unsupported model or
    a failed verification); the caller falls back to torch."""


def available() -> bool:
    """True when onnxruntime (and onnx, for exporting) can be imported."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def supports(module: Any) -> bool:
    """PANNs SED models without the Wavegram branch (conv or MobileNetV1 trunk)."""
    return (
        getattr(module, "framewise", False)
        and not getattr(module, "has_wavegram", True)
        and getattr(module, "trunk", None) in ("conv", "mobilenet_v1")
        and getattr(module, "head", None) in ("max", "avg", "att")
    )


# -- front end ---------------------------------------------------------------------------
class LogMel:
    """torchlibrosa's Spectrogram + LogmelFilterBank (centre, reflect padding, periodic
    Hann, power, mel, 10 log10 with amin 1e-10, ref 1, no top_db), with a real FFT.

    Equal to the model's front end to ~2e-4 dB; the scores to ~1.5e-6.
    """

    def __init__(self, module: Any = None, *, state: dict | None = None) -> None:
        """From the model (``module``) or from a saved :meth:`state` (no torch)."""
        if state is None:
            fc = module.feature_config
            n_fft = int(fc.window_size)
            n = np.arange(n_fft)
            mel = module.logmel_extractor.melW.detach().cpu().numpy()
            state = {"n_fft": n_fft, "hop": int(fc.hop_size),
                     "min_samples": int(module.min_samples), "mel": mel,
                     "window": (0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft))}  # fmt: skip
        self.n_fft = int(state["n_fft"])
        self.hop = int(state["hop"])
        self.min_samples = int(state["min_samples"])
        self.window = np.ascontiguousarray(state["window"], dtype=np.float32)
        # (n_fft // 2 + 1, mels)
        self.mel = np.ascontiguousarray(state["mel"], dtype=np.float32)
        try:
            import scipy.fft as fft

            self._rfft = lambda x: fft.rfft(x, axis=-1, workers=-1)
        except ImportError:  # pragma: no cover - scipy comes with librosa
            self._rfft = lambda x: np.fft.rfft(x, axis=-1)

    def state(self) -> dict:
        return {"n_fft": self.n_fft, "hop": self.hop, "min_samples": self.min_samples,
                "mel": self.mel, "window": self.window}  # fmt: skip

    def __call__(self, waves: np.ndarray) -> np.ndarray:
        """(batch, samples) float32 -> (batch, frames, mels) float32 (before ``bn0``)."""
        waves = np.asarray(waves, dtype=np.float32)
        if waves.shape[-1] < self.min_samples:  # the model pads short input the same way
            waves = np.pad(waves, ((0, 0), (0, self.min_samples - waves.shape[-1])))
        half, n_fft, hop = self.n_fft // 2, self.n_fft, self.hop
        length = waves.shape[-1]
        frames = 1 + length // hop  # centre=True: frames of the reflect-padded signal
        out = np.empty((len(waves), frames, self.mel.shape[1]), np.float32)
        step = 64  # frames per FFT block: bounds the temporary memory (~1 MB)
        for b in range(len(waves)):
            for start in range(0, frames, step):
                stop = min(frames, start + step)
                # samples of the padded signal this block needs, in the unpadded signal's
                # coordinates; only blocks at the edges copy (with reflection)
                lo, hi = start * hop - half, (stop - 1) * hop + n_fft - half
                if lo >= 0 and hi <= length:
                    part = waves[b, lo:hi]
                else:
                    index = np.arange(lo, hi)
                    index = np.abs(index)
                    index = np.where(index >= length, 2 * (length - 1) - index, index)
                    part = waves[b, index]
                view = np.lib.stride_tricks.sliding_window_view(part, n_fft)[::hop]
                spec = self._rfft(view * self.window)
                power = spec.real**2
                power += spec.imag**2
                mel = power @ self.mel
                np.maximum(mel, 1e-10, out=mel)
                out[b, start:stop] = 10.0 * np.log10(mel)
        return out


# -- export ------------------------------------------------------------------------------
def _graph_module(module: Any) -> Any:
    """The part of ``module`` after the front end: log-mel (B, T, M) -> segment
    probabilities and segment embeddings (the input of the output layer)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class SedGraph(nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, logmel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            m = self.model
            x = logmel[:, None]
            x = m.bn0(x.transpose(1, 3)).transpose(1, 3)
            x = m._trunk(x, None)
            x = torch.mean(x, dim=3)
            x = F.max_pool1d(x, kernel_size=3, stride=1, padding=1) + F.avg_pool1d(
                x, kernel_size=3, stride=1, padding=1
            )
            hidden = F.relu(m.fc1(x.transpose(1, 2)))
            if m.head == "att":
                logits = m.att_block(hidden.transpose(1, 2))[2].transpose(1, 2)
            else:
                logits = m.fc_audioset(hidden)
            return torch.sigmoid(logits), hidden

    return SedGraph(module).eval()


def weights_key(detector: Detector) -> str:
    """Content hash of the weights (the checkpoint's sha for file models)."""
    module = detector.module
    digest = hashlib.sha256()
    fc = module.feature_config
    digest.update(f"{detector.architecture}|{module.classes_num}|{fc}|{module.head}".encode())
    model_id = detector.model_id
    if detector.path is not None and "@" in model_id:
        digest.update(model_id.rsplit("@", 1)[1].encode())
    else:
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(name.encode())
            array = tensor.detach().cpu().contiguous().numpy()
            digest.update(str(array.dtype).encode() + str(array.shape).encode())
            digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()[:24]


def cache_paths(detector: Detector) -> tuple[Path, Path]:
    """(exported model file, verification record of its optimized form on this CPU)."""
    import onnxruntime

    from ..paths import cache_dir

    folder = cache_dir() / "onnx"
    folder.mkdir(parents=True, exist_ok=True)
    stem = (f"{detector.architecture}-{weights_key(detector)}-e{EXPORT_VERSION}"
            f"-ort{onnxruntime.__version__}")  # fmt: skip
    path = folder / f"{stem}.onnx"
    return path, record_path(path)


def record_path(path: Path) -> Path:
    """Where the verification of graph ``path`` on this CPU is recorded."""
    from .engines import cpu_signature

    return path.with_name(f"{path.stem}-cpu{cpu_signature()}.json")


def verified(path: Path) -> bool:
    """True when the graph ``path`` was verified against torch on this CPU."""
    try:
        return json.loads(record_path(path).read_text()).get("ok") is True
    except (OSError, ValueError, AttributeError):
        return False


def optimized_path(path: Path) -> Path:
    """ONNX Runtime's optimized form of ``path`` for this CPU (its layouts are the CPU's)."""
    from .engines import cpu_signature

    return path.with_name(f"{path.stem}-cpu{cpu_signature()}.opt.onnx")


def export(detector: Detector, path: Path) -> None:
    """Write the ONNX graph of ``detector``'s model after the front end to ``path``, its
    weights to ``path`` + ".data" (loaded by mapping, not parsing: a small start-up peak)."""
    import onnx
    import torch

    module = detector.module
    frames = module.feature_config.num_frames(max(module.min_samples, 2 * module.sample_rate))
    dummy = torch.zeros(1, frames, module.feature_config.mel_bins)
    if detector.device.type != "cpu":
        raise EngineUnavailable("onnxruntime serves models on the CPU")
    graph = _graph_module(module)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.part.onnx")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph, (dummy,), str(tmp), opset_version=OPSET, input_names=["logmel"],
            output_names=["segmentwise_output", "segment_embedding"],
            do_constant_folding=True, dynamo=False,
            dynamic_axes={"logmel": {0: "batch", 1: "frames"},
                          "segmentwise_output": {0: "batch", 1: "segments"},
                          "segment_embedding": {0: "batch", 1: "segments"}},
        )  # fmt: skip
    model = onnx.load(str(tmp))
    data = path.name + ".data"
    part = path.with_name(f"{path.stem}.{os.getpid()}.part2.onnx")
    for stale in (path.with_name(data),):
        stale.unlink(missing_ok=True)
    onnx.save_model(model, str(part), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data, size_threshold=1024)  # fmt: skip
    del model
    tmp.unlink(missing_ok=True)
    os.replace(part, path)  # the graph last: its presence means the data is complete


def probe_audio(sample_rate: int, seconds: float = PROBE_SECONDS) -> np.ndarray:
    """A fixed probe: noise, tones and clicks at several levels, two windows' worth."""
    rng = np.random.default_rng(1234)
    n = round(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    x = 0.05 * rng.standard_normal(n)
    x += 0.3 * np.sin(2 * np.pi * 440 * t) * (t % 2 < 0.7)
    x += 0.2 * np.sin(2 * np.pi * (800 + 300 * t) * t) * (t % 3 > 1.5)
    x[:: sample_rate // 3] += 0.9
    x *= np.where(t < seconds / 3, 0.05, 1.0)  # a quiet part
    return np.clip(x, -1, 1).astype(np.float32)


class OrtEngine:
    """Runs a detector's SED model with ONNX Runtime on the CPU: waves -> segment scores."""

    name = "onnxruntime"
    device = "cpu"
    precision = "fp32"
    note = ""
    # Long windows amortise the 2 x 1.92 s context (14% more audio than one pass at
    # 26.88 s); longer ones raise the peak RSS (CNN14, whole `panns-sed detect` process,
    # 60 minutes, with 2.56-s context: 30.72 s + 5.12 s 1015 MiB, 25.6 s + 5.12 s 981 MiB;
    # 10 minutes at 61.44 s ~1.09 GB). 26.88 s + 3.84 s is as long as 25.6 s + 5.12 s.
    body_seconds = 26.88
    batch_size = 1

    def __init__(self, detector: Detector, *, threads: int | None = None,
                 verify: bool = True) -> None:  # fmt: skip
        if not available():
            raise EngineUnavailable("onnxruntime is not installed")
        if not supports(detector.module):
            raise EngineUnavailable(f"{detector.architecture} is not served by onnxruntime")
        import onnxruntime as ort

        self.detector = detector
        self.front_end = LogMel(detector.module)
        if threads is None:
            import torch

            threads = torch.get_num_threads()
        self.threads = max(1, int(threads))
        path, record = cache_paths(detector)
        self.path = path

        def first_session() -> Any:  # once per graph and thread count in a process
            fresh = not path.exists() or not record.exists()
            if not path.exists():
                export(detector, path)
            session = self._session(ort, path)
            if verify:
                self._verify(session, record, fresh)
                self._compile(detector, path)
            return session

        self.session = self._shared_session(first_session)

    def _shared_session(self, make: Any) -> Any:
        """The process's session of ``self.path`` at ``self.threads``, ``make()`` once."""
        with _LOCK:
            key = (str(self.path), self.threads)
            session = _SESSIONS.get(key)
            if session is None:
                session = _SESSIONS[key] = make()
        return session

    @classmethod
    def from_compiled(cls, compiled: Any, *, threads: int | None = None,
                      graph: Path | None = None, precision: str = "fp32") -> OrtEngine:  # fmt: skip
        """The engine of a :class:`~.compiled.CompiledDetector` (verified when it was
        compiled): no torch, no export, no verification. ``graph``: another checked
        form of its graph (the int8 one), run at ``precision``."""
        from .device import default_threads

        return cls._running(compiled, LogMel(state=compiled.front_end),
                            threads or default_threads(), graph or compiled.graph,
                            precision)  # fmt: skip

    @classmethod
    def variant(cls, exact: OrtEngine, graph: Path, precision: str) -> OrtEngine:
        """An engine running ``graph``, another form of ``exact``'s graph (same inputs and
        outputs, e.g. int8), with ``exact``'s detector, front end and threads."""
        return cls._running(exact.detector, exact.front_end, exact.threads, graph, precision)

    @classmethod
    def _running(cls, detector: Any, front_end: LogMel, threads: int, graph: Path,
                 precision: str) -> OrtEngine:  # fmt: skip
        """An engine on a graph that is ready (exported and checked before)."""
        import onnxruntime as ort

        self = cls.__new__(cls)
        self.detector, self.front_end = detector, front_end
        self.threads = max(1, int(threads))
        self.path, self.precision = Path(graph), precision
        self.session = self._shared_session(lambda: self._session(ort, self.path))
        return self

    def _compile(self, detector: Detector, path: Path) -> None:
        """Save the torch-free form of a file's model (:mod:`.compiled`), once."""
        if detector.path is None or "@" not in detector.model_id:
            return  # a model built in memory: nothing names it again
        from . import compiled

        if compiled.bundle_path(detector.model_id).is_file():
            return
        try:
            compiled.save(detector, path, self.front_end.state())
        except OSError as error:  # a read-only cache only costs the next start-up
            warnings.warn(f"the compiled detector was not saved: {error}", RuntimeWarning,
                          stacklevel=2)  # fmt: skip

    def _options(self, ort: Any, optimize: bool) -> Any:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # An arena: the windows of one recording are the same length, and reusing their
        # activations' memory instead of mapping it afresh for every operator ran the
        # trunk 12% faster (0.32 s against 0.365 s a 30.72-s window; 50k page faults in
        # 8 windows against 340k) for +30 MB peak. release() gives it back after a
        # recording. No memory patterns: they cost +90 MB and gained nothing.
        options.enable_cpu_mem_arena = True
        options.enable_mem_pattern = False
        options.log_severity_level = 3
        # ORT's threads would otherwise spin after each run, and numpy's BLAS threads
        # too: they fought over the cores (the front end took 16 s per 10 minutes
        # instead of 0.6 s; with spinning 38 s wall against 33 s without)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        level = ort.GraphOptimizationLevel
        options.graph_optimization_level = level.ORT_ENABLE_ALL if optimize else (
            level.ORT_DISABLE_ALL
        )  # fmt: skip
        return options

    def _session(self, ort: Any, path: Path) -> Any:
        """A session on the optimized form of ``path`` (made once per CPU, then reused:
        loading it maps the weights and skips the optimizer's copies)."""
        optimized = optimized_path(path)
        providers = ["CPUExecutionProvider"]
        if not optimized.exists():
            options = self._options(ort, optimize=True)
            part = optimized.with_name(f"{optimized.stem}.{os.getpid()}.part.onnx")
            options.optimized_model_filepath = str(part)
            config = "session.optimized_model_external_initializers_"
            options.add_session_config_entry(config + "file_name", optimized.name + ".data")
            options.add_session_config_entry(config + "min_size_in_bytes", "1024")
            try:
                ort.InferenceSession(str(path), options, providers=providers)
                os.replace(part, optimized)
            except Exception as error:  # a corrupt cache file: export again next time
                path.unlink(missing_ok=True)
                part.unlink(missing_ok=True)
                message = f"onnxruntime could not load {path.name}: {error}"
                raise EngineUnavailable(message) from None
        try:
            return ort.InferenceSession(str(optimized), self._options(ort, optimize=False),
                                        providers=providers)  # fmt: skip
        except Exception:  # the optimized form is unusable: run the exported graph
            optimized.unlink(missing_ok=True)
            return ort.InferenceSession(str(path), self._options(ort, optimize=True),
                                        providers=providers)  # fmt: skip

    def _verify(self, session: Any, record: Path, fresh: bool) -> None:
        """Compare with torch on the probe (once per cached file)."""
        if not fresh and record.exists():
            try:
                seen = json.loads(record.read_text())
            except (OSError, ValueError):
                seen = {}
            if seen.get("ok") is True:
                return
            if seen.get("ok") is False:
                raise EngineUnavailable(f"onnxruntime disagreed with torch: {seen}")
        import torch

        module = self.detector.module
        probe = probe_audio(self.detector.sample_rate)
        with torch.inference_mode():
            expected = module(torch.from_numpy(probe[None]).to(self.detector.device))
            expected = expected["segmentwise_output"].float().cpu().numpy()
        got = self._run(session, probe[None])
        diff = float(np.abs(got - expected).max()) if got.shape == expected.shape else None
        ok = diff is not None and diff <= TOLERANCE
        tmp = record.with_suffix(f".{os.getpid()}.part")
        tmp.write_text(json.dumps({"ok": ok, "max_abs_diff": diff, "tolerance": TOLERANCE,
                                   "model_id": self.detector.model_id}))  # fmt: skip
        os.replace(tmp, record)
        if not ok:
            raise EngineUnavailable(
                f"onnxruntime disagreed with torch on the probe (max |diff| {diff}); using torch"
            )

    def _run(self, session: Any, waves: np.ndarray, with_embedding: bool = False) -> Any:
        with _one_blas_thread():  # small products: BLAS threads would only contend
            logmel = self.front_end(waves)
        names = ["segmentwise_output", "segment_embedding"] if with_embedding else [
            "segmentwise_output"]  # fmt: skip
        out = session.run(names, {"logmel": logmel})
        return out if with_embedding else out[0]

    def __call__(self, waves: np.ndarray) -> np.ndarray:
        """(batch, samples) float32 at the model's rate -> (batch, segments, classes)."""
        out = self._run(self.session, waves)
        _trim()
        return out

    def release(self) -> None:
        """Give the arena's activations back (after a recording: the session stays, for
        the next one, but a window's worth of memory, ~125 MB for CNN14 at 30.72 s,
        should not stay with it). A minimal run with arena shrinkage: ~40 ms."""
        import onnxruntime as ort

        options = ort.RunOptions()
        options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        probe = np.zeros((1, self.front_end.min_samples), np.float32)
        with _one_blas_thread():
            logmel = self.front_end(probe)
        self.session.run(["segmentwise_output"], {"logmel": logmel}, options)
        _trim()

    def embed(self, waves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and segment embeddings (batch, segments, dim) of one run."""
        probs, embedding = self._run(self.session, waves, True)
        _trim()
        return probs, embedding


def _one_blas_thread() -> Any:
    global _LIMITER
    if _LIMITER is None:
        try:
            from threadpoolctl import ThreadpoolController

            _LIMITER = ThreadpoolController()
        except ImportError:  # pragma: no cover - comes with librosa (scikit-learn)
            _LIMITER = False
    if not _LIMITER:
        import contextlib

        return contextlib.nullcontext()
    return _LIMITER.limit(limits=1, user_api="blas")


_LIMITER: Any = None


def _trim() -> None:
    """Give freed activations back to the system (glibc keeps them otherwise, and the
    peak RSS of a long recording creeps up window after window)."""
    global _LIBC
    if _LIBC is None:
        try:
            import ctypes

            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):  # not glibc
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


_LIBC: Any = None
