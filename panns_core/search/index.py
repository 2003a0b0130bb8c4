"""The embedding index of a project, stored beside the project file.

``birds.panns`` keeps its index in ``birds.panns.search/<model>/``:

- ``shards/<sha256>.npz``: one per recording content (:mod:`.shards`), each written
  atomically as soon as its recording is done, so a killed run keeps what it finished
  and the next run computes only the rest;
- ``vectors.f16`` + ``catalog.json``: all shards' vectors end to end (memory-mapped for
  search) and which shard holds which rows. Extending appends to the file, flushes it,
  then replaces the catalog; a run killed in between leaves bytes past the catalog's rows,
  which are ignored and overwritten. A catalog that no longer matches (a recording
  removed) is rebuilt from the shards;
- ``hnsw.usearch`` + ``hnsw.json``: the approximate graph, only past
  :data:`~.vectors.EXACT_LIMIT` rows (:mod:`.vectors`).

:func:`build_index` computes the missing shards with the detection pass itself
(:func:`~panns_core.detection.inference.iter_detect` with ``embeddings=True``), so the same
run also leaves the recording's scores in the score cache: detecting with that model
afterwards reads them instead of running the model again.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..cancel import CancelToken
from ..errors import Cancelled, StoreError
from .shards import Shard, ShardStore
from .vectors import EXACT_LIMIT, HnswIndex, exact_search
from .windows import WindowGeometry, pool

if TYPE_CHECKING:  # pragma: no cover
    from ..hub.detector import Detector

CATALOG = "catalog.json"
VECTORS = "vectors.f16"
#: progress(seconds of audio done, seconds in all, recording name)
IndexProgress = Callable[[float, float, str], None]


def index_dir(project: str | os.PathLike) -> Path:
    """The folder beside ``project`` that holds its search indexes."""
    project = Path(project)
    return project.with_name(project.name + ".search")


def model_key(model_id: str) -> str:
    """A folder name for a model id (``name@sha12`` stays readable)."""
    return re.sub(r"[^A-Za-z0-9_.@-]+", "-", model_id).strip("-") or "model"


@dataclass(frozen=True)
class Entry:
    """One recording's rows in the index."""

    sha256: str
    name: str
    path: str
    first: int
    rows: int
    duration: float


@dataclass
class ProjectIndex:
    """The search index of one project and model (see the module docstring)."""

    folder: Path
    model_id: str
    entries: list[Entry] = field(default_factory=list)
    geometry: WindowGeometry | None = None
    dim: int = 0
    _vectors: np.ndarray | None = None
    _hnsw: HnswIndex | None = None

    @classmethod
    def at(cls, project: str | os.PathLike, model_id: str) -> ProjectIndex:
        return cls(index_dir(project) / model_key(model_id), model_id)

    @property
    def shards(self) -> ShardStore:
        return ShardStore(self.folder / "shards")

    @property
    def rows(self) -> int:
        return self.entries[-1].first + self.entries[-1].rows if self.entries else 0

    @property
    def exact(self) -> bool:
        return self.rows <= EXACT_LIMIT

    # -- the catalog ----------------------------------------------------------------------
    def _read_catalog(self) -> dict[str, Any] | None:
        try:
            data = json.loads((self.folder / CATALOG).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if data.get("model_id") == self.model_id else None

    def refresh(self, recordings: Sequence[tuple[str, str, str]]) -> int:
        """Make the concatenated vectors hold the shards of ``recordings`` ((sha256, name,
        path), in project order; those without a shard are left out). Extends when the old
        catalog is a prefix of the new one, else rebuilds. Returns the rows appended."""
        self.folder.mkdir(parents=True, exist_ok=True)
        old = self._read_catalog()
        old_entries = [Entry(**e) for e in old["entries"]] if old else []
        seen: set[str] = set()
        wanted: list[tuple[str, str, str]] = []
        for sha, name, path in recordings:
            if sha and sha not in seen and self.shards.has(sha):
                seen.add(sha)
                wanted.append((sha, name, path))
        keep = 0
        while (keep < len(old_entries) and keep < len(wanted)
               and old_entries[keep].sha256 == wanted[keep][0]):  # fmt: skip
            keep += 1
        path = self.folder / VECTORS
        rebuilt = True
        if old and keep == len(old_entries) and path.is_file():
            rebuilt = False
            entries = [replace_names(e, wanted[i]) for i, e in enumerate(old_entries)]
            geometry = _geometry(old)
            dim = int(old["dim"])
            size = (entries[-1].first + entries[-1].rows) * dim * 2 if entries else 0
            if path.stat().st_size < size:  # the file lost rows: rebuild
                entries, geometry, dim, size, rebuilt = [], None, 0, 0, True
        else:
            entries, geometry, dim, size = [], None, 0, 0
        appended = 0
        mode = "r+b" if size and path.is_file() else "wb"
        with open(path, mode) as handle:
            handle.truncate(size)
            handle.seek(size)
            first = size // (2 * dim) if dim else 0
            for sha, name, rec_path in wanted[len(entries):]:
                shard = self.shards.read(sha)
                if shard is None:
                    continue
                if geometry is None:
                    geometry, dim = shard.geometry, int(shard.vectors.shape[1])
                if shard.geometry != geometry or shard.vectors.shape[1] != dim:
                    raise StoreError(f"The index shard of {name} does not match the others; "
                                     f"delete {self.folder} and index again.")  # fmt: skip
                handle.write(np.ascontiguousarray(shard.vectors, np.float16).tobytes())
                entries.append(Entry(sha, name, rec_path, first, len(shard.vectors),
                                     shard.duration))  # fmt: skip
                first += len(shard.vectors)
                appended += len(shard.vectors)
            handle.flush()
            os.fsync(handle.fileno())
        catalog = {"model_id": self.model_id, "dim": dim,
                   "geometry": geometry.to_dict() if geometry else None,
                   "entries": [e.__dict__ for e in entries]}  # fmt: skip
        tmp = self.folder / f"{CATALOG}.{os.getpid()}.part"
        tmp.write_text(json.dumps(catalog), encoding="utf-8")
        os.replace(tmp, self.folder / CATALOG)
        if rebuilt:  # rows may have moved: the graph is made again when needed
            HnswIndex(self.folder / "hnsw.usearch", max(dim, 1)).remove()
        self.entries, self.geometry, self.dim = entries, geometry, dim
        self._vectors = None
        self._hnsw = None
        return appended

    def load(self) -> ProjectIndex:
        """Read the catalog as it is (no shards consulted)."""
        data = self._read_catalog()
        if data is None:
            raise StoreError(f"No search index at {self.folder}; run `panns-sed index` first.")
        self.entries = [Entry(**e) for e in data["entries"]]
        self.geometry = _geometry(data)
        self.dim = int(data["dim"])
        self._vectors = None
        return self

    # -- vectors and positions ------------------------------------------------------------
    @property
    def vectors(self) -> np.ndarray:
        """(rows, dim) float16, memory-mapped."""
        if self._vectors is None:
            if not self.rows:
                self._vectors = np.zeros((0, max(self.dim, 1)), np.float16)
            else:
                self._vectors = np.memmap(self.folder / VECTORS, np.float16, "r",
                                          shape=(self.rows, self.dim))  # fmt: skip
        return self._vectors

    def entry_of(self, recording: str) -> Entry:
        """The entry of a recording by file name, stem, path or sha256."""
        matches = [e for e in self.entries
                   if recording in (e.name, Path(e.name).stem, e.path, e.sha256)]  # fmt: skip
        if not matches:
            raise StoreError(f"{recording!r} is not in the search index; add it to the project "
                             "and run `panns-sed index`.")  # fmt: skip
        return matches[0]

    def row_entries(self, rows: np.ndarray) -> np.ndarray:
        firsts = np.array([e.first for e in self.entries], np.int64)
        return np.searchsorted(firsts, np.asarray(rows, np.int64), side="right") - 1

    def row_times(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(entry index, onset, offset) of each row."""
        assert self.geometry is not None
        which = self.row_entries(rows)
        firsts = np.array([e.first for e in self.entries], np.int64)[which]
        durations = np.array([e.duration for e in self.entries], np.float64)[which]
        onset = (np.asarray(rows) - firsts) * self.geometry.hop_seconds
        offset = np.minimum(onset + self.geometry.window_seconds, durations)
        return which, onset, np.maximum(offset, onset + 1e-3)

    def rows_in(self, entry: Entry, onset: float, offset: float) -> np.ndarray:
        """Rows of ``entry`` whose windows overlap [onset, offset] by at least half a window
        (or half the range when it is shorter); at least the one overlapping most."""
        assert self.geometry is not None
        rows = np.arange(entry.first, entry.first + entry.rows)
        _, on, off = self.row_times(rows)
        overlap = np.minimum(off, offset) - np.maximum(on, onset)
        need = 0.5 * min(self.geometry.window_seconds, max(offset - onset, 1e-3))
        chosen = rows[overlap >= need - 1e-9]
        return chosen if len(chosen) else rows[[int(np.argmax(overlap))]]

    def nearest(self, query: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cosine similarities) best first: exact up to EXACT_LIMIT rows, else HNSW."""
        if self.exact:
            return exact_search(self.vectors, query, count)
        if self._hnsw is None:
            self._hnsw = HnswIndex(self.folder / "hnsw.usearch", self.dim)
            self._hnsw.sync(self.vectors)
        return self._hnsw.search(query, count)

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())


def replace_names(entry: Entry, recording: tuple[str, str, str]) -> Entry:
    from dataclasses import replace

    return replace(entry, name=recording[1], path=recording[2])


def _geometry(catalog: dict[str, Any]) -> WindowGeometry | None:
    g = catalog.get("geometry")
    return None if not g else WindowGeometry(float(g["segment_seconds"]), int(g["window"]),
                                             int(g["hop"]))  # fmt: skip


# -- building ------------------------------------------------------------------------------
@dataclass
class IndexSummary:
    recordings: int
    computed: int
    reused: int
    skipped: list[str]
    rows: int
    seconds: float
    folder: Path


def _lock(folder: Path):
    """An exclusive lock on the index folder (another indexing run: an error)."""
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / "lock", "a+")  # noqa: SIM115 - held until the run ends
    try:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # pragma: no cover - not POSIX: no lock
        pass
    except OSError:
        handle.close()
        raise StoreError(
            f"Another indexing run is using {folder}; wait for it to finish.") from None
    return handle


def recording_list(store: Any) -> list[tuple[str, str, str]]:
    """(sha256, name, path) of the project's recordings; hashes missing ones."""
    from ..audio import file_sha256

    out = []
    for rec in store.recordings():
        sha = rec.sha256
        if not sha and rec.exists:
            sha = file_sha256(rec.path)
            store.set_recording_hash(rec.id, sha)
        out.append((sha or "", rec.name, str(rec.path)))
    return out


def embed_recording(path: str | os.PathLike, detector: Detector, sha256: str, *,
                    engine: str = "auto", cancel: CancelToken | None = None,
                    progress: Callable[[float], None] | None = None,
                    score_cache: bool = True) -> Shard:  # fmt: skip
    """Run detection over one recording keeping its segment embeddings; pool them."""
    from ..detection.inference import ScoreAssembly, iter_detect

    geometry = WindowGeometry.for_segment(detector.segment_seconds)
    assembly = ScoreAssembly(detector)
    parts: list[np.ndarray] = []
    duration = 0.0
    precision = "fp32"
    for chunk in iter_detect(path, detector, engine=engine, cancel=cancel, embeddings=True):
        assert chunk.embeddings is not None
        parts.append(chunk.embeddings)
        assembly.add(chunk)
        if chunk.is_last:
            duration = float(chunk.recording_seconds or chunk.end)
        if progress is not None:
            progress(chunk.fraction)
    if score_cache:  # the same pass is a detection run: keep its scores
        from ..detection.scores import ScoreCache

        with contextlib.suppress(OSError):  # a full cache is no reason to lose the embeddings
            ScoreCache().put(assembly.scores(audio_hash=sha256, precision=precision))
    segments = np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)
    return Shard(sha256, pool(segments, geometry).astype(np.float16), duration, geometry)


def build_index(
    project: str | os.PathLike,
    detector: Detector,
    *,
    engine: str = "auto",
    progress: IndexProgress | None = None,
    cancel: CancelToken | None = None,
) -> IndexSummary:
    """Compute the shards the project's recordings lack, then extend the index."""
    import time

    from ..annotations.store import ProjectStore

    started = time.monotonic()
    project = Path(project)
    index = ProjectIndex.at(project, detector.model_id)
    lock = _lock(index.folder)
    try:
        index.shards.clean()
        store = ProjectStore(project, create=False)
        try:
            recordings = recording_list(store)
            durations = {str(r.path): float(r.duration or 0.0) for r in store.recordings()}
        finally:
            store.close()
        todo = [r for r in recordings if r[0] and not index.shards.has(r[0])]
        skipped = [name for sha, name, path in todo if not Path(path).is_file()]
        todo = [r for r in todo if Path(r[2]).is_file()]
        total = sum(durations.get(path, 0.0) for _, _, path in todo) or 1.0
        done = 0.0
        computed = 0
        seen: set[str] = set()
        for sha, name, path in todo:
            if sha in seen:
                continue
            seen.add(sha)
            if cancel is not None and cancel.is_set():
                raise Cancelled("Indexing cancelled; the recordings done so far are kept.")
            length = durations.get(path, 0.0)

            def step(fraction: float, base: float = done, length: float = length,
                     name: str = name) -> None:  # fmt: skip
                if progress is not None:
                    progress(base + fraction * length, total, name)

            index.shards.write(embed_recording(path, detector, sha, engine=engine,
                                               cancel=cancel, progress=step))  # fmt: skip
            computed += 1
            done += length
        index.refresh(recordings)
        if not index.exact and index.rows:
            HnswIndex(index.folder / "hnsw.usearch", index.dim).sync(index.vectors)
    finally:
        lock.close()
    return IndexSummary(len(recordings), computed, len(recordings) - computed - len(skipped),
                        skipped, index.rows, time.monotonic() - started, index.folder)  # fmt: skip


def open_index(project: str | os.PathLike, model_id: str) -> ProjectIndex:
    """The index of ``project`` for ``model_id``, brought up to date with the shards that
    exist (recordings added since are left out until indexed)."""
    from ..annotations.store import ProjectStore

    index = ProjectIndex.at(project, model_id)
    if not index.folder.is_dir():
        raise StoreError(f"{Path(project).name} has no search index for {model_id}; run "
                         f"`panns-sed index --project {project}` first.")  # fmt: skip
    store = ProjectStore(Path(project), create=False)
    try:
        recordings = [(r.sha256 or "", r.name, str(r.path)) for r in store.recordings()]
    finally:
        store.close()
    data = index._read_catalog()
    same = data is not None and [(e["sha256"], e["name"]) for e in data["entries"]] == [
        (s, n) for s, n, _ in recordings if s and index.shards.has(s)]  # fmt: skip
    if same:
        return index.load()
    index.refresh(recordings)
    return index
