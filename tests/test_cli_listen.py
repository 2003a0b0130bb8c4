"""``panns-sed listen``: time-expanded, band-passed and heterodyned copies, measured."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from panns_core.cli import main

SR = 384000


@pytest.fixture
def bats(tmp_path):
    t = np.arange(int(SR * 0.5)) / SR
    x = np.stack([0.5 * np.sin(2 * np.pi * 40000 * t) + 0.2 * np.sin(2 * np.pi * 90000 * t),
                  0.3 * np.sin(2 * np.pi * 25000 * t)], axis=1)
    path = tmp_path / "bats.wav"
    sf.write(path, x.astype(np.float32), SR, subtype="FLOAT")
    return path


def peak_hz(path) -> tuple[float, np.ndarray, np.ndarray, int]:
    y, rate = sf.read(path, dtype="float64")
    middle = y[len(y) // 8: -len(y) // 8]
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle))))
    freqs = np.fft.rfftfreq(len(middle), 1 / rate)
    return float(freqs[np.argmax(spectrum)]), freqs, spectrum, rate


def test_listen_writes_what_the_player_plays(bats, tmp_path, capsys):
    slow = tmp_path / "slow.wav"
    assert main(["listen", str(bats), "--speed", "0.1", "--channel", "1",
                 "--out", str(slow)]) == 0
    hz, freqs, spectrum, rate = peak_hz(slow)
    assert rate == 48000 and sf.info(slow).duration == pytest.approx(5.0, abs=0.01)
    assert hz == pytest.approx(4000, abs=1)
    # the band of the 90 kHz call only, at 1/10: 9 kHz, the 40 kHz tone gone
    band = tmp_path / "band.flac"
    assert main(["listen", str(bats), "--speed", "0.1", "--channel", "1", "--band", "80000",
                 "100000", "--out", str(band)]) == 0
    hz, freqs, spectrum, _ = peak_hz(band)
    assert hz == pytest.approx(9000, abs=1)
    assert spectrum[np.abs(freqs - 4000) < 5].max() < spectrum.max() * 1e-2
    # heterodyne of channel 2 (25 kHz) with a 23 kHz carrier: 2 kHz
    het = tmp_path / "het.wav"
    assert main(["listen", str(bats), "--heterodyne", "23000", "--channel", "2",
                 "--out", str(het)]) == 0
    assert peak_hz(het)[0] == pytest.approx(2000, abs=2)
    capsys.readouterr()


@pytest.mark.parametrize("extra, message", [
    (["--speed", "0.01"], "1/20x"),
    (["--channel", "0"], "counted from 1"),
    (["--band", "9000", "100"], "low < high"),
])
def test_listen_refuses_what_it_cannot_do(bats, tmp_path, capsys, extra, message):
    code = main(["listen", str(bats), *extra, "--out", str(tmp_path / "x.wav")])
    err = capsys.readouterr().err
    assert code == 1 and message in err and "Traceback" not in err


def test_listen_keeps_an_existing_file(bats, tmp_path, capsys):
    out = tmp_path / "x.wav"
    out.write_bytes(b"mine")
    assert main(["listen", str(bats), "--out", str(out)]) == 1
    assert "--force" in capsys.readouterr().err and out.read_bytes() == b"mine"
