"""Post-processing calibrated on the validation recordings after training: stored in the
fine-tuned checkpoint and the registry, and what the loaded detector uses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from panns_core.training import tiny  # noqa: F401  (registers TinySED)
from panns_core.training.calibration import calibrate
from panns_core.training.config import TrainConfig
from panns_core.training.data import LabelledRecording


def rec(key, positives):
    pos = np.array(positives, dtype=float).reshape(-1, 3)
    return LabelledRecording(key, Path(key), 10.0, pos, np.zeros((0, 3)), np.zeros((0, 3)))


def test_low_probabilities_get_low_thresholds_and_a_median():
    seg = 0.16
    n = int(10 / seg)
    predictions = []
    rng = np.random.default_rng(0)
    for k in range(4):
        onset = 1.0 + k
        probs = np.full((n, 2), 0.02)
        a, b = round(onset / seg), round((onset + 2.0) / seg)
        probs[a:b, 0] = 0.18
        probs[a + 3, 0] = 0.01  # a dip a median filter closes
        probs[:, 1] = rng.uniform(0.0, 0.03, n)
        predictions.append((rec(f"r{k}", [(a * seg, b * seg, 0)]), probs))
    params, report = calibrate(predictions, ["dog", "cat"], seg)
    assert report["event_f1"] == pytest.approx(1.0)
    assert params.on_threshold("dog") < 0.18 and params.median_for("dog") > 0
    # at detect's defaults (0.5, no median) this model proposes nothing
    from panns_core.training.calibration import _events

    assert len(_events(predictions, ["dog", "cat"], seg, params)) == 4
    from panns_core.detection.postprocess import PostprocessParams

    assert len(_events(predictions, ["dog", "cat"], seg, PostprocessParams())) == 0
    assert PostprocessParams.from_dict(params.to_dict()) == params


def test_nothing_to_calibrate_on():
    params, report = calibrate([], ["dog"], 0.16)
    assert params is None and "skipped" in report


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from panns_core.training.synthetic import make_synthetic_dataset, write_project

    root = tmp_path_factory.mktemp("calibration")
    data = make_synthetic_dataset(root / "audio", n_recordings=4, duration=4.0, seed=4)
    return write_project(data, root / "p.panns")


@pytest.mark.slow
def test_calibrated_params_are_stored_and_loaded_with_the_model(project, tmp_path):
    from panns_core.detection.postprocess import PostprocessParams
    from panns_core.hub.checkpoints import load_checkpoint
    from panns_core.hub.installed import list_models
    from panns_core.hub.resolve import load_detector
    from panns_core.training.run import fine_tune

    cfg = TrainConfig(strategy="head", epochs=2, batch_size=4, clip_seconds=1.0,
                      samples_per_epoch=8)  # fmt: skip
    events = []
    outcome = fine_tune(project, "arch:TinySED", cfg, run_dir=tmp_path / "run",
                        name="calibrated-head", progress=events.append)  # fmt: skip
    result = outcome.result
    assert result.postprocess is not None
    params = PostprocessParams.from_dict(result.postprocess)
    stored = load_checkpoint(result.checkpoint).metadata
    assert (stored.get("postprocess") or stored["extra"]["postprocess"]) == result.postprocess
    assert load_detector("calibrated-head").postprocess == params
    record = {m.name: m for m in list_models()}["calibrated-head"]
    assert record.metrics["postprocess"] == result.postprocess
    assert "segment_map" in record.metrics["val_after"]
    assert "segment_map" in record.metrics["val_before"]
    assert "calibrated_event_f1" in result.metrics_after
    kinds = [e["event"] for e in events]
    assert kinds.index("calibration") > max(i for i, k in enumerate(kinds) if k == "epoch")
