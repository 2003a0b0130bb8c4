"""Removing recordings is undoable (events and cached-score entries come back with their
ids); per-recording states; relocating a file the window added without a hash."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from panns_core import events as ev
from panns_core.annotations.store import ProjectStore, RemoveRecordings
from panns_core.errors import StoreError


def _wav(path, seconds=1.0, rate=8000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(seconds * rate), dtype=np.float32), rate)
    return path


def _rows(n, status=ev.PROPOSED, source="tiny"):
    return ev.make_events([{"onset": i * 0.1, "offset": i * 0.1 + 0.05, "label": "Dog",
                            "status": status, "source": source} for i in range(n)])


def test_remove_recordings_and_undo_restore_everything(tmp_path):
    store = ProjectStore(tmp_path / "p.panns")
    a, b = store.add_recording(_wav(tmp_path / "a.wav")), store.add_recording(
        _wav(tmp_path / "b.wav"))
    store.add_events(_rows(3), b)
    store.add_events(_rows(1), a)
    store.cache_scores(b, "model", tmp_path / "scores.npz", audio_hash="x")
    before_events = store.events(b)
    before_recs = store.recordings()
    changes = []
    store.subscribe(changes.append)
    undo = store.apply(RemoveRecordings([b]))
    assert [r.id for r in store.recordings()] == [a]
    assert len(store.events()) == 1 and (tmp_path / "b.wav").is_file()
    assert changes[-1].listed == {b} and len(changes[-1].removed) == 3
    redo = store.apply(undo)
    assert store.recordings() == before_recs
    assert store.events(b).equals(before_events)
    assert store._query("SELECT model_id FROM score_cache WHERE recording_id = ?", (b,)) == [
        ("model",)]
    assert changes[-1].listed == {b} and len(changes[-1].added) == 3
    store.apply(redo)
    assert [r.id for r in store.recordings()] == [a]
    with pytest.raises(StoreError, match="No recording"):
        store.apply(RemoveRecordings([b]))


def test_undoing_a_removal_after_the_file_was_added_again_merges_them(tmp_path):
    """Found by the monkey (tests/gui/monkey.py): remove a recording, open its file again,
    then undo the removal. The undo used to be refused ("remove it first"), and removing
    the new one pushed a step that the next undo took back: the history was stuck. Now
    the recording comes back under its old id with its events, the events added to the
    file meanwhile join it, and redo and undo again are exact."""
    store = ProjectStore()
    old = store.add_recording(_wav(tmp_path / "a.wav"))
    other = store.add_recording(_wav(tmp_path / "b.wav"))
    store.add_events(_rows(2), old)
    store.cache_scores(old, "model", tmp_path / "scores.npz")
    undo = store.apply(RemoveRecordings([old]))
    new = store.add_recording(tmp_path / "a.wav")
    assert new != old
    store.add_events(_rows(1, ev.ADDED, ev.HUMAN), new)
    def state():
        return store.recordings(), store.events().sort_values("id").reset_index(drop=True)

    before = state()
    redo = store.apply(undo)
    merged = state()[1]
    assert [r.id for r in store.recordings()] == [old, other]
    assert len(store.events(old)) == 3 and set(merged["recording_id"]) == {old}
    assert store._query("SELECT recording_id FROM score_cache") == [(old,)]
    again = store.apply(redo)  # redo: the newer row is back as it was, the old one gone
    assert state()[0] == before[0]
    pd.testing.assert_frame_equal(state()[1], before[1])
    store.apply(again)  # and undo once more: merged again
    pd.testing.assert_frame_equal(state()[1], merged)
    assert [r.id for r in store.recordings()] == [old, other]
    assert store.integrity_check() == "ok"


def test_recording_states(tmp_path):
    store = ProjectStore()
    a, b = (store.add_recording(_wav(tmp_path / f"{n}.wav")) for n in "ab")
    store.add_events(_rows(2), b)
    store.add_events(_rows(1, ev.REJECTED), b)
    store.add_events(_rows(2, ev.ADDED, ev.HUMAN), b)
    states = store.recording_states()
    assert states[a] == {"model": 0, "decided": 0, "human": 0, "scored": 0}
    assert states[b] == {"model": 3, "decided": 1, "human": 2, "scored": 0}


def test_relocate_finds_a_file_added_without_hash_by_name_and_size(tmp_path):
    store = ProjectStore()
    first = _wav(tmp_path / "one" / "dawn.wav")
    other = _wav(tmp_path / "one" / "dusk.wav", seconds=2.0)
    rec = store.add_recording(first, hash=False)
    rec2 = store.add_recording(other, hash=True)
    (tmp_path / "new" / "x").mkdir(parents=True)
    shutil.move(first, tmp_path / "new" / "x" / "dawn.wav")
    shutil.move(other, tmp_path / "new" / "renamed.wav")  # found by content
    _wav(tmp_path / "new" / "other.wav")  # same size, another name: not taken
    found = store.relocate(tmp_path / "new")
    assert found == {rec: tmp_path / "new" / "x" / "dawn.wav",
                     rec2: tmp_path / "new" / "renamed.wav"}
    assert not store.missing_recordings()


def test_a_hash_taken_later_lets_relocate_find_a_renamed_file(tmp_path):
    from panns_core.audio import file_sha256

    store = ProjectStore()
    path = _wav(tmp_path / "one" / "dawn.wav", seconds=1.5)
    rec = store.add_recording(path, hash=False)
    store.set_recording_hash(rec, file_sha256(path))
    store.set_recording_hash(rec, "0" * 64)  # a hash already there stays
    assert store.recording(rec).sha256 == file_sha256(path)
    (tmp_path / "two").mkdir()
    shutil.move(path, tmp_path / "two" / "renamed.wav")
    assert store.relocate(tmp_path / "two") == {rec: tmp_path / "two" / "renamed.wav"}
