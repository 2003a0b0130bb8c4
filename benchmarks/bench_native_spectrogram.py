"""Speed of the native-rate spectrogram tiles and of the listening chain.

    python benchmarks/bench_native_spectrogram.py [--seconds 60]

Writes noise files (384 kHz two-channel float WAV, 44.1 kHz stereo 16-bit FLAC) of
``--seconds``, then times: one tile (1024 frames; FFT 1024, 75 % overlap, the defaults),
all tiles of the file in order (what the zoomed-out overview computes), the same with PCEN
and with a log axis; and the listening chain (1/10x time expansion, band-pass of a box,
heterodyne) in seconds of audio per second of CPU. Prints the CPU and the load.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from panns_core.audio.listening import ListeningSettings, render
from panns_core.display.spectrogram import SpectrogramSettings, spectrogram_tile


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def all_tiles(path, settings) -> tuple[int, float]:
    start = time.perf_counter()
    tile = 0
    while len(spectrogram_tile(path, tile, settings)):
        tile += 1
    return tile, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    print(f"{cpu_name()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    rng = np.random.default_rng(0)
    folder = Path(tempfile.mkdtemp(prefix="bench-native-"))
    files = {}
    for rate, name, subtype in ((384000, "bats_384k.wav", "FLOAT"),
                                (44100, "birds_44k.flac", "PCM_16")):
        path = folder / name
        n = int(rate * args.seconds)
        x = (0.1 * rng.standard_normal((n, 2))).astype(np.float32)
        sf.write(path, x, rate, subtype=subtype)
        files[rate] = path
    for rate, path in files.items():
        for label, settings in (("linear dB", SpectrogramSettings()),
                                ("log axis", SpectrogramSettings(scale="log")),
                                ("PCEN", SpectrogramSettings(pcen=True)),
                                ("channel 1", SpectrogramSettings(channel=0))):
            start = time.perf_counter()
            spectrogram_tile(path, 3, settings)
            one = time.perf_counter() - start
            tiles, total = all_tiles(path, settings)
            print(f"{rate / 1000:g} kHz {path.suffix[1:]:4s} {label:9s}: one tile "
                  f"({settings.hop * 1024 / rate:.2f} s of audio) {one * 1000:.0f} ms; "
                  f"{tiles} tiles of {args.seconds:g} s in {total:.2f} s "
                  f"({args.seconds / total:.0f}x real time)")
    x = (0.1 * rng.standard_normal(384000 * 10)).astype(np.float32)
    for label, settings in (("1/10x", ListeningSettings(speed=0.1)),
                            ("band-pass 1x", ListeningSettings(band=(30000.0, 60000.0))),
                            ("heterodyne 1x", ListeningSettings(carrier_hz=40000.0)),
                            ("all three", ListeningSettings(speed=0.1, band=(30e3, 60e3),
                                                            carrier_hz=40000.0))):
        start = time.perf_counter()
        render(x, 384000, settings, block=192000)
        took = time.perf_counter() - start
        print(f"listening chain, 384 kHz, {label:13s}: 10 s of file in {took:.2f} s "
              f"({10 / took:.0f}x real time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
