"""A newcomer's path through the window: a project file from the command line or a drop,
a folder of recordings, removing a recording (undoable), the recordings' state column,
the keyboard in the recordings list, and a moved file found again."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from panns_core import events as ev
from panns_core.annotations.store import ProjectStore

pytestmark = pytest.mark.gui

CORPUS = Path("/work/shared/corpus/soundscapes/audio")


def _tone(path: Path, seconds: float = 2.0, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)
    return path


def _project_with(tmp_path: Path, *files: Path) -> Path:
    project = tmp_path / "birds.panns"
    with ProjectStore(project) as store:
        for file in files:
            store.add_recording(file)
    return project


def _drop(window, paths) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    QApplication.processEvents()


def _model_rows(n_proposed: int, n_accepted: int = 0) -> list[dict]:
    rows = []
    for i in range(n_proposed + n_accepted):
        rows.append({"onset": 0.1 * i, "offset": 0.1 * i + 0.05, "label": "Dog",
                     "source": "tiny", "confidence": 0.5,
                     "status": ev.PROPOSED if i < n_proposed else ev.ACCEPTED})
    return rows


def test_a_project_file_on_the_command_line_opens_that_project(qtbot, tmp_path):
    from app.main import create_window

    audio = _tone(tmp_path / "dawn.wav")
    project = _project_with(tmp_path, audio)
    window = create_window([str(project)])
    qtbot.addWidget(window)
    window.quiet_errors = True
    assert window.last_error is None  # was: "Cannot read …/birds.panns: not an audio file"
    assert window.document.project_path == project
    assert [r.name for r in window.document.recordings] == ["dawn.wav"]
    assert "birds.panns" not in [r.name for r in window.document.recordings]
    window.close()


def test_a_dropped_project_file_opens_that_project(make_main_window, tmp_path):
    audio = _tone(tmp_path / "dawn.wav")
    project = _project_with(tmp_path, audio)
    window = make_main_window()
    _drop(window, [project])
    assert window.last_error is None
    assert window.document.project_path == project
    assert [r.name for r in window.document.recordings] == ["dawn.wav"]
    # a dropped audio file still goes into the open project
    other = _tone(tmp_path / "dusk.wav")
    _drop(window, [other])
    assert window.document.recording.name == "dusk.wav"
    assert len(ProjectStore(project).recordings()) == 2


def test_open_folder_adds_audio_files_recursively(make_main_window, qtbot, tmp_path):
    folder = tmp_path / "field"
    _tone(folder / "a.wav")
    _tone(folder / "night" / "b.flac")
    _tone(folder / "night" / "deep" / "c.wav")
    (folder / "notes.txt").write_text("not audio")
    (folder / "night" / "broken.wav").write_bytes(b"RIFF....garbage")
    _tone(folder / ".hidden" / "x.wav")
    window = make_main_window()
    window.open_paths([folder])  # as a drop or the command line would
    qtbot.waitUntil(lambda: window.folder_worker is None, timeout=20000)
    names = sorted(r.name for r in window.document.recordings)
    assert names == ["a.wav", "b.flac", "c.wav"]
    assert window.document.recording is not None  # the first one is shown
    assert "1 file(s) not readable" in window.statusBar().currentMessage()
    assert window.panels["recordings"].count() == 3


def test_open_folder_of_many_files_shows_progress(make_main_window, qtbot, tmp_path):
    from PySide6.QtWidgets import QProgressDialog

    folder = tmp_path / "many"
    for i in range(60):
        _tone(folder / f"{i // 10}" / f"r{i:02d}.wav", seconds=0.2)
    window = make_main_window()
    window.open_folder(folder)
    assert window.findChildren(QProgressDialog)  # shown if it takes over half a second
    qtbot.waitUntil(lambda: window.folder_worker is None, timeout=30000)
    assert len(window.document.recordings) == 60
    assert not any(d.isVisible() for d in window.findChildren(QProgressDialog))


def test_remove_a_recording_with_its_events_and_undo(make_main_window, qtbot, tmp_path):
    a, b, c = (_tone(tmp_path / f"{n}.wav") for n in "abc")
    window = make_main_window()
    doc = window.document
    window.open_files([a, b, c])
    ids = [r.id for r in doc.recordings]
    doc.store.add_events(ev.make_events(_model_rows(2, 1)), ids[1])
    doc.set_recording(ids[1])
    assert len(doc.annotations) == 3
    panel = window.panels["recordings"]
    panel.setCurrentItem(panel.row_of(ids[1]))
    window.remove_selected_recordings()
    assert [r.name for r in doc.recordings] == ["a.wav", "c.wav"]
    assert doc.recording.name == "c.wav"  # the next one is shown, never a removed one
    assert panel.count() == 2
    assert len(doc.store.events()) == 0
    assert b.is_file()  # the audio file stays
    assert doc.history.undo_text == "Remove b.wav"
    doc.undo()
    assert [r.name for r in doc.recordings] == ["a.wav", "b.wav", "c.wav"]
    assert [r.id for r in doc.recordings] == ids
    assert len(doc.store.events(ids[1])) == 3
    doc.set_recording(ids[1])
    assert len(doc.annotations) == 3
    doc.redo()
    assert [r.name for r in doc.recordings] == ["a.wav", "c.wav"]
    assert doc.recording.name == "c.wav"


def test_undo_a_removal_after_opening_the_file_again(make_main_window, qtbot, tmp_path):
    """Found by the monkey: remove a recording, open its file again, add an event, then
    Ctrl+Z back to the start. The removal's undo was refused ("remove it first") and
    the history was stuck there; now the recording comes back with its events, the new
    event joins it, the window stays on that file, and every step undoes and redoes."""
    a, b = (_tone(tmp_path / f"{n}.wav") for n in "ab")
    window = make_main_window()
    doc = window.document
    window.open_files([a, b])
    first = doc.recordings[0].id
    doc.store.add_events(ev.make_events(_model_rows(2, 1)), first)
    doc.set_recording(first)
    doc.remove_recordings([first])
    window.open_files([a])  # the same file again: a new, empty recording
    assert doc.recording.name == "a.wav" and doc.recording.id != first
    doc.add_event(1.0, 1.5, "Knock")
    steps = len(doc.history.undo_texts)
    for _ in range(steps):
        window.undo()
    assert window.last_error is None and not doc.history.can_undo
    assert [r.id for r in doc.recordings][:1] == [first]
    assert doc.recording.id == first and doc.recording.name == "a.wav"
    assert len(doc.store.events(first)) == 3  # as before the removal (the Knock undone)
    for _ in range(steps):
        window.redo()
    assert window.last_error is None and not doc.history.can_redo
    assert first not in {r.id for r in doc.recordings}
    assert list(doc.annotations["label"]) == ["Knock"]


def test_the_state_column_follows_detection_review_and_undo(make_main_window, qtbot,
                                                            tmp_path):
    a, b = _tone(tmp_path / "a.wav"), _tone(tmp_path / "b.wav")
    window = make_main_window()
    doc = window.document
    window.open_files([a, b])
    panel = window.panels["recordings"]
    ida, idb = (r.id for r in doc.recordings)
    assert panel.state_of(ida) == "not detected"
    assert panel.state_of(idb) == "not detected"
    doc.store.add_events(ev.make_events(_model_rows(3)), idb)  # detection elsewhere
    qtbot.waitUntil(lambda: panel.state_of(idb) == "detected: 3 proposed")
    doc.set_recording(idb)
    doc.accept(doc.annotations["id"].tolist()[:2])
    qtbot.waitUntil(lambda: panel.state_of(idb) == "reviewed 2 of 3")
    doc.add_event(1.0, 1.5, "Speech")  # a person's event does not count as reviewed
    doc.reject(doc.annotations.query("status == 'proposed'")["id"].tolist())
    qtbot.waitUntil(lambda: panel.state_of(idb) == "reviewed 3 of 3")
    doc.undo()
    qtbot.waitUntil(lambda: panel.state_of(idb) == "reviewed 2 of 3")
    assert panel.state_of(ida) == "not detected"


def test_keyboard_in_the_recordings_list_loads_the_recording(make_main_window, qtbot,
                                                             tmp_path):
    files = [_tone(tmp_path / f"{n}.wav") for n in "abc"]
    window = make_main_window()
    doc = window.document
    window.open_files(files)
    assert doc.recording.name == "a.wav"
    panel = window.panels["recordings"]
    panel.setFocus()
    window.activateWindow()
    qtbot.waitUntil(lambda: panel.hasFocus())
    QTest.keyClick(panel, Qt.Key.Key_Down)
    assert doc.recording.name == "b.wav"
    QTest.keyClick(panel, Qt.Key.Key_End)
    assert doc.recording.name == "c.wav"
    QTest.keyClick(panel, Qt.Key.Key_Up)
    assert doc.recording.name == "b.wav"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the soundscape corpus is not here")
def test_a_moved_file_is_located_by_content(make_main_window, qtbot, tmp_path):
    here = tmp_path / "first"
    here.mkdir()
    src = shutil.copy(CORPUS / "dev_0001.flac", here / "dawn.flac")
    window = make_main_window()
    doc = window.document
    window.open_files([src])
    rec_id = doc.recording.id
    doc.add_event(1.0, 2.0, "Bird")
    moved = tmp_path / "moved" / "renamed"
    moved.mkdir(parents=True)
    shutil.move(src, moved / "dawn.flac")
    doc.set_recording(None)
    window.panels["recordings"].refresh_states()
    assert window.panels["recordings"].state_of(rec_id) == "missing"
    found = window.locate_recordings(tmp_path / "moved")
    assert found == {rec_id: moved / "dawn.flac"}
    assert window.panels["recordings"].state_of(rec_id) != "missing"
    doc.set_recording(rec_id)
    assert doc.recording.path == moved / "dawn.flac"
    assert len(doc.annotations) == 1
    assert "Found 1 moved recording" in window.statusBar().currentMessage()


def test_open_paths_sorts_projects_folders_and_audio(tmp_path):
    from app.opening import is_project, sort_paths

    project = _project_with(tmp_path)
    audio = _tone(tmp_path / "x.wav")
    found = sort_paths([project, tmp_path, audio, tmp_path / "new.panns"])
    assert found.projects == [project, tmp_path / "new.panns"]
    assert found.folders == [tmp_path]
    assert found.audio == [audio]
    assert is_project(project) and not is_project(audio)


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the soundscape corpus is not here")
def test_choosing_a_moved_recording_asks_where_it_went(make_main_window, qtbot, tmp_path):
    first = tmp_path / "first"
    first.mkdir()
    a = shutil.copy(CORPUS / "dev_0002.flac", first / "a.flac")
    b = shutil.copy(CORPUS / "dev_0003.flac", first / "b.flac")
    window = make_main_window()
    doc = window.document
    window.open_files([a, b])
    rec_a, rec_b = (r.id for r in doc.recordings)
    # added by their header; their content hashes are taken on a worker
    qtbot.waitUntil(lambda: window.hash_worker is None, timeout=20000)
    assert all(r.sha256 for r in doc.store.recordings())
    moved = tmp_path / "archive" / "2024"
    moved.mkdir(parents=True)
    shutil.move(b, moved / "b-renamed.flac")
    asked = []
    window.locate_prompt = lambda _w, rec: asked.append(rec.name)  # says no
    panel = window.panels["recordings"]
    panel.setCurrentItem(panel.row_of(rec_b))  # the keyboard or a click on b
    assert asked == ["b.flac"]
    assert doc.recording.id == rec_a  # no half view of a missing file
    assert panel.currentItem() is panel.row_of(rec_a)
    assert window.last_error is None and "missing" in window.statusBar().currentMessage()
    window.locate_prompt = lambda _w, rec: str(tmp_path / "archive")
    window.show_recording(rec_b)
    assert doc.recording.id == rec_b and doc.recording.path == moved / "b-renamed.flac"
    assert panel.state_of(rec_b) != "missing"
