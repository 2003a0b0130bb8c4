"""Weak labels (clip tags, no times) train through the clip loss alongside strong events:
a project holds a tag as an event spanning the recording with source "clip-tag"."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from panns_core.events import make_events
from panns_core.training import tiny  # noqa: F401  (registers TinySED)
from panns_core.training.config import TrainConfig
from panns_core.training.data import (
    CLIP_TAG_SOURCE,
    clip_tag_events,
    data_summary,
    labelled_recordings,
    make_clips,
    segment_targets,
    split_by_recording,
)
from panns_core.training.steps import ClipGeometry, bce, targets_at

LABELS = ["dog", "cat"]


def recordings():
    strong = make_events([{"onset": 1.0, "offset": 2.0, "label": "dog"}], recording="s.wav")
    strong2 = make_events([{"onset": 3.0, "offset": 4.0, "label": "cat"}], recording="t.wav")
    tags = clip_tag_events({"w.wav": ["cat", "cat"]}, {"w.wav": 4.0})
    events = pd.concat([strong, strong2, tags], ignore_index=True)
    files = {k: (k, 4.0) for k in ("s.wav", "t.wav", "w.wav")}
    return labelled_recordings(events, files, LABELS)


def test_a_clip_tag_is_a_weak_class_of_its_recording():
    tags = clip_tag_events({"w.wav": ["cat"]}, {"w.wav": 4.0})
    assert tags.loc[0, "source"] == CLIP_TAG_SOURCE
    assert (tags.loc[0, "onset"], tags.loc[0, "offset"]) == (0.0, 4.0)
    recs = {r.key: r for r in recordings()}
    weak = recs["w.wav"]
    assert len(weak.positives) == 0 and weak.tags.tolist() == [1]
    assert weak.weak_classes().tolist() == [1]
    assert recs["s.wav"].weak_classes().tolist() == []
    # the segments of the tagged class carry no loss; the other class is negative
    t, w = segment_targets(weak, 0.0, 8, 0.5, 2)
    assert t.sum() == 0 and w[:, 1].sum() == 0 and w[:, 0].tolist() == [1.0] * 8
    assert weak.reference_events(LABELS).empty  # nothing to validate against


def test_the_clip_target_is_positive_when_the_clip_is_the_recording():
    weak = {r.key: r for r in recordings()}["w.wav"]
    whole = ClipGeometry(16000, 64000, 25, 0.16, 64000)
    _seg_t, seg_w, clip_t, clip_w = targets_at(weak, 0.0, whole, 2, 1.0)
    assert seg_w[:, 1].sum() == 0
    assert clip_t.tolist() == [0.0, 1.0] and clip_w.tolist() == [1.0, 1.0]
    part = ClipGeometry(16000, 32000, 12, 0.16, 32000)  # half the recording: unknown
    _, _, clip_t, clip_w = targets_at(weak, 0.0, part, 2, 1.0)
    assert clip_t[1] == 0.0 and clip_w[1] == 0.0 and clip_w[0] == 1.0


def test_weak_recordings_train_and_are_counted():
    recs = recordings()
    train, val = split_by_recording(recs, 0.5, 0)
    weak_index = next(i for i, r in enumerate(recs) if r.key == "w.wav")
    assert weak_index in train and weak_index not in val  # validation needs times
    clips = make_clips(recs, train, 4.0, 1.0, 0)
    tagged = [c for c in clips if c.recording == weak_index]
    assert tagged and all(c.anchor == 1 for c in tagged)  # a tag clip, no background
    summary = data_summary(recs, train, val, LABELS, clips)
    assert summary["weak_recordings"] == ["w.wav"] and summary["clip_tags"] == {"cat": 1}


def test_a_weak_recording_changes_the_clip_loss():
    weak = {r.key: r for r in recordings()}["w.wav"]
    untagged = dataclasses.replace(weak, tags=np.zeros(0, np.int64))
    geo = ClipGeometry(16000, 64000, 25, 0.16, 64000)
    logits = torch.full((1, 2), -3.0, requires_grad=True)
    grads = []
    for rec in (weak, untagged):
        _, _, clip_t, clip_w = targets_at(rec, 0.0, geo, 2, 1.0)
        logits.grad = None
        bce(logits, torch.from_numpy(clip_t)[None], torch.from_numpy(clip_w)[None], True).backward()
        grads.append(logits.grad.clone())
    # tagged: the cat logit is pushed up; untagged: pushed down (an implicit negative)
    assert grads[0][0, 1] < 0 < grads[1][0, 1]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from panns_core.training.synthetic import make_synthetic_dataset, write_project

    root = tmp_path_factory.mktemp("weak")
    data = make_synthetic_dataset(root / "audio", n_recordings=6, duration=3.0, seed=7)
    names = sorted(set(data.events["recording"]))
    weak_names = names[:2]
    strong = data.events[~data.events["recording"].isin(weak_names)]
    tags = clip_tag_events(
        {n: list(data.events.loc[data.events["recording"] == n, "label"]) for n in weak_names},
        {n: 3.0 for n in weak_names},
    )
    data.events = pd.concat([strong, tags], ignore_index=True)
    return data, weak_names, write_project(data, root / "p.panns")


@pytest.mark.slow
def test_a_project_with_weak_only_recordings_trains(project, tmp_path):
    from pathlib import Path

    from panns_core.training.run import fine_tune

    _data, weak_names, path = project
    cfg = TrainConfig(strategy="full", epochs=1, batch_size=4, samples_per_epoch=8,
                      val_fraction=0.25, clip_seconds=3.0)  # fmt: skip
    result = fine_tune(path, "arch:TinySED", cfg, run_dir=tmp_path / "run",
                       register=False).result  # fmt: skip
    assert result.status == "completed"
    weak = {Path(k).name for k in result.data["weak_recordings"]}
    assert weak == set(weak_names)
    assert sum(result.data["clip_tags"].values()) >= len(weak_names)
    assert not weak & {Path(k).name for k in result.data["val_recordings"]}
