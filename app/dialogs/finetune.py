"""The fine-tune dialog: base model, the project's classes with their event counts,
strategy, epochs and time budget. It builds the ``panns-sed train`` arguments; the
training panel runs them in a separate process."""

from __future__ import annotations

import time

import pandas as pd
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QRadioButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from panns_core import events as ev

POSITIVE = (ev.ACCEPTED, ev.EDITED, ev.ADDED)
SCRATCH = ("arch:TinySED", "TinySED, small, from scratch (quick experiments)")
STRATEGIES = (
    ("head", "Head only", "Trains the output layer on cached embeddings: seconds on a CPU."),
    ("partial", "Last blocks", "Also adapts the last convolution blocks: minutes."),
    ("full", "Whole network", "Everything trains: best with many events and a GPU."),
)
MIN_EVENTS = 3


def class_counts(store) -> pd.DataFrame:
    """Per label: positive events (accepted/edited/added), rejected ones (negatives),
    recordings with positives, whether it is in the vocabulary and whether it is
    trained (:func:`~panns_core.training.data.trainable_labels`, the rule the run
    follows). Trained labels come first, in the order the run uses."""
    from panns_core.training.data import trainable_labels

    frame = store.events()
    names = [e.name for e in store.labels()]
    trained = trainable_labels(frame, names)
    rows = []
    for name in dict.fromkeys([*trained, *names, *frame["label"].unique()]):
        part = frame[frame["label"] == name]
        positive = part[part["status"].isin(POSITIVE)]
        rows.append({
            "label": name,
            "events": len(positive),
            "rejected": int((part["status"] == ev.REJECTED).sum()),
            "recordings": positive["recording_id"].nunique(),
            "in_vocabulary": name in names,
            "trained": name in trained,
        })
    return pd.DataFrame(rows, columns=["label", "events", "rejected", "recordings",
                                       "in_vocabulary", "trained"])


def unique_model_name(stem: str) -> str:
    """``<stem>-ft-<date-time>``, with a number added when a model has that name."""
    from panns_core.hub.installed import get_registry

    base = f"{stem}-ft-{time.strftime('%Y%m%d-%H%M')}"
    try:
        registry = get_registry()
        taken = {m.name.casefold() for m in registry.list_models()}
    except Exception:  # a broken registry must not block the dialog
        return base
    name, n = base, 2
    while name.casefold() in taken:
        name, n = f"{base}-{n}", n + 1
    return name


class FineTuneDialog(QDialog):
    def __init__(self, document, parent=None, *, running: bool = False) -> None:
        super().__init__(parent)
        self.setWindowTitle("Fine-tune on this project")
        self.resize(600, 560)
        self.document = document
        layout = QVBoxLayout(self)
        intro = QLabel("Trains a new model on the events you accepted, corrected or added "
                       "(rejected ones teach it what is not there). Some recordings are held "
                       "out to measure the result. The window stays usable while it trains.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.base_combo = QComboBox()
        try:
            from ..panels.detection import list_model_names

            names, default = list_model_names()
        except Exception:  # a broken registry must not block the dialog
            names, default = [], None
        for name in names:
            self.base_combo.addItem(f"{name}  (default)" if name == default else name, name)
        self.base_combo.addItem(SCRATCH[1], SCRATCH[0])
        current = document.model or default
        index = self.base_combo.findData(current)
        self.base_combo.setCurrentIndex(max(0, index))
        form.addRow("Base model", self.base_combo)

        strategies = QWidget()
        column = QVBoxLayout(strategies)
        column.setContentsMargins(0, 0, 0, 0)
        self.strategy_group = QButtonGroup(self)
        self.strategy_buttons: dict[str, QRadioButton] = {}
        for key, title, text in STRATEGIES:
            button = QRadioButton(f"{title} — {text}")
            self.strategy_group.addButton(button)
            self.strategy_buttons[key] = button
            column.addWidget(button)
        self.strategy_buttons["head"].setChecked(True)
        form.addRow("Strategy", strategies)
        row = QHBoxLayout()
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 1000)
        self.epochs_spin.setValue(30)
        self.budget_spin = QDoubleSpinBox()
        self.budget_spin.setRange(0.0, 24 * 60.0)
        self.budget_spin.setDecimals(1)
        self.budget_spin.setSuffix(" min")
        self.budget_spin.setSpecialValueText("no limit")
        self.budget_spin.setValue(5.0)
        row.addWidget(QLabel("at most"))
        row.addWidget(self.epochs_spin)
        row.addWidget(QLabel("epochs, time budget"))
        row.addWidget(self.budget_spin)
        row.addStretch(1)
        form.addRow("Length", row)
        stem = document.project_path.stem if document.project_path else "project"
        self.name_edit = QLineEdit(unique_model_name(stem))
        self.name_edit.textChanged.connect(lambda _text: self._check())
        form.addRow("New model name", self.name_edit)
        layout.addLayout(form)

        self.counts = class_counts(document.store)
        self.table = QTableWidget(len(self.counts), 4)
        self.table.setHorizontalHeaderLabels(["Class", "Events", "Rejected", "Recordings"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for r, record in enumerate(self.counts.itertuples(index=False)):
            values = (record.label, record.events, record.rejected, record.recordings)
            for c, value in enumerate(values):
                item = QTableWidgetItem(str(value))
                if not record.trained:
                    item.setToolTip("No accepted, corrected or added event: not trained")
                    item.setForeground(self.palette().mid())
                self.table.setItem(r, c, item)
        layout.addWidget(self.table, 1)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.warning = QLabel("")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #e0b040;")
        layout.addWidget(self.warning)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.start_button = self.buttons.addButton("Start training",
                                                   QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self._start_clicked)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.blockers: list[str] = []
        self.running = running  # a run is going already: only one at a time
        self.validation = True  # False: too few recordings with events to hold one out
        self._material = self._read_material()
        self._check()

    def _read_material(self) -> tuple[int, int, str | None]:
        """(positive events, recordings with them, what blocks reading the project) by
        the rules the run follows (:func:`panns_core.training.data.from_project`)."""
        from panns_core.errors import PannsError
        from panns_core.training.data import from_project

        store = self.document.store
        used = set(store.events(statuses=(*POSITIVE, ev.REJECTED))["recording_id"])
        gone = [r.name for r in store.missing_recordings() if r.id in used]
        if gone:
            return 0, 0, (f"The audio of {len(gone)} annotated recording(s) is missing "
                          f"({', '.join(gone[:3])}{', …' if len(gone) > 3 else ''}): find "
                          "them with File ▸ Locate moved recordings…, then train.")
        try:
            recordings, _labels = from_project(store)
        except PannsError as error:
            return 0, 0, str(error)
        events = sum(len(r.positives) for r in recordings)
        return events, sum(1 for r in recordings if len(r.positives)), None

    def _name_problem(self) -> str | None:
        from panns_core.errors import PannsError
        from panns_core.hub.installed import get_registry

        name = self.name_edit.text().strip()
        if not name:
            return "Give the new model a name."
        try:
            get_registry().check_new_name(name)
        except PannsError as error:
            return str(error).replace("(`--name`)", "above")
        return None

    def _check(self) -> None:
        """Counts, message and Start button from the same facts; a blocker says what
        stops training and how to fix it."""
        events, recordings, problem = self._material
        trained = self.counts[self.counts["trained"]]
        blockers = []
        if self.running:
            blockers.append("A fine-tuning run is going already: wait for it to finish, or "
                            "cancel it (Models ▸ Cancel fine-tuning), then start this one.")
        if problem is not None:
            blockers.append(problem)
        elif events == 0:
            blockers.append("No accepted, corrected or added events yet: review the proposed "
                            "events (accept or correct some) or add events, then train.")
        name_problem = self._name_problem()
        if name_problem:
            blockers.append(name_problem)
        self.blockers = blockers
        self.validation = recordings >= 2
        notes = []
        few = trained[trained["events"] < MIN_EVENTS]["label"].tolist()
        if few and not problem:
            notes.append(f"Few examples for {', '.join(few)}: expect little from those.")
        if problem is None and events and not self.validation:
            notes.append("Only one recording has events, so none is held out to measure the "
                         "result against its base: annotate events in a second recording to "
                         "measure it.")
        if problem is None and events:
            held = "some held out to measure the result" if self.validation else "none held out"
            self.summary.setText(
                f"Trains {len(trained)} class(es) on {events} event(s) from {recordings} "
                f"recording(s), {held}.")
        else:
            self.summary.setText("")
        self.warning.setText(" ".join(blockers + notes))
        self.warning.setStyleSheet("color: #ff6f61;" if blockers else "color: #e0b040;")
        self.start_button.setEnabled(not blockers)
        self.start_button.setToolTip(" ".join(blockers))

    def _start_clicked(self) -> None:
        self._check()  # the name may have been taken meanwhile
        if not self.blockers:
            self.accept()

    @property
    def strategy(self) -> str:
        return next(k for k, b in self.strategy_buttons.items() if b.isChecked())

    def train_args(self) -> list[str]:
        """The ``panns-sed train`` arguments these choices stand for."""
        doc = self.document
        args = ["--project", str(doc.project_path), "--strategy", self.strategy,
                "--epochs", str(self.epochs_spin.value())]
        base = self.base_combo.currentData()
        if base:
            args += ["--base", base]
        if self.budget_spin.value() > 0:
            args += ["--time-budget", f"{self.budget_spin.value() * 60:g}"]
        if not self.validation:
            args += ["--val-fraction", "0"]
        name = self.name_edit.text().strip()
        if name:
            args += ["--name", name]
        return args


def open_finetune(window) -> None:
    from panns_core.errors import PannsError

    doc = window.document
    panel = window.panels["training"]
    if doc.store is None or doc.project_path is None:
        raise PannsError("Fine-tuning needs a project saved in a file: open or create one.")
    dialog = FineTuneDialog(doc, window, running=panel.running)
    if window.run_dialog("finetune", dialog) != QDialog.DialogCode.Accepted:
        return
    panel.start(dialog.train_args())  # the dialog is deleted later, on the event loop
    window.docks["training"].show()
    window.docks["training"].raise_()
