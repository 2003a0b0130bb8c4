"""Export and import dialogs for the annotation formats (panns_core.annotations.formats), for the
current recording or the whole project, with a live preview of what will happen.

The work is :mod:`panns_core.annotations.exchange` (the same planning the CLI's needs); these
dialogs only collect choices, show the plan, and show any error as its message. An
import is one undoable document step.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from panns_core import events as ev
from panns_core.annotations.exchange import DEFAULT_EXPORT_STATUSES

FORMAT_TITLES = {
    "dcase": "DCASE / sed_eval TSV (.tsv)",
    "audacity": "Audacity label track (.txt)",
    "raven": "Raven selection table (.selections.txt)",
    "sonic_visualiser": "Sonic Visualiser CSV (.csv)",
    "label_studio": "Label Studio JSON (.json)",
    "events_table": "Events table, every column (.events.csv)",
}
ERROR_STYLE = "color: #ff6f61;"
# The dialog's statuses when nothing is remembered: what a person has decided or made
# (proposed events are the model's guesses; tick them to export those too).
DIALOG_STATUSES = tuple(s for s in DEFAULT_EXPORT_STATUSES if s != ev.PROPOSED)


def _error_text(error: BaseException) -> str:
    from panns_core.errors import PannsError

    if isinstance(error, PannsError):
        return str(error)
    if isinstance(error, OSError):
        return f"{error.filename or ''}: {error.strerror or error}".strip(": ")
    return f"{type(error).__name__}: {error}"


class ExportDialog(QDialog):
    """Format, scope, statuses, destination; the preview line says what will be written.
    ``export()`` writes (also what the Export button does) and returns the paths.

    The choices and the folder of the last export are remembered (settings ``export``);
    the first time the folder is the project's (the recording's when the project is the
    default one in the program's data folder)."""

    def __init__(self, document, parent=None) -> None:
        super().__init__(parent)
        from panns_core.annotations.formats import FORMATS

        self.setWindowTitle("Export annotations")
        self.resize(620, 380)
        self.document = document
        self.written: list[Path] = []
        self._plan = None
        self._dest_touched = False
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.format_combo = QComboBox()
        for name in FORMATS:
            self.format_combo.addItem(FORMAT_TITLES.get(name, name), name)
        form.addRow("Format", self.format_combo)

        scope = QWidget()
        scope_row = QHBoxLayout(scope)
        scope_row.setContentsMargins(0, 0, 0, 0)
        rec = document.recording
        self.scope_recording = QRadioButton(
            f"This recording ({rec.name})" if rec else "This recording")
        self.scope_project = QRadioButton(
            f"All recordings of the project ({len(document.recordings)})")
        self.scope_group = QButtonGroup(self)
        self.scope_group.addButton(self.scope_recording)
        self.scope_group.addButton(self.scope_project)
        self.scope_recording.setEnabled(rec is not None)
        (self.scope_recording if rec else self.scope_project).setChecked(True)
        scope_row.addWidget(self.scope_recording)
        scope_row.addWidget(self.scope_project)
        scope_row.addStretch(1)
        form.addRow("Events of", scope)

        statuses = QWidget()
        status_row = QHBoxLayout(statuses)
        status_row.setContentsMargins(0, 0, 0, 0)
        self.status_boxes: dict[str, QCheckBox] = {}
        for status in ev.STATUSES:
            box = QCheckBox(status)
            box.setChecked(status in DIALOG_STATUSES)
            self.status_boxes[status] = box
            status_row.addWidget(box)
        status_row.addStretch(1)
        form.addRow("Statuses", statuses)

        self.per_recording = QCheckBox("One file per recording, into a folder")
        form.addRow("", self.per_recording)
        self.file_names = QCheckBox("Write recordings by file name (not full path)")
        self.file_names.setChecked(True)
        form.addRow("", self.file_names)

        dest_row = QHBoxLayout()
        self.dest_edit = QLineEdit()
        self.dest_edit.setPlaceholderText("file or folder to write")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        dest_row.addWidget(self.dest_edit, 1)
        dest_row.addWidget(browse)
        form.addRow("Destination", dest_row)
        layout.addLayout(form)

        self.preview = QLabel("")
        self.preview.setWordWrap(True)
        layout.addWidget(self.preview)
        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.error)
        layout.addStretch(1)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_button = self.buttons.addButton(
            "Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self._on_export)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

        self.format_combo.currentIndexChanged.connect(self._format_changed)
        for widget in (self.scope_recording, self.scope_project, self.per_recording,
                       self.file_names, *self.status_boxes.values()):
            widget.toggled.connect(self._scope_changed)
        self.dest_edit.textEdited.connect(self._dest_edited)
        self._restore_choices()
        self._format_changed()

    def _restore_choices(self) -> None:
        from .. import settings

        memory = settings.value("export", {}) or {}
        if not isinstance(memory, dict):
            return
        index = self.format_combo.findData(memory.get("format"))
        if index >= 0:
            self.format_combo.blockSignals(True)
            self.format_combo.setCurrentIndex(index)
            self.format_combo.blockSignals(False)
        if isinstance(memory.get("statuses"), list):
            for status, box in self.status_boxes.items():
                box.blockSignals(True)
                box.setChecked(status in memory["statuses"])
                box.blockSignals(False)
        for key, box in (("per_recording", self.per_recording),
                         ("file_names", self.file_names)):
            if isinstance(memory.get(key), bool):
                box.blockSignals(True)
                box.setChecked(memory[key])
                box.blockSignals(False)
        if memory.get("scope") == "project" or self.document.recording is None:
            self.scope_project.setChecked(True)

    def _remember_choices(self) -> None:
        from .. import settings

        dest = Path(self.dest_edit.text().strip()).expanduser()
        folder = dest.parent  # a per-recording export's folder sits in it too
        settings.set_value("export", {
            "format": self.format, "statuses": self.statuses(),
            "per_recording": self.per_recording.isChecked(),
            "file_names": self.file_names.isChecked(),
            "scope": "recording" if self.recordings() is not None else "project",
            "folder": str(folder),
        })

    # ------------------------------------------------------------- choices
    @property
    def format(self) -> str:
        return self.format_combo.currentData()

    def set_format(self, name: str) -> None:
        self.format_combo.setCurrentIndex(self.format_combo.findData(name))

    def statuses(self) -> list[str]:
        return [s for s, box in self.status_boxes.items() if box.isChecked()]

    def recordings(self) -> list[int] | None:
        rec = self.document.recording
        if self.scope_recording.isChecked() and rec is not None:
            return [rec.id]
        return None

    def _multi_file_needed(self) -> bool:
        from panns_core.annotations.formats import MULTI_RECORDING

        return (self.recordings() is None and self.format not in MULTI_RECORDING
                and len(self.document.recordings) > 1)

    def _format_changed(self, *_args) -> None:
        forced = self._multi_file_needed()
        self.per_recording.setEnabled(not forced)
        if forced:
            self.per_recording.setChecked(True)
        if not self._dest_touched:
            self.dest_edit.setText(str(self._default_destination()))
        self.refresh()

    def _scope_changed(self, *_args) -> None:
        self._format_changed()

    def _dest_edited(self, _text: str) -> None:
        self._dest_touched = True
        self.refresh()

    def set_destination(self, path: str | Path) -> None:
        self._dest_touched = True
        self.dest_edit.setText(str(path))
        self.refresh()

    def _default_destination(self) -> Path:
        from panns_core.annotations.formats import EXTENSIONS

        doc = self.document
        folder = default_export_folder(doc)
        if self.per_recording.isChecked():
            stem = doc.project_path.stem if doc.project_path else "annotations"
            return folder / f"{stem}_{self.format}"
        if self.recordings() is not None and doc.recording is not None:
            return folder / (doc.recording.path.stem + EXTENSIONS[self.format])
        stem = doc.project_path.stem if doc.project_path else "annotations"
        return folder / (stem + EXTENSIONS[self.format])

    def _browse(self) -> None:
        if self.per_recording.isChecked():
            path = QFileDialog.getExistingDirectory(self, "Export into folder",
                                                    self.dest_edit.text())
        else:
            path, _ = QFileDialog.getSaveFileName(self, "Export to file", self.dest_edit.text())
        if path:
            self.set_destination(path)

    # -------------------------------------------------------------- preview
    def plan(self):
        from panns_core.annotations.exchange import plan_export

        dest = self.dest_edit.text().strip()
        if not dest:
            from panns_core.errors import PannsError

            raise PannsError("Choose where to write the annotations (Destination).")
        return plan_export(self.document.store, self.format, Path(dest).expanduser(),
                           recordings=self.recordings(), statuses=self.statuses(),
                           per_recording=self.per_recording.isChecked(),
                           file_names=self.file_names.isChecked())

    def refresh(self) -> None:
        """Re-plan and show what would be written (or why not)."""
        self.error.setText("")
        try:
            self._plan = self.plan()
        except Exception as error:
            self._plan = None
            self.preview.setText("")
            self.error.setText(_error_text(error))
            self.export_button.setEnabled(False)
            return
        self.preview.setText(self._plan.describe())
        self.export_button.setEnabled(bool(self._plan.files))

    def export(self) -> list[Path]:
        """Write the planned files; on error the message shows and [] is returned."""
        from panns_core.annotations.exchange import write_export

        self.refresh()
        if self._plan is None or not self._plan.files:
            return []
        try:
            self.written = write_export(self._plan)
        except Exception as error:
            self.error.setText(_error_text(error))
            return []
        self._remember_choices()
        self.document.status(f"Exported {self._plan.describe()}")
        return self.written

    def _on_export(self) -> None:
        if self.export():
            self.accept()


def default_export_folder(document) -> Path:
    """The last export's folder, else the project's folder, else (for the default
    project in the program's data folder) the current recording's, else home."""
    from panns_core.paths import data_dir

    from .. import settings

    memory = settings.value("export", {}) or {}
    last = memory.get("folder") if isinstance(memory, dict) else None
    if last and Path(last).is_dir():
        return Path(last)
    project = document.project_path
    hidden = project is not None and project.resolve().is_relative_to(data_dir().resolve())
    if project is not None and not hidden:
        return project.parent
    if document.recording is not None:
        return document.recording.path.parent
    return Path.home()


IMPORT_COLUMNS = ("File", "Format", "Events", "Recording", "Problem")


class ImportDialog(QDialog):
    """Files, format (detected by default), the recording for files that do not name
    one; a table previews each file. ``import_files()`` applies them as one undo step."""

    def __init__(self, document, parent=None, paths=()) -> None:
        super().__init__(parent)
        from panns_core.annotations.formats import FORMATS

        self.setWindowTitle("Import annotations")
        self.resize(760, 420)
        self.document = document
        self.paths: list[Path] = []
        self.items = []
        self.imported = 0
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        add = QPushButton("Add files…")
        add.clicked.connect(self._browse)
        clear = QPushButton("Clear")
        clear.clicked.connect(self.clear)
        row.addWidget(add)
        row.addWidget(clear)
        row.addStretch(1)
        layout.addLayout(row)
        form = QFormLayout()
        self.format_combo = QComboBox()
        self.format_combo.addItem("Detect from the content", None)
        for name in FORMATS:
            self.format_combo.addItem(FORMAT_TITLES.get(name, name), name)
        form.addRow("Format", self.format_combo)
        self.target_combo = QComboBox()
        self.target_combo.addItem("Match by file name", None)
        current = document.recording
        for rec in document.recordings:
            self.target_combo.addItem(f"{rec.name}" + ("  (current)" if current and
                                                       rec.id == current.id else ""), rec.id)
        if current is not None:
            self.target_combo.setCurrentIndex(self.target_combo.findData(current.id))
        self.target_combo.setToolTip(
            "Recording for files that do not name one (Audacity, Sonic Visualiser) and "
            "whose name matches no recording")
        form.addRow("Unnamed files go to", self.target_combo)
        self.add_labels = QCheckBox("Add new labels to the project vocabulary")
        self.add_labels.setChecked(True)
        form.addRow("", self.add_labels)
        group = QGroupBox("Preview")
        group_layout = QVBoxLayout(group)
        self.table = QTableWidget(0, len(IMPORT_COLUMNS))
        self.table.setHorizontalHeaderLabels(IMPORT_COLUMNS)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSectionResizeMode(
            0, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setWordWrap(True)
        group_layout.addWidget(self.table)
        self.summary = QLabel("Add annotation files to import.")
        group_layout.addWidget(self.summary)
        layout.addLayout(form)
        layout.addWidget(group, 1)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.import_button = self.buttons.addButton(
            "Import", QDialogButtonBox.ButtonRole.AcceptRole)
        self.import_button.setEnabled(False)
        self.buttons.accepted.connect(self._on_import)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.format_combo.currentIndexChanged.connect(self.refresh)
        self.target_combo.currentIndexChanged.connect(self.refresh)
        if paths:
            self.add_files(paths)

    def add_files(self, paths) -> None:
        for path in paths:
            path = Path(path)
            if path not in self.paths:
                self.paths.append(path)
        self.refresh()

    def clear(self) -> None:
        self.paths = []
        self.refresh()

    def set_format(self, name: str | None) -> None:
        self.format_combo.setCurrentIndex(max(0, self.format_combo.findData(name)))

    def _browse(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self, "Annotation files", "",
            "Annotations (*.tsv *.txt *.csv *.json);;All files (*)")
        if paths:
            self.add_files(paths)

    def refresh(self, *_args) -> None:
        from panns_core.annotations.exchange import plan_import

        store = self.document.store
        self.items = plan_import(store, self.paths, format=self.format_combo.currentData(),
                                 fallback=self.target_combo.currentData()) if store else []
        names = {r.id: r.name for r in self.document.recordings}
        self.table.setRowCount(len(self.items))
        for row, item in enumerate(self.items):
            recs = ", ".join(names.get(i, str(i)) for i in item.recording_ids())
            cells = (item.path.name, item.format or "?", str(item.n_events) if item.ok else "",
                     recs, item.error or "")
            for column, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                cell.setToolTip(str(item.path) if column == 0 else text)
                if item.error and column == 4:
                    cell.setForeground(QColor("#ff6f61"))
                self.table.setItem(row, column, cell)
        self.table.resizeRowsToContents()
        good = [i for i in self.items if i.ok]
        n = sum(i.n_events for i in good)
        already = sum(i.already for i in good)
        bad = len(self.items) - len(good)
        if not self.items:
            text = "Add annotation files to import."
        else:
            text = f"{n} event(s) from {len(good)} file(s) will be added as one undo step"
            if already:
                text += f"; {already} event(s) are in the project already and are left out"
            if bad:
                text += f"; {bad} file(s) cannot be imported (see Problem)"
        self.summary.setText(text + ".")
        self.import_button.setEnabled(n > 0)

    def import_files(self) -> int:
        """Add the events of every readable file (one undoable step); returns how many."""
        from panns_core.annotations.exchange import import_operation

        doc = self.document
        good = [i for i in self.items if i.ok and i.n_events]
        if not good:
            return 0
        op = import_operation(doc.store, good)
        n = len(op.rows)
        if self.add_labels.isChecked():
            # the files' new labels join the vocabulary in the same undo step
            from panns_core.annotations.store import Batch
            from panns_core.annotations.store.vocabulary import AddLabels

            known = {entry.name for entry in doc.store.labels()}
            labels = [label for i in good for label in i.events["label"]]
            missing = [label for label in dict.fromkeys(labels) if label not in known]
            if missing:
                op = Batch((op, AddLabels.named(missing)))
        doc.apply(op, f"Import {n} event(s)")
        doc.history.seal()
        self.imported = n
        doc.status(f"Imported {n} event(s) from {len(good)} file(s).")
        return n

    def _on_import(self) -> None:
        try:
            if self.import_files():
                self.accept()
        except Exception as error:
            self.summary.setText(_error_text(error))
            self.summary.setStyleSheet(ERROR_STYLE)


def _run_dialog(window, dialog_class) -> None:
    if window.document.store is None:
        return
    window.run_dialog("io", dialog_class(window.document, window))


def open_export(window) -> None:
    _run_dialog(window, ExportDialog)


def open_import(window) -> None:
    _run_dialog(window, ImportDialog)

