"""Chunked detection equals one pass over the whole waveform; streaming, progress, cancel."""

from __future__ import annotations

import itertools
import threading
import tracemalloc
from dataclasses import replace

import numpy as np
import pytest
import torch
from detect_helpers import (
    REFERENCE,
    TINY_LABELS,
    deterministic_model,
    scene,
    single_pass_framewise,
    tiny_sed,
    write_scene,
)

from panns_core.detection.device import choose_device, precision_name, set_threads
from panns_core.detection.engines import select_engine
from panns_core.detection.inference import ChunkPlan, detect, detect_single_pass, iter_detect
from panns_core.detection.scores import ScoreCache
from panns_core.errors import AudioError, Cancelled, CheckpointError, DeviceError
from panns_core.hub.detector import Detector


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(2)
    with tiny_sed() as arch:
        yield Detector.from_module(deterministic_model(arch, len(TINY_LABELS)), TINY_LABELS)


# lengths that are not a multiple of anything, plus exact window/segment edges
LENGTHS = [0.05, 0.3, 7.3, 10.24, 15.37, 41.0001, 60.0]


@pytest.mark.parametrize("seconds", LENGTHS)
def test_chunked_equals_single_pass(tiny, seconds) -> None:
    x = scene(seconds, seed=int(seconds * 100))
    reference = single_pass_framewise(tiny.module, x)
    # short windows (5.12 s kept + 2 x 1.92 s context) so most lengths take many chunks
    scores = detect(x, tiny, body_seconds=5.12, batch_size=3)
    assert scores.duration == pytest.approx(len(x) / 32000)
    assert scores.segment_seconds == pytest.approx(0.32)
    framewise = scores.framewise(0.01)
    assert framewise.shape == reference.shape
    assert np.abs(framewise - reference).max() <= 1e-5  # the issue asks for <= 1e-3
    # the scores are the model's segments, not the expanded frames
    single = detect_single_pass(x, tiny)
    assert scores.n_segments == single.n_segments
    np.testing.assert_allclose(scores.probabilities, single.probabilities, atol=1e-5)


def test_window_geometry_is_segment_aligned(tiny) -> None:
    plan = ChunkPlan.for_model(tiny, body_seconds=5.12)
    assert plan.segment_samples == 10240
    assert plan.context_segments == 6  # 1.92 s
    assert plan.window_samples == (16 + 12) * 10240
    chunks = list(iter_detect(scene(40.0), tiny, body_seconds=5.12, batch_size=2))
    # the first chunk keeps its body and right context, the others their body; the last
    # window (starting at segment 112) runs to the end: contiguous, every segment once
    assert [c.start_segment for c in chunks] == [0, 22, 38, 54, 70, 86, 102, 118]
    for a, b in itertools.pairwise(chunks):
        assert b.start_segment == a.start_segment + len(a.probabilities)
    assert sum(len(c.probabilities) for c in chunks) == 40 * 100 // 32
    assert chunks[-1].is_last and chunks[-1].recording_seconds == pytest.approx(40.0)
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_file_source_is_streamed_and_matches_array(tiny, tmp_path) -> None:
    path = write_scene(tmp_path / "rec.wav", 33.3)
    from panns_core.audio import load_audio

    x, _ = load_audio(path)
    from_file = detect(path, tiny, body_seconds=5.12)
    from_array = detect(x, tiny, body_seconds=5.12)
    np.testing.assert_array_equal(from_file.probabilities, from_array.probabilities)
    assert from_file.duration == from_array.duration
    from panns_core.audio import file_sha256

    assert from_file.audio_hash == file_sha256(path)


def test_other_sample_rate_is_resampled(tiny, tmp_path) -> None:
    path = write_scene(tmp_path / "rec44.wav", 21.7, sample_rate=44100, seed=3)
    from panns_core.audio import load_audio

    x, rate = load_audio(path, sample_rate=32000)
    assert rate == 32000
    reference = single_pass_framewise(tiny.module, x)
    scores = detect(path, tiny, body_seconds=5.12)
    assert np.abs(scores.framewise(0.01) - reference).max() <= 1e-3
    # an in-memory array at its own rate is resampled the same way
    raw, raw_rate = load_audio(path)
    assert raw_rate == 44100
    from_array = detect(raw, tiny, sample_rate=44100, body_seconds=5.12)
    assert np.abs(from_array.probabilities - scores.probabilities).max() <= 1e-3


@pytest.mark.slow
def test_long_file_never_held_whole(tiny, tmp_path) -> None:
    """A 4-minute file: numpy never holds more than a few windows of it."""
    import soundfile as sf

    seconds, rate = 240.0, 32000
    path = tmp_path / "long.wav"
    with sf.SoundFile(path, "w", rate, 1, "PCM_16") as handle:
        for i in range(int(seconds // 30)):
            handle.write(scene(30.0, seed=i))
    whole_bytes = seconds * rate * 4  # the decoded float32 recording: 31 MB
    fractions = []
    # the engine is built once per model (the onnxruntime export and its probe run), not
    # per recording: build it before measuring what a recording costs
    engine = select_engine(tiny, "cpu")
    tracemalloc.start()
    try:
        scores = detect(
            path,
            tiny,
            engine=engine,
            body_seconds=20.48,
                        progress=lambda f, _c: fractions.append(f),
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert scores.n_segments == int(seconds / 0.32)
    assert peak < whole_bytes / 2, f"numpy peak {peak / 1e6:.1f} MB"
    assert len(fractions) > 10 and fractions == sorted(fractions) and fractions[-1] == 1.0


def test_progress_reports_every_chunk(tiny) -> None:
    seen = []
    scores = detect(
        scene(30.0), tiny, body_seconds=5.12,
        progress=lambda fraction, chunk: seen.append((fraction, chunk)),
    )  # fmt: skip
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and 0 < fractions[0] < 1
    stitched = np.concatenate([c.probabilities for _, c in seen])
    np.testing.assert_array_equal(stitched, scores.probabilities)
    assert seen[1][1].start == pytest.approx(seen[0][1].end)


def test_cancel_stops_detection(tiny) -> None:
    cancel = threading.Event()
    calls = []

    def progress(fraction, chunk):
        calls.append(fraction)
        cancel.set()

    with pytest.raises(Cancelled):
        detect(scene(40.0), tiny, body_seconds=5.12,
               progress=progress, cancel=cancel)  # fmt: skip
    assert len(calls) == 1
    gen = iter_detect(scene(40.0), tiny, body_seconds=5.12)
    first = next(gen)
    gen.close()  # a GUI may just stop iterating
    assert first.start_segment == 0


def test_cache_hit_skips_the_model(tiny, tmp_path, app_home) -> None:
    path = write_scene(tmp_path / "c.wav", 12.0)
    first = detect(path, replace(tiny, model_id="tiny@1"), cache=True)
    cancel = threading.Event()
    cancel.set()  # running the model now would raise Cancelled
    again = detect(path, replace(tiny, model_id="tiny@1"), cache=True, cancel=cancel)
    np.testing.assert_array_equal(again.probabilities, first.probabilities)
    assert ScoreCache().get(first.audio_hash, "tiny@1") is not None
    with pytest.raises(Cancelled):  # another model id is another cache entry
        detect(path, replace(tiny, model_id="tiny@2"), cache=True, cancel=cancel)


def test_fast_path_is_close(tiny) -> None:
    from panns_core.detection.engines import fast_cpu_choice
    from panns_core.detection.quantized import cpu_has_native_bf16

    x = scene(12.0)
    exact = detect(x, tiny)
    if fast_cpu_choice(tiny) == "fp32":  # nothing beats exact here: it says so
        with pytest.warns(UserWarning, match="no path faster than exact"):
            fast = detect(x, tiny, fast=True)
    else:
        fast = detect(x, tiny, fast=True)
    assert exact.precision == "fp32"
    # fast=True runs what measured fastest on this CPU and kept the events (int8 or
    # bf16), or exact itself; both stay available when forced
    assert fast.precision == fast_cpu_choice(tiny) in ("bf16", "int8", "fp32")
    if fast.precision == "fp32":
        assert np.abs(fast.probabilities - exact.probabilities).max() <= 1e-5
    else:
        assert 0 < np.abs(fast.probabilities - exact.probabilities).max() < 0.1
    reduced = "bf16" if cpu_has_native_bf16() else "int8"
    forced = detect(x, tiny, precision=reduced)
    assert forced.precision == reduced
    diff = np.abs(forced.probabilities - exact.probabilities)
    assert 0 < diff.max() < 0.1 and diff.mean() < 0.02
    # the model itself is left as it was: fp32 again gives the exact result
    np.testing.assert_array_equal(detect(x, tiny).probabilities,
                                  exact.probabilities)  # fmt: skip


def test_bad_inputs(tiny, tmp_path) -> None:
    with pytest.raises(AudioError, match="empty"):
        detect(np.zeros(0, np.float32), tiny)
    with pytest.raises(AudioError):
        detect(tmp_path / "missing.wav", tiny)
    (tmp_path / "junk.wav").write_bytes(b"not audio at all" * 100)
    with pytest.raises(AudioError):
        detect(tmp_path / "junk.wav", tiny)
    with pytest.raises(CheckpointError, match="labels"):
        Detector.from_module(tiny.module, ["just one"])


def test_tagging_model_is_refused() -> None:
    tagger = Detector.from_module(deterministic_model("Cnn6"))
    with pytest.raises(CheckpointError, match="tagging model"):
        detect(scene(1.0), tagger)


def test_device_choice_and_threads() -> None:
    assert choose_device(None).type in ("cuda", "mps", "cpu")
    assert choose_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="--device"):
            choose_device("cuda")
    with pytest.raises(DeviceError, match="Unknown"):
        choose_device("tpu9")
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1
        with pytest.raises(DeviceError):
            set_threads(0)
    finally:
        torch.set_num_threads(before)
    assert precision_name(torch.device("cpu"), False) == "fp32"
    assert precision_name(torch.device("cpu"), True) in ("bf16", "fp32")


@pytest.mark.slow
def test_cnn14_chunked_matches_golden_reference() -> None:
    """Cnn14_DecisionLevelMax: chunked detection reproduces the reference implementation."""
    torch.set_num_threads(2)
    module = deterministic_model("Cnn14_DecisionLevelMax")
    model = Detector.from_module(module)
    golden = np.load(REFERENCE / "Cnn14_DecisionLevelMax__32k_10s.npz")
    scores = detect(golden["input"], model, body_seconds=2.56)  # 4 windows
    assert np.abs(scores.framewise(0.01) - golden["framewise_output"]).max() <= 1e-4
    # an odd length spanning several windows against our own single pass
    x = scene(13.37, seed=7)
    chunked = detect(x, model, body_seconds=5.12, batch_size=2)
    assert np.abs(chunked.framewise(0.01) - single_pass_framewise(module, x)).max() <= 1e-3
