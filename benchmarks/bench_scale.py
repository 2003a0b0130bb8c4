"""Archive detection throughput: one process, and Ray with 1 and 2 workers on this machine.

The archive: real soundscapes of the shared corpus (10 s each) plus synthetic long
recordings (cut into pieces); the model: Cnn14_DecisionLevelMax with deterministic weights
(the real network's cost; no pretrained file can be downloaded here). Each setting runs
`panns-sed detect ARCHIVE --out RESULTS/` as a user would (a fresh process, an empty
results folder, the ONNX export cached beforehand so every setting starts alike):

- ``single``: one process, ``--threads`` threads (the default path);
- ``ray-N``: ``--workers N`` on a local Ray started by the command, 1 thread per worker.

Wall time includes start-up (Ray and the workers' model loading). Also reported: the
seconds workers spent detecting (from the manifest), the x real time per busy worker, and
how many workers were busy on average (busy seconds / the run's wall time). The CPU,
core count and the load average before and after each run are printed (numbers are upper
bounds on a shared machine).

    python benchmarks/bench_scale.py --soundscapes 60 --long-minutes 10 --workers 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# the shared corpus next to the checkout (/work/shared beside /work/main or /work/wt/NAME)
CORPUS = Path(os.environ.get("PANNS_CORPUS") or next(
    (p / "shared" / "corpus" / "soundscapes" for p in ROOT.parents
     if (p / "shared" / "corpus" / "soundscapes").is_dir()), ROOT))  # fmt: skip
sys.path.insert(0, str(HERE))


def build_archive(folder: Path, soundscapes: int, long_minutes: list[float]) -> float:
    """Links to the first ``soundscapes`` corpus files and long synthetic recordings;
    returns the total seconds of audio."""
    import soundfile as sf
    from bench_detect import write_recording

    folder.mkdir(parents=True, exist_ok=True)
    total = 0.0
    found = sorted((CORPUS / "audio").glob("*.flac"))
    if len(found) < soundscapes:
        raise SystemExit(f"{CORPUS}: {len(found)} soundscapes; set PANNS_CORPUS")
    for source in found[:soundscapes]:
        target = folder / "soundscapes" / source.name
        target.parent.mkdir(exist_ok=True)
        if not target.exists():
            os.symlink(source, target)
        total += sf.info(target).duration
    (folder / "long").mkdir(exist_ok=True)
    for i, minutes in enumerate(long_minutes):
        path = write_recording(folder / "long" / f"long{i}.wav", minutes, seed=i)
        total += sf.info(path).duration
    return total


def run(label: str, command: list[str], env: dict, results: Path) -> dict:
    shutil.rmtree(results, ignore_errors=True)
    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if done.returncode:
        raise SystemExit(f"{label} failed:\n{done.stderr[-3000:]}")
    lines = [json.loads(x) for x in (results / "manifest.jsonl").read_text().splitlines()]
    end = lines[-1]
    # seconds the workers spent detecting (hashing, decoding, the model) per recording
    busy = sum(x["seconds"] for x in lines if x["kind"] == "done")
    return {"setting": label, "wall_s": round(wall, 1), "audio_s": end["audio_seconds"],
            "worker_busy_s": round(busy, 1),
            "x_realtime_per_busy_worker": round(end["audio_seconds"] / busy, 1),
            "busy_workers_on_average": round(busy / end["wall_seconds"], 2),
            "x_realtime": round(end["audio_seconds"] / wall, 1),
            "x_realtime_inside_run": round(end["audio_seconds"] / end["wall_seconds"], 1),
            "recordings": end["processed"], "load_before": round(load_before, 2),
            "load_after": round(os.getloadavg()[0], 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--soundscapes", type=int, default=60)
    parser.add_argument("--long-minutes", type=float, nargs="*", default=[10.0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, default=2, help="threads of the single process")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "bench_scale")
    parser.add_argument("--skip-single", action="store_true")
    args = parser.parse_args()

    from bench_detect import ARCH, machine, write_checkpoint

    args.work.mkdir(parents=True, exist_ok=True)
    ckpt = write_checkpoint(args.work / f"{ARCH}_deterministic.pth")
    archive = args.work / "archive"
    seconds = build_archive(archive, args.soundscapes, args.long_minutes)
    env = {**os.environ, "PANNS_ANNOTATOR_HOME": str(args.work / "home"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    base = [sys.executable, "-m", "panns_core", "detect", str(archive), "--model", str(ckpt),
            "--quiet", "--no-cache"]  # fmt: skip
    # the one-off ONNX export, outside the timings
    warm = args.work / "warm"
    shutil.rmtree(warm, ignore_errors=True)
    subprocess.run([*base[:4], str(next(archive.rglob("*.flac"))), *base[5:],
                    "--out", f"{warm}/"], env=env, check=True)  # fmt: skip
    facts = machine()
    print(f"CPU: {facts['cpu']}; {facts['cores']} cores; archive "
          f"{seconds / 60:.1f} min ({args.soundscapes} soundscapes + "
          f"{len(args.long_minutes)} long)", flush=True)  # fmt: skip
    rows = []
    if not args.skip_single:
        rows.append(run(f"single ({args.threads} threads)",
                        [*base, "--threads", str(args.threads), "--out",
                         f"{args.work / 'r-single'}/"], env, args.work / "r-single"))
        print(rows[-1], flush=True)
    for n in args.workers:
        out = args.work / f"r-ray{n}"
        rows.append(run(f"ray, {n} worker(s) x 1 thread",
                        [*base, "--workers", str(n), "--threads", "1", "--out", f"{out}/"],
                        env, out))  # fmt: skip
        print(rows[-1], flush=True)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
