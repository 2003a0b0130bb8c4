"""What learns on real sound: train through the CLI, detect and evaluate on held-out recordings.

    python benchmarks/bench_learning.py --corpus ../shared/corpus/soundscapes \\
        --runs arch:TinySED/full Cnn14_DecisionLevelMax/head --time-budget 900

For each run (``BASE/STRATEGY``: ``arch:NAME/full`` trains architecture NAME from scratch,
``MODEL/head`` trains the output layer of an installed model), everything goes through the
command line a user has, in a private application home (``PANNS_ANNOTATOR_HOME``):

1. ``panns-sed project create/add/import``: a temporary project with the training
   recordings (default dev_0000-0239) and their events from the corpus's ``events.tsv``;
2. ``panns-sed train --project P --base BASE --strategy S --time-budget T --json``: the
   trainer holds out its own validation recordings inside the training set (selection and
   the calibration of the post-processing happen there, never on the test recordings);
3. ``panns-sed detect TEST... --model RESULT --scores-out DIR`` with detect's defaults,
   i.e. the post-processing calibrated on validation and shipped with the model;
4. ``panns-sed evaluate --reference --estimated --scores --durations --json`` on the test
   recordings (default dev_0240-0299): event F1 micro/macro, 1-s segment F1, PSDS1/2.

The split is by recording and fixed before anything runs: no number reported here is
chosen on the test recordings. A run whose base is not installed (the released CNN14
weights cannot be downloaded on every machine) is listed as "not measured" with the reason.
Results: ``results.json`` and a Markdown table in the work directory (printed at the end).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

DEFAULT_RUNS = ("arch:TinySED/full", "arch:Cnn6_DecisionLevelMax/full",
                "Cnn14_DecisionLevelMax/head")  # fmt: skip


def cli(args: list[str], env: dict, log: Path, *,
        check: bool = True) -> subprocess.CompletedProcess:
    """``panns-sed ARGS`` in a subprocess (stdout captured, stderr appended to ``log``)."""
    with log.open("a") as err:
        line = " ".join(args)
        err.write(f"\n$ panns-sed {line if len(line) < 400 else line[:400] + ' ...'}\n")
        err.flush()
        done = subprocess.run([sys.executable, "-m", "panns_core", *args], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=err)  # fmt: skip
    if check and done.returncode != 0:
        raise RuntimeError(f"panns-sed {args[0]} failed ({done.returncode}); see {log}")
    return done


def split(corpus: Path, train: tuple[int, int], test: tuple[int, int]):
    """(train files, test files, events, durations) of the corpus, split by recording."""
    events = pd.read_csv(corpus / "events.tsv", sep="\t")
    durations = pd.read_csv(corpus / "durations.tsv", sep="\t")
    names = sorted(durations["filename"])

    def pick(lo: int, hi: int) -> list[str]:
        return [n for n in names if lo <= int(Path(n).stem.rsplit("_", 1)[-1]) <= hi]

    train_files, test_files = pick(*train), pick(*test)
    assert not set(train_files) & set(test_files), "train and test overlap"
    return train_files, test_files, events, durations


def write_subset(frame: pd.DataFrame, files: list[str], path: Path) -> Path:
    frame[frame["filename"].isin(files)].to_csv(path, sep="\t", index=False)
    return path


FIND_INSTALLED = """
import sys
from panns_core.hub.installed import ModelRegistry
record = ModelRegistry().find(sys.argv[1])
print(record.path if record is not None and record.path.is_file() else "")
"""


def base_checkpoint(base: str) -> str | None:
    """What ``--base`` gets: ``arch:NAME`` as is, a file, or the checkpoint file of a
    model installed in the user's own registry (the bench trains in a private home, so
    its results never land in the user's registry); None if not installed."""
    if base.startswith("arch:"):
        return base
    if Path(base).is_file():
        return str(Path(base).resolve())
    done = subprocess.run([sys.executable, "-c", FIND_INSTALLED, base], text=True,
                          capture_output=True)  # fmt: skip
    return done.stdout.strip() or None


def one_run(spec: str, args: argparse.Namespace, data: dict, work: Path, env: dict) -> dict:
    base, _, strategy = spec.partition("/")
    strategy = strategy or ("full" if base.startswith("arch:") else "head")
    tag = f"{base.replace('arch:', 'scratch-').replace('/', '_')}-{strategy}"
    run_dir = work / tag
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / "log.txt"
    row: dict = {"run": spec, "base": base, "strategy": strategy, "time_budget": args.time_budget}
    checkpoint = base_checkpoint(base)
    if checkpoint is None:
        row["not_measured"] = (f"{base} is not installed here (`panns-sed models download "
                               f"{base}` or `models import`); not measured")  # fmt: skip
        return row

    project = run_dir / "bench.panns"
    cli(["project", "create", str(project)], env, log)
    cli(["project", "add", str(project), *map(str, data["train_paths"])], env, log)
    cli(["project", "import", str(project), str(data["train_events"]), "--format", "dcase"],
        env, log)  # fmt: skip

    name = f"bench-{tag}".replace("_", "-").lower()
    train = ["train", "--project", str(project), "--base", checkpoint, "--strategy", strategy,
             "--time-budget", str(args.time_budget), "--json", "--name", name,
             "--run-dir", str(run_dir / "run")]  # fmt: skip
    if args.precision:
        train += ["--precision", args.precision]
    start = time.perf_counter()
    done = cli(train, env, log)
    row["train_wall_s"] = round(time.perf_counter() - start, 1)
    lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    (run_dir / "train.jsonl").write_text(done.stdout)
    final = next((e for e in reversed(lines) if e.get("event") == "done"), {})
    result = final.get("result", {})
    row["model"] = result.get("model") or name
    row["epochs"] = sum(1 for e in lines if e.get("event") == "epoch")
    for key in ("best_epoch", "status", "metrics", "best_metrics"):
        if key in result:
            row[key] = result[key]

    scores = run_dir / "scores"
    estimated = run_dir / "estimated.tsv"
    start = time.perf_counter()
    det = cli(["detect", *map(str, data["test_paths"]), "--model", row["model"], "--scores-out",
               str(scores), "--out", str(estimated), "--threads", str(args.threads)],
              env, log)  # fmt: skip
    row["detect_wall_s"] = round(time.perf_counter() - start, 1)
    del det
    post = [x for x in log.read_text().splitlines() if "post-processing:" in x]
    row["postprocess"] = post[-1].split("post-processing: ", 1)[-1] if post else "?"
    ev = cli(["evaluate", "--reference", str(data["test_events"]), "--estimated", str(estimated),
              "--scores", str(scores), "--durations", str(data["test_durations"]), "--json"],
             env, log)  # fmt: skip
    result = json.loads(ev.stdout)
    (run_dir / "evaluation.json").write_text(json.dumps(result, indent=1))
    row.update(
        event_f1_micro=result["event"]["overall"]["f1"],
        event_f1_macro=result["event"]["macro_f1"],
        segment_f1_micro=result["segment"]["overall"]["f1"],
        segment_f1_macro=result["segment"]["macro_f1"],
        psds1=result["psds"]["psds1"]["psds"],
        psds2=result["psds"]["psds2"]["psds"],
    )
    return row


def table(rows: list[dict]) -> str:
    def f(x) -> str:
        return "-" if x is None else f"{x:.3f}"

    out = ["| run | train wall s (budget) | event F1 micro / macro | segment F1 micro / macro "
           "| PSDS1 / PSDS2 | post-processing used by detect |",
           "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        if "not_measured" in r:
            out.append(f"| {r['run']} | - | - | - | - | {r['not_measured']} |")
            continue
        out.append(
            f"| {r['run']} | {r['train_wall_s']:.0f} ({r['time_budget']:g}) "
            f"| {f(r['event_f1_micro'])} / {f(r['event_f1_macro'])} "
            f"| {f(r['segment_f1_micro'])} / {f(r['segment_f1_macro'])} "
            f"| {f(r['psds1'])} / {f(r['psds2'])} | {r['postprocess']} |"
        )
    return "\n".join(out)


def machine() -> dict:
    info = {"python": platform.python_version(), "cpus": os.cpu_count()}
    try:
        lscpu = subprocess.run(["lscpu"], text=True, capture_output=True).stdout
        model = [x.split(":", 1)[1].strip() for x in lscpu.splitlines()
                 if x.startswith("Model name")]  # fmt: skip
        info["cpu"] = model[0] if model else platform.processor()
        info["avx512_bf16"] = "avx512_bf16" in lscpu
    except OSError:
        info["cpu"] = platform.processor()
    info["loadavg"] = os.getloadavg()
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared/corpus/soundscapes")
    parser.add_argument("--runs", nargs="+", default=list(DEFAULT_RUNS),
                        metavar="BASE/STRATEGY")  # fmt: skip
    parser.add_argument("--time-budget", type=float, default=900.0)
    parser.add_argument("--train", nargs=2, type=int, default=(0, 239), metavar=("FIRST", "LAST"),
                        help="training recordings by number (default dev_0000-0239)")
    parser.add_argument("--test", nargs=2, type=int, default=(240, 299), metavar=("FIRST", "LAST"),
                        help="test recordings by number (default dev_0240-0299)")
    parser.add_argument("--precision", choices=("fp32", "bf16", "int8"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("bench_learning_work"))
    args = parser.parse_args()

    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    corpus = args.corpus.resolve()
    train_files, test_files, events, durations = split(corpus, tuple(args.train),
                                                       tuple(args.test))  # fmt: skip
    data = {
        "train_paths": [corpus / "audio" / n for n in train_files],
        "test_paths": [corpus / "audio" / n for n in test_files],
        "train_events": write_subset(events, train_files, work / "train_events.tsv"),
        "test_events": write_subset(events, test_files, work / "test_events.tsv"),
        "test_durations": write_subset(durations, test_files, work / "test_durations.tsv"),
    }
    env = dict(os.environ, PANNS_ANNOTATOR_HOME=os.environ.get(
        "PANNS_ANNOTATOR_HOME", str(work / "home")))  # fmt: skip
    env.setdefault("OMP_NUM_THREADS", str(args.threads))
    print(f"{len(train_files)} training / {len(test_files)} test recordings; "
          f"budget {args.time_budget:g} s per run", flush=True)
    rows = []
    for spec in args.runs:
        print(f"-- {spec}", flush=True)
        before = machine()
        try:
            row = one_run(spec, args, data, work, env)
        except RuntimeError as error:
            row = {"run": spec, "not_measured": f"failed: {error}"}
        row["machine_before"], row["machine_after"] = before, machine()
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k not in ("metrics", "best_metrics")}),
              flush=True)  # fmt: skip
        (work / "results.json").write_text(json.dumps(
            {"train": [len(train_files), args.train], "test": [len(test_files), args.test],
             "rows": rows}, indent=1, default=str))  # fmt: skip
    text = table(rows)
    (work / "results.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
