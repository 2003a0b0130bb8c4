"""Export and import dialogs driven in the real window: export then re-import gives the
same events (one undo step), status choice, whole project, errors as messages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.dialogs.io_dialogs import ExportDialog, ImportDialog
from panns_core import events as ev
from panns_core.annotations.store import DeleteEvents

pytestmark = pytest.mark.gui

KEYS = ["onset", "offset", "label"]


def _rows(offset=0.0):
    return [
        {"onset": 1.0 + offset, "offset": 2.25, "label": "Dog", "status": ev.PROPOSED,
         "confidence": 0.61, "source": "tiny"},
        {"onset": 3.5, "offset": 4.0, "label": "Bird song, chirp", "status": ev.ACCEPTED,
         "confidence": 0.8, "source": "tiny"},
        {"onset": 5.0, "offset": 7.125, "label": "Knock", "status": ev.ADDED,
         "confidence": np.nan, "source": ev.HUMAN, "note": "door"},
        {"onset": 8.0, "offset": 9.0, "label": "Speech", "status": ev.REJECTED,
         "confidence": 0.35, "source": "tiny"},
    ]


def _window(make_main_window, qtbot, demo_path):
    window = make_main_window()
    window.open_files([demo_path])
    doc = window.document
    doc.store.add_events(ev.make_events(_rows()), doc.recording.id)
    return window, doc


def _click(button):
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    QApplication.processEvents()


def _sorted(frame):
    return frame[KEYS].sort_values(KEYS).reset_index(drop=True)


@pytest.mark.parametrize("fmt", ["label_studio", "raven", "audacity"])
def test_export_then_reimport_through_the_dialogs(make_main_window, qtbot, demo_path,
                                                  tmp_path, fmt):
    window, doc = _window(make_main_window, qtbot, demo_path)
    kept = doc.annotations[doc.annotations["status"] != ev.REJECTED]
    dialog = ExportDialog(doc, window)
    dialog.show()
    assert not dialog.status_boxes[ev.REJECTED].isChecked()  # rejected left out by default
    assert not dialog.status_boxes[ev.PROPOSED].isChecked()  # and the model's guesses
    assert dialog.preview.text().startswith("2 event(s)")
    dialog.status_boxes[ev.PROPOSED].setChecked(True)
    dialog.set_format(fmt)
    assert dialog.dest_edit.text().endswith(
        {"label_studio": "demo.json", "raven": "demo.selections.txt",
         "audacity": "demo.txt"}[fmt])
    dest = tmp_path / ("out" + {"label_studio": ".json", "raven": ".selections.txt",
                                "audacity": ".txt"}[fmt])
    dialog.dest_edit.clear()
    QTest.keyClicks(dialog.dest_edit, str(dest))
    assert dialog.preview.text().startswith("3 event(s) from 1 recording(s)")
    _click(dialog.export_button)
    assert dialog.result() == dialog.DialogCode.Accepted and dest.is_file()

    doc.delete_events(doc.annotations["id"].tolist())
    assert doc.annotations.empty
    importer = ImportDialog(doc, window)
    importer.show()
    importer.add_files([dest])
    assert importer.table.item(0, 1).text() == fmt  # detected
    assert importer.table.item(0, 2).text() == "3"
    assert importer.table.item(0, 3).text() == "demo.flac"
    _click(importer.import_button)
    assert importer.imported == 3
    pd.testing.assert_frame_equal(_sorted(doc.annotations), _sorted(kept))
    if fmt == "label_studio":  # keeps which events the model proposed, and notes
        back = doc.annotations.set_index("label")
        assert back.at["Dog", "status"] == ev.PROPOSED
        assert back.at["Knock", "note"] == "door"
    assert "Dog" in [e.name for e in doc.vocabulary()]
    assert doc.history.undo_text == "Import 3 event(s)"
    doc.undo()
    assert doc.annotations.empty


def test_whole_project_and_errors_shown_as_messages(make_main_window, qtbot, demo_path,
                                                    tmp_path):
    window, doc = _window(make_main_window, qtbot, demo_path)
    other = tmp_path / "quiet.wav"
    sf.write(other, np.zeros(16000, dtype=np.float32), 16000)
    demo_id = doc.recording.id
    (other_id,) = doc.add_recordings([other])
    doc.store.add_events(ev.make_events([{"onset": 0.1, "offset": 0.4, "label": "Hum"}]),
                         other_id)
    doc.set_recording(demo_id)
    dialog = ExportDialog(doc, window)
    dialog.show()
    dialog.set_format("audacity")
    dialog.scope_project.setChecked(True)
    # Audacity holds one recording per file: the folder layout is forced
    assert dialog.per_recording.isChecked() and not dialog.per_recording.isEnabled()
    dialog.set_destination(tmp_path / "labels")
    dialog.status_boxes[ev.PROPOSED].setChecked(True)
    assert dialog.preview.text().startswith("4 event(s) from 2 recording(s) -> 2 files")
    for box in dialog.status_boxes.values():
        box.setChecked(True)
    assert dialog.preview.text().startswith("5 event(s)")
    written = dialog.export()
    assert sorted(p.name for p in written) == ["demo.txt", "quiet.txt"]

    # one DCASE file for the whole project; then an unwritable destination
    dialog.set_format("dcase")
    dialog.per_recording.setChecked(False)
    dialog.set_destination(tmp_path / "all.tsv")
    assert dialog.export() and "quiet.wav\t0.1" in (tmp_path / "all.tsv").read_text()
    (tmp_path / "blocker").write_text("a file, not a folder")
    dialog.set_destination(tmp_path / "blocker" / "x.tsv")
    assert dialog.export() == []
    assert "is a file, not a folder" in dialog.error.text()
    assert "Traceback" not in dialog.error.text()

    # import: the per-recording files go back to their recordings by name; a broken
    # file is reported on its row and the rest still imports
    broken = tmp_path / "broken.tsv"
    broken.write_text("filename\tonset\toffset\tevent_label\ndemo.flac\tsoon\t1\tDog\n")
    importer = ImportDialog(doc, window, paths=[*written, broken])
    importer.target_combo.setCurrentIndex(0)  # match by file name only
    rows = {importer.table.item(r, 0).text(): r for r in range(importer.table.rowCount())}
    assert importer.table.item(rows["quiet.txt"], 3).text() == "quiet.wav"
    assert "line 2" in importer.table.item(rows["broken.tsv"], 4).text()
    assert "1 file(s) cannot be imported" in importer.summary.text()
    # the files hold the project's own events: nothing is added twice
    assert importer.table.item(rows["quiet.txt"], 2).text() == "0"
    assert "5 event(s) are in the project already" in importer.summary.text()
    assert not importer.import_button.isEnabled()
    assert importer.import_files() == 0
    # without them in the project, the same files bring all five back, as one undo step
    before = doc.store.events()
    doc.store.apply(DeleteEvents(before["id"].tolist()))
    importer.refresh()
    assert importer.import_files() == 5
    again = doc.store.events()
    assert len(again) == 5
    pd.testing.assert_frame_equal(
        again.sort_values(["onset", "label"])[["onset", "offset", "label"]].reset_index(drop=True),
        before.sort_values(["onset", "label"])[["onset", "offset", "label"]].reset_index(
            drop=True), atol=1e-6)
    doc.undo()
    assert len(doc.store.events()) == 0


def test_menu_opens_export_dialog(make_main_window, qtbot, demo_path, tmp_path):
    window, _doc = _window(make_main_window, qtbot, demo_path)
    window.activateWindow()
    window.setFocus()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=15000)
    dest = tmp_path / "menu.tsv"
    seen = []

    def drive():
        dialog = window.dialogs.get("io")
        if dialog is None or not dialog.isVisible():
            QTimer.singleShot(20, drive)
            return
        seen.append(dialog.windowTitle())
        dialog.set_format("dcase")
        dialog.set_destination(dest)
        _click(dialog.export_button)

    QTimer.singleShot(0, drive)
    QTest.keyClick(window, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier
                   | Qt.KeyboardModifier.ShiftModifier)
    assert seen == ["Export annotations"]
    # accepted and added; the proposed Dog is not ticked by default, rejected never
    assert dest.read_text().count("demo.flac") == 2


def test_undoing_an_import_takes_its_new_labels_out_of_the_vocabulary(
        make_main_window, qtbot, demo_path, tmp_path):
    """Undo to the start restores the project (the monkey's rule): the labels an import
    added to the vocabulary ("add labels") leave it again with the import's undo."""
    window, doc = _window(make_main_window, qtbot, demo_path)
    before = [e.name for e in doc.vocabulary()]
    path = tmp_path / "new.txt"
    path.write_text("1.0\t2.0\tCuckoo\n3.0\t4.0\tWoodpecker\n")
    importer = ImportDialog(doc, window, paths=[path])
    importer.target_combo.setCurrentIndex(importer.target_combo.findData(doc.recording.id))
    assert importer.add_labels.isChecked()
    assert importer.import_files() == 2
    assert {"Cuckoo", "Woodpecker"} <= {e.name for e in doc.vocabulary()}
    doc.undo()
    assert [e.name for e in doc.vocabulary()] == before
    assert doc.annotations[KEYS].merge(pd.DataFrame({"label": ["Cuckoo"]})).empty
    doc.redo()
    assert {"Cuckoo", "Woodpecker"} <= {e.name for e in doc.vocabulary()}
    assert len(doc.annotations) == 6
