"""``panns-sed index`` and ``panns-sed search``: the project's embedding index, and
search by example over it (:mod:`panns_core.search`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "index", help="build or update a project's search index (embeddings)",
        description="Compute the embeddings of the project's recordings that the index "
        "lacks (one detection pass each; a killed run resumes) and update the index.",
    )  # fmt: skip
    p.add_argument("--project", type=Path, required=True, help="the project file")
    p.add_argument("--model", help="whose embeddings: installed model name or checkpoint "
                                   "file (default: the default model)")  # fmt: skip
    p.add_argument("--engine", default="auto", choices=("auto", "torch", "onnxruntime"))
    p.set_defaults(func=run_index)

    p = subparsers.add_parser(
        "search", help="find the windows most like example time ranges",
        description="Rank ~1-s windows of every indexed recording of the project by their "
        "similarity to the queries (several queries combine). Writes a TSV: filename onset "
        "offset score, best first.",
    )  # fmt: skip
    p.add_argument("--project", type=Path, required=True, help="the project file")
    p.add_argument("--query", action="append", required=True, metavar="RECORDING:ONSET-OFFSET",
                   help="an example: a recording as the project names it, and seconds "
                        "(repeatable)")  # fmt: skip
    p.add_argument("--model", help="whose embeddings (default: the default model)")
    p.add_argument("--top", type=int, default=50, help="how many windows (default 50)")
    p.add_argument("--out", type=Path, help="TSV file (default: standard output)")
    p.set_defaults(func=run_search)


def _model_id(spec: str | None) -> str:
    """The model id of ``spec`` without loading torch where the registry knows it."""
    from ..hub.detector import checkpoint_model_id, record_model_id
    from ..hub.resolve import resolve_checkpoint, resolve_record

    record = resolve_record(spec)
    if record is not None:
        return record_model_id(record)
    return checkpoint_model_id(resolve_checkpoint(spec))


def _check_project(path: Path) -> None:
    from ..errors import StoreError

    if not path.is_file():
        raise StoreError(f"No project file at {path}; create one with `panns-sed project "
                         "create` and add recordings.")  # fmt: skip


def run_index(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..hub.resolve import load_detector
    from ..search import build_index

    _check_project(args.project)
    detector = load_detector(args.model)
    bars: list = []  # made at the first progress: nothing to index, no bar

    def progress(done: float, total: float, name: str) -> None:
        if not bars:
            bars.append(tqdm(total=total, file=sys.stderr, dynamic_ncols=True,
                             bar_format="{desc} {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} "
                                        "s of audio [{elapsed}<{remaining}]"))  # fmt: skip
        bar = bars[0]
        bar.total = total
        bar.n = done
        bar.set_description_str(name[:30], refresh=False)
        bar.refresh()

    try:
        summary = build_index(args.project, detector, engine=args.engine, progress=progress)
    finally:
        for bar in bars:
            bar.close()
    print(f"{summary.recordings} recordings: {summary.computed} indexed now, "
          f"{summary.reused} already indexed; {summary.rows} windows in {summary.folder} "
          f"({summary.seconds:.1f} s)", file=sys.stderr)  # fmt: skip
    for name in summary.skipped:
        print(f"panns-sed: {name} is missing; relocate it (`panns-sed project relocate`) "
              "and index again", file=sys.stderr)  # fmt: skip
    return 1 if summary.skipped else 0


def _not_indexed(project: Path, index) -> int:
    from ..annotations.store import ProjectStore

    store = ProjectStore(project, create=False)
    try:
        shas = {r.sha256 for r in store.recordings()}
    finally:
        store.close()
    return len(shas - {e.sha256 for e in index.entries})


def run_search(args: argparse.Namespace) -> int:
    from ..errors import PannsError
    from ..search import parse_query, search
    from ..search.index import open_index
    from ..search.query import hits_frame

    if args.top < 1:
        raise PannsError("--top must be at least 1.")
    _check_project(args.project)
    queries = [parse_query(text) for text in args.query]
    index = open_index(args.project, _model_id(args.model))
    missing = _not_indexed(args.project, index)
    if missing:
        print(f"panns-sed: {missing} recording(s) of the project are not indexed yet and are "
              "not searched; run `panns-sed index` to add them", file=sys.stderr)  # fmt: skip
    hits = search(index, queries, top=args.top)
    frame = hits_frame(hits)
    text = frame.to_csv(sep="\t", index=False)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        print(f"{len(hits)} windows written to {args.out}", file=sys.stderr)
    return 0
