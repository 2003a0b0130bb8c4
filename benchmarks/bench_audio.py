"""Speed and peak memory of streaming decode + resample of a long file.

    python benchmarks/bench_audio.py [--minutes 60] [--rate 44100] [--channels 2]
                                     [--target 32000] [--workdir DIR] [--whole]

Writes a long FLAC once (noise plus tones, PCM_16) into --workdir (default: a temporary
folder, deleted afterwards), then measures, each in a fresh process so peak RSS is clean:

* decode  - iter_blocks at the file's own rate (decoding and downmix only)
* blocks  - iter_blocks at --target with the detector's chunking (15.36-s blocks every
            10.24 s: 10.24-s chunks with 2.56 s of context on each side)
* whole   - load_audio of the whole file at --target, for contrast (only with --whole)

Peak memory is the process's peak RSS (VmHWM) minus its RSS after imports.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_file(path: Path, minutes: float, rate: int, channels: int) -> None:
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(60 * rate) / rate
    with sf.SoundFile(path, "w", rate, channels, format="FLAC", subtype="PCM_16") as f:
        for m in range(int(np.ceil(minutes))):
            n = int(min(60, (minutes - m) * 60) * rate)
            tone = 0.2 * np.sin(2 * np.pi * (220 + 10 * m) * t[:n])
            block = tone[:, None] + 0.05 * rng.standard_normal((n, channels))
            f.write(block.astype(np.float32))


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: peak only


def _reset_peak() -> None:
    """Reset VmHWM to the current RSS (ru_maxrss is inherited from the parent at fork)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def measure(mode: str, path: str, target: int) -> dict:
    from panns_core.audio import audio_info, iter_blocks, load_audio

    info = audio_info(path)
    _reset_peak()
    base = _status_kb("VmRSS")
    t0 = time.perf_counter()
    samples = blocks = 0
    if mode == "whole":
        x, _ = load_audio(path, target)
        samples, blocks = len(x), 1
        del x
    else:
        rate = None if mode == "decode" else target
        for b in iter_blocks(path, rate, 15.36, 10.24):
            samples += len(b.samples) if b.is_last else round(10.24 * b.sample_rate)
            blocks += 1
    seconds = time.perf_counter() - t0
    return {"mode": mode, "seconds": round(seconds, 2),
            "x_realtime": round(info.duration / seconds, 1), "blocks": blocks,
            "samples_out": samples, "peak_mb": round((_status_kb("VmHWM") - base) / 1024, 1),
            "rss_after_import_mb": round(base / 1024, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--rate", type=int, default=44100)
    p.add_argument("--channels", type=int, default=2)
    p.add_argument("--target", type=int, default=32000)
    p.add_argument("--workdir", type=Path)
    p.add_argument("--whole", action="store_true", help="also time load_audio of it all")
    p.add_argument("--measure", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], args.measure[1], args.target)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        path = work / f"bench_{args.minutes:g}min_{args.rate}_{args.channels}ch.flac"
        if not path.exists():
            t0 = time.perf_counter()
            make_file(path, args.minutes, args.rate, args.channels)
            print(f"wrote {path} ({path.stat().st_size / 1e6:.0f} MB) in "
                  f"{time.perf_counter() - t0:.1f} s")
        modes = ["decode", "blocks"] + (["whole"] if args.whole else [])
        for mode in modes:
            out = subprocess.run([sys.executable, __file__, "--target", str(args.target),
                                  "--measure", mode, str(path)],
                                 check=True, capture_output=True, text=True).stdout
            print(out.strip())


if __name__ == "__main__":
    main()
