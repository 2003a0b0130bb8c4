"""Screenshot of boxes on the native-rate spectrogram of a bat recording (docs/boxes.png).

    xvfb-run -a python benchmarks/screenshot_boxes.py [--out docs/boxes.png]

Synthesises a 384 kHz, two-channel recording (frequency-modulated echolocation calls
sweeping from about 90 to 40 kHz, a cricket-like chirping band near 12 kHz, noise),
opens it in a fresh project (a temporary PANNS_ANNOTATOR_HOME unless --home is given),
marks calls as boxes with their bands, one event without a band, selects a box, shows the
read-out under the pointer and the events table with its band columns.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SR = 384000


def bat_recording(path: Path, seconds: float = 2.0) -> list[tuple[float, float, float, float]]:
    """Write the recording; returns the calls' (onset, offset, low Hz, high Hz)."""
    import soundfile as sf

    rng = np.random.default_rng(7)
    n = int(SR * seconds)
    left = 0.004 * rng.standard_normal(n)
    calls = []
    for k, start in enumerate(np.arange(0.12, seconds - 0.1, 0.105)):
        length = 0.005 + 0.001 * (k % 3)
        m = int(length * SR)
        t = np.arange(m) / SR
        high, low = 92000.0 - 2000 * (k % 2), 42000.0 + 1500 * (k % 3)
        # hyperbolic sweep from high to low, as many vespertilionid calls do
        f = 1.0 / (1.0 / high + (1.0 / low - 1.0 / high) * t / length)
        phase = 2 * np.pi * np.cumsum(f) / SR
        envelope = np.sin(np.pi * t / length) ** 2
        amplitude = 0.35 * (0.5 + 0.5 * np.cos(2 * np.pi * (start - 0.12) / seconds))
        i = int(start * SR)
        left[i:i + m] += amplitude * envelope * np.sin(phase)
        calls.append((float(start), float(start + length), low * 0.97, high * 1.02))
    t = np.arange(n) / SR
    chirping = (np.sin(2 * np.pi * 14 * t) > 0.3).astype(float)
    tremolo = 1 + 0.3 * np.sin(2 * np.pi * 900 * t)
    cricket = 0.03 * chirping * np.sin(2 * np.pi * 12500 * t) * tremolo
    right = 0.5 * left + cricket + 0.003 * rng.standard_normal(n)
    left = left + 0.5 * cricket
    sf.write(path, np.stack([left, right], axis=1).astype(np.float32), SR, subtype="FLOAT")
    return calls


def wait(app, condition, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        app.processEvents()
        if condition():
            return True
        time.sleep(0.02)
    return False


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "boxes.png"))
    parser.add_argument("--home", help="PANNS_ANNOTATOR_HOME to use (default: a temp dir)")
    parser.add_argument("--size", default="1600x940")
    args = parser.parse_args(argv)
    home = Path(args.home or tempfile.mkdtemp(prefix="panns-boxes-"))
    os.environ["PANNS_ANNOTATOR_HOME"] = str(home)

    from PySide6.QtCore import QPointF
    from PySide6.QtWidgets import QApplication

    from app.main import apply_style

    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_style(app)
    from app.main_window import MainWindow
    from panns_core import events as ev
    from panns_core.annotations.store import UpdateEvents

    audio = home / "pipistrelle_pass_384k.wav"
    calls = bat_recording(audio)
    width, height = (int(v) for v in args.size.split("x"))
    window = MainWindow(project=home / "bats.panns")
    window.quiet_errors = True
    window.resize(width, height)
    window.show()
    window.open_files([audio])
    doc = window.document
    doc.add_label("Pipistrelle call", colour="#45c46b", hotkey="1")
    doc.add_label("Cricket", colour="#ff9f40", hotkey="2")
    doc.add_label("Wind", colour="#4e9bff", hotkey="3")
    ids = [doc.add_event(on, off, "Pipistrelle call", band=(low, high), select=False)
           for on, off, low, high in calls[:9]]
    doc.apply(UpdateEvents.each({i: {"status": ev.ACCEPTED, "source": "Cnn14_DecisionLevelMax"}
                                 for i in ids[::3]}), "accept")
    doc.add_event(0.62, 0.98, "Cricket", band=(9500.0, 16000.0), select=False)
    doc.add_event(1.30, 1.55, "Wind", select=False)
    doc.channel = 0
    for title in ("Classes", "Probability"):
        if title in window.view_actions:
            window.view_actions[title].setChecked(False)
    view = window.native_spectrogram
    view.apply_settings(view.settings.with_(n_fft=512, overlap=0.875, scale="log"))
    window.apply_default_layout()
    doc.view_range = (0.38, 0.74)
    doc.selection = {ids[4]}
    doc.cursor = calls[4][0]
    window.listening_bar.set_speed(0.1)
    window.docks["events_table"].raise_()
    wait(app, lambda: len(view.visible_tiles()) >= 2, 120)
    wait(app, lambda: False, 2.0)
    on, off, low, high = calls[5]
    view.hover(QPointF((on + off) / 2, view.hz_to_y((low + high) / 2)))
    wait(app, lambda: False, 0.5)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(out))
    print(f"wrote {out}")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
