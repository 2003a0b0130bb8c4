"""Plain-Python events for the document model (napari style, no QObject).

An :class:`EventEmitter` calls its callbacks with one :class:`Event`. Bound methods
are held through weak references, so a widget that dies drops out by itself and a
model never keeps a view alive. :class:`EmitterGroup` bundles named emitters
(``doc.events.cursor.connect(cb)``) and has a ``blocker()`` context manager.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Event:
    """What an emitter passes to its callbacks."""

    type: str
    value: Any = None
    source: Any = None
    extra: dict = field(default_factory=dict)


class _Ref:
    """A callback held weakly if it is a bound method, strongly otherwise."""

    __slots__ = ("_func", "_obj", "_strong")

    def __init__(self, callback: Callable) -> None:
        self._obj = None
        self._func = None
        self._strong = None
        if hasattr(callback, "__self__") and hasattr(callback, "__func__"):
            self._obj = weakref.ref(callback.__self__)
            self._func = callback.__func__
        else:
            self._strong = callback

    def resolve(self) -> Callable | None:
        if self._strong is not None:
            return self._strong
        obj = self._obj()
        if obj is None:
            return None
        return self._func.__get__(obj)

    def matches(self, callback: Callable) -> bool:
        if self._strong is not None:
            return self._strong == callback
        return (
            getattr(callback, "__func__", None) is self._func
            and getattr(callback, "__self__", None) is self._obj()
        )


class EventEmitter:
    """One kind of event; ``emit(value=...)`` calls every live callback in order."""

    def __init__(self, name: str, source: Any = None) -> None:
        self.name = name
        self.source = source
        self._refs: list[_Ref] = []
        self._blocked = 0

    def connect(self, callback: Callable[[Event], Any]) -> Callable[[Event], Any]:
        if not any(ref.matches(callback) for ref in self._refs):
            self._refs.append(_Ref(callback))
        return callback

    def disconnect(self, callback: Callable | None = None) -> None:
        if callback is None:
            self._refs.clear()
        else:
            self._refs = [ref for ref in self._refs if not ref.matches(callback)]

    @property
    def callback_count(self) -> int:
        return sum(1 for ref in self._refs if ref.resolve() is not None)

    def emit(self, value: Any = None, **extra: Any) -> None:
        if self._blocked:
            return
        event = Event(self.name, value, self.source, extra)
        dead = False
        for ref in list(self._refs):
            callback = ref.resolve()
            if callback is None:
                dead = True
                continue
            try:
                callback(event)
            except RuntimeError as error:
                # A Qt widget deleted on the C++ side but still referenced from Python.
                if "deleted" in str(error):
                    self.disconnect(callback)
                else:
                    raise
        if dead:
            self._refs = [ref for ref in self._refs if ref.resolve() is not None]

    @contextmanager
    def blocker(self) -> Iterator[None]:
        self._blocked += 1
        try:
            yield
        finally:
            self._blocked -= 1


class EmitterGroup:
    """Named emitters as attributes: ``group.cursor.connect(cb)``."""

    def __init__(self, source: Any, names: tuple[str, ...]) -> None:
        self._emitters: dict[str, EventEmitter] = {}
        for name in names:
            emitter = EventEmitter(name, source)
            self._emitters[name] = emitter
            setattr(self, name, emitter)

    def add(self, emitter: EventEmitter) -> None:
        """Expose an emitter owned by another group (a document composing its models)."""
        self._emitters[emitter.name] = emitter
        setattr(self, emitter.name, emitter)

    def __iter__(self) -> Iterator[EventEmitter]:
        return iter(self._emitters.values())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._emitters)

    @contextmanager
    def blocker(self) -> Iterator[None]:
        """Silence every emitter of the group for the block."""
        for emitter in self:
            emitter._blocked += 1
        try:
            yield
        finally:
            for emitter in self:
                emitter._blocked -= 1
