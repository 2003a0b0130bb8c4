"""The recordings of the open project, one row each: name and state (the tooltip has
the path and length).

The state says how far a recording is: "not detected", "detected: n proposed",
"reviewed k of n" (k of the model's n events decided), "missing" when its file is not
where the project says. A click or the keyboard (arrows, Home/End) makes a row current;
the context menu (and File ▸ Remove recording) takes recordings out of the project,
their events with them, as one undoable step.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QMenu, QTreeWidget, QTreeWidgetItem

from ..model import Document
from ..views.base import format_time
from . import LEFT, Panel

NAME, STATE = range(2)
DONE_COLOUR = "#7fc47f"
MISSING_COLOUR = "#e07a6a"


def state_text(state: dict[str, int], exists: bool = True) -> str:
    """One recording's state in words (see the module docstring)."""
    if not exists:
        return "missing"
    model, decided = state.get("model", 0), state.get("decided", 0)
    if model == 0:
        return "detected: no events" if state.get("scored") else "not detected"
    if decided == 0:
        return f"detected: {model} proposed"
    return f"reviewed {decided} of {model}"


class RecordingsPanel(QTreeWidget):
    """Follows ``recordings``, ``recording`` and ``edits``; ``recording_chosen(id)`` when
    the user makes a row current, ``remove_requested(ids)`` from the context menu."""

    recording_chosen = Signal(int)
    remove_requested = Signal(list)

    def __init__(self, document: Document, parent=None) -> None:
        super().__init__(parent)
        self.document = document
        self.setColumnCount(2)
        self.setHeaderLabels(["Recording", "State"])
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        header = self.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(STATE, QHeaderView.ResizeMode.ResizeToContents)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._context_menu)
        self.itemClicked.connect(lambda item, _col: self._choose(item))
        self.itemActivated.connect(lambda item, _col: self._choose(item))
        self.currentItemChanged.connect(lambda item, _old: self._choose(item))
        self._states_timer = QTimer(self, singleShot=True, interval=150)
        self._states_timer.timeout.connect(self.refresh_states)
        document.events.recordings.connect(self._refill)
        document.events.recording.connect(self.follow_current)
        document.events.edits.connect(lambda _e: self._states_timer.start())

    def count(self) -> int:
        """Number of rows (as QListWidget.count)."""
        return self.topLevelItemCount()

    def items(self) -> list[QTreeWidgetItem]:
        return [self.topLevelItem(i) for i in range(self.topLevelItemCount())]

    def row_of(self, rec_id: int) -> QTreeWidgetItem | None:
        return next((it for it in self.items() if it.data(NAME, Qt.ItemDataRole.UserRole)
                     == rec_id), None)

    def state_of(self, rec_id: int) -> str:
        item = self.row_of(rec_id)
        return item.text(STATE) if item is not None else ""

    def _refill(self, _event=None) -> None:
        self.blockSignals(True)
        self.clear()
        for rec in self.document.recordings:
            item = QTreeWidgetItem([rec.name, ""])
            item.setData(NAME, Qt.ItemDataRole.UserRole, rec.id)
            item.setToolTip(NAME, f"{rec.path}\n{format_time(rec.duration, 1000)}, "
                                  f"{rec.sample_rate} Hz, {rec.channels} channel(s)")
            self.addTopLevelItem(item)
        self.blockSignals(False)
        self.refresh_states()
        self.follow_current()

    def refresh_states(self) -> None:
        """The State column from the store (one query for all recordings)."""
        store = self.document.store
        if store is None:
            return
        states = store.recording_states()
        paths = {r.id: r.path for r in self.document.recordings}
        for item in self.items():
            rec_id = item.data(NAME, Qt.ItemDataRole.UserRole)
            path = paths.get(rec_id)
            exists = path is not None and path.is_file()
            state = states.get(rec_id, {})
            item.setText(STATE, state_text(state, exists))
            colour = None
            if not exists:
                colour = MISSING_COLOUR
                item.setToolTip(STATE, f"{path} is not there: File ▸ Locate moved recordings…")
            elif state.get("model") and state.get("decided") == state.get("model"):
                colour = DONE_COLOUR
            item.setForeground(STATE, QBrush(QColor(colour)) if colour else QBrush())

    def follow_current(self, _event=None) -> None:
        current = self.document.recording
        self.blockSignals(True)
        item = self.row_of(current.id) if current is not None else None
        if item is not None:
            self.setCurrentItem(item)
            self.scrollToItem(item)
        else:
            self.clearSelection()
        self.blockSignals(False)

    def _choose(self, item: QTreeWidgetItem | None) -> None:
        if item is None:
            return
        rec_id = item.data(NAME, Qt.ItemDataRole.UserRole)
        if self.document.recording is None or self.document.recording.id != rec_id:
            self.recording_chosen.emit(rec_id)

    def selected_ids(self) -> list[int]:
        ids = [it.data(NAME, Qt.ItemDataRole.UserRole) for it in self.selectedItems()]
        if not ids and self.document.recording is not None:
            ids = [self.document.recording.id]
        return ids

    def _context_menu(self, pos) -> None:
        item = self.itemAt(pos)
        if item is not None and not item.isSelected():
            self.setCurrentItem(item)
        ids = self.selected_ids()
        if not ids:
            return
        menu = QMenu(self)
        text = "Remove from project" if len(ids) == 1 else f"Remove {len(ids)} from project"
        menu.addAction(text, lambda: self.remove_requested.emit(ids))
        menu.exec(self.viewport().mapToGlobal(pos))


def _create(window) -> RecordingsPanel:
    panel = RecordingsPanel(window.document)
    panel.recording_chosen.connect(lambda rec_id: window.guard(window.show_recording, rec_id))
    panel.remove_requested.connect(
        lambda ids: window.guard(window.document.remove_recordings, ids))
    return panel


PANEL = Panel("recordings", "Recordings", LEFT, _create, view_toggle=False, width=210)
