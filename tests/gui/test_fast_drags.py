"""A person's quick flick of the mouse is still a drag.

pyqtgraph drops mouse moves that come closer than its ``mouseRateLimit`` (10 ms) to
the previous one. A fast real drag (the pointer arrives, the button goes down, the
mouse flicks and the button comes up within a few milliseconds) then reached the views
as a click at the press point: the event the user drew, moved or resized was lost. The
window replays the release point as the last move before a release, so a drag is a drag
however fast it is made.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

pytestmark = pytest.mark.gui

LEFT = Qt.MouseButton.LeftButton
NONE = Qt.MouseButton.NoButton
NO_MODS = Qt.KeyboardModifier.NoModifier


def _send(widget, kind, pos: QPoint, button, buttons) -> None:
    event = QMouseEvent(kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)), button,
                        buttons, NO_MODS)
    QApplication.sendEvent(widget, event)


def flick(view, start: tuple[float, float], stop: tuple[float, float],
          button=LEFT) -> None:
    """A drag made as fast as a hand can: hover, press, two moves, release, with no
    pause between them (every move is within pyqtgraph's 10 ms rate limit)."""
    viewport = view.viewport()
    a = view.view_to_widget(*start).toPoint()
    b = view.view_to_widget(*stop).toPoint()
    _send(viewport, QEvent.Type.MouseMove, a, NONE, NONE)  # the pointer arrives
    _send(viewport, QEvent.Type.MouseButtonPress, a, button, button)
    _send(viewport, QEvent.Type.MouseMove, (a + b) / 2, NONE, button)
    _send(viewport, QEvent.Type.MouseMove, b, NONE, button)
    _send(viewport, QEvent.Type.MouseButtonRelease, b, button, NONE)
    QApplication.processEvents()


def test_fast_drags_add_move_resize_and_select(make_main_window, qtbot, demo_path):
    window = make_main_window()
    window.open_files([demo_path])
    doc = window.document
    track = window.events_track
    tolerance = 3 * (doc.view_range[1] - doc.view_range[0]) / track.pixels_wide()

    flick(track, (2.0, track.n_lanes - 0.5), (5.0, track.n_lanes - 0.5))
    assert len(doc.annotations) == 1, "a fast drag on empty space did not add an event"
    event_id = int(doc.annotations.iloc[0]["id"])
    assert doc.event(event_id)["onset"] == pytest.approx(2.0, abs=tolerance)
    assert doc.event(event_id)["offset"] == pytest.approx(5.0, abs=tolerance)

    flick(track, (3.5, 0.5), (6.5, 0.5))  # the body: a move by 3 s
    assert doc.event(event_id)["onset"] == pytest.approx(5.0, abs=tolerance)
    assert doc.event(event_id)["offset"] == pytest.approx(8.0, abs=tolerance)

    offset = float(doc.event(event_id)["offset"])
    flick(track, (offset, 0.5), (offset + 4.0, 0.5))  # the right edge: a resize
    assert doc.event(event_id)["offset"] == pytest.approx(offset + 4.0, abs=tolerance)
    assert doc.event(event_id)["onset"] == pytest.approx(5.0, abs=tolerance)
    assert len(doc.annotations) == 1

    # a fast drag over the waveform selects a span of time
    flick(window.waveform, (12.0, 0.0), (15.0, 0.0))
    assert doc.time_selection == pytest.approx((12.0, 15.0), abs=tolerance)
    # ... and a click (press and release at one point) stays a click: the cursor moves
    flick(window.waveform, (9.0, 0.0), (9.0, 0.0))
    assert doc.time_selection is None
    assert doc.cursor == pytest.approx(9.0, abs=tolerance)


@pytest.mark.parametrize("part", ["body", "end"])
def test_an_event_that_goes_during_its_drag(make_main_window, demo_path, monkeypatch, part):
    """Found by the monkey: a detection run replaced the proposals while the user was
    dragging one; the move or resize raised KeyError inside pyqtgraph's drag handling
    (which prints and swallows it). Now the drag ends quietly and says why."""
    import pyqtgraph.debug
    from PySide6.QtTest import QTest

    from panns_core import events as ev

    swallowed = []
    monkeypatch.setattr(pyqtgraph.debug, "printExc",
                        lambda *a, **k: swallowed.append(a))
    window = make_main_window()
    window.open_files([demo_path])
    doc = window.document
    doc.apply_detection(ev.make_events([{"onset": 4.0, "offset": 8.0, "label": "Dog",
                                         "confidence": 0.9}], source="m", status=ev.PROPOSED))
    messages = []
    doc.events.status.connect(lambda e: messages.append(e.value))
    (event_id,) = doc.annotations["id"]
    track = window.events_track
    y = track.lane_of("Dog") + 0.5
    start = (6.0, y) if part == "body" else (8.0, y)
    viewport = track.viewport()
    a = track.view_to_widget(*start).toPoint()
    b = track.view_to_widget(start[0] + 3.0, y).toPoint()
    _send(viewport, QEvent.Type.MouseMove, a, NONE, NONE)
    QTest.qWait(15)
    _send(viewport, QEvent.Type.MouseButtonPress, a, LEFT, LEFT)
    for i in (1, 2, 3):
        QTest.qWait(15)
        _send(viewport, QEvent.Type.MouseMove, a + (b - a) * (i / 4), NONE, LEFT)
    assert track.drag_preview  # the drag is under way
    # a detection run (here: a second one) replaces the proposals meanwhile
    doc.apply_detection(ev.make_events([{"onset": 1.0, "offset": 2.0, "label": "Dog",
                                         "confidence": 0.8}], source="m", status=ev.PROPOSED))
    assert event_id not in set(doc.annotations["id"])
    steps = list(doc.history.undo_texts)
    QTest.qWait(15)
    _send(viewport, QEvent.Type.MouseMove, b, NONE, LEFT)
    QTest.qWait(15)
    _send(viewport, QEvent.Type.MouseButtonRelease, b, LEFT, NONE)
    QApplication.processEvents()
    assert swallowed == [] and window.last_error is None
    assert doc.history.undo_texts == steps  # nothing was moved or resized
    assert not track.drag_preview
    assert any("is gone" in m for m in messages)
