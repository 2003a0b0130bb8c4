"""The best epoch is chosen by the threshold-free validation measure (segment mAP), and
patience never ends a run before half of it: thresholded event F1 is 0 until the
probabilities cross the threshold, so it cannot see a model trained from scratch learn."""

from __future__ import annotations

import numpy as np
import pytest

from panns_core.training import tiny  # noqa: F401  (registers TinySED)
from panns_core.training.config import TrainConfig
from panns_core.training.validation import (
    SELECTION_METRIC,
    Validator,
    average_precision,
    patience_ran_out,
    segment_map,
)


def test_average_precision_by_hand():
    # ranking: pos, neg, pos, neg -> precisions at the hits 1/1 and 2/3
    assert average_precision(np.array([0.9, 0.8, 0.7, 0.1]), np.array([1, 0, 1, 0])) == (
        pytest.approx((1 + 2 / 3) / 2)
    )
    assert average_precision(np.array([0.2, 0.1]), np.array([0, 0])) is None
    assert average_precision(np.array([0.1, 0.9]), np.array([0, 1])) == 1.0


def test_segment_map_skips_unweighted_segments_and_classes_without_positives():
    probs = np.array([[0.9, 0.5], [0.8, 0.5], [0.1, 0.5]])
    targets = np.array([[0, 0], [1, 0], [1, 0]])
    weights = np.array([[0, 1], [1, 1], [1, 1]])  # the first segment has no loss for class 0
    # class 0 over segments 1, 2: both positive -> AP 1; class 1 has no positive
    assert segment_map(probs, targets, weights) == 1.0
    assert segment_map(probs, np.zeros_like(targets), weights) == 0.0


def test_patience_waits_for_half_of_the_run():
    assert not patience_ran_out(10, 5, 0.3)
    assert patience_ran_out(5, 5, 0.5)
    assert not patience_ran_out(4, 5, 0.9)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from panns_core.training.synthetic import make_synthetic_dataset, write_project

    root = tmp_path_factory.mktemp("selection")
    data = make_synthetic_dataset(root / "audio", n_recordings=4, duration=4.0, seed=2)
    return write_project(data, root / "p.panns")


def scripted(maps):
    """Validation results in order: before training, then one per epoch; event F1 0."""
    calls = iter(maps)

    def validate(self):
        value = next(calls)
        return {"event_f1": 0.0, "segment_f1": 0.0, "loss": 1.0, "segment_map": value,
                "class_event_f1": {}}  # fmt: skip

    return validate


def test_selection_picks_the_best_map_epoch_when_event_f1_is_zero(project, tmp_path,
                                                                  monkeypatch):  # fmt: skip
    from panns_core.training.run import fine_tune

    maps = [0.05, 0.10, 0.30, 0.25, 0.45, 0.40, 0.20]  # epoch 0 = before training
    monkeypatch.setattr(Validator, "validate", scripted(maps))
    monkeypatch.setattr(Validator, "predictions", lambda self: [])
    cfg = TrainConfig(strategy="head", epochs=6, batch_size=4, clip_seconds=1.0,
                      patience=10, samples_per_epoch=4)  # fmt: skip
    events = []
    result = fine_tune(project, "arch:TinySED", cfg, run_dir=tmp_path / "run", register=False,
                       progress=events.append).result  # fmt: skip
    assert result.status == "completed" and result.epochs_run == 6
    assert SELECTION_METRIC == "segment_map"
    assert result.best_epoch == 4  # map 0.45, while event F1 was 0 at every epoch
    assert result.metrics_after["segment_map"] == 0.45
    last = [e for e in events if e["event"] == "epoch"][-1]
    assert last["best_score"] == 0.45 and last["best_f1"] == 0.0


def test_patience_counts_validations_after_half_of_the_epochs(project, tmp_path,
                                                              monkeypatch):  # fmt: skip
    from panns_core.training.run import fine_tune

    # improves at epoch 1 only: with patience 1, a rule without the half-run floor would
    # stop after epoch 2; this one runs to epoch 5 of 10 (half) and stops there.
    maps = [0.0, 0.5] + [0.1] * 10
    monkeypatch.setattr(Validator, "validate", scripted(maps))
    monkeypatch.setattr(Validator, "predictions", lambda self: [])
    cfg = TrainConfig(strategy="head", epochs=10, batch_size=4, clip_seconds=1.0,
                      patience=1, samples_per_epoch=4)  # fmt: skip
    result = fine_tune(project, "arch:TinySED", cfg, run_dir=tmp_path / "run",
                       register=False).result  # fmt: skip
    assert result.status == "early_stopped"
    assert result.epochs_run == 5 and result.best_epoch == 1
