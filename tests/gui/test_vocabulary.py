"""The project vocabulary: store operations with exact inverses, the vocabulary growing
with the labels a user accepts, adds or relabels to (one undo step), and the
vocabulary dialog (add, rename across events, remove, colour, key; undoable)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QTimer

from panns_core import events as ev
from panns_core.annotations.store import ProjectStore
from panns_core.annotations.store.vocabulary import (
    AddLabels,
    GrowVocabulary,
    RemoveLabels,
    RenameLabel,
    UpdateLabels,
)
from panns_core.errors import StoreError

pytestmark = pytest.mark.gui


def _snapshot(store: ProjectStore):
    frame = store.events()
    return store.labels(), frame[["id", "label", "status", "onset", "offset"]].values.tolist()


@pytest.fixture
def store(demo_path):
    store = ProjectStore()
    rec = store.add_recording(demo_path, hash=False)
    store.apply(AddLabels.named(["Dog", "Cat"], colour="#ff0000"))
    store.add_events(ev.make_events([
        {"onset": 1, "offset": 2, "label": "Dog", "status": ev.ACCEPTED, "source": "m"},
        {"onset": 3, "offset": 4, "label": "Dog", "status": ev.PROPOSED, "source": "m"},
        {"onset": 5, "offset": 6, "label": "Cat", "status": ev.REJECTED, "source": "m"},
    ]), rec)
    yield store
    store.close()


def test_label_operations_undo_exactly(store):
    start = _snapshot(store)
    # rename across events: entry and every event; the AudioSet mid follows the name
    undo = store.apply(RenameLabel("Dog", "Hound"))
    labels, events = _snapshot(store)
    assert [e.name for e in labels] == ["Hound", "Cat"] and labels[0].mid is None
    assert [row[1] for row in events] == ["Hound", "Hound", "Cat"]
    assert [row[2] for row in events] == [ev.ACCEPTED, ev.PROPOSED, ev.REJECTED]
    redo = store.apply(undo)
    assert _snapshot(store) == start
    store.apply(redo)
    store.apply(undo)
    # renaming to a label of the vocabulary merges the two
    undo = store.apply(RenameLabel("Dog", "Cat"))
    labels, events = _snapshot(store)
    assert [e.name for e in labels] == ["Cat"] and {row[1] for row in events} == {"Cat"}
    store.apply(undo)
    assert _snapshot(store) == start
    # remove and colour/key: back with the same id, position, colour
    undo = store.apply(RemoveLabels(["Dog"]))
    assert [e.name for e in store.labels()] == ["Cat"]
    store.apply(undo)
    assert _snapshot(store) == start
    dog, cat = store.labels()
    undo = store.apply(UpdateLabels.set(dog.id, colour="#00ff00", hotkey="1"))
    assert store.label("Dog").colour == "#00ff00" and store.label("Dog").hotkey == "1"
    # two entries swap keys in one operation
    swap = store.apply(UpdateLabels(((dog.id, (("hotkey", "2"),)),
                                     (cat.id, (("hotkey", "1"),)))))
    assert (store.label("Dog").hotkey, store.label("Cat").hotkey) == ("2", "1")
    store.apply(swap)
    store.apply(undo)
    assert _snapshot(store) == start
    # refusals change nothing
    with pytest.raises(StoreError, match="already in the vocabulary"):
        store.apply(AddLabels.named(["Cat"]))
    store.apply(UpdateLabels.set(dog.id, hotkey="1"))
    with pytest.raises(StoreError, match="already gives"):
        store.apply(AddLabels.named(["Bird"], hotkey="1"))
    with pytest.raises(StoreError, match="already has the key"):
        store.apply(UpdateLabels.set(cat.id, hotkey="1"))
    assert [e.name for e in store.labels()] == ["Dog", "Cat"]


def test_grow_vocabulary_adds_labels_of_positive_events_only(store):
    from panns_core.annotations.store import AddEvents, UpdateEvents

    rec = store.recordings()[0].id
    undo = store.apply(GrowVocabulary(AddEvents.from_records([
        {"recording_id": rec, "onset": 7, "offset": 8, "label": "Speech"},
        {"recording_id": rec, "onset": 7, "offset": 8, "label": "Siren",
         "status": ev.PROPOSED, "source": "m"},
    ])))
    assert [e.name for e in store.labels()] == ["Dog", "Cat", "Speech"]
    assert store.label("Speech").mid == "/m/09x0r"
    store.apply(undo)
    assert [e.name for e in store.labels()] == ["Dog", "Cat"] and len(store.events()) == 3
    proposed = int(store.events(statuses=[ev.PROPOSED])["id"].iloc[0])
    store.apply(GrowVocabulary(UpdateEvents.set([proposed], label="Whistle",
                                                status=ev.EDITED)))
    assert "Whistle" in [e.name for e in store.labels()]


def test_the_document_grows_the_vocabulary_in_the_same_undo_step(make_main_window, demo_path):
    window = make_main_window()
    window.open_files([demo_path])
    doc = window.document
    doc.store.add_events(ev.make_events([
        {"onset": 1, "offset": 2, "label": "Dog", "status": ev.PROPOSED, "source": "m"},
        {"onset": 3, "offset": 4, "label": "Cat", "status": ev.PROPOSED, "source": "m"},
    ]), doc.recording.id)
    doc.refresh_annotations()
    seen = []
    doc.events.vocabulary.connect(lambda e: seen.append([x.name for x in e.value]))
    names = lambda: [e.name for e in doc.vocabulary()]  # noqa: E731
    dog, cat = doc.annotations["id"].astype(int).tolist()
    doc.accept([dog])
    assert names() == ["Dog"] and seen[-1] == ["Dog"]
    doc.reject([cat])
    assert names() == ["Dog"]  # a rejected label does not join
    doc.relabel([cat], "Meow")
    assert names() == ["Dog", "Meow"]
    new = doc.add_event(5, 6, "Bark")
    assert names() == ["Dog", "Meow", "Bark"]
    assert doc.event(new)["status"] == ev.ADDED
    doc.undo()
    assert names() == ["Dog", "Meow"] and new not in doc.annotations["id"].tolist()
    doc.undo()
    assert names() == ["Dog"] and doc.event(cat)["label"] == "Cat"
    assert seen[-1] == ["Dog"]
    doc.redo()
    assert names() == ["Dog", "Meow"]


def test_vocabulary_dialog_edits_are_undoable(make_main_window, qtbot, demo_path):
    from app.dialogs.vocabulary import COLOUR, KEY, NAME, VocabularyDialog

    window = make_main_window()
    window.open_files([demo_path])
    doc = window.document
    rec = doc.recording.id
    doc.store.add_events(ev.make_events([
        {"onset": 1, "offset": 2, "label": "Dog", "status": ev.ACCEPTED, "source": "m"},
        {"onset": 3, "offset": 4, "label": "Dog", "status": ev.PROPOSED, "source": "m"},
    ]), rec)
    doc.refresh_annotations()
    dialog = VocabularyDialog(doc, window)
    qtbot.addWidget(dialog)
    assert dialog.names() == []
    assert dialog.add("Dog") and dialog.add("Cat")
    assert dialog.names() == ["Dog", "Cat"]
    assert dialog.table.item(0, 3).text() == "2"
    assert not dialog.add("Cat")
    assert "already in the vocabulary" in dialog.message.text()
    # rename by editing the cell: every event follows; undo puts both back
    dialog.table.item(0, NAME).setText("Hound")
    assert dialog.names() == ["Hound", "Cat"]
    assert set(doc.annotations["label"]) == {"Hound"}
    assert doc.history.undo_text == "Rename label Dog to Hound"
    dialog.buttons["undo"].click()
    assert dialog.names() == ["Dog", "Cat"] and set(doc.annotations["label"]) == {"Dog"}
    # key by editing the cell; a key another label has moves over
    dialog.table.item(1, KEY).setText("1")
    assert doc.store.label("Cat").hotkey == "1"
    dialog.table.item(0, KEY).setText("1")
    assert (doc.store.label("Dog").hotkey, doc.store.label("Cat").hotkey) == ("1", None)
    assert not dialog.set_hotkey("Dog", "12") and "one character" in dialog.message.text()
    window.apply_vocabulary_label(1)
    assert doc.default_label == "Dog"
    # colour
    assert dialog.set_colour("Cat", "#123456")
    assert dialog.table.item(1, COLOUR).text() == "#123456"
    assert doc.label_colours()["Cat"] == "#123456"
    doc.undo()
    assert doc.store.label("Cat").colour is None
    # remove: asks when events carry it; keep them, or delete them too (undoable)
    dialog.ask_remove = lambda name, n: None
    assert not dialog.remove("Dog") and "Dog" in dialog.names()
    dialog.ask_remove = lambda name, n: "keep"
    assert dialog.remove("Dog")
    assert dialog.names() == ["Cat"] and len(doc.annotations) == 2
    doc.undo()
    dialog.ask_remove = lambda name, n: "delete"
    assert dialog.remove("Dog")
    assert dialog.names() == ["Cat"] and len(doc.annotations) == 0
    doc.undo()
    assert dialog.names() == ["Dog", "Cat"] and len(doc.annotations) == 2
    assert doc.store.label("Dog").hotkey == "1"
    dialog.close()


def test_vocabulary_dialog_from_the_edit_menu(make_main_window, qtbot):
    window = make_main_window()
    action = next(a for a in window.menus["Edit"].actions() if "vocabulary" in a.text())
    opened = []

    def close_it():
        dialog = window.dialogs.get("vocabulary")
        if dialog is None:
            QTimer.singleShot(20, close_it)
            return
        opened.append(dialog.names())
        dialog.reject()

    QTimer.singleShot(0, close_it)
    action.trigger()
    assert opened == [[]]
