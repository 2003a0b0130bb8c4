"""The loop closes for a real user, walked twice in the real window on real soundscapes
(``/work/shared/corpus/soundscapes``): open a folder -> detect -> accept some, reject
some, add one, relabel one to a new label -> change every post-processing parameter ->
fine-tune from the dialog (TinySED, two epochs) -> detect again with the new model ->
export -> close -> reopen.

At every step: no event twice (and no proposal over a decided event of its label), the
events the user decided unchanged; the exports equal the project; the vocabulary holds
the new labels; the reopened window shows the same recording, range, parameters and
events.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest

from panns_core import events as ev

pytestmark = pytest.mark.gui

CORPUS = Path("/work/shared/corpus/soundscapes/audio")
FILES = ("dev_0000.flac", "dev_0002.flac", "dev_0004.flac", "dev_0006.flac")
DECIDED_FIELDS = ["id", "recording_id", "onset", "offset", "label", "status", "note"]


def _decided(store):
    frame = store.events()
    frame = frame[frame["status"] != ev.PROPOSED]
    frame = frame[DECIDED_FIELDS].sort_values("id")
    return [tuple(row) for row in frame.astype(object).itertuples(index=False)]


def _check_no_duplicates(store) -> None:
    frame = store.events()
    keys = ["recording_id", "label", "onset", "offset"]
    assert not frame.duplicated(keys).any(), frame[frame.duplicated(keys, keep=False)]
    decided = frame[frame["status"] != ev.PROPOSED]
    proposed = frame[frame["status"] == ev.PROPOSED]
    for row in proposed.itertuples():
        same = decided[(decided["recording_id"] == row.recording_id)
                       & (decided["label"] == row.label)]
        overlap = (same["onset"] < row.offset) & (same["offset"] > row.onset)
        assert not overlap.any(), f"proposal {row.id} repeats a decided {row.label} event"


def _check(store, decided) -> None:
    _check_no_duplicates(store)
    assert _decided(store) == decided


def _drive_finetune(window, qtbot, seen: dict) -> None:
    def step():
        dialog = window.dialogs.get("finetune")
        if dialog is None or not dialog.isVisible():
            QTimer.singleShot(20, step)
            return
        seen["name"] = dialog.name_edit.text()
        seen["summary"] = dialog.summary.text()
        seen["blockers"] = list(dialog.blockers)
        seen["labels"] = dialog.counts[dialog.counts["trained"]]["label"].tolist()
        dialog.base_combo.setCurrentIndex(dialog.base_combo.findData("arch:TinySED"))
        dialog.epochs_spin.setValue(2)
        dialog.budget_spin.setValue(1.0)
        QTest.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    QTimer.singleShot(0, step)


def _review(window, walk: int) -> str:
    """On the first two recordings: accept two proposals, reject one, relabel one to a
    new label, add one. Returns the new label."""
    doc = window.document
    new_label = f"Loop sound {walk}"
    window.label_picker = lambda _window, _doc, _ids: new_label
    for rec in doc.recordings[:2]:
        doc.set_recording(rec.id)
        proposed = doc.annotations[doc.annotations["status"] == ev.PROPOSED]
        ids = proposed.sort_values("confidence", ascending=False)["id"].astype(int).tolist()
        for event_id in ids[:2]:
            doc.select(event_id)
            window.accept_selected()
        for event_id in ids[2:3]:
            doc.select(event_id)
            window.reject_selected()
        for event_id in ids[3:4]:
            window.relabel_dialog([event_id])
            assert doc.event(event_id)["label"] == new_label
        start = 0.5 + walk  # an added event where the user heard something
        doc.time_selection = (start, start + 1.2)
        window.add_from_time_selection()
        added = doc.annotations[doc.annotations["status"] == ev.ADDED]
        assert ((added["onset"] - start).abs() < 1e-6).any()
        if len(ids) < 4:  # too few proposals here: relabel the added event instead
            window.relabel_dialog([int(added["id"].iloc[-1])])
    return new_label


def _change_every_parameter(window, walk: int, labels: list[str]) -> dict:
    panel = window.panels["detection"]
    panel.threshold_spin.setValue(0.30 - 0.05 * walk)
    panel.off_spin.setValue(0.15 - 0.05 * walk)
    panel.median_spin.setValue(0.32 * walk)
    panel.min_duration_spin.setValue(0.1 * walk)
    panel.merge_spin.setValue(0.2 * walk)
    panel.top_k_spin.setValue(12 - walk)
    panel.classes_edit.setText(", ".join(labels))
    panel.classes_edit.editingFinished.emit()
    panel.flush()
    params = window.document.params
    assert params.threshold == pytest.approx(0.30 - 0.05 * walk)
    assert params.off_threshold == pytest.approx(0.15 - 0.05 * walk)
    assert params.median_seconds == pytest.approx(0.32 * walk)
    assert params.min_duration == pytest.approx(0.1 * walk)
    assert params.merge_gap == pytest.approx(0.2 * walk)
    assert params.top_k == 12 - walk
    assert list(params.classes) == labels
    return params


def _export(window, tmp_path: Path, walk: int) -> None:
    """Two exports of the whole project: every event (Label Studio keeps statuses) and
    the default statuses as DCASE; both read back equal to the project."""
    from app.dialogs.io_dialogs import DIALOG_STATUSES, ExportDialog
    from panns_core.annotations.formats import read_annotations

    doc = window.document
    store = doc.store
    frame = store.events()
    frame = frame.assign(recording=[Path(p).name for p in frame["recording"]])

    def table(events, proposed=False):
        keys = ["recording", "onset", "offset", "label"]
        out = events[keys].copy()
        if proposed:  # what Label Studio keeps of the status: the model's or a person's
            out["proposed"] = events["status"] == ev.PROPOSED
        out["onset"] = out["onset"].round(3)
        out["offset"] = out["offset"].round(3)
        return sorted(tuple(row) for row in out.astype(object).itertuples(index=False))

    dialog = ExportDialog(doc, window)
    dialog.scope_project.setChecked(True)
    dialog.set_format("label_studio")
    dialog.per_recording.setChecked(False)
    for box in dialog.status_boxes.values():
        box.setChecked(True)
    dest = tmp_path / f"walk{walk}.json"
    dialog.set_destination(dest)
    assert dialog.export() == [dest]
    back = read_annotations(dest)
    back = back.assign(recording=[Path(p).name for p in back["recording"]])
    assert table(back, True) == table(frame, True) and len(back) == len(frame)

    for box_status, box in dialog.status_boxes.items():
        box.setChecked(box_status in DIALOG_STATUSES)
    dialog.set_format("dcase")
    dest = tmp_path / f"walk{walk}.tsv"
    dialog.set_destination(dest)
    assert dialog.export() == [dest]
    back = read_annotations(dest, "dcase")
    back = back.assign(recording=[Path(p).name for p in back["recording"]])
    kept = frame[frame["status"].isin(DIALOG_STATUSES)]
    assert table(back) == table(kept) and len(kept) > 0
    dialog.deleteLater()


@pytest.mark.slow
def test_the_loop_walked_twice(make_main_window, qtbot, tmp_path, sed_checkpoint):
    from panns_core.hub.installed import import_checkpoint

    if not all((CORPUS / name).is_file() for name in FILES):
        pytest.skip("the shared soundscape corpus is not here")
    folder = tmp_path / "soundscapes"
    folder.mkdir()
    for name in FILES:
        shutil.copy(CORPUS / name, folder / name)
    import_checkpoint(sed_checkpoint, "cnn6-test")
    project = tmp_path / "loop.panns"
    window = make_main_window(project=project)
    doc = window.document
    decided = _decided(doc.store)
    models: list[str] = []
    new_labels: list[str] = []

    for walk in (1, 2):
        detection = window.panels["detection"]
        if walk == 1:
            # open a folder
            window.open_folder(folder)
            qtbot.waitUntil(lambda w=window: w.folder_worker is None, timeout=30_000)
            assert sorted(r.name for r in doc.recordings) == list(FILES)
            detection.refresh_models()
            doc.model = "cnn6-test"
            assert detection.model_combo.currentData() == "cnn6-test"
        else:
            assert doc.model == models[-1] or window.panels["training"].comparison.worse
        # detect in every recording
        with qtbot.waitSignal(detection.finished, timeout=180_000):
            detection.run_all()
        _check(doc.store, decided)
        proposed = doc.store.events(statuses=[ev.PROPOSED])
        if walk == 1:
            assert len(proposed) >= 4, "the detector proposed too little to review"
        # review
        new_labels.append(_review(window, walk))
        decided = _decided(doc.store)
        assert len(decided) > 0
        _check(doc.store, decided)
        vocabulary = [e.name for e in doc.vocabulary()]
        assert set(new_labels) <= set(vocabulary)
        accepted = set(doc.store.events(statuses=[ev.ACCEPTED])["label"])
        assert accepted <= set(vocabulary)  # accepted labels joined the vocabulary
        # every post-processing parameter
        labels = sorted({row[DECIDED_FIELDS.index("label")] for row in decided})
        params = _change_every_parameter(window, walk, labels)
        _check(doc.store, decided)

        # fine-tune from the dialog (Models > Fine-tune, Ctrl+Shift+T)
        panel = window.panels["training"]
        seen: dict = {}
        _drive_finetune(window, qtbot, seen)
        window.activateWindow()
        action = next(a for a in window.menus["Models"].actions()
                      if a.text().startswith("&Fine-tune"))
        action.trigger()
        assert seen["blockers"] == [] and panel.running, (seen, window.last_error)
        trained = sorted(set(doc.store.events(statuses=list(ev.STATUSES[1:]))["label"]))
        positive = set(doc.store.events(statuses=[ev.ACCEPTED, ev.EDITED, ev.ADDED])["label"])
        assert set(seen["labels"]) == positive and new_labels[-1] in seen["labels"], trained
        assert seen["name"] not in models  # the default name is unique
        with qtbot.waitSignal(panel.finished, timeout=240_000):
            pass
        qtbot.waitUntil(lambda p=panel: not p.running, timeout=30_000)
        assert panel.error is None, panel.error
        assert panel.model_name == seen["name"]
        models.append(panel.model_name)
        _check(doc.store, decided)

        # detect again with the new model (asked first when it scored worse)
        asked = []
        panel.confirm = lambda _title, text, asked=asked: asked.append(text) or True
        with qtbot.waitSignal(detection.finished, timeout=120_000):
            panel.detect_button.click()
        assert bool(asked) == panel.comparison.worse
        assert doc.model == models[-1]
        assert sorted(doc.scores.labels) == sorted(seen["labels"])
        _check(doc.store, decided)
        assert doc.params == params

        # export, close, reopen
        _export(window, tmp_path, walk)
        shown = doc.recording.path
        view_range = doc.view_range
        events = doc.store.events().sort_values("id").reset_index(drop=True)
        window.close()
        qtbot.waitUntil(lambda d=doc: d.store is None, timeout=10_000)
        window = make_main_window(project=project)
        doc = window.document
        assert doc.recording is not None and doc.recording.path == shown
        assert doc.view_range == pytest.approx(view_range)
        assert doc.params == params
        assert window.panels["detection"].threshold_spin.value() == pytest.approx(
            params.threshold)
        reopened = doc.store.events().sort_values("id").reset_index(drop=True)
        import pandas as pd

        pd.testing.assert_frame_equal(reopened, events)
        _check(doc.store, decided)
        assert set(new_labels) <= {e.name for e in doc.vocabulary()}


def test_a_class_filter_naming_classes_the_model_lacks_finds_no_events_of_them(
        make_main_window, demo_path):
    """After fine-tuning, the class filter may name labels the new model lacks (or the
    old model's classes): detection and re-derivation find events of the others instead
    of failing (before: KeyError 'unknown classes')."""
    import numpy as np

    from app.model.detection import params_for
    from panns_core.detection.scores import Scores

    window = make_main_window()
    window.open_files([demo_path])
    doc = window.document
    probabilities = np.zeros((100, 2), np.float32)
    probabilities[10:40, 0] = 0.9
    probabilities[50:60, 1] = 0.9
    scores = Scores(probabilities=probabilities, segment_seconds=0.1, labels=["Dog", "Cat"],
                    model_id="m")
    doc.set_scores(scores)
    doc.update_params(classes=["Dog", "Loop sound 1"])
    assert params_for(scores, doc.params).classes == ["Dog"]
    assert doc.rederive_events() == 1
    assert doc.annotations["label"].tolist() == ["Dog"]
    doc.update_params(classes=["Loop sound 1"])
    assert doc.rederive_events() == 0 and window.last_error is None
