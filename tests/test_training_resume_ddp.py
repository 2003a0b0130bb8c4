"""Resume equals an uninterrupted run; two gloo processes (torchrun) equal one process
accumulating the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
import torch

from panns_core.training import tiny  # noqa: F401  (registers TinySED)
from panns_core.training.config import TrainConfig
from panns_core.training.run import fine_tune
from panns_core.training.synthetic import make_synthetic_dataset, write_project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    data = make_synthetic_dataset(root / "audio", n_recordings=4, duration=5.0, seed=11)
    return write_project(data, root / "p.panns")


def config(**kw):
    # Every augmentation on, so the test covers their seeding too.
    base = dict(
        strategy="full", epochs=2, batch_size=8, clip_seconds=1.5, mixup_prob=1.0,
        spec_augment=True, gain_db=6.0, val_fraction=0.25, patience=10, seed=3,
        samples_per_epoch=32,
    )  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)


def last_weights(run_dir):
    return torch.load(run_dir / "state.pt", weights_only=True)["model"]


def assert_same(a, b, keys, atol):
    for key in keys:
        assert torch.allclose(a[key], b[key], atol=atol, rtol=0), key


@pytest.mark.slow
def test_resume_equals_uninterrupted(project, tmp_path):
    straight = fine_tune(project, "arch:TinySED", config(), run_dir=tmp_path / "a",
                         register=False).result  # fmt: skip
    assert straight.status == "completed"

    cancel = threading.Event()

    def stop_in_epoch_2(event):
        if event["event"] == "step" and event["epoch"] == 2 and event["step"] == 2:
            cancel.set()

    first = fine_tune(project, "arch:TinySED", config(), run_dir=tmp_path / "b",
                      register=False, progress=stop_in_epoch_2, cancel=cancel).result  # fmt: skip
    assert first.status == "cancelled" and first.epochs_run == 1
    state = torch.load(tmp_path / "b" / "state.pt", weights_only=True)
    assert (state["epoch"], state["step"]) == (2, 2)
    resumed = fine_tune(project, "arch:TinySED", config(), run_dir=tmp_path / "b",
                        resume=True, register=False).result  # fmt: skip
    assert resumed.status == "completed" and resumed.epochs_run == 2

    a, b = last_weights(tmp_path / "a"), last_weights(tmp_path / "b")
    assert_same(a, b, a.keys(), atol=1e-6)
    assert [h["train_loss"] for h in straight.history] == pytest.approx(
        [h["train_loss"] for h in resumed.history], abs=1e-6
    )
    assert straight.metrics_after == resumed.metrics_after
    # the resumed part really trained: two more steps moved the weights
    assert not torch.allclose(
        a["conv_block1.conv1.weight"], state["model"]["conv_block1.conv1.weight"]
    )


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(project, tmp_path):
    common = ["--project", str(project), "--base", "arch:TinySED", "--strategy", "full",
              "--epochs", "2", "--batch-size", "8", "--clip-seconds", "1.5", "--seed", "5",
              "--mixup", "1.0", "--val-fraction", "0.25", "--no-register", "--json"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run(
        [sys.executable, "-m", "panns_core", "train", *common, "--micro-batch", "4",
         "--run-dir", str(tmp_path / "one")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "panns_core", "train", *common, "--run-dir", str(tmp_path / "two")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    assert '"world_size": 2' in two.stdout and '"world_size": 1' in one.stdout

    a, b = last_weights(tmp_path / "one"), last_weights(tmp_path / "two")
    from panns_core.models import build_model

    params = [name for name, _ in build_model("TinySED", 5).named_parameters()]
    assert_same(a, b, params, atol=1e-5)
    before = torch.load(tmp_path / "one" / "best.pth", weights_only=True)["model"]
    assert before.keys() == a.keys()
