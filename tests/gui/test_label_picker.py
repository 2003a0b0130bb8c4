"""The label picker: ranking, vocabulary first, keyboard picking, creating a label,
and relabelling through the window's L key with undo."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.dialogs.label_picker import (
    AUDIOSET,
    VOCABULARY,
    LabelChoice,
    LabelPickerDialog,
    match_score,
    rank_labels,
)
from app.model import Document
from panns_core import events as ev
from panns_core.labels import audioset_labels

pytestmark = pytest.mark.gui


def test_match_score_orders_exact_prefix_word_substring_fuzzy():
    assert match_score("dog", "Dog") == 0
    assert match_score("do", "Dog") == 1
    assert match_score("bark", "Dog bark") == 2
    assert match_score("ark", "Dog bark") == 3
    fuzzy = match_score("brd", "Bird")
    assert fuzzy is not None and fuzzy > 4
    assert match_score("xyz", "Bird") is None
    assert match_score("", "Bird") is not None  # an empty query matches everything


def test_rank_puts_vocabulary_first_and_drops_duplicates():
    choices = [LabelChoice("Woodpecker drum", VOCABULARY), LabelChoice("Dog", VOCABULARY)]
    choices += [LabelChoice(n, AUDIOSET) for n in audioset_labels().names]
    ranked = rank_labels("dog", choices)
    assert ranked[0] == LabelChoice("Dog", VOCABULARY)
    assert [c.name for c in ranked].count("Dog") == 1
    assert all("dog" in c.name.casefold() for c in ranked[:3])
    everything = rank_labels("", choices)
    assert [c.name for c in everything[:2]] == ["Woodpecker drum", "Dog"]
    assert len(everything) == 527 + 1  # "Dog" is both; "Woodpecker drum" is new
    assert rank_labels("wdpk", choices)[0].name == "Woodpecker drum"


@pytest.fixture
def doc(tmp_path):
    document = Document()
    document.open_project(tmp_path / "labels.panns")
    document.add_label("Knock", hotkey="1", colour="#ff0000")
    document.add_label("Chirp", hotkey="2")
    yield document
    document.close_project()


def test_dialog_types_moves_and_picks_with_enter(qtbot, doc):
    dialog = LabelPickerDialog(doc)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.visible_names()[:2] == ["Knock", "Chirp"]
    audioset = set(audioset_labels().names)
    assert "Knock" in audioset and "Chirp" not in audioset
    assert len(dialog.visible_names()) == 527 + 1  # Knock is listed once
    assert "[1]" in dialog.list.item(0).text()
    QTest.keyClicks(dialog.search, "chir")
    names = dialog.visible_names()
    assert names[0] == "Chirp" and "Chirp, tweet" in names
    QTest.keyClick(dialog.search, Qt.Key.Key_Down)
    QTest.keyClick(dialog.search, Qt.Key.Key_Return)
    assert dialog.result() == dialog.DialogCode.Accepted
    assert dialog.chosen == names[1]
    assert not dialog.created


def test_dialog_creates_a_vocabulary_label(qtbot, doc):
    dialog = LabelPickerDialog(doc)
    qtbot.addWidget(dialog)
    dialog.show()
    QTest.keyClicks(dialog.search, "Zebra finch song")
    assert dialog.list.item(0).text().startswith("＋ Create")
    QTest.keyClick(dialog.search, Qt.Key.Key_Return)
    assert dialog.chosen == "Zebra finch song" and dialog.created
    assert "Zebra finch song" in [e.name for e in doc.vocabulary()]
    # an existing name never offers creation
    again = LabelPickerDialog(doc)
    qtbot.addWidget(again)
    QTest.keyClicks(again.search, "zebra finch SONG")
    assert all(not again.list.item(r).text().startswith("＋")
               for r in range(again.list.count()))


def _answer_picker(window, text: str, results: list) -> None:
    def step():
        dialog = window.dialogs.get("label")
        if dialog is None or not dialog.isVisible():
            QTimer.singleShot(20, step)
            return
        results.append(dialog.visible_names()[0])
        QTest.keyClicks(dialog.search, text)
        QTest.keyClick(dialog.search, Qt.Key.Key_Return)
    QTimer.singleShot(0, step)


def test_relabel_key_opens_the_picker_and_undo_restores(make_main_window, qtbot, demo_path):
    window = make_main_window()
    window.open_files([demo_path])
    doc = window.document
    (event_id,) = doc.store.add_events(
        ev.make_events([{"onset": 1.0, "offset": 2.0, "label": "Speech"}]), doc.recording.id)
    doc.selection = {event_id}
    window.activateWindow()
    window.setFocus()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=15000)
    seen: list[str] = []
    _answer_picker(window, "Bark", seen)
    QTest.keyClick(window, Qt.Key.Key_L)
    QApplication.processEvents()
    assert seen == ["Speech"]  # the event's label is offered first
    assert doc.event(event_id)["label"] == "Bark"
    assert doc.event(event_id)["status"] == ev.ADDED
    assert doc.undo() and doc.event(event_id)["label"] == "Speech"

    # Shift+Enter: add an event over the time selection with a picked label
    doc.time_selection = (5.0, 6.5)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=15000)
    _answer_picker(window, "Knock", [])
    QTest.keyClick(window, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    QApplication.processEvents()
    added = doc.annotations[doc.annotations["label"] == "Knock"]
    assert len(added) == 1
    assert added.iloc[0][["onset", "offset"]].tolist() == pytest.approx([5.0, 6.5])
