"""Projects in real use: damaged and foreign-made files are refused read-only (bytes
unchanged) and can be salvaged; nothing a file brings along runs; copies taken with
`panns-sed project backup` or of the .panns file alone after a checkpoint hold every
commit; two connections never interleave into damage."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from panns_core.annotations.store import SCHEMA_VERSION, AddEvents, ProjectStore, relabel
from panns_core.annotations.store.salvage import salvage
from panns_core.errors import ProjectChangedError, ProjectFileError, StoreError

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
N_EVENTS = 6000


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The real `panns-sed` in a child process."""
    done = subprocess.run([sys.executable, "-m", "panns_core", *args], capture_output=True,
                          text=True, env=ENV, timeout=120)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def content(store: ProjectStore) -> tuple:
    """Everything a user sees of a project."""
    events = store.events().drop(columns=["recording"])
    return (
        [(r.id, str(r.path), r.duration) for r in store.recordings()],
        [(e.name, e.hotkey) for e in store.labels()],
        sorted(map(tuple, events.astype(str).to_numpy().tolist())),
        [(r["id"], r["status"]) for r in store.training_runs()],
    )


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """A project of 2 recordings and N_EVENTS events (labels of the DCASE corpus kind),
    its WAL checkpointed into the file."""
    folder = tmp_path_factory.mktemp("good")
    rng = np.random.default_rng(3)
    project = folder / "good.panns"
    with ProjectStore(project) as store:
        for name in ("park.wav", "street.wav"):
            sf.write(folder / name, rng.normal(0, 0.1, 16000).astype(np.float32), 16000)
            store.add_recording(folder / name)
        onsets = np.sort(rng.uniform(0, 9.5, N_EVENTS))
        labels = ["Speech", "Dog", "Car", "Bird vocalization, bird call, bird song"]
        store.apply(AddEvents.from_records(
            {"recording_id": 1 + i % 2, "onset": float(t), "offset": float(t) + 0.5,
             "label": labels[i % 4], "note": f"note {i}" * (1 + i % 3)}
            for i, t in enumerate(onsets)))
        for label in labels:
            store.add_label(label)
        run = store.start_training_run(base_model="arch:TinySED", params={"epochs": 1})
        store.finish_training_run(run, metrics={"f1": 0.5})
    assert not Path(f"{project}-wal").exists() or Path(f"{project}-wal").stat().st_size == 0
    return project


def copy_of(good: Path, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    shutil.copyfile(good, path)
    return path


def refused(path: Path, match: str, salvageable: bool) -> ProjectFileError:
    """Opening ``path`` fails with one clear line and leaves its bytes as they were."""
    before = digest(path)
    with pytest.raises(ProjectFileError, match=match) as caught:
        ProjectStore(path)
    assert digest(path) == before
    assert caught.value.salvageable is salvageable
    assert "\n" not in str(caught.value) and "Nothing was changed" in str(caught.value)
    # the CLI says the same in one line, exit code 1, and changes nothing either
    done = cli("project", "info", str(path), check=False)
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr and digest(path) == before
    return caught.value


@pytest.mark.slow
def test_not_sqlite_zeroed_and_newer_files_are_refused_unchanged(good, tmp_path):
    text = tmp_path / "notes.panns"
    text.write_text("onset,offset,label\n0,1,Speech\n" * 50)
    refused(text, "not an SQLite database", salvageable=False)
    zeroed = tmp_path / "zeroed.panns"
    zeroed.write_bytes(bytes(good.stat().st_size))
    refused(zeroed, "all zero", salvageable=False)
    with pytest.raises(ProjectFileError, match="Nothing can be salvaged"):
        salvage(zeroed, tmp_path / "none.panns")
    assert not (tmp_path / "none.panns").exists()
    newer = copy_of(good, tmp_path, "newer.panns")
    con = sqlite3.connect(newer)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    refused(newer, "newer version", salvageable=False)


@pytest.mark.slow
def test_truncated_file_is_refused_and_salvaged(good, tmp_path):
    truncated = copy_of(good, tmp_path, "cut.panns")
    size = truncated.stat().st_size
    with open(truncated, "r+b") as handle:
        handle.truncate(size * 3 // 4)
    refused(truncated, "damaged .*cut short", salvageable=True)
    before = digest(truncated)
    done = cli("project", "salvage", str(truncated), str(tmp_path / "saved.panns"))
    assert "Salvaged" in done.stdout and digest(truncated) == before
    with ProjectStore(tmp_path / "saved.panns", create=False) as saved, \
            ProjectStore(good, create=False) as original:
        assert saved.integrity_check() == "ok"
        got = saved.events()
        assert len(saved.recordings()) == 2
        # the pages before the cut come back (found page by page where the tree is cut),
        # each event exactly as it was (same id, same fields)
        assert len(got) >= N_EVENTS // 2
        merged = got.merge(original.events(), on="id", suffixes=("", "_orig"))
        assert len(merged) == len(got)
        for column in ("onset", "offset", "label", "note", "recording_id", "status"):
            assert (merged[column] == merged[f"{column}_orig"]).all()


def test_damaged_pages_lose_only_their_rows(good, tmp_path):
    damaged = copy_of(good, tmp_path, "damaged.panns")
    data = bytearray(damaged.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    pages = len(data) // page
    rng = np.random.default_rng(0)
    for number in (pages // 2, pages // 2 + 1, pages - 3):  # event leaves, not page 1
        data[number * page:(number + 1) * page] = rng.integers(0, 256, page, np.uint8).tobytes()
    damaged.write_bytes(bytes(data))
    refused(damaged, "damaged", salvageable=True)
    report = salvage(damaged, tmp_path / "saved.panns")
    with ProjectStore(tmp_path / "saved.panns", create=False) as saved, \
            ProjectStore(good, create=False) as original:
        assert saved.integrity_check() == "ok"
        assert content(saved)[0] == content(original)[0]  # recordings
        assert content(saved)[1] == content(original)[1]  # vocabulary
        got, full = saved.events(), original.events()
        # three damaged pages hold a few dozen rows each: the rest comes back
        assert N_EVENTS - 300 <= len(got) < N_EVENTS
        merged = got.merge(full, on="id", suffixes=("", "_orig"))
        assert len(merged) == len(got)
        for column in ("onset", "offset", "label", "note", "recording_id"):
            assert (merged[column] == merged[f"{column}_orig"]).all()
    assert report.copied["events"] == len(got)


HOSTILE = """
CREATE TABLE canary (what TEXT);
CREATE TRIGGER wipe AFTER INSERT ON events BEGIN
    DELETE FROM events; INSERT INTO canary VALUES ('trigger ran');
END;
CREATE TRIGGER on_read AFTER UPDATE ON labels BEGIN INSERT INTO canary VALUES ('ran'); END;
CREATE VIEW busy AS SELECT * FROM events;
"""


def test_foreign_schema_objects_never_run(good, tmp_path):
    hostile = copy_of(good, tmp_path, "hostile.panns")
    con = sqlite3.connect(hostile)
    con.executescript(HOSTILE)
    con.close()
    error = refused(hostile, "schema objects this program did not make.*trigger 'wipe'",
                    salvageable=True)
    assert "salvage" in str(error)
    report = salvage(hostile, tmp_path / "clean.panns")
    with ProjectStore(tmp_path / "clean.panns", create=False) as clean, \
            ProjectStore(good, create=False) as original:
        assert content(clean) == content(original)
        names = {row[0] for row in clean._query("SELECT name FROM sqlite_master")}
        assert not names & {"canary", "wipe", "on_read", "busy"}
        clean.apply(AddEvents.from_records([{"recording_id": 1, "onset": 0, "offset": 1,
                                             "label": "Speech"}]))
        assert len(clean.events()) == N_EVENTS + 1
    assert report.copied["events"] == N_EVENTS
    con = sqlite3.connect(hostile)
    assert con.execute("SELECT count(*) FROM canary").fetchone()[0] == 0
    con.close()


def test_a_trigger_added_while_open_is_refused_not_run(good, tmp_path):
    path = copy_of(good, tmp_path, "open.panns")
    store = ProjectStore(path)
    try:
        intruder = sqlite3.connect(path)
        intruder.executescript(HOSTILE)
        intruder.close()
        with pytest.raises(StoreError, match="not authorized"):
            store.apply(AddEvents.from_records([{"recording_id": 1, "onset": 0, "offset": 1,
                                                 "label": "Speech"}]))
        with pytest.raises(StoreError, match="prohibited"):  # the view's reads are denied
            store._query("SELECT count(*) FROM busy")
        with pytest.raises(StoreError):
            store._query("PRAGMA writable_schema = ON")
        assert len(store.events()) == N_EVENTS
        assert store._query("SELECT count(*) FROM canary") == [(0,)]
    finally:
        store.close()


def test_copy_of_the_file_alone_after_a_checkpoint_holds_every_commit(good, tmp_path):
    path = copy_of(good, tmp_path, "live.panns")
    store = ProjectStore(path)
    other = ProjectStore(path)  # keeps the WAL alive, as an open window does
    try:
        for step in range(3):
            undo = store.apply(relabel([1 + step], f"edited {step}"))
            assert store.dirty
            plain = tmp_path / f"plain{step}.panns"
            shutil.copyfile(path, plain)  # the .panns alone: the commit is in the WAL
            with ProjectStore(plain, create=False) as copy:
                assert copy.event(1 + step)["label"] != f"edited {step}"
            assert store.checkpoint() and not store.dirty
            shutil.copyfile(path, plain.with_suffix(".ok"))
            with ProjectStore(plain.with_suffix(".ok"), create=False) as copy:
                assert content(copy) == content(store)
            store.apply(undo)
            store.apply(relabel([1 + step], f"edited {step}"))
    finally:
        other.close()
        store.close()


@pytest.mark.slow
def test_backup_while_another_process_writes(good, tmp_path):
    path = copy_of(good, tmp_path, "busy.panns")
    holder = ProjectStore(path)  # the "window": commits only in its WAL
    holder.apply(relabel([5], "from the window"))
    done = cli("project", "backup", str(path), str(tmp_path / "bk.panns"))
    assert "backed up" in done.stdout
    with ProjectStore(tmp_path / "bk.panns", create=False) as copy:
        assert content(copy) == content(holder)
    assert cli("project", "backup", str(path), str(tmp_path / "bk.panns"),
               check=False).returncode == 1  # exists: not overwritten silently
    folder = tmp_path / "backups"
    folder.mkdir()
    assert holder.backup(folder) == folder / "busy.panns"
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no leftovers
    with pytest.raises(StoreError, match="project itself"):
        holder.backup(path, overwrite=True)
    holder.close()


WRITER = """
import sys
from panns_core.annotations.store import AddEvents, ProjectStore
store = ProjectStore(sys.argv[1], create=False, timeout=30)
for i in range(150):
    store.apply(AddEvents.from_records([{"recording_id": 2, "onset": i * 0.01,
        "offset": i * 0.01 + 0.2, "label": "child", "note": str(i)}]))
store.close()
"""


@pytest.mark.slow
def test_two_processes_writing_at_once_keep_everything(good, tmp_path):
    path = copy_of(good, tmp_path, "two.panns")
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env=ENV,
                             stderr=subprocess.PIPE, text=True)
    store = ProjectStore(path, timeout=30)
    for i in range(150):
        store.apply(AddEvents.from_records([{"recording_id": 1, "onset": i * 0.01,
                                             "offset": i * 0.01 + 0.2, "label": "parent",
                                             "note": str(i)}]))
        if i % 10 == 0:
            store.take_outside()
            store.checkpoint()
    assert child.wait(timeout=120) == 0, child.stderr.read()
    events = store.events()
    assert sorted(events[events["label"] == "child"]["note"].astype(int)) == list(range(150))
    assert sorted(events[events["label"] == "parent"]["note"].astype(int)) == list(range(150))
    assert store.integrity_check() == "ok"


def test_undo_is_refused_where_another_writer_changed_the_same_recording(good, tmp_path):
    path = copy_of(good, tmp_path, "undo.panns")
    store = ProjectStore(path)
    one = {"onset": 0.0, "offset": 1.0, "label": "Speech"}
    on_two = store.apply_tracked(AddEvents.from_records([{**one, "recording_id": 2}]))
    on_one = store.apply_tracked(AddEvents.from_records([{**one, "recording_id": 1}]))
    assert on_two[1].recordings == {2} and not on_two[1].vocabulary
    with ProjectStore(path) as other:  # another writer, into recording 2 only
        other.apply(relabel([int(other.events(2)["id"].iloc[0])], "theirs"))
    undo, footprint, seq = on_two
    with pytest.raises(ProjectChangedError):  # checked inside the write transaction
        store.apply_tracked(undo, guard=footprint, since=seq)
    assert len(store.events(2)) == N_EVENTS // 2 + 1
    undo, footprint, seq = on_one  # recording 1: untouched by the other writer
    store.apply_tracked(undo, guard=footprint, since=seq)
    assert len(store.events(1)) == N_EVENTS // 2
    (taken_seq, taken), = store.take_outside()
    assert taken.recordings == {2} and not taken.vocabulary and taken_seq > seq - 1
    assert store.take_outside() == []
    # a training run's row (what `panns-sed train --project` writes) touches no step
    again = store.apply_tracked(relabel([3], "mine"))
    with ProjectStore(path) as other:
        other.start_training_run(base_model="arch:TinySED", params={})
        other.add_label("Wind")
    undo, footprint, seq = again
    store.apply_tracked(undo, guard=footprint, since=seq)
    (_seq, taken), = store.take_outside()
    assert taken.vocabulary and not taken.recordings and not taken.listing
    store.close()


def test_a_writer_waits_then_says_the_project_is_busy(good, tmp_path):
    path = copy_of(good, tmp_path, "locked.panns")
    store = ProjectStore(path, timeout=0.3)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another program in the middle of a write
    try:
        with pytest.raises(StoreError, match="busy: another program"):
            store.apply(relabel([1], "waits"))
        assert store.event(1)["label"] != "waits"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.apply(relabel([1], "waits"))  # once it is done, the write goes through
    assert store.event(1)["label"] == "waits"
    store.close()


@pytest.mark.skipif(not hasattr(sqlite3.Connection, "setconfig"),
                    reason="Python < 3.12 cannot set SQLite's defensive mode; the authorizer "
                           "and trusted_schema=OFF guard the file there")  # fmt: skip
def test_defensive_mode_is_on_where_python_can_set_it(good):
    """Python 3.12+: SQLITE_DBCONFIG_DEFENSIVE is set on the project's connection, and it
    acts (it refuses to turn the journal off, which would make a crash corrupt the file)."""
    with ProjectStore(good, create=False) as store:
        con = store._con
        assert con.getconfig(sqlite3.SQLITE_DBCONFIG_DEFENSIVE)
        before = con.execute("PRAGMA journal_mode").fetchone()[0]
        assert con.execute("PRAGMA journal_mode = OFF").fetchone()[0] == before != "off"
