"""Background work as generators (napari's ``thread_worker`` idea, written small).

A :class:`Worker` (``Worker(func, *args, **kwargs)``) wraps a function or generator
function and runs it on its own thread. A generator's values arrive on the Qt
thread through ``yielded``; a yielded :class:`Progress` goes to ``progress`` instead.
``returned`` carries the return value, ``errored`` the exception, ``aborted`` says the
work was cancelled, and ``finished`` always comes last. ``worker.cancel()`` sets a
``threading.Event`` that the function gets as its ``cancel`` keyword argument if it
has one, and stops a generator at its next ``yield``.

Signals are queued to the Qt thread, so slots may touch widgets. Nothing here
imports torch.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Signal

log = logging.getLogger(__name__)

_ACTIVE: set[Worker] = set()
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Progress:
    """Yield this from a worker generator to report progress (fraction in 0..1)."""

    fraction: float
    text: str = ""


class WorkerSignals(QObject):
    started = Signal()
    yielded = Signal(object)
    progress = Signal(float, str)
    returned = Signal(object)
    errored = Signal(object)
    aborted = Signal()
    finished = Signal()


class Worker:
    """Runs ``func(*args, **kwargs)`` on a daemon thread; see the module docstring.

    A plain Python thread rather than a QThreadPool runnable: PySide's pool keeps
    Python references to its runnables, which would keep every finished worker (and
    the views its function belongs to) alive.
    """

    def __init__(self, func: Callable, *args: Any, **kwargs: Any) -> None:
        self.signals = WorkerSignals()
        self.cancel_event = threading.Event()
        self._func = func
        self._args = args
        self._kwargs = dict(kwargs)
        self._done = threading.Event()
        self.name = getattr(func, "__name__", "worker")
        try:
            params = inspect.signature(func).parameters
        except (TypeError, ValueError):
            params = {}
        if "cancel" in params and "cancel" not in self._kwargs:
            self._kwargs["cancel"] = self.cancel_event

    # Convenience aliases so callers read like napari's workers.
    @property
    def started(self):
        return self.signals.started

    @property
    def yielded(self):
        return self.signals.yielded

    @property
    def progress(self):
        return self.signals.progress

    @property
    def returned(self):
        return self.signals.returned

    @property
    def errored(self):
        return self.signals.errored

    @property
    def aborted(self):
        return self.signals.aborted

    @property
    def finished(self):
        return self.signals.finished

    @property
    def is_cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def cancel(self) -> None:
        self.cancel_event.set()

    def start(self) -> Worker:
        with _LOCK:
            _ACTIVE.add(self)
        thread = threading.Thread(target=self.run, name=f"worker-{self.name}", daemon=True)
        thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the work ends (tests, shutdown). Signals may still be queued."""
        return self._done.wait(timeout)

    def run(self) -> None:  # executed on the worker thread
        signals = self.signals
        try:
            signals.started.emit()
            result = self._func(*self._args, **self._kwargs)
            if inspect.isgenerator(result):
                result = self._drain(result)
            if self.cancel_event.is_set():
                signals.aborted.emit()
            else:
                signals.returned.emit(result)
        except Exception as error:
            from panns_core.errors import Cancelled

            if isinstance(error, Cancelled) or self.cancel_event.is_set():
                signals.aborted.emit()
            else:
                log.debug("worker %s failed", self.name, exc_info=True)
                signals.errored.emit(error)
        finally:
            self._done.set()
            with contextlib.suppress(RuntimeError):  # the signals object went away
                signals.finished.emit()
            with _LOCK:
                _ACTIVE.discard(self)

    def _drain(self, gen) -> Any:
        signals = self.signals
        while True:
            if self.cancel_event.is_set():
                gen.close()
                return None
            try:
                value = next(gen)
            except StopIteration as stop:
                return stop.value
            if isinstance(value, Progress):
                signals.progress.emit(float(value.fraction), value.text)
            else:
                signals.yielded.emit(value)


def while_alive(owner: QObject, func: Callable) -> Callable:
    """``func`` as a slot that does nothing once ``owner`` is gone.

    A worker's answer is queued to the Qt thread and can arrive after the window that
    asked for it was closed. PySide drops queued calls to a destroyed object's bound
    methods, but not to a lambda or closure, whose widgets would then raise inside the
    event loop. Holding ``owner`` weakly also keeps the connection from keeping it alive.
    """
    import shiboken6

    ref = weakref.ref(owner)

    def slot(*args: Any) -> None:
        alive = ref()
        if alive is not None and shiboken6.isValid(alive):
            func(alive, *args)

    return slot


def active_workers() -> list[Worker]:
    with _LOCK:
        return list(_ACTIVE)


def cancel_all(wait: float | None = 5.0) -> bool:
    """Cancel every running worker and wait for them (window close, test teardown)."""
    workers = active_workers()
    for worker in workers:
        worker.cancel()
    ok = True
    for worker in workers:
        ok &= worker.wait(wait)
    return ok


class WorkerSlot:
    """At most one live worker of a kind: starting a new one cancels the previous one.

    Used by views that recompute for the visible range: only the newest request
    matters.
    """

    def __init__(self) -> None:
        self._worker: Worker | None = None

    @property
    def worker(self) -> Worker | None:
        return self._worker

    def start(self, worker: Worker) -> Worker:
        self.cancel()
        self._worker = worker
        # never capture the worker itself in a slot of its own signals: the Qt connection
        # would keep it (and whatever its function refers to) alive for ever
        ref = weakref.ref(worker)
        worker.finished.connect(lambda: self._clear(ref()))
        return worker.start()

    def _clear(self, worker: Worker) -> None:
        if self._worker is worker:
            self._worker = None

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None

    @property
    def busy(self) -> bool:
        return self._worker is not None
