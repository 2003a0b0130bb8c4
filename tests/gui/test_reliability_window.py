"""The window with other writers, copies and damaged files: a real `panns-sed`
process writing into the open project, the project open in two windows, a copy of the
.panns file alone after each operation, the Back up action, and damaged or
foreign-made files (message, Salvage button, no crash, file unchanged)."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from panns_core.annotations.store import ProjectStore

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def shown_equals_store(window) -> None:
    """What the window shows of the current recording is what the file holds."""
    doc = window.document
    with ProjectStore(doc.project_path, create=False) as other:
        stored = other.events(doc.recording.id).drop(columns=["recording_id"])
    cols = ["id", "onset", "offset", "label", "status"]
    pd.testing.assert_frame_equal(doc.annotations[cols].reset_index(drop=True),
                                  stored[cols].reset_index(drop=True))


def project_content(path: Path) -> tuple:
    with ProjectStore(path, create=False) as store:
        events = store.events().drop(columns=["recording"])
        return ([(r.id, r.path.name) for r in store.recordings()],
                [e.name for e in store.labels()],
                sorted(map(tuple, events.astype(str).to_numpy().tolist())))


@pytest.mark.slow
def test_cli_import_into_the_open_project_shows_up_and_is_never_undone(
        make_main_window, qtbot, tmp_path, demo_path):
    window = make_main_window()
    doc = window.document
    other = tmp_path / "other.flac"
    shutil.copyfile(demo_path, other)
    other_id = doc.open_file(other).id
    doc.open_file(demo_path)
    mine = doc.add_event(1.0, 2.0, "Speech")  # on the demo (Speech joins the vocabulary)
    doc.set_recording(other_id)
    kept = doc.add_event(0.5, 1.0, "Speech")  # on the other recording
    doc.set_recording(next(r.id for r in doc.recordings if r.path == demo_path))
    assert doc.history.undo_texts == ["Add Speech", "Add Speech"]
    labels = tmp_path / "outside.txt"
    labels.write_text("3.0\t4.0\tDog\n5.0\t5.5\tCar\n")
    done = subprocess.run(
        [sys.executable, "-m", "panns_core", "project", "import", str(doc.project_path),
         str(labels), "--recording", demo_path.name], capture_output=True, text=True,
        env=ENV, timeout=120)
    assert done.returncode == 0, done.stderr
    qtbot.waitUntil(lambda: set(doc.annotations["label"]) == {"Speech", "Dog", "Car"},
                    timeout=5000)
    shown_equals_store(window)
    # the step on the demo is gone (its undo would be made over the import); the one
    # on the other recording stays and undoes exactly
    assert doc.history.undo_texts == ["Add Speech"]
    assert "1 undo/redo step(s)" in window.statusBar().currentMessage()
    assert doc.undo()
    assert len(doc.annotations) == 3 and mine in set(doc.annotations["id"])
    with ProjectStore(doc.project_path, create=False) as store:
        assert kept not in set(store.events()["id"])
    assert not doc.undo()
    # editing goes on: a new edit and its undo touch only this window's work
    doc.relabel([mine], "Bird vocalization, bird call, bird song")
    assert doc.undo()
    assert set(doc.annotations["label"]) == {"Speech", "Dog", "Car"}
    shown_equals_store(window)


def test_two_windows_on_one_project(make_main_window, qtbot, tmp_path, demo_path):
    project = tmp_path / "shared.panns"
    first = make_main_window(project)
    first.document.open_file(demo_path)
    second = make_main_window(project)
    second.document.set_recording(first.document.recording.id)
    theirs = second.document.add_event(0.5, 1.5, "Dog")
    assert second.document.history.can_undo
    mine = first.document.add_event(2.0, 3.0, "Speech")
    qtbot.waitUntil(lambda: mine in set(second.document.annotations["id"]), timeout=5000)
    assert not second.document.history.can_undo
    assert not second.document.undo()  # "Add Dog" is gone from its history, nothing undone
    qtbot.waitUntil(lambda: theirs in set(first.document.annotations["id"]), timeout=5000)
    first.document.delete_events([theirs])  # first's own history: undoable, exact
    qtbot.waitUntil(lambda: theirs not in set(second.document.annotations["id"]),
                    timeout=5000)
    first.document.undo()  # first has not seen any write of second since: allowed
    qtbot.waitUntil(lambda: theirs in set(second.document.annotations["id"]), timeout=5000)
    for window in (first, second):
        shown_equals_store(window)
    # an undo racing a commit of the other window is refused, not applied blindly
    first.document.add_event(4.0, 4.5, "Car")
    second.document.add_event(5.0, 5.5, "Car")  # before first's timer has looked
    first.project_watch.timer.stop()
    assert not first.document.undo()
    assert len(first.document.annotations) == 4
    shown_equals_store(first)
    first.project_watch.timer.start()
    # a recording removed in one window: the other shows the next one
    other = tmp_path / "other.flac"
    shutil.copyfile(demo_path, other)
    other_id = first.document.add_recordings([other])[0]
    qtbot.waitUntil(lambda: len(second.document.recordings) == 2, timeout=5000)
    first.document.remove_recordings([second.document.recording.id])
    qtbot.waitUntil(lambda: second.document.recording is not None
                    and second.document.recording.id == other_id, timeout=5000)
    assert len(second.document.annotations) == 0
    with ProjectStore(project, create=False) as store:
        assert store.integrity_check() == "ok"


@pytest.mark.slow
def test_copy_of_the_file_alone_after_each_operation_holds_it(
        make_main_window, qtbot, tmp_path, demo_path):
    window = make_main_window()
    window.project_watch.idle_s = 0.05
    doc = window.document
    path = doc.project_path
    holder = ProjectStore(path)  # a second connection, so only checkpoints move commits
    copies = tmp_path / "copies"
    copies.mkdir()

    def check(step: str) -> None:
        qtbot.waitUntil(lambda: not doc.store.dirty, timeout=5000)
        copy = copies / f"{step}.panns"
        shutil.copyfile(path, copy)  # the .panns file alone, no -wal beside it
        assert project_content(copy) == project_content(path), step

    try:
        doc.open_file(demo_path)
        check("add recording")
        event = doc.add_event(1.0, 2.0, "Speech")
        check("add event")
        doc.relabel([event], "Dog")
        check("relabel")
        doc.apply_detection(pd.DataFrame({"onset": [3.0, 6.0], "offset": [4.0, 7.0],
                                          "label": ["Car", "Car"], "confidence": [0.9, 0.8],
                                          "source": ["test"] * 2, "status": ["proposed"] * 2,
                                          "recording": [str(demo_path)] * 2}))
        check("detection")
        doc.accept(list(doc.annotations["id"]))
        check("accept")
        doc.delete_events([event])
        check("delete")
        doc.undo()
        check("undo")
        doc.add_label("Wind")
        check("vocabulary")
        worker = window.backup_project(tmp_path / "menu-backup.panns")
        qtbot.waitUntil(lambda: window.project_worker is None, timeout=10000)
        assert worker is not None and window.last_error is None
        assert project_content(tmp_path / "menu-backup.panns") == project_content(path)
        assert "Backed up" in window.statusBar().currentMessage()
    finally:
        holder.close()
    window.close()
    copy = copies / "closed.panns"
    shutil.copyfile(path, copy)
    assert project_content(copy)[2] and project_content(copy) == project_content(path)


def _damaged_copy(tmp_path: Path, demo_path: Path) -> tuple[Path, tuple]:
    good = tmp_path / "good.panns"
    with ProjectStore(good) as store:
        rec = store.add_recording(demo_path)
        store.add_events([{"onset": i * 0.05, "offset": i * 0.05 + 0.5, "label": "Speech",
                           "note": "n" * 40} for i in range(1500)], rec)
    expected = project_content(good)
    bad = tmp_path / "bad.panns"
    data = bytearray(good.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    middle = len(data) // page // 2
    data[middle * page:(middle + 1) * page] = bytes(range(256)) * (page // 256)
    bad.write_bytes(bytes(data))
    return bad, expected


def test_damaged_project_at_start_offers_salvage(make_main_window, qtbot, tmp_path,
                                                 demo_path):
    bad, expected = _damaged_copy(tmp_path, demo_path)
    before = hashlib.sha256(bad.read_bytes()).hexdigest()
    window = make_main_window(bad)  # the window opens, showing the message
    assert window.document.store is None
    assert "is damaged" in window.last_error and "\n" not in window.last_error
    box = window.error_box
    assert box is not None and box.salvage_button is not None
    new = tmp_path / "saved.panns"
    window.salvage_prompt = lambda _window, damaged: str(new) if damaged == bad else None
    box.salvage_button.click()
    qtbot.waitUntil(lambda: window.document.project_path == new, timeout=10000)
    assert hashlib.sha256(bad.read_bytes()).hexdigest() == before
    recordings, _labels, events = project_content(new)
    assert recordings == expected[0]
    assert 1400 <= len(events) < 1500 and set(events) <= set(expected[2])
    assert "Salvaged" in window.statusBar().currentMessage()
    window.document.set_recording(recordings[0][0])
    window.document.add_event(1.0, 2.0, "Dog")  # the salvaged project works as any other


def test_foreign_or_newer_project_leaves_the_open_one(make_main_window, tmp_path):
    window = make_main_window()
    doc = window.document
    opened = doc.project_path
    hostile = tmp_path / "hostile.panns"
    ProjectStore(hostile).close()
    con = sqlite3.connect(hostile)
    con.execute("CREATE TRIGGER t AFTER INSERT ON labels BEGIN DELETE FROM labels; END")
    con.close()
    newer = tmp_path / "newer.panns"
    ProjectStore(newer).close()
    con = sqlite3.connect(newer)
    con.execute("PRAGMA user_version = 99")
    con.close()
    junk = tmp_path / "junk.panns"
    junk.write_bytes(b"\0" * 8192)
    for path, words in ((hostile, "did not make"), (newer, "newer version"),
                        (junk, "all zero")):
        before = path.read_bytes()
        window.guard(window.open_project, path)
        assert words in window.last_error
        assert path.read_bytes() == before
        assert doc.project_path == opened  # the open project stays open
    doc.add_label("Still working")
