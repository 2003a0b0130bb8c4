"""Training throughput per strategy for a CNN14 SED model on this CPU.

    python benchmarks/bench_train.py [--arch Cnn14_DecisionLevelMax] [--clips 200]

Builds a synthetic project (10-s recordings with 5 events of 0.4-1.5 s each) with at
least ``--clips`` training clips of ``--clip-seconds`` (5 s: an event with context),
then:

* ``head``: a whole fine-tuning run (one embedding pass per recording, cached on
  disk, + ``--head-epochs`` epochs of the output layer on the cached tensors +
  validation each epoch), wall time end to end, then the same run again with the
  embedding cache warm (``head (cached)``). ``--precision int8`` runs the embedding
  pass on the int8 CPU fast path;
* ``partial`` / ``full``: ``--steps`` optimiser steps of ``--batch`` clips, seconds
  per step and clips per second (the first step is a warm-up and not counted).

The base is the architecture's seeded initialisation (no pretrained weights are
needed to measure speed; the cost is the same). Prints one JSON object per
strategy and a summary table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="Cnn14_DecisionLevelMax")
    parser.add_argument("--clips", type=int, default=200, help="training clips (at least)")
    parser.add_argument("--clip-seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--head-epochs", type=int, default=30)
    parser.add_argument("--strategies", default="head,partial,full")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "int8"))
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    os.environ.setdefault("PANNS_ANNOTATOR_HOME", str(work / "home"))
    from panns_core.training.config import TrainConfig
    from panns_core.training.run import fine_tune
    from panns_core.training.synthetic import make_synthetic_dataset, write_project

    # 5 event clips per training recording (10-s recordings with 5 events leave few
    # event-free 5-s stretches for background clips); a quarter is held out.
    n_recordings = max(4, math.ceil(args.clips / 5 / 0.75))
    data = make_synthetic_dataset(work / "audio", n_recordings=n_recordings, duration=10.0)
    project = write_project(data, work / "bench.panns")
    rows = []
    clock = [0.0]
    strategies = args.strategies.split(",")
    if "head" in strategies:  # a second head run finds the embeddings in the cache
        strategies.insert(strategies.index("head") + 1, "head (cached)")
    for strategy in strategies:
        steps: list[float] = []
        info: dict = {}

        def progress(event: dict, steps=steps, info=info) -> None:
            if event["event"] == "step":
                steps.append(event["time"])
            elif event["event"] == "start":
                info["clips"] = event["data"]["event_clips"] + event["data"]["background_clips"]
                info["start"] = time.perf_counter() - clock[0]
            elif event["event"] == "epoch":
                info.setdefault("epoch_seconds", []).append(event["seconds"])

        if strategy.startswith("head"):
            config = TrainConfig(strategy="head", epochs=args.head_epochs, batch_size=16,
                                 clip_seconds=args.clip_seconds, patience=args.head_epochs,
                                 precision=args.precision)  # fmt: skip
        else:
            config = TrainConfig(strategy=strategy, epochs=1, batch_size=args.batch,
                                 clip_seconds=args.clip_seconds, val_fraction=0.0,
                                 samples_per_epoch=args.batch * (args.steps + 1),
                                 precision="fp32" if args.precision == "int8"
                                 else args.precision)  # fmt: skip
        t0, c0 = time.perf_counter(), time.process_time()
        clock[0] = t0
        outcome = fine_tune(project, f"arch:{args.arch}", config, progress=progress,
                            register=False)  # fmt: skip
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        row = {"strategy": strategy, "arch": args.arch, "clips": info.get("clips"),
               "recordings": n_recordings, "clip_seconds": args.clip_seconds,
               "precision": config.precision, "threads": args.threads,
               "wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
               "load_average": round(os.getloadavg()[0], 2)}  # fmt: skip
        if strategy.startswith("head"):
            after = outcome.result.metrics_after or {}
            per_epoch = info.get("epoch_seconds") or [0.0]
            row.update(epochs=outcome.result.epochs_run, val_f1_after=after.get("event_f1"),
                       prepare_seconds=round(info["start"], 2),
                       epoch_seconds=round(sum(per_epoch) / len(per_epoch), 3))  # fmt: skip
        else:
            per_step = (steps[-1] - steps[0]) / max(1, len(steps) - 1)
            row.update(batch=args.batch, seconds_per_step=round(per_step, 2),
                       clips_per_second=round(args.batch / per_step, 2))  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    for row in rows:
        if row["strategy"].startswith("head"):
            print(f"{row['strategy']:<14} {row['clips']} clips x {row['epochs']} epochs "
                  f"({row['precision']}): {row['wall_seconds']:.1f} s end to end "
                  f"({row['cpu_seconds']:.1f} CPU s; model + embeddings "
                  f"{row['prepare_seconds']:.1f} s, {row['epoch_seconds']:.3f} s per epoch), "
                  f"val event F1 {row['val_f1_after']}")  # fmt: skip
        else:
            print(f"{row['strategy']:<8} {row['clips_per_second']:.2f} clips/s "
                  f"({row['seconds_per_step']:.2f} s per step of {row['batch']})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
