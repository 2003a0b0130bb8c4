"""GUI benchmark: time to first paint, time to the waveform of a 60-minute file, and
frame times while zooming and scrolling it.

    xvfb-run -a python benchmarks/bench_gui.py            # or QT_QPA_PLATFORM=offscreen
    python benchmarks/bench_gui.py --minutes 60 --json benchmarks/out/gui.json

First paint is measured in a fresh child process, from the start of the interpreter's
run of the script to the window's first paint event (torch is not imported by then;
the child checks). The 60-minute files (44.1 kHz mono 16-bit WAV and FLAC) are written
to benchmarks/out/ once; each run uses a fresh PANNS_ANNOTATOR_HOME, so no envelope
cache helps. A frame is one zoom or scroll step of the document followed by the
event processing that repaints every view (the spectrogram's tiles are computed on workers
and are not part of a frame). 2,000 events are on the recording while it is measured.
Frames are measured twice: while the log-mel overview of the whole file is still being
computed in the background, and again once it is done.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"

CHILD = r"""
import time
t0 = time.perf_counter()
import sys
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
from app.main import apply_style
apply_style(app)
from app.main_window import MainWindow
class Painted(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint and not hasattr(self, "t"):
            self.t = time.perf_counter() - t0
        return False
w = MainWindow(project=sys.argv[1])
f = Painted()
w.installEventFilter(f)
w.resize(1400, 860)
w.show()
while not hasattr(f, "t"):
    app.processEvents()
print(f"{f.t:.4f} {int('torch' in sys.modules)}")
w.close()
"""


def first_paint(runs: int) -> dict:
    times, torch_loaded = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as home:
            env = dict(os.environ, PANNS_ANNOTATOR_HOME=home)
            start = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", CHILD, str(Path(home) / "p.panns")],
                                 capture_output=True, text=True, env=env, cwd=ROOT,
                                 check=True).stdout.split()
            total = time.perf_counter() - start
            times.append((float(out[0]), total))
            torch_loaded.append(out[1] == "1")
    return {
        "first_paint_s_in_process_median": statistics.median(t for t, _ in times),
        "first_paint_s_including_interpreter_start_median": statistics.median(
            total for _, total in times),
        "runs": runs,
        "torch_imported_before_first_paint": any(torch_loaded),
    }


def make_long_files(minutes: int) -> dict[str, Path]:
    import numpy as np
    import soundfile as sf

    OUT.mkdir(parents=True, exist_ok=True)
    paths = {fmt: OUT / f"long_{minutes}min.{fmt}" for fmt in ("wav", "flac")}
    if all(p.is_file() for p in paths.values()):
        return paths
    sr = 44100
    rng = np.random.default_rng(0)
    with sf.SoundFile(paths["wav"], "w", sr, 1, "PCM_16") as fw, \
            sf.SoundFile(paths["flac"], "w", sr, 1, "PCM_16") as ff:
        for minute in range(minutes):
            t = np.arange(sr * 60) / sr
            swell = 0.5 + 0.5 * np.sin(2 * np.pi * 0.05 * (t + minute * 60))
            x = 0.1 * rng.standard_normal(len(t)) * swell
            x += 0.3 * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 0.2 * t) > 0.7)
            fw.write(x.astype(np.float32))
            ff.write(x.astype(np.float32))
    return paths


def wait(app, condition, timeout: float) -> bool:
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        app.processEvents()
        if condition():
            return True
        time.sleep(0.001)
    return False


def waveform_and_frames(paths: dict[str, Path], frames: int) -> dict:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    from app.main import apply_style
    from app.main_window import MainWindow
    from panns_core import events as ev

    apply_style(app)
    results: dict = {}
    for fmt, path in paths.items():
        with tempfile.TemporaryDirectory() as home:
            os.environ["PANNS_ANNOTATOR_HOME"] = home
            window = MainWindow(project=Path(home) / "bench.panns")
            window.resize(1400, 860)
            window.show()
            wait(app, lambda: False, 0.3)
            marks: dict[str, float] = {}
            window.waveform.envelope_updated.connect(
                lambda complete, m=marks: m.setdefault("complete" if complete else "first",
                                                       time.perf_counter()))
            start = time.perf_counter()
            window.open_files([path])
            wait(app, lambda m=marks: "first" in m or "complete" in m, 60)
            for view in window.views:
                view.viewport().repaint()
            painted = time.perf_counter()
            wait(app, lambda m=marks: "complete" in m, 120)
            first = min(marks.values())
            results[fmt] = {
                "duration_s": window.document.duration,
                "waveform_first_shown_s": round(max(first, painted) - start, 3),
                "waveform_exact_complete_s": round(marks["complete"] - start, 3),
                "first_was_preview": "first" in marks and window.waveform.pyramid is not None,
            }
            if fmt == "wav":
                doc = window.document
                import numpy as np

                rng = np.random.default_rng(1)
                onsets = np.sort(rng.uniform(0, doc.duration - 5, 2000))
                labels = ["Speech", "Dog", "Bird", "Car", "Music"]
                doc.apply_detection(ev.make_events([
                    {"onset": float(a), "offset": float(a + rng.uniform(0.3, 4)),
                     "label": labels[i % 5], "confidence": 0.7}
                    for i, a in enumerate(onsets)], status=ev.PROPOSED, source="bench"))
                results["frames_while_overview_computes"] = measure_frames(app, window, frames)
                doc.show_all()
                view = window.spectrogram
                done = wait(app, lambda v=view: v.overview_fraction() >= 1.0, 300)
                results["overview_complete"] = done
                results["frames_idle"] = measure_frames(app, window, frames)
            window.close()
            wait(app, lambda: False, 0.2)
    return results


def measure_frames(app, window, frames: int) -> dict:
    doc = window.document
    times = {"zoom": [], "scroll": []}
    centre = doc.duration * 0.37
    doc.show_all()
    wait(app, lambda: False, 0.2)
    steps = max(1, frames // 2)
    for kind in ("zoom", "scroll"):
        for i in range(steps):
            t0 = time.perf_counter()
            if kind == "zoom":
                # zoom in from 60 min to about 5 s and back out
                factor = 0.85 if i < steps // 2 else 1 / 0.85
                doc.zoom(factor, center=centre)
            else:
                if i == 0:
                    doc.view_range = (centre - 30, centre + 30)  # a minute wide
                doc.scroll(0.05 if (i // 20) % 2 == 0 else -0.05)
            app.processEvents()  # the scheduled repaints of every view, as in use
            times[kind].append(time.perf_counter() - t0)
    out = {}
    for kind, values in times.items():
        values_ms = sorted(v * 1000 for v in values)
        out[kind] = {
            "frames": len(values_ms),
            "median_ms": round(statistics.median(values_ms), 2),
            "p95_ms": round(values_ms[int(0.95 * (len(values_ms) - 1))], 2),
            "max_ms": round(values_ms[-1], 2),
        }
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--paint-runs", type=int, default=3)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    os.environ.setdefault("ALSA_CONFIG_PATH", f"/usr/share/alsa/alsa.conf:"
                          f"{ROOT / 'tests' / 'fixtures' / 'asoundrc'}")
    results = {"first_paint": first_paint(args.paint_runs)}
    paths = make_long_files(args.minutes)
    results.update(waveform_and_frames(paths, args.frames))
    results["platform"] = os.environ.get("QT_QPA_PLATFORM", "xcb")
    results["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    results["cpus"] = os.cpu_count()
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
