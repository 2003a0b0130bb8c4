"""The speeds the test suite used to assert, measured here instead (tests check behaviour).

    python benchmarks/bench_suite_speed.py            # QT_QPA_PLATFORM=offscreen is set
    python benchmarks/bench_suite_speed.py --json benchmarks/out/suite_speed.json

* the project store: 100,000 detections inserted as one operation (CPU and wall time),
  beside the floor of the same rows into a bare SQLite table without index;
* the events table with 10,000 events: sort by label, filter by three typed keys
  (per key), select every third row from the document, repaint.

Prints the numbers with the CPU and load average they came from.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def bench_store(work: Path) -> dict:
    import soundfile as sf

    from panns_core.annotations.store import ProjectStore
    from panns_core.events import PROPOSED, make_events

    wav = work / "a.wav"
    sf.write(wav, np.zeros(16000 * 100, np.float32), 16000)
    rng = np.random.default_rng(9)
    onset = rng.uniform(0, 100, 100_000)
    frame = make_events({"onset": onset, "offset": onset + rng.uniform(0, 5, 100_000),
                         "label": rng.choice(["Speech", "Dog", "Bird, song"], 100_000),
                         "confidence": rng.uniform(0, 1, 100_000), "source": "cnn14_sed",
                         "status": PROPOSED})
    store = ProjectStore(work / "bulk.panns")
    rec = store.add_recording(wav)
    cpu, wall = time.process_time(), time.perf_counter()
    op = store.make_add_events(frame, rec)
    store.apply(op)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    bare = sqlite3.connect(work / "bare.sqlite", isolation_level=None)
    bare.execute(f"CREATE TABLE t ({', '.join(f'c{i}' for i in range(len(op.rows[0])))})")
    floor = time.process_time()
    bare.execute("BEGIN")
    bare.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(op.rows[0]))})", op.rows)
    bare.execute("COMMIT")
    floor = time.process_time() - floor
    bare.close()
    store.close()
    return {"store_100k_insert_cpu_s": round(cpu, 3), "store_100k_insert_wall_s": round(wall, 3),
            "bare_table_cpu_s": round(floor, 3)}


def bench_table(work: Path) -> dict:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from app.model import Document
    from app.panels.events_table import EVENT_ID_ROLE, KEYS, EventsTablePanel
    from panns_core import events as ev
    from panns_core.data import resource_path

    app = QApplication.instance() or QApplication(["bench"])
    doc = Document()
    doc.open_project(work / "table.panns")
    doc.open_file(resource_path("demo.flac"))
    rng = np.random.default_rng(5)
    onset = np.sort(rng.uniform(0, 19, 10_000))
    doc.store.add_events(ev.make_events({
        "onset": onset, "offset": onset + rng.uniform(0.05, 1.0, 10_000),
        "label": rng.choice(["Dog", "Bird", "Speech", "Knock", "Bark"], 10_000),
        "confidence": rng.random(10_000), "status": ev.PROPOSED, "source": "model-x"}),
        doc.recording.id)
    panel = EventsTablePanel(doc)
    panel.resize(900, 500)
    panel.show()
    app.processEvents()
    t0 = time.perf_counter()
    panel.table.sortByColumn(KEYS.index("label"), Qt.SortOrder.DescendingOrder)
    app.processEvents()
    sort = time.perf_counter() - t0
    t0 = time.perf_counter()
    QTest.keyClicks(panel.search, "dog")
    app.processEvents()
    filter_key = (time.perf_counter() - t0) / 3
    ids = [panel.model.index(r, 0).data(EVENT_ID_ROLE) for r in range(panel.model.rowCount())]
    t0 = time.perf_counter()
    doc.selection = ids[::3]
    app.processEvents()
    select = time.perf_counter() - t0
    t0 = time.perf_counter()
    panel.table.viewport().repaint()
    paint = time.perf_counter() - t0
    panel.close()
    doc.close_project()
    return {"table_10k_sort_ms": round(sort * 1000, 1),
            "table_10k_filter_ms_per_key": round(filter_key * 1000, 1),
            "table_10k_select_ms": round(select * 1000, 1),
            "table_10k_paint_ms": round(paint * 1000, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    work = Path(tempfile.mkdtemp(prefix="panns-suite-speed-"))
    os.environ["PANNS_ANNOTATOR_HOME"] = str(work / "home")
    sys.path.insert(0, str(ROOT))
    from benchmarks.monkey import cpu_name

    result = {"cpu": cpu_name(), "load_start": [round(x, 2) for x in os.getloadavg()]}
    result.update(bench_store(work))
    result.update(bench_table(work))
    result["load_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
