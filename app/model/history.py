"""Undo/redo over the project store's inverse operations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .evented import EmitterGroup


class History:
    """Undo/redo of document edits: each entry is (text, store operation to apply).

    Undoing applies the stored inverse through ``apply_raw`` (the store's ``apply``) and
    keeps the operation the store returns as the redo (and the other way round), so both
    directions are exact. Plain Python; Qt undo actions and any undo view listen to
    ``history.events.history``. Consecutive pushes with the same ``merge_key`` fold into
    one step (live threshold changes).
    """

    def __init__(self, apply_raw: Callable[[Any], Any], limit: int = 500) -> None:
        self.events = EmitterGroup(self, ("history",))
        self._apply_raw = apply_raw
        self._undo: list[list[Any]] = []  # [text, op, merge_key]
        self._redo: list[list[Any]] = []
        self.limit = limit

    def push(self, text: str, undo_op, merge_key: str | None = None) -> None:
        from panns_core.annotations.store import Batch

        if merge_key and self.would_merge(merge_key):
            # undo of the merged step: undo the newest part, then the older ones
            self._undo[-1][1] = Batch((undo_op, self._undo[-1][1]))
        else:
            self._undo.append([text, undo_op, merge_key])
            del self._undo[: -self.limit]
        self._redo.clear()
        self.events.history.emit(self)

    def would_merge(self, merge_key: str) -> bool:
        """Whether a push with ``merge_key`` now folds into the newest step."""
        return bool(self._undo) and self._undo[-1][2] == merge_key and not self._redo

    def seal(self) -> None:
        """Stop merging into the newest step."""
        if self._undo:
            self._undo[-1][2] = None

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
        self.events.history.emit(self)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_text(self) -> str:
        return self._undo[-1][0] if self._undo else ""

    @property
    def redo_text(self) -> str:
        return self._redo[-1][0] if self._redo else ""

    @property
    def undo_texts(self) -> list[str]:
        return [entry[0] for entry in self._undo]

    def undo(self) -> bool:
        if not self._undo:
            return False
        text, op, _ = self._undo.pop()
        redo_op = self._apply_raw(op)
        self._redo.append([text, redo_op, None])
        self.events.history.emit(self)
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        text, op, _ = self._redo.pop()
        undo_op = self._apply_raw(op)
        self._undo.append([text, undo_op, None])
        self.events.history.emit(self)
        return True
