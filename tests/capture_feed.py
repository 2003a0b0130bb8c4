"""A capture device the test feeds: a FIFO read by ALSA's file plugin (``SD_TEST_INFILE``).

The test writes one PortAudio block at a time (any other write size makes the plugin
insert stale bytes), and keeps every block it wrote to compare with what was recorded.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import numpy as np

BLOCK = 1024
F_SETPIPE_SZ = 1031


class FifoSource:
    """Blocks of random samples written into a FIFO; ``fed`` keeps them in order."""

    def __init__(self, path: Path, *, channels: int = 1, dtype: str = "int16",
                 amplitude: int = 30000, block: int = BLOCK, seed: int = 0) -> None:
        os.mkfifo(path)
        self.path = path
        # O_RDWR: opening never blocks, and the reader never sees end-of-file while we
        # hold it, so the capture thread simply waits for the next block.
        self.fd = os.open(path, os.O_RDWR)
        fcntl.fcntl(self.fd, F_SETPIPE_SZ, 1 << 20)
        self.rng = np.random.default_rng(seed)
        self.channels, self.dtype = channels, np.dtype(dtype)
        self.amplitude, self.block = amplitude, block
        self.fed: list[np.ndarray] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def feed(self, blocks: int = 1) -> np.ndarray:
        """Write ``blocks`` blocks; returns them."""
        out = []
        with self._lock:
            for _ in range(blocks):
                block = self.rng.integers(-self.amplitude, self.amplitude,
                                          (self.block, self.channels)).astype(self.dtype)
                os.write(self.fd, block.tobytes())
                out.append(block)
            self.fed.extend(out)
        return np.concatenate(out)

    def pace(self, interval: float = 0.03) -> None:
        """Keep feeding a block every ``interval`` seconds from a thread (a live input)."""
        def run() -> None:
            while not self._stop.wait(interval):
                self.feed(1)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    @property
    def fed_frames(self) -> int:
        return self.block * len(self.fed)

    @property
    def samples(self) -> np.ndarray:
        """Everything fed so far, (frames, channels)."""
        return np.concatenate(self.fed)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
