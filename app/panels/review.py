"""Review mode: step through the model's proposals from the most uncertain one.

Each event is selected, brought into view and played as it is reached; one key
accepts (A) or rejects (R) it and moves on, S skips, B goes back. While review runs
these keys belong to it: the window's own actions on the same keys are disabled and
come back when the review stops. Decisions are ordinary document edits, so Ctrl+Z
undoes them; the progress bar counts the recording's model events that are no longer
proposed ("k of n decided", as the recordings list's state), before, during and after
a review, so it follows every edit, undo and a new detection run too. The order comes
from :func:`panns_core.detection.review.review_order`.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from panns_core import events as ev

from ..model import Document
from ..views import theme
from ..views.base import format_time
from . import RIGHT, Panel, in_front

KEYS = {"accept": "A", "reject": "R", "skip": "S", "back": "B"}


class ReviewPanel(QWidget):
    """The dock content; ``start()``, ``accept()``, ``reject()``, ``skip()``, ``back()``,
    ``stop()`` drive it (the keys call the same methods)."""

    play_requested = Signal(int)
    failed = Signal(object)
    active_changed = Signal(bool)

    def __init__(self, document: Document, parent=None) -> None:
        super().__init__(parent)
        self.document = document
        self.queue: list[int] = []
        self.index = 0
        self.active = False
        self.counts = {"accepted": 0, "rejected": 0, "skipped": 0}
        self.key_owner: _KeyOwner | None = None  # set when docked in a window

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.start_button = QPushButton("Start review")
        self.start_button.setToolTip("Step through the proposed events, most uncertain first "
                                     "(Ctrl+R)")
        self.start_button.clicked.connect(self.toggle)
        layout.addWidget(self.start_button)
        self.counter = QLabel("")
        self.counter.setStyleSheet("color: #9aa0aa;")
        layout.addWidget(self.counter)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%v of %m decided")
        layout.addWidget(self.progress)
        self.title = QLabel("")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.35)
        font.setBold(True)
        self.title.setFont(font)
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        self.details = QLabel("")
        self.details.setWordWrap(True)
        layout.addWidget(self.details)

        grid = QGridLayout()
        self.accept_button = QPushButton(f"Accept  [{KEYS['accept']}]")
        self.reject_button = QPushButton(f"Reject  [{KEYS['reject']}]")
        self.back_button = QPushButton(f"◀ Back  [{KEYS['back']}]")
        self.skip_button = QPushButton(f"Skip ▶  [{KEYS['skip']}]")
        self.accept_button.setStyleSheet("QPushButton:enabled { color: #45c46b; }")
        self.reject_button.setStyleSheet("QPushButton:enabled { color: #ff6f61; }")
        self.accept_button.clicked.connect(self.accept)
        self.reject_button.clicked.connect(self.reject)
        self.back_button.clicked.connect(self.back)
        self.skip_button.clicked.connect(self.skip)
        grid.addWidget(self.accept_button, 0, 0)
        grid.addWidget(self.reject_button, 0, 1)
        grid.addWidget(self.back_button, 1, 0)
        grid.addWidget(self.skip_button, 1, 1)
        layout.addLayout(grid)
        row = QHBoxLayout()
        self.autoplay = QCheckBox("Play each event")
        self.autoplay.setChecked(True)
        self.replay_button = QPushButton("Play again")
        self.replay_button.clicked.connect(self.replay)
        row.addWidget(self.autoplay, 1)
        row.addWidget(self.replay_button)
        layout.addLayout(row)
        layout.addStretch(1)

        # Keys: window-wide while the review runs (see install()).
        self.key_actions: dict[str, QAction] = {}
        for name, key in KEYS.items():
            action = QAction(f"Review: {name}", self)
            action.setShortcut(QKeySequence(key))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.setEnabled(False)
            action.triggered.connect(getattr(self, name))
            self.key_actions[name] = action
        document.events.annotations.connect(self._on_annotations)
        document.events.recording.connect(self._on_recording)
        self._update()

    # ------------------------------------------------------------------ control
    def toggle(self) -> None:
        if self.active:
            self.stop()
        else:
            self.start()

    def start(self) -> bool:
        """Build the queue from the current proposals; False when there is none."""
        from panns_core.detection.review import review_order

        doc = self.document
        self.queue = review_order(doc.annotations, doc.params.on_threshold)
        self.index = 0
        self.counts = dict.fromkeys(self.counts, 0)
        if not self.queue:
            self.active = False
            doc.status("No proposed events to review. Run detection first (Ctrl+D).")
            self._update()
            return False
        self._set_active(True)
        self._go(0, forward=True)
        return True

    def stop(self) -> None:
        if self.active:
            self._set_active(False)
        self._update()

    def _set_active(self, active: bool) -> None:
        self.active = active
        for action in self.key_actions.values():
            action.setEnabled(active)
        self.active_changed.emit(active)

    @property
    def current_id(self) -> int | None:
        if self.active and 0 <= self.index < len(self.queue):
            return self.queue[self.index]
        return None

    def accept(self) -> None:
        self._decide(ev.ACCEPTED)

    def reject(self) -> None:
        self._decide(ev.REJECTED)

    def skip(self) -> None:
        if self.current_id is not None:
            self.counts["skipped"] += 1
            self._go(self.index + 1, forward=True)

    def back(self) -> None:
        if self.active and self.index > 0:
            self._go(self.index - 1, forward=False)

    def replay(self) -> None:
        if self.current_id is not None:
            self.play_requested.emit(self.current_id)

    def _decide(self, status: str) -> None:
        event_id = self.current_id
        if event_id is None:
            return
        try:
            if status == ev.ACCEPTED:
                self.document.accept([event_id])
            else:
                self.document.reject([event_id])
        except Exception as error:
            self.failed.emit(error)
            return
        self.counts[status] += 1
        self._go(self.index + 1, forward=True)

    def _go(self, index: int, *, forward: bool) -> None:
        """Move to queue position ``index``, skipping events that are gone."""
        known = set(self.document.annotations["id"].astype(int))
        step = 1 if forward else -1
        while 0 <= index < len(self.queue) and self.queue[index] not in known:
            index += step
        if index >= len(self.queue):
            self.index = len(self.queue)
            self._finish()
            return
        if index < 0:
            return
        self.index = index
        event_id = self.queue[index]
        self._show(event_id)
        self._update()
        if self.autoplay.isChecked():
            self.play_requested.emit(event_id)

    def _show(self, event_id: int) -> None:
        doc = self.document
        doc.selection = {event_id}
        row = doc.event(event_id)
        onset, offset = float(row["onset"]), float(row["offset"])
        start, stop = doc.view_range
        width = stop - start
        if offset - onset > 0.8 * width or onset < start or offset > stop:
            width = max(width, 1.5 * (offset - onset))
            centre = (onset + offset) / 2
            doc.view_range = (centre - width / 2, centre + width / 2)
        doc.cursor = onset

    def _finish(self) -> None:
        c = self.counts
        self.document.status(
            f"Review done: {c['accepted']} accepted, {c['rejected']} rejected, "
            f"{c['skipped']} skipped.")
        self._set_active(False)
        self._update()

    # ---------------------------------------------------------------- display
    def decided(self) -> int:
        """The recording's model events that are no longer proposed (follows undo)."""
        return self.totals()[0]

    def totals(self) -> tuple[int, int]:
        """(decided, all) of the events a model proposed on the current recording."""
        frame = self.document.annotations
        if frame.empty:
            return 0, 0
        model = frame[frame["source"] != ev.HUMAN]
        return int((model["status"] != ev.PROPOSED).sum()), len(model)

    def _update(self) -> None:
        total = len(self.queue)
        decided, proposed = self.totals()
        self.progress.setRange(0, max(1, proposed))
        self.progress.setValue(decided)
        self.progress.setFormat("%v of %m decided" if proposed else "no proposals yet")
        active = self.active
        self.start_button.setText("Stop review" if active else "Start review")
        for button in (self.accept_button, self.reject_button, self.skip_button,
                       self.replay_button):
            button.setEnabled(active)
        self.back_button.setEnabled(active and self.index > 0)
        event_id = self.current_id
        if event_id is None:
            if total and self.index >= total:
                c = self.counts
                self.counter.setText(f"Done: {c['accepted']} accepted, {c['rejected']} "
                                     f"rejected, {c['skipped']} skipped")
            else:
                self.counter.setText("Proposed events, most uncertain first.")
            self.title.setText("")
            self.details.setText("A accept · R reject · S skip · B back" if not total else "")
            return
        self.counter.setText(f"Event {self.index + 1} of {total}")
        row = self.document.event(event_id)
        label = str(row["label"])
        colour = theme.label_color(label, self.document.label_colours()).name()
        self.title.setText(f"<span style='color:{colour}'>■</span> {label}")
        conf = float(row["confidence"])
        threshold = self.document.params.on_threshold(label)
        conf_text = "—" if conf != conf else f"{conf:.3f}"
        onset, offset = float(row["onset"]), float(row["offset"])
        self.details.setText(
            f"p = {conf_text} (threshold {threshold:.2f})<br>"
            f"{format_time(onset, 0.01)} – {format_time(offset, 0.01)} "
            f"({offset - onset:.2f} s)<br>status: <b>{row['status']}</b>")

    def _on_annotations(self, _event) -> None:
        event_id = self.current_id
        if event_id is not None and event_id not in set(self.document.annotations["id"]):
            # the event under review was deleted or replaced (a threshold change, an
            # undo): go on to the next one still there, or finish
            self._go(self.index, forward=True)
            return
        self._update()

    def _on_recording(self, _event) -> None:
        if self.active:
            self._set_active(False)
        self.queue = []
        self.index = 0
        self._update()


class _KeyOwner:
    """Disables the window's other actions on the review keys while review runs."""

    def __init__(self, window, panel: ReviewPanel) -> None:
        self.window = window
        self.panel = panel
        self.disabled: list[QAction] = []

    def __call__(self, active: bool) -> None:
        if active:
            mine = set(self.panel.key_actions.values())
            keys = {a.shortcut().toString() for a in mine}
            self.disabled = [
                a for a in self.window.findChildren(QAction)
                if a not in mine and a.isEnabled()
                and any(s.toString() in keys for s in a.shortcuts())
            ]
            for action in self.disabled:
                action.setEnabled(False)
        else:
            for action in self.disabled:
                action.setEnabled(True)
            self.disabled = []


def _create(window) -> ReviewPanel:
    panel = ReviewPanel(window.document)
    panel.play_requested.connect(window.player.play_event)
    panel.failed.connect(window.show_error)
    for action in panel.key_actions.values():
        window.addAction(action)
    panel.key_owner = _KeyOwner(window, panel)
    panel.active_changed.connect(panel.key_owner)
    return panel


def _add_actions(window, panel: ReviewPanel) -> None:
    window.add_action("Edit", "Re&view proposed events", in_front(window, "review", panel.toggle),
                      "Ctrl+R",
                      tip="Step through the proposals, most uncertain first: A accept, "
                          "R reject, S skip, B back")


PANEL = Panel("review", "Review", RIGHT, _create, _add_actions, tabify_with="detection")
