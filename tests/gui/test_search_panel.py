"""Find similar in the real window, on real soundscapes with a model trained on others
(the session's ``soundscape_search``): a query from a selected event, hits labelled with
A / R in the list (events of the query's label, undoable), Enter plays a hit, Train
re-ranks by the head in the background, the uncertainty order, and the head registered
as a model. Set PANNS_SEARCH_SCREENSHOT=file.png to keep a picture of the window."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from panns_core import events as ev

pytestmark = [pytest.mark.gui, pytest.mark.slow]

LABEL = "Computer keyboard"


def _copy_project(setup, folder):
    project = folder / setup.project.name
    shutil.copy(setup.project, project)
    source = setup.project.with_name(setup.project.name + ".search")
    shutil.copytree(source, project.with_name(project.name + ".search"))
    return project


def _right(reference: pd.DataFrame, hit) -> bool:
    mine = reference[reference["event_label"] == LABEL]
    return bool(((mine["filename"] == hit.recording) & (mine["onset"] < hit.offset)
                 & (mine["offset"] > hit.onset)).any())  # fmt: skip


def _wait_idle(qtbot, panel, timeout=120_000):
    qtbot.waitUntil(lambda: not panel.busy, timeout=timeout)
    QApplication.processEvents()


def test_find_similar_label_train_rerank_register(make_main_window, qtbot, tmp_path,
                                                  soundscape_search):  # fmt: skip
    import soundscape_model

    reference = soundscape_model.reference_events()
    reference = reference[reference["filename"].isin(soundscape_model.SEARCHED)]
    query = reference[reference["event_label"] == LABEL].iloc[0]
    project = _copy_project(soundscape_search, tmp_path)

    window = make_main_window(project=project)
    doc = window.document
    doc.model = str(soundscape_search.checkpoint)
    rec_id = doc.store.recording_id(query.filename)
    doc.set_recording(rec_id)
    query_id = doc.add_event(query.onset, query.offset, LABEL)  # the user marks one example
    assert doc.selection == {query_id}
    panel = window.panels["search"]
    dock = window.docks["search"]
    assert dock.isHidden()

    window.activateWindow()
    window.setFocus()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=15000)
    started = time.monotonic()
    QTest.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier
                   | Qt.KeyboardModifier.ShiftModifier)
    assert dock.isVisible()
    _wait_idle(qtbot, panel)
    assert window.last_error is None, window.last_error
    assert len(panel.hits) == 50 and panel.table.rowCount() == 50
    assert LABEL in panel.queries_label.text()
    scores = [h.score for h in panel.hits]
    assert scores == sorted(scores, reverse=True)
    icon = panel.table.item(0, 0).data(Qt.ItemDataRole.DecorationRole)
    assert icon is not None and not icon.isNull()  # the thumbnail
    similar = list(panel.hits)

    # label the first ten with the keys, as the reference says
    panel.table.setFocus()
    panel.table.selectRow(0)
    decided = []
    for row in range(10):
        assert panel.current_row() == row
        key = Qt.Key.Key_A if _right(reference, panel.hits[row]) else Qt.Key.Key_R
        QTest.keyClick(panel.table, key)
        decided.append((panel.hits[row], ev.ADDED if key == Qt.Key.Key_A else ev.REJECTED))
    assert window.last_error is None, window.last_error
    made = doc.store.events(labels=[LABEL])
    made = made[made["id"] != query_id]
    assert len(made) == 10
    for hit, status in decided:
        row = made[(made["recording"] == hit.path) & np.isclose(made["onset"], hit.onset)]
        assert len(row) == 1, hit
        assert row["status"].iloc[0] == status and row["source"].iloc[0] == ev.HUMAN
        assert row["offset"].iloc[0] == pytest.approx(hit.offset)
    assert panel.table.item(0, 4).text() in (f"+ {LABEL}", f"− {LABEL}")
    positives = sum(status == ev.ADDED for _, status in decided)
    print(f"{positives} of the first 10 similar windows are {LABEL}")

    # undo takes the last decision back (list and store); redo restores it
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    QApplication.processEvents()
    assert len(doc.store.events(labels=[LABEL])) == 10  # the query event and nine
    assert panel.table.item(9, 4).text() == ""
    QTest.keyClick(window, Qt.Key.Key_Z,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    QApplication.processEvents()
    assert len(doc.store.events(labels=[LABEL])) == 11
    assert panel.table.item(9, 4).text() != ""

    # Enter plays a hit: its recording is shown and played from the hit
    panel.table.setFocus()
    panel.table.selectRow(12)
    QTest.keyClick(panel.table, Qt.Key.Key_Return)
    QApplication.processEvents()
    assert window.last_error is None, window.last_error
    assert str(doc.recording.path) == panel.hits[12].path
    hit = panel.hits[12]
    assert hit.onset - 0.05 <= doc.cursor <= hit.offset + 0.05  # played from the hit
    assert doc.view_range[0] <= hit.onset and hit.offset <= doc.view_range[1]

    # Train: the head re-ranks every window in the background
    panel.train_button.click()
    assert panel.busy
    _wait_idle(qtbot, panel)
    assert window.last_error is None, window.last_error
    assert panel.head is not None and panel.head.positives > 0
    assert panel.order_combo.currentText() == "Head: most likely"
    reranked = list(panel.hits)
    assert [(h.recording, h.onset) for h in reranked] != [(h.recording, h.onset)
                                                          for h in similar]  # fmt: skip
    labelled = {(h.path, round(h.onset, 3)) for h, _ in decided}
    assert not labelled & {(h.path, round(h.onset, 3)) for h in reranked}
    probabilities = [h.score for h in reranked]
    assert probabilities == sorted(probabilities, reverse=True)
    assert min(probabilities) >= 0.0 and max(probabilities) <= 1.0
    before = np.mean([_right(reference, h) for h in similar[10:20]])
    after = np.mean([_right(reference, h) for h in reranked[:10]])
    print(f"precision@10 of new windows: head {after:.2f}, similarity {before:.2f}")

    screenshot = os.environ.get("PANNS_SEARCH_SCREENSHOT")
    if screenshot:
        dock.raise_()
        window.resize(1400, 900)
        QApplication.processEvents()
        window.grab().save(screenshot)

    # the uncertainty order: nearest the boundary first
    panel.order_combo.setCurrentText("Head: most uncertain")
    _wait_idle(qtbot, panel)
    margins = [abs(h.score - 0.5) for h in panel.hits[:20]]
    assert margins == sorted(margins)

    # the head as a model that detection can use
    panel.register_model("keyboard-search")
    _wait_idle(qtbot, panel)
    assert window.last_error is None, window.last_error
    from panns_core.hub.installed import get_registry

    record = get_registry().find("keyboard-search")
    assert record is not None and list(record.labels) == [LABEL]
    assert panel.registered == "keyboard-search"
    print(f"first query to a registered model: {time.monotonic() - started:.1f} s "
          "(index built, labels by key)")
