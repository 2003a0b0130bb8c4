"""``panns-sed detect`` end to end on generated recordings with a real checkpoint file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from detect_helpers import TINY_LABELS, deterministic_model, tiny_sed, write_scene

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
    assert sorted(p.name for p in (tmp_path / "labels").iterdir()) == ["a.txt", "sub__b.txt"]
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
