"""The loop's second turn: new proposals never repeat what the user decided, and an
import never duplicates events the project holds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import soundfile as sf

from panns_core import events as ev
from panns_core.annotations.exchange import import_operation, plan_import
from panns_core.annotations.formats import write_annotations
from panns_core.annotations.store import ProjectStore, set_status


def _store(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(8000 * 20, np.float32), 8000)
    store = ProjectStore(":memory:")
    rec = store.add_recording(path)
    return store, rec


def _proposals(rows):
    return pd.DataFrame(
        [{"onset": a, "offset": b, "label": lab, "confidence": 0.9, "status": ev.PROPOSED,
          "source": "model@1"} for a, b, lab in rows]
    )


def test_proposals_overlapping_decided_events_of_their_label_are_not_added(tmp_path):
    store, rec = _store(tmp_path)
    first = [(1.0, 2.0, "Dog"), (3.0, 4.0, "Dog"), (5.0, 6.0, "Bird"), (8.0, 9.0, "Bird")]
    store.apply(store.make_replace_proposed(rec, _proposals(first)))
    ids = store.events(rec).sort_values("onset")["id"].tolist()
    store.apply(set_status([ids[0]], ev.ACCEPTED))
    store.apply(set_status([ids[2]], ev.REJECTED))
    store.add_events([{"onset": 12.0, "offset": 13.0, "label": "Cat"}], rec)  # human-added
    before = store.events(rec)

    # a second run (another threshold, another model): overlapping proposals again
    second = [(1.1, 2.3, "Dog"),    # overlaps the accepted Dog: not added
              (0.5, 2.5, "Bird"),   # same time, other label: added
              (5.2, 5.8, "Bird"),   # inside the rejected Bird: stays rejected
              (12.5, 14.0, "Cat"),  # overlaps the human-added Cat
              (2.0, 2.9, "Dog"),    # touches the accepted Dog's end only: added
              (8.2, 9.5, "Bird")]   # overlaps a proposal only: replaces it
    inverse = store.apply(store.make_replace_proposed(rec, _proposals(second)))
    after = store.events(rec)
    proposed = after[after["status"] == ev.PROPOSED].sort_values("onset")
    assert list(zip(proposed["onset"], proposed["label"])) == [
        (0.5, "Bird"), (2.0, "Dog"), (8.2, "Bird")]
    decided = after[after["status"] != ev.PROPOSED].sort_values("onset")
    was = before[before["status"] != ev.PROPOSED].sort_values("onset")
    pd.testing.assert_frame_equal(decided.reset_index(drop=True), was.reset_index(drop=True))

    # the same run twice adds nothing new; undo restores the state before exactly
    third = store.apply(store.make_replace_proposed(rec, _proposals(second)))
    assert len(store.events(rec)) == len(after)
    store.apply(third)
    store.apply(inverse)  # undo of the second run: the first run's proposals are back
    pd.testing.assert_frame_equal(store.events(rec), before)


def test_undo_of_a_filtered_run_is_exact(tmp_path):
    store, rec = _store(tmp_path)
    store.apply(store.make_replace_proposed(rec, _proposals([(1.0, 2.0, "Dog")])))
    (dog,) = store.events(rec)["id"]
    store.apply(set_status([dog], ev.ACCEPTED))
    before = store.events(rec)
    inverse = store.apply(store.make_replace_proposed(
        rec, _proposals([(1.5, 2.5, "Dog"), (4.0, 5.0, "Dog")])))
    assert len(store.events(rec)) == 2
    redo = store.apply(inverse)
    pd.testing.assert_frame_equal(store.events(rec), before)
    store.apply(redo)
    assert sorted(store.events(rec)["onset"]) == [1.0, 4.0]


def test_import_adds_only_events_the_project_lacks(tmp_path):
    store, rec = _store(tmp_path)
    name = store.recording(rec).path.name
    events = ev.make_events(pd.DataFrame({
        "recording": [name] * 3, "onset": [1.0, 3.0, 5.0], "offset": [2.0, 4.0, 6.5],
        "label": ["Dog", "Dog", "Bird"]}))
    path = tmp_path / "labels.tsv"
    write_annotations(events, path, "dcase")
    items = plan_import(store, [path])
    assert items[0].n_events == 3 and items[0].already == 0
    store.apply(import_operation(store, items))
    assert len(store.events(rec)) == 3

    # a file holding the same events (times within 1 ms) plus one new: only the new one
    again = ev.make_events(pd.DataFrame({
        "recording": [name] * 4, "onset": [1.0004, 3.0, 5.0, 7.0],
        "offset": [2.0, 3.9996, 6.5, 8.0], "label": ["Dog", "Dog", "Bird", "Bird"]}))
    path2 = tmp_path / "more.tsv"
    write_annotations(again, path2, "dcase")
    items = plan_import(store, [path2])
    assert items[0].already == 3 and items[0].n_events == 1
    store.apply(import_operation(store, items))
    assert sorted(store.events(rec)["onset"]) == [1.0, 3.0, 5.0, 7.0]

    # two files planned together that share an event add it once
    third = ev.make_events(pd.DataFrame({
        "recording": [name], "onset": [10.0], "offset": [11.0], "label": ["Cat"]}))
    a, b = tmp_path / "x.tsv", tmp_path / "y.tsv"
    write_annotations(third, a, "dcase")
    write_annotations(third, b, "dcase")
    store.apply(import_operation(store, plan_import(store, [a, b])))
    assert (store.events(rec)["label"] == "Cat").sum() == 1


def test_a_weak_label_file_imports_as_clip_tags_the_trainer_reads(tmp_path):
    """DCASE weak labels (no times) become clip tags spanning their recordings."""
    from panns_core.annotations.formats import write_weak_labels
    from panns_core.events import CLIP_TAG_SOURCE
    from panns_core.training.data import from_project

    store, rec = _store(tmp_path)
    name = store.recording(rec).path.name
    path = write_weak_labels({name: ["Dog", "Bird", "Dog"]}, tmp_path / "weak.tsv")
    (item,) = plan_import(store, [path])
    assert item.ok and item.n_events == 2 and item.recording_ids() == [rec]
    store.apply(import_operation(store, [item]))
    tags = store.events(rec).sort_values("label")
    assert list(tags["label"]) == ["Bird", "Dog"]
    assert set(tags["source"]) == {CLIP_TAG_SOURCE} and set(tags["status"]) == {ev.ADDED}
    assert (tags["onset"] == 0).all() and np.allclose(tags["offset"], 20.0)
    # imported again: nothing twice
    assert plan_import(store, [path])[0].already == 2
    recordings, labels = from_project(store)
    assert {"Bird", "Dog"} <= set(labels) and len(recordings) == 1
