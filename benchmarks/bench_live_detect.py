"""How far live detection runs behind a real-time recording (Cnn14_DecisionLevelMax).

Real capture: PortAudio -> ALSA file plugin reading a FIFO that this script feeds at
the real-time pace of a microphone. The recorder writes to disk, the live detector runs
the model on the newest window; we report each result's lag (audio recorded past the
window's end when the result was published) and compute time.

    ALSA_CONFIG_PATH=/usr/share/alsa/alsa.conf:tests/fixtures/asoundrc \
        python benchmarks/bench_live_detect.py --seconds 20 --window 5.12 [--fast]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault(
    "ALSA_CONFIG_PATH", f"/usr/share/alsa/alsa.conf:{ROOT / 'tests' / 'fixtures' / 'asoundrc'}"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--window", type=float, default=5.12)
    parser.add_argument("--arch", default="Cnn14_DecisionLevelMax")
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "reference"))
    from deterministic_weights import deterministic_state_dict

    from panns_core.hub.detector import Detector
    from panns_core.models import build_model
    from panns_core.recording import Recorder
    from panns_core.recording.live import LiveDetector, SegmentPredictor

    model = build_model(args.arch)
    model.load_state_dict(deterministic_state_dict(model.state_dict()))
    predictor = SegmentPredictor(Detector.from_module(model), fast=args.fast)
    rate, block = 32000, 1024
    predictor(np.zeros(round(args.window * rate), np.float32))  # warm-up

    work = Path(tempfile.mkdtemp())
    fifo = work / "mic.fifo"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR)
    fcntl.fcntl(fd, 1031, 1 << 20)
    os.environ["SD_TEST_INFILE"] = str(fifo)
    rec = Recorder(work / "live.wav", device="wavsrc", sample_rate=rate, blocksize=block,
                   ring_seconds=args.window + 5)
    detector = LiveDetector(rec.ring, rate, predictor, window_seconds=args.window)
    rng = np.random.default_rng(0)

    def feed() -> None:  # a microphone: one block every block/rate seconds
        start = time.monotonic()
        for i in range(round(args.seconds * rate / block)):
            os.write(fd, (rng.standard_normal(block) * 3000).astype(np.int16).tobytes())
            time.sleep(max(0.0, start + (i + 1) * block / rate - time.monotonic()))

    rec.start()
    detector.start()
    feeder = threading.Thread(target=feed)
    feeder.start()
    feeder.join()
    time.sleep(0.5)
    detector.stop()
    rec.pause()
    os.close(fd)
    result = rec.stop()
    results = detector.results()
    lags = np.array([r.lag for r in results[2:]])  # skip the start-up windows
    compute = np.array([r.compute_seconds for r in results[2:]])
    # Lag seen by a viewer: result lag + compute time of the *next* result at worst.
    print(json.dumps({
        "arch": args.arch, "fast": args.fast, "precision": predictor.precision,
        "window_s": args.window, "threads": args.threads,
        "recorded_s": round(result.duration, 2), "results": len(results),
        "overflows": result.overflows,
        "lag_median_s": round(float(np.median(lags)), 3), "lag_max_s": round(float(lags.max()), 3),
        "compute_median_s": round(float(np.median(compute)), 3),
        "compute_max_s": round(float(compute.max()), 3),
        "worst_behind_s": round(float(lags.max() + compute.max()), 3),
        "load_avg_1min": os.getloadavg()[0],
    }))


if __name__ == "__main__":
    main()
