"""Detection speed, memory and agreement: panns_core.detection.inference against the reference way.

The reference way is what panns_inference does: read the whole file, one forward pass of
Cnn14_DecisionLevelMax over the whole waveform, framewise output. Ours is
:func:`panns_core.detection.inference.detect` (streamed, segment-aligned overlapping chunks), in
exact fp32 and with ``fast=True``. Same weights (deterministic, from the reference
fixtures: no pretrained file can be downloaded here), same CPU, same thread count.

Each case runs in its own subprocess so its peak RSS (``ru_maxrss``) is its own. Results
go to ``<workdir>/results.json`` and a markdown table is printed.

    python benchmarks/bench_detect.py --minutes 1 10 60 --threads 2
    python benchmarks/bench_detect.py --minutes 1 --modes reference fp32   # quick look
    python benchmarks/bench_detect.py --agreement-models cnn14-fitted tinysed --minutes 3

The reference is not run where it would need more memory than ``--reference-max-gb``
(one pass over 60 minutes needs about 19 GB); its row is then extrapolated linearly
from the measured lengths and marked as such.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ARCH = "Cnn14_DecisionLevelMax"
MODES = ("reference", "fp32", "fast", "bf16", "int8")
RATE = 32000
ROOT = Path(__file__).resolve().parents[1]
REFERENCE_WEIGHTS = ROOT / "tests" / "fixtures" / "reference" / "deterministic_weights.py"


# -- inputs --------------------------------------------------------------------------------
def write_recording(path: Path, minutes: float, seed: int = 0) -> Path:
    """A synthetic scene (noise, tone bursts, chirps, clicks) written block by block."""
    import soundfile as sf

    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    block = 60 * RATE
    tmp = path.with_suffix(".part.wav")
    with sf.SoundFile(tmp, "w", RATE, 1, "PCM_16") as handle:
        for _ in range(round(minutes)):
            t = np.arange(block) / RATE
            x = 0.02 * rng.standard_normal(block)
            for start in rng.uniform(0, 59, 25):
                on = (t >= start) & (t < start + rng.uniform(0.2, 2.0))
                f0 = rng.uniform(200, 4000)
                x[on] += rng.uniform(0.05, 0.4) * np.sin(2 * np.pi * f0 * t[on] * (1 + 0.2 * t[on]))
            for click in rng.integers(0, block - 200, 30):
                x[click : click + 100] += rng.uniform(0.2, 0.9)
            handle.write(np.clip(x, -1, 1).astype(np.float32))
            del t, x
    os.replace(tmp, path)
    return path


def write_checkpoint(path: Path) -> Path:
    import importlib.util

    from panns_core.hub.checkpoints import save_checkpoint
    from panns_core.labels import audioset_labels
    from panns_core.models import architecture_spec, build_model

    if path.exists():
        return path
    spec = importlib.util.spec_from_file_location("deterministic_weights", REFERENCE_WEIGHTS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = build_model(ARCH)
    state = module.deterministic_state_dict(model.state_dict())
    save_checkpoint(path, state, architecture=ARCH,
                    feature_config=architecture_spec(ARCH).feature_config,
                    labels=audioset_labels().names)  # fmt: skip
    return path


# -- one case (child process) --------------------------------------------------------------
def run_case(mode: str, wav: Path, ckpt: Path, threads: int, result: Path) -> None:
    import torch

    from panns_core.hub.checkpoints import load_checkpoint

    torch.set_num_threads(threads)
    checkpoint = load_checkpoint(ckpt)
    model = checkpoint.build_model("cpu")
    del checkpoint
    wall, cpu = time.perf_counter(), time.process_time()
    if mode == "reference":
        from panns_core.audio import load_audio

        x, _ = load_audio(wav, sample_rate=RATE)
        with torch.inference_mode():
            out = model(torch.from_numpy(x)[None])
        # the reference returns framewise output; its segments are every 32nd frame
        probs = out["framewise_output"][0, ::32].numpy()
        probs = probs[: out["segmentwise_output"].shape[1]]
        duration, precision = len(x) / RATE, "fp32"
        del out, x
    else:
        from panns_core.detection.inference import detect

        forced = mode if mode in ("bf16", "int8") else None
        from panns_core.hub.detector import Detector

        scores = detect(wav, Detector.from_module(model), fast=(mode == "fast"),
                        precision=forced, audio_hash="-")  # fmt: skip
        probs, duration, precision = scores.probabilities, scores.duration, scores.precision
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    np.save(result.with_suffix(".npy"), probs.astype(np.float32))
    result.write_text(json.dumps({
        "mode": mode, "wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak_kb / 1024,
        "duration_s": duration, "threads": threads, "segments": len(probs),
        "precision": precision,
    }))  # fmt: skip


# -- comparison ----------------------------------------------------------------------------
def events_of(probs: np.ndarray, duration: float, threshold: float):
    from panns_core.detection.postprocess import PostprocessParams, find_events
    from panns_core.detection.scores import Scores
    from panns_core.labels import audioset_labels

    scores = Scores(probs, 0.32, audioset_labels().names, duration=duration)
    return find_events(scores, PostprocessParams(threshold=threshold))


def event_match(ref, got, tolerance: float = 0.32) -> float:
    """Share of events (of the larger set) matched one-to-one: same label, onset and
    offset within ``tolerance`` seconds (one segment)."""
    if not len(ref) and not len(got):
        return 1.0
    matched = 0
    for label, group in ref.groupby("label"):
        candidates = got[got["label"] == label]
        used = np.zeros(len(candidates), bool)
        on, off = candidates["onset"].to_numpy(), candidates["offset"].to_numpy()
        for row in group.itertuples():
            ok = (~used) & (np.abs(on - row.onset) <= tolerance) & (
                np.abs(off - row.offset) <= tolerance
            )
            if ok.any():
                used[np.flatnonzero(ok)[0]] = True
                matched += 1
    return matched / max(len(ref), len(got))


# -- driver --------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    parser.add_argument("--modes", nargs="+", default=["reference", "fp32", "fast"],
                        choices=MODES, help="fast: fast=True; bf16, int8: forced")  # fmt: skip
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "panns-bench-detect")  # fmt: skip
    parser.add_argument("--reference-max-gb", type=float, default=8.0,
                        help="skip (extrapolate) reference runs expected to need more")  # fmt: skip
    parser.add_argument("--slow-max-minutes", type=float, default=1.0,
                        help="skip forced bf16 above this length (10x slower on AVX2)")  # fmt: skip
    parser.add_argument("--agreement-models", nargs="+", default=[],
                        choices=("cnn14-fitted", "tinysed"),
                        help="instead: fp32 vs int8 on models with meaningful probabilities "
                             "(benchmarks/fast_agreement.py)")  # fmt: skip
    parser.add_argument("--child", nargs=4, metavar=("MODE", "WAV", "CKPT", "RESULT"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args(argv)
    if args.child:
        mode, wav, ckpt, result = args.child
        run_case(mode, Path(wav), Path(ckpt), args.threads, Path(result))
        return 0

    if args.agreement_models:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from fast_agreement import main as agreement

        minutes = str(args.minutes[0]) if args.minutes != [1, 10, 60] else "3"
        return agreement(["--models", *args.agreement_models, "--minutes", minutes,
                          "--threads", str(args.threads)])  # fmt: skip
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    ckpt = write_checkpoint(work / f"{ARCH}_deterministic.pth")
    results_path = work / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for minutes in args.minutes:
        wav = write_recording(work / f"scene_{minutes:g}min.wav", minutes, seed=int(minutes))
        for mode in args.modes:
            key = f"{minutes:g}/{mode}"
            expected_gb = 0.32 * minutes + 0.6  # ~19 GB per hour of activations + model
            if mode == "reference" and expected_gb > args.reference_max_gb:
                print(f"[{key}] skipped: the reference would need about {expected_gb:.0f} GB")
                continue
            if mode == "bf16" and minutes > args.slow_max_minutes:
                print(f"[{key}] skipped (--slow-max-minutes)")
                continue
            out = work / f"case_{minutes:g}_{mode}.json"
            cmd = [sys.executable, __file__, "--threads", str(args.threads),
                   "--child", mode, str(wav), str(ckpt), str(out)]  # fmt: skip
            print(f"[{key}] running ...", flush=True)
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                results[key] = {"mode": mode, "error": proc.stderr.strip().splitlines()[-1:]}
                print(f"[{key}] failed: {results[key]['error']}", flush=True)
            else:
                results[key] = json.loads(out.read_text())
                print(f"[{key}] {results[key]}", flush=True)
            results_path.write_text(json.dumps(results, indent=1))
        compare(work, minutes, results)
        results_path.write_text(json.dumps(results, indent=1))
    print(markdown(results))
    return 0


def compare(work: Path, minutes: float, results: dict) -> None:
    """Agreement of each mode with the reference (or with fp32 where there is none)."""
    base_mode = "reference" if (work / f"case_{minutes:g}_reference.npy").exists() else "fp32"
    base_file = work / f"case_{minutes:g}_{base_mode}.npy"
    if not base_file.exists():
        return
    base = np.load(base_file)
    duration = results.get(f"{minutes:g}/{base_mode}", {}).get("duration_s", len(base) * 0.32)
    threshold = float(np.quantile(base, 0.99))  # ~1% of (segment, class) cells active
    ref_events = events_of(base, duration, threshold)
    for mode in MODES[1:]:
        path = work / f"case_{minutes:g}_{mode}.npy"
        key = f"{minutes:g}/{mode}"
        if not path.exists() or mode == base_mode or key not in results:
            continue
        got = np.load(path)
        entry = results[key]
        entry["compared_with"] = base_mode
        if got.shape != base.shape:
            entry["shape_mismatch"] = [list(got.shape), list(base.shape)]
            continue
        entry["max_abs_diff"] = float(np.abs(got - base).max())
        events = events_of(got, duration, threshold)
        entry["events_ref"], entry["events"] = len(ref_events), len(events)
        entry["event_match"] = event_match(ref_events, events)
        entry["event_threshold"] = threshold


def extrapolated_reference(results: dict, minutes: float) -> dict | None:
    """A linear fit (a + b * minutes) of the measured reference runs, for lengths where
    the reference was not run."""
    points = [(float(k.split("/")[0]), e) for k, e in results.items()
              if k.endswith("/reference") and "wall_s" in e]  # fmt: skip
    if len(points) < 2:
        return None
    xs = np.array([p[0] for p in points])
    fit = {}
    for field in ("wall_s", "cpu_s", "peak_rss_mb"):
        b, a = np.polyfit(xs, [p[1][field] for p in points], 1)
        fit[field] = float(a + b * minutes)
    fit.update(duration_s=minutes * 60, precision="fp32", extrapolated=True)
    return fit


def markdown(results: dict) -> str:
    rows = [
        "| length | mode | precision | wall s | CPU s | speed vs ref (wall / CPU) | "
        "peak RSS MB | max abs diff | events matched |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    by_len: dict[str, dict] = {}
    for key, entry in results.items():
        length, mode = key.split("/")
        by_len.setdefault(length, {})[mode] = entry
    for length in sorted(by_len, key=float):
        modes = by_len[length]
        if "reference" not in modes:
            guess = extrapolated_reference(results, float(length))
            if guess is not None:
                modes["reference"] = guess
        ref = modes.get("reference")
        for mode in MODES:
            e = modes.get(mode)
            if e is None or "error" in e:
                if e is not None:
                    rows.append(f"| {length} min | {mode} | failed: {e['error']} |||||||")
                continue
            name = f"{mode} (extrapolated, not run)" if e.get("extrapolated") else mode
            speed = (f"{ref['wall_s'] / e['wall_s']:.2f}x / {ref['cpu_s'] / e['cpu_s']:.2f}x"
                     if ref and mode != "reference" else "-")  # fmt: skip
            diff = f"{e['max_abs_diff']:.1e}" if "max_abs_diff" in e else "-"
            match = (f"{100 * e['event_match']:.1f}% ({e['events']}/{e['events_ref']}) "
                     f"vs {e['compared_with']}" if "event_match" in e else "-")  # fmt: skip
            rows.append(
                f"| {length} min | {name} | {e.get('precision', '-')} | {e['wall_s']:.1f} | "
                f"{e['cpu_s']:.1f} | {speed} | {e['peak_rss_mb']:.0f} | {diff} | {match} |"
            )
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
