"""Undo/redo over the project store's inverse operations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .evented import EmitterGroup


@dataclass
class Entry:
    text: str
    op: Any  # the store operation that undoes (or redoes) the step
    merge_key: str | None
    footprint: Any  # what the step touched (store.writers.Footprint)
    seq: int  # the newest outside change seen when it was made


class History:
    """Undo/redo of document edits: each entry is a store operation with what it
    touched (its footprint) and when (the sequence number of outside changes).

    Undoing applies the stored inverse through ``apply_raw(op, guard, since)`` (the
    store's ``apply_tracked``, which refuses an entry another program has touched
    since) and keeps the operation the store returns as the redo (and the other way
    round), so both directions are exact. :meth:`drop` removes the entries an outside
    change touched (and those under them, whose inverses assume them). Plain Python;
    Qt undo actions and any undo view listen to ``history.events.history``.
    Consecutive pushes with the same ``merge_key`` fold into one step (live threshold
    changes).
    """

    def __init__(self, apply_raw: Callable[..., tuple[Any, Any, int]], limit: int = 500
                 ) -> None:
        self.events = EmitterGroup(self, ("history",))
        self._apply_raw = apply_raw
        self._undo: list[Entry] = []
        self._redo: list[Entry] = []
        self.limit = limit

    def push(self, text: str, undo_op, merge_key: str | None = None, footprint=None,
             seq: int = 0) -> None:
        from panns_core.annotations.store import Batch
        from panns_core.annotations.store.writers import EVERYTHING

        footprint = EVERYTHING if footprint is None else footprint
        if merge_key and self.would_merge(merge_key):
            # undo of the merged step: undo the newest part, then the older ones
            top = self._undo[-1]
            top.op = Batch((undo_op, top.op))
            top.footprint = top.footprint | footprint
        else:
            self._undo.append(Entry(text, undo_op, merge_key, footprint, seq))
            del self._undo[: -self.limit]
        self._redo.clear()
        self.events.history.emit(self)

    def would_merge(self, merge_key: str) -> bool:
        """Whether a push with ``merge_key`` now folds into the newest step."""
        return bool(self._undo) and self._undo[-1].merge_key == merge_key and not self._redo

    def merge_guard(self, merge_key: str):
        """(footprint, seq) of the step a push with ``merge_key`` would fold into, or
        None: that step's older part must not have been touched from outside."""
        if not self.would_merge(merge_key):
            return None
        return self._undo[-1].footprint, self._undo[-1].seq

    def seal(self) -> None:
        """Stop merging into the newest step."""
        if self._undo:
            self._undo[-1].merge_key = None

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
        self.events.history.emit(self)

    def drop(self, seq: int, footprint) -> int:
        """Forget the entries made before outside change ``seq`` that its ``footprint``
        touches, and every entry under them; returns how many went."""
        dropped = 0
        for stack in (self._undo, self._redo):
            hit = [i for i, e in enumerate(stack) if e.seq < seq and e.footprint.touches(footprint)]
            if hit:
                dropped += hit[-1] + 1
                del stack[: hit[-1] + 1]
        if dropped:
            self.events.history.emit(self)
        return dropped

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_text(self) -> str:
        return self._undo[-1].text if self._undo else ""

    @property
    def redo_text(self) -> str:
        return self._redo[-1].text if self._redo else ""

    @property
    def undo_texts(self) -> list[str]:
        return [entry.text for entry in self._undo]

    def undo(self) -> bool:
        return self._step(self._undo, self._redo)

    def redo(self) -> bool:
        return self._step(self._redo, self._undo)

    def _step(self, source: list[Entry], target: list[Entry]) -> bool:
        if not source:
            return False
        entry = source[-1]
        op, footprint, seq = self._apply_raw(entry.op, entry.footprint, entry.seq)
        source.pop()  # only once applied: a refused step stays until dropped
        target.append(Entry(entry.text, op, None, entry.footprint | footprint, seq))
        self.events.history.emit(self)
        return True
