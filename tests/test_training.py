"""Training engine pieces: targets, split, clips, sampler, label space, schedule, project data,
and a short head-only run end to end (files, JSON-lines protocol, reloadable result)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from panns_core.errors import TrainingError
from panns_core.events import make_events
from panns_core.training import tiny  # noqa: F401  (registers TinySED)
from panns_core.training.config import TrainConfig
from panns_core.training.data import (
    BalancedSampler,
    LabelledRecording,
    clip_targets,
    labelled_recordings,
    make_clips,
    segment_targets,
    split_by_recording,
)
from panns_core.training.heads import adapt_head, prior_logits
from panns_core.training.steps import lr_factor


def rec(positives=(), negatives=(), unknown=(), duration=10.0, key="a"):
    def arr(rows):
        return np.array(rows, dtype=float).reshape(-1, 3)

    return LabelledRecording(key, Path(key), duration, arr(positives), arr(negatives), arr(unknown))


# ------------------------------------------------------------------------ targets


def test_segment_targets_positive_graze_and_implicit_negative():
    # segments of 0.5 s from 0: [0, .5), [.5, 1), [1, 1.5), [1.5, 2)
    r = rec(positives=[(0.6, 1.6, 0)])
    t, w = segment_targets(r, 0.0, 4, 0.5, n_classes=2)
    assert t[:, 0].tolist() == [0, 1, 1, 0]  # [.5,1) covered .4 >= .25; [1,1.5) fully
    assert w[:, 0].tolist() == [1, 1, 1, 0]  # [1.5,2) covered only 0.1: no loss either way
    assert t[:, 1].tolist() == [0, 0, 0, 0] and w[:, 1].tolist() == [1, 1, 1, 1]


def test_short_event_counts_when_half_of_it_is_in_a_segment():
    r = rec(positives=[(0.9, 1.1, 0)])  # 0.2 s event: needs 0.1 s overlap
    t, w = segment_targets(r, 0.0, 4, 0.5, n_classes=1)
    assert t[:, 0].tolist() == [0, 1, 1, 0]
    assert w[:, 0].tolist() == [1, 1, 1, 1]


def test_rejected_are_weighted_negatives_and_proposed_are_unknown():
    r = rec(negatives=[(0.0, 0.5, 1)], unknown=[(1.2, 1.4, 0)])
    t, w = segment_targets(r, 0.0, 4, 0.5, n_classes=2, negative_weight=3.0)
    assert t.sum() == 0
    assert w[:, 1].tolist() == [3, 1, 1, 1]
    assert w[:, 0].tolist() == [1, 1, 0, 1]


def test_positive_wins_over_rejected_in_the_same_span():
    r = rec(positives=[(0.0, 1.0, 0)], negatives=[(0.0, 1.0, 0)])
    t, w = segment_targets(r, 0.0, 2, 0.5, n_classes=1)
    assert t[:, 0].tolist() == [1, 1] and w[:, 0].tolist() == [1, 1]


def test_window_offset_and_clip_targets():
    r = rec(positives=[(5.2, 5.8, 1)], unknown=[(9.0, 9.5, 0)])
    t, w = segment_targets(r, 5.0, 4, 0.5, n_classes=2)
    assert t[:, 1].tolist() == [1, 1, 0, 0]
    ct, cw = clip_targets(t, w)
    assert ct.tolist() == [0, 1] and cw.tolist() == [1, 1]
    t2, w2 = segment_targets(r, 8.0, 4, 0.5, n_classes=2)
    ct2, cw2 = clip_targets(t2, w2)
    assert ct2.tolist() == [0, 0] and cw2.tolist() == [0, 1]  # class 0 unknown there


# ----------------------------------------------------------------- data from events


def events_frame():
    rows = [
        ("a.wav", 1.0, 2.0, "dog", "accepted"),
        ("a.wav", 3.0, 4.0, "cat", "edited"),
        ("a.wav", 5.0, 6.0, "dog", "rejected"),
        ("a.wav", 7.0, 8.0, "cat", "proposed"),
        ("b.wav", 1.0, 2.0, "cat", "added"),
        ("c.wav", 1.0, 2.0, "dog", "proposed"),  # never reviewed: not used
        ("b.wav", 4.0, 5.0, "owl", "added"),  # not in the label space
    ]
    frame = pd.DataFrame(rows, columns=["recording", "onset", "offset", "label", "status"])
    return make_events(frame)


def test_labelled_recordings_by_status():
    table = {k: (k, 10.0) for k in ("a.wav", "b.wav", "c.wav")}
    recs = labelled_recordings(events_frame(), table, ["dog", "cat"])
    assert [r.key for r in recs] == ["a.wav", "b.wav"]
    a = recs[0]
    assert a.positives.tolist() == [[1, 2, 0], [3, 4, 1]]
    assert a.negatives.tolist() == [[5, 6, 0]]
    assert a.unknown.tolist() == [[7, 8, 1]]
    assert recs[1].positives.tolist() == [[1, 2, 1]]
    with pytest.raises(TrainingError, match="unknown"):
        labelled_recordings(events_frame(), {"a.wav": ("a.wav", 10.0)}, ["dog", "cat"])


def test_split_is_by_recording_and_seeded():
    recs = [rec(positives=[(1, 2, 0)], key=f"r{i}") for i in range(8)]
    train, val = split_by_recording(recs, 0.25, seed=3)
    assert len(val) == 2 and not set(train) & set(val) and sorted(train + val) == list(range(8))
    assert split_by_recording(recs, 0.25, seed=3) == (train, val)
    assert split_by_recording(recs, 0.25, seed=4) != (train, val)
    assert split_by_recording(recs, 0.0, seed=3) == (list(range(8)), [])
    with pytest.raises(TrainingError, match="two recordings"):
        split_by_recording(recs[:1], 0.25, seed=0)


def test_clips_around_events_and_background():
    recs = [rec(positives=[(1.0, 1.5, 0), (8.0, 9.0, 1)], key="a", duration=20.0)]
    clips = make_clips(recs, [0], clip_seconds=4.0, background_ratio=1.0, seed=0)
    events = [c for c in clips if c.anchor >= 0]
    background = [c for c in clips if c.anchor < 0]
    assert [(c.start, c.anchor) for c in events] == [(0.0, 0), (6.5, 1)]
    assert len(background) == 2
    for c in background:
        for onset, offset in ((1.0, 1.5), (8.0, 9.0)):
            assert c.start >= offset or c.start + 4.0 <= onset
        assert c.start + 4.0 <= 20.0


def test_balanced_sampler_is_deterministic_and_balanced():
    from panns_core.training.data import Clip

    clips = [Clip(0, 0.0, 0)] * 90 + [Clip(0, 0.0, 1)] * 10 + [Clip(0, 0.0, -1)] * 20
    sampler = BalancedSampler(clips, seed=1, samples_per_epoch=3000)
    first = sampler.epoch(1)
    assert np.array_equal(first, sampler.epoch(1))
    assert not np.array_equal(first, sampler.epoch(2))
    anchors = np.array([clips[i].anchor for i in first])
    shares = [np.mean(anchors == a) for a in (0, 1, -1)]
    assert all(abs(s - 1 / 3) < 0.05 for s in shares)


# ------------------------------------------------------------------ label space


def test_adapt_head_copies_known_rows_and_sets_prior_bias():
    from panns_core.models import build_model

    torch.manual_seed(0)
    model = build_model("TinySED", classes_num=4)
    old_w = model.fc_audioset.weight.detach().clone()
    old_b = model.fc_audioset.bias.detach().clone() + torch.arange(4.0)
    with torch.no_grad():
        model.fc_audioset.bias.copy_(old_b)
    base = ["Speech", "Dog", "Cat", "Bird"]
    source = adapt_head(model, base, ["cat", "Whistle", "Dog"], np.array([0.1, 0.02, 0.3]))
    assert source == {"cat": "Cat", "Whistle": None, "Dog": "Dog"}
    w, b = model.fc_audioset.weight, model.fc_audioset.bias
    assert w.shape == (3, model.embedding_dim) and model.classes_num == 3
    assert torch.equal(w[0], old_w[2]) and torch.equal(w[2], old_w[1])
    assert b[0] == old_b[2] and b[2] == old_b[1]
    assert b[1].item() == pytest.approx(float(prior_logits(np.array([0.02]))[0]))
    assert b[1].item() == pytest.approx(np.log(0.02 / 0.98), rel=1e-5)


def test_lr_schedule():
    total, warm = 100, 10
    lrs = [lr_factor(s, total, warm) for s in range(total)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(lrs[9:]))
    assert lrs[-1] < 0.01


def test_fit_state_resumes_from_its_saved_fields():
    from panns_core.training.state import FitState

    cfg = TrainConfig(epochs=5)
    fresh = FitState.begin(cfg, None)
    assert (fresh.epoch, fresh.step, fresh.planned_epochs, fresh.resumed) == (1, 0, 5, False)
    fresh.epoch, fresh.step, fresh.epoch_losses = 2, 3, [0.5, 0.4, 0.3]
    fresh.history.append({"epoch": 1, "train_loss": 0.6, "metrics": {"event_f1": 0.2}})
    fresh.best_score, fresh.best_epoch, fresh.bad_epochs = 0.2, 1, 0
    saved = {"epoch": fresh.epoch, "step": fresh.step, "elapsed": 12.5, "best_head": None,
             **fresh.progress_fields()}  # fmt: skip
    assert set(fresh.progress_fields()) == {
        "history", "best_f1", "best_epoch", "bad_epochs", "planned_epochs",
        "metrics_before", "epoch_losses",
    }  # fmt: skip
    back = FitState.begin(cfg, saved)
    assert back.resumed and (back.epoch, back.step) == (2, 3)
    assert back.epoch_losses == [0.5, 0.4, 0.3] and back.history == fresh.history
    assert (back.best_score, back.best_epoch, back.global_step(10)) == (0.2, 1, 13)
    assert back.best_metrics() == {"event_f1": 0.2} and back.elapsed() >= 12.5
    # a time budget keeps the planned epochs; without one the configured ones count
    saved["planned_epochs"] = 3
    assert FitState.begin(TrainConfig(epochs=5, time_budget=60), saved).planned_epochs == 3
    assert FitState.begin(cfg, saved).planned_epochs == 5
    back.next_epoch()
    assert (back.epoch, back.step, back.epoch_losses) == (3, 0, [])


def test_selection_rule():
    from panns_core.training.validation import improves, selection_score

    assert selection_score(None) is None
    assert selection_score({"segment_map": 0.4, "event_f1": 0.0}) == 0.4
    assert improves(None, 0.9) and improves(0.5, -1.0) and improves(0.0, -1.0)
    assert not improves(0.5, 0.5) and not improves(0.5 + 1e-7, 0.5)


def test_config_checks():
    with pytest.raises(TrainingError, match="strategy"):
        TrainConfig(strategy="everything")
    with pytest.raises(TrainingError, match="divide"):
        TrainConfig(batch_size=16, micro_batch=5)
    cfg = TrainConfig(strategy="partial", epochs=3)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


# ------------------------------------------------------------------ a short real run


@pytest.fixture(scope="module")
def small_project(tmp_path_factory):
    from panns_core.training.synthetic import make_synthetic_dataset, write_project

    root = tmp_path_factory.mktemp("synthetic")
    data = make_synthetic_dataset(root / "audio", n_recordings=4, duration=6.0, seed=5)
    return data, write_project(data, root / "project.panns")


def test_from_project_uses_vocabulary_and_paths(small_project):
    from panns_core.annotations.store import ProjectStore
    from panns_core.training.data import from_project

    data, project = small_project
    store = ProjectStore(project, create=False)
    try:
        recs, labels = from_project(store)
    finally:
        store.close()
    assert labels == data.labels
    assert len(recs) == 4
    assert sum(len(r.positives) for r in recs) == len(data.events)
    assert all(r.path.is_file() and r.duration == pytest.approx(6.0) for r in recs)


@pytest.mark.slow
def test_head_only_run_end_to_end(small_project, tmp_path):
    from panns_core.hub.checkpoints import load_checkpoint
    from panns_core.hub.installed import list_models
    from panns_core.training.progress import read_events
    from panns_core.training.run import fine_tune

    data, project = small_project
    events = []
    cfg = TrainConfig(strategy="head", epochs=3, batch_size=8, clip_seconds=2.0, patience=10)
    outcome = fine_tune(project, "arch:TinySED", cfg, run_dir=tmp_path / "run",
                        progress=events.append, name="synthetic-head")  # fmt: skip
    result = outcome.result
    assert result.status == "completed" and result.epochs_run == 3
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[1] == "validation" and kinds[-1] == "done"
    assert kinds.count("epoch") == 3 and "step" in kinds
    for e in events:
        json.dumps(e, allow_nan=False, default=str)
    assert [e["event"] for e in read_events(tmp_path / "run" / "events.jsonl")] == kinds
    # The trunk is frozen: only the head moved.
    loaded = load_checkpoint(result.checkpoint)
    assert loaded.architecture == "TinySED" and loaded.labels == data.labels
    assert loaded.metadata["metrics"]["before"] == result.metrics_before
    start = torch.load(tmp_path / "run" / "state.pt", weights_only=True)
    assert start["epoch"] == 4 and start["config"]["strategy"] == "head"
    models = {m.name: m for m in list_models()}
    assert outcome.model_name == "synthetic-head"
    record = models["synthetic-head"]
    assert record.origin == "fine-tune" and list(record.labels) == data.labels
    assert record.metrics["data"]["train_events"]
    assert "val_before" in record.metrics and "val_after" in record.metrics
