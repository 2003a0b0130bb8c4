"""Dockable panels of the main window: one :class:`Panel` each, listed in :data:`PANELS`.

The window creates every panel in list order (``create(window)`` returns the dock's
widget; the window keeps it in ``window.panels[name]`` and its dock in
``window.docks[name]``), builds its own menus, then lets each panel add its menu
actions (``add_actions(window, widget)``). Panels reach each other through
``window.panels[...]`` or through the document, and attach nothing to the window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

LEFT = Qt.DockWidgetArea.LeftDockWidgetArea
RIGHT = Qt.DockWidgetArea.RightDockWidgetArea
BOTTOM = Qt.DockWidgetArea.BottomDockWidgetArea


@dataclass(frozen=True)
class Panel:
    """One dock of the window.

    ``tabify_with``: the name of an earlier panel whose dock this one shares (that one
    stays in front). ``hidden``: the dock starts hidden. ``view_toggle``: list the
    dock's show/hide action in the View menu. ``width``: preferred width of a side dock.
    """

    name: str
    title: str
    area: Qt.DockWidgetArea
    create: Callable[[Any], QWidget]
    add_actions: Callable[[Any, QWidget], None] | None = None
    tabify_with: str | None = None
    hidden: bool = False
    view_toggle: bool = True
    width: int | None = None


def in_front(window: Any, name: str, action: Callable[[], None]) -> Callable[[], None]:
    """``action`` run after bringing dock ``name`` to the front (a menu entry that works
    in a hidden or tabbed-away dock)."""

    def run() -> None:
        dock = window.docks[name]
        dock.show()
        dock.raise_()
        action()

    return run


def _panels() -> list[Panel]:
    from . import detection, events_table, recordings, review, search, training
    from .recording import controller as recording

    return [recordings.PANEL, detection.PANEL, events_table.PANEL, review.PANEL,
            training.PANEL, recording.PANEL, search.PANEL]


PANELS: list[Panel] = _panels()
