"""Search by example: index build time and size per hour of audio, query latency at 1, 10
and 100 hours, usearch against faiss-cpu, and precision on the real soundscapes.

    python benchmarks/bench_search.py build [--arch Cnn14_DecisionLevelMax] [--files 60]
    python benchmarks/bench_search.py latency [--hours 1 10 100] [--dim 2048] [--compare]
    python benchmarks/bench_search.py precision [--model CHECKPOINT]

* ``build``: ``panns_core.search.build_index`` over ``--files`` real soundscapes (10 s each)
  with a seeded network of ``--arch`` (the cost of the pass is the weights'
  architecture's, not their values): seconds and bytes on disk per hour of audio, and the
  peak RSS of the process.
* ``latency``: synthetic clustered vectors in the index's float16 layout, as many windows
  as ``--hours`` of CNN14 (5,625 per hour: 0.96-s windows every 0.64 s): exact search and
  the HNSW graph (build time, ms per query, recall@50 against exact, memory), and with
  ``--compare`` faiss-cpu's flat and HNSW indexes on the same data.
* ``precision``: the tests' set-up (tests/soundscape_model.py: TinySED trained on
  dev_0000-0149, index of dev_0150-0299): precision at 10 of single queries, combined
  queries and the head's re-ranking against the base rate.

Prints one JSON object per measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
CNN14_WINDOWS_PER_HOUR = 5625


def _emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def build(args) -> None:
    import soundscape_model
    import torch

    from panns_core.annotations.store import ProjectStore
    from panns_core.hub.detector import Detector
    from panns_core.models import build_model
    from panns_core.search import build_index

    torch.manual_seed(0)
    module = build_model(args.arch).eval()
    labels = tuple(f"c{i}" for i in range(module.classes_num))
    detector = Detector(module, labels, f"{args.arch}-bench")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("PANNS_ANNOTATOR_HOME", str(Path(tmp) / "home"))
        project = Path(tmp) / "bench.panns"
        store = ProjectStore(project)
        names = [f"dev_{i:04d}.flac" for i in range(args.files)]
        for name in names:
            store.add_recording(soundscape_model.CORPUS / "audio" / name)
        hours = sum(r.duration for r in store.recordings()) / 3600
        store.close()
        # the engine's one-off export/verification is not indexing: warm it up
        from panns_core.detection.engines import select_engine

        select_engine(detector, "cpu")
        started = time.perf_counter()
        summary = build_index(project, detector)
        seconds = time.perf_counter() - started
        folder = summary.folder
        shards = sum(p.stat().st_size for p in (folder / "shards").glob("*.npz"))
        vectors = (folder / "vectors.f16").stat().st_size
        again = time.perf_counter()
        build_index(project, detector)
        _emit(measure="build", arch=args.arch, files=args.files, hours=round(hours, 4),
              seconds=round(seconds, 2), seconds_per_hour=round(seconds / hours, 1),
              realtime=round(hours * 3600 / seconds, 1), windows=summary.rows,
              dim=int(module.embedding_dim),
              shard_mb_per_hour=round(shards / hours / 1e6, 2),
              vectors_mb_per_hour=round(vectors / hours / 1e6, 2),
              up_to_date_rerun_s=round(time.perf_counter() - again, 3),
              peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
              load=_load())  # fmt: skip


def _data(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.abs(rng.standard_normal((256, dim))).astype(np.float32)
    out = np.empty((n, dim), np.float16)
    for lo in range(0, n, 50_000):
        hi = min(n, lo + 50_000)
        block = centres[rng.integers(0, 256, hi - lo)]
        block += 0.7 * np.abs(rng.standard_normal((hi - lo, dim))).astype(np.float32)
        out[lo:hi] = block
    return out


def _timed(fn, queries) -> tuple[float, list]:
    fn(queries[0])  # warm-up
    started = time.perf_counter()
    results = [fn(q) for q in queries]
    return (time.perf_counter() - started) / len(queries) * 1e3, results


def _recall(found: list, truth: list, k: int) -> float:
    return float(np.mean([len(set(map(int, f[:k])) & set(map(int, t[:k]))) / k
                          for f, t in zip(found, truth)]))  # fmt: skip


def latency(args) -> None:
    from panns_core.search import vectors as vec

    k = 50
    for hours in args.hours:
        n = round(hours * CNN14_WINDOWS_PER_HOUR)
        x = _data(n, args.dim)
        rng = np.random.default_rng(1)
        queries = [x[i].astype(np.float32) + 0.05 for i in rng.choice(n, args.queries)]
        ms, exact = _timed(lambda q, x=x: vec.exact_search(x, q, k)[0], queries)
        _emit(measure="latency", library="usearch", kind="exact f16", hours=hours, rows=n,
              dim=args.dim, ms_per_query=round(ms, 2), recall_at_50=1.0,
              data_mb=round(x.nbytes / 1e6), load=_load())  # fmt: skip
        if hours <= args.hnsw_max_hours:
            with tempfile.TemporaryDirectory() as tmp:
                graph = vec.HnswIndex(Path(tmp) / "hnsw.usearch", args.dim)
                started = time.perf_counter()
                graph.sync(x)
                built = time.perf_counter() - started
                size = (Path(tmp) / "hnsw.usearch").stat().st_size
                ms, found = _timed(lambda q, g=graph: g.search(q, k)[0], queries)
                _emit(measure="latency", library="usearch", kind="HNSW f16 M16 ef256",
                      hours=hours, rows=n, dim=args.dim, build_s=round(built, 1),
                      ms_per_query=round(ms, 2), recall_at_50=round(_recall(found, exact, k), 3),
                      file_mb=round(size / 1e6), load=_load())  # fmt: skip
                del graph
        if args.compare and hours <= args.hnsw_max_hours:
            import faiss

            faiss.omp_set_num_threads(os.cpu_count() or 1)
            xf = x.astype(np.float32)
            xf /= np.linalg.norm(xf, axis=1, keepdims=True)
            qs = [(q / np.linalg.norm(q)).astype(np.float32)[None] for q in queries]
            flat = faiss.IndexFlatIP(args.dim)
            started = time.perf_counter()
            flat.add(xf)
            built = time.perf_counter() - started
            ms, found = _timed(lambda q, f=flat: f.search(q, k)[1][0], qs)
            _emit(measure="latency", library="faiss", kind="Flat f32 (exact)", hours=hours,
                  rows=n, dim=args.dim, build_s=round(built, 2), ms_per_query=round(ms, 2),
                  recall_at_50=round(_recall(found, exact, k), 3),
                  data_mb=round(xf.nbytes / 1e6), load=_load())  # fmt: skip
            hnsw = faiss.IndexHNSWFlat(args.dim, 16, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = 64
            started = time.perf_counter()
            hnsw.add(xf)
            built = time.perf_counter() - started
            hnsw.hnsw.efSearch = 256
            ms, found = _timed(lambda q, h=hnsw: h.search(q, k)[1][0], qs)
            _emit(measure="latency", library="faiss", kind="HNSW f32 M16 ef256", hours=hours,
                  rows=n, dim=args.dim, build_s=round(built, 1), ms_per_query=round(ms, 2),
                  recall_at_50=round(_recall(found, exact, k), 3),
                  data_mb=round(xf.nbytes / 1e6), load=_load())  # fmt: skip
            del flat, hnsw, xf
        del x


def precision(args) -> None:
    import pandas as pd
    import soundscape_model

    from panns_core.search import parse_query, search
    from panns_core.search.agile import labelled_rows, rerank, train_head
    from panns_core.search.index import open_index

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("PANNS_ANNOTATOR_HOME", str(Path(tmp) / "home"))
        if args.model:
            os.environ["PANNS_SEARCH_MODEL"] = args.model
        started = time.perf_counter()
        setup = soundscape_model.build(Path(tmp))
        prepared = time.perf_counter() - started
        index = open_index(setup.project, setup.model_id)
        events = soundscape_model.reference_events()
        events = events[events["filename"].isin(soundscape_model.SEARCHED)]
        which, on, off = index.row_times(np.arange(index.rows))
        names = np.array([index.entries[i].name for i in which])

        def right(label, hits):
            mine = events[events["event_label"] == label]
            return float(np.mean([((mine["filename"] == h.recording) & (mine["onset"] < h.offset)
                                   & (mine["offset"] > h.onset)).any() for h in hits]))

        def query(e):
            return parse_query(f"{e.filename}:{e.onset}-{e.offset}")

        single, combined, singles3, base, sim_next, head_new = [], [], [], [], [], []
        head_seconds = []
        for label in sorted(events["event_label"].unique()):
            mine = events[events["event_label"] == label]
            mask = np.zeros(index.rows, bool)
            for _, e in mine.iterrows():
                mask |= (names == e.filename) & (on < e.offset) & (off > e.onset)
            base.append(mask.mean())
            for _, e in mine.head(5).iterrows():
                single.append(right(label, search(index, [query(e)], top=10)))
            for start in (0, 3):
                qs = [query(e) for _, e in mine.iloc[start : start + 3].iterrows()]
                combined.append(right(label, search(index, qs, top=10)))
                singles3.append(np.mean([right(label, search(index, [q], top=10)) for q in qs]))
            first = mine.iloc[0]
            hits = search(index, [query(first)], top=20)
            rows = [{"recording": first.filename, "onset": first.onset, "offset": first.offset,
                     "label": label, "status": "added"}]  # fmt: skip
            for h in hits[:10]:
                rows.append({"recording": h.recording, "onset": h.onset, "offset": h.offset,
                             "label": label,
                             "status": "added" if right(label, [h]) else "rejected"})
            labelled = labelled_rows(index, pd.DataFrame(rows), label)
            head = train_head(index, labelled, label)
            head_seconds.append(head.seconds)
            sim_next.append(right(label, hits[10:20]))
            head_new.append(right(label, rerank(index, head, top=10, exclude=labelled.spans)))
        _emit(measure="precision", classes=len(base), windows=index.rows,
              setup_s=round(prepared, 1), base_rate=round(float(np.mean(base)), 3),
              single_p10=round(float(np.mean(single)), 3),
              combined3_p10=round(float(np.mean(combined)), 3),
              same_queries_single_p10=round(float(np.mean(singles3)), 3),
              next10_similarity=round(float(np.mean(sim_next)), 3),
              head_new10=round(float(np.mean(head_new)), 3),
              head_train_s_median=round(float(np.median(head_seconds)), 3),
              load=_load())  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("build")
    p.add_argument("--arch", default="Cnn14_DecisionLevelMax")
    p.add_argument("--files", type=int, default=60)
    p = sub.add_parser("latency")
    p.add_argument("--hours", type=float, nargs="+", default=[1, 10, 100])
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--queries", type=int, default=20)
    p.add_argument("--hnsw-max-hours", type=float, default=10)
    p.add_argument("--compare", action="store_true", help="faiss-cpu on the same data")
    p = sub.add_parser("precision")
    p.add_argument("--model", help="a checkpoint tests/soundscape_model.py trained before")
    args = parser.parse_args()
    {"build": build, "latency": latency, "precision": precision}[args.what](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
