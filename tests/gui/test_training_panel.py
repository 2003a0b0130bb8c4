"""Fine-tuning from the window: the dialog's class counts and arguments, and a real
(tiny) ``panns-sed train --json`` process started from the dialog, its progress and
curves, the new model in the registry, detection re-run with it, and cancel."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.dialogs.finetune import FineTuneDialog, class_counts
from panns_core import events as ev
from panns_core.training.data import POSITIVE_STATUSES

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def synthetic_project(tmp_path_factory):
    from panns_core.training.synthetic import make_synthetic_dataset, write_project

    root = tmp_path_factory.mktemp("ft")
    data = make_synthetic_dataset(root / "audio", n_recordings=4, duration=6.0, seed=5)
    return data, write_project(data, root / "template.panns")


@pytest.fixture
def project(synthetic_project, tmp_path):
    import shutil

    data, template = synthetic_project
    path = tmp_path / "birds.panns"
    shutil.copy(template, path)
    return data, path


def test_dialog_counts_classes_and_builds_arguments(make_main_window, qtbot, project):
    data, path = project
    window = make_main_window(project=path)
    doc = window.document
    doc.set_recording(doc.recordings[0].id)
    first = doc.annotations.iloc[0]
    doc.reject([int(first["id"])])
    counts = class_counts(doc.store).set_index("label")
    expected = data.events["label"].value_counts()
    expected[first["label"]] -= 1
    assert counts.loc[data.labels, "events"].tolist() == expected.loc[data.labels].tolist()
    assert counts.at[first["label"], "rejected"] == 1

    dialog = FineTuneDialog(doc, window)
    assert dialog.table.rowCount() == len(data.labels)
    assert dialog.start_button.isEnabled()
    dialog.strategy_buttons["partial"].setChecked(True)
    dialog.base_combo.setCurrentIndex(dialog.base_combo.findData("arch:TinySED"))
    dialog.epochs_spin.setValue(4)
    dialog.budget_spin.setValue(1.5)
    dialog.name_edit.setText("birds-v2")
    args = dialog.train_args()
    assert args == ["--project", str(path), "--strategy", "partial", "--epochs", "4",
                    "--base", "arch:TinySED", "--time-budget", "90", "--name", "birds-v2"]
    dialog.deleteLater()


def test_dialog_refuses_a_project_without_corrected_events(make_main_window, qtbot, tmp_path,
                                                           demo_path):
    window = make_main_window()
    window.open_files([demo_path])
    doc = window.document
    doc.store.add_events(ev.make_events([{"onset": 1, "offset": 2, "label": "Dog",
                                          "status": ev.PROPOSED, "source": "m"}]),
                         doc.recording.id)
    dialog = FineTuneDialog(doc, window)
    assert not dialog.start_button.isEnabled()
    assert "No accepted, corrected or added events" in dialog.warning.text()
    dialog.deleteLater()


def _drive_dialog(window, name: str, epochs: int) -> None:
    def step():
        dialog = window.dialogs.get("finetune")
        if dialog is None or not dialog.isVisible():
            QTimer.singleShot(20, step)
            return
        dialog.base_combo.setCurrentIndex(dialog.base_combo.findData("arch:TinySED"))
        dialog.epochs_spin.setValue(epochs)
        dialog.budget_spin.setValue(0)
        dialog.name_edit.setText(name)
        QTest.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    QTimer.singleShot(0, step)


@pytest.mark.slow
def test_real_fine_tune_from_the_dialog(make_main_window, qtbot, project):
    from panns_core.hub.installed import list_models

    data, path = project
    window = make_main_window(project=path)
    doc = window.document
    doc.set_recording(doc.recordings[0].id)
    panel = window.panels["training"]
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=15000)
    _drive_dialog(window, "gui-tiny", epochs=2)
    QTest.keyClick(window, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier
                   | Qt.KeyboardModifier.ShiftModifier)
    assert panel.running and window.docks["training"].isVisible()
    # the window stays usable while the process trains
    doc.zoom(0.5)
    assert doc.view_range[1] - doc.view_range[0] == pytest.approx(3.0)
    with qtbot.waitSignal(panel.finished, timeout=120_000):
        pass
    qtbot.waitUntil(lambda: not panel.running, timeout=30_000)
    assert panel.error is None, panel.error
    kinds = [e["event"] for e in panel.events]
    assert kinds[0] == "start" and kinds[-1] == "done" and kinds.count("epoch") == 2
    assert panel.result["status"] == "completed"
    assert panel.model_name == "gui-tiny"
    assert "gui-tiny" in [m.name for m in list_models()]
    # curves: a loss per step, validation before training (epoch 0) and per epoch
    steps = [e for e in panel.events if e["event"] == "step"]
    xs, ys = panel.step_curve.getData()
    assert len(xs) == len(steps) and ys[-1] == pytest.approx(steps[-1]["loss"])
    xs, _ = panel.event_f1_curve.getData()
    assert list(xs) == [0, 1, 2]
    after = panel.result["result"]["metrics_after"]["event_f1"]
    assert panel.metrics.text(0, 1) == f"{after:.3f}"
    assert panel.progress.value() == panel.progress.maximum()

    # the new model: chosen for detection, and detection runs with it (asked first when
    # it scored worse than its base)
    assert panel.detect_button.isEnabled()
    asked = []
    panel.confirm = lambda _title, text: asked.append(text) or True
    with qtbot.waitSignal(window.panels["detection"].finished, timeout=60_000):
        QTest.mouseClick(panel.detect_button, Qt.MouseButton.LeftButton)
    assert bool(asked) == panel.comparison.worse
    assert doc.model == "gui-tiny"
    assert window.panels["detection"].model_combo.currentData() == "gui-tiny"
    assert doc.scores is not None and list(doc.scores.labels) == data.labels


@pytest.mark.slow
def test_cancel_keeps_the_checkpoint(make_main_window, qtbot, project):
    _data, path = project
    window = make_main_window(project=path)
    panel = window.panels["training"]
    panel.start(["--project", str(path), "--base", "arch:TinySED", "--strategy", "full",
                 "--epochs", "50", "--batch-size", "8", "--clip-seconds", "2",
                 "--no-register"])
    qtbot.waitUntil(lambda: any(e["event"] == "step" for e in panel.events), timeout=90_000)
    panel.cancel()
    with qtbot.waitSignal(panel.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: not panel.running, timeout=30_000)
    assert panel.result["status"] == "cancelled"
    state = panel.result["result"]["state"]
    assert state and __import__("pathlib").Path(state).is_file()
    assert "Cancelled" in panel.status.text()
    assert not panel.use_button.isEnabled()


# ------------------------------------------------ the dialog for a newcomer (issue 18)


@pytest.fixture
def tiny_checkpoint(tmp_path):
    """A TinySED checkpoint with two classes (seeded), for registry entries."""
    import torch

    from panns_core.hub.checkpoints import save_checkpoint
    from panns_core.models import build_model
    from panns_core.training.tiny import TINY_FEATURES, TINY_SED

    torch.manual_seed(0)
    model = build_model(TINY_SED, classes_num=2).eval()
    return save_checkpoint(tmp_path / "tiny.pth", model, architecture=TINY_SED,
                           feature_config=TINY_FEATURES, labels=["Dog", "Cat"])


def _events(doc, rec_id, rows):
    doc.store.add_events(ev.make_events(rows), rec_id)
    doc.refresh_annotations()


def test_dialog_counts_message_and_start_agree(make_main_window, qtbot, project):
    """Labels outside the vocabulary are trained too: the table, the message and the
    Start button say the same (before: 'not trained' and Start disabled)."""
    _data, path = project
    window = make_main_window(project=path)
    doc = window.document
    for entry in doc.vocabulary():
        doc.store.remove_label(entry.name)
    doc.store.ensure_labels(["Never used"])
    dialog = FineTuneDialog(doc, window)
    trained = dialog.counts[dialog.counts["trained"]]
    positives = doc.store.events(statuses=POSITIVE_STATUSES)
    assert sorted(trained["label"]) == sorted(set(positives["label"]))
    assert int(trained["events"].sum()) == len(positives)
    assert not dialog.counts.set_index("label").at["Never used", "trained"]
    assert dialog.start_button.isEnabled() and dialog.blockers == []
    assert (f"Trains {len(trained)} class(es) on {len(positives)} event(s) from "
            f"{positives['recording_id'].nunique()} recording(s)") in dialog.summary.text()
    assert "--val-fraction" not in dialog.train_args()
    # the rows of untrained labels say why
    row = dialog.counts.index[dialog.counts["label"] == "Never used"][0]
    assert "not trained" in dialog.table.item(int(row), 0).toolTip()
    dialog.deleteLater()


def test_dialog_with_one_annotated_recording_trains_without_validation(
        make_main_window, qtbot, demo_path):
    """One recording with events: the dialog says nothing is held out and the run is
    asked for no validation split (before: Start enabled and the run failed)."""
    window = make_main_window()
    window.open_files([demo_path])
    doc = window.document
    _events(doc, doc.recording.id, [
        {"onset": 1, "offset": 2, "label": "Dog", "status": ev.ACCEPTED, "source": "m"},
        {"onset": 3, "offset": 4, "label": "Dog", "status": ev.ADDED, "source": "human"},
    ])
    dialog = FineTuneDialog(doc, window)
    assert dialog.start_button.isEnabled()
    assert "Only one recording has events" in dialog.warning.text()
    assert "second recording" in dialog.warning.text()
    args = dialog.train_args()
    assert args[args.index("--val-fraction") + 1] == "0"
    dialog.deleteLater()


def test_dialog_checks_the_model_name(make_main_window, qtbot, demo_path, tiny_checkpoint,
                                      monkeypatch):
    """A taken name blocks Start with a message in the dialog; the default name is
    unique (before: the run trained for minutes and then failed to register)."""
    import time as time_module

    from panns_core.hub.installed import register_checkpoint

    window = make_main_window()
    window.open_files([demo_path])
    doc = window.document
    _events(doc, doc.recording.id, [
        {"onset": 1, "offset": 2, "label": "Dog", "status": ev.ACCEPTED, "source": "m"}])
    monkeypatch.setattr(time_module, "strftime", lambda fmt, *a: "20260101-1200")
    stem = doc.project_path.stem
    register_checkpoint(tiny_checkpoint, f"{stem}-ft-20260101-1200")
    register_checkpoint(tiny_checkpoint, f"{stem}-ft-20260101-1200-2")
    dialog = FineTuneDialog(doc, window)
    assert dialog.name_edit.text() == f"{stem}-ft-20260101-1200-3"
    assert dialog.start_button.isEnabled()
    dialog.name_edit.setText(f"{stem}-ft-20260101-1200")
    assert not dialog.start_button.isEnabled()
    assert "already installed" in dialog.warning.text()
    dialog.name_edit.setText("")
    assert not dialog.start_button.isEnabled() and "name" in dialog.warning.text()
    dialog.name_edit.setText("a/b")
    assert not dialog.start_button.isEnabled() and "usable" in dialog.warning.text()
    dialog.name_edit.setText("fresh-name")
    assert dialog.start_button.isEnabled() and dialog.warning.text().strip() == (
        "Few examples for Dog: expect little from those. Only one recording has events, "
        "so none is held out to measure the result against its base: annotate events in a "
        "second recording to measure it.")
    dialog.deleteLater()


def test_fine_tune_checks_the_name_before_training(tiny_checkpoint, tmp_path):
    from panns_core.errors import StoreError
    from panns_core.hub.installed import register_checkpoint
    from panns_core.training.config import TrainConfig
    from panns_core.training.run import fine_tune

    register_checkpoint(tiny_checkpoint, "taken")
    with pytest.raises(StoreError, match="already installed"):
        # no project at this path: the name is checked before anything else
        fine_tune(tmp_path / "none.panns", "arch:TinySED", TrainConfig(), name="taken")


def _done(panel, name, before=(("event_f1", 0.9),), after=(("event_f1", 0.1),)):
    panel.handle({"event": "start", "architecture": "TinySED", "strategy": "head",
                  "total_steps": 1, "labels": ["Dog", "Cat"], "data": {}})
    panel.handle({"event": "done", "status": "completed",
                  "result": {"model": name, "metrics_before": before and dict(before),
                             "metrics_after": after and dict(after)}})


def test_a_model_worse_than_its_base_is_said_not_made_default_and_asks(
        make_main_window, qtbot, tiny_checkpoint):
    from panns_core.hub.installed import get_registry, register_checkpoint

    window = make_main_window()
    doc = window.document
    panel = window.panels["training"]
    registry = get_registry()
    register_checkpoint(tiny_checkpoint, "base-model")
    window.panels["detection"].refresh_models()
    doc.model = "base-model"
    # the registry's figures decide (the done event here claims the opposite)
    register_checkpoint(tiny_checkpoint, "worse-one", parent="base-model", metrics={
        "val_before": {"event_f1": 0.5, "segment_f1": 0.6},
        "val_after": {"event_f1": 0.25, "segment_f1": 0.7}})
    before_model, before_default = doc.model, registry.default_name()
    _done(panel, "worse-one")
    assert panel.comparison.worse
    text = panel.status.text()
    assert "scores worse than its base" in text and "not made the default" in text
    assert "event F1 0.250 against 0.500" in text
    assert doc.model == before_model and registry.default_name() == before_default
    asked = []
    panel.confirm = lambda title, question: asked.append(question) or False
    detected = []
    panel.detect_requested.connect(detected.append)
    panel.detect_button.click()
    assert len(asked) == 1 and "worse" in asked[0] and detected == []
    panel.confirm = lambda title, question: asked.append(question) or True
    panel.detect_button.click()
    qtbot.waitUntil(lambda: not window.panels["detection"].running, timeout=30_000)
    assert len(asked) == 2 and detected == ["worse-one"]

    # a better one: said, made the default and chosen, detection does not ask
    register_checkpoint(tiny_checkpoint, "better-one", metrics={
        "val_before": {"event_f1": 0.25}, "val_after": {"event_f1": 0.5}})
    _done(panel, "better-one")
    assert panel.comparison.verdict == "better"
    assert "better than its base" in panel.status.text()
    assert registry.default_name() == "better-one" and doc.model == "better-one"
    panel.detect_button.click()
    qtbot.waitUntil(lambda: not window.panels["detection"].running, timeout=30_000)
    assert len(asked) == 2 and detected[-1] == "better-one"

    # unmeasured (no validation split): not made the default either
    register_checkpoint(tiny_checkpoint, "unmeasured-one", metrics={})
    _done(panel, "unmeasured-one", None, None)
    assert panel.comparison.verdict == "unmeasured"
    assert "could not be compared" in panel.status.text()
    assert registry.default_name() == "better-one" and doc.model == "better-one"


def test_dialog_says_how_to_find_missing_audio(make_main_window, qtbot, tmp_path, demo_path):
    import shutil

    window = make_main_window()
    copy = tmp_path / "moved.flac"
    shutil.copy(demo_path, copy)
    window.open_files([copy])
    doc = window.document
    _events(doc, doc.recording.id, [
        {"onset": 1, "offset": 2, "label": "Dog", "status": ev.ACCEPTED, "source": "m"}])
    copy.unlink()
    dialog = FineTuneDialog(doc, window)
    assert not dialog.start_button.isEnabled()
    assert "moved.flac" in dialog.warning.text()
    assert "Locate moved recordings" in dialog.warning.text()
    dialog.deleteLater()


def test_dialog_says_a_run_is_going_already(make_main_window, qtbot, demo_path):
    """Opening the dialog during a run says so in the dialog (before: an error box and
    no dialog)."""
    window = make_main_window()
    window.open_files([demo_path])
    doc = window.document
    _events(doc, doc.recording.id, [
        {"onset": 1, "offset": 2, "label": "Dog", "status": ev.ACCEPTED, "source": "m"}])
    seen = {}

    def look():
        dialog = window.dialogs.get("finetune")
        if dialog is None:
            QTimer.singleShot(20, look)
            return
        seen["enabled"] = dialog.start_button.isEnabled()
        seen["text"] = dialog.warning.text()
        dialog.reject()

    window.panels["training"].process = object()  # as if a run were going
    try:
        QTimer.singleShot(0, look)
        from app.dialogs.finetune import open_finetune

        open_finetune(window)
    finally:
        window.panels["training"].process = None
    assert seen["enabled"] is False
    assert "going already" in seen["text"] and "Cancel fine-tuning" in seen["text"]


def test_the_panel_shows_the_calibrated_thresholds_of_the_result(make_main_window):
    from panns_core.detection.postprocess import PostprocessParams

    window = make_main_window(show=False)
    panel = window.panels["training"]
    assert panel.calibration_table.isHidden() and panel.calibration_label.text() == ""
    calibrated = PostprocessParams(threshold=0.15, class_thresholds={"Dog": 0.3},
                                   class_off_thresholds={"Dog": 0.15}, median_seconds=1.12,
                                   class_median_seconds={"Bird": 0.8})
    panel.handle({"event": "start", "labels": ["Bird", "Dog", "Speech"], "strategy": "full",
                  "architecture": "TinySED", "data": {}})
    panel.handle({"event": "calibration", "stage": "start"})
    assert "Calibrating" in panel.status.text()
    panel.handle({"event": "calibration", "stage": "done", "report": {"event_f1": 0.473}})
    panel.handle({"event": "done", "status": "completed",
                  "result": {"postprocess": calibrated.to_dict(), "metrics_after":
                             {"event_f1": 0.4, "segment_map": 0.61}}})  # fmt: skip
    table = panel.calibration_table
    assert not table.isHidden() and table.rowCount() == 3
    rows = [[table.item(r, c).text() for c in range(4)] for r in range(3)]
    assert rows == [["Bird", "0.15", "0.15", "0.80"], ["Dog", "0.30", "0.15", "1.12"],
                    ["Speech", "0.15", "0.15", "1.12"]]
    assert "0.473" in panel.calibration_label.text()
    assert panel.metrics.text(4, 1) == "0.610"  # segment mAP, what selection uses
    # a run without calibration says so; a new run clears the table
    panel.handle({"event": "done", "status": "completed", "result": {}})
    assert table.isHidden() and "No calibrated" in panel.calibration_label.text()
