"""Edit operations on a project's events, each with an exact inverse.

``inverse = store.apply(op)`` runs ``op`` in one transaction, commits it, and returns
the operation that undoes it; ``store.apply(inverse)`` returns the redo. Inverses hold
absolute old values (never "minus delta"), so undo restores every field bit for bit,
and a deleted event comes back with its old id.

Operations are frozen dataclasses: keep them on an undo stack as they are.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

import numpy as np

from ...errors import StoreError
from ...events import HUMAN, PROPOSED, STATUSES

ROW_FIELDS: Final = (
    "id", "recording_id", "onset", "offset", "label", "confidence", "low_freq", "high_freq",
    "source", "status", "note", "created", "modified",
)
EDITABLE: Final = frozenset(ROW_FIELDS) - {"id", "created"}
_COLUMNS_SQL: Final = ", ".join(f'"{f}"' for f in ROW_FIELDS)
_INSERT_SQL: Final = (
    f"INSERT INTO events ({_COLUMNS_SQL}) VALUES ({', '.join('?' * len(ROW_FIELDS))})"
)
Row = tuple  # one event in ROW_FIELDS order


@dataclass(frozen=True)
class Change:
    """What an applied operation touched (for views to refresh)."""

    added: frozenset[int] = frozenset()
    removed: frozenset[int] = frozenset()
    updated: frozenset[int] = frozenset()
    recordings: frozenset[int] = frozenset()
    listed: frozenset[int] = frozenset()  # recordings removed from or put back in the project

    def __or__(self, other: Change) -> Change:
        return Change(
            self.added | other.added,
            self.removed | other.removed,
            self.updated | other.updated,
            self.recordings | other.recordings,
            self.listed | other.listed,
        )


class Operation:
    """Base class: ``_run(con)`` does the work inside a transaction."""

    title: ClassVar[str] = "edit"

    def _run(self, con: sqlite3.Connection) -> tuple[Operation, Change]:  # pragma: no cover
        raise NotImplementedError


def _integrity(error: sqlite3.IntegrityError) -> StoreError:
    text = str(error)
    if "FOREIGN KEY" in text:
        problem = "an event refers to a recording that is not in the project"
    elif "CHECK" in text:
        problem = (
            "an event has invalid times or status (onset >= 0, offset >= onset, "
            f"status one of {', '.join(STATUSES)})"
        )
    elif "UNIQUE" in text:
        problem = "an event id is already taken"
    elif "NOT NULL" in text:
        problem = f"a required event field is missing ({text})"
    else:
        problem = text
    return StoreError(f"The edit was not saved: {problem}. Nothing was changed.")


def _fetch(con: sqlite3.Connection, ids: Sequence[int], columns: Sequence[str]) -> dict[int, tuple]:
    """{id: (columns...)} for the given event ids; StoreError when any is missing."""
    wanted = list(dict.fromkeys(int(i) for i in ids))
    cols = ", ".join(f'e."{c}"' for c in columns)
    found = {
        row[0]: row[1:]
        for row in con.execute(
            f"SELECT e.id, {cols} FROM events e JOIN json_each(?) j ON e.id = j.value",
            (json.dumps(wanted),),
        )
    }
    missing = [i for i in wanted if i not in found]
    if missing:
        shown = ", ".join(map(str, missing[:10]))
        raise StoreError(
            f"No event with id {shown}{' ...' if len(missing) > 10 else ''} in this project "
            "(deleted already?). Nothing was changed."
        )
    return found


def _check_status(statuses: Iterable[Any]) -> None:
    bad = set(statuses) - set(STATUSES)
    if bad:
        raise StoreError(
            f"Unknown event status {sorted(map(str, bad))!r}; use one of {', '.join(STATUSES)}."
        )


@dataclass(frozen=True)
class AddEvents(Operation):
    """Insert events. Rows are tuples in ROW_FIELDS order; an id of None gets a new id
    (ids are never reused), a given id is kept (undo of a delete)."""

    rows: tuple[Row, ...]
    title: ClassVar[str] = "add events"

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]], *, now: float | None = None
                     ) -> AddEvents:
        """From dicts with at least recording_id, onset, offset, label."""
        now = time.time() if now is None else now
        defaults = {"id": None, "confidence": None, "low_freq": None, "high_freq": None,
                    "source": HUMAN, "status": "added", "note": "", "created": now,
                    "modified": now}
        rows = []
        for record in records:
            merged = {**defaults, **record}
            rows.append(tuple(_native(merged[f]) for f in ROW_FIELDS))
        return cls(tuple(rows))

    def _run(self, con: sqlite3.Connection) -> tuple[Operation, Change]:
        if not self.rows:
            return DeleteEvents(()), Change()
        status_at = ROW_FIELDS.index("status")
        _check_status({row[status_at] for row in self.rows})
        seq = con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        first = (seq[0] if seq else 0) + 1
        rows: Sequence[Row] = self.rows
        fresh = all(row[0] is None for row in rows)
        if not fresh:
            # Give new ids ourselves (AUTOINCREMENT never hands out an id twice, even
            # one whose event was deleted, so these are free).
            start = max(first, 1 + max(r[0] for r in rows if r[0] is not None))
            filled: list[Row] = []
            for row in rows:
                if row[0] is None:
                    row = (start, *row[1:])
                    start += 1
                filled.append(row)
            rows = filled
        try:
            con.executemany(_INSERT_SQL, rows)
        except sqlite3.IntegrityError as error:
            raise _integrity(error) from None
        if fresh:
            # All ids came from AUTOINCREMENT inside this one write transaction, so they
            # are consecutive; the sequence value proves it.
            ids = tuple(range(first, first + len(rows)))
            last = con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
            if last[0] != ids[-1]:  # pragma: no cover - would be an SQLite change
                raise StoreError("Event ids were not allocated consecutively; nothing saved.")
        else:
            ids = tuple(row[0] for row in rows)
        recordings = frozenset(row[1] for row in rows)
        return DeleteEvents(ids), Change(added=frozenset(ids), recordings=recordings)


@dataclass(frozen=True)
class DeleteEvents(Operation):
    """Delete events by id; the inverse re-inserts them with the same ids and fields."""

    ids: tuple[int, ...]
    title: ClassVar[str] = "delete events"

    def __init__(self, ids: Iterable[int]) -> None:
        object.__setattr__(self, "ids", tuple(int(i) for i in ids))

    def _run(self, con: sqlite3.Connection) -> tuple[Operation, Change]:
        if not self.ids:
            return AddEvents(()), Change()
        found = _fetch(con, self.ids, ROW_FIELDS[1:])
        con.execute(
            "DELETE FROM events WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(found)),),
        )
        rows = tuple((i, *found[i]) for i in dict.fromkeys(self.ids))
        return AddEvents(rows), Change(
            removed=frozenset(found), recordings=frozenset(r[1] for r in rows)
        )


@dataclass(frozen=True)
class UpdateEvents(Operation):
    """Set fields of events: ``changes`` pairs an event id with its new values.

    ``modified`` is set to now unless given. Use :meth:`set` for the same values on
    many events (relabel, set status), :func:`resize` for new times.
    """

    changes: tuple[tuple[int, tuple[tuple[str, Any], ...]], ...]
    title: ClassVar[str] = "edit events"

    @classmethod
    def set(cls, ids: Iterable[int], **fields: Any) -> UpdateEvents:
        items = tuple(sorted((k, _native(v)) for k, v in fields.items()))
        return cls(tuple((int(i), items) for i in ids))

    @classmethod
    def each(cls, changes: Mapping[int, Mapping[str, Any]]) -> UpdateEvents:
        return cls(tuple(
            (int(i), tuple(sorted((k, _native(v)) for k, v in values.items())))
            for i, values in changes.items()
        ))

    def _run(self, con: sqlite3.Connection) -> tuple[Operation, Change]:
        if not self.changes:
            return UpdateEvents(()), Change()
        now = time.time()
        names: set[str] = set()
        for _, items in self.changes:
            names.update(k for k, _ in items)
        unknown = names - EDITABLE
        if unknown:
            raise StoreError(
                f"Cannot edit the event field(s) {sorted(unknown)}; editable: {sorted(EDITABLE)}."
            )
        _check_status(v for _, items in self.changes for k, v in items if k == "status")
        columns = sorted(names | {"modified", "recording_id"})
        old = _fetch(con, [i for i, _ in self.changes], columns)
        inverse: list[tuple[int, tuple[tuple[str, Any], ...]]] = []
        recordings: set[int] = set()
        by_fields: dict[tuple[str, ...], list[tuple]] = {}
        for event_id, items in self.changes:
            values = dict(items)
            values.setdefault("modified", now)
            keys = tuple(sorted(values))
            previous = dict(zip(columns, old[event_id]))
            recordings.add(previous["recording_id"])
            if "recording_id" in values:
                recordings.add(values["recording_id"])
            inverse.append((event_id, tuple((k, previous[k]) for k in keys)))
            by_fields.setdefault(keys, []).append((*(values[k] for k in keys), event_id))
        try:
            for keys, params in by_fields.items():
                assignments = ", ".join(f'"{k}" = ?' for k in keys)
                con.executemany(f"UPDATE events SET {assignments} WHERE id = ?", params)
        except sqlite3.IntegrityError as error:
            raise _integrity(error) from None
        # Undo applies old values in reverse order (matters when one id appears twice).
        return UpdateEvents(tuple(reversed(inverse))), Change(
            updated=frozenset(i for i, _ in self.changes), recordings=frozenset(recordings)
        )


@dataclass(frozen=True)
class MoveEvents(Operation):
    """Shift events in time by ``delta`` seconds (the inverse restores exact times)."""

    ids: tuple[int, ...]
    delta: float
    extra: tuple[tuple[str, Any], ...] = field(default=())
    title: ClassVar[str] = "move events"

    def __init__(self, ids: Iterable[int], delta: float, **fields: Any) -> None:
        object.__setattr__(self, "ids", tuple(int(i) for i in ids))
        object.__setattr__(self, "delta", float(delta))
        object.__setattr__(self, "extra", tuple(sorted(fields.items())))

    def _run(self, con: sqlite3.Connection) -> tuple[Operation, Change]:
        times = _fetch(con, self.ids, ("onset", "offset"))
        changes = {
            i: {"onset": on + self.delta, "offset": off + self.delta, **dict(self.extra)}
            for i, (on, off) in times.items()
        }
        return UpdateEvents.each(changes)._run(con)


@dataclass(frozen=True)
class Batch(Operation):
    """Several operations as one undo step, applied in order, undone in reverse."""

    ops: tuple[Operation, ...]
    title: ClassVar[str] = "edit"

    def __init__(self, ops: Iterable[Operation]) -> None:
        object.__setattr__(self, "ops", tuple(ops))

    def _run(self, con: sqlite3.Connection) -> tuple[Operation, Change]:
        inverses: list[Operation] = []
        change = Change()
        for op in self.ops:
            inverse, part = op._run(con)
            inverses.append(inverse)
            change = change | part
        return Batch(reversed(inverses)), change


@dataclass(frozen=True)
class ReplaceProposed(Operation):
    """A detection run: drop the recording's proposed events (of ``source`` only, when
    given) and add ``rows``. Accepted, edited, rejected and added events stay, and a new
    proposal that overlaps a decided event of the same label is not added: the user has
    already said what is there (a rejected region stays rejected for that label)."""

    recording_id: int
    rows: tuple[Row, ...]
    source: str | None = None
    title: ClassVar[str] = "detect"

    def _run(self, con: sqlite3.Connection) -> tuple[Operation, Change]:
        sql = "SELECT id FROM events WHERE recording_id = ? AND status = ?"
        params: list[Any] = [int(self.recording_id), PROPOSED]
        if self.source is not None:
            sql += " AND source = ?"
            params.append(self.source)
        old = [row[0] for row in con.execute(sql, params)]
        rows = undecided(con, int(self.recording_id), self.rows)
        return Batch((DeleteEvents(old), AddEvents(rows)))._run(con)


_RECORDING_FIELDS: Final = (
    "id", "path", "size", "sha256", "duration", "sample_rate", "channels", "added", "note",
)
_CACHE_FIELDS: Final = ("recording_id", "model_id", "path", "audio_hash", "created")


@dataclass(frozen=True)
class RemoveRecordings(Operation):
    """Take recordings out of the project with their events and cached-score entries;
    the inverse (:class:`RestoreRecordings`) puts all of it back with the same ids.
    The audio files are not touched."""

    ids: tuple[int, ...]
    title: ClassVar[str] = "remove recordings"

    def __init__(self, ids: Iterable[int]) -> None:
        object.__setattr__(self, "ids", tuple(dict.fromkeys(int(i) for i in ids)))

    def _run(self, con: sqlite3.Connection) -> tuple[Operation, Change]:
        wanted = json.dumps(list(self.ids))
        inside = "IN (SELECT value FROM json_each(?))"
        cols = ", ".join(f'"{c}"' for c in _RECORDING_FIELDS)
        recordings = tuple(con.execute(
            f"SELECT {cols} FROM recordings WHERE id {inside} ORDER BY id", (wanted,)))
        missing = set(self.ids) - {row[0] for row in recordings}
        if missing:
            raise StoreError(f"No recording with id {sorted(missing)} in this project "
                             "(removed already?). Nothing was changed.")
        events = tuple(con.execute(
            f"SELECT {_COLUMNS_SQL} FROM events WHERE recording_id {inside} ORDER BY id",
            (wanted,)))
        cache = tuple(con.execute(
            f"SELECT {', '.join(_CACHE_FIELDS)} FROM score_cache WHERE recording_id {inside}",
            (wanted,)))
        con.execute(f"DELETE FROM recordings WHERE id {inside}", (wanted,))  # cascades
        ids = frozenset(self.ids)
        return RestoreRecordings(recordings, events, cache), Change(
            removed=frozenset(row[0] for row in events), recordings=ids, listed=ids)


@dataclass(frozen=True)
class RestoreRecordings(Operation):
    """Put removed recordings back (rows of recordings, events and score_cache)."""

    recordings: tuple[tuple, ...]
    events: tuple[Row, ...] = ()
    cache: tuple[tuple, ...] = ()
    title: ClassVar[str] = "restore recordings"

    def _run(self, con: sqlite3.Connection) -> tuple[Operation, Change]:
        path_at = _RECORDING_FIELDS.index("path")
        again = {}  # old id -> id of the row its file was added again under
        for row in self.recordings:
            hit = con.execute("SELECT id FROM recordings WHERE path = ? AND id != ?",
                              (row[path_at], row[0])).fetchone()
            if hit is not None:
                again[int(row[0])] = int(hit[0])
        if again:
            return self._merge(con, again)
        return self._insert(con)

    def _merge(self, con: sqlite3.Connection, again: dict[int, int]
               ) -> tuple[Operation, Change]:
        """The file of a removed recording was added again: the recording comes back
        under its old id and the newer row's events join it (the newer row goes). The
        inverse takes the recording out and puts the newer row back as it was."""
        newer, removed = RemoveRecordings(sorted(again.values()))._run(con)
        assert isinstance(newer, RestoreRecordings)
        inverse_old, restored = self._insert(con)
        to_old = {new: old for old, new in again.items()}
        rid = ROW_FIELDS.index("recording_id")
        moved = tuple((*row[:rid], to_old[int(row[rid])], *row[rid + 1:])
                      for row in newer.events)
        con.executemany(_INSERT_SQL, moved)
        moved_ids = frozenset(int(row[0]) for row in moved)
        ids = restored.recordings | removed.recordings
        # the moved events left the newer recording and joined the old one
        return Batch((inverse_old, newer)), Change(
            added=restored.added | moved_ids, removed=removed.removed, recordings=ids,
            listed=ids)

    def _insert(self, con: sqlite3.Connection) -> tuple[Operation, Change]:
        cols = ", ".join(f'"{c}"' for c in _RECORDING_FIELDS)
        marks = ", ".join("?" * len(_RECORDING_FIELDS))
        try:
            con.executemany(f"INSERT INTO recordings ({cols}) VALUES ({marks})",
                            self.recordings)
            con.executemany(_INSERT_SQL, self.events)
            con.executemany(
                f"INSERT INTO score_cache ({', '.join(_CACHE_FIELDS)}) VALUES "
                f"({', '.join('?' * len(_CACHE_FIELDS))})", self.cache)
        except sqlite3.IntegrityError as error:
            if "recordings" in str(error):
                raise StoreError("A file of the removed recording is in the project again; "
                                 "remove it first. Nothing was changed.") from None
            raise _integrity(error) from None
        ids = frozenset(row[0] for row in self.recordings)
        return RemoveRecordings(sorted(ids)), Change(
            added=frozenset(row[0] for row in self.events), recordings=ids, listed=ids)


def undecided(con: sqlite3.Connection, recording_id: int, rows: Sequence[Row]
              ) -> tuple[Row, ...]:
    """``rows`` without those overlapping a decided (not proposed) event of the same label
    on the recording. Touching ends do not overlap."""
    decided: dict[str, list[tuple[float, float]]] = {}
    for label, onset, offset in con.execute(
        "SELECT label, onset, offset FROM events WHERE recording_id = ? AND status != ?",
        (recording_id, PROPOSED),
    ):
        decided.setdefault(label, []).append((onset, offset))
    if not decided:
        return tuple(rows)
    on_at, off_at, label_at = (ROW_FIELDS.index(f) for f in ("onset", "offset", "label"))
    spans = {label: np.array(v, dtype=np.float64) for label, v in decided.items()}
    kept = []
    for row in rows:
        span = spans.get(row[label_at])
        if span is not None and np.any((span[:, 0] < row[off_at]) & (span[:, 1] > row[on_at])):
            continue
        kept.append(row)
    return tuple(kept)


def resize(event_id: int, onset: float, offset: float, **fields: Any) -> UpdateEvents:
    """New times for one event (plus any other fields, e.g. status="edited")."""
    return UpdateEvents.set([event_id], onset=onset, offset=offset, **fields)


def relabel(ids: Iterable[int], label: str, **fields: Any) -> UpdateEvents:
    return UpdateEvents.set(ids, label=label, **fields)


def set_status(ids: Iterable[int], status: str) -> UpdateEvents:
    return UpdateEvents.set(ids, status=status)


def _native(value: Any) -> Any:
    """numpy scalars to Python ones (sqlite3 binds only those); NaN to None."""
    if value is None or isinstance(value, str | int):
        return value
    item = getattr(value, "item", None)
    if item is not None:
        value = item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
