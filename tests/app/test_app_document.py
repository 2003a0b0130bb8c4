"""The GUI's document model without Qt (napari-style headless model tests): state,
events emitted only on change, weak listeners, and exact undo/redo through the store."""

from __future__ import annotations

import gc
import sys

import numpy as np
import pandas as pd
import pytest

from app.model import Document
from app.model.evented import EmitterGroup
from panns_core import events as ev
from panns_core.data import resource_path


@pytest.fixture
def doc(tmp_path):
    document = Document()
    document.open_project(tmp_path / "p.panns")
    document.open_file(resource_path("demo.flac"))
    yield document
    document.close_project()


def test_document_imports_no_qt():
    assert "app.model" in sys.modules
    # the model itself never needs Qt; importing it in a fresh interpreter proves it
    import subprocess

    code = "import sys, app.model; print(any(m.startswith('PySide6') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_emitters_fire_on_change_only_and_hold_methods_weakly():
    class Listener:
        def __init__(self):
            self.seen = []

        def on(self, event):
            self.seen.append(event.value)

    group = EmitterGroup(None, ("x",))
    listener = Listener()
    group.x.connect(listener.on)
    group.x.emit(1)
    with group.blocker():
        group.x.emit(2)
    assert listener.seen == [1]
    assert group.x.callback_count == 1
    del listener
    gc.collect()
    assert group.x.callback_count == 0
    group.x.emit(3)  # a dead listener is dropped, not called


def test_cursor_view_range_and_selection_rules(doc):
    seen = {"cursor": [], "view_range": [], "selection": []}
    for name, values in seen.items():
        getattr(doc.events, name).connect(lambda e, v=values: v.append(e.value))
    doc.cursor = 5.0
    doc.cursor = 5.0  # no change, no event
    doc.cursor = 99.0  # clamped to the end
    assert seen["cursor"] == [5.0, 20.0]
    doc.view_range = (-5.0, 3.0)  # clamped into the file, width kept
    assert doc.view_range == (0.0, 8.0)
    doc.zoom(0.5, center=4.0)
    assert doc.view_range == pytest.approx((2.0, 6.0))
    doc.scroll(10)  # far right: stops at the end
    assert doc.view_range == pytest.approx((16.0, 20.0))
    doc.view_range = (3.0, 3.0)  # never narrower than MIN_SPAN
    assert doc.view_range[1] - doc.view_range[0] > 0
    a = doc.add_event(1, 2, "Dog")
    b = doc.add_event(3, 4, "Dog")
    doc.select(a)
    doc.select(b, extend=True)
    assert doc.selection == {a, b}
    doc.select(a, toggle=True)
    assert doc.selection == {b}
    doc.selection = [b, 12345]  # unknown ids are ignored
    assert doc.selection == {b}
    assert doc.event_at(3.5) == b and doc.event_at(2.5) is None
    assert doc.neighbour_event(-1) == a


def test_every_edit_is_undoable_exactly(doc):
    def state():
        return doc.annotations.drop(columns=["modified"]).reset_index(drop=True)

    states = [state()]
    a = doc.add_event(1.0, 2.0, "Dog")
    states.append(state())
    doc.move_events([a], 0.5)
    states.append(state())
    doc.resize_event(a, 1.0, 4.0)
    states.append(state())
    doc.relabel([a], "Bark")
    states.append(state())
    doc.apply_detection(ev.make_events(
        [{"onset": 5.0, "offset": 6.0, "label": "Speech", "confidence": 0.9}],
        status=ev.PROPOSED, source="m"))
    states.append(state())
    proposed = int(doc.annotations.loc[doc.annotations["status"] == ev.PROPOSED, "id"].iloc[0])
    doc.accept([proposed])
    states.append(state())
    doc.reject([proposed])
    states.append(state())
    doc.delete_events([a, proposed])
    states.append(state())
    assert doc.annotations.empty
    for expected in reversed(states[:-1]):
        assert doc.undo()
        pd.testing.assert_frame_equal(state(), expected)
    assert not doc.undo()
    for expected in states[1:]:
        assert doc.redo()
        pd.testing.assert_frame_equal(state(), expected)


def test_model_edits_mark_provenance(doc):
    doc.apply_detection(ev.make_events(
        [{"onset": 1.0, "offset": 2.0, "label": "Dog", "confidence": 0.7}],
        status=ev.PROPOSED, source="m"))
    model_event = int(doc.annotations["id"].iloc[0])
    human = doc.add_event(4.0, 5.0, "Bird")
    doc.move_events([model_event, human], 1.0)
    assert doc.event(model_event)["status"] == ev.EDITED
    assert doc.event(human)["status"] == ev.ADDED  # a human event stays human
    doc.move_events([human], 100.0)  # clamped to the recording
    assert doc.event(human)["offset"] == pytest.approx(20.0)


def test_live_rederivation_folds_into_one_undo_step(doc):
    from panns_core.detection.scores import Scores

    probs = pd.DataFrame({"Dog": [0.1, 0.6, 0.8, 0.4, 0.1, 0.9, 0.2] * 9}).to_numpy("float32")
    scores = Scores(probs, 0.32, ["Dog"], model_id="m", duration=20.0)
    doc.set_scores(scores)
    doc.update_params(threshold=0.5, off_threshold=0.5, top_k=None)
    doc.apply_detection(doc.derived_events(), source="m")
    after_run = len(doc.annotations)
    for threshold in (0.3, 0.7, 0.85):
        doc.update_params(threshold=threshold, off_threshold=threshold)
        doc.rederive_events()
    assert len(doc.history.undo_texts) == 2  # the run and one merged live step
    doc.undo()
    assert len(doc.annotations) == after_run
    doc.undo()
    assert doc.annotations.empty


def test_each_model_owns_its_emitters_and_the_document_lists_them(doc):
    from app.model import EMITTERS

    assert set(doc.events.names) == set(EMITTERS)
    assert doc.events.cursor is doc.viewport.events.cursor
    assert doc.events.view_range is doc.viewport.events.view_range
    assert doc.events.time_selection is doc.viewport.events.time_selection
    assert doc.events.selection is doc.selection_model.events.selection
    assert doc.events.scores is doc.detection.events.scores
    assert doc.events.params is doc.detection.events.params
    assert doc.events.model is doc.detection.events.model
    assert doc.events.history is doc.history.events.history
    seen = []
    doc.viewport.events.cursor.connect(lambda e: seen.append(e.value))
    doc.cursor = 2.5  # the document's shortcut goes through the viewport
    assert seen == [2.5] and doc.viewport.cursor == 2.5


def test_one_score_cache_memory_then_disk(doc):
    from app.model.detection import ScoreMemory
    from panns_core.detection.scores import Scores

    memory = ScoreMemory(limit=2)
    for rec_id in (1, 2, 3):
        memory.put(rec_id, rec_id * 10)
    assert memory.get(1) is None and memory.get(2) == 20 and memory.get(3) == 30

    rec_id = doc.recording.id
    probs = np.full((4, 1), 0.5, dtype=np.float32)
    scores = Scores(probs, 0.32, ["Dog"], model_id="m@1", audio_hash="abc", duration=1.28)
    doc.set_scores(scores, recording_id=rec_id)
    doc.save_scores(rec_id, scores)
    path = doc.store.cached_scores(rec_id, doc.detection.model_key)
    assert path is not None and path.parent.name == "scores"  # the ScoreCache entry
    doc.detection.memory = ScoreMemory()  # a restart: memory empty, disk kept
    again = doc.finished_scores(rec_id)
    np.testing.assert_array_equal(again.probabilities, probs)
    unkeyed = Scores(probs, 0.32, ["Dog"], duration=1.28)  # no hash: nothing on disk
    doc.save_scores(rec_id, unkeyed)
    assert doc.store.cached_scores(rec_id, doc.detection.model_key) == path


def _band(doc, event_id):
    row = doc.event(event_id)
    return float(row["low_freq"]), float(row["high_freq"])


def test_bands_are_undoable_edits_checked_against_the_recording(doc):
    from panns_core.errors import PannsError

    assert doc.nyquist() == doc.recording.sample_rate / 2
    boxed = doc.add_event(1.0, 2.0, "Bird", band=(3000.0, 1500.0))  # edges sorted
    assert _band(doc, boxed) == (1500.0, 3000.0)
    plain = doc.add_event(3.0, 4.0, "Dog")
    assert all(np.isnan(_band(doc, plain)))
    doc.edit_box(boxed, onset=1.5, offset=2.5, band=(2000.0, 4000.0), text="Move box")
    row = doc.event(boxed)
    assert (row["onset"], row["offset"]) == (1.5, 2.5)
    assert _band(doc, boxed) == (2000.0, 4000.0)
    assert doc.history.undo_text == "Move box"
    doc.undo()  # one step: times and band together
    assert (doc.event(boxed)["onset"], _band(doc, boxed)) == (1.0, (1500.0, 3000.0))
    doc.redo()
    assert _band(doc, boxed) == (2000.0, 4000.0)
    # one edge given: the other stays at the band's end (0 or Nyquist for a new band)
    doc.set_band(plain, None, 5000.0)
    assert _band(doc, plain) == (0.0, 5000.0)
    doc.set_band(plain, None, None)  # no band again
    assert all(np.isnan(_band(doc, plain)))
    doc.set_band(plain, 100.0, 10 * doc.nyquist())  # clipped to what the file holds
    assert _band(doc, plain) == (100.0, doc.nyquist())
    steps = len(doc.history.undo_texts)
    doc.set_band(plain, 100.0, doc.nyquist())  # no change: no undo step
    assert len(doc.history.undo_texts) == steps
    doc.apply_detection(ev.make_events([{"onset": 6.0, "offset": 7.0, "label": "Cat",
                                          "confidence": 0.9, "source": "m",
                                          "status": ev.PROPOSED}]))
    model_event = int(doc.annotations[doc.annotations["status"] == ev.PROPOSED]["id"].iloc[0])
    doc.set_band(model_event, 500.0, 900.0)
    assert doc.event(model_event)["status"] == ev.EDITED  # a band edit is an edit
    with pytest.raises(PannsError, match="below 0 Hz"):
        doc.set_band(boxed, -5.0, 100.0)
    with pytest.raises(PannsError, match="width"):
        doc.set_band(boxed, 700.0, 700.0)
    assert _band(doc, boxed) == (2000.0, 4000.0)


def test_band_selection_goes_with_the_time_selection(doc):
    seen = []
    doc.events.band_selection.connect(lambda e: seen.append(e.value))
    doc.time_selection = (1.0, 2.0)
    doc.viewport.band_selection = (4000.0, 1000.0)
    assert doc.viewport.band_selection == (1000.0, 4000.0)
    doc.time_selection = None  # clearing the span clears the band
    assert doc.viewport.band_selection is None
    assert seen == [(1000.0, 4000.0), None]


def test_channel_choice_keeps_scores_per_channel(doc, tmp_path):
    import soundfile as sf

    from app.model.detection import channel_hash, channel_of
    from panns_core.detection.scores import Scores
    from panns_core.errors import PannsError

    assert channel_of(channel_hash("abc", None)) is None
    assert channel_of(channel_hash("abc", 1)) == 1 and channel_hash("abc", 1) == "abc-ch2"
    with pytest.raises(PannsError, match="1 channel"):
        doc.channel = 1  # the demo is mono
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.zeros((32000, 2), np.float32), 32000)
    doc.open_file(stereo)
    rec_id = doc.recording.id
    probs = np.full((4, 1), 0.5, dtype=np.float32)
    mix = Scores(probs, 0.32, ["Dog"], model_id="m@1", audio_hash="h", duration=1.28)
    second = Scores(probs * 0, 0.32, ["Dog"], model_id="m@1",
                    audio_hash=channel_hash("h", 1), duration=1.28)
    doc.set_scores(mix, recording_id=rec_id)
    doc.save_scores(rec_id, mix)
    assert doc.scores is mix
    doc.channel = 1  # the mix's scores are not this channel's
    assert doc.scores is None
    doc.set_scores(second, recording_id=rec_id)
    doc.save_scores(rec_id, second)
    assert doc.finished_scores(rec_id) is second
    doc.channel = None
    assert doc.scores is None  # the cached ones are channel 2's
    doc.channel = 1
    doc.set_recording(doc.recordings[0].id)  # a mono recording: back to the mix
    assert doc.channel is None
