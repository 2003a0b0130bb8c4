"""The index's mechanics on synthetic shards: windows, extending, rebuilding, what a killed
run leaves behind, exact against approximate search, queries."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panns_core.search import index as index_module
from panns_core.search.index import ProjectIndex
from panns_core.search.query import QueryError, parse_query, search
from panns_core.search.shards import Shard
from panns_core.search.windows import WindowGeometry, pool

GEOMETRY = WindowGeometry.for_segment(0.32)


def _shard(sha: str, rows: int, dim: int = 16, seed: int = 0) -> Shard:
    rng = np.random.default_rng(seed)
    vectors = np.abs(rng.standard_normal((rows, dim))).astype(np.float16)
    return Shard(sha, vectors, rows * GEOMETRY.hop_seconds + 0.4, GEOMETRY)


def _recs(*shas: str) -> list[tuple[str, str, str]]:
    return [(sha, f"{sha}.wav", f"/data/{sha}.wav") for sha in shas]


@given(st.integers(1, 400), st.sampled_from([0.01, 0.16, 0.32, 0.5]))
@settings(max_examples=60, deadline=None)
def test_windows_cover_every_segment_and_are_means(segments, seconds):
    geometry = WindowGeometry.for_segment(seconds)
    x = np.arange(segments * 2, dtype=np.float32).reshape(segments, 2)
    pooled = pool(x, geometry)
    assert len(pooled) == geometry.count(segments)
    last = (len(pooled) - 1) * geometry.hop
    assert last < segments <= last + geometry.window or segments < geometry.window
    np.testing.assert_allclose(pooled[0], x[: geometry.window].mean(axis=0), rtol=1e-6)
    assert abs(geometry.window_seconds - 1.0) <= seconds / 2 + 1e-9 or geometry.window == 1


def test_extend_appends_and_a_removed_recording_rebuilds(tmp_path):
    index = ProjectIndex(tmp_path / "m", "model@1")
    shards = {s: _shard(s, n, seed=i) for i, (s, n) in enumerate([("a", 5), ("b", 7), ("c", 3)])}
    for shard in shards.values():
        index.shards.write(shard)
    assert index.refresh(_recs("a", "b")) == 12
    first = np.array(index.vectors)
    assert index.refresh(_recs("a", "b", "c")) == 3  # extended, not rebuilt
    np.testing.assert_array_equal(index.vectors[:12], first)
    np.testing.assert_array_equal(index.vectors[12:], shards["c"].vectors)
    index.refresh(_recs("a", "c"))  # b removed from the project: rebuilt
    assert [e.sha256 for e in index.entries] == ["a", "c"]
    np.testing.assert_array_equal(index.vectors[5:], shards["c"].vectors)
    assert ProjectIndex(tmp_path / "m", "model@1").load().rows == 8


def test_a_killed_extend_or_a_damaged_catalog_never_corrupts(tmp_path):
    index = ProjectIndex(tmp_path / "m", "model@1")
    for i, (sha, n) in enumerate([("a", 4), ("b", 6)]):
        index.shards.write(_shard(sha, n, seed=i))
    index.refresh(_recs("a"))
    # a run killed after appending b's rows but before the catalog: bytes past the catalog
    with open(index.folder / "vectors.f16", "ab") as handle:
        handle.write(b"\x00\x7f" * 100)
    (index.folder / "shards" / "b.1234.part.npz").write_bytes(b"half a shard")
    again = ProjectIndex(tmp_path / "m", "model@1").load()
    assert again.rows == 4  # the catalog decides what counts
    again.shards.clean()
    assert not list((index.folder / "shards").glob("*.part*"))
    again.refresh(_recs("a", "b"))
    np.testing.assert_array_equal(again.vectors[4:], _shard("b", 6, seed=1).vectors)
    (index.folder / "catalog.json").write_text("{not json")
    rebuilt = ProjectIndex(tmp_path / "m", "model@1")
    rebuilt.refresh(_recs("a", "b"))
    assert rebuilt.rows == 10
    assert json.loads((index.folder / "catalog.json").read_text())["dim"] == 16


def test_approximate_search_at_scale_finds_what_exact_search_finds(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    centres = np.abs(rng.standard_normal((20, 32)))
    index = ProjectIndex(tmp_path / "m", "model@1")
    recs = []
    for r in range(10):
        x = centres[rng.integers(0, 20, 300)] + 0.3 * np.abs(rng.standard_normal((300, 32)))
        sha = f"{r:02d}"
        index.shards.write(Shard(sha, x.astype(np.float16), 300 * 0.64 + 0.32, GEOMETRY))
        recs.append((sha, f"r{r}.wav", f"/data/r{r}.wav"))
    index.refresh(recs)
    query = parse_query("r3.wav:10-11")
    exact = search(index, [query], top=20)
    monkeypatch.setattr(index_module, "EXACT_LIMIT", 100)
    approximate = search(ProjectIndex(tmp_path / "m", "model@1").load(), [query], top=20)
    assert (tmp_path / "m" / "hnsw.usearch").is_file()
    same = {(h.recording, h.onset) for h in exact} & {(h.recording, h.onset) for h in approximate}
    assert len(same) >= 18
    for a, b in zip(exact[:5], approximate[:5]):
        assert a.score == pytest.approx(b.score, abs=2e-3)
    built = (tmp_path / "m" / "hnsw.usearch").stat().st_mtime_ns
    # the next search maps the saved graph (nothing new): the same hits, no rebuild
    again = search(ProjectIndex(tmp_path / "m", "model@1").load(), [query], top=20)
    assert [(h.recording, h.onset) for h in again] == [(h.recording, h.onset)
                                                       for h in approximate]  # fmt: skip
    assert (tmp_path / "m" / "hnsw.usearch").stat().st_mtime_ns == built


def test_hits_leave_out_the_query_and_near_copies(tmp_path):
    index = ProjectIndex(tmp_path / "m", "model@1")
    for i, sha in enumerate("abc"):
        index.shards.write(_shard(sha, 40, seed=i))
    index.refresh(_recs(*"abc"))
    hits = search(index, [parse_query("a.wav:3-5")], top=30)
    assert not any(h.recording == "a.wav" and h.onset < 5 and h.offset > 3 for h in hits)
    for i, h in enumerate(hits):
        for g in hits[:i]:
            if g.recording == h.recording:
                assert min(g.offset, h.offset) - max(g.onset, h.onset) < 0.5 * 0.96 + 1e-6


@pytest.mark.parametrize("text", ["a.wav", "a.wav:2", "a.wav:3-2", ":1-2", "a.wav:x-2"])
def test_unreadable_queries_say_how_to_write_them(text):
    with pytest.raises(QueryError, match="ONSET"):
        parse_query(text)


def test_a_query_names_a_recording_as_the_project_does(tmp_path):
    index = ProjectIndex(tmp_path / "m", "model@1")
    index.shards.write(_shard("a", 10))
    index.refresh(_recs("a"))
    assert parse_query("my file: take 2.wav:1.5-2").recording == "my file: take 2.wav"
    with pytest.raises(QueryError, match="not in the search index"):
        search(index, [parse_query("other.wav:1-2")])
    assert search(index, [parse_query("a:1-2")], top=3)  # the stem works too
