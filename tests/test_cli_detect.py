"""``panns-sed detect`` end to end on generated recordings with a real checkpoint file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from detect_helpers import TINY, TINY_LABELS, deterministic_model, tiny_sed, write_scene

from panns_core.cli import main
from panns_core.events import EVENT_COLUMNS


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint file of the tiny SED architecture with deterministic weights."""
    from panns_core.hub.checkpoints import save_checkpoint
    from panns_core.models import FEATURES_32K

    torch.set_num_threads(2)
    with tiny_sed() as arch:
        model = deterministic_model(arch, len(TINY_LABELS))
        path = tmp_path_factory.mktemp("ckpt") / "tiny_sed.pth"
        save_checkpoint(path, model, architecture=arch, feature_config=FEATURES_32K,
                        labels=TINY_LABELS)  # fmt: skip
        yield path


@pytest.fixture
def recordings(tmp_path):
    root = tmp_path / "audio"
    write_scene(root / "a.wav", 8.3, seed=1)
    write_scene(root / "sub" / "b.flac", 5.0, seed=2)
    (root / "notes.txt").write_text("not audio, not looked at")
    return root


def _threshold_for(checkpoint, path) -> float:
    """A threshold that yields some but not all segments for this model and file."""
    from panns_core.detection.inference import detect
    from panns_core.hub.resolve import load_detector

    scores = detect(path, load_detector(checkpoint))
    return float(np.quantile(scores.probabilities, 0.9))


def test_detect_folder_to_dcase_matches_library(checkpoint, recordings, tmp_path, capsys):
    from panns_core.annotations.formats import read_annotations
    from panns_core.detection.inference import detect
    from panns_core.detection.postprocess import PostprocessParams, find_events
    from panns_core.hub.resolve import load_detector

    threshold = _threshold_for(checkpoint, recordings / "a.wav")
    out = tmp_path / "events.tsv"
    code = main(["detect", str(recordings), "--model", str(checkpoint), "--threshold",
                 f"{threshold}", "--min-duration", "0.3", "--out", str(out)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "100%" in captured.err and "2 file(s)" in captured.err
    got = read_annotations(out, "dcase")
    assert set(got["recording"]) <= {"a.wav", "sub/b.flac"} and len(got) > 0
    # the same events the library gives for the same file and settings
    params = PostprocessParams(threshold=threshold, min_duration=0.3)
    expected = find_events(detect(recordings / "a.wav", load_detector(checkpoint)), params)
    mine = got[got["recording"] == "a.wav"].sort_values(["onset", "label"])
    assert list(mine["label"]) == list(expected["label"])
    np.testing.assert_allclose(mine["onset"], expected["onset"], atol=1e-3)
    np.testing.assert_allclose(mine["offset"], expected["offset"], atol=1e-3)


def test_csv_json_and_per_recording_outputs(checkpoint, recordings, tmp_path, capsys):
    args = ["detect", str(recordings), "--model", str(checkpoint), "--threshold", "0.0",
            "--quiet"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "e.csv")]) == 0
    table = pd.read_csv(tmp_path / "e.csv")
    assert list(table.columns) == [*EVENT_COLUMNS, "mean_confidence"]
    assert (table["confidence"] >= table["mean_confidence"] - 1e-9).all()
    assert set(table["status"]) == {"proposed"}
    assert table["source"].str.startswith("tiny_sed@").all()
    assert main([*args, "--format", "json", "--out", str(tmp_path / "e.json")]) == 0
    records = json.loads((tmp_path / "e.json").read_text())
    assert len(records) == len(table) and set(records[0]) == {*EVENT_COLUMNS, "mean_confidence"}
    # audacity holds one recording per file: a folder target gives one file each
    assert main([*args, "--format", "audacity", "--out", str(tmp_path / "labels") + "/"]) == 0
    labels = tmp_path / "labels"
    assert sorted(p.name for p in labels.glob("*.txt")) == ["a.txt", "sub__b.txt"]
    assert (labels / "manifest.jsonl").is_file()  # a results folder (test_results_folder)
    assert sorted(p.name for p in (labels / "scores").iterdir()) == ["a.tsv", "sub__b.tsv"]
    capsys.readouterr()
    assert main([*args, "--format", "audacity", "--out", str(tmp_path / "one.txt")]) == 1
    assert "one recording per file" in capsys.readouterr().err


def test_scores_out_is_readable_by_sed_scores_eval(checkpoint, recordings, tmp_path):
    from sed_scores_eval.base_modules.io import read_sed_scores

    scores_dir = tmp_path / "scores"
    code = main(["detect", str(recordings), "--model", str(checkpoint), "--quiet",
                 "--scores-out", str(scores_dir), "--out", str(tmp_path / "e.tsv")])  # fmt: skip
    assert code == 0
    loaded = read_sed_scores(scores_dir)  # validates every file
    assert set(loaded) == {"a", "sub__b"}
    frame = loaded["a"]
    assert list(frame.columns) == ["onset", "offset", *TINY_LABELS]
    assert frame["offset"].iloc[-1] == pytest.approx(8.3)
    assert len(frame) == int(8.3 * 100 + 1) // 32


def test_failures_are_reported_and_others_done(checkpoint, recordings, tmp_path, capsys):
    (recordings / "broken.wav").write_bytes(b"RIFF" + b"\x00" * 50)
    out = tmp_path / "e.tsv"
    code = main(["detect", str(recordings), str(tmp_path / "nowhere.wav"), "--model",
                 str(checkpoint), "--threshold", "0", "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert "2 file(s) failed" in err and "broken.wav" in err and "nowhere.wav" in err
    assert "Traceback" not in err
    from panns_core.annotations.formats import read_annotations

    assert set(read_annotations(out, "dcase")["recording"]) == {"a.wav", "sub/b.flac"}


def test_stdout_and_options(checkpoint, recordings, capsys):
    code = main(["detect", str(recordings / "a.wav"), "--model", str(checkpoint), "--quiet",
                 "--threshold", "0", "--classes", "Dog", "Chink, clink", "--top-k", "1",
                 "--median", "0.7", "--merge-gap", "0.5"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split("\t") == ["filename", "onset", "offset", "event_label"]
    labels = {line.split("\t")[3] for line in lines[1:]}
    assert len(labels) == 1 and labels <= {"Dog", "Chink, clink"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--classes", "Unicorn"], "no class named 'Unicorn'"),
        (["--threshold", "Dog=1.5"], "between 0 and 1"),
        (["--threshold", "0.2", "--off-threshold", "0.4"], "must not exceed"),
        (["--device", "cuda:7"], "cuda"),
        (["--threads", "0"], "at least 1"),
    ],
)
def test_bad_options_fail_cleanly(checkpoint, recordings, capsys, extra, message):
    if extra[:2] == ["--device", "cuda:7"] and torch.cuda.device_count() > 7:
        pytest.skip("this machine has that GPU")
    code = main(["detect", str(recordings / "a.wav"), "--model", str(checkpoint), *extra])
    err = capsys.readouterr().err
    assert code == 1 and message.lower() in err.lower() and "Traceback" not in err


def test_no_model_installed_says_how_to_get_one(recordings, capsys):
    code = main(["detect", str(recordings / "a.wav")])
    err = capsys.readouterr().err
    assert code == 1 and "panns-sed models download" in err


def test_no_audio_files(tmp_path, capsys):
    (tmp_path / "x.txt").write_text("hello")
    assert main(["detect", str(tmp_path)]) == 1
    assert "no audio files" in capsys.readouterr().err


def test_recordings_without_detections_are_empty_dcase_rows(checkpoint, recordings, tmp_path):
    from panns_core.annotations.formats import read_annotations

    out = tmp_path / "none.tsv"
    assert main(["detect", str(recordings), "--model", str(checkpoint), "--threshold", "1.0",
                 "--quiet", "--out", str(out)]) == 0
    frame = pd.read_csv(out, sep="\t")
    assert sorted(frame["filename"]) == ["a.wav", "sub/b.flac"]
    assert frame["onset"].isna().all() and frame["event_label"].isna().all()
    events = read_annotations(out)
    assert len(events) == 0 and sorted(events.attrs["recordings"]) == ["a.wav", "sub/b.flac"]


# -- the model's calibrated post-processing -------------------------------------------------
@pytest.fixture(scope="module")
def calibrated_checkpoint(checkpoint, tmp_path_factory):
    """The tiny SED checkpoint with calibrated post-processing in its metadata (what a
    fine-tuned model ships)."""
    from panns_core.detection.postprocess import PostprocessParams
    from panns_core.hub.checkpoints import save_checkpoint
    from panns_core.models import FEATURES_32K

    torch.set_num_threads(2)
    calibrated = PostprocessParams(
        threshold=0.3, class_thresholds={"Dog": 0.2, "Music": 0.6},
        class_off_thresholds={"Dog": 0.1}, median_seconds=0.64,
        class_median_seconds={"Bird": 1.28},
    )  # fmt: skip
    # the tiny architecture stays registered while ``checkpoint`` lives
    model = deterministic_model(TINY, len(TINY_LABELS))
    path = tmp_path_factory.mktemp("ckpt") / "calibrated.pth"
    save_checkpoint(path, model, architecture=TINY, feature_config=FEATURES_32K,
                    labels=TINY_LABELS, extra={"postprocess": calibrated.to_dict()})
    return path, calibrated


def _events_of(out):
    from panns_core.annotations.formats import read_annotations

    return read_annotations(out, "dcase").sort_values(["onset", "label"]).reset_index(drop=True)


def _expected(path, checkpoint, params):
    from panns_core.detection.inference import detect
    from panns_core.detection.postprocess import find_events
    from panns_core.hub.resolve import load_detector

    return find_events(detect(path, load_detector(checkpoint)), params)


def test_detect_uses_the_models_calibrated_params_by_default(
    calibrated_checkpoint, recordings, tmp_path, capsys
):
    from panns_core.hub.resolve import load_detector

    path, calibrated = calibrated_checkpoint
    assert load_detector(path).postprocess == calibrated  # the hub hands them over
    out = tmp_path / "e.tsv"
    assert main(["detect", str(recordings / "a.wav"), "--model", str(path), "--out",
                 str(out)]) == 0  # fmt: skip
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "post-processing" in line]
    assert len(lines) == 1 and "model's calibrated" in lines[0]
    assert "threshold 0.2-0.6 (2 per class)" in lines[0] and "median 0.64-1.28 s" in lines[0]
    got = _events_of(out)
    expected = _expected(recordings / "a.wav", path, calibrated)
    assert len(expected) > 0
    assert list(got["label"]) == list(expected["label"])
    np.testing.assert_allclose(got["onset"], expected["onset"], atol=1e-3)
    np.testing.assert_allclose(got["offset"], expected["offset"], atol=1e-3)


def test_each_option_given_overrides_its_part_of_the_calibration(
    calibrated_checkpoint, recordings, tmp_path, capsys
):
    from panns_core.detection.postprocess import PostprocessParams

    path, _ = calibrated_checkpoint
    wav = recordings / "a.wav"
    # a global threshold replaces every calibrated threshold (on and off); medians stay
    out = tmp_path / "t.tsv"
    assert main(["detect", str(wav), "--model", str(path), "--threshold", "0.4",
                 "--out", str(out)]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "with --threshold from the command line" in err
    expected = _expected(wav, path, PostprocessParams(
        threshold=0.4, median_seconds=0.64, class_median_seconds={"Bird": 1.28}))
    got = _events_of(out)
    assert list(got["label"]) == list(expected["label"])
    np.testing.assert_allclose(got["onset"], expected["onset"], atol=1e-3)
    # --median replaces the medians and one class's threshold replaces only that class's
    out = tmp_path / "m.tsv"
    assert main(["detect", str(wav), "--model", str(path), "--median", "0", "--threshold",
                 "Dog=0.5", "--out", str(out), "--quiet"]) == 0  # fmt: skip
    expected = _expected(wav, path, PostprocessParams(
        threshold=0.3, class_thresholds={"Dog": 0.5, "Music": 0.6}))
    got = _events_of(out)
    assert list(got["label"]) == list(expected["label"])
    np.testing.assert_allclose(got["offset"], expected["offset"], atol=1e-3)


def test_a_model_without_calibration_says_it_uses_the_defaults(checkpoint, recordings, capsys):
    assert main(["detect", str(recordings / "a.wav"), "--model", str(checkpoint)]) == 0
    err = capsys.readouterr().err
    assert "default post-processing: threshold 0.5, no median" in err


def _manifest(folder):
    """The manifest's lines (a torn line, as a killed run leaves, is skipped)."""
    from panns_core.detection.results import Results

    return Results(folder).read_manifest()


def test_results_folder_resumes_and_remakes_events(checkpoint, recordings, tmp_path, capsys):
    """--out DIR/: events and scores per recording and a manifest; a second run skips what
    is done, other post-processing re-makes events from the stored scores, a changed file
    is detected again, a torn manifest line (a killed run) is ignored."""
    from sed_scores_eval.base_modules.io import read_sed_scores

    out = tmp_path / "results"
    args = ["detect", str(recordings), "--model", str(checkpoint), "--threshold", "0.5",
            "--out", f"{out}/"]  # fmt: skip
    assert main([*args, "--scores-out", str(tmp_path / "copies")]) == 0
    assert "done before" not in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "copies").iterdir()) == ["a.tsv", "sub__b.tsv"]
    assert sorted(p.name for p in out.glob("*.tsv")) == ["a.tsv", "sub__b.tsv"]
    assert set(read_sed_scores(out / "scores")) == {"a", "sub__b"}
    lines = _manifest(out)
    assert [r["kind"] for r in lines] == ["run", "done", "done", "end"]
    done = {r["recording"]: r for r in lines if r["kind"] == "done"}
    assert set(done) == {"a.wav", "sub/b.flac"}
    assert done["a.wav"]["model_id"].startswith("tiny_sed@") and len(done["a.wav"]["sha256"]) == 64
    assert done["a.wav"]["events"] == "a.tsv" and done["a.wav"]["scores"] == "scores/a.tsv"
    first = (out / "a.tsv").read_text()

    with open(out / "manifest.jsonl", "a") as handle:  # a run killed while writing a line
        handle.write('{"kind": "done", "recording": "a.w')
    torn = out / "scores" / ".a.tsv.12345.tmp"  # and a file it was writing
    torn.write_text("onset\toffset\tSpeech\n0.0\t0.3")
    assert main(args) == 0
    assert not torn.exists()
    assert "2 done before, skipped" in capsys.readouterr().err
    assert _manifest(out)[-1]["skipped"] == 2  # the torn line was ended, not glued to
    assert main([*args, "--threshold", "0.9"]) == 0
    assert "2 re-made from stored scores" in capsys.readouterr().err
    assert (out / "a.tsv").read_text() != first
    # the same content written again (new modification time): hashed, found equal, skipped
    (recordings / "a.wav").write_bytes((recordings / "a.wav").read_bytes())
    assert main([*args, "--threshold", "0.9"]) == 0
    assert "2 done before" in capsys.readouterr().err
    # other audio under the same name: detected again
    write_scene(recordings / "a.wav", 4.0, seed=7)
    assert main([*args, "--threshold", "0.9"]) == 0
    assert "1 recording(s)" in capsys.readouterr().err
    last = [r for r in _manifest(out) if r["kind"] == "done"][-1]
    assert last["recording"] == "a.wav" and last["duration"] == pytest.approx(4.0)


def test_ray_options_need_a_results_folder_and_say_how_to_get_ray(
        checkpoint, recordings, tmp_path, capsys, monkeypatch):  # fmt: skip
    code = main(["detect", str(recordings), "--model", str(checkpoint), "--ray",
                 "--out", str(tmp_path / "e.tsv")])  # fmt: skip
    assert code == 1 and "give --out a folder" in capsys.readouterr().err
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    for extra in (["--ray"], ["--workers", "2"], ["--ray", "10.0.0.1:6379"]):
        code = main(["detect", str(recordings), "--model", str(checkpoint), *extra,
                     "--out", f"{tmp_path / 'results'}/"])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 1 and len(err.strip().splitlines()) == 1, err
        assert 'pip install "panns-annotator[cluster]"' in err
    assert not (tmp_path / "results").exists()


def test_channel_option_listens_to_one_channel(checkpoint, recordings, tmp_path, capsys):
    import soundfile as sf

    first, rate = sf.read(recordings / "a.wav", dtype="float32")
    second = first[::-1].copy()  # another scene on the second channel
    sf.write(tmp_path / "stereo.wav", np.stack([first, second], axis=1), rate)
    sf.write(tmp_path / "second.wav", second, rate)
    common = ["--model", str(checkpoint), "--quiet", "--no-cache"]

    def scores(path, *extra) -> np.ndarray:
        out = tmp_path / f"scores{len(list(tmp_path.iterdir()))}"
        assert main(["detect", str(path), *common, *extra, "--scores-out", str(out)]) == 0
        (table,) = out.iterdir()
        return pd.read_csv(table, sep="\t").to_numpy(np.float64)

    ch2 = scores(tmp_path / "stereo.wav", "--channel", "2")
    np.testing.assert_allclose(ch2, scores(tmp_path / "second.wav"), atol=1e-5)
    assert np.abs(ch2 - scores(tmp_path / "stereo.wav")).max() > 1e-3  # not the mix
    capsys.readouterr()
    assert main(["detect", str(tmp_path / "stereo.wav"), "--channel", "0", *common]) == 1
    assert "counted from 1" in capsys.readouterr().err
    assert main(["detect", str(tmp_path / "stereo.wav"), "--channel", "3", *common]) == 1
    err = capsys.readouterr().err
    assert "stereo.wav" in err and "channel" in err.lower() and "Traceback" not in err


def _detect_in_a_fresh_process(argv: list[str]) -> tuple[str, bool]:
    """Run ``panns-sed`` in a new Python (this one has torch loaded); (stderr, whether
    torch was imported)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    code = ("import sys; from panns_core.cli import main; rc = main(sys.argv[1:]); "
            "print('TORCH', 'torch' in sys.modules, file=sys.stderr); sys.exit(rc)")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stderr, "TORCH True" in done.stderr


@pytest.mark.parametrize("installed", [False, True], ids=["checkpoint file", "installed"])
def test_a_model_that_ran_here_before_runs_without_torch(checkpoint, recordings, tmp_path,
                                                         capsys, installed):  # fmt: skip
    """The first run exports and verifies the graph and compiles the detector; the next
    process loads neither torch nor the checkpoint, and writes the same events, scores
    and calibrated post-processing."""
    from panns_core.detection import compiled

    spec = str(checkpoint)
    if installed:
        assert main(["models", "import", spec, "--name", "tiny-birds"]) == 0
        spec = "tiny-birds"
    common = [str(recordings / "a.wav"), "--model", spec, "--device", "cpu", "--threads", "1",
              "--threshold", "0.05", "--no-cache"]  # fmt: skip
    assert compiled.load(spec, "cpu") is None  # never ran here
    assert main(["detect", *common, "--out", str(tmp_path / "torch.tsv"),
                 "--scores-out", str(tmp_path / "torch")]) == 0  # fmt: skip
    found = compiled.load(spec, "cpu")
    assert found is not None and found.labels == tuple(TINY_LABELS)
    assert compiled.load(spec, "cuda") is None  # a GPU asked for: torch decides
    capsys.readouterr()

    err, torch_loaded = _detect_in_a_fresh_process(
        ["detect", *common, "--out", str(tmp_path / "graph.tsv"),
         "--scores-out", str(tmp_path / "graph")])  # fmt: skip
    assert not torch_loaded, err
    assert "post-processing" in err
    assert (tmp_path / "graph.tsv").read_text() == (tmp_path / "torch.tsv").read_text()
    (a,), (b,) = (tmp_path / "torch").iterdir(), (tmp_path / "graph").iterdir()
    assert a.read_text() == b.read_text()
    assert len(pd.read_csv(tmp_path / "graph.tsv", sep="\t")) > 0


def test_a_changed_checkpoint_is_never_served_from_the_compiled_cache(checkpoint, tmp_path,
                                                                      recordings):  # fmt: skip
    """Same path, new weights: the index keys files by size and modification time, so the
    torch path runs (and compiles the new weights)."""
    import os

    from panns_core.detection import compiled
    from panns_core.hub.checkpoints import save_checkpoint
    from panns_core.models import FEATURES_32K

    path = tmp_path / "mine.pth"
    ids: list[str] = []
    for scale in (1.0, 0.5):
        model = deterministic_model(TINY, len(TINY_LABELS))  # registered by `checkpoint`
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.mul_(scale)
        save_checkpoint(path, model, architecture=TINY, feature_config=FEATURES_32K,
                        labels=TINY_LABELS)  # fmt: skip
        os.utime(path, ns=(10**18 + len(ids), 10**18 + len(ids)))
        assert compiled.load(str(path), "cpu") is None
        assert main(["detect", str(recordings / "a.wav"), "--model", str(path),
                     "--device", "cpu", "--quiet"]) == 0  # fmt: skip
        found = compiled.load(str(path), "cpu")
        assert found is not None
        ids.append(found.model_id)
    assert ids[0] != ids[1]


def test_fast_runs_the_measured_choice_without_torch(checkpoint, recordings, tmp_path):
    """--fast is never slower than exact: where the measured choice is exact or ONNX
    Runtime's int8, a later process runs it from the compiled cache (no torch) and writes
    the same events; exact says so. Where bf16 won, torch runs."""
    from panns_core.detection import compiled
    from panns_core.detection.engines import known_fast_choice

    common = [str(recordings / "a.wav"), "--model", str(checkpoint), "--device", "cpu",
              "--threads", "2", "--no-cache", "--fast", "--threshold", "0.05"]  # fmt: skip
    # exports, verifies, checks int8, measures the fast path
    assert main(["detect", *common, "--scores-out", str(tmp_path / "first")]) == 0
    found = compiled.load(str(checkpoint), "cpu")
    choice = known_fast_choice(found, 2)
    assert choice in ("fp32", "bf16", "int8")
    err, torch_loaded = _detect_in_a_fresh_process(
        ["detect", *common, "--scores-out", str(tmp_path / "again")])  # fmt: skip
    (a,), (b,) = (tmp_path / "first").iterdir(), (tmp_path / "again").iterdir()
    if choice == "bf16":
        assert torch_loaded, err
        return
    assert not torch_loaded, err
    assert ("no path faster than exact" in err) == (choice == "fp32"), err
    assert a.read_text() == b.read_text()


def test_fast_int8_from_the_compiled_cache(checkpoint, recordings, tmp_path, monkeypatch):
    """The int8 choice in a later process: the checked int8 graph, no torch, the same
    scores as the process that measured it."""
    from panns_core.detection import engines

    monkeypatch.setattr(engines, "measure_throughput",  # int8 "wins" wherever it is offered
                        lambda engine, *a: {"int8": 10.0}.get(engine.precision, 1.0))
    common = [str(recordings / "a.wav"), "--model", str(checkpoint), "--device", "cpu",
              "--threads", "2", "--no-cache", "--fast", "--threshold", "0.05"]  # fmt: skip
    assert main(["detect", *common, "--scores-out", str(tmp_path / "first")]) == 0
    from panns_core.detection import compiled

    found = compiled.load(str(checkpoint), "cpu")
    if engines.known_fast_choice(found, 2) != "int8":
        pytest.skip("the int8 graph of the test model lost events on the check here")
    err, torch_loaded = _detect_in_a_fresh_process(
        ["detect", *common, "--scores-out", str(tmp_path / "again")])  # fmt: skip
    assert not torch_loaded, err
    (a,), (b,) = (tmp_path / "first").iterdir(), (tmp_path / "again").iterdir()
    assert a.read_text() == b.read_text()


def test_precision_int8_is_run_when_asked_and_recorded(checkpoint, recordings, tmp_path,
                                                       capsys):  # fmt: skip
    """--precision int8 runs ONNX Runtime's int8 graph whether or not --fast would choose
    it; a later process runs it without torch; a results folder records the precision."""
    common = [str(recordings / "a.wav"), "--model", str(checkpoint), "--device", "cpu",
              "--threads", "2", "--no-cache", "--threshold", "0.05"]  # fmt: skip
    assert main(["detect", *common, "--precision", "int8",
                 "--scores-out", str(tmp_path / "int8")]) == 0  # fmt: skip
    assert main(["detect", *common, "--scores-out", str(tmp_path / "exact")]) == 0
    (a,), (b,) = (tmp_path / "int8").iterdir(), (tmp_path / "exact").iterdir()
    int8 = pd.read_csv(a, sep="\t").to_numpy(float)
    exact = pd.read_csv(b, sep="\t").to_numpy(float)
    assert int8.shape == exact.shape and 0 < np.abs(int8 - exact).max() < 0.5
    err, torch_loaded = _detect_in_a_fresh_process(
        ["detect", *common, "--precision", "int8", "--scores-out", str(tmp_path / "again")])
    assert not torch_loaded, err
    assert (tmp_path / "again" / a.name).read_text() == a.read_text()
    assert main(["detect", *common, "--precision", "int8", "--out", f"{tmp_path}/res/"]) == 0
    lines = _manifest(tmp_path / "res")
    assert {x["precision"] for x in lines if "precision" in x} == {"int8"}, lines
    capsys.readouterr()
    assert main(["detect", *common, "--precision", "int8", "--fast"]) == 1
    assert "--precision" in capsys.readouterr().err
