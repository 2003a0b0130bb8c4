"""One shard per (recording content, model): the pooled window embeddings of a recording.

A shard is ``<sha256[:32]>.npz`` holding ``vectors`` (windows, dim) float16, the
``duration`` (s) and the window geometry. It is written to a temporary name, flushed to
disk and renamed over the final name, so a shard either exists whole or not at all: a
killed indexing run leaves complete shards (kept) and at most one partial temporary file
(removed by the next run).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .windows import WindowGeometry

PART = ".part"


@dataclass(frozen=True)
class Shard:
    sha256: str
    vectors: np.ndarray  # (windows, dim) float16
    duration: float
    geometry: WindowGeometry


class ShardStore:
    """The shards of one model in ``folder``."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def path(self, sha256: str) -> Path:
        return self.folder / f"{sha256[:32]}.npz"

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def clean(self) -> int:
        """Remove temporary files left by a killed run; returns how many."""
        removed = 0
        for stale in self.folder.glob(f"*{PART}*"):
            stale.unlink(missing_ok=True)
            removed += 1
        return removed

    def write(self, shard: Shard) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.path(shard.sha256)
        tmp = final.with_name(f"{final.stem}.{os.getpid()}{PART}.npz")
        with open(tmp, "wb") as handle:
            np.savez(handle, vectors=np.asarray(shard.vectors, np.float16),
                     duration=np.float64(shard.duration), sha256=np.str_(shard.sha256),
                     segment_seconds=np.float64(shard.geometry.segment_seconds),
                     window=np.int64(shard.geometry.window), hop=np.int64(shard.geometry.hop))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        return final

    def read(self, sha256: str) -> Shard | None:
        """The shard, or None when absent or unreadable (then it is computed again)."""
        path = self.path(sha256)
        try:
            with np.load(path) as data:
                geometry = WindowGeometry(float(data["segment_seconds"]), int(data["window"]),
                                          int(data["hop"]))  # fmt: skip
                return Shard(str(data["sha256"]), np.asarray(data["vectors"], np.float16),
                             float(data["duration"]), geometry)  # fmt: skip
        except (OSError, ValueError, KeyError, EOFError):
            return None
