"""Sound-event detection over recordings of any length, in bounded memory.

The recording is cut into overlapping windows whose starts are whole model segments
(10,240 samples for CNN14 SED at 32 kHz, hop 320), so every window's segments line up
with the whole-file segments. Each window has ``context_seconds`` of extra audio on both
sides (1.92 s covers CNN14's receptive field, +-1.74 s); only its centre is kept. The first window
starts at the true start of the file and the last one runs to its true end, so edge
effects are the same as in one pass over the whole waveform; the result equals that pass
to about 1e-6 (tested to <= 1e-3) while memory depends only on the window batch. Which
engine runs the windows (onnxruntime or torch, exact or fast): :mod:`.engines`.

Windows come from :func:`panns_core.audio.iter_blocks` (a file is never read whole) or
from an in-memory array. :func:`iter_detect` yields each window's kept scores as soon as
they exist (for a GUI to draw); :func:`detect` assembles them into :class:`Scores`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..cancel import CancelToken
from ..errors import AudioError, Cancelled
from .scores import ScoreCache, Scores

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ..hub.detector import Detector
    from .engines import Engine

# CNN14's receptive field is +-174 frames (1.74 s at 10 ms): 6 conv blocks of two 3x3
# convolutions and 2x2 pooling, then a 3-wide pooling over time. 1.92 s (six 0.32-s
# segments) of context on each side gives the single pass's scores exactly (max |diff|
# 0 on 70 s of noise and clicks; 1.28 s moves them by 0.01). Smaller trunks need less.
DEFAULT_CONTEXT_SECONDS = 1.92
# Window length and batch are the engine's (panns_core.detection.engines): onnxruntime
# takes 26.88-s windows, torch fp32 on the CPU 30.72 s, bf16 batches of 20.48 s, GPUs
# batches of 8 x 10.24 s; all keep the peak RSS of any length under 1 GB on the CPU.

Source = str | os.PathLike | np.ndarray


ProgressCallback = Callable[[float, "ChunkScores"], None]


@dataclass(frozen=True)
class ChunkScores:
    """The kept (centre) scores of one window, in recording time.

    ``probabilities`` has shape (segments, classes) and starts at segment
    ``start_segment``; ``fraction`` is how much of the recording is done once this
    chunk is in (1.0 for the last chunk).
    """

    index: int
    start_segment: int
    probabilities: np.ndarray
    segment_seconds: float
    fraction: float
    is_last: bool
    recording_seconds: float | None = None  # set on the last chunk: the exact duration
    embeddings: np.ndarray | None = None
    """(segments, dim) ``segment_embedding`` rows of the same segments, when asked for
    (``iter_detect(..., embeddings=True)``: the search index reuses the detection pass)."""

    @property
    def start(self) -> float:
        return self.start_segment * self.segment_seconds

    @property
    def end(self) -> float:
        return (self.start_segment + len(self.probabilities)) * self.segment_seconds


class ScoreAssembly:
    """Chunks of one recording, in order, assembled into :class:`Scores`.

    :func:`detect` uses it at the end; the window uses :meth:`scores` after every chunk to
    draw partial results while detection goes on.
    """

    def __init__(self, detector: Detector) -> None:
        self.labels = list(detector.labels)
        self.model_id = detector.model_id
        self.segment_seconds = detector.segment_seconds
        self._parts: list[np.ndarray] = []
        self._last: ChunkScores | None = None

    def add(self, chunk: ChunkScores) -> None:
        self._parts.append(chunk.probabilities)
        self._last = chunk

    @property
    def complete(self) -> bool:
        return self._last is not None and self._last.is_last

    def scores(self, **fields: Any) -> Scores:
        """The scores so far (all of them once the last chunk is in)."""
        if self._last is None:
            raise ValueError("no chunk yet")
        probabilities = np.concatenate(self._parts, axis=0)
        if len(self._parts) > 1:
            self._parts = [probabilities]
        last = self._last
        if last.is_last:
            duration = last.recording_seconds
        else:  # a partial result covers its segments; the exact duration comes last
            duration = max(last.end, (len(probabilities) - 1) * self.segment_seconds + 1e-6)
        return Scores(probabilities, self.segment_seconds, self.labels,
                      model_id=self.model_id, duration=duration, **fields)


@dataclass(frozen=True)
class ChunkPlan:
    """Window geometry in samples (all multiples of the model's segment)."""

    segment_samples: int
    context_segments: int
    body_segments: int

    @property
    def window_samples(self) -> int:
        return (self.body_segments + 2 * self.context_segments) * self.segment_samples

    @property
    def hop_samples(self) -> int:
        return self.body_segments * self.segment_samples

    @classmethod
    def for_model(
        cls,
        model: Detector,
        *,
        body_seconds: float,
        context_seconds: float = DEFAULT_CONTEXT_SECONDS,
    ) -> ChunkPlan:
        rate = model.sample_rate
        seg = int(model.segment_samples)
        context = math.ceil(round(context_seconds * rate) / seg)
        body = max(1, math.ceil(round(body_seconds * rate) / seg))
        return cls(seg, context, body)


# -- windows -----------------------------------------------------------------------------
def _array_windows(
    samples: np.ndarray, plan: ChunkPlan, first: int = 0
) -> Iterator[tuple[int, np.ndarray, bool]]:
    total = len(samples)
    offset = first * plan.hop_samples
    while True:
        stop = offset + plan.window_samples
        if stop >= total:
            yield offset, samples[offset:], True
            return
        yield offset, samples[offset:stop], False
        offset += plan.hop_samples


def _file_windows(
    path: Path, rate: int, plan: ChunkPlan, channel: int | None, first: int = 0
) -> Iterator[tuple[int, np.ndarray, bool]]:
    from ..audio import iter_blocks

    blocks = iter_blocks(
        path, rate, plan.window_samples / rate, plan.hop_samples / rate, channel=channel,
        start=first * plan.hop_samples / rate,
    )
    for block in blocks:
        # a block that reaches the end of the file is the last window we need
        last = block.is_last or len(block.samples) < plan.window_samples
        yield block.offset, block.samples, last
        if last:
            return


def _source_windows(
    source: Source, model: Detector, plan: ChunkPlan, sample_rate: int | None,
    channel: int | None, first: int = 0,
) -> tuple[Iterator[tuple[int, np.ndarray, bool]], int]:
    """(windows, estimated total samples at the model rate)."""
    rate = model.sample_rate
    if isinstance(source, np.ndarray):
        samples = np.asarray(source, dtype=np.float32)
        if samples.ndim == 2:  # (samples, channels) like soundfile
            samples = samples[:, channel] if channel is not None else samples.mean(axis=1)
        if samples.ndim != 1:
            raise AudioError(f"Expected a mono waveform, got an array of shape {source.shape}.")
        if not len(samples):
            raise AudioError("The waveform is empty: nothing to detect.")
        if sample_rate is not None and sample_rate != rate:
            from ..audio import resample

            samples = resample(samples, sample_rate, rate)
        return _array_windows(np.ascontiguousarray(samples), plan, first), len(samples)
    from ..audio import audio_info

    path = Path(source)
    info = audio_info(path)
    if not info.frames:
        raise AudioError(f"{path}: the file holds no audio; nothing to detect.")
    total = round(info.frames * rate / info.sample_rate)
    return _file_windows(path, rate, plan, channel, first), total


def total_samples(source: str | os.PathLike, detector: Detector) -> int:
    """The length of a file at the model's rate (from its header), as windows are planned."""
    from ..audio import audio_info

    info = audio_info(Path(source))
    return round(info.frames * detector.sample_rate / info.sample_rate)


def window_count(total: int, plan: ChunkPlan) -> int:
    """How many windows :func:`iter_detect` runs over ``total`` samples (the last one is the
    first that reaches the end)."""
    if total <= plan.window_samples:
        return 1
    return 1 + math.ceil((total - plan.window_samples) / plan.hop_samples)


PRECISIONS = ("fp32", "bf16", "fp16", "int8")


def _check_precision(precision: str | None) -> str | None:
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    return precision


# -- detection ---------------------------------------------------------------------------
def iter_detect(
    source: Source,
    detector: Detector,
    *,
    sample_rate: int | None = None,
    channel: int | None = None,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    body_seconds: float | None = None,
    context_seconds: float = DEFAULT_CONTEXT_SECONDS,
    fast: bool = False,
    precision: str | None = None,
    engine: str | Engine = "auto",
    cancel: CancelToken | None = None,
    windows: tuple[int, int | None] | None = None,
    embeddings: bool = False,
) -> Iterator[ChunkScores]:
    """Yield the scores of each window's centre, in order, as soon as they are computed.

    ``source`` is an audio file (streamed, never read whole) or a mono float array at
    ``sample_rate`` (default: the model's rate). ``detector`` must be a sound-event
    detection model (:meth:`Detector.require_sed`). ``fast`` picks the measured fast path
    (:func:`~.engines.select_engine`); ``precision`` ("fp32", "bf16", "fp16", "int8") forces
    one; ``engine`` ("auto", "torch", "onnxruntime", or a built engine) forces the
    engine. Window length and batch default to the engine's. Raises :class:`Cancelled`
    when ``cancel.is_set()``. ``embeddings=True`` also keeps each chunk's segment
    embeddings (:attr:`ChunkScores.embeddings`) from the same forward pass.

    ``windows=(first, stop)`` runs only windows ``first`` to ``stop - 1`` of the plan
    (``stop=None``: to the end): a *piece* of a long recording that another process can
    detect on its own. Its chunks are exactly the ones the whole run yields for those
    windows (same samples, same kept segments), so pieces put end to end equal the whole
    run; only a piece that reaches the end of the recording has ``is_last``.
    """
    from .device import choose_device
    from .engines import select_engine

    detector.require_sed()
    runner = engine if not isinstance(engine, str) else select_engine(
        detector, choose_device(device), fast=fast, precision=_check_precision(precision),
        engine=engine,
    )  # fmt: skip
    plan = ChunkPlan.for_model(
        detector,
        body_seconds=body_seconds or runner.body_seconds,
        context_seconds=context_seconds,
    )
    batch_size = max(1, batch_size or runner.batch_size)
    first, stop = windows if windows is not None else (0, None)
    if first < 0 or (stop is not None and stop <= first):
        raise ValueError(f"windows must be (first, stop) with 0 <= first < stop, not {windows}")
    source_windows, total = _source_windows(source, detector, plan, sample_rate, channel, first)
    seg, ctx = plan.segment_samples, plan.context_segments
    # a piece after the first keeps what the whole run keeps from its windows: the run's
    # previous window kept up to this window's body start
    state = {"next": first * plan.body_segments + (ctx if first else 0), "index": first}
    remaining = None if stop is None else stop - first

    def run(batch: list[tuple[int, np.ndarray, bool]]) -> Iterator[ChunkScores]:
        if cancel is not None and cancel.is_set():
            raise Cancelled("Detection cancelled.")
        # one window: a view, not a copy (a long window is megabytes)
        waves = batch[0][1][None] if len(batch) == 1 else np.stack([w for _, w, _ in batch])
        if embeddings:
            probs, embedded = runner.embed(waves)
        else:
            probs, embedded = runner(waves), None
        del waves
        for i, ((offset, window, last), segments) in enumerate(zip(batch, probs)):
            first_seg = offset // seg
            keep_from = state["next"] - first_seg
            keep_to = len(segments) if last else plan.body_segments + ctx
            kept = np.ascontiguousarray(segments[keep_from:keep_to], dtype=np.float32)
            state["next"] = first_seg + keep_to
            done = 1.0 if last else min(1.0, (offset + len(window) - ctx * seg) / max(total, 1))
            rate = detector.sample_rate
            chunk = ChunkScores(
                state["index"],
                first_seg + keep_from,
                kept,
                seg / rate,
                done,
                last,
                (offset + len(window)) / rate if last else None,
                None if embedded is None else np.ascontiguousarray(
                    embedded[i][keep_from:keep_to], dtype=np.float32),
            )
            state["index"] += 1
            yield chunk
        del probs, embedded

    try:
        yield from _run_windows(source_windows, run, batch_size, remaining, seg)
    finally:  # done, failed, cancelled or abandoned: the engine's working memory goes back
        release = getattr(runner, "release", None)
        if release is not None:
            try:
                release()
            except Exception:  # memory not given back is no reason to fail a detection
                log.debug("the engine's memory was not released", exc_info=True)


def _run_windows(source_windows, run, batch_size: int, remaining: int | None,
                 seg: int) -> Iterator[ChunkScores]:  # fmt: skip
    """Batch the windows and run them (``remaining``: windows of a piece, or None)."""
    pending: list[tuple[int, np.ndarray, bool]] = []
    for offset, window, last in source_windows:
        if offset % seg:
            raise RuntimeError(f"window at sample {offset} is not segment-aligned")
        if remaining is not None:
            remaining -= 1
            if remaining == 0 and not last:  # the piece ends before the recording does
                pending.append((offset, window, False))
                yield from run(pending)
                return
        if last:
            yield from run(pending) if pending else ()
            pending = []
            yield from run([(offset, window, True)])
            return
        pending.append((offset, window, False))
        if len(pending) == batch_size:
            yield from run(pending)
            pending = []
    if pending:  # pragma: no cover - the window source always ends with a last window
        raise RuntimeError("the audio ended without a last window")


def detect(
    source: Source,
    detector: Detector,
    *,
    sample_rate: int | None = None,
    channel: int | None = None,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    body_seconds: float | None = None,
    context_seconds: float = DEFAULT_CONTEXT_SECONDS,
    fast: bool = False,
    precision: str | None = None,
    threads: int | None = None,
    engine: str | Engine = "auto",
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    audio_hash: str | None = None,
    cache: ScoreCache | bool = False,
) -> Scores:
    """Detect over a whole recording; returns segment-wise :class:`Scores`.

    ``progress(fraction, chunk)`` is called after every window. ``cache=True`` (or a
    :class:`ScoreCache`) reuses and stores scores keyed by the file's sha256, the model
    id and the precision. Labels and model id are the detector's.
    """
    from .device import choose_device, set_threads, torch_version
    from .engines import fast_precision

    if threads is not None:
        set_threads(threads)
    # a built engine knows where it runs (a compiled detector's never imports torch)
    dev = choose_device(device) if isinstance(engine, str) else getattr(engine, "device", "cpu")
    detector.require_sed()
    model_id = detector.model_id
    if not isinstance(engine, str):
        precision = engine.precision
    else:
        forced = _check_precision(precision)
        precision = forced or (fast_precision(detector, dev, engine) if fast else "fp32")
    if audio_hash is None and not isinstance(source, np.ndarray):
        from ..audio import file_sha256
        from .scores import channel_hash

        audio_hash = channel_hash(file_sha256(source), channel)  # one channel: its own key
    elif audio_hash is None:
        import hashlib

        audio_hash = hashlib.sha256(np.ascontiguousarray(source).tobytes()).hexdigest()
    store = ScoreCache() if cache is True else (cache or None)
    if store is not None:
        hit = store.get(audio_hash, model_id, precision)
        if hit is not None:
            if progress is not None:
                progress(1.0, ChunkScores(0, 0, hit.probabilities, hit.segment_seconds, 1.0, True))
            return hit

    assembly = ScoreAssembly(detector)
    if isinstance(engine, str):
        from .engines import select_engine

        engine = select_engine(detector, dev, fast=fast and forced is None,
                               precision=forced, engine=engine)  # fmt: skip
    engine_name = engine.name
    note = getattr(engine, "note", "")
    if note:  # --fast on a CPU where nothing beats exact: say so
        import warnings

        warnings.warn(f"--fast: {note}", UserWarning, stacklevel=2)
    for chunk in iter_detect(
        source,
        detector,
        sample_rate=sample_rate,
        channel=channel,
        device=dev,
        batch_size=batch_size,
        body_seconds=body_seconds,
        context_seconds=context_seconds,
        precision=precision,
        engine=engine,
        cancel=cancel,
    ):
        assembly.add(chunk)
        if progress is not None:
            progress(chunk.fraction, chunk)
    scores = assembly.scores(
        audio_hash=audio_hash,
        precision=precision,
        metadata={"device": str(dev), "torch": torch_version(), "engine": engine_name,
                  **({"note": note} if note else {})},
    )
    if store is not None:
        store.put(scores)
    return scores


def detect_single_pass(
    waveform: np.ndarray,
    detector: Detector,
    *,
    device: str | torch.device | None = "cpu",
    fast: bool = False,
    precision: str | None = None,
) -> Scores:
    """The reference way: one forward pass over the whole waveform (as panns_inference).

    Memory grows with the length (about 5 GB per 15 minutes for CNN14 in fp32); use
    :func:`detect` for real recordings. Kept for tests and benchmarks.
    """
    from .device import choose_device, fast_mode
    from .engines import TorchEngine

    dev = choose_device(device)
    detector.require_sed()
    mode = _check_precision(precision) or fast_mode(dev, fast, detector.module)
    runner = TorchEngine(detector, dev, mode)
    out = runner(np.asarray(waveform, dtype=np.float32)[None])[0]
    return Scores(
        out,
        detector.segment_seconds,
        list(detector.labels),
        model_id=detector.model_id,
        duration=len(waveform) / detector.sample_rate,
        precision=mode,
    )
