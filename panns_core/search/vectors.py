"""Cosine search over the index's float16 vectors, with usearch.

usearch was chosen over faiss-cpu by measurement (benchmarks/bench_search.py, README):
it searches float16 vectors directly, exactly (SIMD brute force, no float32 copy) or with
an HNSW graph that also stores float16 (faiss's HNSW stores float32: twice the memory),
extends a saved graph in place, and opens one memory-mapped (an up-to-date graph is
searched from the mapped file, not read into memory). Below :data:`EXACT_LIMIT`
rows (about 18 hours of CNN14 windows) every query is exact; above it the HNSW graph
answers (recall@100 0.99+ at ``expansion_search`` 256 on the benchmark).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

#: rows up to which every query is exact (brute force over the float16 vectors)
EXACT_LIMIT = 100_000
CONNECTIVITY = 16
EXPANSION_ADD = 64
EXPANSION_SEARCH = 256


def exact_search(vectors: np.ndarray, query: np.ndarray, count: int,
                 threads: int = 0) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(rows, cosine similarities) of the ``count`` rows most similar to ``query``."""
    from usearch.index import search

    count = min(int(count), len(vectors))
    if count <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    found = search(vectors, np.asarray(query, np.float16), count, metric="cos", exact=True,
                   threads=threads)  # fmt: skip
    return _valid(found.keys, found.distances)


def _valid(keys: np.ndarray, distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keys = np.asarray(keys, np.int64).ravel()
    sims = 1.0 - np.asarray(distances, np.float32).ravel()
    ok = (keys >= 0) & np.isfinite(sims) & (keys < np.iinfo(np.int64).max)
    return keys[ok], sims[ok]


class HnswIndex:
    """An HNSW graph over the first ``rows`` vectors, saved as ``path`` with a record of
    how many rows it holds (written after the graph: a killed save leaves the old one)."""

    def __init__(self, path: str | os.PathLike, dim: int) -> None:
        self.path = Path(path)
        self.record = self.path.with_suffix(".json")
        self.dim = int(dim)
        self._index = None

    def rows(self) -> int:
        try:
            return int(json.loads(self.record.read_text())["rows"])
        except (OSError, ValueError, KeyError):
            return 0

    def _new(self):
        from usearch.index import Index

        return Index(ndim=self.dim, metric="cos", dtype="f16", connectivity=CONNECTIVITY,
                     expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)  # fmt: skip

    def sync(self, vectors: np.ndarray, threads: int = 0) -> int:
        """Hold rows [0, len(vectors)): extend the saved graph, or build it anew when it
        is missing, unreadable or holds rows that are gone. Returns rows added."""
        have = self.rows() if self.path.is_file() else 0
        index = None
        if 0 < have == len(vectors):  # up to date: map the file, do not read it into memory
            try:
                index = self._new()
                index.view(str(self.path))
                if len(index) == have:
                    self._index = index
                    return 0
            except Exception:  # a damaged file: build again
                pass
            index = None
        if 0 < have <= len(vectors):
            try:
                index = self._new()
                index.load(str(self.path))
                if len(index) != have:
                    index = None
            except Exception:  # a damaged file: build again
                index = None
        if index is None:
            index, have = self._new(), 0
        added = len(vectors) - have
        if added > 0:
            step = 50_000
            for lo in range(have, len(vectors), step):
                hi = min(len(vectors), lo + step)
                index.add(np.arange(lo, hi), np.asarray(vectors[lo:hi], np.float16),
                          threads=threads)  # fmt: skip
            tmp = self.path.with_name(self.path.name + f".{os.getpid()}.part")
            index.save(str(tmp))
            os.replace(tmp, self.path)
            part = self.record.with_name(self.record.name + f".{os.getpid()}.part")
            part.write_text(json.dumps({"rows": len(vectors)}))
            os.replace(part, self.record)
        self._index = index
        return max(0, added)

    def search(self, query: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        if self._index is None:
            raise RuntimeError("sync() first")
        count = min(int(count), len(self._index))
        found = self._index.search(np.asarray(query, np.float16), count)
        return _valid(found.keys, found.distances)

    def remove(self) -> None:
        self.record.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)
