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

    # the new model: chosen for detection, and detection runs with it
    assert panel.detect_button.isEnabled()
    with qtbot.waitSignal(window.panels["detection"].finished, timeout=60_000):
        QTest.mouseClick(panel.detect_button, Qt.MouseButton.LeftButton)
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
