"""Review mode in the real window: most uncertain first, one key per decision, each
event played as it is reached, skip/back, undo, and the window's keys restored."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from panns_core import events as ev
from panns_core.detection.review import review_order

pytestmark = pytest.mark.gui

CONFIDENCES = [0.9, 0.33, 0.5, 0.28, 0.7, 0.41]


def _key(window, key, modifier=Qt.KeyboardModifier.NoModifier):
    QTest.keyClick(window, key, modifier)
    QApplication.processEvents()


def _window_with_proposals(make_main_window, qtbot, demo_path):
    window = make_main_window()
    window.open_files([demo_path])
    doc = window.document
    rows = [{"onset": 1.0 + 3 * i, "offset": 2.0 + 3 * i, "label": "Dog" if i % 2 else "Bird",
             "confidence": c, "status": ev.PROPOSED, "source": "tiny"}
            for i, c in enumerate(CONFIDENCES)]
    rows.append({"onset": 0.2, "offset": 0.8, "label": "Knock", "status": ev.ADDED,
                 "source": ev.HUMAN, "confidence": float("nan")})
    doc.store.add_events(ev.make_events(rows), doc.recording.id)
    window.activateWindow()
    window.setFocus()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=15000)
    return window, doc


def _status(doc, event_id):
    return doc.event(event_id)["status"]


def _window_accept_action(window) -> QAction:
    return next(a for a in window.findChildren(QAction)
                if a.shortcut().toString() == "A" and a not in
                window.panels["review"].key_actions.values())


def test_review_with_keys_plays_each_event_and_undoes(make_main_window, qtbot, demo_path):
    window, doc = _window_with_proposals(make_main_window, qtbot, demo_path)
    panel = window.panels["review"]
    expected = review_order(doc.annotations, doc.params.threshold)
    assert len(expected) == 6
    by_id = doc.annotations.set_index("id")
    # nearest the threshold (0.3) first
    assert list(by_id.loc[expected, "confidence"]) == [0.28, 0.33, 0.41, 0.5, 0.7, 0.9]

    # what the player started (the ALSA file device plays faster than real time, so
    # record each start rather than poll the state)
    played: list[tuple[float, float]] = []
    window.player.state_changed.connect(
        lambda state: played.append(window.player._span) if state == "playing" else None)

    def span(i):
        return pytest.approx(tuple(by_id.loc[expected[i], ["onset", "offset"]]))

    _key(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    assert panel.active and panel.current_id == expected[0]
    assert doc.selection == {expected[0]}
    assert played == [span(0)]
    assert not _window_accept_action(window).isEnabled()
    assert panel.counter.text() == "Event 1 of 6"

    _key(window, Qt.Key.Key_A)  # accept the first
    assert _status(doc, expected[0]) == ev.ACCEPTED
    assert panel.current_id == expected[1] and doc.selection == {expected[1]}
    assert played[-1] == span(1)
    _key(window, Qt.Key.Key_R)  # reject the second
    assert _status(doc, expected[1]) == ev.REJECTED
    _key(window, Qt.Key.Key_S)  # skip the third
    assert _status(doc, expected[2]) == ev.PROPOSED
    assert panel.current_id == expected[3]
    _key(window, Qt.Key.Key_B)  # back to the skipped one
    assert panel.current_id == expected[2]
    assert played[-3:] == [span(2), span(3), span(2)]
    _key(window, Qt.Key.Key_A)
    assert panel.progress.value() == 3 and panel.progress.maximum() == 6
    # the human-added event was never in the queue and is untouched
    knock = doc.annotations[doc.annotations["label"] == "Knock"].iloc[0]
    assert knock["status"] == ev.ADDED and int(knock["id"]) not in panel.queue

    # undo takes the decisions back, newest first; the progress follows
    _key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _status(doc, expected[2]) == ev.PROPOSED and panel.progress.value() == 2
    _key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _status(doc, expected[1]) == ev.PROPOSED
    _key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _status(doc, expected[0]) == ev.PROPOSED and panel.progress.value() == 0
    _key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ShiftModifier
         | Qt.KeyboardModifier.ControlModifier)
    assert _status(doc, expected[0]) == ev.ACCEPTED

    # to the end: review stops by itself and the window's A/R come back
    while panel.active:
        _key(window, Qt.Key.Key_R)
    assert panel.counter.text().startswith("Done:")
    assert _window_accept_action(window).isEnabled()
    window.player.stop()
    statuses = doc.annotations.set_index("id").loc[expected, "status"].tolist()
    assert statuses[0] == ev.ACCEPTED and statuses[-1] == ev.REJECTED
    # outside review, A is the window's "accept selected" again
    doc.selection = {expected[-1]}
    _key(window, Qt.Key.Key_A)
    assert _status(doc, expected[-1]) == ev.ACCEPTED


def test_review_without_proposals_says_so(make_main_window, qtbot, demo_path):
    window = make_main_window()
    window.open_files([demo_path])
    panel = window.panels["review"]
    assert panel.start() is False
    assert not panel.active
    assert "Run detection" in window.statusBar().currentMessage()


def test_the_event_under_review_deleted_or_replaced_moves_on(make_main_window, qtbot,
                                                             demo_path):
    """Found by the monkey (tests/gui/monkey.py, seeds 203 and 204): a threshold change
    while reviewing replaced the proposals and the review panel raised KeyError from
    inside the edit, so the edit never reached the undo history."""
    window, doc = _window_with_proposals(make_main_window, qtbot, demo_path)
    panel = window.panels["review"]
    panel.autoplay.setChecked(False)
    assert panel.start()
    queue = list(panel.queue)
    first = panel.current_id
    assert first == queue[0] and doc.selection == {first}
    doc.delete_events([first])  # (the Delete key is the review's too: the document call)
    assert window.last_error is None
    assert panel.active and panel.current_id == queue[1]
    assert doc.selection == {queue[1]}
    assert "Event 2 of 6" in panel.counter.text()
    doc.undo()  # the deleted one is back: undo recorded the delete
    assert first in set(doc.annotations["id"])
    # every proposal replaced at once (what a threshold change does): the review ends
    doc.apply_detection(ev.make_events([
        {"onset": 15.0, "offset": 16.0, "label": "Dog", "confidence": 0.4}],
        source="tiny", status=ev.PROPOSED), live=True)
    assert window.last_error is None
    assert not panel.active and panel.current_id is None
    doc.undo()
    assert set(doc.annotations["id"]) >= set(queue)
