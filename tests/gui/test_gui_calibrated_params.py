"""The window uses a model's calibrated post-processing: it becomes the document's params
when the model is chosen or used, unless the user set the params by hand for the project
(saved with it); the panel says they are the model's and can go back to them."""

from __future__ import annotations

import pandas as pd
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from panns_core.detection.postprocess import PostprocessParams, scores_to_events

pytestmark = [pytest.mark.gui, pytest.mark.slow]

CALIBRATED = PostprocessParams(
    threshold=0.2, class_thresholds={"Speech": 0.35, "Music": 0.6},
    class_off_thresholds={"Speech": 0.1}, median_seconds=0.48,
    class_median_seconds={"Music": 0.8},
)  # fmt: skip
KEYS = ["onset", "offset", "label"]


@pytest.fixture(scope="module")
def calibrated_checkpoint(sed_checkpoint, tmp_path_factory):
    """The seeded Cnn6_DecisionLevelMax checkpoint with calibrated post-processing."""
    from panns_core.hub.checkpoints import load_checkpoint, save_checkpoint

    loaded = load_checkpoint(sed_checkpoint)
    model = loaded.build_model("cpu")
    path = tmp_path_factory.mktemp("calibrated") / "calibrated.pth"
    return save_checkpoint(path, model, architecture=loaded.architecture,
                           feature_config=loaded.feature_config, labels=list(loaded.labels),
                           extra={"postprocess": CALIBRATED.to_dict()})  # fmt: skip


def _install(window, checkpoint, name):
    from app.dialogs.model_manager import ModelManagerDialog

    dialog = ModelManagerDialog(window)
    dialog.quiet_errors = True
    dialog.models_changed.connect(window.panels["detection"].refresh_models)
    dialog.import_file(str(checkpoint), name)
    dialog.select_name(name)
    dialog.set_default_selected()
    dialog.close()
    return window.panels["detection"]


def _key(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[KEYS].astype({"label": object}).sort_values(KEYS).reset_index(drop=True).round(6)


def test_the_models_calibrated_params_are_used_unless_set_by_hand(
    make_main_window, qtbot, demo_path, calibrated_checkpoint, sed_checkpoint
):
    window = make_main_window()
    window.open_files([demo_path])
    doc = window.document
    panel = _install(window, calibrated_checkpoint, "calibrated")
    assert doc.model == "calibrated"
    # chosen: the model's calibration is read on a worker and becomes the params
    qtbot.waitUntil(lambda: doc.params == CALIBRATED, timeout=60000)
    assert doc.detection.params_are_models and not doc.detection.params_by_hand
    assert "model's calibrated" in panel.params_source.text()
    assert "Speech" in panel.params_source.toolTip()  # per class on / off / median
    assert panel.use_model_button.isHidden()
    assert panel.threshold_spin.value() == pytest.approx(0.2)
    assert panel.median_spin.value() == pytest.approx(0.48)

    # used: detection derives the events with them
    QTest.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.running, timeout=120000)
    assert window.last_error is None
    expected = scores_to_events(doc.scores, CALIBRATED)
    pd.testing.assert_frame_equal(_key(doc.annotations), _key(expected))

    # by hand: one threshold for all classes, said so, and kept for this project
    panel.threshold_spin.setValue(0.45)
    panel.flush()
    assert doc.detection.params_by_hand and not doc.detection.params_are_models
    assert doc.params.threshold == pytest.approx(0.45) and not doc.params.class_thresholds
    assert doc.params.class_median_seconds == {"Music": 0.8}  # the median was not touched
    assert "by hand" in panel.params_source.text() and not panel.use_model_button.isHidden()
    hand = doc.params
    project = doc.project_path
    window.close()

    again = make_main_window(project=project)
    adoc, apanel = again.document, again.panels["detection"]
    qtbot.waitUntil(lambda: adoc.detection.model_params is not None, timeout=60000)
    assert adoc.detection.params_by_hand and adoc.params == hand  # not replaced
    # the button goes back to the model's
    QTest.mouseClick(apanel.use_model_button, Qt.MouseButton.LeftButton)
    assert adoc.params == CALIBRATED and not adoc.detection.params_by_hand
    assert "model's calibrated" in apanel.params_source.text()

    # another model without calibration: the first model's values are not kept for it
    _install(again, sed_checkpoint, "plain")
    apanel.model_combo.setCurrentIndex(apanel.model_combo.findData("plain"))
    assert adoc.model == "plain"
    assert adoc.params != CALIBRATED and not adoc.params.class_thresholds
    qtbot.waitUntil(lambda: apanel._calibration_worker is None, timeout=60000)
    assert adoc.detection.model_params is None and apanel.params_source.isHidden()
