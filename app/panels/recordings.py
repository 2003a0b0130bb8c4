"""The recordings of the open project, one line each; a click makes one current."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QListWidget, QListWidgetItem

from ..model import Document
from ..views.base import format_time
from . import LEFT, Panel


class RecordingsPanel(QListWidget):
    """Follows ``recordings`` and ``recording``; ``recording_chosen(id)`` on a click."""

    recording_chosen = Signal(int)

    def __init__(self, document: Document, parent=None) -> None:
        super().__init__(parent)
        self.document = document
        self.itemActivated.connect(self._on_item)
        self.itemClicked.connect(self._on_item)
        document.events.recordings.connect(self._refill)
        document.events.recording.connect(self._refill)

    def _refill(self, _event=None) -> None:
        self.blockSignals(True)
        self.clear()
        current = self.document.recording
        for rec in self.document.recordings:
            item = QListWidgetItem(f"{rec.name}\n{format_time(rec.duration, 1000)}")
            item.setData(Qt.ItemDataRole.UserRole, rec.id)
            item.setToolTip(str(rec.path))
            self.addItem(item)
            if current is not None and rec.id == current.id:
                item.setSelected(True)
                self.setCurrentItem(item)
        self.blockSignals(False)

    def _on_item(self, item: QListWidgetItem) -> None:
        rec_id = item.data(Qt.ItemDataRole.UserRole)
        if self.document.recording is None or self.document.recording.id != rec_id:
            self.recording_chosen.emit(rec_id)


def _create(window) -> RecordingsPanel:
    panel = RecordingsPanel(window.document)
    panel.recording_chosen.connect(lambda rec_id: window.guard(window.document.set_recording,
                                                                rec_id))
    return panel


PANEL = Panel("recordings", "Recordings", LEFT, _create, view_toggle=False, width=170)
