"""The project store: one SQLite file holding recordings, vocabulary, events, models,
training runs and cached score files.

Every write is its own committed transaction (WAL journal, synchronous=FULL), so a
crash or kill loses nothing that a call had returned from. Event edits go through
:meth:`ProjectStore.apply` with the operations of :mod:`panns_core.annotations.store.ops`, which
return their exact inverse for undo/redo.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...audio import audio_info, file_sha256
from ...errors import Cancelled, ProjectChangedError, StoreError
from ...events import EVENT_COLUMNS, HUMAN, PROPOSED, STATUSES, make_events
from . import checks
from .ops import AddEvents, Change, Operation, ReplaceProposed
from .schema import SCHEMA_VERSION, migrate
from .writers import Footprint, OutsideWatch

EVENT_FRAME_COLUMNS = ("id", "recording_id", *EVENT_COLUMNS)
_FLOAT_COLUMNS = ("onset", "offset", "confidence", "low_freq", "high_freq", "created", "modified")


@dataclass(frozen=True)
class Recording:
    id: int
    path: Path
    size: int | None
    sha256: str | None
    duration: float | None
    sample_rate: int | None
    channels: int | None
    added: float
    note: str

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def exists(self) -> bool:
        return self.path.is_file()


@dataclass(frozen=True)
class LabelEntry:
    id: int
    name: str
    mid: str | None
    colour: str | None
    hotkey: str | None
    position: int


_RECORDING_SQL = (
    "SELECT id, path, size, sha256, duration, sample_rate, channels, added, note FROM recordings"
)
_LABEL_SQL = "SELECT id, name, mid, colour, hotkey, position FROM labels"


def _recording(row: tuple) -> Recording:
    return Recording(row[0], Path(row[1]), *row[2:])


class ProjectStore:
    """A project file (or ``":memory:"``). Thread-safe: calls are serialised by a lock.

    ``create=False`` refuses to make a new file when ``path`` does not exist.
    """

    def __init__(self, path: str | os.PathLike = ":memory:", *, create: bool = True,
                 timeout: float = 10.0) -> None:
        self.path = str(path) if str(path) == ":memory:" else Path(path)
        name = str(self.path)
        memory = name == ":memory:"
        if not memory and not create and not Path(name).exists():
            raise StoreError(
                f"No project at {name}. Create one with `panns-sed project create {name}`."
            )
        recheck = False
        if not memory and Path(name).is_file() and Path(name).stat().st_size > 0:
            try:  # read-only: a file that fails is left exactly as it was
                checks.check_file(Path(name), timeout)
            except checks._Recheck:
                recheck = True
        try:
            self._con = sqlite3.connect(
                name, isolation_level=None, check_same_thread=False, timeout=timeout
            )
        except sqlite3.Error as error:
            raise StoreError(f"Cannot open the project {name}: {error}.") from None
        self._lock = threading.RLock()
        self._depth = 0
        self._listeners: list[Callable[[Change], None]] = []
        self._dirty = False  # committed since the last complete checkpoint
        self._owned = False  # this transaction's fingerprints are taken already
        self.last_write = time.monotonic()  # of the newest commit seen (ours or another's)
        try:
            checks.harden(self._con)
            if recheck:
                with open(name, "rb") as handle:
                    checks.inspect(self._con, name, Path(name).stat().st_size, handle.read(100))
            self._con.execute("PRAGMA foreign_keys = ON")
            self._con.execute("PRAGMA journal_mode = WAL").fetchone()
            self._con.execute("PRAGMA synchronous = FULL")
            self.migrated_from = migrate(self._con, name)
            self._watch = OutsideWatch(self._con)
        except sqlite3.DatabaseError as error:
            self._con.close()
            if getattr(error, "sqlite_errorname", "").startswith(("SQLITE_BUSY",
                                                                   "SQLITE_LOCKED")):
                raise checks.busy(name) from None
            raise StoreError(
                f"{name} is not a project file or is damaged ({error}). Open another file, "
                "or restore it from a backup."
            ) from None
        except StoreError:
            self._con.close()
            raise

    # -- connection -------------------------------------------------------------------
    def close(self) -> None:
        """Checkpoint (so the .panns file alone holds every commit) and close."""
        with self._lock:
            with suppress(StoreError):  # closing the last connection checkpoints too
                self.checkpoint()
            self._con.close()

    def __enter__(self) -> ProjectStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return self._query_one("PRAGMA user_version")[0]

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit: BEGIN IMMEDIATE at the top, SAVEPOINT when nested."""
        with self._lock:
            savepoint = f"sp{self._depth}"
            try:
                self._con.execute("BEGIN IMMEDIATE" if self._depth == 0
                                  else f"SAVEPOINT {savepoint}")
            except sqlite3.OperationalError as error:
                if "locked" in str(error) or "busy" in str(error):
                    raise checks.busy(str(self.path)) from None
                raise StoreError(f"Could not write to {self.path}: {error}.") from None
            self._depth += 1
            try:
                if self._depth == 1:
                    self._look()  # another program's commits: noted before ours
                    self._owned = False
                yield self._con
                if self._depth == 1 and not self._owned:
                    self._watch.own()  # vocabulary and list as this write leaves them
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._con.execute("ROLLBACK")
                else:
                    self._con.execute(f"ROLLBACK TO {savepoint}")
                    self._con.execute(f"RELEASE {savepoint}")
                raise
            self._depth -= 1
            try:
                self._con.execute("COMMIT" if self._depth == 0 else f"RELEASE {savepoint}")
            except sqlite3.Error as error:
                if self._depth == 0:
                    self._con.execute("ROLLBACK")
                raise StoreError(f"Could not save to {self.path}: {error}.") from None
            if self._depth == 0:
                self._dirty = True
                self.last_write = time.monotonic()

    # -- other writers, checkpoints, copies ----------------------------------------------
    def _data_version(self) -> int:
        return self._con.execute("PRAGMA data_version").fetchone()[0]

    def _look(self) -> None:
        """Note other connections' commits (lock held, inside a transaction)."""
        if self._watch.look():
            self._dirty = True  # their commits may still be only in the WAL
            self.last_write = time.monotonic()

    def take_outside(self) -> list[tuple[int, Footprint]]:
        """What other connections (a second window, ``panns-sed``) committed since the
        last call, as (sequence number, :class:`Footprint`) pairs; cheap enough to poll
        (``PRAGMA data_version``). Empty while this store is busy."""
        if str(self.path) == ":memory:" or not self._lock.acquire(blocking=False):
            return []
        try:
            if self._depth == 0:
                self._con.execute("BEGIN")  # one snapshot for all fingerprints
                try:
                    self._look()
                finally:
                    self._con.execute("COMMIT")
            return self._watch.take()
        except sqlite3.Error:
            return []
        finally:
            self._lock.release()

    def changed_outside(self) -> bool:
        """True once after another connection committed (see :meth:`take_outside`)."""
        return bool(self.take_outside())

    @property
    def dirty(self) -> bool:
        """Commits may sit in the WAL only (a copy of the .panns file alone would miss
        them) until :meth:`checkpoint` returns True."""
        return self._dirty

    def checkpoint(self) -> bool:
        """Copy the WAL's commits into the .panns file without waiting for anyone
        (``wal_checkpoint(PASSIVE)``); True when the file alone now holds them all."""
        if str(self.path) == ":memory:":
            return True
        with self._lock:
            if self._depth:
                return False
            try:
                busy, log, done = self._con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as error:
                raise StoreError(f"Could not checkpoint {self.path}: {error}.") from None
            complete = not busy and (log == -1 or done == log)
            if complete:
                self._dirty = False
            return complete

    def backup(self, dest: str | os.PathLike, *, overwrite: bool = False,
               progress: Callable[[float], None] | None = None, cancel=None) -> Path:
        """A consistent copy of the whole project (SQLite's backup API: every commit,
        the WAL's too), checked and then moved into place; returns its path. ``dest``
        may be a folder (the copy gets this project's file name)."""
        if str(self.path) == ":memory:":
            raise StoreError("This project is only in memory; there is no file to back up.")
        dest = Path(dest).expanduser()
        if dest.is_dir():
            dest = dest / Path(self.path).name
        if dest.exists() and dest.resolve() == Path(self.path).resolve():
            raise StoreError(f"{dest} is the project itself; choose another name for the "
                             "backup.")
        if dest.exists() and not overwrite:
            raise StoreError(f"{dest} exists already; choose another name (or overwrite).")
        if not dest.parent.is_dir():
            raise StoreError(f"{dest.parent} is not a folder; choose where the backup goes.")
        part = dest.with_name(f".{dest.name}.{os.getpid()}.part")

        def step(_status: int, remaining: int, total: int) -> None:
            if cancel is not None and cancel.is_set():
                raise Cancelled("Backup cancelled; nothing was written.")
            if progress is not None and total:
                progress(1.0 - remaining / total)

        target = None
        try:
            target = sqlite3.connect(part)
            with self._lock:
                self._con.backup(target, pages=512, progress=step)
            problems = [row[0] for row in target.execute("PRAGMA integrity_check(5)")]
            if problems != ["ok"]:
                raise StoreError(f"The backup of {self.path} did not pass its check "
                                 f"({'; '.join(problems)}); nothing was written.")
            target.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            target.close()
            target = None
            with open(part, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(part, dest)
        except sqlite3.Error as error:
            raise StoreError(f"Could not back up {self.path} to {dest}: {error}.") from None
        finally:
            if target is not None:
                target.close()
            for leftover in (part, Path(f"{part}-wal"), Path(f"{part}-shm"),
                             Path(f"{part}-journal")):
                leftover.unlink(missing_ok=True)
        return dest

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._con.execute(sql, tuple(params)).fetchall()
            except sqlite3.Error as error:
                raise StoreError(f"Reading {self.path} failed: {error}.") from None

    def _query_one(self, sql: str, params: Iterable[Any] = ()) -> tuple | None:
        rows = self._query(sql, params)
        return rows[0] if rows else None

    def _write(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        with self.transaction() as con:
            try:
                return con.execute(sql, tuple(params))
            except sqlite3.Error as error:
                raise StoreError(f"Not saved: {error}.") from None

    def integrity_check(self) -> str:
        return self._query_one("PRAGMA integrity_check")[0]

    # -- edits with undo ----------------------------------------------------------------
    def apply(self, op: Operation) -> Operation:
        """Run ``op`` in one committed transaction; return the operation that undoes it."""
        return self.apply_tracked(op)[0]

    def apply_tracked(self, op: Operation, *, guard: Footprint | None = None, since: int = 0
                      ) -> tuple[Operation, Footprint, int]:
        """:meth:`apply`, also returning what ``op`` touched and the sequence number of
        the newest outside change seen (undo entries keep both).

        ``guard`` (undo/redo: the entry's footprint): raise ProjectChangedError instead
        when another connection's commit after ``since``, not yet taken by
        :meth:`take_outside`, touched it; checked inside the write transaction, so no
        commit can slip in between."""
        with self._lock:
            with self.transaction() as con:
                if guard is not None and self._watch.conflict(guard, since):
                    raise ProjectChangedError(
                        f"{self.path} was changed by another program (a second window or "
                        "panns-sed) where this undo/redo would change it; nothing was "
                        "undone or redone.")
                try:
                    inverse, change = op._run(con)
                except sqlite3.Error as error:  # constraints; a refused foreign trigger
                    raise StoreError(f"The edit was not saved: {error}.") from None
                footprint = self._watch.own(change.recordings | change.listed)
                seq = self._watch.seq
                self._owned = self._depth == 1
            listeners = list(self._listeners)
        for listener in listeners:
            listener(change)
        return inverse, footprint, seq

    def subscribe(self, listener: Callable[[Change], None]) -> Callable[[], None]:
        """Call ``listener(change)`` after every applied operation; returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    # -- recordings ---------------------------------------------------------------------
    def add_recording(self, path: str | os.PathLike, *, hash: bool = True) -> int:
        """Add an audio file (absolute path, size, sha256, duration, rate, channels).

        Adding a path already in the project returns its id.
        """
        path = Path(path).expanduser().resolve()
        existing = self._query_one("SELECT id FROM recordings WHERE path = ?", (str(path),))
        if existing:
            return existing[0]
        if not path.is_file():
            raise StoreError(f"{path} is not a file. Check the path and add it again.")
        facts = audio_info(path)
        digest = file_sha256(path) if hash else None
        cursor = self._write(
            "INSERT INTO recordings (path, size, sha256, duration, sample_rate, channels, added)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (str(path), path.stat().st_size, digest, float(facts.duration),
             int(facts.sample_rate), int(facts.channels), time.time()),
        )
        return cursor.lastrowid

    def set_recording_hash(self, recording: int | str | os.PathLike, sha256: str) -> None:
        """Record a recording's content hash when it has none yet (the window adds files
        by their header and hashes them later on a worker, for :meth:`relocate`)."""
        self._write("UPDATE recordings SET sha256 = ? WHERE id = ? AND sha256 IS NULL",
                    (sha256, self.recording_id(recording)))

    def recordings(self) -> list[Recording]:
        return [_recording(r) for r in self._query(_RECORDING_SQL + " ORDER BY id")]

    def recording(self, key: int | str | os.PathLike) -> Recording:
        row = self._query_one(_RECORDING_SQL + " WHERE id = ?", (self.recording_id(key),))
        return _recording(row)

    def recording_id(self, key: int | str | os.PathLike) -> int:
        """The id of a recording given its id, path, file name or file stem."""
        is_id = isinstance(key, int) or (isinstance(key, str) and key.isdigit())
        if is_id and self._query_one("SELECT 1 FROM recordings WHERE id = ?", (int(key),)):
            return int(key)
        text = str(key)
        row = self._query_one("SELECT id FROM recordings WHERE path = ?", (text,))
        if row is None and text:
            resolved = str(Path(text).expanduser().resolve())
            row = self._query_one("SELECT id FROM recordings WHERE path = ?", (resolved,))
        if row:
            return row[0]
        name = Path(text).name
        matches = [r for r in self.recordings() if name and name in (r.path.name, r.path.stem)]
        if len(matches) == 1:
            return matches[0].id
        if len(matches) > 1:
            raise StoreError(
                f"{text!r} matches {len(matches)} recordings "
                f"({', '.join(str(m.path) for m in matches[:3])}); give the full path or id."
            )
        raise StoreError(
            f"No recording {text!r} in {self.path}. Add it first (`panns-sed project add`)."
        )

    def remove_recording(self, key: int | str | os.PathLike) -> None:
        """Remove a recording and its events and cached scores (no undo)."""
        self._write("DELETE FROM recordings WHERE id = ?", (self.recording_id(key),))

    def missing_recordings(self) -> list[Recording]:
        return [r for r in self.recordings() if not r.exists]

    def relocate(self, folder: str | os.PathLike) -> dict[int, Path]:
        """Find missing recordings under ``folder`` by content hash; update their paths.

        Only files whose size matches a missing recording are hashed. A recording added
        without a hash (the window adds files by their header only) is found by file
        name and size. Returns {recording id: new path}.
        """
        folder = Path(folder).expanduser().resolve()
        if not folder.is_dir():
            raise StoreError(f"{folder} is not a folder.")
        wanted: dict[int, list[Recording]] = {}
        for rec in self.missing_recordings():
            if rec.size is not None:
                wanted.setdefault(rec.size, []).append(rec)
        found: dict[int, Path] = {}
        for root, _dirs, files in os.walk(folder):
            for file in files:
                candidate = Path(root) / file
                try:
                    size = candidate.stat().st_size
                except OSError:
                    continue
                pending = [r for r in wanted.get(size, []) if r.id not in found
                           and (r.sha256 or r.path.name == candidate.name)]
                if not pending:
                    continue
                digest = file_sha256(candidate) if any(r.sha256 for r in pending) else None
                for rec in pending:
                    if (rec.sha256 and rec.sha256 == digest) or (
                            not rec.sha256 and rec.path.name == file):
                        found[rec.id] = candidate
                        break
        if found:
            with self.transaction() as con:
                for rec_id, new_path in found.items():
                    try:
                        con.execute("UPDATE recordings SET path = ? WHERE id = ?",
                                    (str(new_path), rec_id))
                    except sqlite3.IntegrityError:
                        raise StoreError(
                            f"{new_path} is already in the project as another recording."
                        ) from None
        return found

    # -- label vocabulary ---------------------------------------------------------------
    def add_label(self, name: str, *, mid: str | None = None, colour: str | None = None,
                  hotkey: str | None = None) -> LabelEntry:
        """Add a label to the vocabulary (the AudioSet mid is filled in for AudioSet names)."""
        if not name:
            raise StoreError("A label needs a name.")
        if mid is None:
            mid = _audioset_mid(name)
        position = self._query_one("SELECT coalesce(max(position) + 1, 0) FROM labels")[0]
        try:
            self._write(
                "INSERT INTO labels (name, mid, colour, hotkey, position) VALUES (?, ?, ?, ?, ?)",
                (name, mid, colour, hotkey, position),
            )
        except StoreError:
            raise StoreError(
                f"The label {name!r} or the hotkey {hotkey!r} is already in the vocabulary."
            ) from None
        return self.label(name)

    def ensure_labels(self, names: Iterable[str]) -> None:
        """Add the names not yet in the vocabulary."""
        have = {entry.name for entry in self.labels()}
        for name in dict.fromkeys(names):
            if name and name not in have:
                self.add_label(name)

    def update_label(self, name: str, /, **fields: Any) -> LabelEntry:
        """Change name, mid, colour, hotkey or position of a vocabulary entry.

        Renaming does not relabel events; apply ops.relabel for that (undoable).
        """
        allowed = {"name", "mid", "colour", "hotkey", "position"}
        unknown = set(fields) - allowed
        if unknown:
            raise StoreError(f"Label fields are {sorted(allowed)}, not {sorted(unknown)}.")
        entry = self.label(name)
        if fields:
            sets = ", ".join(f"{k} = ?" for k in fields)
            self._write(f"UPDATE labels SET {sets} WHERE id = ?", (*fields.values(), entry.id))
        return self.label(fields.get("name", name))

    def remove_label(self, name: str) -> None:
        self._write("DELETE FROM labels WHERE id = ?", (self.label(name).id,))

    def label(self, name: str) -> LabelEntry:
        row = self._query_one(_LABEL_SQL + " WHERE name = ?", (name,))
        if row is None:
            raise StoreError(f"{name!r} is not in the label vocabulary.")
        return LabelEntry(*row)

    def labels(self) -> list[LabelEntry]:
        return [LabelEntry(*r) for r in self._query(_LABEL_SQL + " ORDER BY position, id")]

    # -- events -------------------------------------------------------------------------
    def make_add_events(self, events: pd.DataFrame | Iterable[Mapping[str, Any]],
                        recording: int | str | os.PathLike | None = None) -> AddEvents:
        """An AddEvents op for an events frame (events.py schema; ``recording`` column
        resolved by id/path/name, or all given to ``recording``)."""
        frame = events if isinstance(events, pd.DataFrame) else pd.DataFrame(list(events))
        if not len(frame):
            return AddEvents(())
        frame = make_events(frame)
        if recording is not None:
            rec_ids = [self.recording_id(recording)] * len(frame)
        else:
            cache: dict[str, int] = {}
            rec_ids = []
            for key in frame["recording"].astype(str):
                if key not in cache:
                    cache[key] = self.recording_id(key)
                rec_ids.append(cache[key])
        _check_times(frame)
        columns = {
            "id": [None] * len(frame),
            "recording_id": rec_ids,
            **{c: _column(frame[c]) for c in EVENT_COLUMNS if c != "recording"},
        }
        from .ops import ROW_FIELDS

        return AddEvents(tuple(zip(*(columns[f] for f in ROW_FIELDS))))

    def add_events(self, events: pd.DataFrame | Iterable[Mapping[str, Any]],
                   recording: int | str | os.PathLike | None = None) -> list[int]:
        """Insert events in one transaction; returns their new ids (no undo record)."""
        inverse = self.apply(self.make_add_events(events, recording))
        return list(inverse.ids)  # type: ignore[attr-defined]

    def make_replace_proposed(self, recording: int | str | os.PathLike, events: pd.DataFrame,
                              source: str | None = None) -> ReplaceProposed:
        """A ReplaceProposed op (a detection run's new proposals for one recording)."""
        rec_id = self.recording_id(recording)
        add = self.make_add_events(events, rec_id)
        return ReplaceProposed(rec_id, add.rows, source)

    def events(self, recording: int | str | os.PathLike | None = None, *,
               start: float | None = None, end: float | None = None,
               labels: Iterable[str] | None = None, statuses: Iterable[str] | None = None,
               ids: Iterable[int] | None = None) -> pd.DataFrame:
        """Events as a frame: ``id``, ``recording_id`` and the events.py columns
        (``recording`` is the file path), ordered by recording and onset.

        ``start``/``end`` keep events overlapping that window (edges included).
        """
        where: list[str] = []
        params: list[Any] = []
        if recording is not None:
            where.append("e.recording_id = ?")
            params.append(self.recording_id(recording))
        if start is not None:
            where.append('e."offset" >= ?')
            params.append(float(start))
        if end is not None:
            where.append("e.onset <= ?")
            params.append(float(end))
        for column, values in (("label", labels), ("status", statuses), ("id", ids)):
            if values is not None:
                where.append(f"e.{column} IN (SELECT value FROM json_each(?))")
                params.append(json.dumps([int(v) if column == "id" else str(v) for v in values]))
        sql = (
            'SELECT e.id, e.recording_id, r.path, e.onset, e."offset", e.label, e.confidence, '
            "e.low_freq, e.high_freq, e.source, e.status, e.note, e.created, e.modified "
            "FROM events e JOIN recordings r ON r.id = e.recording_id"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY e.recording_id, e.onset, e.id"
        rows = self._query(sql, params)
        columns = list(zip(*rows)) if rows else [()] * len(EVENT_FRAME_COLUMNS)
        data = {}
        for name, values in zip(EVENT_FRAME_COLUMNS, columns):
            if name in _FLOAT_COLUMNS:
                data[name] = np.array(values, dtype=np.float64)  # NULL -> NaN
            elif name in ("id", "recording_id"):
                data[name] = np.array(values, dtype=np.int64)
            else:
                data[name] = np.array(values, dtype=object)
        return pd.DataFrame(data, copy=False)

    def event(self, event_id: int) -> dict[str, Any]:
        frame = self.events(ids=[event_id])
        if not len(frame):
            raise StoreError(f"No event with id {event_id} in this project.")
        return frame.iloc[0].to_dict()

    def count_events(self, recording: int | str | os.PathLike | None = None) -> dict[str, int]:
        """{status: number of events} (every status present, zeros included)."""
        sql = "SELECT status, count(*) FROM events"
        params: tuple = ()
        if recording is not None:
            sql += " WHERE recording_id = ?"
            params = (self.recording_id(recording),)
        counts = dict.fromkeys(STATUSES, 0)
        counts.update(dict(self._query(sql + " GROUP BY status", params)))
        return counts

    def recording_states(self) -> dict[int, dict[str, int]]:
        """Per recording: ``model`` (events a model proposed, whatever their status now),
        ``decided`` (of those, no longer proposed), ``human`` (events a person added) and
        ``scored`` (1 when scores of a detection run are cached). One query each."""
        states = {r[0]: {"model": 0, "decided": 0, "human": 0, "scored": 0}
                  for r in self._query("SELECT id FROM recordings")}
        for rec_id, model, decided, human in self._query(
            "SELECT recording_id, sum(source != ?), sum(source != ? AND status != ?), "
            "sum(source = ?) FROM events GROUP BY recording_id",
            (HUMAN, HUMAN, PROPOSED, HUMAN),
        ):
            states[rec_id].update(model=model, decided=decided, human=human)
        for (rec_id,) in self._query("SELECT DISTINCT recording_id FROM score_cache"):
            states[rec_id]["scored"] = 1
        return states

    # -- models, training runs, cached scores -------------------------------------------
    def models(self) -> list[dict[str, Any]]:
        """The models recorded in this project's ``models`` table (projects written by
        earlier versions may hold rows; nothing adds any now)."""
        rows = self._query(
            "SELECT id, path, sha256, architecture, labels, metadata, added FROM models "
            "ORDER BY added"
        )
        return [
            {"id": r[0], "path": r[1], "sha256": r[2], "architecture": r[3],
             "labels": None if r[4] is None else json.loads(r[4]),
             "metadata": None if r[5] is None else json.loads(r[5]), "added": r[6]}
            for r in rows
        ]

    def start_training_run(self, *, base_model: str | None, params: Mapping[str, Any],
                           note: str = "") -> int:
        cursor = self._write(
            "INSERT INTO training_runs (started, base_model, params, note) VALUES (?, ?, ?, ?)",
            (time.time(), base_model, json.dumps(dict(params)), note),
        )
        return cursor.lastrowid

    def finish_training_run(self, run_id: int, *, status: str = "finished",
                            output_model: str | None = None,
                            metrics: Mapping[str, Any] | None = None) -> None:
        cursor = self._write(
            "UPDATE training_runs SET finished = ?, status = ?, output_model = ?, metrics = ? "
            "WHERE id = ?",
            (time.time(), status, output_model,
             None if metrics is None else json.dumps(dict(metrics)), run_id),
        )
        if cursor.rowcount != 1:
            raise StoreError(f"No training run {run_id} in this project.")

    def training_runs(self) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT id, started, finished, status, base_model, output_model, params, metrics, "
            "note FROM training_runs ORDER BY id"
        )
        keys = ("id", "started", "finished", "status", "base_model", "output_model", "params",
                "metrics", "note")
        result = []
        for row in rows:
            entry = dict(zip(keys, row))
            for key in ("params", "metrics"):
                entry[key] = None if entry[key] is None else json.loads(entry[key])
            result.append(entry)
        return result

    def cache_scores(self, recording: int | str | os.PathLike, model_id: str,
                     path: str | os.PathLike, audio_hash: str | None = None) -> None:
        """Remember where the scores of ``recording`` under ``model_id`` are saved."""
        self._write(
            "INSERT OR REPLACE INTO score_cache (recording_id, model_id, path, audio_hash, "
            "created) VALUES (?, ?, ?, ?, ?)",
            (self.recording_id(recording), model_id, str(path), audio_hash, time.time()),
        )

    def cached_scores(self, recording: int | str | os.PathLike, model_id: str) -> Path | None:
        """The cached score file, or None when absent, gone, or the audio changed."""
        rec = self.recording(recording)
        row = self._query_one(
            "SELECT path, audio_hash FROM score_cache WHERE recording_id = ? AND model_id = ?",
            (rec.id, model_id),
        )
        if row is None or not Path(row[0]).is_file():
            return None
        if row[1] and rec.sha256 and row[1] != rec.sha256:
            return None
        return Path(row[0])

    def info(self) -> dict[str, Any]:
        """A summary: schema, counts of recordings (and missing), events by status, ..."""
        recordings = self.recordings()
        return {
            "path": str(self.path),
            "schema_version": self.schema_version,
            "recordings": len(recordings),
            "missing_recordings": sum(not r.exists for r in recordings),
            "duration": sum(r.duration or 0.0 for r in recordings),
            "events": self.count_events(),
            "labels": len(self.labels()),
            "event_labels": self._query_one("SELECT count(DISTINCT label) FROM events")[0],
            "models": len(self.models()),
            "training_runs": len(self.training_runs()),
        }


def _column(series: pd.Series) -> list:
    """A frame column as Python values for sqlite3 (NaN -> None; SQLite stores a NaN
    float as NULL anyway, so float columns go as they are)."""
    if series.dtype.kind == "f":
        return series.tolist()
    return series.astype(object).where(series.notna(), None).tolist()


def _check_times(frame: pd.DataFrame) -> None:
    onset, offset = frame["onset"].to_numpy(), frame["offset"].to_numpy()
    bad = ~(np.isfinite(onset) & np.isfinite(offset) & (onset >= 0) & (offset >= onset))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StoreError(
            f"Event {i} has onset {onset[i]!r} s and offset {offset[i]!r} s; times must be "
            "finite, >= 0, and the offset not before the onset. Nothing was added."
        )
    statuses = set(frame["status"].unique()) - set(STATUSES)
    if statuses:
        raise StoreError(f"Unknown status {sorted(map(str, statuses))}; use one of {STATUSES}.")


def _audioset_mid(name: str) -> str | None:
    try:
        from ...labels import audioset_labels

        return audioset_labels().by_name(name).mid
    except Exception:  # not an AudioSet class (or labels unavailable): no mid
        return None


__all__ = ["EVENT_FRAME_COLUMNS", "SCHEMA_VERSION", "LabelEntry", "ProjectStore", "Recording"]
