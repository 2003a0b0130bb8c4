"""The vocabulary dialog (Edit ▸ Label vocabulary…): the project's labels with their
colour, key and number of events; add, rename (on every event too), remove, recolour,
give a key. Every change is one undoable step of the document's history (Undo/Redo
here and in the Edit menu).

The methods :meth:`VocabularyDialog.add`, :meth:`~VocabularyDialog.rename`,
:meth:`~VocabularyDialog.set_colour`, :meth:`~VocabularyDialog.set_hotkey` and
:meth:`~VocabularyDialog.remove` are what the buttons and cell edits call; a refused
change is explained in the dialog, never in a second box.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QColorDialog,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ..views import theme

NAME, COLOUR, KEY, EVENTS = range(4)
ERROR_STYLE = "color: #ff6f61;"


class VocabularyDialog(QDialog):
    """See the module docstring. ``ask_remove(name, n_events)`` returns "keep",
    "delete" or None (cancel); tests replace it."""

    def __init__(self, document, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Label vocabulary")
        self.resize(520, 480)
        self.document = document
        self.ask_remove: Callable[[str, int], str | None] = self._ask_remove
        layout = QVBoxLayout(self)
        intro = QLabel("Your project's labels. Labels you accept, add or relabel to join "
                       "this list. Double-click a name to rename it on every event, a key "
                       "cell to give it a key (1-9 set the label of the selection).")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Label", "Colour", "Key", "Events"])
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        self.table.itemChanged.connect(self._on_item_changed)
        self.table.cellDoubleClicked.connect(self._on_double_click)
        layout.addWidget(self.table, 1)
        row = QHBoxLayout()
        self.buttons: dict[str, QPushButton] = {}
        for key, text, slot in (("add", "Add…", self._add_clicked),
                                ("rename", "Rename…", self._rename_clicked),
                                ("colour", "Colour…", self._colour_clicked),
                                ("remove", "Remove", self._remove_clicked),
                                ("undo", "Undo", self._undo),
                                ("redo", "Redo", self._redo)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            button.setAutoDefault(False)
            self.buttons[key] = button
            row.addWidget(button)
        row.addStretch(1)
        layout.addLayout(row)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout.addWidget(close)
        QShortcut(QKeySequence.StandardKey.Undo, self, self._undo)
        QShortcut(QKeySequence("Ctrl+Shift+Z"), self, self._redo)
        self._filling = False
        document.events.vocabulary.connect(self._on_vocabulary)
        document.history.events.history.connect(self._on_history)
        self.finished.connect(self._disconnect)
        self.refill()
        self._on_history()

    # ---------------------------------------------------------------- content
    def names(self) -> list[str]:
        return [self.table.item(r, NAME).text() for r in range(self.table.rowCount())]

    def refill(self) -> None:
        """The table from the vocabulary (and the events' counts per label)."""
        store = self.document.store
        counts = {}
        if store is not None:
            frame = store.events()
            counts = frame["label"].value_counts().to_dict() if len(frame) else {}
        current = self.current()
        self._filling = True
        entries = self.document.vocabulary()
        self.table.setRowCount(len(entries))
        colours = self.document.label_colours()
        for r, entry in enumerate(entries):
            name = QTableWidgetItem(entry.name)
            name.setData(Qt.ItemDataRole.UserRole, entry.name)
            colour = QTableWidgetItem(entry.colour or "auto")
            colour.setFlags(colour.flags() & ~Qt.ItemFlag.ItemIsEditable)
            colour.setBackground(theme.label_color(entry.name, colours))
            colour.setToolTip("Double-click to choose a colour")
            key = QTableWidgetItem(entry.hotkey or "")
            events = QTableWidgetItem(str(int(counts.get(entry.name, 0))))
            events.setFlags(events.flags() & ~Qt.ItemFlag.ItemIsEditable)
            events.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            for c, item in enumerate((name, colour, key, events)):
                self.table.setItem(r, c, item)
        self._filling = False
        if current in self.names():
            self.table.selectRow(self.names().index(current))

    def current(self) -> str | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if rows:
            item = self.table.item(rows[0].row(), NAME)
            return item.data(Qt.ItemDataRole.UserRole) if item else None
        return None

    def _say(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet(ERROR_STYLE if error else "")

    def _run(self, func, *args, **kwargs) -> bool:
        try:
            func(*args, **kwargs)
        except Exception as error:
            from panns_core.errors import PannsError

            text = (str(error) if isinstance(error, PannsError)
                    else f"{type(error).__name__}: {error}")
            self._say(text, error=True)
            self.refill()  # put back what a refused cell edit showed
            return False
        self._say("")
        return True

    # ---------------------------------------------------------------- changes
    def add(self, name: str) -> bool:
        return self._run(self.document.add_label, name.strip())

    def rename(self, old: str, new: str) -> bool:
        new = new.strip()
        if new == old:
            return True
        merged = new in self.names()
        ok = self._run(self.document.rename_label, old, new)
        if ok and merged:
            self._say(f"{old} merged into {new}.")
        return ok

    def set_colour(self, name: str, colour: str | None) -> bool:
        return self._run(self.document.update_label, name, colour=colour)

    def set_hotkey(self, name: str, key: str | None) -> bool:
        key = (key or "").strip() or None
        if key is not None and len(key) != 1:
            self._say("A key is one character (1-9 set the label of the selected events).",
                      error=True)
            self.refill()
            return False
        return self._run(self.document.update_label, name, hotkey=key)

    def remove(self, name: str) -> bool:
        store = self.document.store
        n = len(store.events(labels=[name])) if store is not None else 0
        choice = "keep"
        if n:
            choice = self.ask_remove(name, n)
            if choice is None:
                return False
        return self._run(lambda: self.document.remove_label(
            name, delete_events=choice == "delete"))

    # ------------------------------------------------------------ UI handlers
    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling:
            return
        name = self.table.item(item.row(), NAME).data(Qt.ItemDataRole.UserRole)
        if item.column() == NAME:
            self.rename(name, item.text())
        elif item.column() == KEY:
            self.set_hotkey(name, item.text())

    def _on_double_click(self, row: int, column: int) -> None:
        if column == COLOUR:
            self._choose_colour(self.table.item(row, NAME).data(Qt.ItemDataRole.UserRole))

    def _add_clicked(self) -> None:
        name, ok = QInputDialog.getText(self, "Add a label", "Name:")
        if ok and name.strip():
            self.add(name)

    def _rename_clicked(self) -> None:
        name = self.current()
        if name is None:
            self._say("Select a label first.", error=True)
            return
        new, ok = QInputDialog.getText(self, "Rename a label",
                                       f"New name for {name} (on every event):", text=name)
        if ok:
            self.rename(name, new)

    def _colour_clicked(self) -> None:
        name = self.current()
        if name is None:
            self._say("Select a label first.", error=True)
            return
        self._choose_colour(name)

    def _choose_colour(self, name: str) -> None:
        start = theme.label_color(name, self.document.label_colours())
        colour = QColorDialog.getColor(start, self, f"Colour of {name}")
        if colour.isValid():
            self.set_colour(name, colour.name())

    def _remove_clicked(self) -> None:
        name = self.current()
        if name is None:
            self._say("Select a label first.", error=True)
            return
        self.remove(name)

    def _ask_remove(self, name: str, n: int) -> str | None:
        box = QMessageBox(QMessageBox.Icon.Question, "Remove a label",
                          f"{n} event(s) carry {name}. Remove the label from the vocabulary "
                          "and keep those events, or delete them too? (Undo brings all back.)",
                          parent=self)
        keep = box.addButton("Keep the events", QMessageBox.ButtonRole.AcceptRole)
        delete = box.addButton("Delete them too", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        clicked = box.clickedButton()
        return "keep" if clicked is keep else "delete" if clicked is delete else None

    def _undo(self) -> None:
        self._run(self.document.undo)

    def _redo(self) -> None:
        self._run(self.document.redo)

    def _on_vocabulary(self, _event=None) -> None:
        self.refill()

    def _on_history(self, _event=None) -> None:
        history = self.document.history
        self.buttons["undo"].setEnabled(history.can_undo)
        self.buttons["undo"].setToolTip(history.undo_text)
        self.buttons["redo"].setEnabled(history.can_redo)
        self.buttons["redo"].setToolTip(history.redo_text)
        self.refill()  # an undone rename changes the event counts too

    def _disconnect(self, *_args) -> None:
        self.document.events.vocabulary.disconnect(self._on_vocabulary)
        self.document.history.events.history.disconnect(self._on_history)


def open_vocabulary(window) -> None:
    """Edit ▸ Label vocabulary…"""
    from panns_core.errors import PannsError

    if window.document.store is None:
        raise PannsError("No project is open. Open or create a project first.")
    window.run_dialog("vocabulary", VocabularyDialog(window.document, window))
