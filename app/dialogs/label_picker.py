"""A searchable label picker: the project vocabulary first (colours, hotkeys), then all
527 AudioSet classes; substring and fuzzy matching; Enter picks; a typed name that is
not there yet can become a new vocabulary label.

``pick_label(window, document, ids)`` is the hook the main window calls to relabel
(``window.label_picker``); :func:`rank_labels` is the matching, kept free of Qt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
)

from ..views import theme

VOCABULARY, AUDIOSET, CREATE = "vocabulary", "audioset", "create"
NAME_ROLE = Qt.ItemDataRole.UserRole + 1
KIND_ROLE = Qt.ItemDataRole.UserRole + 2


@dataclass(frozen=True)
class LabelChoice:
    name: str
    kind: str  # VOCABULARY or AUDIOSET
    hotkey: str | None = None
    colour: str | None = None


def match_score(query: str, name: str) -> float | None:
    """How well ``query`` matches ``name`` (lower is better), None for no match.

    exact 0 < prefix 1 < a word's prefix 2 < substring 3 < the letters in order
    (fuzzy) 4 + how spread out they are. Case-insensitive.
    """
    q = query.strip().casefold()
    n = name.casefold()
    if not q:
        return 5.0
    if n == q:
        return 0.0
    if n.startswith(q):
        return 1.0
    words = n.replace(",", " ").replace("(", " ").replace("-", " ").split()
    if any(w.startswith(q) for w in words):
        return 2.0
    if q in n:
        return 3.0
    # subsequence: every query letter in order; penalise the gaps between them
    pos, first, gaps = -1, None, 0
    for ch in q:
        if ch == " ":
            continue
        nxt = n.find(ch, pos + 1)
        if nxt < 0:
            return None
        if first is None:
            first = nxt
        elif nxt > pos + 1:
            gaps += 1
        pos = nxt
    return 4.0 + gaps / max(1, len(q)) + (first or 0) / 100.0


def rank_labels(query: str, choices: Sequence[LabelChoice]) -> list[LabelChoice]:
    """Choices matching ``query``, best first; the vocabulary wins ties, and names
    listed twice (a vocabulary label that is also an AudioSet class) appear once."""
    scored = []
    seen: set[str] = set()
    for order, choice in enumerate(choices):
        key = choice.name.casefold()
        if key in seen:
            continue
        seen.add(key)
        score = match_score(query, choice.name)
        if score is None:
            continue
        bonus = 0.0 if choice.kind == VOCABULARY else 0.5
        # with an empty query keep the given order (vocabulary, then AudioSet order)
        scored.append((score + bonus if query.strip() else bonus, order, choice))
    scored.sort(key=lambda t: (t[0], t[1]))
    return [choice for _, _, choice in scored]


def label_choices(document) -> list[LabelChoice]:
    """The vocabulary (in its order) followed by the AudioSet classes."""
    from panns_core.labels import audioset_labels

    choices = [LabelChoice(e.name, VOCABULARY, e.hotkey, e.colour)
               for e in document.vocabulary()]
    choices += [LabelChoice(name, AUDIOSET) for name in audioset_labels().names]
    return choices


class LabelPickerDialog(QDialog):
    """Type to search, Up/Down to move, Enter to pick; ``chosen`` holds the result."""

    def __init__(self, document, parent=None, *, current: str | None = None,
                 title: str = "Label", prompt: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(420, 520)
        self.document = document
        self.chosen: str | None = None
        self.created = False
        self._choices = label_choices(document)
        self._colours = document.label_colours()
        layout = QVBoxLayout(self)
        if prompt:
            layout.addWidget(QLabel(prompt))
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search 527 AudioSet classes and your labels…")
        self.search.setClearButtonEnabled(True)
        self.search.installEventFilter(self)
        self.search.textChanged.connect(self._refill)
        layout.addWidget(self.search)
        self.list = QListWidget()
        self.list.setUniformItemSizes(True)
        self.list.itemActivated.connect(self._pick_item)
        self.list.itemDoubleClicked.connect(self._pick_item)
        layout.addWidget(self.list, 1)
        self.hint = QLabel("Enter picks · ↑/↓ move · your vocabulary comes first")
        self.hint.setStyleSheet("color: #9aa0aa;")
        layout.addWidget(self.hint)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._pick_current)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._refill("")
        if current:
            self._select_name(current)
        self.search.setFocus()

    # ------------------------------------------------------------------ list
    def _refill(self, text: str) -> None:
        self.list.clear()
        ranked = rank_labels(text, self._choices)
        for choice in ranked:
            item = QListWidgetItem(self._item_text(choice))
            item.setData(NAME_ROLE, choice.name)
            item.setData(KIND_ROLE, choice.kind)
            if choice.kind == VOCABULARY:
                item.setIcon(_swatch(theme.label_color(choice.name, self._colours)))
                font = item.font()
                font.setBold(True)
                item.setFont(font)
                item.setToolTip("In the project vocabulary")
            self.list.addItem(item)
        typed = text.strip()
        if typed and not any(c.name.casefold() == typed.casefold() for c in self._choices):
            item = QListWidgetItem(f"＋ Create label “{typed}”")
            item.setData(NAME_ROLE, typed)
            item.setData(KIND_ROLE, CREATE)
            item.setToolTip("Add it to the project vocabulary")
            if ranked:
                self.list.addItem(item)
            else:
                self.list.insertItem(0, item)
        if self.list.count():
            self.list.setCurrentRow(0)

    @staticmethod
    def _item_text(choice: LabelChoice) -> str:
        if choice.kind == VOCABULARY and choice.hotkey:
            return f"{choice.name}    [{choice.hotkey}]"
        return choice.name

    def _select_name(self, name: str) -> None:
        for row in range(self.list.count()):
            if self.list.item(row).data(NAME_ROLE) == name:
                self.list.setCurrentRow(row)
                self.list.scrollToItem(self.list.item(row))
                return

    def visible_names(self) -> list[str]:
        return [self.list.item(r).data(NAME_ROLE) for r in range(self.list.count())]

    # ----------------------------------------------------------------- keys
    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if obj is self.search and event.type() == QEvent.Type.KeyPress:
            key = event.key()
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Up, Qt.Key.Key_PageDown, Qt.Key.Key_PageUp):
                self.list.keyPressEvent(event)  # move in the list, keep typing here
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self._pick_current()
                return True
        return super().eventFilter(obj, event)

    # --------------------------------------------------------------- result
    def _pick_current(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self._pick_item(item)

    def _pick_item(self, item: QListWidgetItem) -> None:
        name = item.data(NAME_ROLE)
        if item.data(KIND_ROLE) == CREATE:
            self.document.add_label(name)
            self.created = True
        self.chosen = name
        self.accept()


def _swatch(colour: QColor) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(colour)
    return QIcon(pixmap)


def pick_label(window, document, ids=None, *, title: str = "Label",
               prompt: str = "") -> str | None:
    """Modal picker (the main window's ``label_picker`` hook); None when cancelled."""
    current = None
    if ids:
        try:
            current = str(document.event(sorted(ids)[0])["label"])
        except KeyError:
            current = None
    if not prompt and ids:
        prompt = f"Label for {len(ids)} event(s):" if len(ids) > 1 else "Label for the event:"
    dialog = LabelPickerDialog(document, window, current=current or document.default_label,
                               title=title, prompt=prompt)
    window.run_dialog("label", dialog)  # tests reach the open dialog in window.dialogs
    return dialog.chosen


def add_event_with_label(window) -> None:
    """Pick a label, then add an event over the time selection (or make it the label
    for new events when there is no time selection)."""
    doc = window.document
    label = pick_label(window, doc, None, title="Label for the new event",
                       prompt="Label for the new event (over the time selection):"
                       if doc.time_selection else "Label for new events:")
    if not label:
        return
    if doc.time_selection is not None:
        doc.add_event(*doc.time_selection, label=label, band=doc.viewport.band_selection)
        doc.time_selection = None
    else:
        doc.default_label = label
        doc.status(f"New events get the label {label}.")

