"""Training throughput per strategy for a CNN14 SED model on this CPU.

    python benchmarks/bench_train.py [--arch Cnn14_DecisionLevelMax] [--clips 200]

Builds a synthetic project with about ``--clips`` training clips, then:

* ``head``: a whole fine-tuning run (embedding cache once + ``--head-epochs``
  epochs of the output layer + validation each epoch), wall time end to end;
* ``partial`` / ``full``: ``--steps`` optimiser steps of ``--batch`` clips, seconds
  per step and clips per second (the first step is a warm-up and not counted).

The base is the architecture's seeded initialisation (no pretrained weights are
needed to measure speed; the cost is the same). Prints one JSON object per
strategy and a summary table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="Cnn14_DecisionLevelMax")
    parser.add_argument("--clips", type=int, default=200, help="training clips (approx.)")
    parser.add_argument("--clip-seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--head-epochs", type=int, default=30)
    parser.add_argument("--strategies", default="head,partial,full")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    os.environ.setdefault("PANNS_ANNOTATOR_HOME", str(work / "home"))
    from panns_core.training.config import TrainConfig
    from panns_core.training.run import fine_tune
    from panns_core.training.synthetic import make_synthetic_dataset, write_project

    # 5 events per recording and half as many background clips: 7.5 clips per
    # training recording; a quarter of the recordings is held out.
    n_recordings = max(4, round(args.clips / 7.5 / 0.75))
    data = make_synthetic_dataset(work / "audio", n_recordings=n_recordings, duration=10.0)
    project = write_project(data, work / "bench.panns")
    rows = []
    for strategy in args.strategies.split(","):
        steps: list[float] = []
        info: dict = {}

        def progress(event: dict, steps=steps, info=info) -> None:
            if event["event"] == "step":
                steps.append(event["time"])
            elif event["event"] == "start":
                info["clips"] = event["data"]["event_clips"] + event["data"]["background_clips"]
                info["start"] = event["time"]

        if strategy == "head":
            config = TrainConfig(strategy="head", epochs=args.head_epochs, batch_size=16,
                                 clip_seconds=args.clip_seconds, patience=args.head_epochs,
                                 precision=args.precision)  # fmt: skip
        else:
            config = TrainConfig(strategy=strategy, epochs=1, batch_size=args.batch,
                                 clip_seconds=args.clip_seconds, val_fraction=0.0,
                                 samples_per_epoch=args.batch * (args.steps + 1),
                                 precision=args.precision)  # fmt: skip
        t0 = time.perf_counter()
        outcome = fine_tune(project, f"arch:{args.arch}", config, progress=progress,
                            register=False)  # fmt: skip
        wall = time.perf_counter() - t0
        row = {"strategy": strategy, "arch": args.arch, "clips": info.get("clips"),
               "clip_seconds": args.clip_seconds, "precision": args.precision,
               "threads": args.threads, "wall_seconds": round(wall, 2)}  # fmt: skip
        if strategy == "head":
            after = outcome.result.metrics_after or {}
            row.update(epochs=outcome.result.epochs_run, val_f1_after=after.get("event_f1"))
        else:
            per_step = (steps[-1] - steps[0]) / max(1, len(steps) - 1)
            row.update(batch=args.batch, seconds_per_step=round(per_step, 2),
                       clips_per_second=round(args.batch / per_step, 2))  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    for row in rows:
        if row["strategy"] == "head":
            print(f"head     {row['clips']} clips x {row['epochs']} epochs: "
                  f"{row['wall_seconds']:.1f} s end to end")  # fmt: skip
        else:
            print(f"{row['strategy']:<8} {row['clips_per_second']:.2f} clips/s "
                  f"({row['seconds_per_step']:.2f} s per step of {row['batch']})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
