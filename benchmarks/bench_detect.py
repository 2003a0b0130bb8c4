"""Detection speed, memory and agreement, process against process, as a user meets it.

The reference process is ``benchmarks/reference_detect.py``: what a reference PANNs user
runs (import torch, build Cnn14_DecisionLevelMax, torch.load the checkpoint, decode the
whole file, one forward pass). Ours is the command line, ``panns-sed detect WAV
--model CKPT --threads N [--fast | --precision int8]``, with an empty score cache each
time (its export cache kept: the one-off ONNX export and fast-path measurement are timed
apart, as "first run"). Same
weights (deterministic, from the reference fixtures: no pretrained file can be downloaded
here), same WAV, same thread count; runs alternate (reference, exact, fast, int8, ...)
so the machine's load hits them alike. Each run's peak RSS is its own (``wait4``).

    python benchmarks/bench_detect.py --minutes 10 60 --pairs 2 --threads 2
    python benchmarks/bench_detect.py --agreement-models cnn14-fitted tinysed --minutes 3

The reference is not run where it would need more memory than ``--reference-max-gb``
(one pass over 60 minutes needs about 19 GB); its time is then scaled from the longest
measured length (marked). The CPU's model, flags and the load average are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ARCH = "Cnn14_DecisionLevelMax"
MODES = ("reference", "exact", "fast", "int8")
# "int8": --precision int8, what --fast runs where int8 keeps the model's events (the
# deterministic weights' saturated events do not survive it, so --fast refuses it here)
FLAGS = {"exact": [], "fast": ["--fast"], "int8": ["--precision", "int8"]}
RATE = 32000
ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
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


# -- comparison ----------------------------------------------------------------------------
def events_of(probs: np.ndarray, duration: float, threshold: float):
    from panns_core.detection.postprocess import PostprocessParams, find_events
    from panns_core.detection.scores import Scores
    from panns_core.labels import audioset_labels

    scores = Scores(probs, 0.32, audioset_labels().names, duration=duration)
    return find_events(scores, PostprocessParams(threshold=threshold))


# -- one timed process ----------------------------------------------------------------------
def timed(cmd: list[str], env: dict) -> dict:
    """Wall time, CPU time and peak RSS of one child process (its own, via wait4)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed ({proc.returncode}): {err.strip()[-800:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": usage.ru_maxrss / 1024, "stderr": err.strip()[-300:]}  # fmt: skip


def ours_cmd(wav: Path, ckpt: Path, threads: int, mode: str, out: Path) -> list[str]:
    return [sys.executable, "-c", "import sys; from panns_core.cli import main; sys.exit(main())",
            "detect", str(wav), "--model", str(ckpt), "--threads", str(threads), "--quiet",
            "--out", str(out), *FLAGS[mode]]  # fmt: skip


def reference_cmd(wav: Path, ckpt: Path, threads: int, out: Path) -> list[str]:
    return [sys.executable, str(HERE / "reference_detect.py"), str(ckpt), str(wav), str(out),
            "--threads", str(threads)]  # fmt: skip


def cached_scores(home: Path) -> tuple[np.ndarray, str, dict]:
    """The one scores file a run of ours left in its (emptied before) score cache."""
    from panns_core.detection.scores import Scores

    files = sorted((home / "cache" / "scores").glob("*.npz"))
    if len(files) != 1:
        raise RuntimeError(f"expected one cached scores file, found {len(files)}")
    scores = Scores.load(files[0])
    return scores.probabilities, scores.precision, dict(scores.metadata or {})


def machine() -> dict:
    from panns_core.detection.engines import cpu_flags
    from panns_core.detection.quantized import cpu_has_native_bf16

    model = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as handle:
            model = next(line.split(":", 1)[1].strip() for line in handle
                         if line.startswith("model name"))  # fmt: skip
    except (OSError, StopIteration):
        pass
    try:
        import onnxruntime

        ort = onnxruntime.__version__
    except ImportError:
        ort = None
    import torch

    return {"cpu": model, "cores": os.cpu_count(), "flags": cpu_flags(),
            "native_bf16": cpu_has_native_bf16(), "torch": torch.__version__,
            "onnxruntime": ort, "python": platform.python_version()}  # fmt: skip


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- driver --------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10, 60])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--pairs", type=int, default=2, help="alternated rounds per length")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "panns-bench-detect")  # fmt: skip
    parser.add_argument("--no-first-run", action="store_true",
                        help="skip the timed first run (export, fast-path measurement)")
    parser.add_argument("--reference-max-gb", type=float, default=8.0,
                        help="skip (scale) reference runs expected to need more")  # fmt: skip
    parser.add_argument("--agreement-models", nargs="+", default=[],
                        choices=("cnn14-fitted", "tinysed"),
                        help="instead: fp32 vs int8 on models with meaningful probabilities "
                             "(benchmarks/fast_agreement.py)")  # fmt: skip
    args = parser.parse_args(argv)

    if args.agreement_models:
        sys.path.insert(0, str(HERE))
        from fast_agreement import main as agreement

        minutes = str(args.minutes[0]) if args.minutes != [10, 60] else "3"
        return agreement(["--models", *args.agreement_models, "--minutes", minutes,
                          "--threads", str(args.threads)])  # fmt: skip
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"  # ours: its own app home (score cache emptied before each run)
    env = {**os.environ, "PANNS_ANNOTATOR_HOME": str(home), "PYTHONPATH": str(ROOT)}
    ckpt = write_checkpoint(work / f"{ARCH}_deterministic.pth")
    previous = work / "results.json"  # lengths measured by an earlier call are kept
    results: dict = json.loads(previous.read_text()) if previous.exists() else {}
    results.update(machine=machine())
    results.setdefault("runs", {})
    results.setdefault("first_run", {})
    print(json.dumps(results["machine"]), flush=True)
    for minutes in args.minutes:
        wav = write_recording(work / f"scene_{minutes:g}min.wav", minutes, seed=int(minutes))
        ref_fits = 0.32 * minutes + 0.6 <= args.reference_max_gb
        modes = [m for m in args.modes if m != "reference" or ref_fits]
        if "reference" in args.modes and not ref_fits:
            print(f"[{minutes:g} min] reference skipped: it would need about "
                  f"{0.32 * minutes + 0.6:.0f} GB")  # fmt: skip
        # each first run starts from an empty cache; --fast's last, so the choice it
        # measured stays for the timed runs (emptied after it, they would measure again)
        for mode in sorted((m for m in modes if m != "reference"), key=lambda m: m == "fast"):
            if minutes == args.minutes[0] and not args.no_first_run:  # the one-off costs
                shutil.rmtree(home / "cache", ignore_errors=True)
                first = timed(ours_cmd(wav, ckpt, args.threads, mode,
                                       work / "events.tsv"), env)  # fmt: skip
                results["first_run"][f"{minutes:g}/{mode}"] = first
                print(f"[{minutes:g} min] {mode} first run (export, verification, "
                      f"measurement): {first['wall_s']:.1f} s", flush=True)  # fmt: skip
        for mode in modes:
            results["runs"].pop(f"{minutes:g}/{mode}", None)
        for round_ in range(args.pairs):
            for mode in modes:
                key = f"{minutes:g}/{mode}"
                load = load_average()
                if mode == "reference":
                    out = work / f"ref_{minutes:g}.npy"
                    run = timed(reference_cmd(wav, ckpt, args.threads, out), env)
                else:
                    shutil.rmtree(home / "cache" / "scores", ignore_errors=True)
                    run = timed(ours_cmd(wav, ckpt, args.threads, mode,
                                         work / "events.tsv"), env)  # fmt: skip
                    probs, precision, meta = cached_scores(home)
                    np.save(work / f"{mode}_{minutes:g}.npy", probs)
                    run.update(precision=precision, engine=meta.get("engine"))
                run.update(load_before=load, round=round_)
                results["runs"].setdefault(key, []).append(run)
                print(f"[{key}] round {round_}: {run['wall_s']:.1f} s wall, "
                      f"{run['peak_rss_mb']:.0f} MB, load {load}", flush=True)  # fmt: skip
                (work / "results.json").write_text(json.dumps(results, indent=1))
        compare(work, minutes, results)
        (work / "results.json").write_text(json.dumps(results, indent=1))
    print(markdown(results))
    return 0


def compare(work: Path, minutes: float, results: dict) -> None:
    """Agreement of ours with the reference (or exact with each other where it was not run)."""
    base_file = work / f"ref_{minutes:g}.npy"
    base_name = "reference"
    if not base_file.exists() or f"{minutes:g}/reference" not in results["runs"]:
        base_file, base_name = work / f"exact_{minutes:g}.npy", "exact"
    if not base_file.exists():
        return
    base = np.load(base_file)
    threshold = float(np.quantile(base, 0.99))  # ~1% of (segment, class) cells active
    ref_events = events_of(base, len(base) * 0.32, threshold)
    from panns_core.detection.int8_graph import event_match

    agreement = results.setdefault("agreement", {})
    for mode in ("exact", "fast", "int8"):
        path = work / f"{mode}_{minutes:g}.npy"
        if not path.exists() or mode == base_name:
            continue
        got = np.load(path)
        entry = {"compared_with": base_name}
        if got.shape != base.shape:
            entry["shape_mismatch"] = [list(got.shape), list(base.shape)]
        else:
            events = events_of(got, len(got) * 0.32, threshold)
            entry.update(max_abs_diff=float(np.abs(got - base).max()),
                         events_ref=len(ref_events), events=len(events),
                         event_match=event_match(ref_events, events))  # fmt: skip
        agreement[f"{minutes:g}/{mode}"] = entry


def _median(runs: list[dict], field: str) -> float:
    return statistics.median(r[field] for r in runs)


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [f"CPU: {m['cpu']}, {m['cores']} cores; flags: {' '.join(m['flags'])}; "
             f"native bf16: {m['native_bf16']}; torch {m['torch']}, onnxruntime "
             f"{m['onnxruntime']}", "",
             "| length | process | engine / precision | wall s (median) | CPU s | speed vs "
             "reference (wall) | peak RSS MB (max) | load during | max abs diff | events "
             "matched |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    runs = results["runs"]
    lengths = sorted({k.split("/")[0] for k in runs}, key=float)
    ref_rate = None  # reference wall seconds per minute of audio, at the longest length run
    for length in lengths:
        ref = runs.get(f"{length}/reference")
        if ref:
            ref_rate = _median(ref, "wall_s") / float(length)
    for length in lengths:
        ref = runs.get(f"{length}/reference")
        ref_wall = _median(ref, "wall_s") if ref else (
            ref_rate * float(length) if ref_rate else None
        )  # fmt: skip
        for mode in MODES:
            entries = runs.get(f"{length}/{mode}")
            if not entries:
                if mode == "reference" and ref_wall:
                    lines.append(f"| {length} min | reference (not run: ~19 GB; scaled) | "
                                 f"fp32 | {ref_wall:.1f} | - | - | - | - | - | - |")  # fmt: skip
                continue
            wall = _median(entries, "wall_s")
            speed = f"{ref_wall / wall:.2f}x" if ref_wall and mode != "reference" else "-"
            loads = [r["load_before"][0] for r in entries]
            agree = results.get("agreement", {}).get(f"{length}/{mode}", {})
            diff = f"{agree['max_abs_diff']:.1e}" if "max_abs_diff" in agree else "-"
            match = (f"{100 * agree['event_match']:.1f}% ({agree['events']}/"
                     f"{agree['events_ref']}) vs {agree['compared_with']}"
                     if "event_match" in agree else "-")  # fmt: skip
            first = entries[0]
            engine = ("torch / fp32" if mode == "reference"
                      else f"{first.get('engine')} / {first.get('precision')}")  # fmt: skip
            lines.append(
                f"| {length} min | {mode} | {engine} | {wall:.1f} | "
                f"{_median(entries, 'cpu_s'):.1f} | {speed} | "
                f"{max(r['peak_rss_mb'] for r in entries):.0f} | "
                f"{min(loads):.1f}-{max(loads):.1f} | {diff} | {match} |"
            )
    for key, first in results.get("first_run", {}).items():
        lines.append(f"\nFirst run ({key}, export + verification + fast-path measurement "
                     f"included): {first['wall_s']:.1f} s wall, "
                     f"{first['peak_rss_mb']:.0f} MB peak")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
