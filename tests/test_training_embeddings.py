"""Head-only fine-tuning on per-recording embeddings: the rows equal one pass over the
whole recording, the disk cache is used, and a head-only run resumes exactly."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import soundfile as sf
import torch

from panns_core.models import build_model
from panns_core.training.config import TrainConfig
from panns_core.training.embeddings import (
    EmbeddingRequest,
    recording_embeddings,
    total_segments,
    trunk_fingerprint,
)
from panns_core.training.run import fine_tune
from panns_core.training.synthetic import make_synthetic_dataset, write_project


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model("TinySED", classes_num=3).eval()


@pytest.fixture
def recording(tmp_path, model):
    rate = model.feature_config.sample_rate
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal(round(7.3 * rate))).astype(np.float32)
    x[rate : 2 * rate] += np.sin(2 * np.pi * 1000 * np.arange(rate) / rate).astype(np.float32)
    path = tmp_path / "rec.wav"
    sf.write(path, x, rate, subtype="FLOAT")
    return path, x


def test_rows_equal_one_pass_over_the_whole_recording(model, recording, tmp_path):
    path, x = recording
    with torch.no_grad():
        whole = model(torch.from_numpy(x)[None])["segment_embedding"][0].numpy()
    n = total_segments(model, len(x))
    assert whole.shape[0] == n
    # short bodies and context force several windows, batched by length
    ranges = ((0, 5), (9, n))
    (rows,) = recording_embeddings(model, [EmbeddingRequest(path, ranges)], cache=False,
                                   body_seconds=0.5, context_seconds=1.0)  # fmt: skip
    for a, b in ranges:
        np.testing.assert_allclose(rows[a:b], whole[a:b], atol=1e-5)
    assert not rows[5:9].any()  # not asked for, not computed


def test_cache_serves_computed_rows_and_fills_missing_ones(model, recording, tmp_path):
    path, _ = recording
    key = trunk_fingerprint(model)
    n = total_segments(model, round(7.3 * model.feature_config.sample_rate))
    (first,) = recording_embeddings(model, [EmbeddingRequest(path, ((0, 6),))],
                                    cache=tmp_path / "c", fingerprint=key)  # fmt: skip
    assert len(list((tmp_path / "c").glob("*.npz"))) == 1
    # a different network under the same key: cached rows come back unchanged, missing
    # rows are computed by the network given
    torch.manual_seed(5)
    other = build_model("TinySED", classes_num=3).eval()
    assert trunk_fingerprint(other) != key
    (second,) = recording_embeddings(other, [EmbeddingRequest(path, ((0, n),))],
                                     cache=tmp_path / "c", fingerprint=key)  # fmt: skip
    np.testing.assert_array_equal(second[:6], first[:6])
    (fresh,) = recording_embeddings(other, [EmbeddingRequest(path, ((0, n),))], cache=False)
    np.testing.assert_allclose(second[6:], fresh[6:], atol=1e-5)
    assert not np.allclose(second[:6], fresh[:6], atol=1e-3)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("headresume")
    data = make_synthetic_dataset(root / "audio", n_recordings=4, duration=5.0, seed=11)
    return write_project(data, root / "p.panns")


@pytest.mark.slow
def test_head_only_resume_equals_uninterrupted(project, tmp_path):
    def config():
        return TrainConfig(strategy="head", epochs=3, batch_size=4, clip_seconds=1.5,
                           patience=10, seed=3, samples_per_epoch=16)  # fmt: skip

    straight = fine_tune(project, "arch:TinySED", config(), run_dir=tmp_path / "a",
                         register=False).result  # fmt: skip
    cancel = threading.Event()

    def stop(event):
        if event["event"] == "step" and event["epoch"] == 2 and event["step"] == 2:
            cancel.set()

    first = fine_tune(project, "arch:TinySED", config(), run_dir=tmp_path / "b",
                      register=False, progress=stop, cancel=cancel).result  # fmt: skip
    assert first.status == "cancelled"
    state = torch.load(tmp_path / "b" / "state.pt", weights_only=True)
    # the state holds the head only, with the trunk's fingerprint
    assert state["head_only"] and set(state["model"]) == {"fc_audioset.weight", "fc_audioset.bias"}
    resumed = fine_tune(project, "arch:TinySED", config(), run_dir=tmp_path / "b",
                        resume=True, register=False).result  # fmt: skip
    assert resumed.status == "completed" and resumed.epochs_run == 3
    assert [h["train_loss"] for h in straight.history] == pytest.approx(
        [h["train_loss"] for h in resumed.history], abs=1e-6
    )
    assert straight.metrics_after == resumed.metrics_after
    a = torch.load(straight.checkpoint, weights_only=True)["model"]
    b = torch.load(resumed.checkpoint, weights_only=True)["model"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
