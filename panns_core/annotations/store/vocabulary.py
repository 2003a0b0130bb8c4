"""Undoable operations on a project's label vocabulary (the ``labels`` table).

They follow the event operations of :mod:`.ops`: ``inverse = store.apply(op)`` runs one
transaction and returns the exact inverse (a removed label comes back with its id,
position, colour and hotkey). :class:`RenameLabel` renames a label across the events
that carry it too, and :class:`GrowVocabulary` wraps an event edit so that the labels
of the events it makes positive (accepted, edited, added) join the vocabulary in the
same undo step.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from ...errors import StoreError
from ...events import ACCEPTED, ADDED, EDITED
from .ops import Batch, Change, Operation, UpdateEvents, _native

LABEL_FIELDS: Final = ("id", "name", "mid", "colour", "hotkey", "position")
EDITABLE_LABEL_FIELDS: Final = frozenset(LABEL_FIELDS) - {"id"}
POSITIVE: Final = (ACCEPTED, EDITED, ADDED)
_LABEL_COLUMNS: Final = ", ".join(LABEL_FIELDS)
LabelRow = tuple  # one vocabulary entry in LABEL_FIELDS order


def _rows_by_name(con: sqlite3.Connection, names: Sequence[str]) -> dict[str, LabelRow]:
    found = {
        row[1]: row
        for row in con.execute(
            f"SELECT {_LABEL_COLUMNS} FROM labels WHERE name IN (SELECT value FROM json_each(?))",
            (json.dumps(list(names)),),
        )
    }
    missing = [n for n in names if n not in found]
    if missing:
        raise StoreError(f"{missing[0]!r} is not in the label vocabulary. Nothing was changed.")
    return found


def _hotkey_owner(con: sqlite3.Connection, hotkey: str | None) -> str | None:
    if not hotkey:
        return None
    row = con.execute("SELECT name FROM labels WHERE hotkey = ?", (hotkey,)).fetchone()
    return row[0] if row else None


def _audioset_mid(name: str) -> str | None:
    from .project import _audioset_mid as lookup

    return lookup(name)


@dataclass(frozen=True)
class AddLabels(Operation):
    """Add vocabulary entries. Rows are in LABEL_FIELDS order; an id of None gets a new
    id, a position of None puts the label last (the inverse of a removal gives both)."""

    rows: tuple[LabelRow, ...]
    title: ClassVar[str] = "add labels"

    @classmethod
    def named(cls, names: Iterable[str], *, colour: str | None = None,
              hotkey: str | None = None, mid: str | None = None) -> AddLabels:
        """New entries for ``names`` (the AudioSet mid is filled in for AudioSet names)."""
        rows = []
        for name in dict.fromkeys(names):
            rows.append((None, name, mid if mid is not None else _audioset_mid(name), colour,
                         hotkey, None))
        return cls(tuple(rows))

    def _run(self, con: sqlite3.Connection) -> tuple[Operation, Change]:
        names: list[str] = []
        for row in self.rows:
            _id, name, _mid, _colour, hotkey, position = row
            name = str(name or "").strip()
            if not name:
                raise StoreError("A label needs a name. Nothing was changed.")
            if con.execute("SELECT 1 FROM labels WHERE name = ?", (name,)).fetchone():
                raise StoreError(f"The label {name!r} is already in the vocabulary. "
                                 "Nothing was changed.")
            owner = _hotkey_owner(con, hotkey)
            if owner is not None:
                raise StoreError(f"The key {hotkey!r} already gives {owner!r}; choose another "
                                 "key. Nothing was changed.")
            if position is None:
                position = con.execute(
                    "SELECT coalesce(max(position) + 1, 0) FROM labels").fetchone()[0]
            con.execute(
                f"INSERT INTO labels ({_LABEL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (row[0], name, row[2], row[3], hotkey or None, int(position)),
            )
            names.append(name)
        return RemoveLabels(names), Change()


@dataclass(frozen=True)
class RemoveLabels(Operation):
    """Remove vocabulary entries by name (their events keep their labels); the inverse
    puts the entries back as they were."""

    names: tuple[str, ...]
    title: ClassVar[str] = "remove labels"

    def __init__(self, names: Iterable[str]) -> None:
        object.__setattr__(self, "names", tuple(dict.fromkeys(str(n) for n in names)))

    def _run(self, con: sqlite3.Connection) -> tuple[Operation, Change]:
        if not self.names:
            return AddLabels(()), Change()
        found = _rows_by_name(con, self.names)
        con.execute("DELETE FROM labels WHERE name IN (SELECT value FROM json_each(?))",
                    (json.dumps(list(self.names)),))
        return AddLabels(tuple(found[n] for n in self.names)), Change()


@dataclass(frozen=True)
class UpdateLabels(Operation):
    """Set fields (name, mid, colour, hotkey, position) of vocabulary entries by id.

    Names and hotkeys stay unique; two entries may swap theirs in one operation.
    :class:`RenameLabel` renames the events too; this renames the entry only.
    """

    changes: tuple[tuple[int, tuple[tuple[str, Any], ...]], ...]
    title: ClassVar[str] = "edit labels"

    @classmethod
    def set(cls, label_id: int, **fields: Any) -> UpdateLabels:
        return cls(((int(label_id), tuple(sorted((k, _native(v)) for k, v in fields.items()))),))

    def _run(self, con: sqlite3.Connection) -> tuple[Operation, Change]:
        if not self.changes:
            return UpdateLabels(()), Change()
        inverse = []
        for label_id, items in self.changes:
            unknown = {k for k, _ in items} - EDITABLE_LABEL_FIELDS
            if unknown:
                raise StoreError(f"Label fields are {sorted(EDITABLE_LABEL_FIELDS)}, not "
                                 f"{sorted(unknown)}. Nothing was changed.")
            row = con.execute(f"SELECT {_LABEL_COLUMNS} FROM labels WHERE id = ?",
                              (label_id,)).fetchone()
            if row is None:
                raise StoreError(f"No label with id {label_id} in the vocabulary (removed "
                                 "already?). Nothing was changed.")
            old = dict(zip(LABEL_FIELDS, row))
            inverse.append((label_id, tuple((k, old[k]) for k, _ in items)))
            # free the unique fields first, so entries can swap names or hotkeys
            keys = dict(items)
            if "name" in keys:
                con.execute("UPDATE labels SET name = ? WHERE id = ?",
                            (f"\x00renaming {label_id}", label_id))
            if "hotkey" in keys:
                con.execute("UPDATE labels SET hotkey = NULL WHERE id = ?", (label_id,))
        for label_id, items in self.changes:
            values = dict(items)
            if "name" in values:
                values["name"] = str(values["name"] or "").strip()
                if not values["name"]:
                    raise StoreError("A label needs a name. Nothing was changed.")
            if "hotkey" in values:
                values["hotkey"] = values["hotkey"] or None
            try:
                assignments = ", ".join(f"{k} = ?" for k in values)
                con.execute(f"UPDATE labels SET {assignments} WHERE id = ?",
                            (*values.values(), label_id))
            except sqlite3.IntegrityError:
                what = (f"the key {values['hotkey']!r}" if "hotkey" in values else
                        f"the name {values.get('name')!r}")
                raise StoreError(f"Another label already has {what}. Nothing was "
                                 "changed.") from None
        return UpdateLabels(tuple(reversed(inverse))), Change()


@dataclass(frozen=True)
class RenameLabel(Operation):
    """Rename a label in the vocabulary and on every event that carries it (statuses
    stay). Renaming to a label already in the vocabulary merges the two."""

    old: str
    new: str
    title: ClassVar[str] = "rename label"

    def _run(self, con: sqlite3.Connection) -> tuple[Operation, Change]:
        new = self.new.strip()
        if not new:
            raise StoreError("A label needs a name. Nothing was changed.")
        if new == self.old:
            return Batch(()), Change()
        entry = con.execute("SELECT id FROM labels WHERE name = ?", (self.old,)).fetchone()
        target = con.execute("SELECT id FROM labels WHERE name = ?", (new,)).fetchone()
        ops: list[Operation] = []
        if entry is not None and target is None:
            ops.append(UpdateLabels.set(entry[0], name=new, mid=_audioset_mid(new)))
        elif entry is not None:
            ops.append(RemoveLabels([self.old]))  # merged into the existing entry
        elif target is None:
            ops.append(AddLabels.named([new]))
        ids = [row[0] for row in con.execute("SELECT id FROM events WHERE label = ?",
                                             (self.old,))]
        if entry is None and not ids:
            raise StoreError(f"{self.old!r} is neither in the vocabulary nor on an event. "
                             "Nothing was changed.")
        if ids:
            ops.append(UpdateEvents.set(ids, label=new))
        return Batch(ops)._run(con)


@dataclass(frozen=True)
class GrowVocabulary(Operation):
    """Run an event edit, then add to the vocabulary the labels of the events it left
    accepted, edited or added that the vocabulary lacks: one step, undone together.

    The inverse is ``Batch((inverse of op, removal of the added labels))``.
    """

    op: Operation
    title: ClassVar[str] = "edit"

    def _run(self, con: sqlite3.Connection) -> tuple[Operation, Change]:
        inverse, change = self.op._run(con)
        ids = sorted(change.added | change.updated)
        names = [
            row[0]
            for row in con.execute(
                "SELECT DISTINCT e.label FROM events e JOIN json_each(?) j ON e.id = j.value "
                "WHERE e.status IN (SELECT value FROM json_each(?)) AND e.label NOT IN "
                "(SELECT name FROM labels) ORDER BY e.onset, e.id",
                (json.dumps(ids), json.dumps(list(POSITIVE))),
            )
        ] if ids else []
        grown, _ = AddLabels.named(names)._run(con)
        return Batch((inverse, grown)), change


def grown_labels(inverse: Operation) -> tuple[str, ...]:
    """The labels a :class:`GrowVocabulary` edit added (from the inverse it returned)."""
    if isinstance(inverse, Batch) and len(inverse.ops) == 2 and isinstance(
            inverse.ops[1], RemoveLabels):
        return inverse.ops[1].names
    return ()


def edit_of(inverse: Operation) -> Operation:
    """The inverse of the wrapped event edit, from a :class:`GrowVocabulary` inverse."""
    if isinstance(inverse, Batch) and len(inverse.ops) == 2 and isinstance(
            inverse.ops[1], RemoveLabels):
        return inverse.ops[0]
    return inverse


__all__ = ["LABEL_FIELDS", "AddLabels", "GrowVocabulary", "RemoveLabels", "RenameLabel",
           "UpdateLabels", "edit_of", "grown_labels"]
