"""Overlapping blocks of a file of any length, at a target rate, in bounded memory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from panns_core.audio.loading import READ_FRAMES, stream_resampled


@dataclass(frozen=True)
class AudioBlock:
    """``samples`` (mono float32 at ``sample_rate``) starting ``start`` seconds into the file.

    ``offset`` is the same start as a sample index at ``sample_rate`` (exact, for aligning
    chunks to model segments); ``index`` counts blocks from 0; ``is_last`` marks the block
    that reaches the end of the file (or of ``stop``). Only the last block may be shorter.
    """

    index: int
    start: float
    samples: np.ndarray
    sample_rate: int
    offset: int
    is_last: bool

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def end(self) -> float:
        return (self.offset + len(self.samples)) / self.sample_rate


def iter_blocks(
    path: str | os.PathLike[str],
    sample_rate: int | None,
    block_seconds: float,
    hop_seconds: float,
    channel: int | None = None,
    *,
    start: float = 0.0,
    stop: float | None = None,
    read_frames: int = READ_FRAMES,
) -> Iterator[AudioBlock]:
    """Blocks of ``block_seconds`` every ``hop_seconds`` (hop <= block: overlap or abut).

    Block ``i`` holds samples ``k0 + i*hop`` to ``k0 + i*hop + block`` of the whole file
    resampled to ``sample_rate`` (``k0 = round(start*rate)``; block and hop are rounded to
    whole samples); blocks stop with the first one that reaches the end, which may be
    shorter. Memory stays at about two blocks plus one decode buffer whatever the file
    length. The file is opened (and bad input raises AudioError) before the first block
    is requested.
    """
    _info, rate, chunks = stream_resampled(path, sample_rate, channel, start, stop,
                                           read_frames=read_frames)
    block = round(block_seconds * rate)
    hop = round(hop_seconds * rate)
    if block < 1 or not (1 <= hop <= block):
        chunks.close()
        raise ValueError(f"need 0 < hop_seconds <= block_seconds (got block {block_seconds!r} "
                         f"s, hop {hop_seconds!r} s at {rate} Hz)")
    return _frame(chunks, rate, block, hop, round(start * rate))


def _frame(chunks: Iterator[np.ndarray], rate: int, block: int, hop: int,
           first: int) -> Iterator[AudioBlock]:
    buf = np.zeros(0, dtype=np.float32)
    buf_off = first  # sample index of buf[0]
    next_off = first
    pending: AudioBlock | None = None  # held back one step so we can mark the last block
    index = 0

    def make(off: int, samples: np.ndarray, last: bool) -> AudioBlock:
        return AudioBlock(index=index, start=off / rate, samples=samples, sample_rate=rate,
                          offset=off, is_last=last)

    try:
        for chunk in chunks:
            buf = np.concatenate((buf, chunk)) if len(buf) else chunk
            while buf_off + len(buf) >= next_off + block:
                s = next_off - buf_off
                samples = np.array(buf[s: s + block], dtype=np.float32)
                if pending is not None:
                    yield pending
                pending = make(next_off, samples, False)
                index += 1
                next_off += hop
                buf = buf[next_off - buf_off:]
                buf_off = next_off
    finally:
        chunks.close()
    total = buf_off + len(buf)
    if next_off < total and (pending is None or pending.offset + block < total):
        if pending is not None:
            yield pending
        pending = make(next_off, np.array(buf[next_off - buf_off:], dtype=np.float32), True)
    if pending is not None:
        yield AudioBlock(index=pending.index, start=pending.start, samples=pending.samples,
                         sample_rate=rate, offset=pending.offset, is_last=True)
