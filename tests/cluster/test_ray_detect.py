"""Archive detection on a real local Ray cluster (2 worker processes on this machine).

One cluster for the module. The archive: 20 real WAV/FLAC files of mixed lengths and
rates (long ones cut into several pieces) and one damaged FLAC; the model: TinySED with
deterministic weights (a registered architecture, so the worker processes load it from
its file). The reference is single-process detection into a results folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ray = pytest.importorskip("ray", reason="the cluster extra (ray) is not installed")

from detect_helpers import write_scene  # noqa: E402

from panns_core.cli import main  # noqa: E402

pytestmark = pytest.mark.slow

LABELS = ["Speech", "Dog", "Bark", "Music", "Chink, clink", "Vehicle", "Bird"]
# (seconds, rate): short ones, and some longer than one 25.6-s window / 30-s piece
LENGTHS = [(1.5, 16000), (2.0, 32000), (3.3, 44100), (4.0, 16000), (5.1, 16000),
           (6.4, 32000), (7.0, 16000), (8.8, 22050), (9.6, 16000), (10.0, 16000),
           (12.5, 32000), (15.0, 16000), (20.0, 16000), (24.0, 44100), (33.0, 16000),
           (47.5, 16000), (64.0, 32000), (75.3, 16000), (96.0, 16000), (131.0, 44100)]
PIECE = ["--piece-seconds", "30"]  # one 25.6-s window a piece: long files in 2-6 pieces


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Ray with 2 CPUs (2 workers), small object store, no dashboard; its worker
    processes keep their caches in a private home."""
    home = tmp_path_factory.mktemp("ray-home")
    old = os.environ.get("PANNS_ANNOTATOR_HOME")
    os.environ["PANNS_ANNOTATOR_HOME"] = str(home)
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 * 1024**2,
             log_to_driver=False)  # fmt: skip
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        if old is None:
            os.environ.pop("PANNS_ANNOTATOR_HOME", None)
        else:
            os.environ["PANNS_ANNOTATOR_HOME"] = old


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from detect_helpers import deterministic_model

    from panns_core.hub.checkpoints import save_checkpoint
    from panns_core.models import architecture_spec

    model = deterministic_model("TinySED", len(LABELS))
    path = tmp_path_factory.mktemp("ckpt") / "tiny_sed.pth"
    save_checkpoint(path, model, architecture="TinySED",
                    feature_config=architecture_spec("TinySED").feature_config, labels=LABELS)
    return path


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    for i, (seconds, rate) in enumerate(LENGTHS):
        folder = ("site_a", "site_b/night", "")[i % 3]
        suffix = ".flac" if i % 4 == 1 else ".wav"
        write_scene(root / folder / f"rec{i:02d}{suffix}", seconds, rate, seed=i)
    return root


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    """A FLAC whose header is fine and whose audio breaks at ~16 s (decoder loses sync)."""
    path = write_scene(tmp_path_factory.mktemp("damaged") / "damaged.flac", 60.0, 16000, seed=99)
    data = bytearray(path.read_bytes())
    data[len(data) // 3 : len(data) // 3 + 20000] = bytes(20000)
    path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="module")
def reference(checkpoint, archive, tmp_path_factory):
    """Single-process detection of the archive into a results folder, and its threshold."""
    from panns_core.detection.inference import detect
    from panns_core.hub.resolve import load_detector

    scores = detect(next(archive.rglob("rec17.*")), load_detector(checkpoint))
    threshold = f"{float(np.quantile(scores.probabilities, 0.8)):.4f}"
    out = tmp_path_factory.mktemp("single") / "results"
    assert main(["detect", str(archive), "--model", str(checkpoint), "--threshold", threshold,
                 "--no-cache", "--quiet", "--out", f"{out}/"]) == 0  # fmt: skip
    return out, threshold


def manifest(results: Path) -> list[dict]:
    return [json.loads(line) for line in (results / "manifest.jsonl").read_text().splitlines()
            if line.strip()]  # fmt: skip


def done_lines(results: Path, run: str | None = None) -> list[dict]:
    return [r for r in manifest(results) if r["kind"] == "done" and run in (None, r["run"])]


def assert_same_results(results: Path, single: Path) -> None:
    """Every file of the single-process folder, the same here: scores to 1e-6, events equal."""
    from panns_core.annotations.formats import read_annotations

    names = sorted(p.name for p in single.glob("*.tsv"))
    assert len(names) == len(LENGTHS)
    assert sorted(p.name for p in results.glob("*.tsv")) == names
    assert sorted(p.name for p in (results / "scores").glob("*.tsv")) == names
    for name in names:
        got = pd.read_csv(results / "scores" / name, sep="\t")
        want = pd.read_csv(single / "scores" / name, sep="\t")
        assert list(got.columns) == list(want.columns) == ["onset", "offset", *LABELS]
        assert got.shape == want.shape
        np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=0, atol=1e-6)
        got_events = read_annotations(results / name, "dcase")
        want_events = read_annotations(single / name, "dcase")
        assert list(got_events["label"]) == list(want_events["label"])
        assert list(got_events["recording"]) == list(want_events["recording"])
        np.testing.assert_allclose(got_events[["onset", "offset"]].to_numpy(float),
                                   want_events[["onset", "offset"]].to_numpy(float), atol=1e-6)


def test_ray_gives_the_single_process_results_and_resumes(cluster, checkpoint, archive, damaged,
                                                          reference, tmp_path, capsys):
    single, threshold = reference
    out = tmp_path / "results"
    args = ["detect", str(archive), str(damaged), "--model", str(checkpoint), "--threshold",
            threshold, "--out", f"{out}/", "--ray", *PIECE]  # fmt: skip
    assert main(args) == 1  # the damaged file failed; the others are done
    err = capsys.readouterr().err
    assert_same_results(out, single)
    assert "20 recording(s)" in err and "2 worker(s)" in err and "1 failed" in err
    assert "damaged.flac" in err and "damaged or truncated" in err and "Traceback" not in err
    lines = manifest(out)
    run = lines[0]["run"]
    assert lines[0]["kind"] == "run" and lines[0]["mode"] == "ray" and lines[0]["workers"] == 2
    done = done_lines(out)
    assert len(done) == len({d["recording"] for d in done}) == len(LENGTHS)
    assert max(d["pieces"] for d in done) >= 4 and min(d["pieces"] for d in done) == 1
    assert {len(d["sha256"]) for d in done} == {64}
    failed = [r for r in lines if r["kind"] == "failed"]
    assert [(f["recording"], f["attempts"]) for f in failed] == [("damaged.flac", 3)]
    assert lines[-1]["kind"] == "end" and lines[-1]["processed"] == len(LENGTHS)

    # again: everything done is skipped (the damaged file is tried again and fails again)
    assert main([*args, "--quiet"]) == 1
    second = [r for r in manifest(out) if r["run"] != run]
    assert not [r for r in second if r["kind"] == "done"]
    assert second[-1]["kind"] == "end" and second[-1]["skipped"] == len(LENGTHS)
    # other post-processing: events made again from the stored scores, nothing detected
    assert main([*args[:-3], "--threshold", "0.9", "--ray", *PIECE, "--quiet"]) == 1
    third = manifest(out)[-1]
    assert third["rederived"] == len(LENGTHS) and third["processed"] == 0

    # a project reads the folder's events as they are (recordings matched by their names)
    project = tmp_path / "archive.panns"
    assert main(["project", "create", str(project)]) == 0
    assert main(["project", "add", str(project), str(archive)]) == 0
    assert main(["project", "import", str(project), *map(str, sorted(out.glob("*.tsv")))]) == 0
    from panns_core.annotations.store import ProjectStore

    with ProjectStore(project) as store:
        imported = store.events()
    expected = sum(len(pd.read_csv(f, sep="\t").dropna()) for f in out.glob("*.tsv"))
    assert len(imported) == expected > 0


def test_a_worker_killed_mid_run_loses_nothing_and_duplicates_nothing(
        cluster, checkpoint, archive, reference, tmp_path):  # fmt: skip
    from panns_core.cluster import detect_archive
    from panns_core.detection.postprocess import PostprocessParams
    from panns_core.hub.resolve import load_detector

    single, threshold = reference
    out = tmp_path / "results"
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["summary"] = detect_archive(
                archive, out, load_detector(checkpoint),
                PostprocessParams(threshold=float(threshold)), piece_seconds=30.0,
            )  # fmt: skip
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    victim = None
    deadline = time.monotonic() + 120
    while victim is None and time.monotonic() < deadline and thread.is_alive():
        if (out / "manifest.jsonl").exists():
            done = done_lines(out)
            if len(done) >= 4:
                victim = int(done[-1]["worker"][0].rsplit(":", 1)[1])
        time.sleep(0.05)
    assert victim is not None, outcome
    os.kill(victim, signal.SIGKILL)
    thread.join(180)
    assert not thread.is_alive() and "error" not in outcome, outcome
    summary = outcome["summary"]
    assert summary.failures == [] and summary.processed == len(LENGTHS), summary
    assert summary.worker_restarts == 1, summary  # the kill was noticed, the worker restarted
    done = done_lines(out)
    assert len(done) == len({d["recording"] for d in done}) == len(LENGTHS)
    assert_same_results(out, single)


def test_the_driver_killed_and_restarted_finishes_only_the_rest(
        cluster, checkpoint, archive, reference, tmp_path):  # fmt: skip
    single, threshold = reference
    out = tmp_path / "results"
    command = [sys.executable, "-m", "panns_core", "detect", str(archive), "--model",
               str(checkpoint), "--threshold", threshold, "--out", f"{out}/", "--ray", cluster,
               "--workers", "2", "--quiet", *PIECE]  # fmt: skip
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and driver.poll() is None:
            if (out / "manifest.jsonl").exists() and len(done_lines(out)) >= 5:
                break
            time.sleep(0.05)
        assert driver.poll() is None, driver.stderr.read().decode()
        driver.send_signal(signal.SIGKILL)
    finally:
        driver.wait(30)
    first = manifest(out)
    first_done = {d["recording"] for d in first if d["kind"] == "done"}
    assert 5 <= len(first_done) < len(LENGTHS)
    assert first[-1]["kind"] != "end"  # killed: no summary line

    finished = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert finished.returncode == 0, finished.stderr
    lines = manifest(out)
    second_run = lines[len(first)]["run"]
    assert lines[len(first)]["kind"] == "run"
    second_done = [d["recording"] for d in done_lines(out, second_run)]
    assert len(second_done) == len(set(second_done))
    assert set(second_done) == {d["recording"] for d in done_lines(single)} - first_done
    assert lines[-1]["kind"] == "end" and lines[-1]["skipped"] == len(first_done)
    assert lines[-1]["processed"] == len(second_done)
    assert_same_results(out, single)


def test_a_worker_that_cannot_load_the_model_is_one_line(cluster, checkpoint, archive, tmp_path):
    from dataclasses import replace

    from panns_core.cluster import detect_archive
    from panns_core.errors import PannsError
    from panns_core.hub.resolve import load_detector

    elsewhere = tmp_path / "not_a_checkpoint.pth"
    elsewhere.write_text("only on the driver's machine, and not a model")
    detector = replace(load_detector(checkpoint), path=elsewhere)
    with pytest.raises(PannsError, match="could not load the model") as caught:
        detect_archive(archive, tmp_path / "results", detector)
    assert "\n" not in str(caught.value) and "every machine" in str(caught.value)
    assert not (tmp_path / "results" / "manifest.jsonl").exists()


def test_one_channel_on_ray_is_that_channel_and_its_own_key(cluster, checkpoint, tmp_path):
    import soundfile as sf
    from detect_helpers import scene

    from panns_core.audio import file_sha256
    from panns_core.detection.inference import detect
    from panns_core.hub.resolve import load_detector

    stereo = tmp_path / "archive" / "stereo.wav"
    stereo.parent.mkdir()
    sf.write(stereo, np.stack([scene(40.0, 16000, seed=5), scene(40.0, 16000, seed=6)], 1),
             16000, subtype="FLOAT")  # fmt: skip
    out = tmp_path / "results"
    args = ["detect", str(stereo.parent), "--model", str(checkpoint), "--out", f"{out}/",
            "--ray", "--quiet", *PIECE]  # fmt: skip
    assert main([*args, "--channel", "2"]) == 0
    want = detect(stereo, load_detector(checkpoint), channel=1)
    got = pd.read_csv(out / "scores" / "stereo.tsv", sep="\t")
    np.testing.assert_allclose(got[LABELS].to_numpy(), want.probabilities, rtol=0, atol=1e-6)
    (line,) = done_lines(out)
    assert line["sha256"] == f"{file_sha256(stereo)}-ch2" and line["pieces"] == 2
    assert main(args) == 0  # the mix of the channels is other audio: detected, not skipped
    assert manifest(out)[-1]["processed"] == 1
    assert done_lines(out)[-1]["sha256"] == file_sha256(stereo)
