"""Scores: time axis, npz round trip, cache, and the sed_scores_eval TSV layout."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panns_core.detection.scores import ScoreCache, Scores
from panns_core.errors import FormatError
from panns_core.labels import audioset_labels


def _random_scores(n: int, labels: list[str], duration: float | None = None, seed: int = 0):
    rng = np.random.default_rng(seed)
    probs = rng.random((n, len(labels)), dtype=np.float32)
    return Scores(
        probs,
        0.32,
        labels,
        model_id="Cnn14_DecisionLevelMax:abc",
        audio_hash="f00d",
        duration=duration,
    )


def test_time_axis_ends_at_duration() -> None:
    scores = _random_scores(31, ["a", "b"], duration=10.0)
    assert scores.n_segments == 31 and scores.n_classes == 2
    assert scores.times[:3] == pytest.approx([0.0, 0.32, 0.64])
    assert scores.offsets[-1] == 10.0  # the last segment runs to the end (0.08 s longer)
    assert np.all(np.diff(scores.timestamps) > 0)
    assert _random_scores(4, ["a"]).duration == pytest.approx(1.28)
    with pytest.raises(ValueError, match="duration"):
        _random_scores(4, ["a"], duration=0.9)
    with pytest.raises(ValueError, match="labels"):
        Scores(np.zeros((3, 2)), 0.32, ["only one"])


def test_framewise_expansion_matches_reference_layout() -> None:
    # reference: each segment repeated 32 times, the last frame(s) repeat the last segment
    scores = _random_scores(31, ["a", "b"], duration=10.0)
    frames = scores.framewise(0.01)
    assert frames.shape == (1001, 2)
    expected = np.concatenate(
        [
            np.repeat(scores.probabilities, 32, axis=0),
            np.repeat(scores.probabilities[-1:], 1001 - 992, axis=0),
        ]
    )
    np.testing.assert_array_equal(frames, expected)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 50), st.integers(1, 5), st.floats(0.001, 0.32))
def test_npz_round_trip(tmp_path_factory, n, n_classes, tail) -> None:
    labels = [f'class {i}, with "quotes" ünïcode' for i in range(n_classes)]
    duration = (n - 1) * 0.32 + tail if n else None
    scores = _random_scores(n, labels, duration=duration, seed=n)
    scores.metadata["device"] = "cpu"
    path = scores.save(tmp_path_factory.mktemp("s") / "x.npz")
    back = Scores.load(path)
    np.testing.assert_array_equal(back.probabilities, scores.probabilities)
    assert back.probabilities.dtype == np.float32
    assert (back.labels, back.model_id, back.audio_hash, back.precision, back.metadata) == (
        scores.labels,
        scores.model_id,
        scores.audio_hash,
        scores.precision,
        scores.metadata,
    )
    assert back.duration == scores.duration and back.segment_seconds == 0.32


def test_load_rejects_other_files(tmp_path) -> None:
    bogus = tmp_path / "x.npz"
    np.savez(bogus, something=np.zeros(3))
    with pytest.raises(FormatError, match="not a scores file"):
        Scores.load(bogus)
    (tmp_path / "t.npz").write_text("hello")
    with pytest.raises(FormatError):
        Scores.load(tmp_path / "t.npz")
    with pytest.raises(FormatError, match="no such"):
        Scores.load(tmp_path / "missing.npz")


def test_tsv_is_valid_for_sed_scores_eval(tmp_path) -> None:
    from sed_scores_eval.base_modules.io import read_sed_scores
    from sed_scores_eval.base_modules.scores import validate_score_dataframe

    labels = [c.name for c in audioset_labels()]  # names with commas and quotes
    scores = _random_scores(57, labels, duration=18.3)
    path = scores.write_tsv(tmp_path / "rec.tsv")
    header = path.read_text().splitlines()[0].split("\t")
    assert header[:2] == ["onset", "offset"] and header[2:] == labels
    frame = read_sed_scores(path)  # validates the layout itself
    timestamps, _classes = validate_score_dataframe(frame, event_classes=labels)
    np.testing.assert_allclose(timestamps, scores.timestamps)
    np.testing.assert_allclose(frame[labels].to_numpy(), scores.probabilities, atol=1e-8)
    back = Scores.read_tsv(path)
    assert back.labels == labels and back.duration == pytest.approx(18.3)
    assert back.segment_seconds == pytest.approx(0.32)
    np.testing.assert_allclose(back.probabilities, scores.probabilities, atol=1e-8)


def test_tsv_rejects_unwritable_names_and_bad_files(tmp_path) -> None:
    with pytest.raises(FormatError, match="backslash"):
        _random_scores(3, ["a\\b"]).write_tsv(tmp_path / "x.tsv")
    (tmp_path / "bad.tsv").write_text("start\tend\tdog\n0\t1\t0.5\n")
    with pytest.raises(FormatError, match="onset, offset"):
        Scores.read_tsv(tmp_path / "bad.tsv")


def test_select_keeps_order_and_metadata() -> None:
    scores = _random_scores(5, ["a", "b", "c"], duration=1.5)
    sub = scores.select(["c", "a"])
    assert sub.labels == ["c", "a"] and sub.duration == 1.5
    np.testing.assert_array_equal(sub.probabilities, scores.probabilities[:, [2, 0]])
    with pytest.raises(KeyError, match="no class"):
        scores.select(["zzz"])


def test_cache_is_keyed_by_audio_model_and_precision(app_home) -> None:
    cache = ScoreCache()
    assert str(cache.directory).startswith(str(app_home))
    scores = _random_scores(8, ["a", "b"])
    assert cache.get("f00d", scores.model_id) is None
    cache.put(scores)
    hit = cache.get("f00d", scores.model_id)
    assert hit is not None
    np.testing.assert_array_equal(hit.probabilities, scores.probabilities)
    assert cache.get("beef", scores.model_id) is None
    assert cache.get("f00d", "other-model") is None
    assert cache.get("f00d", scores.model_id, precision="bf16") is None
    # a damaged entry is a miss and is removed
    path = cache.path_for("f00d", scores.model_id)
    path.write_bytes(b"garbage")
    assert cache.get("f00d", scores.model_id) is None and not path.exists()
    cache.put(scores)
    assert cache.clear() == 1
    with pytest.raises(ValueError):
        cache.path_for("", "m")
