"""``panns-sed record`` with real capture through the ALSA file plugin."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
import wave

import numpy as np
import soundfile as sf

from panns_core.cli import main

RATE = 16000


def feed_raw(tmp_path, monkeypatch, samples: np.ndarray) -> None:
    path = tmp_path / "in.raw"
    np.concatenate([samples, np.zeros((3 * RATE, *samples.shape[1:]), samples.dtype)]).tofile(
        path
    )
    monkeypatch.setenv("SD_TEST_INFILE", str(path))


def test_record_seconds_writes_exactly_the_fed_samples(tmp_path, monkeypatch, capsys):
    fed = np.random.default_rng(5).integers(-32768, 32768, (RATE * 3, 2), dtype=np.int16)
    feed_raw(tmp_path, monkeypatch, fed)
    out = tmp_path / "take.wav"
    code = main(["record", "--seconds", "1.25", "--out", str(out), "--device", "wavsrc",
                 "--rate", str(RATE), "--channels", "2"])
    assert code == 0
    stdout = capsys.readouterr().out
    assert "Recorded 1.250 s (20000 frames, 16000 Hz, 2 ch, int16)" in stdout
    assert "0 input overflow(s)" in stdout
    got, rate = sf.read(out, dtype="int16", always_2d=True)
    assert rate == RATE
    np.testing.assert_array_equal(got, fed[:20000])


def test_record_float32_to_the_default_device(tmp_path, monkeypatch):
    fed = np.random.default_rng(6).uniform(-1, 1, (RATE * 2, 1)).astype(np.float32)
    feed_raw(tmp_path, monkeypatch, fed)
    out = tmp_path / "take.wav"
    assert main(["record", "--seconds", "0.5", "--out", str(out), "--rate", str(RATE),
                 "--dtype", "float32"]) == 0
    got, _ = sf.read(out, dtype="float32", always_2d=True)
    np.testing.assert_array_equal(got.view(np.int32), fed[:8000].view(np.int32))


def test_record_refuses_to_overwrite_and_names_missing_devices(tmp_path, monkeypatch, capsys):
    fed = np.zeros((RATE, 1), np.int16)
    feed_raw(tmp_path, monkeypatch, fed)
    existing = tmp_path / "keep.wav"
    sf.write(existing, np.ones(100, np.int16), RATE)
    before = existing.read_bytes()
    assert main(["record", "--seconds", "1", "--out", str(existing), "--device", "wavsrc"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert existing.read_bytes() == before
    assert main(["record", "--seconds", "1", "--out", str(tmp_path / "b.wav"),
                 "--device", "USB mic"]) == 1
    err = capsys.readouterr().err
    assert "No input device matches 'USB mic'" in err and "0: wavsrc" in err
    assert "Traceback" not in err
    assert not (tmp_path / "b.wav").exists()
    assert main(["record", "--seconds", "1"]) == 1
    assert "--out FILE" in capsys.readouterr().err


def test_list_devices_shows_inputs_and_rates(capsys):
    assert main(["record", "--list-devices"]) == 0
    out = capsys.readouterr().out
    assert "0: wavsrc [ALSA] 128 ch" in out
    assert "rates: 8000, 16000, 22050, 32000, 44100, 48000, 96000" in out


def test_sigterm_stops_cleanly_and_keeps_every_fed_block(tmp_path):
    """A paced source (FIFO): the child records what we feed; SIGTERM ends it cleanly."""
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR)
    fcntl.fcntl(fd, 1031, 1 << 20)  # F_SETPIPE_SZ
    out = tmp_path / "take.wav"
    child = subprocess.Popen(
        [sys.executable, "-m", "panns_core", "record", "--out", str(out), "--device", "wavsrc",
         "--rate", str(RATE), "--blocksize", "1024"],
        env={**os.environ, "SD_TEST_INFILE": str(fifo)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    rng = np.random.default_rng(7)
    fed = rng.integers(-32768, 32768, (1024 * 12, 1), dtype=np.int16)
    try:
        for block in np.split(fed, 12):
            os.write(fd, block.tobytes())

        def announced() -> int:
            try:
                with wave.open(str(out)) as w:
                    return w.getnframes()
            except (OSError, EOFError, wave.Error):
                return -1

        deadline = time.monotonic() + 60
        while announced() < len(fed):  # the header follows the audio while recording
            assert child.poll() is None and time.monotonic() < deadline, child.stderr.read()
            time.sleep(0.02)
        child.send_signal(signal.SIGTERM)
        summary = child.stdout.readline()  # printed after the file is closed
    finally:
        os.close(fd)  # lets PortAudio's capture thread out of read()
        try:
            child.wait(30)
        finally:
            if child.poll() is None:
                child.kill()
    assert child.returncode == 0, child.stderr.read()
    assert "Recorded 0.768 s (12288 frames" in summary
    got, _ = sf.read(out, dtype="int16", always_2d=True)
    np.testing.assert_array_equal(got, fed)
