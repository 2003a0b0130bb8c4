"""How far the CPU fast path (int8) moves probabilities and events, on models that mean it.

The deterministic test weights saturate the sigmoid (median probability 0.58, 99th
percentile 0.9995), so their events hinge on 1e-4 differences and say nothing about a
real model. This measures on models whose probabilities are meaningful, without any
download:

* ``cnn14-fitted``: Cnn14_DecisionLevelMax, seeded untrained convolutions, output layer
  fitted to the events of generated training scenes (the fitting of
  ``benchmarks/screenshot.py``, reused);
* ``tinysed``: TinySED trained end to end by ``panns_core.training`` on a generated
  strongly labelled project (Cnn6_DecisionLevelMax did not learn from its random
  initialisation in the few epochs this machine allows, so it is not offered).

Evaluation recordings are other generated scenes (another seed: not the training audio
and not the calibration audio). Per model: max / mean |fp32 - int8| of segment
probabilities, the share of events that match (same label, onset and offset within one
segment) at thresholds 0.3 / 0.5 / 0.7, and wall time against the reference (one fp32
forward pass over each whole recording).

    python benchmarks/fast_agreement.py --models cnn14-fitted tinysed --minutes 4
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# the five synthetic classes under AudioSet names (the fitting writes AudioSet rows)
AUDIOSET_NAMES = {"Low tone": "Hum", "High tone": "Beep, bleep", "Chirp": "Chirp tone",
                  "Noise burst": "White noise", "Clicks": "Clicking"}  # fmt: skip
MODELS = ("cnn14-fitted", "tinysed")
THRESHOLDS = (0.3, 0.5, 0.7)


def scenes(folder: Path, *, n: int, seconds: float, seed: int, prefix: str):
    """Generated strongly labelled scenes (``panns_core.training.synthetic``)."""
    from panns_core.training.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(folder, n_recordings=n, duration=seconds, seed=seed,
                                  events_per_recording=max(5, round(seconds / 2.5)),
                                  prefix=prefix)  # fmt: skip


def cnn14_fitted(work: Path):
    """Cnn14_DecisionLevelMax whose output layer is fitted to 2 minutes of training scenes."""
    import soundfile as sf

    sys.path.insert(0, str(HERE))
    from screenshot import fitted_checkpoint

    from panns_core.hub.checkpoints import load_checkpoint

    path = work / "demo-fitted-cnn14-sed.pth"
    if not path.exists():
        data = scenes(work / "train", n=4, seconds=30.0, seed=0, prefix="train")
        parts, events, offset = [], [], 0.0
        for file in data.recordings:
            x, rate = sf.read(file, dtype="float32")
            rows = data.events[data.events["recording"] == file.name]
            events += [(offset + r.onset, offset + r.offset, AUDIOSET_NAMES[r.label])
                       for r in rows.itertuples()]  # fmt: skip
            parts.append(x)
            offset += len(x) / rate
        joined = work / "train_joined.wav"
        sf.write(joined, np.concatenate(parts), 32000, subtype="PCM_16")
        fitted_checkpoint(work, joined, events)
    return load_checkpoint(path).build_model("cpu")


def trained(work: Path, arch: str, epochs: int):
    """``arch`` trained from its seeded initialisation on a generated project."""
    from panns_core.errors import ModelNotFoundError
    from panns_core.hub.resolve import resolve_checkpoint
    from panns_core.training.config import TrainConfig
    from panns_core.training.run import fine_tune
    from panns_core.training.synthetic import write_project

    name = f"agreement-{arch}"
    try:
        return resolve_checkpoint(name).build_model()
    except ModelNotFoundError:  # not trained yet
        pass
    data = scenes(work / "train", n=12, seconds=10.0, seed=0, prefix=f"train_{arch}")
    project = write_project(data, work / f"train_{arch}.panns")
    config = TrainConfig(strategy="full", epochs=epochs, batch_size=16, clip_seconds=2.0,
                         lr=3e-3, mixup_prob=0.0, spec_augment=False, patience=8,
                         val_fraction=0.25, seed=0, median_seconds=0.3)  # fmt: skip
    outcome = fine_tune(project, f"arch:{arch}", config, name=name)
    print(f"[{arch}] trained: event F1 {outcome.result.metrics_after['event_f1']:.2f}")
    return resolve_checkpoint(name).build_model()


def build(name: str, work: Path):
    if name == "cnn14-fitted":
        return cnn14_fitted(work), None  # 527 AudioSet rows; only the fitted five fire
    return trained(work, "TinySED", epochs=20), None


def measure(model, files: list[Path], labels: list[str] | None) -> dict:
    """fp32 vs int8 (and the whole-file reference's wall time) over ``files``."""
    import torch

    from panns_core.audio import load_audio
    from panns_core.detection.inference import detect
    from panns_core.detection.quantized import int8_model
    from panns_core.detection.scores import Scores
    from panns_core.hub.detector import Detector

    sys.path.insert(0, str(HERE))
    from panns_core.detection.int8_graph import event_match
    from panns_core.detection.postprocess import PostprocessParams, find_events

    t0 = time.perf_counter()
    int8_model(model)  # one-off calibration, reported apart
    calibration = time.perf_counter() - t0
    rate = model.feature_config.sample_rate
    walls = {"reference": 0.0, "fp32": 0.0, "int8": 0.0}
    diffs, matched, total = [], dict.fromkeys(THRESHOLDS, 0), dict.fromkeys(THRESHOLDS, 0)
    probs_all = []
    for file in files:
        x, _ = load_audio(file, sample_rate=rate)
        t0 = time.perf_counter()
        with torch.inference_mode():
            model(torch.from_numpy(x)[None])
        walls["reference"] += time.perf_counter() - t0
        runs = {}
        for mode in ("fp32", "int8"):
            t0 = time.perf_counter()
            runs[mode] = detect(x, Detector.from_module(model, labels), precision=mode,
                                audio_hash="-")
            walls[mode] += time.perf_counter() - t0
        a, b = runs["fp32"].probabilities, runs["int8"].probabilities
        diffs.append(np.abs(a - b))
        probs_all.append(a)
        for threshold in THRESHOLDS:
            params = PostprocessParams(threshold=threshold)
            ev = [find_events(Scores(p, runs["fp32"].segment_seconds, runs["fp32"].labels,
                                     duration=runs["fp32"].duration), params)
                  for p in (a, b)]  # fmt: skip
            n = max(len(ev[0]), len(ev[1]))
            matched[threshold] += round(event_match(ev[0], ev[1], runs["fp32"].segment_seconds) * n)
            total[threshold] += n
    # statistics over the classes the model uses (the fitted CNN14 keeps 522 rows silent)
    probs = np.concatenate(probs_all)
    active = probs.max(axis=0) > 0.05
    diff, probs = np.concatenate(diffs)[:, active].ravel(), probs[:, active].ravel()
    return {
        "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
        "p999_abs_diff": float(np.quantile(diff, 0.999)),
        "prob_median": float(np.median(probs)), "prob_p99": float(np.quantile(probs, 0.99)),
        "events": {str(t): [matched[t], total[t]] for t in THRESHOLDS},
        "wall_s": walls, "calibration_s": calibration,
        "speed_int8_vs_reference": walls["reference"] / walls["int8"],
        "speed_fp32_vs_reference": walls["reference"] / walls["fp32"],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["cnn14-fitted", "tinysed"], choices=MODELS)
    parser.add_argument("--minutes", type=float, default=4.0, help="evaluation audio per model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "panns-fast-agreement")  # fmt: skip
    args = parser.parse_args(argv)
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PANNS_ANNOTATOR_HOME", str(work / "home"))
    import torch

    torch.set_num_threads(args.threads)
    n = max(1, round(args.minutes))
    evaluation = scenes(work / "eval", n=n, seconds=60.0 * args.minutes / n, seed=101,
                        prefix="eval")  # fmt: skip
    results = {}
    for name in args.models:
        model, labels = build(name, work)
        results[name] = measure(model, evaluation.recordings, labels)
        print(name, json.dumps(results[name]), flush=True)
    (work / "agreement.json").write_text(json.dumps(results, indent=1))
    print(markdown(results))
    return 0


def markdown(results: dict) -> str:
    rows = ["| model | median p / p99 | max / mean abs diff | events matched at 0.3 / 0.5 / 0.7 "
            "| int8 speed vs ref | fp32 speed vs ref |", "|---|---|---|---|---|---|"]  # fmt: skip
    for name, r in results.items():
        ev = " / ".join(f"{100 * m / max(t, 1):.1f}% ({m}/{t})" for m, t in r["events"].values())
        rows.append(f"| {name} | {r['prob_median']:.3f} / {r['prob_p99']:.3f} | "
                    f"{r['max_abs_diff']:.3f} / {r['mean_abs_diff']:.4f} | {ev} | "
                    f"{r['speed_int8_vs_reference']:.2f}x | "
                    f"{r['speed_fp32_vs_reference']:.2f}x |")  # fmt: skip
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
