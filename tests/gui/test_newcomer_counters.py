"""Counters follow every edit: review's "k of n decided", the detection summary, the
status bar's event counts and the recordings' state, through edits in the table, undo,
redo and a new detection run."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from panns_core import events as ev

pytestmark = pytest.mark.gui


def _window(make_main_window, tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(16000 * 10, dtype=np.float32), 16000)
    window = make_main_window()
    window.open_files([path])
    doc = window.document
    rows = [{"onset": 1.0 + i, "offset": 1.5 + i, "label": "Dog", "confidence": 0.5,
             "status": ev.PROPOSED, "source": "tiny"} for i in range(4)]
    rows.append({"onset": 0.1, "offset": 0.3, "label": "Knock", "status": ev.ADDED,
                 "source": ev.HUMAN})
    doc.store.add_events(ev.make_events(rows), doc.recording.id)
    return window, doc


def _counters(window):
    review = window.panels["review"]
    return (review.progress.value(), review.progress.maximum(),
            window.panels["detection"].summary.text(), window.counts_label.text())


def test_counters_follow_every_edit(make_main_window, qtbot, tmp_path):
    window, doc = _window(make_main_window, tmp_path)
    review = window.panels["review"]
    state = window.panels["recordings"]
    rec = doc.recording.id
    # before any review: the recording's model events, none decided yet
    assert _counters(window) == (0, 4, "Events: 1 added, 4 proposed",
                                 "5 events · 4 proposed · 0 of 4 decided")
    assert review.progress.text() == "0 of 4 decided"
    ids = doc.annotations.query("source == 'tiny'")["id"].tolist()
    doc.accept(ids[:1])  # outside review, e.g. from the table
    doc.reject(ids[1:2])
    assert _counters(window) == (2, 4, "Events: 1 accepted, 1 added, 2 proposed, 1 rejected",
                                 "5 events · 2 proposed · 2 of 4 decided")
    qtbot.waitUntil(lambda: state.state_of(rec) == "reviewed 2 of 4")
    doc.undo()
    assert _counters(window)[0] == 1 and "3 proposed" in window.counts_label.text()
    qtbot.waitUntil(lambda: state.state_of(rec) == "reviewed 1 of 4")
    doc.redo()
    assert _counters(window)[0] == 2
    # a review continues the count
    assert review.start()
    assert review.progress.value() == 2 and review.progress.maximum() == 4
    review.accept()
    assert review.progress.value() == 3
    review.stop()
    # deleting a decided event and a new detection run are counted too
    doc.delete_events(ids[:1])
    assert _counters(window)[:2] == (2, 3)
    doc.apply_detection(ev.make_events([
        {"onset": 8.0, "offset": 8.5, "label": "Bird", "confidence": 0.9,
         "status": ev.PROPOSED, "source": "tiny"}]))
    assert _counters(window) == (2, 3, "Events: 1 accepted, 1 added, 1 proposed, 1 rejected",
                                 "4 events · 1 proposed · 2 of 3 decided")
    doc.set_recording(None)
    assert window.counts_label.text() == ""
    assert review.progress.text() == "no proposals yet"
