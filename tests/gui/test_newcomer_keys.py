"""Keys typed into an editor stay there: Return commits a spin box, a text box or a
table cell (it does not add an event), letters and digits are text (not accept/reject
or a label), Escape cancels a cell edit, and Return in the recordings list loads that
recording."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

pytestmark = pytest.mark.gui


def _window(make_main_window, qtbot, tmp_path, names=("a",)):
    files = []
    for name in names:
        path = tmp_path / f"{name}.wav"
        sf.write(path, np.zeros(16000 * 10, dtype=np.float32), 16000)
        files.append(path)
    window = make_main_window()
    window.open_files(files)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=15000)
    return window, window.document


def _focus(qtbot, widget):
    widget.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is not None and (
        QApplication.focusWidget() is widget or widget.isAncestorOf(QApplication.focusWidget())))


def _type(text: str) -> None:
    QTest.keyClicks(QApplication.focusWidget(), text)


def _key(key, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    QTest.keyClick(QApplication.focusWidget(), key, modifiers)
    QApplication.processEvents()


def test_return_in_a_spin_box_commits_it(make_main_window, qtbot, tmp_path):
    window, doc = _window(make_main_window, qtbot, tmp_path)
    doc.time_selection = (1.0, 2.0)  # Return outside an editor would add an event here
    spin = window.panels["detection"].threshold_spin
    window.docks["detection"].raise_()
    _focus(qtbot, spin)
    spin.selectAll()
    view = doc.view_range
    _type("0.45")
    _key(Qt.Key.Key_Left)  # moves the text cursor, does not scroll the views
    _key(Qt.Key.Key_Return)
    assert doc.params.threshold == pytest.approx(0.45)
    assert doc.annotations.empty and doc.time_selection == (1.0, 2.0)
    assert doc.view_range == view
    _key(Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)  # not "add with label"
    assert doc.annotations.empty


def test_text_box_keeps_letters_digits_and_return(make_main_window, qtbot, tmp_path):
    window, doc = _window(make_main_window, qtbot, tmp_path)
    event_id = doc.add_event(1.0, 2.0, "Dog")
    doc.selection = {event_id}
    doc.time_selection = (3.0, 4.0)
    window.docks["detection"].raise_()
    edit = window.panels["detection"].classes_edit
    _focus(qtbot, edit)
    _type("Bird, Dog 1 ar")
    assert edit.text() == "Bird, Dog 1 ar"
    _key(Qt.Key.Key_Backspace)
    _key(Qt.Key.Key_Backspace)
    _key(Qt.Key.Key_Backspace)
    _key(Qt.Key.Key_Backspace)
    _key(Qt.Key.Key_Delete)
    _key(Qt.Key.Key_Return)
    assert list(doc.params.classes) == ["Bird", "Dog"]
    row = doc.event(event_id)
    assert row["status"] == "added" and row["label"] == "Dog"  # no A/R/1 reached it
    assert len(doc.annotations) == 1  # Return did not add an event
    # outside an editor the keys are the window's again
    window.events_track.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.events_track)
    _key(Qt.Key.Key_Return)
    assert len(doc.annotations) == 2


def test_table_cell_editor_commits_on_return_and_cancels_on_escape(make_main_window, qtbot,
                                                                   tmp_path):
    window, doc = _window(make_main_window, qtbot, tmp_path)
    event_id = doc.add_event(1.0, 2.0, "Dog")
    doc.time_selection = (3.0, 4.0)
    window.docks["events_table"].raise_()
    panel = window.panels["events_table"]
    table = panel.table
    from app.panels.events_table import KEYS

    index = panel.model.index(0, KEYS.index("note"))
    table.setCurrentIndex(index)
    _focus(qtbot, table)
    table.edit(index)
    qtbot.waitUntil(lambda: table.state() == table.State.EditingState)
    _type("door 1a")
    _key(Qt.Key.Key_Return)
    assert doc.event(event_id)["note"] == "door 1a"
    assert len(doc.annotations) == 1 and doc.event(event_id)["label"] == "Dog"
    table.edit(index)
    qtbot.waitUntil(lambda: table.state() == table.State.EditingState)
    _type(" more")
    _key(Qt.Key.Key_Escape)
    assert table.state() != table.State.EditingState
    assert doc.event(event_id)["note"] == "door 1a"


def test_return_in_the_recordings_list_loads_the_row(make_main_window, qtbot, tmp_path):
    window, doc = _window(make_main_window, qtbot, tmp_path, names=("a", "b", "c"))
    doc.time_selection = (1.0, 2.0)
    panel = window.panels["recordings"]
    _focus(qtbot, panel)
    panel.blockSignals(True)  # move the current row without loading it (as a mouse hover)
    panel.setCurrentItem(panel.items()[2])
    panel.blockSignals(False)
    assert doc.recording.name == "a.wav"
    _key(Qt.Key.Key_Return)
    assert doc.recording.name == "c.wav"
    assert doc.annotations.empty  # Return did not add an event
    _key(Qt.Key.Key_Home)
    assert doc.recording.name == "a.wav"
