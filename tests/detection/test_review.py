"""review_order: the most uncertain proposals first, without Qt."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from panns_core import events as ev
from panns_core.detection.postprocess import PostprocessParams
from panns_core.detection.review import review_order, uncertainty


def _frame(rows):
    frame = ev.make_events(rows)
    frame.insert(0, "id", np.arange(10, 10 + len(frame)))
    return frame


def test_nearest_the_threshold_first_and_only_proposed():
    frame = _frame([
        {"onset": 0.0, "offset": 1, "label": "Dog", "confidence": 0.95, "status": ev.PROPOSED},
        {"onset": 1.0, "offset": 2, "label": "Dog", "confidence": 0.31, "status": ev.PROPOSED},
        {"onset": 2.0, "offset": 3, "label": "Cat", "confidence": 0.60, "status": ev.PROPOSED},
        {"onset": 3.0, "offset": 4, "label": "Cat", "confidence": 0.32, "status": ev.ACCEPTED},
        {"onset": 4.0, "offset": 5, "label": "Cat", "confidence": 0.45, "status": ev.PROPOSED},
        {"onset": 5.0, "offset": 6, "label": "Cat", "status": ev.ADDED},
    ])
    assert review_order(frame, 0.3) == [11, 14, 12, 10]
    # every status, NaN confidence last
    assert review_order(frame, 0.3, statuses=ev.STATUSES) == [11, 13, 14, 12, 10, 15]
    assert review_order(frame, 0.3, statuses=()) == []


def test_per_class_thresholds_from_params():
    frame = _frame([
        {"onset": 0.0, "offset": 1, "label": "Dog", "confidence": 0.50, "status": ev.PROPOSED},
        {"onset": 1.0, "offset": 2, "label": "Cat", "confidence": 0.50, "status": ev.PROPOSED},
    ])
    params = PostprocessParams(threshold=0.3, class_thresholds={"Cat": 0.45})
    assert review_order(frame, params.on_threshold) == [11, 10]
    assert review_order(frame, {"Dog": 0.49, "": 0.1}) == [10, 11]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.sampled_from(ev.STATUSES)), max_size=40),
       st.floats(0.01, 0.99))
def test_order_is_a_sorted_permutation_of_the_proposed(rows, threshold):
    frame = _frame([{"onset": float(i), "offset": i + 1.0, "label": "X", "confidence": c,
                     "status": s} for i, (c, s) in enumerate(rows)])
    ids = review_order(frame, threshold)
    proposed = frame[frame["status"] == ev.PROPOSED]
    assert sorted(ids) == sorted(proposed["id"])
    distance = pd.Series(uncertainty(frame, threshold), index=frame["id"])
    assert np.all(np.diff(distance.loc[ids].to_numpy()) >= 0)
