"""Cost of the project file's safety steps on a big project.

    python benchmarks/bench_project_file.py [--events 200000] [--recordings 300]

Builds a project of --recordings (rows only, no audio) and --events events in a
temporary folder, then times: opening it (the read-only checks: integrity_check,
schema, then the read-write connection), the passive checkpoint after one edit, one
edit (a committed transaction with its fingerprint update), finding what another
writer's commit touched (the window's poll after an outside commit), a
backup (SQLite backup API + check of the copy), and salvage of a copy with three
damaged pages. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from panns_core.annotations.store import AddEvents, ProjectStore, relabel
from panns_core.annotations.store.salvage import salvage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--recordings", type=int, default=300)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.panns"
        with ProjectStore(path) as store:
            with store.transaction() as con:
                con.executemany(
                    "INSERT INTO recordings (path, size, duration, sample_rate, channels, "
                    "added) VALUES (?, 1000, 60.0, 32000, 1, 0)",
                    [(f"/data/rec{i}.wav",) for i in range(args.recordings)])
            onsets = rng.uniform(0, 59, args.events)
            store.apply(AddEvents.from_records(  # recording by recording, as detection does
                {"recording_id": 1 + i * args.recordings // args.events, "onset": float(t),
                 "offset": float(t) + 0.7, "label": f"class {i % 27}"}
                for i, t in enumerate(onsets)))
        size = path.stat().st_size
        t = time.perf_counter()
        store = ProjectStore(path)
        opened = time.perf_counter() - t
        store.apply(relabel([1, 2, 3], "edited"))
        t = time.perf_counter()
        assert store.checkpoint()
        checkpoint = time.perf_counter() - t
        t = time.perf_counter()
        for i in range(200):  # one edit = one transaction, with its fingerprint update
            store.apply(relabel([1 + i], f"edit {i}"))
        edit = (time.perf_counter() - t) / 200
        with ProjectStore(path) as other:  # another writer: what did it touch?
            other.apply(relabel([10], "theirs"))
        t = time.perf_counter()
        assert store.take_outside()
        look = time.perf_counter() - t
        t = time.perf_counter()
        store.backup(Path(folder) / "copy.panns")
        backup = time.perf_counter() - t
        store.close()
        data = bytearray(path.read_bytes())
        page = int.from_bytes(data[16:18], "big")
        for n in (len(data) // page // 3, len(data) // page // 2, len(data) // page - 5):
            data[n * page:(n + 1) * page] = rng.integers(0, 256, page, np.uint8).tobytes()
        bad = Path(folder) / "bad.panns"
        bad.write_bytes(bytes(data))
        t = time.perf_counter()
        report = salvage(bad, Path(folder) / "saved.panns")
        salvaged = time.perf_counter() - t
    print(json.dumps({"events": args.events, "recordings": args.recordings,
                      "file_mb": round(size / 1e6, 1), "open_s": round(opened, 3),
                      "checkpoint_s": round(checkpoint, 4), "edit_ms": round(edit * 1e3, 2),
                      "outside_look_ms": round(look * 1e3, 1), "backup_s": round(backup, 3),
                      "salvage_s": round(salvaged, 2),
                      "salvaged_events": report.copied.get("events", 0)}))


if __name__ == "__main__":
    main()
