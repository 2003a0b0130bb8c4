"""A mirrored ring buffer holding the last N frames of a stream (Friture style).

Every frame is written twice, at ``i`` and at ``i + capacity``, so the newest ``n``
frames are always one contiguous slice: reading never concatenates. A sample counter
(`total`) maps buffer contents to stream time, so a reader knows exactly which frames
it got. One writer thread and any number of reader threads may use it at once.
"""

from __future__ import annotations

import threading

import numpy as np


class RingBuffer:
    """The last ``capacity`` frames of a (frames, channels) stream."""

    def __init__(self, capacity: int, channels: int = 1, dtype: np.dtype | str = "float32"):
        if capacity < 1 or channels < 1:
            raise ValueError("a ring buffer needs capacity >= 1 and channels >= 1")
        self.capacity = int(capacity)
        self.channels = int(channels)
        self._data = np.zeros((2 * self.capacity, self.channels), dtype=dtype)
        self._offset = 0  # where the next frame goes, in [0, capacity)
        self._total = 0  # frames pushed since creation (the stream's sample counter)
        self._lock = threading.Lock()

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def total(self) -> int:
        """Frames pushed since creation (stream frame index of the next frame)."""
        return self._total

    @property
    def available(self) -> int:
        """How many frames a reader can get (at most ``capacity``)."""
        return min(self._total, self.capacity)

    def push(self, block: np.ndarray) -> None:
        """Append ``block`` (frames,) or (frames, channels); older frames fall out."""
        block = np.asarray(block)
        if block.ndim == 1:
            block = block[:, None]
        if block.shape[1] != self.channels:
            raise ValueError(f"block has {block.shape[1]} channels, buffer {self.channels}")
        if len(block) > self.capacity:
            skipped = len(block) - self.capacity
            block = block[skipped:]
        else:
            skipped = 0
        n = len(block)
        with self._lock:
            cap, off = self.capacity, self._offset
            # First copy: [off, off + n) may run past capacity into the mirror half,
            # second copy mirrors it so both halves hold the same frames.
            self._data[off : off + n] = block
            if off + n <= cap:
                self._data[off + cap : off + cap + n] = block
            else:
                first = cap - off
                self._data[off + cap : 2 * cap] = block[:first]
                self._data[: n - first] = block[first:]
            self._offset = (off + n) % cap
            self._total += n + skipped

    def latest(self, frames: int) -> tuple[np.ndarray, int]:
        """(copy of the newest ``min(frames, available)`` frames, stream index of the first).

        The array has shape (n, channels); its frame ``k`` is stream frame ``start + k``.
        """
        with self._lock:
            n = max(0, min(int(frames), self._total, self.capacity))
            end = self._offset + self.capacity
            out = self._data[end - n : end].copy()
            return out, self._total - n

    def since(self, start: int, max_frames: int | None = None) -> tuple[np.ndarray, int]:
        """Frames from stream index ``start`` on (clipped to what is still held).

        Returns (frames, actual start); the actual start is later than ``start`` when
        older frames have already fallen out of the buffer.
        """
        with self._lock:
            first = max(int(start), self._total - min(self._total, self.capacity))
            n = self._total - first
            if max_frames is not None:
                n = min(n, int(max_frames))
            n = max(n, 0)
            end = self._offset + self.capacity - (self._total - first - n)
            out = self._data[end - n : end].copy()
            return out, first
