"""``panns-sed train`` as the GUI will drive it: a separate process speaking JSON lines,
cancelled with SIGTERM (keeping a resumable checkpoint), then resumed to a registered model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from panns_core.cli import main
from panns_core.training.progress import EVENT_TYPES
from panns_core.training.synthetic import make_synthetic_dataset, write_project


@pytest.fixture
def project(tmp_path):
    data = make_synthetic_dataset(tmp_path / "audio", n_recordings=4, duration=5.0, seed=21)
    return write_project(data, tmp_path / "cli.panns")


@pytest.mark.slow
def test_json_progress_cancel_and_resume(project, capsys):
    args = ["train", "--project", str(project), "--base", "arch:TinySED", "--strategy", "full",
            "--epochs", "40", "--batch-size", "4", "--clip-seconds", "1.5", "--json"]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "panns_core", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    events = []
    for line in proc.stdout:
        event = json.loads(line)
        events.append(event)
        if event["event"] == "step" and event["epoch"] == 2:
            proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 130, proc.stderr.read()[-2000:]
    kinds = [e["event"] for e in events]
    assert set(kinds) <= set(EVENT_TYPES)
    assert kinds[:2] == ["start", "validation"] and kinds[-1] == "done"
    start, done = events[0], events[-1]
    assert start["labels"] and start["data"]["train_events"] and start["total_steps"] > 0
    assert done["status"] == "cancelled" and done["result"]["model"] is None
    assert os.path.isfile(done["result"]["state"])
    epoch = next(e for e in events if e["event"] == "epoch")
    assert os.path.isfile(epoch["checkpoint"]) and "event_f1" in epoch["metrics"]

    # Resume the latest run of the project, in-process, for two more epochs only.
    code = main([*args[:-5], "--epochs", "3", "--batch-size", "4", "--clip-seconds", "1.5",
                 "--resume", "--json", "--name", "cli-model"])  # fmt: skip
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert lines[0]["event"] == "start" and lines[0]["resumed"] is True
    assert lines[0]["epoch"] == 2
    assert lines[-1]["event"] == "done" and lines[-1]["status"] == "completed"
    assert lines[-1]["result"]["model"] == "cli-model"
    assert main(["models", "list"]) == 0
    assert "cli-model" in capsys.readouterr().out


def test_errors_are_reported_as_json(tmp_path, capsys):
    from panns_core.annotations.store import ProjectStore

    empty = tmp_path / "empty.panns"
    ProjectStore(empty).close()
    code = main(["train", "--project", str(empty), "--base", "arch:TinySED", "--json"])
    assert code == 1
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert out[-1]["event"] == "error" and "label" in out[-1]["message"]
    assert main(["train", "--project", str(tmp_path / "none.panns"), "--base", "arch:TinySED"]) == 1
    assert main(["train", "--project", str(empty), "--resume"]) == 1


def test_int8_precision_is_for_head_only_runs(tmp_path, capsys) -> None:
    from panns_core.annotations.store import ProjectStore
    from panns_core.cli import main

    project = tmp_path / "p.panns"
    ProjectStore(project).close()
    code = main(["train", "--project", str(project), "--base", "arch:TinySED",
                 "--strategy", "partial", "--precision", "int8"])
    assert code == 1
    assert "head-only" in capsys.readouterr().err
