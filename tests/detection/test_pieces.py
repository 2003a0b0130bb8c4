"""Pieces of a long recording (``iter_detect(windows=...)``) put end to end equal the whole
run: the split the archive runner (panns_core.cluster) sends to different processes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import soundfile as sf
import torch
from detect_helpers import TINY_LABELS, deterministic_model, scene, tiny_sed

from panns_core.detection.inference import (
    ChunkPlan,
    ScoreAssembly,
    iter_detect,
    total_samples,
    window_count,
)
from panns_core.hub.detector import Detector


@pytest.fixture(scope="module")
def detector():
    torch.set_num_threads(2)
    with tiny_sed() as arch:
        yield Detector.from_module(deterministic_model(arch, len(TINY_LABELS)), TINY_LABELS)


@pytest.mark.slow
@pytest.mark.parametrize("rate", [32000, 44100])
def test_pieces_end_to_end_equal_the_whole_run(detector, tmp_path, rate):
    path = tmp_path / "long.wav"
    sf.write(path, scene(14.3, rate, seed=3), rate, subtype="FLOAT")
    body = 2.56
    whole = list(iter_detect(path, detector, body_seconds=body, engine="torch"))
    plan = ChunkPlan.for_model(detector, body_seconds=body)
    n = window_count(total_samples(path, detector), plan)
    assert n == len(whole) >= 4
    for cuts in ([0, 1, 3, None], [0, n - 1, None]):
        assembly = ScoreAssembly(detector)
        chunks = []
        for first, stop in itertools.pairwise(cuts):
            piece = list(iter_detect(path, detector, body_seconds=body, engine="torch",
                                     windows=(first, stop)))  # fmt: skip
            assert [c.is_last for c in piece][-1] == (stop is None)
            chunks += piece
        for chunk in chunks:
            assembly.add(chunk)
        assert [c.start_segment for c in chunks] == [c.start_segment for c in whole]
        got, want = assembly.scores(), ScoreAssembly(detector)
        for chunk in whole:
            want.add(chunk)
        # same samples at the file's rate; resampled, a piece's resampler starts a little
        # before it (soxr's warm-up lies in the context, never in kept segments)
        np.testing.assert_allclose(got.probabilities, want.scores().probabilities,
                                   rtol=0, atol=0 if rate == 32000 else 1e-6)
        assert got.duration == want.scores().duration


def test_array_pieces_and_bad_ranges(detector):
    wave = scene(10.0, 32000, seed=4)
    whole = np.concatenate([c.probabilities for c in iter_detect(
        wave, detector, body_seconds=2.56, engine="torch")])  # fmt: skip
    parts = [c.probabilities for w in ((0, 1), (1, None))
             for c in iter_detect(wave, detector, body_seconds=2.56, engine="torch", windows=w)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    with pytest.raises(ValueError, match="windows"):
        list(iter_detect(wave, detector, engine="torch", windows=(3, 2)))
