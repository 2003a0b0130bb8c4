"""The events table beside the views: every event of the current recording in rows.

Sortable by any column, filtered by text, status and label, selection kept in step
with the document both ways, a click jumps the views to the event, a double-click or
Enter plays it, and the label and note cells are editable (each edit is one undoable
document operation).

Sorting and filtering run in numpy inside the model (the row order is an index
array), not in a ``QSortFilterProxyModel``: a proxy compares rows through Python
``data()`` calls, which took 12.6 s to sort 10,000 rows here; numpy takes
milliseconds. Only the rows on screen are ever asked for their text.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pandas as pd
from PySide6.QtCore import (
    QAbstractTableModel,
    QEvent,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from panns_core import events as ev

from ..model import Document
from ..views import theme
from ..views.base import format_time
from . import BOTTOM, Panel

# (key, header, tooltip)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("onset", "Onset", "Start (h:mm:ss.ss)"),
    ("offset", "Offset", "End (h:mm:ss.ss)"),
    ("duration", "Dur.", "Duration in seconds"),
    ("label", "Label", "Class label (F2 or double-click to change)"),
    ("confidence", "Conf.", "Model probability (empty for events added by hand)"),
    ("low_freq", "Low Hz", "Low edge of the event's frequency band (empty: all frequencies; "
                           "F2 or double-click to edit)"),
    ("high_freq", "High Hz", "High edge of the event's frequency band (empty: all "
                             "frequencies; F2 or double-click to edit)"),
    ("status", "Status", "Provenance: proposed, accepted, edited, rejected, added"),
    ("source", "Source", "The model that proposed the event, or human"),
    ("note", "Note", "Free text (F2 or double-click to edit)"),
)
KEYS = tuple(c[0] for c in COLUMNS)
EDITABLE = frozenset({"label", "note", "low_freq", "high_freq"})
NUMERIC = frozenset({"onset", "offset", "duration", "confidence", "low_freq", "high_freq"})
BAND = ("low_freq", "high_freq")

STATUS_COLOURS = {
    ev.PROPOSED: "#e0b040",
    ev.ACCEPTED: "#45c46b",
    ev.EDITED: "#4e9bff",
    ev.ADDED: "#b68cff",
    ev.REJECTED: "#8a8f98",
}
ALL = "__all__"
NOT_REJECTED = "__not_rejected__"
EVENT_ID_ROLE = Qt.ItemDataRole.UserRole + 1


class EventsTableModel(QAbstractTableModel):
    """The document's annotations as table rows, in a numpy-computed order.

    ``order`` holds the positions (into the annotations frame) of the visible rows:
    sorted by ``sort_key`` and filtered by ``text`` / ``status`` / ``label``.
    """

    failed = Signal(object)

    def __init__(self, document: Document, parent=None) -> None:
        super().__init__(parent)
        self.document = document
        self.frame = document.annotations
        self.order = np.arange(len(self.frame))
        self.sort_column = 0
        self.sort_order = Qt.SortOrder.AscendingOrder
        self.text_filter = ""
        self.status_filter = ALL
        self.label_filter = ALL
        self.colours: dict[str, str] = {}
        self._ids = self.frame["id"].to_numpy(dtype=np.int64)
        self._columns = self._column_lists(self.frame)

    # ---------------------------------------------------------------- content
    def set_frame(self, frame: pd.DataFrame) -> None:
        self.beginResetModel()
        self.frame = frame.reset_index(drop=True)
        self._ids = self.frame["id"].to_numpy(dtype=np.int64)
        self._columns = self._column_lists(self.frame)
        self.order = self._compute_order()
        self.endResetModel()

    @staticmethod
    def _column_lists(frame: pd.DataFrame) -> dict[str, list]:
        """Plain lists per column: cell lookups stay cheap (no pandas per cell)."""
        return {key: frame[key].tolist()
                for key in ("id", "onset", "offset", "label", "confidence", "low_freq",
                            "high_freq", "status", "source", "note")}

    def set_filters(self, *, text: str | None = None, status: str | None = None,
                    label: str | None = None) -> None:
        if text is not None:
            self.text_filter = text
        if status is not None:
            self.status_filter = status
        if label is not None:
            self.label_filter = label
        self.beginResetModel()
        self.order = self._compute_order()
        self.endResetModel()

    def _compute_order(self) -> np.ndarray:
        frame = self.frame
        n = len(frame)
        if not n:
            return np.arange(0)
        keep = np.ones(n, dtype=bool)
        if self.status_filter == NOT_REJECTED:
            keep &= (frame["status"] != ev.REJECTED).to_numpy()
        elif self.status_filter != ALL:
            keep &= (frame["status"] == self.status_filter).to_numpy()
        if self.label_filter != ALL:
            keep &= (frame["label"] == self.label_filter).to_numpy()
        text = self.text_filter.strip().casefold()
        if text:
            hay = (frame["label"].astype(str) + "\n" + frame["note"].astype(str) + "\n"
                   + frame["source"].astype(str) + "\n" + frame["status"].astype(str))
            keep &= hay.str.casefold().str.contains(text, regex=False).to_numpy()
        rows = np.flatnonzero(keep)
        key = self._sort_values(KEYS[self.sort_column])[rows]
        # stable: ties keep onset order (the frame is sorted by onset, id)
        if key.dtype.kind == "f":
            # NaN last in both directions
            nan = np.isnan(key)
            filled = np.where(nan, 0.0, key)
            if self.sort_order == Qt.SortOrder.DescendingOrder:
                filled = -filled
            positions = np.lexsort((filled, nan))
        else:
            positions = np.argsort(key, kind="stable")
            if self.sort_order == Qt.SortOrder.DescendingOrder:
                # reverse the groups but keep ties in onset order
                positions = _reverse_stable(key, positions)
        return rows[positions]

    def _sort_values(self, key: str) -> np.ndarray:
        frame = self.frame
        if key == "duration":
            return (frame["offset"] - frame["onset"]).to_numpy(dtype=np.float64)
        if key in NUMERIC:
            return frame[key].to_numpy(dtype=np.float64)
        return frame[key].astype(str).str.casefold().to_numpy(dtype=object).astype(str)

    # ----------------------------------------------------------------- lookup
    def event_id(self, row: int) -> int:
        return int(self._ids[self.order[row]])

    def rows_of(self, ids) -> list[int]:
        """View rows showing the given event ids (hidden ones are left out)."""
        if not len(self.order):
            return []
        wanted = np.fromiter((int(i) for i in ids), dtype=np.int64)
        hit = np.isin(self._ids[self.order], wanted)
        return np.flatnonzero(hit).tolist()

    # ---------------------------------------------------------- Qt interface
    def rowCount(self, parent=None) -> int:  # noqa: N802
        return 0 if parent is not None and parent.isValid() else len(self.order)

    def columnCount(self, parent=None) -> int:  # noqa: N802
        return 0 if parent is not None and parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return COLUMNS[section][1]
            if role == Qt.ItemDataRole.ToolTipRole:
                return COLUMNS[section][2]
        return None

    def flags(self, index):
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if KEYS[index.column()] in EDITABLE:
            base |= Qt.ItemFlag.ItemIsEditable
        return base

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        pos = int(self.order[index.row()])
        key = KEYS[index.column()]
        row = _Row(self._columns, pos)
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return self._text(row, key, edit=role == Qt.ItemDataRole.EditRole)
        if role == EVENT_ID_ROLE:
            return int(row["id"])
        if role == Qt.ItemDataRole.DecorationRole and key == "label":
            return theme.label_color(str(row["label"]), self.colours)
        if role == Qt.ItemDataRole.ForegroundRole:
            if key == "status":
                return QColor(STATUS_COLOURS.get(row["status"], "#cccccc"))
            if row["status"] == ev.REJECTED:
                return QColor(theme.REJECTED_COLOR)
        if role == Qt.ItemDataRole.TextAlignmentRole and key in NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            if key == "status":
                return theme.STATUS_TEXT.get(row["status"], row["status"])
            if key in ("note", "label", "source"):
                return str(row[key])
        return None

    @staticmethod
    def _text(row, key: str, edit: bool = False) -> str:
        if key in ("onset", "offset"):
            return format_time(float(row[key]), 0.01)
        if key == "duration":
            return f"{float(row['offset']) - float(row['onset']):.2f}"
        if key == "confidence":
            value = float(row["confidence"])
            return "" if math.isnan(value) else f"{value:.3f}"
        if key in BAND:
            value = float(row[key])
            if math.isnan(value):
                return ""
            return f"{value:.6g}" if edit else f"{value:.0f}"
        value = row[key]
        return "" if value is None else str(value)

    def setData(self, index, value, role=Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        if role != Qt.ItemDataRole.EditRole or not index.isValid():
            return False
        key = KEYS[index.column()]
        event_id = self.event_id(index.row())
        text = str(value).strip() if key in ("label", *BAND) else str(value)
        current = self._columns[key][int(self.order[index.row()])]
        if key in BAND:
            current = "" if math.isnan(float(current)) else f"{float(current):.6g}"
        if key not in EDITABLE or text == current or (key == "label" and not text):
            return False
        # One undoable document edit, run after the editor has closed: the document's
        # annotations event resets this model, which must not happen mid-commit.
        QTimer.singleShot(0, partial(self._apply_edit, key, event_id, text))
        return True

    def _apply_edit(self, key: str, event_id: int, text: str) -> None:
        try:
            if key == "label":
                self.document.relabel([event_id], text)
            elif key in BAND:
                self._edit_band(key, event_id, text)
            else:
                self.document.set_note(event_id, text)
        except Exception as error:  # a PannsError message reaches the window
            self.failed.emit(error)

    def _edit_band(self, key: str, event_id: int, text: str) -> None:
        """A typed band edge (Hz; a "k" suffix means kHz; empty clears the band)."""
        from panns_core.errors import PannsError

        row = self.document.event(event_id)
        band = [float(row["low_freq"]), float(row["high_freq"])]
        band = [None if v != v else v for v in band]
        if not text:
            self.document.set_band(event_id, None, None)
            return
        cleaned = text.lower().replace("hz", "").strip()
        scale = 1000.0 if cleaned.endswith("k") else 1.0
        try:
            value = float(cleaned.rstrip("k").strip()) * scale
        except ValueError:
            raise PannsError(f"{text!r} is not a frequency: type hertz, e.g. 2500 or 2.5k "
                             "(empty: no band).") from None
        band[BAND.index(key)] = value
        self.document.set_band(event_id, *band)

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        old_ids = [(self.event_id(i.row()), i.column()) for i in old]
        self.sort_column = column
        self.sort_order = order
        self.order = self._compute_order()
        position = {int(self._ids[p]): r for r, p in enumerate(self.order)}
        new = [self.index(position[i], c) if i in position else QModelIndex()
               for i, c in old_ids]
        self.changePersistentIndexList(old, new)
        self.layoutChanged.emit()


class _Row:
    """One row of the column lists, read like a mapping (``row["label"]``)."""

    __slots__ = ("_columns", "_pos")

    def __init__(self, columns: dict[str, list], pos: int) -> None:
        self._columns = columns
        self._pos = pos

    def __getitem__(self, key: str):
        return self._columns[key][self._pos]


def _reverse_stable(key: np.ndarray, ascending: np.ndarray) -> np.ndarray:
    """Descending order of ``key`` where equal keys keep their original order."""
    sorted_keys = key[ascending]
    # group boundaries of equal keys in the ascending order
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    groups = np.split(ascending, starts[1:])
    return np.concatenate(groups[::-1]) if groups else ascending


class EventsTableView(QTableView):
    """The table; Enter plays the current event (taken before any window shortcut)."""

    activated_event = Signal(int)  # Enter / double-click: play this event
    label_requested = Signal(int)  # double-click on a label cell

    def event(self, e) -> bool:
        # Keep Enter for the table (the window uses it to add an event from a time
        # selection) while the table has focus, unless a cell is being edited.
        if e.type() == QEvent.Type.ShortcutOverride and e.key() in (
            Qt.Key.Key_Return, Qt.Key.Key_Enter
        ) and self.state() != QAbstractItemView.State.EditingState:
            e.accept()
            return True
        return super().event(e)

    def keyPressEvent(self, e) -> None:  # noqa: N802
        if e.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and \
                self.state() != QAbstractItemView.State.EditingState:
            index = self.currentIndex()
            if index.isValid():
                self.activated_event.emit(int(index.data(EVENT_ID_ROLE)))
            return
        super().keyPressEvent(e)

    def mouseDoubleClickEvent(self, e) -> None:  # noqa: N802
        index = self.indexAt(e.position().toPoint())
        if not index.isValid():
            return
        key = KEYS[index.column()]
        event_id = int(index.data(EVENT_ID_ROLE))
        if key in ("note", "low_freq", "high_freq"):
            self.edit(index)
        elif key == "label":
            self.label_requested.emit(event_id)
        else:
            self.activated_event.emit(event_id)


class EventsTablePanel(QWidget):
    """Dock content: filters, counter and the table; bound to a document."""

    play_requested = Signal(int)
    relabel_requested = Signal(object)  # list of ids
    failed = Signal(object)

    def __init__(self, document: Document, parent=None) -> None:
        super().__init__(parent)
        self.document = document
        self._syncing = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        filters = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter: label, note, source…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._on_text)
        self.status_combo = QComboBox()
        self.status_combo.addItem("All statuses", ALL)
        self.status_combo.addItem("All but rejected", NOT_REJECTED)
        for status in ev.STATUSES:
            self.status_combo.addItem(status, status)
        self.status_combo.currentIndexChanged.connect(self._on_status)
        self.label_combo = QComboBox()
        self.label_combo.setMinimumContentsLength(10)
        self.label_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.label_combo.addItem("All labels", ALL)
        self.label_combo.currentIndexChanged.connect(self._on_label)
        filters.addWidget(self.search, 2)
        filters.addWidget(self.status_combo, 1)
        filters.addWidget(self.label_combo, 1)
        layout.addLayout(filters)

        self.model = EventsTableModel(document, self)
        self.model.failed.connect(self.failed.emit)
        self.table = EventsTableView()
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setShowGrid(False)
        vertical = self.table.verticalHeader()
        vertical.setVisible(False)
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vertical.setDefaultSectionSize(self.fontMetrics().height() + 6)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        metrics = self.fontMetrics()
        for column, sample in enumerate(("0:00:00.00", "0:00:00.00", "000.00",
                                         "Speech synthesizer", "0.000", "000000",
                                         "000000", "proposed",
                                         "Cnn14_DecisionLevelMax")):
            header.resizeSection(column, metrics.horizontalAdvance(sample) + 24)
        layout.addWidget(self.table, 1)
        self.counter = QLabel("")
        self.counter.setStyleSheet("color: #9aa0aa;")
        layout.addWidget(self.counter)

        self.table.selectionModel().selectionChanged.connect(self._on_table_selection)
        self.table.activated_event.connect(self.play_requested.emit)
        self.table.label_requested.connect(lambda i: self.relabel_requested.emit([i]))
        document.events.annotations.connect(self._on_annotations)
        document.selection_model.events.selection.connect(self._on_doc_selection)
        document.events.vocabulary.connect(self._on_vocabulary)
        self._on_vocabulary(None)
        self._on_annotations(None)

    # --------------------------------------------------------------- filters
    def _on_text(self, text: str) -> None:
        self.model.set_filters(text=text)
        self._after_reset()

    def _on_status(self, _index: int) -> None:
        self.model.set_filters(status=self.status_combo.currentData())
        self._after_reset()

    def _on_label(self, _index: int) -> None:
        self.model.set_filters(label=self.label_combo.currentData())
        self._after_reset()

    def set_status_filter(self, status: str) -> None:
        self.status_combo.setCurrentIndex(max(0, self.status_combo.findData(status)))

    def set_label_filter(self, label: str) -> None:
        self.label_combo.setCurrentIndex(max(0, self.label_combo.findData(label)))

    def _refresh_label_combo(self) -> None:
        current = self.label_combo.currentData()
        labels = sorted(set(self.model.frame["label"].astype(str)), key=str.casefold)
        have = [self.label_combo.itemData(i) for i in range(1, self.label_combo.count())]
        if have == labels:
            return
        self.label_combo.blockSignals(True)
        self.label_combo.clear()
        self.label_combo.addItem("All labels", ALL)
        for label in labels:
            self.label_combo.addItem(theme_icon(label, self.model.colours), label, label)
        index = self.label_combo.findData(current)
        self.label_combo.setCurrentIndex(max(0, index))
        self.label_combo.blockSignals(False)
        if index < 0 and current != ALL:  # the filtered label is gone
            self.model.set_filters(label=ALL)

    # ---------------------------------------------------------- doc listeners
    def _on_annotations(self, _event) -> None:
        scroll = self.table.verticalScrollBar().value()
        current = self.table.currentIndex()
        current_id = int(current.data(EVENT_ID_ROLE)) if current.isValid() else None
        current_column = current.column() if current.isValid() else 0
        self._syncing = True
        try:
            self.model.set_frame(self.document.annotations)
            self._refresh_label_combo()
        finally:
            self._syncing = False
        self.table.verticalScrollBar().setValue(scroll)
        self._select_ids(self.document.selection, scroll_to=False, current_id=current_id,
                         current_column=current_column)
        self._update_counter()

    def _after_reset(self) -> None:
        self._select_ids(self.document.selection, scroll_to=True)
        self._update_counter()

    def _on_vocabulary(self, _event) -> None:
        self.model.colours = self.document.label_colours()
        if self.model.rowCount():
            self.model.dataChanged.emit(self.model.index(0, 3),
                                        self.model.index(self.model.rowCount() - 1, 3))

    def _on_doc_selection(self, event) -> None:
        if not self._syncing:
            self._select_ids(event.value, scroll_to=True)

    def _select_ids(self, ids, *, scroll_to: bool, current_id: int | None = None,
                    current_column: int = 0) -> None:
        """Show the document's selection in the table without echoing it back."""
        rows = self.model.rows_of(ids)
        selection = QItemSelection()
        last = self.model.columnCount() - 1
        for start, stop in _runs(rows):
            selection.select(self.model.index(start, 0), self.model.index(stop, last))
        sm = self.table.selectionModel()
        self._syncing = True
        try:
            sm.select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
            target = None
            if current_id is not None:
                found = self.model.rows_of([current_id])
                target = found[0] if found else None
            if target is None and rows:
                target = rows[0]
            if target is not None:
                sm.setCurrentIndex(self.model.index(target, current_column),
                                   QItemSelectionModel.SelectionFlag.NoUpdate)
                if scroll_to:
                    self.table.scrollTo(self.model.index(target, 0),
                                        QAbstractItemView.ScrollHint.EnsureVisible)
        finally:
            self._syncing = False

    # -------------------------------------------------------- table -> doc
    def _on_table_selection(self, *_args) -> None:
        if self._syncing:
            return
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        ids = [self.model.event_id(r) for r in rows]
        self._syncing = True
        try:
            self.document.selection = ids
        finally:
            self._syncing = False
        if len(ids) == 1:
            self.jump_to(ids[0])

    def jump_to(self, event_id: int) -> None:
        """Bring the event into view (keeping the zoom when it fits) and put the
        cursor at its onset."""
        doc = self.document
        row = doc.event(event_id)
        onset, offset = float(row["onset"]), float(row["offset"])
        start, stop = doc.view_range
        width = stop - start
        if offset - onset > width * 0.9:
            pad = 0.1 * (offset - onset)
            doc.view_range = (onset - pad, offset + pad)
        elif onset < start or offset > stop:
            centre = (onset + offset) / 2
            doc.view_range = (centre - width / 2, centre + width / 2)
        doc.cursor = onset

    def _update_counter(self) -> None:
        shown, total = self.model.rowCount(), len(self.model.frame)
        if total == 0:
            text = "No events. Run detection (Ctrl+D) or drag on the events track to add one."
        elif shown == total:
            text = f"{total:,} events"
        else:
            text = f"{shown:,} of {total:,} events shown"
        self.counter.setText(text)


def theme_icon(label: str, colours: dict[str, str]):
    """A small colour swatch for a label (combo boxes)."""
    from PySide6.QtGui import QIcon, QPixmap

    pixmap = QPixmap(10, 10)
    pixmap.fill(theme.label_color(label, colours))
    return QIcon(pixmap)


def _runs(rows: list[int]):
    """Contiguous runs of sorted row numbers as (first, last) pairs."""
    if not rows:
        return
    start = prev = rows[0]
    for r in rows[1:]:
        if r != prev + 1:
            yield start, prev
            start = r
        prev = r
    yield start, prev


def _create(window) -> EventsTablePanel:
    panel = EventsTablePanel(window.document)
    panel.play_requested.connect(window.player.play_event)
    panel.relabel_requested.connect(window.relabel_dialog)
    panel.failed.connect(window.show_error)
    return panel


def _add_actions(window, panel: EventsTablePanel) -> None:
    window.add_action("View", "Find in events table", lambda: _focus_search(panel),
                      QKeySequence.StandardKey.Find)


def _focus_search(panel: EventsTablePanel) -> None:
    panel.window().show()
    panel.search.setFocus()
    panel.search.selectAll()


PANEL = Panel("events_table", "Events table", BOTTOM, _create, _add_actions)
