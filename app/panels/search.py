"""Find similar: search the project by example, label the hits, train a head, re-rank.

Select an event or a time range and press *Find similar* (Ctrl+Shift+F): the window's model
indexes what the project's search index lacks (once per recording, in the background),
then the list shows the ~1-s windows of every recording most like the queries, with a
spectrogram thumbnail. Another *Find similar* adds a query (they combine); *Clear* starts
over. In the list, Enter plays a hit, A adds it as an event of the query's label (a
positive), R adds it as a rejected one (a negative); both are ordinary edits (Ctrl+Z).
*Train* fits a linear head on the cached embeddings in seconds and re-ranks every window
by it (*most likely*) or puts the hits it is least sure of first (*most uncertain*);
*Register model* saves the head as a one-class model that detection can use. The work
itself is :mod:`panns_core.search`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from PySide6.QtCore import QEvent, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from panns_core import events as ev
from panns_core.errors import PannsError

from ..model import Document
from ..views.base import format_time
from ..workers import Worker
from . import BOTTOM, Panel, in_front

TOP = 50
THUMB = QSize(96, 36)
ORDERS = {"Similarity": "similar", "Head: most likely": "score",
          "Head: most uncertain": "uncertain"}  # fmt: skip
_LUT: np.ndarray | None = None


# -- work on the worker thread (no widgets) -------------------------------------------------
def thumbnail(path: str, onset: float, offset: float) -> np.ndarray:
    """A small log-mel picture (mels, frames, RGB uint8) of ``[onset, offset)``."""
    from panns_core.audio import load_audio
    from panns_core.display.mel import LiveLogMel

    global _LUT
    if _LUT is None:
        import pyqtgraph as pg

        _LUT = pg.colormap.get("magma").getLookupTable(nPts=256)[:, :3].astype(np.uint8)
    rate = 16000
    samples, _ = load_audio(path, rate, start=max(0.0, onset), stop=offset)
    mel = LiveLogMel(rate, n_mels=36, fmax=8000.0)(samples)
    if not len(mel):
        mel = np.full((1, 36), -100.0, np.float32)
    top = float(mel.max())
    scaled = np.clip((mel - (top - 70.0)) / 70.0, 0.0, 1.0)
    return np.ascontiguousarray(_LUT[(scaled.T[::-1] * 255).astype(np.uint8)])


def _thumbs(hits: list, report: Callable[[float, str], None]) -> list[np.ndarray]:
    out = []
    for i, hit in enumerate(hits):
        try:
            out.append(thumbnail(hit.path, hit.onset, hit.offset))
        except Exception:  # a moved file: no picture, the hit stays
            out.append(np.zeros((36, 1, 3), np.uint8))
        if i % 10 == 9:
            report(0.9 + 0.1 * (i + 1) / len(hits), "pictures")
    return out


_DETECTORS: dict[Any, Any] = {}


def _detector(spec: str | None):
    from panns_core.hub.resolve import load_detector

    if spec not in _DETECTORS:
        _DETECTORS.clear()  # one model in memory at a time
        _DETECTORS[spec] = load_detector(spec)
    return _DETECTORS[spec]


def search_job(project: str, spec: str | None, queries: list, top: int,
               report: Callable[[float, str], None], cancel=None) -> dict:  # fmt: skip
    """Index what is missing, then search; returns the index, model and hits."""
    from panns_core.search import build_index, search
    from panns_core.search.index import open_index

    report(0.0, "loading the model")
    detector = _detector(spec)

    def progress(done: float, total: float, name: str) -> None:
        report(0.85 * done / max(total, 1e-9), f"indexing {name}")

    build_index(project, detector, progress=progress, cancel=cancel)
    index = open_index(project, detector.model_id)
    report(0.88, "searching")
    hits = search(index, [q for q, _ in queries], top=top)
    return {"index": index, "detector": detector, "hits": hits, "thumbs": _thumbs(hits, report)}


def train_job(index, events, label: str, order: str, top: int, exclude: list,
              report: Callable[[float, str], None], cancel=None) -> dict:  # fmt: skip
    from panns_core.search.agile import labelled_rows, rerank, train_head

    labelled = labelled_rows(index, events, label)

    def progress(fraction: float) -> None:
        report(0.8 * fraction, "training the head")

    head = train_head(index, labelled, label, progress=progress, cancel=cancel)
    report(0.85, "re-ranking")
    hits = rerank(index, head, top=top, mode=order, exclude=[*labelled.spans, *exclude])
    return {"head": head, "hits": hits, "thumbs": _thumbs(hits, report)}


def register_job(detector, head, name: str) -> str:
    from panns_core.search.agile import register_head

    return register_head(detector, head, name).name


# -- the panel ---------------------------------------------------------------------------
class HitTable(QTableWidget):
    """The ranked list; Enter plays, A adds, R rejects (keys win over the window's own
    A/R while the list has the focus)."""

    key = Signal(str)
    KEYS: ClassVar[dict] = {Qt.Key.Key_A: "add", Qt.Key.Key_R: "reject", Qt.Key.Key_Return: "play",
            Qt.Key.Key_Enter: "play", Qt.Key.Key_P: "play"}  # fmt: skip

    def event(self, event) -> bool:
        if (event.type() == QEvent.Type.ShortcutOverride and event.key() in self.KEYS
                and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier):  # fmt: skip
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt API
        action = self.KEYS.get(event.key())
        if action and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            self.key.emit(action)
            return
        super().keyPressEvent(event)


class SearchPanel(QWidget):
    """The dock content. ``find_similar()``, ``clear()``, ``add_hit()``, ``reject_hit()``,
    ``play_hit()``, ``train()``, ``register_model(name)`` drive it."""

    failed = Signal(object)
    play_requested = Signal(int, float, float)  # recording id, onset, offset
    busy_changed = Signal(bool)
    hits_changed = Signal()

    def __init__(self, document: Document, parent=None) -> None:
        super().__init__(parent)
        self.document = document
        self.queries: list[tuple[Any, str]] = []  # (Query, label)
        self.query_spans: list[tuple[int, float, float]] = []
        self.hits: list = []
        self.decisions: dict[int, int] = {}  # hit row -> event id
        self.index = None
        self.detector = None
        self.head = None
        self.worker: Worker | None = None
        self.registered: str | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        row = QHBoxLayout()
        self.find_button = QPushButton("Find similar")
        self.find_button.setToolTip("Search every recording for windows like the selected "
                                    "event or time range; again to add a query (Ctrl+Shift+F)")
        self.find_button.clicked.connect(self.find_similar)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear)
        self.queries_label = QLabel("Select an event or a time range, then Find similar.")
        self.queries_label.setWordWrap(True)
        row.addWidget(self.find_button)
        row.addWidget(self.clear_button)
        row.addWidget(self.queries_label, 1)
        layout.addLayout(row)

        self.table = HitTable(0, 5)
        self.table.setHorizontalHeaderLabels(["", "score", "recording", "time", "label"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setIconSize(THUMB)
        self.table.verticalHeader().setDefaultSectionSize(THUMB.height() + 4)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setWordWrap(False)
        self.table.setMinimumHeight(4 * (THUMB.height() + 4) + 30)
        self.table.setColumnWidth(0, THUMB.width() + 8)
        self.table.key.connect(self._on_key)
        self.table.cellDoubleClicked.connect(lambda r, _c: self.play_hit(r))
        layout.addWidget(self.table, 1)

        row = QHBoxLayout()
        self.play_button = QPushButton("Play (Enter)")
        self.play_button.clicked.connect(lambda: self.play_hit())
        self.add_button = QPushButton("Add (A)")
        self.add_button.clicked.connect(lambda: self.add_hit())
        self.reject_button = QPushButton("Reject (R)")
        self.reject_button.clicked.connect(lambda: self.reject_hit())
        self.train_button = QPushButton("Train")
        self.train_button.setToolTip("Fit a head on the labelled hits and re-rank every window")
        self.train_button.clicked.connect(self.train)
        self.order_combo = QComboBox()
        self.order_combo.addItems(list(ORDERS))
        self.order_combo.currentTextChanged.connect(self._on_order)
        self.register_button = QPushButton("Register model…")
        self.register_button.clicked.connect(self._ask_register)
        for widget in (self.play_button, self.add_button, self.reject_button, self.train_button,
                       self.order_combo, self.register_button):  # fmt: skip
            row.addWidget(widget)
        layout.addLayout(row)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("")
        self.progress.setTextVisible(True)
        layout.addWidget(self.progress)
        document.events.edits.connect(self._on_edits)
        self._update_buttons()

    # -- queries ----------------------------------------------------------------------
    @property
    def label(self) -> str | None:
        return self.queries[-1][1] if self.queries else None

    def _selection_query(self) -> tuple[Any, str]:
        from panns_core.search import Query

        doc = self.document
        rec = doc.recording
        if rec is None:
            raise PannsError("Open a recording, then select an event or a time range.")
        if doc.selection:
            row = doc.event(min(doc.selection))
            boxed = np.isfinite(float(row.get("low_freq", np.nan))) or np.isfinite(
                float(row.get("high_freq", np.nan)))  # fmt: skip
            if boxed:  # the embeddings cover every frequency: the box's time span is searched
                doc.status("Find similar searches the box's time span (the embeddings cover "
                           "all frequencies).")  # fmt: skip
            return Query(rec.name, float(row["onset"]), float(row["offset"])), str(row["label"])
        if doc.time_selection is not None:
            onset, offset = doc.time_selection
            return Query(rec.name, float(onset), float(offset)), doc.default_label
        raise PannsError("Select an event or drag a time range first; it is the example "
                         "to search for.")  # fmt: skip

    def find_similar(self) -> None:
        if self.busy:
            return
        if self.document.store is None or self.document.project_path is None:
            raise PannsError("Search needs a project: open or create one first.")
        query, label = self._selection_query()
        self.queries.append((query, label))
        self._show_queries()
        self._run(search_job, str(self.document.project_path), self.document.model,
                  list(self.queries), TOP, on_done=self._searched)  # fmt: skip

    def clear(self) -> None:
        self.queries, self.hits, self.decisions, self.head = [], [], {}, None
        self.order_combo.setCurrentIndex(0)
        self._show_queries()
        self._fill([], [])

    def _show_queries(self) -> None:
        if not self.queries:
            self.queries_label.setText("Select an event or a time range, then Find similar.")
            return
        parts = [f"{q.recording} {format_time(q.onset, 0.01)}–{format_time(q.offset, 0.01)}"
                 for q, _ in self.queries]  # fmt: skip
        self.queries_label.setText(f"<b>{self.label}</b>: " + "; ".join(parts))

    # -- workers ----------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.worker is not None

    def _run(self, func, *args, on_done) -> None:
        holder: dict[str, Worker] = {}

        def report(fraction: float, text: str) -> None:
            worker = holder.get("w")
            if worker is not None:
                worker.signals.progress.emit(float(fraction), text)

        worker = Worker(func, *args, report=report) if func is not register_job else Worker(
            func, *args)  # fmt: skip
        holder["w"] = worker
        worker.progress.connect(self._on_progress)
        worker.returned.connect(on_done)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self._update_buttons()
        self.busy_changed.emit(True)
        worker.start()

    def _on_progress(self, fraction: float, text: str) -> None:
        self.progress.setValue(round(1000 * fraction))
        self.progress.setFormat(f"{text} %p%")

    def _on_error(self, error) -> None:
        self.progress.setFormat("failed")
        self.failed.emit(error)

    def _on_finished(self) -> None:
        self.worker = None
        if self.progress.format() != "failed":
            self.progress.setValue(1000)
            self.progress.setFormat("done")
        self._update_buttons()
        self.busy_changed.emit(False)

    def _searched(self, result: dict) -> None:
        self.index, self.detector, self.head = result["index"], result["detector"], None
        entries = self.index.entries
        self.query_spans = [(entries.index(self.index.entry_of(q.recording)), q.onset, q.offset)
                            for q, _ in self.queries]  # fmt: skip
        self.order_combo.blockSignals(True)
        self.order_combo.setCurrentIndex(0)
        self.order_combo.blockSignals(False)
        self._fill(result["hits"], result["thumbs"])
        self.document.status(f"{len(result['hits'])} windows like {self.label} "
                             f"({self.index.rows} windows searched).")  # fmt: skip

    def train(self) -> None:
        if self.busy:
            return
        if self.index is None or self.label is None:
            raise PannsError("Find similar first, label a few hits (A / R), then train.")
        order = ORDERS[self.order_combo.currentText()]
        if order == "similar":
            order = "score"
            self.order_combo.blockSignals(True)
            self.order_combo.setCurrentText("Head: most likely")
            self.order_combo.blockSignals(False)
        events = self.document.store.events(labels=[self.label])
        self._run(train_job, self.index, events, self.label, order, TOP,
                  list(self.query_spans), on_done=self._trained)  # fmt: skip

    def _trained(self, result: dict) -> None:
        self.head = result["head"]
        self._fill(result["hits"], result["thumbs"])
        head = self.head
        self.document.status(f"Head for {head.label} trained on {head.positives} positive and "
                             f"{head.negatives} negative windows in {head.seconds:.2f} s; "
                             "the list is re-ranked.")  # fmt: skip

    def _on_order(self, text: str) -> None:
        if self.busy or self.index is None:
            return
        if ORDERS[text] == "similar":
            if self.queries:
                self._run(search_job, str(self.document.project_path), self.document.model,
                          list(self.queries), TOP, on_done=self._searched)  # fmt: skip
        elif self.head is not None or self.decisions:
            self.guard(self.train)

    def guard(self, func) -> None:
        try:
            func()
        except PannsError as error:
            self.failed.emit(error)

    def register_model(self, name: str) -> None:
        if self.head is None or self.detector is None:
            raise PannsError("Train a head first (label hits with A / R, then Train).")
        self._run(register_job, self.detector, self.head, name, on_done=self._registered)

    def _registered(self, name: str) -> None:
        self.registered = name
        self.document.status(f"Registered {name}: choose it in Detection to detect "
                             f"{self.head.label if self.head else ''}.")  # fmt: skip
        window = self.window()
        panel = getattr(window, "panels", {}).get("detection")
        if panel is not None and hasattr(panel, "refresh_models"):
            panel.refresh_models()

    def _ask_register(self) -> None:
        if self.head is None:
            self.failed.emit(PannsError("Train a head first (label hits with A / R, then "
                                        "Train)."))  # fmt: skip
            return
        name, ok = QInputDialog.getText(self, "Register model", "Name of the new model:",
                                        text=f"{self.head.label}-search")  # fmt: skip
        if ok and name.strip():
            self.guard(lambda: self.register_model(name.strip()))

    # -- the list ---------------------------------------------------------------------
    def _fill(self, hits: list, thumbs: list) -> None:
        self.hits = list(hits)
        self.decisions = {}
        self.table.setRowCount(len(self.hits))
        for row, hit in enumerate(self.hits):
            picture = QTableWidgetItem()
            if row < len(thumbs):
                image = thumbs[row]
                h, w = image.shape[:2]
                qimage = QImage(image.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
                picture.setData(Qt.ItemDataRole.DecorationRole,
                                QPixmap.fromImage(qimage).scaled(THUMB))  # fmt: skip
            self.table.setItem(row, 0, picture)
            self.table.setItem(row, 1, QTableWidgetItem(f"{hit.score:.3f}"))
            self.table.setItem(row, 2, QTableWidgetItem(hit.recording))
            self.table.setItem(row, 3, QTableWidgetItem(
                f"{format_time(hit.onset, 0.01)} – {format_time(hit.offset, 0.01)}"))
            self.table.setItem(row, 4, QTableWidgetItem(""))
        if self.hits:
            self.table.selectRow(0)
        self._update_buttons()
        self.hits_changed.emit()

    def current_row(self) -> int | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return rows[0].row() if rows else (0 if self.hits else None)

    def _hit(self, row: int | None):
        row = self.current_row() if row is None else row
        if row is None or not 0 <= row < len(self.hits):
            raise PannsError("No hit selected: Find similar first.")
        return row, self.hits[row]

    def _rec_id(self, hit) -> int:
        return self.document.store.recording_id(hit.path)

    def play_hit(self, row: int | None = None) -> None:
        row, hit = self._hit(row)
        self.play_requested.emit(self._rec_id(hit), hit.onset, hit.offset)

    def add_hit(self, row: int | None = None) -> int:
        return self._decide(row, ev.ADDED)

    def reject_hit(self, row: int | None = None) -> int:
        return self._decide(row, ev.REJECTED)

    def _decide(self, row: int | None, status: str) -> int:
        row, hit = self._hit(row)
        if self.label is None:
            raise PannsError("Find similar first: a hit takes the query's label.")
        old = self.decisions.get(row)
        if old is not None and self._status_of(old) is not None:
            if self._status_of(old) == status:
                return old
            self.document.apply(_delete_op(old), "Change decision")
        event_id = self.document.add_event_in(self._rec_id(hit), hit.onset, hit.offset,
                                              self.label, status)  # fmt: skip
        self.decisions[row] = event_id
        self._show_decision(row)
        if row + 1 < len(self.hits):
            self.table.selectRow(row + 1)
        return event_id

    def _status_of(self, event_id: int) -> str | None:
        frame = self.document.store.events(ids=[event_id])
        return None if not len(frame) else str(frame["status"].iloc[0])

    def _show_decision(self, row: int) -> None:
        event_id = self.decisions.get(row)
        status = self._status_of(event_id) if event_id is not None else None
        item = self.table.item(row, 4)
        if item is None:
            return
        text = {ev.ADDED: f"+ {self.label}", ev.REJECTED: f"− {self.label}"}.get(status, "")
        item.setText(text)
        colour = {ev.ADDED: "#2e7d32", ev.REJECTED: "#c62828"}.get(status)
        item.setForeground(QColor(colour) if colour else self.palette().text().color())

    def _on_edits(self, _event=None) -> None:  # an undo/redo may take a decision back
        if self.document.store is None:
            return
        for row in list(self.decisions):  # kept when undone: a redo restores the same id
            self._show_decision(row)

    def _on_key(self, action: str) -> None:
        func = {"add": self.add_hit, "reject": self.reject_hit, "play": self.play_hit}[action]
        self.guard(func)

    def _update_buttons(self) -> None:
        idle = not self.busy
        has_hits = bool(self.hits)
        self.find_button.setEnabled(idle)
        for button in (self.play_button, self.add_button, self.reject_button):
            button.setEnabled(has_hits)
        self.train_button.setEnabled(idle and self.index is not None)
        self.order_combo.setEnabled(idle and self.index is not None)
        self.register_button.setEnabled(idle and self.head is not None)


def _delete_op(event_id: int):
    from panns_core.annotations.store import DeleteEvents

    return DeleteEvents((int(event_id),))


def _play(window, rec_id: int, onset: float, offset: float) -> None:
    doc = window.document
    if doc.recording is None or doc.recording.id != rec_id:
        doc.set_recording(rec_id)
    pad = max(1.0, offset - onset)
    doc.view_range = (max(0.0, onset - pad), min(doc.duration, offset + pad))
    doc.cursor = onset
    window.player.play(onset, offset)


def _create(window) -> SearchPanel:
    panel = SearchPanel(window.document)
    panel.failed.connect(window.show_error)
    panel.play_requested.connect(lambda r, a, b: window.guard(lambda: _play(window, r, a, b)))
    return panel


def _add_actions(window, panel: SearchPanel) -> None:
    window.add_action("Edit", "&Find similar", in_front(window, "search", panel.find_similar),
                      "Ctrl+Shift+F",
                      tip="Search all recordings for windows like the selected event or "
                          "time range")  # fmt: skip


PANEL = Panel("search", "Find similar", BOTTOM, _create, _add_actions, hidden=True)
