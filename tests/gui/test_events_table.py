"""The events table: sort, filter, jump, selection both ways, edits with undo, 10k rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.model import Document
from app.panels.events_table import EVENT_ID_ROLE, KEYS, NOT_REJECTED, EventsTablePanel
from panns_core import events as ev

pytestmark = pytest.mark.gui

LABELS = ["Dog", "Bird", "Speech", "Knock", "Bark"]


def _events(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    onset = np.sort(rng.uniform(0, 19, n))
    return ev.make_events({
        "onset": onset,
        "offset": onset + rng.uniform(0.05, 1.0, n),
        "label": rng.choice(LABELS, n),
        "confidence": np.where(rng.random(n) < 0.2, np.nan, rng.random(n)),
        "status": rng.choice(list(ev.STATUSES), n),
        "source": "model-x",
        "note": [f"n{i}" if i % 7 == 0 else "" for i in range(n)],
    })


@pytest.fixture
def doc(tmp_path, demo_path):
    document = Document()
    document.open_project(tmp_path / "table.panns")
    document.open_file(demo_path)
    yield document
    document.close_project()


@pytest.fixture
def panel(qtbot, doc):
    widget = EventsTablePanel(doc)
    qtbot.addWidget(widget)
    widget.resize(900, 500)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _visible_ids(panel) -> list[int]:
    model = panel.model
    return [model.index(r, 0).data(EVENT_ID_ROLE) for r in range(model.rowCount())]


def _click_row(panel, row: int, column: int = 0, modifier=Qt.KeyboardModifier.NoModifier):
    table = panel.table
    table.scrollTo(panel.model.index(row, column))
    rect = table.visualRect(panel.model.index(row, column))
    QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())
    QApplication.processEvents()


def test_rows_follow_the_document_and_sort_by_header_click(panel, doc):
    doc.store.add_events(_events(200), doc.recording.id)
    frame = doc.annotations
    assert panel.model.rowCount() == 200
    assert _visible_ids(panel) == frame.sort_values(["onset", "id"])["id"].tolist()
    assert "200 events" in panel.counter.text()

    header = panel.table.horizontalHeader()
    label_col = KEYS.index("label")
    x = header.sectionViewportPosition(label_col) + header.sectionSize(label_col) // 2
    QTest.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, QPoint(x, header.height() // 2))
    expected = frame.assign(key=frame["label"].str.casefold()).sort_values(
        ["key", "onset", "id"])["id"].tolist()
    assert _visible_ids(panel) == expected
    # second click: descending by label, ties still in onset order
    QTest.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, QPoint(x, header.height() // 2))
    expected = frame.assign(key=frame["label"].str.casefold()).sort_values(
        ["key", "onset", "id"], ascending=[False, True, True])["id"].tolist()
    assert _visible_ids(panel) == expected

    # confidence descending: NaN (human events) go last
    panel.table.sortByColumn(KEYS.index("confidence"), Qt.SortOrder.DescendingOrder)
    conf = frame.set_index("id").loc[_visible_ids(panel), "confidence"].to_numpy()
    known = conf[~np.isnan(conf)]
    assert np.all(np.diff(known) <= 0)
    assert np.isnan(conf[len(known):]).all() and len(known) < len(conf)


def test_filters_by_text_status_and_label(panel, doc):
    doc.store.add_events(_events(300, seed=1), doc.recording.id)
    frame = doc.annotations
    panel.set_status_filter(ev.ACCEPTED)
    assert set(_visible_ids(panel)) == set(frame.loc[frame["status"] == ev.ACCEPTED, "id"])
    panel.set_status_filter(NOT_REJECTED)
    assert set(_visible_ids(panel)) == set(frame.loc[frame["status"] != ev.REJECTED, "id"])
    panel.set_label_filter("Bird")
    wanted = frame[(frame["status"] != ev.REJECTED) & (frame["label"] == "Bird")]
    assert set(_visible_ids(panel)) == set(wanted["id"])
    assert f"{len(wanted)} of 300" in panel.counter.text()
    # text filter typed into the search field: labels and notes, any case
    panel.set_label_filter("__all__")
    panel.set_status_filter("__all__")
    QTest.keyClicks(panel.search, "BAR")
    assert set(_visible_ids(panel)) == set(frame.loc[frame["label"] == "Bark", "id"])
    panel.search.clear()
    QTest.keyClicks(panel.search, "n14")
    assert set(_visible_ids(panel)) == set(frame.loc[frame["note"].str.contains("n14"), "id"])
    panel.search.clear()
    assert panel.model.rowCount() == 300


def test_click_jumps_and_selection_syncs_both_ways(panel, doc):
    doc.store.add_events(_events(120, seed=2), doc.recording.id)
    doc.view_range = (0.0, 2.0)
    frame = doc.annotations.sort_values(["onset", "id"]).reset_index(drop=True)
    target = frame.iloc[100]  # late in the file: outside the 2 s view
    emitted = []
    doc.events.selection.connect(emitted.append)
    _click_row(panel, 100, KEYS.index("status"))
    assert doc.selection == {int(target["id"])}
    assert len(emitted) == 1  # no echo back from the table
    assert doc.cursor == pytest.approx(target["onset"])
    start, stop = doc.view_range
    assert start <= target["onset"] and target["offset"] <= stop
    assert stop - start == pytest.approx(2.0)  # the zoom is kept

    # shift-click extends: the document gets both
    _click_row(panel, 103, 0, Qt.KeyboardModifier.ShiftModifier)
    assert doc.selection == set(frame.iloc[100:104]["id"].astype(int))

    # document -> table: selecting in the document selects (and shows) those rows
    ids = {int(frame.iloc[5]["id"]), int(frame.iloc[60]["id"])}
    doc.selection = ids
    rows = {i.row() for i in panel.table.selectionModel().selectedRows()}
    assert {panel.model.event_id(r) for r in rows} == ids
    assert doc.selection == ids
    # keyboard: Down moves to the next row and jumps there
    panel.table.setFocus()
    panel.table.setCurrentIndex(panel.model.index(10, 0))
    QTest.keyClick(panel.table, Qt.Key.Key_Down)
    assert doc.selection == {int(frame.iloc[11]["id"])}
    assert doc.cursor == pytest.approx(frame.iloc[11]["onset"])


def test_enter_and_double_click_ask_to_play(panel, doc, qtbot):
    doc.store.add_events(_events(10, seed=3), doc.recording.id)
    played = []
    panel.play_requested.connect(played.append)
    _click_row(panel, 4)
    QTest.keyClick(panel.table, Qt.Key.Key_Return)
    assert played == [panel.model.event_id(4)]
    rect = panel.table.visualRect(panel.model.index(6, 0))
    QTest.mouseDClick(panel.table.viewport(), Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier, rect.center())
    assert played[-1] == panel.model.event_id(6)


def test_edit_label_and_note_cells_are_undoable(panel, doc, qtbot):
    doc.store.add_events(_events(8, seed=4), doc.recording.id)
    row = 3
    event_id = panel.model.event_id(row)
    before = doc.event(event_id).copy()
    # label: F2, type, Enter
    _click_row(panel, row, KEYS.index("label"))
    QTest.keyClick(panel.table, Qt.Key.Key_F2)
    editor = QApplication.focusWidget()
    editor.selectAll()
    QTest.keyClicks(editor, "Cat")
    QTest.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: doc.event(event_id)["label"] == "Cat")
    after = doc.event(event_id)
    assert after["status"] == (ev.ADDED if before["status"] == ev.ADDED else ev.EDITED)
    assert panel.model.index(panel.model.rows_of([event_id])[0],
                             KEYS.index("label")).data() == "Cat"
    # note: double-click opens the editor
    note_col = KEYS.index("note")
    r = panel.model.rows_of([event_id])[0]
    rect = panel.table.visualRect(panel.model.index(r, note_col))
    QTest.mouseDClick(panel.table.viewport(), Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier, rect.center())
    editor = QApplication.focusWidget()
    editor.selectAll()
    QTest.keyClicks(editor, "barks twice")
    QTest.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: doc.event(event_id)["note"] == "barks twice")
    assert doc.undo() and doc.event(event_id)["note"] == before["note"]
    assert doc.undo()
    restored = doc.event(event_id)
    assert restored["label"] == before["label"] and restored["status"] == before["status"]
    r = panel.model.rows_of([event_id])[0]
    assert panel.model.index(r, KEYS.index("label")).data() == before["label"]


def test_an_edit_of_an_event_that_went_meanwhile_changes_nothing(panel, doc, qtbot):
    """Found by the monkey (seed 1003): a label typed into the table is applied once the
    editor has closed; a detection run replaced that event in between and the edit
    raised KeyError ("Something unexpected went wrong"). Now it says what happened."""
    doc.store.add_events(_events(5), doc.recording.id)
    failures, messages = [], []
    panel.failed.connect(failures.append)
    doc.events.status.connect(lambda e: messages.append(e.value))
    model = panel.model
    gone = model.event_id(0)
    model.setData(model.index(0, KEYS.index("label")), "Cat")
    model.setData(model.index(1, KEYS.index("note")), "hm")
    doc.delete_events([gone, model.event_id(1)])  # before the queued edits run
    steps = len(doc.history.undo_texts)
    qtbot.wait(50)
    assert failures == []
    assert len(doc.history.undo_texts) == steps  # nothing was changed
    assert any("is gone" in m for m in messages)
    assert "Cat" not in set(doc.annotations["label"])


def test_ten_thousand_events_sort_filter_select_and_paint(panel, doc):
    """10,000 rows behave as 200 do (how fast: benchmarks/bench_suite_speed.py)."""
    doc.store.add_events(_events(10_000, seed=5), doc.recording.id)
    frame = doc.annotations
    assert panel.model.rowCount() == 10_000
    panel.table.sortByColumn(KEYS.index("label"), Qt.SortOrder.DescendingOrder)
    QApplication.processEvents()
    expected = frame.assign(key=frame["label"].str.casefold()).sort_values(
        ["key", "onset", "id"], ascending=[False, True, True])["id"].tolist()
    assert _visible_ids(panel) == expected
    QTest.keyClicks(panel.search, "dog")
    QApplication.processEvents()
    dogs = frame[frame["label"] == "Dog"]
    assert len(dogs) > 1000
    # "dog" matches the label Dog only (notes are n<i>, the source model-x)
    assert _visible_ids(panel) == dogs.sort_values(["onset", "id"])["id"].tolist()
    chosen = _visible_ids(panel)[::3]
    doc.selection = chosen
    QApplication.processEvents()
    rows = {index.row() for index in panel.table.selectionModel().selectedRows()}
    assert sorted(panel.model.event_id(r) for r in rows) == sorted(chosen)
    panel.table.viewport().repaint()  # paints without error with 10k rows behind it
    assert f"{len(dogs):,} of 10,000 events shown" in panel.counter.text()


def test_table_docked_in_the_window_plays_and_relabels(make_main_window, qtbot, demo_path):
    window = make_main_window()
    window.open_files([demo_path])
    doc = window.document
    panel = window.panels["events_table"]
    assert window.docks["events_table"].isVisible()
    doc.store.add_events(_events(30, seed=6), doc.recording.id)
    assert panel.model.rowCount() == 30
    _click_row(panel, 12)
    event_id = panel.model.event_id(12)
    assert doc.selection == {event_id}
    # Enter in the table plays the event (the window's Enter shortcut does not fire)
    QTest.keyClick(panel.table, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.player.state == "playing", timeout=15000)
    row = doc.event(event_id)
    assert window.player._span == pytest.approx((row["onset"], row["offset"]))
    window.player.stop()
    assert len(doc.annotations) == 30
