"""Fixtures for driving the real annotator window offscreen (napari-style factory).

``make_main_window()`` builds a shown :class:`~app.main_window.MainWindow` on a fresh
project in the test's tmp dir; at teardown it closes every window it made, waits for
their workers, and fails the test if a window, its document or a worker outlived it.
``sed_checkpoint`` is a Cnn6_DecisionLevelMax checkpoint (the smallest SED architecture
of the registry) with seeded, deterministic weights, written once per session.
"""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from panns_core.data import resource_path


@pytest.fixture
def demo_path() -> Path:
    return resource_path("demo.flac")


@pytest.fixture
def make_main_window(qtbot, tmp_path):
    from app.main_window import MainWindow
    from app.workers import active_workers, cancel_all

    made: list[weakref.ref] = []
    docs: list[weakref.ref] = []

    def factory(project: str | Path | None = None, show: bool = True) -> MainWindow:
        window = MainWindow(project=project or tmp_path / f"test{len(made)}.panns")
        window.quiet_errors = True  # errors go to window.last_error, no modal box
        window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        made.append(weakref.ref(window))
        docs.append(weakref.ref(window.document))
        if show:
            window.show()
            qtbot.waitExposed(window)
        return window

    yield factory

    import shiboken6

    for ref in made:
        if ref() is not None and shiboken6.isValid(ref()):
            ref().close()
    assert cancel_all(wait=20.0), "a worker did not stop"
    for _ in range(3):  # deleting Qt objects frees wrappers, which frees cycles
        QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        QApplication.processEvents()
        gc.collect()
    leaked = [ref() for ref in made if ref() is not None and shiboken6.isValid(ref())]
    assert not leaked, f"main windows were not destroyed: {leaked}"
    leaked_docs = [ref() for ref in docs if ref() is not None]
    assert not leaked_docs, "a document outlived its window"
    assert not active_workers()


def _send(widget, kind, pos: QPoint, button, buttons, modifiers) -> None:
    local = QPointF(pos)
    event = QMouseEvent(kind, local, QPointF(widget.mapToGlobal(pos)), button, buttons, modifiers)
    QApplication.sendEvent(widget, event)


#: a person's mouse reports moves some 8-16 ms apart; pyqtgraph drops moves closer than
#: its ``mouseRateLimit`` (100/s = 10 ms) to the previous one
MOVE_INTERVAL_MS = 15


def mouse_drag(view, start: tuple[float, float], stop: tuple[float, float],
               button=Qt.MouseButton.LeftButton, modifiers=Qt.KeyboardModifier.NoModifier,
               steps: int = 6) -> None:
    """A drag as a person makes it (data coordinates: seconds, y): the pointer arrives
    at ``start``, the button goes down, the mouse moves in ``steps`` timed moves
    (:data:`MOVE_INTERVAL_MS` apart, so none is dropped by the rate limit) and the
    button comes up at ``stop``. (tests/gui/test_fast_drags.py checks the window also
    takes a drag made faster than that.)"""
    viewport = view.viewport()
    a = view.view_to_widget(*start).toPoint()
    b = view.view_to_widget(*stop).toPoint()
    none = Qt.MouseButton.NoButton
    _send(viewport, QEvent.Type.MouseMove, a, none, none, modifiers)
    QTest.qWait(MOVE_INTERVAL_MS)
    _send(viewport, QEvent.Type.MouseButtonPress, a, button, button, modifiers)
    for i in range(1, steps + 1):
        QTest.qWait(MOVE_INTERVAL_MS)
        p = a + (b - a) * (i / steps)
        _send(viewport, QEvent.Type.MouseMove, p, none, button, modifiers)
    QTest.qWait(MOVE_INTERVAL_MS)
    _send(viewport, QEvent.Type.MouseButtonRelease, b, button, none, modifiers)
    QApplication.processEvents()


def mouse_click(view, at: tuple[float, float], modifiers=Qt.KeyboardModifier.NoModifier,
                button=Qt.MouseButton.LeftButton, double: bool = False) -> None:
    viewport = view.viewport()
    p = view.view_to_widget(*at).toPoint()
    _send(viewport, QEvent.Type.MouseButtonPress, p, button, button, modifiers)
    _send(viewport, QEvent.Type.MouseButtonRelease, p, button, Qt.MouseButton.NoButton,
          modifiers)
    if double:
        _send(viewport, QEvent.Type.MouseButtonDblClick, p, button, button, modifiers)
        _send(viewport, QEvent.Type.MouseButtonRelease, p, button, Qt.MouseButton.NoButton,
              modifiers)
    QApplication.processEvents()


@pytest.fixture(scope="session")
def sed_checkpoint(tmp_path_factory) -> Path:
    """A Cnn6_DecisionLevelMax checkpoint with seeded weights (our format)."""
    from .sed_weights import write_sed_checkpoint

    return write_sed_checkpoint(tmp_path_factory.mktemp("models") / "tiny_sed.pth")
