"""Scores -> events: properties (hypothesis) and agreement with independent references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.ndimage import median_filter as scipy_median

from panns_core.detection.postprocess import (
    PostprocessParams,
    find_events,
    median_filter,
    scores_to_events,
)
from panns_core.detection.scores import Scores
from panns_core.events import EVENT_COLUMNS, PROPOSED

SEG = 0.32
LABELS = ["Speech", "Dog", "Bark", "Music"]


@st.composite
def score_sets(draw, max_segments: int = 60) -> Scores:
    n = draw(st.integers(0, max_segments))
    n_classes = draw(st.integers(1, len(LABELS)))
    # values on a coarse grid so ties and exact-threshold values occur
    grid = draw(st.lists(st.integers(0, 20), min_size=n * n_classes, max_size=n * n_classes))
    probs = np.asarray(grid, dtype=np.float32).reshape(n, n_classes) / 20
    tail = draw(st.floats(0.001, SEG)) if n else 0.0
    duration = (n - 1) * SEG + tail if n else 0.0
    return Scores(probs, SEG, LABELS[:n_classes], model_id="m", duration=duration or None)


thresholds = st.floats(0.0, 1.0)


@st.composite
def param_sets(draw) -> PostprocessParams:
    on = draw(thresholds)
    off = draw(st.one_of(st.none(), st.floats(0.0, on)))
    per_class = draw(st.dictionaries(st.sampled_from(LABELS), thresholds, max_size=2))
    return PostprocessParams(
        threshold=on,
        off_threshold=off,
        class_thresholds=per_class,
        median_seconds=draw(st.sampled_from([0.0, 0.32, 0.7, 1.0, 2.0])),
        min_duration=draw(st.sampled_from([0.0, 0.3, 0.64, 1.5])),
        merge_gap=draw(st.sampled_from([0.0, 0.33, 0.65, 2.0])),
        top_k=draw(st.one_of(st.none(), st.integers(1, 3))),
    )


PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(score_sets(), param_sets())
def test_event_invariants(scores: Scores, params: PostprocessParams) -> None:
    events = find_events(scores, params)
    assert list(events.columns) == ["onset", "offset", "label", "confidence", "mean_confidence"]
    edges = scores.timestamps
    for label, group in events.groupby("label"):
        group = group.sort_values("onset")
        onsets, offsets = group["onset"].to_numpy(), group["offset"].to_numpy()
        # inside the recording, positive length, respecting min duration
        assert (onsets >= 0).all() and (offsets <= scores.duration + 1e-9).all()
        assert (offsets > onsets).all()
        assert (offsets - onsets >= params.min_duration).all()
        # no overlap or contact within a class, and gaps at least the merge gap
        gaps = onsets[1:] - offsets[:-1]
        assert (gaps > 0).all()
        assert (gaps >= params.merge_gap).all()
        # boundaries lie on segment edges
        assert np.isin(onsets, edges).all() and np.isin(offsets, edges).all()
        # confidence is the max raw probability inside, mean lies between min and max
        column = scores.probabilities[:, scores.labels.index(label)]
        # the median the module's docstring promises: over median_seconds rounded to an
        # odd number of segments (at least one), edges repeated (scipy's, not ours)
        width = max(1, round(params.median_for(label) / SEG))
        width += 1 - width % 2
        smooth = scipy_median(column.astype(np.float64), size=width, mode="nearest")
        for row in group.itertuples():
            inside = column[(scores.times >= row.onset) & (scores.times < row.offset)]
            assert row.confidence == pytest.approx(float(inside.max()))
            assert inside.min() - 1e-6 <= row.mean_confidence <= inside.max() + 1e-6
            # hysteresis on the smoothed scores: something inside is above the class's
            # on threshold (for every median, none included; a median may bridge a raw
            # dip, so the raw maximum is only bound when there is no median)
            smoothed = smooth[(scores.times >= row.onset) & (scores.times < row.offset)]
            assert smoothed.max() > params.on_threshold(label)
    if params.top_k is not None:
        assert events["label"].nunique() <= params.top_k


@PROPERTY
@given(score_sets(), st.floats(0.0, 2.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_threshold_one_gives_no_events(scores, median, min_duration, gap) -> None:
    params = PostprocessParams(
        threshold=1.0, median_seconds=median, min_duration=min_duration, merge_gap=gap
    )
    # even probabilities of exactly 1.0 (a saturated float32 sigmoid) do not fire
    saturated = Scores(np.ones_like(scores.probabilities), SEG, scores.labels)
    assert find_events(scores, params).empty
    assert find_events(saturated, params).empty


def _reference_threshold_events(scores: Scores, thresholds: dict[str, float]) -> list[tuple]:
    """sed_scores_eval's own scores -> events (plain thresholding, strict >)."""
    from sed_scores_eval.base_modules.detection import scores_to_event_list

    frame = scores.to_dataframe()
    return [
        (round(on, 9), round(off, 9), label)
        for on, off, label in scores_to_event_list(frame, thresholds)
    ]


@PROPERTY
@given(score_sets(), st.lists(thresholds, min_size=4, max_size=4))
def test_plain_thresholding_matches_sed_scores_eval(scores, values) -> None:
    if scores.n_segments == 0:
        return
    per_class = dict(zip(scores.labels, values))
    params = PostprocessParams(threshold=0.5, class_thresholds=per_class)
    ours = find_events(scores, params)
    got = sorted((round(r.onset, 9), round(r.offset, 9), r.label) for r in ours.itertuples())
    assert got == sorted(_reference_threshold_events(scores, per_class))


def _reference_hysteresis(values: np.ndarray, on: float, off: float) -> list[tuple[int, int]]:
    """A plain state machine, written independently of the vectorised version."""
    runs, active, start, seen_on = [], False, 0, False
    for i, v in enumerate([*values, -1.0]):
        if not active and v > off:
            active, start, seen_on = True, i, False
        if active and v > on:
            seen_on = True
        if active and not v > off:
            if seen_on:
                runs.append((start, i))
            active = False
    return runs


@PROPERTY
@given(
    st.lists(st.integers(0, 10), min_size=1, max_size=80),
    st.integers(0, 10),
    st.integers(0, 10),
)
def test_hysteresis_matches_state_machine(values, on, off) -> None:
    on, off = on / 10, min(off, on) / 10
    probs = np.asarray(values, dtype=np.float32)[:, None] / 10
    scores = Scores(probs, SEG, ["Speech"])
    events = find_events(scores, PostprocessParams(threshold=on, off_threshold=off))
    got = [(round(r.onset / SEG), round(r.offset / SEG)) for r in events.itertuples()]
    assert got == _reference_hysteresis(probs[:, 0].astype(np.float64), on, off)


@PROPERTY
@given(st.lists(st.floats(0, 1), min_size=1, max_size=50), st.integers(1, 9))
def test_median_filter_matches_scipy(values, width) -> None:
    values = np.asarray(values)
    odd = width if width % 2 else width + 1
    expected = scipy_median(values, size=odd, mode="nearest")
    np.testing.assert_allclose(median_filter(values, width), expected)


@PROPERTY
@given(score_sets(), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_higher_threshold_never_adds_activity(scores, a, b) -> None:
    low, high = sorted((a, b))

    def active_seconds(threshold: float) -> float:
        events = find_events(scores, PostprocessParams(threshold=threshold))
        return float((events["offset"] - events["onset"]).sum())

    assert active_seconds(high) <= active_seconds(low) + 1e-9


def test_worked_example() -> None:
    # 10 segments of one class; hysteresis 0.6/0.3, then merge and min duration
    p = np.array([0.1, 0.4, 0.7, 0.5, 0.2, 0.35, 0.65, 0.2, 0.1, 0.9], dtype=np.float32)
    scores = Scores(p[:, None], SEG, ["Dog"], model_id="cnn", duration=3.1)
    plain = find_events(scores, PostprocessParams(threshold=0.6, off_threshold=0.3))
    np.testing.assert_allclose(
        plain[["onset", "offset"]].to_numpy(), [(0.32, 1.28), (1.6, 2.24), (2.88, 3.1)]
    )
    assert plain["confidence"].tolist() == pytest.approx([0.7, 0.65, 0.9])
    # mean weighted by segment length: the last segment is 0.22 s long
    assert plain["mean_confidence"].tolist() == pytest.approx([(0.4 + 0.7 + 0.5) / 3, 0.5, 0.9])
    merged = find_events(
        scores,
        PostprocessParams(threshold=0.6, off_threshold=0.3, merge_gap=0.4, min_duration=0.5),
    )
    np.testing.assert_allclose(merged[["onset", "offset"]].to_numpy(), [(0.32, 2.24)])
    assert merged["confidence"].tolist() == pytest.approx([0.7])


def test_classes_and_top_k_restrict_labels() -> None:
    probs = np.array([[0.9, 0.8, 0.7, 0.1], [0.9, 0.1, 0.95, 0.2]], dtype=np.float32)
    scores = Scores(probs, SEG, LABELS)
    assert set(find_events(scores, PostprocessParams(classes=["Dog", "Music"]))["label"]) == {"Dog"}
    assert set(find_events(scores, PostprocessParams(top_k=2))["label"]) == {"Speech", "Bark"}
    assert set(
        find_events(scores, PostprocessParams(classes=["Dog", "Music"], top_k=1))["label"]
    ) == {"Dog"}
    with pytest.raises(KeyError, match="panns-sed labels"):
        find_events(scores, PostprocessParams(classes=["Cat"]))


def test_per_class_thresholds_and_off_clipping() -> None:
    probs = np.array([[0.45, 0.45], [0.45, 0.45]], dtype=np.float32)
    scores = Scores(probs, SEG, ["Speech", "Dog"])
    params = PostprocessParams(threshold=0.5, off_threshold=0.3, class_thresholds={"Dog": 0.4})
    assert find_events(scores, params)["label"].tolist() == ["Dog"]
    # a class threshold under the global off threshold: off is clipped to on
    params = PostprocessParams(threshold=0.5, off_threshold=0.45, class_thresholds={"Dog": 0.2})
    assert params.off_threshold_for("Dog") == 0.2


def test_invalid_params_are_rejected() -> None:
    with pytest.raises(ValueError, match="off threshold"):
        PostprocessParams(threshold=0.3, off_threshold=0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        PostprocessParams(threshold=1.5)
    with pytest.raises(ValueError, match="min_duration"):
        PostprocessParams(min_duration=-1)
    with pytest.raises(ValueError, match="top_k"):
        PostprocessParams(top_k=0)


def test_scores_to_events_uses_the_event_schema() -> None:
    probs = np.array([[0.1], [0.8], [0.9], [0.1]], dtype=np.float32)
    scores = Scores(probs, SEG, ["Dog"], model_id="Cnn14_DecisionLevelMax")
    events = scores_to_events(scores, PostprocessParams(threshold=0.5), recording="a.wav")
    assert tuple(events.columns) == EVENT_COLUMNS
    row = events.iloc[0]
    assert (row.recording, row.label, row.source, row.status) == (
        "a.wav",
        "Dog",
        "Cnn14_DecisionLevelMax",
        PROPOSED,
    )
    assert (row.onset, row.offset, row.confidence) == pytest.approx((0.32, 0.96, 0.9))
    empty = scores_to_events(scores, PostprocessParams(threshold=1.0))
    assert tuple(empty.columns) == EVENT_COLUMNS and empty.empty


def test_per_class_median_and_round_trip_through_a_dict() -> None:
    """A class's own median length (calibrated with a model) overrides the global one."""
    probs = np.zeros((20, 2), np.float32)
    probs[5, 0] = probs[5, 1] = 0.9  # one isolated segment in both classes
    probs[10:16, 0] = probs[10:16, 1] = 0.9  # and a six-segment run
    scores = Scores(probs, 0.32, ["a", "b"], model_id="m")
    params = PostprocessParams(threshold=0.5, median_seconds=0.0,
                               class_median_seconds={"b": 0.96})  # 3 segments for b only
    events = find_events(scores, params)
    assert sorted(events[events["label"] == "a"]["onset"].round(2)) == [1.6, 3.2]
    assert sorted(events[events["label"] == "b"]["onset"].round(2)) == [3.2]
    assert params.median_for("a") == 0.0 and params.median_for("b") == 0.96
    again = PostprocessParams.from_dict({**params.to_dict(), "from_a_newer_file": 1})
    assert again == params
    with pytest.raises(ValueError, match="negative"):
        PostprocessParams(class_median_seconds={"a": -1.0})
