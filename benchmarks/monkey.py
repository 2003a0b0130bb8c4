"""The monkey at the keys for a long time: seed after seed of random real user actions
on the real window (tests/gui/monkey.py), each checked against the project file.

    nice -n 10 python benchmarks/monkey.py                    # one hour (the default)
    python benchmarks/monkey.py --minutes 5 --json benchmarks/out/monkey.json
    python benchmarks/monkey.py --seed 1234 --verbose         # replay one seed

Each seed is a fresh project and a fresh window (Qt offscreen unless a display is set),
``--actions`` actions long, ending with undo to the start and redo to the end. It
reports actions performed, undo checks, failures and the seeds that failed (replay one
with ``--seed``), the CPU, the load average and the process's CPU time. The exit status
is 1 when a seed failed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="how long (default 60)")
    parser.add_argument("--actions", type=int, default=60, help="actions per seed")
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--seed", type=int, help="run this one seed and stop")
    parser.add_argument("--json", type=Path, help="write the report here too")
    parser.add_argument("--verbose", action="store_true", help="print every action")
    args = parser.parse_args(argv)

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["ALSA_CONFIG_PATH"] = (f"/usr/share/alsa/alsa.conf:"
                                      f"{ROOT / 'tests' / 'fixtures' / 'asoundrc'}")
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    work = Path(tempfile.mkdtemp(prefix="panns-monkey-"))
    os.environ["PANNS_ANNOTATOR_HOME"] = str(work / "home")  # never the user's settings
    sys.path.insert(0, str(ROOT / "tests"))  # tests/gui/monkey.py (tests is no package)
    # the checkout's code, not an installed copy (a script's sys.path starts at benchmarks/,
    # so `app` came from site-packages: a run once tested an older installed version)
    sys.path.insert(0, str(ROOT))

    from gui.monkey import Monkey, MonkeyFailure, install_model, recordings_for
    from gui.sed_weights import write_sed_checkpoint
    from PySide6.QtCore import QEvent, Qt
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow
    from app.workers import cancel_all

    qapp = QApplication.instance() or QApplication(["monkey"])
    install_model(write_sed_checkpoint(work / "tiny_sed.pth"))
    recordings = recordings_for(work / "audio")

    def make_window(project: Path) -> MainWindow:
        window = MainWindow(project=project)
        window.quiet_errors = True
        window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        window.show()
        qapp.processEvents()
        return window

    def close_window(window) -> None:
        import shiboken6

        if shiboken6.isValid(window):
            window.close()
        cancel_all(wait=20.0)
        for _ in range(3):
            QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
            qapp.processEvents()
            gc.collect()

    load_start = os.getloadavg()
    started = time.monotonic()
    cpu_start = resource.getrusage(resource.RUSAGE_SELF)
    report: dict = {"actions": 0, "seeds": 0, "undo_checks": 0, "failures": 0,
                    "failing_seeds": [], "by_kind": {}, "errors": []}
    seeds = [args.seed] if args.seed is not None else None
    seed = args.first_seed
    while True:
        if seeds is not None:
            if not seeds:
                break
            seed = seeds.pop()
        elif time.monotonic() - started > args.minutes * 60:
            break
        monkey = Monkey(seed, work / f"seed-{seed}", make_window, close_window, recordings)
        try:
            stats = monkey.run(args.actions)
        except MonkeyFailure as failure:
            stats = monkey.stats
            report["failures"] += 1
            report["failing_seeds"].append(seed)
            report["errors"].append({"seed": seed, "step": failure.step,
                                     "what": failure.what, "last_actions": failure.actions[-15:]})
            print(f"FAIL {failure}", flush=True)
        except Exception as error:  # a crash of the monkey or the window: also a failure
            stats = monkey.stats
            report["failures"] += 1
            report["failing_seeds"].append(seed)
            text = "".join(traceback.format_exception(error))
            report["errors"].append({"seed": seed, "step": stats.actions, "what": text,
                                     "last_actions": monkey.log[-15:]})
            print(f"FAIL seed {seed}: {text}", flush=True)
            if monkey.window is not None:
                close_window(monkey.window)
        if args.verbose:
            print("\n".join(monkey.log))
        report["seeds"] += 1
        report["actions"] += stats.actions
        report["undo_checks"] += stats.undo_checks
        for kind, n in stats.by_kind.items():
            report["by_kind"][kind] = report["by_kind"].get(kind, 0) + n
        print(f"seed {seed}: {stats.actions} actions, {stats.undo_checks} undo checks "
              f"({report['actions']} actions, {report['failures']} failures so far, "
              f"{(time.monotonic() - started) / 60:.1f} min)", flush=True)
        seed += 1

    cpu_end = resource.getrusage(resource.RUSAGE_SELF)
    report.update({
        "minutes": round((time.monotonic() - started) / 60, 2),
        "actions_per_seed": args.actions,
        "cpu": cpu_name(),
        "cpu_seconds": round(cpu_end.ru_utime + cpu_end.ru_stime
                             - cpu_start.ru_utime - cpu_start.ru_stime, 1),
        "max_rss_mb": round(cpu_end.ru_maxrss / 1024, 1),
        "load_start": [round(x, 2) for x in load_start],
        "load_end": [round(x, 2) for x in os.getloadavg()],
        "nice": os.nice(0),
    })
    print(json.dumps({k: v for k, v in report.items() if k != "errors"}, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
