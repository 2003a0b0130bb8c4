"""The project store: schema, recordings, events, undoable operations, speed."""

from __future__ import annotations

import hashlib
import math
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panns_core.annotations.store import (
    SCHEMA_VERSION,
    AddEvents,
    Batch,
    DeleteEvents,
    MoveEvents,
    ProjectStore,
    ReplaceProposed,
    UpdateEvents,
    relabel,
    resize,
    set_status,
)
from panns_core.annotations.store.schema import APPLICATION_ID
from panns_core.errors import AudioError, StoreError
from panns_core.events import ACCEPTED, EDITED, PROPOSED, REJECTED, STATUSES, make_events


def write_wav(path: Path, seconds: float = 0.5, rate: int = 8000, channels: int = 1,
              seed: int = 0) -> Path:
    noise = np.random.default_rng(seed).uniform(-0.5, 0.5, (int(seconds * rate), channels))
    sf.write(path, noise.astype(np.float32), rate)
    return path


@pytest.fixture(scope="module")
def wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wav(tmp_path_factory.mktemp("audio") / "clip.wav", seconds=1.25, rate=16000,
                     channels=2)


def snapshot(store: ProjectStore) -> list[tuple]:
    """Every event field, NaN made comparable, ordered by id."""
    frame = store.events().sort_values("id")
    return [
        tuple("NaN" if isinstance(v, float) and math.isnan(v) else v for v in row)
        for row in frame.itertuples(index=False)
    ]


def some_events(n: int, seed: int = 0, **defaults) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    onset = rng.uniform(0, 100, n)
    return make_events(
        {
            "onset": onset,
            "offset": onset + rng.uniform(0.0, 5, n),
            "label": rng.choice(["Speech", "Dog", "Bird, song", "Wind \"gust\""], n),
            "confidence": rng.uniform(0, 1, n),
            "source": "cnn14_sed",
            "status": PROPOSED,
        },
        **defaults,
    )


def test_new_project_file_has_wal_foreign_keys_and_schema(tmp_path: Path, wav: Path) -> None:
    path = tmp_path / "p.panns"
    with ProjectStore(path) as store:
        rec = store.add_recording(wav)
        store.add_events(some_events(3), rec)
        assert store.schema_version == SCHEMA_VERSION
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    indexes = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "events_by_time" in indexes
    plan = " ".join(
        str(r) for r in con.execute(
            'EXPLAIN QUERY PLAN SELECT id FROM events WHERE recording_id = 1 '
            'AND onset <= 5 AND "offset" >= 2'
        )
    )
    assert "events_by_time" in plan
    con.close()
    with ProjectStore(path, create=False) as again:
        assert len(again.events()) == 3
        # foreign keys are on: an event of an unknown recording is refused
        with pytest.raises(StoreError, match="recording"):
            again.apply(AddEvents.from_records([{"recording_id": 99, "onset": 0, "offset": 1,
                                                 "label": "x"}]))
        assert again.integrity_check() == "ok"


def test_refuses_files_that_are_not_projects(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="No project"):
        ProjectStore(tmp_path / "missing.panns", create=False)
    junk = tmp_path / "junk.panns"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a project file"):
        ProjectStore(junk)
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t(x)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="not a project of this program"):
        ProjectStore(other)
    newer = tmp_path / "newer.panns"
    ProjectStore(newer).close()
    con = sqlite3.connect(newer)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer version"):
        ProjectStore(newer)


def test_add_recording_records_hash_and_audio_facts(tmp_path: Path, wav: Path) -> None:
    store = ProjectStore(":memory:")
    rec_id = store.add_recording(wav)
    rec = store.recording(rec_id)
    assert rec.sha256 == hashlib.sha256(wav.read_bytes()).hexdigest()
    assert rec.size == wav.stat().st_size
    assert (rec.sample_rate, rec.channels) == (16000, 2)
    assert rec.duration == pytest.approx(1.25)
    assert store.add_recording(wav) == rec_id  # same path: same recording
    assert store.recording_id("clip.wav") == rec_id
    assert store.recording_id("clip") == rec_id
    assert store.recording_id(str(wav)) == rec_id
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    with pytest.raises(AudioError):
        store.add_recording(text)
    with pytest.raises(StoreError, match="not a file"):
        store.add_recording(tmp_path / "nothing.wav")
    with pytest.raises(StoreError, match="No recording"):
        store.recording_id("other.wav")


def test_events_frame_round_trip_and_time_window(wav: Path) -> None:
    store = ProjectStore(":memory:")
    rec = store.add_recording(wav)
    frame = some_events(500, seed=1)
    frame.loc[::7, "low_freq"] = 200.0
    frame.loc[::7, "high_freq"] = 4000.5
    frame.loc[::5, "note"] = "checked, twice ✓"
    ids = store.add_events(frame, rec)
    assert len(ids) == 500 and len(set(ids)) == 500
    back = store.events(rec).set_index("id").loc[ids].reset_index()
    for column in ("onset", "offset", "label", "confidence", "low_freq", "high_freq", "source",
                   "status", "note", "created", "modified"):
        np.testing.assert_array_equal(back[column].to_numpy(), frame[column].to_numpy())
    assert (back["recording"] == str(wav.resolve())).all()
    for start, end in [(10.0, 20.0), (0.0, 0.5), (99.0, 200.0), (50.0, 50.0)]:
        window = store.events(rec, start=start, end=end)
        expected = frame[(frame.onset <= end) & (frame.offset >= start)]
        assert sorted(window["onset"]) == sorted(expected["onset"])
    assert store.count_events(rec)[PROPOSED] == 500
    picked = store.events(labels=["Bird, song"], statuses=[PROPOSED])
    assert len(picked) == (frame.label == "Bird, song").sum()


def test_delete_undo_restores_same_ids_and_ids_are_never_reused(wav: Path) -> None:
    store = ProjectStore(":memory:")
    rec = store.add_recording(wav)
    ids = store.add_events(some_events(5), rec)
    before = snapshot(store)
    undo = store.apply(DeleteEvents(ids[1:3]))
    assert len(store.events()) == 3
    new_ids = store.add_events(some_events(2, seed=3), rec)
    assert not set(new_ids) & set(ids)  # ids of deleted events are not handed out again
    store.apply(DeleteEvents(new_ids))
    store.apply(undo)
    assert snapshot(store) == before


def test_each_operation_is_undone_exactly(wav: Path) -> None:
    store = ProjectStore(":memory:")
    rec = store.add_recording(wav)
    ids = store.add_events(some_events(6), rec)
    ops = [
        MoveEvents(ids[:3], 0.1),  # 0.1 is not exact in binary: undo must not subtract
        resize(ids[3], 1.0 / 3.0, 2.0 / 3.0, status=EDITED),
        relabel(ids[::2], "Ünïcödé, \"quoted\"\ttab"),
        set_status(ids[1:], ACCEPTED),
        UpdateEvents.set([ids[0]], confidence=float("nan"), low_freq=10.0, note="n"),
        DeleteEvents(ids[4:]),
        AddEvents.from_records([{"recording_id": rec, "onset": 1.5, "offset": 2.5,
                                 "label": "new"}]),
        Batch([MoveEvents([ids[0]], -0.05), DeleteEvents([ids[1]]), set_status([ids[2]],
                                                                               REJECTED)]),
    ]
    for op in ops:
        before = snapshot(store)
        undo = store.apply(op)
        after = snapshot(store)
        assert after != before, op
        redo = store.apply(undo)
        assert snapshot(store) == before, op
        store.apply(redo)
        assert snapshot(store) == after, op


def test_failed_edit_changes_nothing(wav: Path) -> None:
    store = ProjectStore(":memory:")
    rec = store.add_recording(wav)
    ids = store.add_events(some_events(4), rec)
    before = snapshot(store)
    with pytest.raises(StoreError, match="invalid times"):
        store.apply(UpdateEvents.set(ids, offset=-1.0))
    with pytest.raises(StoreError, match="status"):
        store.apply(set_status(ids, "maybe"))
    with pytest.raises(StoreError, match="No event"):
        store.apply(Batch([DeleteEvents(ids[:1]), DeleteEvents([123456])]))
    with pytest.raises(StoreError, match="Cannot edit"):
        store.apply(UpdateEvents.set(ids, id=5))
    with pytest.raises(StoreError, match="times"):
        store.add_events(make_events([{"onset": 2.0, "offset": 1.0, "label": "x"}]), rec)
    assert snapshot(store) == before


def test_replace_proposed_keeps_human_work_and_undoes(wav: Path) -> None:
    store = ProjectStore(":memory:")
    rec = store.add_recording(wav)
    old = store.add_events(some_events(10, seed=4), rec)
    store.apply(set_status(old[:2], ACCEPTED))
    store.apply(set_status(old[2:3], REJECTED))
    before = snapshot(store)
    run = store.make_replace_proposed(rec, some_events(20, seed=5, source="cnn14_sed"))
    assert isinstance(run, ReplaceProposed)
    undo = store.apply(run)
    counts = store.count_events(rec)
    assert (counts[PROPOSED], counts[ACCEPTED], counts[REJECTED]) == (20, 2, 1)
    after = snapshot(store)
    redo = store.apply(undo)
    assert snapshot(store) == before
    store.apply(redo)
    assert snapshot(store) == after  # redo brings back the same ids too


def test_listeners_hear_what_changed(wav: Path) -> None:
    store = ProjectStore(":memory:")
    rec = store.add_recording(wav)
    seen = []
    unsubscribe = store.subscribe(seen.append)
    undo = store.apply(store.make_add_events(some_events(3), rec))
    store.apply(relabel(undo.ids[:1], "x"))
    assert seen[0].added == frozenset(undo.ids) and seen[0].recordings == {rec}
    assert seen[1].updated == {undo.ids[0]}
    unsubscribe()
    store.apply(undo)
    assert len(seen) == 2


# A random walk of edits: undoing every step in reverse gives back the start exactly,
# and redoing them all gives back the end exactly.
edit = st.one_of(
    st.tuples(st.just("add"), st.integers(1, 5), st.integers(0, 1000)),
    st.tuples(st.just("delete"), st.integers(0, 10), st.integers(1, 3)),
    st.tuples(st.just("move"), st.integers(0, 10), st.floats(-0.7, 3.3)),
    st.tuples(st.just("relabel"), st.integers(0, 10), st.text(max_size=8)),
    st.tuples(st.just("status"), st.integers(0, 10), st.sampled_from(STATUSES)),
    st.tuples(st.just("replace"), st.integers(0, 6), st.integers(0, 1000)),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(edit, min_size=1, max_size=8))
def test_random_edit_sequences_undo_and_redo_exactly(wav: Path, steps: list) -> None:
    store = ProjectStore(":memory:")
    rec = store.add_recording(wav)
    store.add_events(some_events(4), rec)
    states = [snapshot(store)]
    undos = []
    for kind, a, b in steps:
        ids = list(store.events()["id"])
        pick = ids[a % len(ids):][:3] if ids else []
        if kind == "add":
            op = store.make_add_events(some_events(a, seed=b), rec)
        elif kind == "delete":
            op = DeleteEvents(pick[:b])
        elif kind == "move":
            frame = store.events(ids=pick)
            if len(frame) and (frame["onset"] + b).min() < 0:
                continue
            op = MoveEvents(pick, b)
        elif kind == "relabel":
            op = relabel(pick, b)
        elif kind == "status":
            op = set_status(pick, b)
        else:
            op = store.make_replace_proposed(rec, some_events(a, seed=b))
        undos.append(store.apply(op))
        states.append(snapshot(store))
    redos = []
    for undo, state in zip(reversed(undos), reversed(states[:-1])):
        redos.append(store.apply(undo))
        assert snapshot(store) == state
    for redo, state in zip(reversed(redos), states[1:]):
        store.apply(redo)
        assert snapshot(store) == state


def test_bulk_insert_of_100000_detections(tmp_path: Path, wav: Path) -> None:
    """100,000 detections go in as one operation (one transaction, one undo step) and
    come back whole (how fast: benchmarks/bench_suite_speed.py, numbers in the README)."""
    store = ProjectStore(tmp_path / "bulk.panns")
    rec = store.add_recording(wav)
    frame = some_events(100_000, seed=9)
    op = store.make_add_events(frame, rec)
    undo = store.apply(op)
    assert len(undo.ids) == 100_000
    assert store.count_events(rec)[PROPOSED] == 100_000
    back = store.events(rec).sort_values(["onset", "offset", "label"]).reset_index(drop=True)
    want = frame.sort_values(["onset", "offset", "label"]).reset_index(drop=True)
    np.testing.assert_allclose(back["onset"], want["onset"])
    np.testing.assert_allclose(back["offset"], want["offset"])
    assert list(back["label"]) == list(want["label"])
    window = store.events(rec, start=40.0, end=41.0)
    assert ((window.onset <= 41.0) & (window.offset >= 40.0)).all() and len(window) > 0
    inside = (frame["onset"] <= 41.0) & (frame["offset"] >= 40.0)
    assert len(window) == int(inside.sum())
    store.apply(undo)  # one step takes all of them out again
    assert sum(store.count_events(rec).values()) == 0
    assert store.integrity_check() == "ok"


def test_relocate_finds_moved_files_by_content(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    first = write_wav(tmp_path / "old" / "a.wav", seed=1)
    second = write_wav(tmp_path / "old" / "b.wav", seed=2)
    store = ProjectStore(tmp_path / "p.panns")
    ids = [store.add_recording(first), store.add_recording(second)]
    store.add_events(some_events(3), ids[0])
    new = tmp_path / "new" / "deeper"
    new.mkdir(parents=True)
    shutil.move(first, new / "renamed.wav")
    shutil.move(second, tmp_path / "new" / "b.wav")
    # a decoy of the same size with other content must not be taken
    write_wav(new / "a.wav", seed=3)
    assert {r.id for r in store.missing_recordings()} == set(ids)
    found = store.relocate(tmp_path / "new")
    assert found == {ids[0]: new / "renamed.wav", ids[1]: tmp_path / "new" / "b.wav"}
    assert store.missing_recordings() == []
    assert len(store.events(ids[0])) == 3
    assert store.recording(ids[0]).path == new / "renamed.wav"


def test_vocabulary_training_runs_and_score_cache(tmp_path: Path, wav: Path) -> None:
    store = ProjectStore(":memory:")
    speech = store.add_label("Speech", colour="#ff0000", hotkey="s")
    assert speech.mid == "/m/09x0r"  # an AudioSet class gets its mid
    own = store.add_label("Wren song", hotkey="w")
    assert own.mid is None
    with pytest.raises(StoreError):
        store.add_label("Other", hotkey="s")
    store.update_label("Wren song", name="Wren", colour="#00ff00")
    assert [e.name for e in store.labels()] == ["Speech", "Wren"]
    store.ensure_labels(["Speech", "Dog"])
    assert [e.name for e in store.labels()] == ["Speech", "Wren", "Dog"]
    store.remove_label("Dog")
    assert len(store.labels()) == 2

    run = store.start_training_run(base_model="cnn14_sed", params={"lr": 0.002})
    store.finish_training_run(run, output_model="mine_1", metrics={"f1": 0.5})
    (entry,) = store.training_runs()
    assert entry["params"] == {"lr": 0.002} and entry["metrics"] == {"f1": 0.5}
    assert entry["status"] == "finished" and entry["finished"] >= entry["started"]

    rec = store.add_recording(wav)
    scores = tmp_path / "scores.npz"
    assert store.cached_scores(rec, "cnn14_sed") is None
    store.cache_scores(rec, "cnn14_sed", scores, store.recording(rec).sha256)
    assert store.cached_scores(rec, "cnn14_sed") is None  # the file is not there
    scores.write_bytes(b"x")
    assert store.cached_scores(rec, "cnn14_sed") == scores
    store.cache_scores(rec, "cnn14_sed", scores, "another-hash")
    assert store.cached_scores(rec, "cnn14_sed") is None  # the audio changed since
    info = store.info()
    assert info["recordings"] == 1 and info["models"] == 0 and info["training_runs"] == 1
