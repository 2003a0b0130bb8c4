"""The recording engine with real capture: sounddevice -> PortAudio -> ALSA file plugin.

Two kinds of source (see /work/shared/testing/README.md):
  * a raw file: unpaced, the whole file arrives in milliseconds (bit-exactness tests);
  * a FIFO that the test feeds block by block (``FifoSource``): the capture thread blocks
    in read() until the test writes, so the test decides exactly which frames have
    arrived when it tags, pauses or kills. Each write is one whole PortAudio block (the
    ALSA file plugin reads one period per call and fills a short read with stale bytes).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from capture_feed import FifoSource
from hypothesis import given, settings
from hypothesis import strategies as st

from panns_core.audio.ringbuffer import RingBuffer
from panns_core.errors import AudioError, DeviceError
from panns_core.recording import HotkeyTagger, Recorder, State, TagTracker
from panns_core.recording.levels import LevelMeter, to_float

RATE = 16000
BLOCK = 1024
F_SETPIPE_SZ = 1031


def raw_source(path: Path, samples: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the capture device at a raw file holding ``samples`` then 3 s of silence."""
    pad = np.zeros((3 * RATE, *samples.shape[1:]), dtype=samples.dtype)
    np.concatenate([samples, pad]).tofile(path)
    monkeypatch.setenv("SD_TEST_INFILE", str(path))


@pytest.fixture
def paced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    source = FifoSource(tmp_path / "input.fifo")
    monkeypatch.setenv("SD_TEST_INFILE", str(source.path))
    yield source
    source.close()


def wait_until(predicate, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting")
        time.sleep(0.005)


def wav_header_frames(path: Path) -> int:
    """Frames announced by the header, read by Python's strict ``wave`` module."""
    with wave.open(str(path)) as w:
        return w.getnframes()


# -- bit-exact capture -----------------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 2])
def test_int16_capture_is_bit_exact(tmp_path, monkeypatch, channels):
    fed = np.random.default_rng(1).integers(-32768, 32768, (RATE * 3, channels), dtype=np.int16)
    raw_source(tmp_path / "in.raw", fed, monkeypatch)
    rec = Recorder(tmp_path / "out.wav", device="wavsrc", sample_rate=RATE, channels=channels,
                   max_seconds=2.5)
    rec.start()
    assert rec.wait(10)
    result = rec.stop()
    assert result.error is None and result.reached_limit
    assert result.frames == round(2.5 * RATE) and result.duration == pytest.approx(2.5)
    got, rate = sf.read(result.path, dtype="int16", always_2d=True)
    assert rate == RATE and got.shape == (result.frames, channels)
    np.testing.assert_array_equal(got, fed[: result.frames])
    assert wav_header_frames(result.path) == result.frames
    assert sf.info(str(result.path)).subtype == "PCM_16"


def test_float32_capture_is_bit_exact(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    fed = rng.uniform(-1, 1, (RATE * 2, 1)).astype(np.float32)  # not representable as int16
    raw_source(tmp_path / "in.raw", fed, monkeypatch)
    rec = Recorder(tmp_path / "out.wav", device="wavsrc", sample_rate=RATE, dtype="float32",
                   max_seconds=1.5)
    rec.start()
    assert rec.wait(10)
    result = rec.stop()
    got, _ = sf.read(result.path, dtype="float32", always_2d=True)
    assert sf.info(str(result.path)).subtype == "FLOAT"
    assert got.shape == (24000, 1)
    np.testing.assert_array_equal(got.view(np.int32), fed[:24000].view(np.int32))
    # The ring buffer holds the same audio for live views.
    tail, start = rec.ring.latest(RATE)
    assert start == 24000 - RATE
    np.testing.assert_array_equal(tail, fed[start:24000])


def test_flac_capture_is_bit_exact_and_leaves_no_work_file(tmp_path, monkeypatch):
    fed = np.random.default_rng(3).integers(-32768, 32768, (RATE * 2, 1), dtype=np.int16)
    raw_source(tmp_path / "in.raw", fed, monkeypatch)
    rec = Recorder(tmp_path / "take.flac", device="wavsrc", sample_rate=RATE, max_seconds=1.0)
    rec.start()
    assert rec.wait(10)
    result = rec.stop()
    assert result.path == tmp_path / "take.flac"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.raw", "take.flac"]
    got, _ = sf.read(result.path, dtype="int16", always_2d=True)
    np.testing.assert_array_equal(got, fed[:RATE])


def test_bad_output_names_are_refused(tmp_path):
    with pytest.raises(AudioError, match=r"\.wav or \.flac"):
        Recorder(tmp_path / "x.mp3")
    with pytest.raises(AudioError, match="FLAC cannot hold float"):
        Recorder(tmp_path / "x.flac", dtype="float32")


# -- paced capture: pause, tags, a device that goes quiet ------------------------------
def test_pause_and_resume_drop_exactly_the_paused_blocks(tmp_path, paced):
    rec = Recorder(tmp_path / "out.wav", device="wavsrc", sample_rate=RATE)
    rec.start()
    a = paced.feed(5)
    wait_until(lambda: rec.frames == 5 * BLOCK)
    rec.pause()
    assert rec.state is State.PAUSED
    paced.feed(4)
    wait_until(lambda: rec.captured_frames == 9 * BLOCK)
    assert rec.frames == 5 * BLOCK
    level = rec.level()  # the meter keeps running while paused
    assert -1.5 < level.peak_db <= 0.0 and -7.5 < level.rms_db < -3.5
    rec.resume()
    c = paced.feed(3)
    wait_until(lambda: rec.frames == 8 * BLOCK)
    rec.pause()
    paced.close()  # EOF: the plugin now delivers stale data, which must not be written
    result = rec.stop()
    got, _ = sf.read(result.path, dtype="int16", always_2d=True)
    np.testing.assert_array_equal(got, np.concatenate([a, c]))
    assert result.error is None and result.overflows == 0


def test_live_tags_are_timed_by_the_sample_counter(tmp_path, paced):
    rec = Recorder(tmp_path / "tags.wav", device="wavsrc", sample_rate=RATE)
    rec.start()
    # Wall-clock pauses between the steps would shift wall-clock stamps; they must not
    # change sample-counter stamps.
    paced.feed(10)
    wait_until(lambda: rec.frames == 10 * BLOCK)
    rec.tag_start("Dog")
    time.sleep(0.2)
    paced.feed(5)
    wait_until(lambda: rec.frames == 15 * BLOCK)
    rec.tag_toggle("Bird")
    rec.tag_stop("Dog")
    wait_until(lambda: "Bird" in rec.open_tags)
    assert rec.open_tags == {"Bird": 15 * BLOCK / RATE}
    paced.feed(7)
    wait_until(lambda: rec.frames == 22 * BLOCK)
    rec.pause()  # time stands still while paused: a tag spanning it loses nothing
    paced.feed(2)
    wait_until(lambda: rec.captured_frames == 24 * BLOCK)
    rec.resume()
    paced.feed(1)
    wait_until(lambda: rec.frames == 23 * BLOCK)
    rec.tag_toggle("Bird")
    rec.tag_start("Car")  # still open at stop: closed at the end of the recording
    paced.feed(3)
    wait_until(lambda: rec.frames == 26 * BLOCK)
    rec.pause()
    paced.close()
    result = rec.stop()
    tags = result.tags
    assert list(tags["label"]) == ["Dog", "Bird", "Car"]
    np.testing.assert_array_equal(tags["onset"], np.array([10, 15, 23]) * BLOCK / RATE)
    np.testing.assert_array_equal(tags["offset"], np.array([15, 23, 26]) * BLOCK / RATE)
    assert set(tags["source"]) == {"human"} and set(tags["status"]) == {"added"}
    assert set(tags["recording"]) == {str(result.path)}
    assert tags["confidence"].isna().all()
    assert result.frames == 26 * BLOCK


def test_a_device_that_stops_delivering_is_reported_and_the_audio_kept(tmp_path, paced):
    rec = Recorder(tmp_path / "quiet.wav", device="wavsrc", sample_rate=RATE, stall_seconds=0.5)
    rec.start()
    paced.feed(20)
    wait_until(lambda: rec.frames == 20 * BLOCK)
    assert rec.wait(5), "the stall was not noticed"
    assert isinstance(rec.error, DeviceError)
    message = str(rec.error)
    assert "'wavsrc'" in message and "no audio" in message and "1.28 s is kept" in message
    # The capture thread is stuck in read(): stop() must still return, with the file.
    started = time.monotonic()
    result = rec.stop(close_timeout=0.5)
    assert time.monotonic() - started < 3
    paced.close()  # releases PortAudio's thread
    assert result.error == message
    got, _ = sf.read(result.path, dtype="int16", always_2d=True)
    np.testing.assert_array_equal(got, paced.samples)


# -- missing devices ---------------------------------------------------------------------
def test_missing_devices_say_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(DeviceError, match=r"No input device matches 'Zoom H6'.*wavsrc"):
        Recorder(tmp_path / "a.wav", device="Zoom H6").start()
    with pytest.raises(DeviceError, match=r"no input device with index 42.*--list-devices"):
        Recorder(tmp_path / "a.wav", device=42).start()
    with pytest.raises(DeviceError, match=r"has 128 input channel\(s\); 129 were requested"):
        Recorder(tmp_path / "a.wav", device="wavsrc", channels=129).start()
    # The device exists in the list but cannot be opened (its source is gone).
    monkeypatch.setenv("SD_TEST_INFILE", str(tmp_path / "unplugged.raw"))
    rec = Recorder(tmp_path / "a.wav", device="wavsrc", sample_rate=RATE)
    with pytest.raises(DeviceError, match=r"Cannot open the input device 'wavsrc'.*connected"):
        rec.start()
    assert rec.state is State.IDLE
    assert not (tmp_path / "a.wav").exists()


# -- a full disk -------------------------------------------------------------------------
@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 64 KiB tmpfs. It needs root; CI runs as root and sets PANNS_TESTS_NEED_ROOT=1
    (.ci/run), so there, and anywhere as root, a mount that fails fails the test
    instead of skipping it quietly."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    required = os.environ.get("PANNS_TESTS_NEED_ROOT") == "1"
    if os.geteuid() != 0 or shutil.which("mount") is None:
        if required:
            pytest.fail("the full-disk test must run here (PANNS_TESTS_NEED_ROOT=1) but "
                        "needs root and mount(8) to mount a 64 KiB tmpfs")
        pytest.skip("needs root to mount a 64 KiB tmpfs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode:
        pytest.fail(f"running as root but cannot mount a tmpfs: "
                    f"{done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_keeps_everything_that_fit(tmp_path, monkeypatch, tiny_disk):
    fed = np.random.default_rng(4).integers(-32768, 32768, (RATE * 4, 1), dtype=np.int16)
    raw_source(tmp_path / "in.raw", fed, monkeypatch)
    rec = Recorder(tiny_disk / "full.wav", device="wavsrc", sample_rate=RATE, max_seconds=3.0)
    rec.start()
    assert rec.wait(10)
    assert isinstance(rec.error, AudioError)
    result = rec.stop()
    assert "is full" in result.error and "Free some space" in result.error
    # 64 KiB hold about 2 s of 16-bit mono at 16 kHz: much more than nothing, less than asked.
    assert RATE < result.frames < 3 * RATE
    assert f"{result.duration:.2f} s is kept" in result.error
    got, _ = sf.read(result.path, dtype="int16", always_2d=True)
    assert len(got) == result.frames == wav_header_frames(result.path)
    np.testing.assert_array_equal(got, fed[: len(got)])
    assert rec.ring.total == result.frames


# -- a killed recording process -----------------------------------------------------------
def test_sigkill_during_recording_leaves_all_but_the_last_second(tmp_path, paced):
    out = tmp_path / "killed.wav"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(
        [sys.executable, "-m", "panns_core", "record", "--out", str(out), "--device", "wavsrc",
         "--rate", str(RATE), "--blocksize", str(BLOCK)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        paced.feed(1)
        wait_until(lambda: out.exists() or child.poll() is not None, timeout=60)
        assert child.poll() is None, child.stderr.read().decode()
        # Now feed in real time, like a microphone, for 3 s, and kill without warning.
        block_seconds = BLOCK / RATE
        start = time.monotonic()
        while paced.fed_frames < 3 * RATE:
            paced.feed(1)
            time.sleep(max(0.0, start + (len(paced.fed) - 1) * block_seconds - time.monotonic()))
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
        paced.close()
    assert child.returncode == -signal.SIGKILL
    fed = paced.samples
    announced = wav_header_frames(out)  # what the header says, read strictly
    got, rate = sf.read(out, dtype="int16", always_2d=True)
    assert rate == RATE
    assert len(got) >= announced
    assert len(fed) - RATE <= announced <= len(fed)
    np.testing.assert_array_equal(got[: len(fed)], fed[: len(got)])


# -- pieces ------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    capacity=st.integers(1, 64),
    sizes=st.lists(st.integers(0, 100), max_size=12),
    want=st.integers(0, 80),
    since=st.integers(0, 400),
)
def test_ring_buffer_returns_the_newest_frames_contiguously(capacity, sizes, want, since):
    ring = RingBuffer(capacity, channels=2)
    stream = np.arange(2 * sum(sizes), dtype=np.float32).reshape(-1, 2)
    pos = 0
    for n in sizes:
        ring.push(stream[pos : pos + n])
        pos += n
    assert ring.total == pos
    got, start = ring.latest(want)
    n = min(want, pos, capacity)
    assert start == pos - n
    np.testing.assert_array_equal(got, stream[pos - n : pos])
    got, first = ring.since(since, max_frames=5)
    first_expected = max(since, pos - min(pos, capacity))
    assert first == first_expected
    np.testing.assert_array_equal(got, stream[first_expected : min(pos, first_expected + 5)])


def test_level_meter_reads_a_sine_in_dbfs():
    meter = LevelMeter()
    t = np.arange(RATE) / RATE
    meter.add(to_float((0.5 * 32768 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)))
    level = meter.read()
    assert level.peak_db == pytest.approx(-6.02, abs=0.01)
    assert level.rms_db == pytest.approx(-9.03, abs=0.01)
    assert not level.clipped
    assert meter.read().peak_db == -120.0  # reset after reading


class Taps:
    """Collects what a HotkeyTagger asks for, with a tracker at a frame we set."""

    def __init__(self) -> None:
        self.tracker = TagTracker()
        self.frame = 0

    def tag_start(self, label: str) -> None:
        self.tracker.start(label, self.frame)

    def tag_stop(self, label: str) -> None:
        self.tracker.stop(label, self.frame)


def test_hotkeys_hold_for_the_duration_or_tap_to_start_and_stop():
    now = [0.0]
    taps = Taps()
    keys = HotkeyTagger(taps, hold_seconds=0.4, clock=lambda: now[0])
    keys.press("Dog")  # held for 1 s: an event for as long as the key was down
    now[0], taps.frame = 0.5, 500
    keys.press("Dog")  # auto-repeat is ignored
    now[0], taps.frame = 1.0, 1000
    keys.release("Dog")
    now[0], taps.frame = 2.0, 2000
    keys.press("Bird")  # tapped: runs until the next tap
    now[0] = 2.1
    keys.release("Bird")
    assert keys.running == {"Bird"}
    now[0], taps.frame = 5.0, 5000
    keys.press("Bird")
    now[0] = 5.6
    keys.release("Bird")  # a long second press must not start a new tag
    assert keys.running == set()
    assert taps.tracker.closed == [("Dog", 0, 1000), ("Bird", 2000, 5000)]
    events = taps.tracker.events(1000, recording="r.wav")
    assert list(events["onset"]) == [0.0, 2.0] and list(events["offset"]) == [1.0, 5.0]


# -- live detection ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_sed():
    """A real (small) SED network with deterministic weights: Cnn6_DecisionLevelMax."""
    import torch

    from panns_core.models import build_model

    sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures" / "reference"))
    from deterministic_weights import deterministic_state_dict

    torch.manual_seed(0)
    model = build_model("Cnn6_DecisionLevelMax", classes_num=10)
    model.load_state_dict(deterministic_state_dict(model.state_dict()))
    return model.eval()


@pytest.mark.slow
@pytest.mark.parametrize("rate", [32000, 16000])
def test_live_detection_scores_exactly_the_newest_recorded_audio(tmp_path, paced, small_sed,
                                                                  rate):
    from panns_core.audio import resample
    from panns_core.hub.detector import Detector
    from panns_core.recording.live import LiveDetector, SegmentPredictor

    predictor = SegmentPredictor(Detector.from_module(small_sed))
    rec = Recorder(tmp_path / "live.wav", device="wavsrc", sample_rate=rate, ring_seconds=2.0)
    detector = LiveDetector(rec.ring, rate, predictor, window_seconds=0.96)
    seg = detector.segment_frames
    assert seg == 5120 * rate // 32000
    rec.start()
    detector.start()
    try:
        fed_blocks = 0
        for step in range(8):  # 1.28 s of audio, a few blocks at a time, while it runs
            paced.feed(5)
            fed_blocks += 5
            wait_until(lambda n=fed_blocks: rec.frames == n * BLOCK)
            time.sleep(0.02 * (step % 3))
        final_end = rec.frames // seg * seg
        # a liveness bound, not a speed test: generous for a slow, shared machine
        deadline = time.monotonic() + 120
        results = []
        while not results or results[-1].end < final_end / rate:
            assert time.monotonic() < deadline, "live detection never caught up"
            results += detector.results()
            time.sleep(0.01)
    finally:  # never leave a stream or thread running (PortAudio crashes at exit)
        detector.stop()
        rec.pause()
        paced.close()
        result = rec.stop()
    assert detector.error is None
    audio, _ = sf.read(result.path, dtype="float32", always_2d=True)
    assert len(results) >= 2
    for scores in results:
        first, end = round(scores.start * rate), round(scores.end * rate)
        assert first % seg == 0 and end % seg == 0
        assert 1 <= (end - first) // seg <= 6 and scores.probabilities.shape[1] == 10
        # The same audio, from the file on disk, through the same model: the same numbers.
        mono = audio[first:end, 0]
        if rate != 32000:
            mono = resample(mono, rate, 32000)
        expected = predictor(mono)[: (end - first) // seg]
        np.testing.assert_allclose(scores.probabilities, expected, rtol=1e-5, atol=1e-6)
        assert scores.lag >= 0 and scores.compute_seconds > 0
    assert results[-1].end == final_end / rate
    assert any(len(s.probabilities) == 6 for s in results)  # full windows once enough audio


def test_live_log_mel_matches_librosa_filters_and_finds_a_tone():
    import librosa

    from panns_core.display.mel import LiveLogMel, mel_filterbank

    ours = mel_filterbank(32000, 1024, 64, 50, 14000)
    theirs = librosa.filters.mel(sr=32000, n_fft=1024, n_mels=64, fmin=50, fmax=14000)
    np.testing.assert_allclose(ours, theirs, atol=1e-7)
    mel = LiveLogMel(32000)
    t = np.arange(32000) / 32000
    spec = mel(np.sin(2 * np.pi * 1000 * t).astype(np.float32))
    assert spec.shape == (1 + (32000 - mel.n_fft) // mel.hop, 64)
    centres = librosa.mel_frequencies(66, fmin=50, fmax=14000)[1:-1]
    assert spec.mean(axis=0).argmax() == np.argmin(np.abs(centres - 1000))


def test_next_recording_path_never_reuses_a_name(tmp_path: Path) -> None:
    from panns_core.recording.writer import next_recording_path

    folder = tmp_path / "new" / "recordings"
    first = next_recording_path(folder)
    assert folder.is_dir() and first.parent == folder and first.suffix == ".wav"
    first.touch()
    second = next_recording_path(folder)
    assert second != first and not second.exists()
    assert second.name.startswith(first.stem)
