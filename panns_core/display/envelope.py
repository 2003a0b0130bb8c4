"""Min/max envelope pyramid of an audio file, for drawing long waveforms fast.

The base level keeps the minimum and maximum of every ``base_bin`` samples (mono mix,
native sample rate); each further level merges ``factor`` bins of the one below, until
a level has fewer than ``min_top_bins`` bins. Drawing N pixels over any time range then
touches at most a few times N values, whatever the zoom. For a 60-minute file at
44.1 kHz the base level has about 620,000 bins (5 MB).

:func:`iter_envelope` builds the pyramid block by block and yields it as it fills, so a
viewer can draw the part read so far. For compressed files (FLAC, Ogg, MP3) that take
seconds to decode, it first yields a *preview*: short probes read at evenly spaced seek
positions, painted over the bins between them, so the whole file has a shape within a
fraction of a second; the full pass then overwrites it left to right. Finished
pyramids are cached on disk (keyed by path, size and mtime) and load in milliseconds.

No Qt, no torch.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..cancel import CancelToken
from ..errors import AudioError, Cancelled

BASE_BIN = 256
FACTOR = 8
MIN_TOP_BINS = 2048
BLOCK_FRAMES = 1 << 20
CACHE_VERSION = 1
_RAW_FORMATS = {"WAV", "WAVEX", "AIFF", "AU", "RAW", "W64", "RF64", "CAF"}


@dataclass
class EnvelopePyramid:
    """Envelope levels of one file; level 0 has ``base_bin`` samples per bin."""

    sample_rate: int
    frames: int
    base_bin: int = BASE_BIN
    factor: int = FACTOR
    mins: list[np.ndarray] = field(default_factory=list)
    maxs: list[np.ndarray] = field(default_factory=list)
    filled_frames: int = 0  # frames of the exact pass so far
    preview: bool = False  # bins past filled_frames hold probe values, not exact ones

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0

    @property
    def complete(self) -> bool:
        return self.filled_frames >= self.frames

    @property
    def n_levels(self) -> int:
        return len(self.mins)

    def bin_samples(self, level: int) -> int:
        return self.base_bin * self.factor**level

    @classmethod
    def empty(cls, sample_rate: int, frames: int, base_bin: int = BASE_BIN) -> EnvelopePyramid:
        n_bins = max(1, -(-frames // base_bin))
        pyramid = cls(sample_rate, frames, base_bin)
        pyramid.mins = [np.zeros(n_bins, np.float32)]
        pyramid.maxs = [np.zeros(n_bins, np.float32)]
        return pyramid

    def build_levels(self, min_top_bins: int = MIN_TOP_BINS) -> None:
        """(Re)compute every level above the base from the base level."""
        mins, maxs = [self.mins[0]], [self.maxs[0]]
        while len(mins[-1]) > min_top_bins:
            mins.append(_reduce(mins[-1], self.factor, np.minimum))
            maxs.append(_reduce(maxs[-1], self.factor, np.maximum))
        self.mins, self.maxs = mins, maxs

    def envelope(
        self, start: float, stop: float, n_points: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """About ``n_points`` (time, min, max) triples covering ``[start, stop]`` seconds.

        Picks the coarsest level whose bins are not wider than the pixels, then merges
        bins so no more than ``2 * n_points`` values come back. Times are bin centres.
        """
        if not self.mins or stop <= start or n_points < 1:
            empty = np.zeros(0, np.float32)
            return empty.astype(np.float64), empty, empty
        samples_per_point = max(1.0, (stop - start) * self.sample_rate / n_points)
        level = 0
        while level + 1 < self.n_levels and self.bin_samples(level + 1) <= samples_per_point:
            level += 1
        width = self.bin_samples(level)
        mins, maxs = self.mins[level], self.maxs[level]
        first = max(0, int(start * self.sample_rate // width))
        last = min(len(mins), int(np.ceil(stop * self.sample_rate / width)) + 1)
        if last <= first:
            empty = np.zeros(0, np.float32)
            return empty.astype(np.float64), empty, empty
        lo, hi = mins[first:last], maxs[first:last]
        merge = max(1, int(samples_per_point // width))
        if merge > 1:
            lo = _reduce(lo, merge, np.minimum)
            hi = _reduce(hi, merge, np.maximum)
        times = (first * width + (np.arange(len(lo)) + 0.5) * width * merge) / self.sample_rate
        return times, lo, hi

    def save(self, path: str | os.PathLike) -> None:
        arrays = {f"min{i}": m for i, m in enumerate(self.mins)}
        arrays.update({f"max{i}": m for i, m in enumerate(self.maxs)})
        meta = np.array(
            [CACHE_VERSION, self.sample_rate, self.frames, self.base_bin, self.factor], np.int64
        )
        tmp = Path(path).with_suffix(".tmp.npz")
        np.savez(tmp, meta=meta, **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> EnvelopePyramid:
        with np.load(path) as data:
            version, sample_rate, frames, base_bin, factor = (int(v) for v in data["meta"])
            if version != CACHE_VERSION:
                raise ValueError("old envelope cache")
            n = sum(1 for key in data.files if key.startswith("min"))
            pyramid = cls(sample_rate, frames, base_bin, factor)
            pyramid.mins = [data[f"min{i}"] for i in range(n)]
            pyramid.maxs = [data[f"max{i}"] for i in range(n)]
        pyramid.filled_frames = frames
        return pyramid


def _reduce(values: np.ndarray, k: int, op) -> np.ndarray:
    """Merge every ``k`` consecutive values with ``op`` (the last group may be short)."""
    n = len(values)
    whole = n // k * k
    out = op.reduce(values[:whole].reshape(-1, k), axis=1)
    if whole < n:
        out = np.append(out, op.reduce(values[whole:]))
    return out.astype(np.float32, copy=False)


def cache_path(path: str | os.PathLike) -> Path:
    """Where the envelope of ``path`` is cached (depends on path, size and mtime)."""
    from ..paths import cache_dir

    p = Path(path).resolve()
    st = p.stat()
    key = hashlib.sha1(f"{p}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:20]
    return cache_dir() / "envelopes" / f"{key}.npz"


def _open(path: str | os.PathLike):
    import soundfile as sf

    try:
        return sf.SoundFile(str(path))
    except Exception as error:  # soundfile raises RuntimeError/LibsndfileError/OSError
        if not Path(path).exists():
            raise AudioError(f"{path}: file not found. Check the path.") from error
        raise AudioError(
            f"{path}: cannot read this file as audio ({error}). "
            "Use WAV, FLAC, Ogg/Opus or MP3."
        ) from error


def _mono_block(f, frames: int) -> np.ndarray:
    if f.subtype == "PCM_16":
        block = f.read(frames, dtype="int16", always_2d=True)
        scale = 1.0 / 32768.0
    else:
        block = f.read(frames, dtype="float32", always_2d=True)
        scale = 1.0
    if block.shape[1] == 1:
        return block[:, 0], scale
    return block.mean(axis=1, dtype=np.float32), scale


def _fill(pyramid: EnvelopePyramid, start_frame: int, block: np.ndarray, scale: float) -> None:
    """Write the exact min/max of ``block`` (starting at a bin boundary) into level 0."""
    b = pyramid.base_bin
    first = start_frame // b
    whole = len(block) // b * b
    if whole:
        shaped = block[:whole].reshape(-1, b)
        pyramid.mins[0][first : first + len(shaped)] = shaped.min(axis=1) * scale
        pyramid.maxs[0][first : first + len(shaped)] = shaped.max(axis=1) * scale
    if whole < len(block):
        tail = block[whole:]
        idx = first + whole // b
        pyramid.mins[0][idx] = tail.min() * scale
        pyramid.maxs[0][idx] = tail.max() * scale


def _preview(f, pyramid: EnvelopePyramid, probes: int, probe_frames: int) -> None:
    """Fill level 0 from ``probes`` short reads spread over the file."""
    n_bins = len(pyramid.mins[0])
    edges = np.linspace(0, n_bins, probes + 1).astype(np.int64)
    for i in range(probes):
        a, b = edges[i], edges[i + 1]
        if b <= a:
            continue
        f.seek(int(a * pyramid.base_bin))
        block, scale = _mono_block(f, probe_frames)
        if len(block):
            pyramid.mins[0][a:b] = block.min() * scale
            pyramid.maxs[0][a:b] = block.max() * scale
    f.seek(0)
    pyramid.preview = True


def iter_envelope(
    path: str | os.PathLike,
    *,
    use_cache: bool = True,
    block_frames: int = BLOCK_FRAMES,
    yield_every: float = 0.15,
    preview_probes: int = 2048,
    cancel: CancelToken | None = None,
) -> Iterator[EnvelopePyramid]:
    """Yield the file's :class:`EnvelopePyramid` as it is built (the same object).

    Yields first a cached pyramid (and stops), or else an empty or preview pyramid,
    then again every ``yield_every`` of the file, and the complete pyramid last.
    ``cancel`` is an Event-like object; when set, :class:`Cancelled` is raised.
    """
    cached = None
    if use_cache:
        try:
            cached = cache_path(path)
            if cached.is_file():
                yield EnvelopePyramid.load(cached)
                return
        except (OSError, ValueError, KeyError):
            pass
    with _open(path) as f:
        if f.frames <= 0:
            raise AudioError(f"{path}: the file holds no audio samples. Choose another file.")
        pyramid = EnvelopePyramid.empty(f.samplerate, f.frames)
        # whole bins per block, so every block starts on a bin boundary
        block_frames = max(1, block_frames // pyramid.base_bin) * pyramid.base_bin
        slow = f.format not in _RAW_FORMATS and f.frames > 20 * block_frames
        if slow and preview_probes and f.seekable():
            _preview(f, pyramid, preview_probes, min(1024, pyramid.base_bin * 4))
        pyramid.build_levels()
        yield pyramid
        position = 0
        next_yield = yield_every * f.frames
        while position < f.frames:
            if cancel is not None and cancel.is_set():
                raise Cancelled("Waveform overview cancelled.")
            block, scale = _mono_block(f, block_frames)
            if not len(block):
                break
            _fill(pyramid, position, block, scale)
            position += len(block)
            pyramid.filled_frames = position
            if position >= next_yield and position < f.frames:
                next_yield += yield_every * f.frames
                pyramid.build_levels()
                yield pyramid
        if position < f.frames:  # the header promised more than the data holds
            pyramid.frames = position
            keep = max(1, -(-position // pyramid.base_bin))
            pyramid.mins[0] = pyramid.mins[0][:keep]
            pyramid.maxs[0] = pyramid.maxs[0][:keep]
        pyramid.filled_frames = pyramid.frames
        pyramid.preview = False
        pyramid.build_levels()
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            pyramid.save(cached)
        except OSError:
            pass  # a cache that cannot be written only costs time
    yield pyramid


def compute_envelope(path: str | os.PathLike, **kwargs) -> EnvelopePyramid:
    """The complete pyramid of ``path`` (blocking)."""
    pyramid = None
    for pyramid in iter_envelope(path, **kwargs):  # noqa: B007
        pass
    assert pyramid is not None
    return pyramid


def read_samples(path: str | os.PathLike, start: float, stop: float,
                 channel: int | None = None) -> tuple[np.ndarray, int]:
    """Mono float32 samples of ``[start, stop)`` seconds at the file's own rate (the mean
    of the channels, or ``channel``)."""
    with _open(path) as f:
        sr = f.samplerate
        a = max(0, int(start * sr))
        b = min(f.frames, int(np.ceil(stop * sr)))
        if b <= a:
            return np.zeros(0, np.float32), sr
        f.seek(a)
        block = f.read(b - a, dtype="float32", always_2d=True)
    if channel is not None and block.shape[1] > 1:
        mono = block[:, min(int(channel), block.shape[1] - 1)]
    else:
        mono = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(mono, dtype=np.float32), sr
