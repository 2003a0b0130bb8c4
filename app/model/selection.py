"""Which events are selected."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .evented import EmitterGroup


class Selection:
    """Selected event ids, kept to the ids ``known()`` returns; emitter ``selection``."""

    def __init__(self, known: Callable[[], set[int]]) -> None:
        self.events = EmitterGroup(self, ("selection",))
        self._known = known
        self._ids: frozenset[int] = frozenset()

    @property
    def ids(self) -> frozenset[int]:
        return self._ids

    @ids.setter
    def ids(self, ids: Iterable[int]) -> None:
        known = self._known()
        new = frozenset(int(i) for i in ids if int(i) in known)
        if new != self._ids:
            self._ids = new
            self.events.selection.emit(new)

    def select(self, event_id: int | None, *, extend: bool = False,
               toggle: bool = False) -> None:
        """Click semantics: replace, extend (shift) or toggle (ctrl) the selection."""
        if event_id is None:
            if not extend and not toggle:
                self.ids = ()
            return
        current = set(self._ids)
        if toggle:
            current ^= {event_id}
        elif extend:
            current.add(event_id)
        else:
            current = {event_id}
        self.ids = current

    def reset(self) -> None:
        """Empty, without an event (a new recording emits everything at once)."""
        self._ids = frozenset()

    def prune(self) -> None:
        """Drop ids that are gone (events deleted), emitting when something changed."""
        known = self._known()
        if not self._ids <= known:
            self._ids = frozenset(self._ids & known)
            self.events.selection.emit(self._ids)
