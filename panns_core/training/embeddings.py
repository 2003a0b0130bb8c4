"""Per-segment embeddings of whole recordings, for head-only fine-tuning.

The head of a SED model sees ``segment_embedding`` (segments, dim): one row per
model segment (0.32 s for CNN14 at 32 kHz). Instead of running the network on
every training clip (clips overlap: an event clip and its neighbours share most
of their audio), each recording is run once, in segment-aligned windows with
``context_seconds`` of extra audio on both sides (as :mod:`panns_core.detection.inference`
does), and a clip's embeddings are a slice of its recording's rows. The rows
equal one pass over the whole recording (to ~1e-6), which is also what
detection computes later, so the head trains on the features it will see.

Only the segments asked for are computed (for training recordings, those under
clips; for validation recordings, all). Results are cached on disk under
``cache_dir()/embeddings`` keyed by (audio sha256, trunk fingerprint,
precision); a later run computes only the rows the cache lacks.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

DEFAULT_CONTEXT_SECONDS = 2.56
#: windows longer than this are split (memory); bodies are whole segments
DEFAULT_BODY_SECONDS = 30.72
#: audio per forward call: the fixed cost of a call is amortised over a batch
DEFAULT_BATCH_SECONDS = 80.0


@dataclass(frozen=True)
class EmbeddingRequest:
    """Segments ``[a, b)`` of each range in ``ranges`` of the recording at ``path``."""

    path: Path
    ranges: tuple[tuple[int, int], ...]


def trunk_fingerprint(model: nn.Module) -> str:
    """sha256 of everything that shapes ``segment_embedding``: the architecture, the
    feature settings and every tensor of the state dict except the output layer."""
    digest = hashlib.sha256()
    digest.update(str(getattr(model, "arch_name", type(model).__name__)).encode())
    digest.update(repr(getattr(model, "feature_config", "")).encode())
    skip = tuple(model.classifier_prefixes()) if hasattr(model, "classifier_prefixes") else ()
    for name, tensor in model.state_dict().items():
        if name.startswith(skip) or name.endswith("num_batches_tracked"):
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def total_segments(model: nn.Module, samples: int) -> int:
    """Segments of one pass over ``samples`` samples."""
    from ..models import frames_to_segments

    return frames_to_segments(model.feature_config.num_frames(samples), model.segment_frames)


def _windows(
    ranges: Sequence[tuple[int, int]], n_total: int, n_samples: int, seg: int,
    context: int, body: int,
) -> list[tuple[int, int, int, int]]:  # fmt: skip
    """(first window segment, window start sample, window stop sample, kept a, kept b)."""
    out = []
    for a, b in ranges:
        for lo in range(a, b, body):
            hi = min(b, lo + body)
            w0 = max(0, lo - context)
            stop = n_samples if hi + context >= n_total else (hi + context) * seg
            out.append((w0, w0 * seg, stop, lo, hi))
    return out


def _merge(ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for a, b in sorted(ranges):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged if b > a]


class _Cache:
    def __init__(self, root: Path | None) -> None:
        self.root = root

    def path(self, audio_hash: str, key: str) -> Path | None:
        return None if self.root is None else self.root / f"{audio_hash[:40]}-{key}.npz"

    def load(self, audio_hash: str, key: str, shape: tuple[int, int]):
        path = self.path(audio_hash, key)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path) as data:
                rows, have = data["embeddings"], data["have"]
        except (OSError, ValueError, KeyError):
            return None
        return (rows, have) if rows.shape == shape and have.shape == (shape[0],) else None

    def save(self, audio_hash: str, key: str, rows: np.ndarray, have: np.ndarray) -> None:
        path = self.path(audio_hash, key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.part.npz")
        np.savez(tmp, embeddings=rows, have=have)
        os.replace(tmp, path)


def recording_embeddings(
    model: nn.Module,
    requests: Sequence[EmbeddingRequest],
    *,
    precision: str = "fp32",
    device: str | torch.device = "cpu",
    cache: bool | str | Path = True,
    fingerprint: str | None = None,
    context_seconds: float = DEFAULT_CONTEXT_SECONDS,
    body_seconds: float = DEFAULT_BODY_SECONDS,
    batch_seconds: float = DEFAULT_BATCH_SECONDS,
) -> list[np.ndarray]:
    """``segment_embedding`` rows (n_segments, dim) float32 of each requested recording.

    Rows outside the requested ranges may be zero. ``precision``: "fp32", "bf16"
    (autocast) or "int8" (the CPU fast path of :mod:`panns_core.detection.quantized`).
    ``cache``: True for ``cache_dir()/embeddings``, a directory, or False.
    """
    from ..audio import audio_info, file_sha256, load_audio
    from ..detection.device import autocast

    dev = torch.device(device)
    rate = int(model.feature_config.sample_rate)
    seg = int(model.segment_samples)
    dim = int(model.embedding_dim)
    context = math.ceil(round(context_seconds * rate) / seg)
    body = max(1, math.ceil(round(body_seconds * rate) / seg))
    if cache is True:
        from ..paths import cache_dir

        root: Path | None = cache_dir() / "embeddings"
    else:
        root = Path(cache) if cache else None
    store = _Cache(root)
    key = f"{(fingerprint or trunk_fingerprint(model))[:24]}-{precision}"

    results: list[np.ndarray] = []
    haves: list[np.ndarray] = []
    hashes: list[str] = []
    # (item, path, first window segment, start sample, stop sample, kept a, kept b)
    jobs: list[tuple[int, Path, int, int, int, int, int]] = []
    for item, request in enumerate(requests):
        info = audio_info(request.path)
        n_samples = round(info.frames * rate / info.sample_rate)
        n_total = total_segments(model, n_samples)
        audio_hash = file_sha256(request.path) if root is not None else ""
        hit = store.load(audio_hash, key, (n_total, dim)) if root is not None else None
        rows, have = hit if hit is not None else (
            np.zeros((n_total, dim), np.float32), np.zeros(n_total, bool))  # fmt: skip
        wanted = np.zeros(n_total, bool)
        for a, b in request.ranges:
            wanted[max(0, a) : min(n_total, b)] = True
        missing = wanted & ~have
        edges = np.flatnonzero(np.diff(np.concatenate([[0], missing.astype(np.int8), [0]])))
        ranges = _merge(list(zip(edges[0::2].tolist(), edges[1::2].tolist())))
        for w0, start, stop, a, b in _windows(ranges, n_total, n_samples, seg, context, body):
            jobs.append((item, request.path, w0, start, stop, a, b))
        results.append(rows)
        haves.append(have)
        hashes.append(audio_hash)

    runner = model
    if precision == "int8" and jobs:  # nothing to compute: no need to quantize
        from ..detection.quantized import int8_model

        runner = int8_model(model)
    was_training = model.training
    model.eval()
    by_length: dict[int, list] = {}
    for job in jobs:
        by_length.setdefault(job[4] - job[3], []).append(job)
    try:
        for length, group in sorted(by_length.items()):
            per_call = max(1, int(batch_seconds * rate // max(length, 1)))
            for k in range(0, len(group), per_call):
                batch = group[k : k + per_call]
                waves = np.stack([
                    load_audio(path, rate, start=start / rate, stop=stop / rate)[0][:length]
                    for _, path, _, start, stop, _, _ in batch
                ])  # fmt: skip
                if waves.shape[1] < length:  # a decoder that returned short: pad
                    waves = np.pad(waves, ((0, 0), (0, length - waves.shape[1])))
                with torch.inference_mode(), autocast(dev, precision):
                    out = runner(torch.from_numpy(waves).to(dev))["segment_embedding"]
                out = out.float().cpu().numpy()
                for (item, _, w0, _, _, a, b), emb in zip(batch, out):
                    results[item][a:b] = emb[a - w0 : b - w0]
                    haves[item][a:b] = True
    finally:
        model.train(was_training)
    if root is not None:
        touched = {job[0] for job in jobs}
        for item in sorted(touched):
            store.save(hashes[item], key, results[item], haves[item])
    return results
