"""Queries by example and the ranked windows they find.

A query is a time range of a recording (``RECORDING:ONSET-OFFSET`` on the command line).
One query ranks windows by the cosine similarity of their vectors to the mean unit vector
of the windows it covers (exact, or the HNSW graph at scale). Several queries combine
through a linear head (:mod:`.agile`) trained on their windows against random windows, and
the windows are ranked by its probability: on the real soundscapes this found more of the
class than each query alone, where the mean of their vectors (``combine="centroid"``) did
not (tests/search/test_search_real_sound.py). Hits are windows of any recording, best
first; a window that overlaps a query, or overlaps a better hit by half a window or more,
is left out (no list of ten near-copies of one event).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import PannsError
from .index import ProjectIndex


class QueryError(PannsError):
    """A query that cannot be read or does not name an indexed range."""


@dataclass(frozen=True)
class Query:
    recording: str
    onset: float
    offset: float

    def __str__(self) -> str:
        return f"{self.recording}:{self.onset:g}-{self.offset:g}"


@dataclass(frozen=True)
class Hit:
    """One ranked window; ``recording`` is the file name as the project lists it."""

    recording: str
    path: str
    onset: float
    offset: float
    score: float
    row: int


_RANGE = re.compile(r"^\s*([0-9.eE+]+)\s*-\s*([0-9.eE+]+)\s*$")


def parse_query(text: str) -> Query:
    """``RECORDING:ONSET-OFFSET`` (seconds) -> :class:`Query`."""
    name, sep, times = text.rpartition(":")
    match = _RANGE.match(times) if sep else None
    if not name or match is None:
        raise QueryError(f"Cannot read the query {text!r}; write RECORDING:ONSET-OFFSET in "
                         "seconds, e.g. dawn.flac:12.5-14.0.")  # fmt: skip
    onset, offset = float(match.group(1)), float(match.group(2))
    if not offset > onset:
        raise QueryError(f"The query {text!r} ends before it starts; write ONSET-OFFSET with "
                         "ONSET < OFFSET.")  # fmt: skip
    return Query(name, onset, offset)


def unit(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(norms, 1e-12)


def query_vector(index: ProjectIndex, queries: Sequence[Query]) -> np.ndarray:
    """The combined unit query vector."""
    if not queries:
        raise QueryError("Give at least one query (RECORDING:ONSET-OFFSET).")
    parts = []
    for query in queries:
        try:
            entry = index.entry_of(query.recording)
        except PannsError as error:
            raise QueryError(str(error)) from None
        if query.onset >= entry.duration:
            raise QueryError(f"The query {query} starts after the end of {entry.name} "
                             f"({entry.duration:.2f} s).")  # fmt: skip
        rows = index.rows_in(entry, query.onset, query.offset)
        parts.append(unit(unit(np.asarray(index.vectors[rows], np.float32)).mean(axis=0)))
    return unit(np.mean(parts, axis=0))


def _query_spans(index: ProjectIndex, queries: Sequence[Query]) -> list[tuple[int, float, float]]:
    spans = []
    for query in queries:
        entry = index.entry_of(query.recording)
        spans.append((index.entries.index(entry), query.onset, query.offset))
    return spans


def rank_rows(index: ProjectIndex, rows: np.ndarray, scores: np.ndarray, top: int,
              exclude: Sequence[tuple[int, float, float]] = ()) -> list[Hit]:  # fmt: skip
    """Hits from candidate rows (any order): best first, queries and near-copies left out."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    rows, scores = np.asarray(rows)[order], np.asarray(scores)[order]
    which, onsets, offsets = index.row_times(rows)
    assert index.geometry is not None
    half = 0.5 * index.geometry.window_seconds - 1e-9
    kept: dict[int, list[tuple[float, float]]] = {}
    hits: list[Hit] = []
    for row, score, w, on, off in zip(rows, scores, which, onsets, offsets):
        w = int(w)
        if any(w == e and min(off, b) - max(on, a) > 0 for e, a, b in exclude):
            continue
        if any(min(off, b) - max(on, a) >= half for a, b in kept.get(w, ())):
            continue
        kept.setdefault(w, []).append((on, off))
        entry = index.entries[w]
        hits.append(Hit(entry.name, entry.path, float(on), float(off), float(score), int(row)))
        if len(hits) >= top:
            break
    return hits


COMBINE = ("head", "centroid")


def search(index: ProjectIndex, queries: Sequence[Query], top: int = 50,
           combine: str = "head") -> list[Hit]:  # fmt: skip
    """The ``top`` windows most like the queries, best first. ``combine``: how several
    queries combine ("head": a linear head on their windows; "centroid": the mean of their
    unit vectors, scored by cosine similarity)."""
    if combine not in COMBINE:
        raise ValueError(f"combine must be one of {COMBINE}, not {combine!r}")
    vector = query_vector(index, queries)
    exclude = _query_spans(index, queries)
    if len(queries) > 1 and combine == "head":
        from .agile import Labelled, rerank, train_head

        rows = [index.rows_in(index.entry_of(q.recording), q.onset, q.offset) for q in queries]
        labelled = Labelled(np.unique(np.concatenate(rows)), np.zeros(0, np.int64),
                            tuple(exclude))  # fmt: skip
        head = train_head(index, labelled, "query")
        return rerank(index, head, top=top, exclude=exclude)
    count = min(index.rows, 4 * top + 32)
    while True:
        rows, scores = index.nearest(vector, count)
        hits = rank_rows(index, rows, scores, top, exclude)
        if len(hits) >= top or count >= index.rows:
            return hits
        count = min(index.rows, count * 4)


def hits_frame(hits: Sequence[Hit]):
    """The hits as the TSV's frame: filename, onset, offset, score."""
    import pandas as pd

    return pd.DataFrame({"filename": [h.recording for h in hits],
                         "onset": [round(h.onset, 3) for h in hits],
                         "offset": [round(h.offset, 3) for h in hits],
                         "score": [round(h.score, 6) for h in hits]})  # fmt: skip
