"""Model manager: the catalogue and installed models; download (progress, cancel),
import a checkpoint file, set the default, remove."""

from __future__ import annotations

import threading

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from panns_core.errors import PannsError

from ..workers import Worker, while_alive

COLUMNS = ("Model", "Architecture", "Rate", "mAP", "Size", "State")


def _size(n: int | None) -> str:
    return "?" if not n else f"{n / 1e6:.0f} MB"


class ModelManagerDialog(QDialog):
    models_changed = Signal()
    _progress = Signal(float, str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Model manager")
        self.resize(760, 420)
        self.worker: Worker | None = None
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        layout.addWidget(self.table)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        layout.addWidget(self.info)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.hide()
        layout.addWidget(self.progress)
        buttons = QHBoxLayout()
        self.download_button = QPushButton("Download")
        self.download_button.clicked.connect(self.download_selected)
        self.cancel_button = QPushButton("Cancel download")
        self.cancel_button.clicked.connect(self.cancel)
        self.import_button = QPushButton("Import file…")
        self.import_button.clicked.connect(self.import_dialog)
        self.default_button = QPushButton("Set as default")
        self.default_button.clicked.connect(self.set_default_selected)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        for button in (self.download_button, self.cancel_button, self.import_button,
                       self.default_button, self.remove_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout.addLayout(buttons)
        self._progress.connect(self._on_progress)
        self.refresh()

    # ------------------------------------------------------------------ content
    def rows(self) -> list[dict]:
        from panns_core.hub.installed import get_registry

        registry = get_registry()
        installed = {r.name: r for r in registry.list_models()}
        try:
            default = registry.default_name()
        except PannsError:
            default = None
        rows = []
        for entry in registry.catalogue:
            record = installed.pop(entry.name, None)
            state = "installed" if record else "not installed"
            if record and record.name == default:
                state = "installed, default"
            rows.append({"name": entry.name, "arch": entry.architecture,
                         "rate": entry.sample_rate, "map": entry.mean_ap,
                         "size": entry.size, "state": state, "installed": bool(record),
                         "catalogue": True})
        for record in installed.values():
            state = "installed, default" if record.name == default else "installed"
            rows.append({"name": record.name, "arch": record.architecture,
                         "rate": record.sample_rate, "map": record.metrics.get("audioset_mAP"),
                         "size": record.size, "state": f"{state} ({record.origin})",
                         "installed": True, "catalogue": False})
        return rows

    def refresh(self) -> None:
        self._rows = self.rows()
        self.table.setRowCount(len(self._rows))
        for i, row in enumerate(self._rows):
            values = (row["name"], row["arch"], f"{row['rate'] // 1000} kHz",
                      "" if row["map"] is None else f"{row['map']:.3f}", _size(row["size"]),
                      row["state"])
            for j, value in enumerate(values):
                item = QTableWidgetItem(str(value))
                if j == 0:
                    item.setData(Qt.ItemDataRole.UserRole, row["name"])
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        self._update_buttons()

    def selected(self) -> dict | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self._rows[rows[0].row()] if rows else None

    def select_name(self, name: str) -> None:
        for i, row in enumerate(self._rows):
            if row["name"] == name:
                self.table.selectRow(i)

    def _update_buttons(self) -> None:
        row = self.selected()
        busy = self.worker is not None
        self.download_button.setEnabled(bool(row and row["catalogue"] and not row["installed"]
                                             and not busy))
        self.cancel_button.setEnabled(busy)
        self.default_button.setEnabled(bool(row and row["installed"]))
        self.remove_button.setEnabled(bool(row and row["installed"] and not busy))
        self.import_button.setEnabled(not busy)

    # ------------------------------------------------------------------ actions
    def download_selected(self) -> None:
        row = self.selected()
        if row is None:
            return
        self.download(row["name"])

    def download(self, name: str) -> Worker:
        from panns_core.hub.installed import get_registry

        cancel = threading.Event()

        def report(p) -> None:
            fraction = p.fraction if p.fraction is not None else 0.0
            rate = f"{p.rate / 1e6:.1f} MB/s" if p.rate else ""
            self._progress.emit(fraction, f"{p.bytes_done / 1e6:.0f} MB {rate}")

        def job():
            return get_registry().install_download(name, progress=report, cancel=cancel)

        self.worker = Worker(job)
        self.worker.cancel_event = cancel
        self.worker.returned.connect(
            while_alive(self, lambda dialog, record: dialog._done(f"Installed {record.name}."))
        )
        self.worker.errored.connect(self._failed)
        self.worker.aborted.connect(
            while_alive(
                self, lambda dialog: dialog._done("Download cancelled; run it again to resume.")
            )
        )
        self.worker.finished.connect(self._finished)
        self.progress.setValue(0)
        self.progress.setFormat(f"{name}: starting…")
        self.progress.show()
        self.worker.start()
        self._update_buttons()
        return self.worker

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def _on_progress(self, fraction: float, text: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        self.progress.setFormat(f"{fraction * 100:.0f} %  {text}")

    def _done(self, text: str) -> None:
        self.info.setText(text)
        self.models_changed.emit()

    def _failed(self, error) -> None:
        self.info.setText(str(error))
        if not getattr(self, "quiet_errors", False):
            QMessageBox.warning(self, "Model manager", str(error))

    def _finished(self) -> None:
        self.worker = None
        self.progress.hide()
        self.refresh()

    def import_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a checkpoint", "",
                                              "PyTorch checkpoints (*.pth *.pt);;All files (*)")
        if path:
            self.import_file(path)

    def import_file(self, path: str, name: str | None = None) -> None:
        from panns_core.hub.installed import get_registry

        try:
            record = get_registry().import_checkpoint(path, name)
        except PannsError as error:
            self._failed(error)
            return
        self._done(f"Imported {record.name} ({record.architecture}).")
        self.refresh()

    def set_default_selected(self) -> None:
        from panns_core.hub.installed import get_registry

        row = self.selected()
        if row is not None:
            get_registry().set_default(row["name"])
            self._done(f"{row['name']} is the default model.")
            self.refresh()

    def remove_selected(self) -> None:
        from panns_core.hub.installed import get_registry

        row = self.selected()
        if row is None:
            return
        get_registry().remove(row["name"])
        self._done(f"Removed {row['name']}.")
        self.refresh()

    def done(self, result: int) -> None:  # closing: stop a running download
        if self.worker is not None:
            self.worker.cancel()
            self.worker.wait(5.0)
        super().done(result)
