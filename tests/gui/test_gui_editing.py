"""Drive the real window offscreen: open the demo, edit events by mouse and keyboard,
undo and redo everything, play, zoom, drop files, and show errors as messages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from panns_core import events as ev

from .conftest import mouse_click, mouse_drag

pytestmark = pytest.mark.gui

COMPARE = ["id", "onset", "offset", "label", "status", "source"]


def _snapshot(doc) -> pd.DataFrame:
    return doc.annotations[COMPARE].sort_values("id").reset_index(drop=True).copy()


def _open_demo(window, qtbot, demo_path):
    window.open_files([demo_path])
    doc = window.document
    assert doc.recording is not None and doc.recording.name == "demo.flac"
    assert doc.duration == pytest.approx(20.0)
    qtbot.waitUntil(lambda: window.waveform.envelope_complete, timeout=30000)
    return doc


def _key(window, key, modifier=Qt.KeyboardModifier.NoModifier):
    """A key press as the user makes it: to the focused widget of the active window."""
    if not window.isActiveWindow():
        window.activateWindow()
        window.raise_()
    target = QApplication.focusWidget() or window
    QTest.keyClick(target, key, modifier)
    QApplication.processEvents()


def test_open_demo_shows_waveform(make_main_window, qtbot, demo_path):
    window = make_main_window()
    doc = _open_demo(window, qtbot, demo_path)
    # the drawn envelope covers the file and matches the audio's peak
    x, lo, y = window.waveform.envelope_data()
    assert x[0] < 0.5 and x[-1] > 19.5
    assert float(np.min(lo)) == pytest.approx(-float(np.max(-lo)))
    import soundfile as sf

    audio, _ = sf.read(str(demo_path), dtype="float32")
    assert float(np.max(y)) == pytest.approx(float(audio.max()), abs=1e-4)
    # every view shows the same time span as the document
    for view in window.views:
        start, stop = view.getViewBox().viewRange()[0]
        assert (start, stop) == pytest.approx(doc.view_range, abs=1e-6)
    assert window.panels["recordings"].count() == 1


def test_mouse_and_keyboard_editing_with_full_undo_redo(make_main_window, qtbot, demo_path):
    window = make_main_window()
    doc = _open_demo(window, qtbot, demo_path)
    track = window.events_track
    window.activateWindow()
    window.setFocus()
    snapshots = [_snapshot(doc)]
    tolerance = 3 * (doc.view_range[1] - doc.view_range[0]) / track.pixels_wide()

    # add by dragging on empty space (the "new" lane adds the default label)
    mouse_drag(track, (2.0, track.n_lanes - 0.5), (4.0, track.n_lanes - 0.5))
    assert len(doc.annotations) == 1
    first = doc.annotations.iloc[0]
    assert first["label"] == doc.default_label == "Speech"
    assert first["status"] == ev.ADDED and first["source"] == ev.HUMAN
    assert first["onset"] == pytest.approx(2.0, abs=tolerance)
    assert first["offset"] == pytest.approx(4.0, abs=tolerance)
    first_id = int(first["id"])
    assert doc.selection == {first_id}
    snapshots.append(_snapshot(doc))

    # a second event in the same label's lane
    mouse_drag(track, (9.0, 0.5), (11.0, 0.5))
    assert len(doc.annotations) == 2
    second_id = int(doc.annotations.sort_values("onset").iloc[1]["id"])
    snapshots.append(_snapshot(doc))

    # click selects; drag the body moves by the drag distance
    mouse_click(track, (3.0, 0.5))
    assert doc.selection == {first_id}
    before = doc.event(first_id)
    mouse_drag(track, (3.0, 0.5), (4.5, 0.5))
    moved = doc.event(first_id)
    assert moved["onset"] - before["onset"] == pytest.approx(1.5, abs=tolerance)
    assert moved["offset"] - moved["onset"] == pytest.approx(
        before["offset"] - before["onset"], abs=1e-9)
    snapshots.append(_snapshot(doc))

    # drag the right edge: resize
    edge = float(moved["offset"])
    mouse_drag(track, (edge, 0.5), (edge + 2.0, 0.5))
    resized = doc.event(first_id)
    assert resized["onset"] == pytest.approx(moved["onset"], abs=1e-9)
    assert resized["offset"] == pytest.approx(edge + 2.0, abs=tolerance)
    snapshots.append(_snapshot(doc))

    # relabel by double-click (the label picker hook) ...
    window.label_picker = lambda _window, _doc, ids: "Bird"
    mouse_click(track, ((resized["onset"] + resized["offset"]) / 2, 0.5), double=True)
    assert doc.event(first_id)["label"] == "Bird"
    snapshots.append(_snapshot(doc))

    # ... and by a vocabulary hotkey (key 4 = fourth vocabulary entry: the labels added
    # and relabelled to joined the vocabulary first)
    doc.ensure_labels(["Dog", "Bark"])
    assert [e.name for e in doc.vocabulary()] == ["Speech", "Bird", "Dog", "Bark"]
    doc.select(second_id)
    _key(window, Qt.Key.Key_4)
    assert doc.event(second_id)["label"] == "Bark"
    snapshots.append(_snapshot(doc))

    # ctrl-click adds to the selection; Delete removes both
    lane_bird = track.lane_of("Bird")
    lane_bark = track.lane_of("Bark")
    mouse_click(track, (doc.event(first_id)["onset"] + 0.3, lane_bird + 0.5))
    second = doc.event(second_id)
    mouse_click(track, ((second["onset"] + second["offset"]) / 2, lane_bark + 0.5),
                modifiers=Qt.KeyboardModifier.ControlModifier)
    assert doc.selection == {first_id, second_id}
    _key(window, Qt.Key.Key_Delete)
    assert doc.annotations.empty
    snapshots.append(_snapshot(doc))

    # undo everything with Ctrl+Z, checking every intermediate state
    for expected in reversed(snapshots[:-1]):
        _key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        pd.testing.assert_frame_equal(_snapshot(doc), expected)
    assert not doc.history.can_undo
    # and redo everything with Ctrl+Shift+Z
    for expected in snapshots[1:]:
        _key(window, Qt.Key.Key_Z,
             Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
        pd.testing.assert_frame_equal(_snapshot(doc), expected)
    assert not doc.history.can_redo

    # every edit was committed: a second store on the same file sees the final state
    from panns_core.annotations.store import ProjectStore

    with ProjectStore(doc.project_path) as other:
        assert other.events(doc.recording.id).empty


def test_accept_reject_and_navigation_keys(make_main_window, qtbot, demo_path):
    window = make_main_window()
    doc = _open_demo(window, qtbot, demo_path)
    proposals = ev.make_events([
        {"onset": 1.0, "offset": 2.0, "label": "Bird", "confidence": 0.8},
        {"onset": 5.0, "offset": 5.7, "label": "Dog", "confidence": 0.6},
        {"onset": 8.0, "offset": 9.0, "label": "Speech", "confidence": 0.4},
    ], source="tiny", status=ev.PROPOSED)
    doc.apply_detection(proposals)
    assert set(doc.annotations["status"]) == {ev.PROPOSED}
    window.activateWindow()
    _key(window, Qt.Key.Key_N)  # first event after the cursor (0 s)
    first = int(doc.annotations.sort_values("onset").iloc[0]["id"])
    assert doc.selection == {first}
    _key(window, Qt.Key.Key_A)  # accept, then the next one is selected
    assert doc.event(first)["status"] == ev.ACCEPTED
    second = int(doc.annotations.sort_values("onset").iloc[1]["id"])
    assert doc.selection == {second}
    _key(window, Qt.Key.Key_R)
    assert doc.event(second)["status"] == ev.REJECTED
    third = int(doc.annotations.sort_values("onset").iloc[2]["id"])
    assert doc.selection == {third}
    _key(window, Qt.Key.Key_P)
    _key(window, Qt.Key.Key_P)
    assert doc.selection == {first}
    # moving a model event by mouse marks it edited
    track = window.events_track
    lane = track.lane_of("Bird")
    mouse_drag(track, (1.5, lane + 0.5), (2.5, lane + 0.5))
    assert doc.event(first)["status"] == ev.EDITED
    # undo the three edits and the detection itself
    for _ in range(4):
        _key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert doc.annotations.empty


def test_time_selection_enter_adds_event_and_wheel_zoom(make_main_window, qtbot, demo_path):
    window = make_main_window()
    doc = _open_demo(window, qtbot, demo_path)
    mouse_drag(window.waveform, (12.0, 0.0), (14.0, 0.0))
    assert doc.time_selection == pytest.approx((12.0, 14.0), abs=0.1)
    assert window.spectrogram.selection_region.isVisible()
    _key(window, Qt.Key.Key_Return)
    assert len(doc.annotations) == 1
    assert doc.annotations.iloc[0]["onset"] == pytest.approx(12.0, abs=0.1)

    # wheel over the spectrogram at 5 s zooms in around 5 s in every view
    view = window.spectrogram
    pos = view.view_to_widget(5.0, 32.0)
    wheel = QWheelEvent(pos, QPointF(view.mapToGlobal(pos.toPoint())), QPoint(0, 0),
                        QPoint(0, 240), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), wheel)
    start, stop = doc.view_range
    assert stop - start < 20.0 * 0.8
    assert start < 5.0 < stop
    for other in window.views:
        assert other.getViewBox().viewRange()[0] == pytest.approx([start, stop], abs=1e-6)
    # the scroll bar moves the view, keeping its width
    window.scrollbar.setValue(window.scrollbar.maximum())
    assert doc.view_range[1] == pytest.approx(20.0)
    assert doc.view_range[1] - doc.view_range[0] == pytest.approx(stop - start)
    # right-drag pans
    a, b = doc.view_range
    # (a second of drag: pyqtgraph drops fast synthetic moves and takes a first move
    # under 5 px as the start of a click)
    mouse_drag(window.waveform, (b - 1.5, 0.0), (b - 0.5, 0.0),
               button=Qt.MouseButton.RightButton)
    assert doc.view_range[0] < a


def test_play_moves_cursor_and_space_toggles(make_main_window, qtbot, demo_path):
    window = make_main_window()
    doc = _open_demo(window, qtbot, demo_path)
    player = window.player
    states = []
    player.state_changed.connect(states.append)
    doc.time_selection = (3.0, 4.0)
    _key(window, Qt.Key.Key_Space)
    assert states[0] == "playing"
    # the null sink is not paced: the span plays out quickly, the cursor reaches its end
    qtbot.waitUntil(lambda: player.state == "stopped", timeout=30000)
    assert player.device_ok is True
    assert doc.cursor == pytest.approx(4.0, abs=0.05)


def test_no_output_device_is_reported_and_cursor_still_moves(make_main_window, qtbot,
                                                              demo_path):
    window = make_main_window()
    doc = _open_demo(window, qtbot, demo_path)
    player = window.player
    player.device = "no such output device"
    messages = []
    player.message.connect(messages.append)
    player.play(0.0, 0.3)
    assert player.device_ok is False
    assert messages and "No audio output" in messages[0]
    qtbot.waitUntil(lambda: player.state == "stopped", timeout=60000)
    assert doc.cursor == pytest.approx(0.3, abs=0.05)


def test_bad_file_shows_message_not_traceback(make_main_window, qtbot, tmp_path, demo_path):
    window = make_main_window()
    doc = _open_demo(window, qtbot, demo_path)
    doc.add_event(1.0, 2.0, "Dog")
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF....WAVEjunk")
    window.guard(window.open_files, [bad])
    assert "broken.wav" in window.last_error
    assert "Traceback" not in window.last_error
    assert doc.recording.name == "demo.flac"
    assert len(doc.annotations) == 1  # nothing saved was lost


def test_drop_audio_files_opens_them(make_main_window, qtbot, tmp_path, demo_path):
    import shutil

    window = make_main_window()
    copy = tmp_path / "dropped.flac"
    shutil.copy(demo_path, copy)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(copy))])
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    assert window.document.recording.name == "dropped.flac"
    from app import settings

    assert settings.recent_files()[0] == str(copy.resolve())


def test_loop_and_play_selected_event(make_main_window, qtbot, demo_path):
    window = make_main_window()
    doc = _open_demo(window, qtbot, demo_path)
    player = window.player
    window.loop_action.setChecked(True)
    player.play(3.0, 4.0)
    qtbot.wait(300)
    assert player.state == "playing"  # a loop does not end by itself
    assert 3.0 <= doc.cursor <= 4.0
    _key(window, Qt.Key.Key_Escape)
    assert player.state == "stopped"
    assert doc.cursor == pytest.approx(3.0)
    window.loop_action.setChecked(False)
    event_id = doc.add_event(6.0, 6.8, "Bark")
    _key(window, Qt.Key.Key_Space, Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: player.state == "stopped", timeout=30000)
    assert doc.cursor == pytest.approx(doc.event(event_id)["offset"], abs=0.05)
