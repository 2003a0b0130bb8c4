"""``panns-sed detect``: find sound events in recordings and write them out."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..detection.archive import AUDIO_EXTENSIONS, Job, collect_inputs  # noqa: F401
from ..detection.results import dumps_events, flat_name

OUTPUT_FORMATS = ("dcase", "audacity", "raven", "csv", "json", "sonic_visualiser", "label_studio")
EXTENSION_FORMATS = {".tsv": "dcase", ".txt": "audacity", ".csv": "csv", ".json": "json"}

FORMAT_HELP = """\
output formats (--format):
  dcase             DCASE / sed_eval TSV: filename, onset, offset, event_label (default)
  audacity          Audacity label track (one recording per file)
  raven             Raven selection table
  csv               plain CSV of the event schema (recording, onset, offset, label,
                    confidence = max probability, ..., source, status) plus
                    mean_confidence (mean probability inside the event)
  json              plain JSON: a list of event records with the same fields as csv
  sonic_visualiser  Sonic Visualiser CSV (one recording per file)
  label_studio      Label Studio JSON tasks with predictions

--out FILE writes every recording into one file; --out DIR/ (an existing folder, or a
name ending in /) is a results folder: one events file per recording, scores/ with its
score TSV, and manifest.jsonl listing what is done (content hash, model, run); running
again skips what is done, so a stopped run resumes. Without --out the events go to stdout.
Scores are cached per (audio content, model, precision), so running again with other
post-processing settings only re-reads them (--no-cache to recompute).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "detect",
        help="detect sound events in audio files or folders",
        description=(
            "Detect sound events with a PANNs SED model in recordings of any length "
            "(streamed in overlapping chunks). Folders are searched recursively for audio "
            "files. A file that fails is reported at the end; the others are still done."
        ),
        epilog=FORMAT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders")
    model = parser.add_argument_group("model and compute")
    model.add_argument(
        "--model",
        metavar="NAME_OR_FILE",
        help="installed model name or checkpoint file (default: the default model)",
    )
    model.add_argument(
        "--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N, mps"
    )
    model.add_argument("--threads", type=int,
                       help="CPU threads for detection (default: all cores; on Ray: per worker, "
                            "default 1)")  # fmt: skip
    model.add_argument("--channel", type=int, metavar="N",
                       help="listen to channel N (from 1) of multichannel files "
                            "(default: the mean of all channels)")
    model.add_argument(
        "--fast",
        action="store_true",
        help="reduced precision where it is faster and keeps the events: fp16 on GPU; on "
        "the CPU ONNX Runtime int8 or bf16 where one measured faster than exact (once, "
        "cached) and its events on check audio agreed >= 99%% with exact; elsewhere says "
        "so and runs exact (benchmarks/README.md); default is exact fp32",
    )
    model.add_argument(
        "--precision", choices=("fp32", "int8", "bf16", "fp16"),
        help="run this precision, checked or not (int8: ONNX Runtime's int8 graph on the "
        "CPU; its events can differ from exact: benchmarks/README.md says by how much)",
    )  # fmt: skip
    model.add_argument("--batch-size", type=int, help="chunks per forward pass")
    model.add_argument(
        "--chunk-seconds", type=float, help="audio kept per chunk (default: 122.88 on CPU)"
    )
    model.add_argument("--no-cache", action="store_true", help="recompute scores even if cached")
    post = parser.add_argument_group("post-processing")
    post.add_argument(
        "--threshold",
        action="append",
        metavar="P|LABEL=P",
        help="on threshold, global or per class; repeatable (default: the model's calibrated "
        "thresholds if it has them, else 0.5; a global value replaces all of them)",
    )
    post.add_argument(
        "--off-threshold",
        action="append",
        metavar="P|LABEL=P",
        help="hysteresis off threshold, global or per class (default: the model's calibrated "
        "ones, else the on threshold)",
    )
    post.add_argument("--median", type=float, metavar="SECONDS",
                      help="median filter length, all classes (default: the model's calibrated "
                           "medians, else 0)")  # fmt: skip
    post.add_argument("--min-duration", type=float, metavar="SECONDS",
                      help="drop shorter events (default: the model's, else 0)")  # fmt: skip
    post.add_argument("--merge-gap", type=float, metavar="SECONDS",
                      help="merge events of a class separated by less than this "
                           "(default: the model's, else 0)")  # fmt: skip
    post.add_argument("--classes", nargs="+", action="extend", metavar="LABEL",
                      help="only these classes (quote names with spaces)")  # fmt: skip
    post.add_argument("--top-k", type=int, metavar="K",
                      help="only the K classes with the highest peak per file")  # fmt: skip
    out = parser.add_argument_group("output")
    out.add_argument("--out", metavar="FILE_OR_DIR", help="where to write the events")
    out.add_argument(
        "--format", choices=OUTPUT_FORMATS, help="output format (default: from --out, or dcase)"
    )
    out.add_argument(
        "--scores-out",
        metavar="DIR",
        help="also write one sed_scores_eval TSV per recording (onset offset <classes...>)",
    )
    out.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    cluster = parser.add_argument_group(
        "many machines (Ray; pip install \"panns-annotator[cluster]\")",
        "Detection on a pool of Ray workers that each hold the model; needs --out DIR/ "
        "(a results folder, resumable). Audio and model files must be readable at the same "
        "paths on every machine (a shared file system).",
    )
    cluster.add_argument(
        "--ray", nargs="?", const="auto", metavar="auto|ADDRESS",
        help="run on Ray: 'auto' (the default when given alone) joins the cluster of this "
        "machine (ray start) or RAY_ADDRESS, else starts a local one; ADDRESS joins that "
        "cluster (host:6379 or ray://host:10001)",
    )  # fmt: skip
    cluster.add_argument(
        "--workers", type=int, metavar="N",
        help="model-holding workers (default: as many as the cluster's CPUs allow); "
        "without --ray, N workers on a local Ray",
    )  # fmt: skip
    cluster.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="G",
                         help="GPUs each worker holds (e.g. 1, or 0.5 to share one); "
                              "0: CPU workers (default)")  # fmt: skip
    cluster.add_argument("--piece-seconds", type=float, default=600.0, metavar="S",
                         help="long recordings go to workers in pieces of about this much "
                              "audio (default 600)")  # fmt: skip
    cluster.add_argument("--attempts", type=int, default=3, metavar="N",
                         help="tries per recording before it is reported failed (default 3)")
    parser.set_defaults(func=run)


# -- argument helpers --------------------------------------------------------------------
def _thresholds(values: list[str] | None, option: str) -> tuple[float | None, dict[str, float]]:
    from ..errors import PannsError

    glob: float | None = None
    per_class: dict[str, float] = {}
    for value in values or []:
        label, sep, number = value.rpartition("=")
        try:
            p = float(number)
        except ValueError:
            raise PannsError(
                f"{option} {value!r}: expected a probability like 0.3 or LABEL=0.3."
            ) from None
        if not 0.0 <= p <= 1.0:
            raise PannsError(f"{option} {value!r}: probabilities lie between 0 and 1.")
        if sep:
            per_class[label.strip()] = p
        else:
            glob = p
    return glob, per_class


def _params(args: argparse.Namespace, labels: list[str], calibrated=None):
    """The post-processing to use: the model's calibrated params (``calibrated``, or the
    defaults when None), each part given on the command line replacing the model's.

    A global ``--threshold`` replaces every on threshold (and the calibrated off thresholds:
    off = on unless ``--off-threshold`` is given); ``--threshold LABEL=P`` replaces that
    class's (its calibrated off threshold goes too). A global ``--off-threshold`` replaces
    every off threshold; ``--median`` replaces the global and per-class medians.
    """
    from ..detection.postprocess import PostprocessParams
    from ..errors import PannsError

    on, on_cls = _thresholds(args.threshold, "--threshold")
    off, off_cls = _thresholds(args.off_threshold, "--off-threshold")
    unknown = sorted({*on_cls, *off_cls, *(args.classes or [])} - set(labels))
    if unknown:
        raise PannsError(
            f"The model has no class named {', '.join(map(repr, unknown))}; list the names "
            "with `panns-sed labels --model ...` (quote names with spaces)."
        )
    base = calibrated if calibrated is not None else PostprocessParams()
    known = set(labels)
    base_on = {k: v for k, v in base.class_thresholds.items() if k in known}
    base_off = {k: v for k, v in base.class_off_thresholds.items() if k in known}
    base_median = {k: v for k, v in base.class_median_seconds.items() if k in known}
    threshold, off_threshold = base.threshold, base.off_threshold
    if on is not None:  # one threshold for all: the model's per-class values go
        threshold, off_threshold, base_on, base_off = on, None, {}, {}
    for label in on_cls:
        base_off.pop(label, None)
    if off is not None:
        off_threshold, base_off = off, {}
    if off is not None and off > threshold:
        raise PannsError(f"--off-threshold {off} must not exceed --threshold {threshold}.")
    median, class_median = base.median_seconds, base_median
    if args.median is not None:
        median, class_median = args.median, {}
    try:
        return PostprocessParams(
            threshold=threshold,
            off_threshold=off_threshold,
            class_thresholds={**base_on, **on_cls},
            class_off_thresholds={**base_off, **off_cls},
            median_seconds=median,
            min_duration=base.min_duration if args.min_duration is None else args.min_duration,
            merge_gap=base.merge_gap if args.merge_gap is None else args.merge_gap,
            classes=args.classes if args.classes is not None else base.classes,
            top_k=args.top_k if args.top_k is not None else base.top_k,
            class_median_seconds=class_median,
        )
    except ValueError as error:
        raise PannsError(f"Bad post-processing option: {error}.") from None


OVERRIDES = (("threshold", "--threshold"), ("off_threshold", "--off-threshold"),
             ("median", "--median"), ("min_duration", "--min-duration"),
             ("merge_gap", "--merge-gap"))  # fmt: skip


def describe_params(params, calibrated: bool, overridden: list[str] | None = None) -> str:
    """One line saying which post-processing is used (the model's calibrated or defaults)."""

    def span(values: list[float], unit: str = "") -> str:
        low, high = min(values), max(values)
        return f"{low:g}{unit}" if low == high else f"{low:g}-{high:g}{unit}"

    ons = [params.threshold, *params.class_thresholds.values()]
    medians = [params.median_seconds, *params.class_median_seconds.values()]
    text = f"threshold {span(ons)}"
    if params.class_thresholds:
        text += f" ({len(params.class_thresholds)} per class)"
    if params.off_threshold is not None or params.class_off_thresholds:
        offs = [o for o in (params.off_threshold, *params.class_off_thresholds.values())
                if o is not None]  # fmt: skip
        text += f", off {span(offs)}"
    text += ", no median" if max(medians) == 0 else f", median {span(medians, ' s')}"
    if params.min_duration:
        text += f", min duration {params.min_duration:g} s"
    if params.merge_gap:
        text += f", merge gap {params.merge_gap:g} s"
    source = "the model's calibrated post-processing" if calibrated else "default post-processing"
    if overridden:
        source += f" with {', '.join(overridden)} from the command line"
    return f"{source}: {text}"


def _output_format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    if args.out and not _is_dir_target(args.out):
        name = args.out.lower()
        if name.endswith(".selections.txt"):
            return "raven"
        return EXTENSION_FORMATS.get(Path(name).suffix, "dcase")
    return "dcase"


def _is_dir_target(out: str) -> bool:
    return out.endswith(("/", os.sep)) or Path(out).is_dir()


SINGLE_RECORDING = ("audacity", "sonic_visualiser")


def _write(events, target: Path, fmt: str, recordings: list[str] | None = None) -> None:
    from ..detection.results import write_atomic

    write_atomic(target, dumps_events(events, fmt, recordings))


# -- the command -------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    from ..errors import PannsError

    if args.channel is not None and args.channel < 1:
        raise PannsError(f"--channel {args.channel}: channels are counted from 1.")
    channel = None if args.channel is None else args.channel - 1
    jobs, failures = collect_inputs(args.paths)
    fmt = _output_format(args)
    per_file = bool(args.out) and _is_dir_target(args.out)
    on_ray = args.ray is not None or args.workers is not None
    if on_ray and not per_file:
        raise PannsError("Detection on Ray writes a results folder: give --out a folder "
                         "(e.g. --out results/).")
    if args.precision and (args.fast or on_ray):
        raise PannsError("--precision chooses the precision itself: give it without --fast "
                         "and without --ray.")  # fmt: skip
    if on_ray:
        from ..cluster.connect import require_ray

        require_ray()  # before the model loads: one line saying how to get Ray
    if fmt in SINGLE_RECORDING and len(jobs) > 1 and not per_file:
        raise PannsError(
            f"The {fmt} format holds one recording per file; give --out a folder "
            "(e.g. --out labels/) to write one file per recording."
        )
    if not jobs:
        for path, message in failures:
            print(f"panns-sed: {path}: {message}", file=sys.stderr)
        print("panns-sed: error: no audio files to process.", file=sys.stderr)
        return 1

    import pandas as pd
    from tqdm import tqdm

    from ..detection.device import choose_device, set_threads
    from ..detection.inference import detect
    from ..detection.postprocess import scores_to_events
    from ..events import EVENT_COLUMNS, make_events
    from ..hub.resolve import load_detector

    engine = "auto"
    compiled = None if on_ray or per_file else _compiled(args)
    if compiled is not None:  # this model ran here before: no torch, no checkpoint
        detector, engine = compiled
        device = "cpu"
    else:
        if not on_ray:
            set_threads(args.threads)
        device = choose_device(args.device)  # a bad --device fails before the model loads
        detector = load_detector(args.model, device="cpu" if on_ray else device)
    model_id = detector.model_id
    calibrated = getattr(detector, "postprocess", None)
    params = _params(args, list(detector.labels), calibrated)
    overridden = [flag for name, flag in OVERRIDES if getattr(args, name) is not None]
    if not args.quiet:
        print(f"panns-sed: post-processing: "
              f"{describe_params(params, calibrated is not None, overridden)}.",
              file=sys.stderr)  # fmt: skip
    if per_file:
        return _run_results(args, jobs, failures, fmt, detector, params, device, on_ray,
                            channel)  # fmt: skip

    durations = {}
    for job in jobs:
        try:
            from ..audio import audio_info

            durations[job] = audio_info(job.path).duration
        except PannsError as error:
            failures.append((str(job.path), str(error)))
    runnable = [job for job in jobs if job in durations]
    bar = tqdm(
        total=round(sum(durations.values()), 1),
        unit="s",
        unit_scale=True,
        desc="detect",
        disable=args.quiet,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    frames = []
    succeeded: list[Job] = []
    try:
        for job in runnable:
            bar.set_postfix_str(job.recording[-40:], refresh=False)
            done = 0.0

            def progress(fraction: float, _chunk, job=job) -> None:
                nonlocal done
                now = fraction * durations[job]
                bar.update(max(0.0, now - done))
                done = now

            try:
                scores = detect(
                    job.path,
                    detector,
                    channel=channel,
                    device=device,
                    fast=args.fast,
                    precision=args.precision,
                    batch_size=args.batch_size,
                    body_seconds=args.chunk_seconds,
                    progress=progress,
                    cache=not args.no_cache,
                    engine=engine,
                )
                if args.scores_out:
                    scores.write_tsv(Path(args.scores_out) / f"{flat_name(job.recording)}.tsv")
                found = scores_to_events(scores, params, job.recording, mean_confidence=True)
            except PannsError as error:
                failures.append((str(job.path), str(error)))
                continue
            except (OSError, RuntimeError, ValueError, MemoryError) as error:
                failures.append((str(job.path), f"{type(error).__name__}: {error}"))
                continue
            finally:
                bar.update(max(0.0, durations[job] - done))
            frames.append(found)
            succeeded.append(job)
    finally:
        bar.close()

    if frames:
        events = pd.concat(frames, ignore_index=True)
    else:
        events = make_events(None).assign(mean_confidence=pd.Series(dtype=float))
        events = events.loc[:, [*EVENT_COLUMNS, "mean_confidence"]]
    # One file for every recording: DCASE lists those without events as empty rows.
    covered = [job.recording for job in succeeded]
    if args.out:
        _write(events, Path(args.out), fmt, covered)
    else:
        sys.stdout.write(dumps_events(events, fmt, covered))

    if not args.quiet:
        print(f"panns-sed: {len(events)} events in {len(succeeded)} file(s) with {model_id}.",
              file=sys.stderr)  # fmt: skip
    return _report_failures(failures)


def _compiled(args: argparse.Namespace):
    """(compiled detector, its onnxruntime engine) when the model's verified graph is
    cached for this CPU and nothing asks for torch; else None (the torch path)."""
    from ..detection import compiled

    if args.threads is not None and args.threads < 1:
        return None  # the torch path says what is wrong
    found = compiled.load(args.model, args.device)
    if found is None:
        return None
    from ..detection.device import default_threads
    from ..detection.engines import NOTHING_FASTER, known_fast_choice
    from ..detection.onnx_engine import OrtEngine

    threads = args.threads or default_threads()
    choice = args.precision or (known_fast_choice(found, threads) if args.fast else "fp32")
    graph = None
    if choice == "int8":  # measured the fastest and checked, or asked for
        from ..detection import int8_graph

        graph = int8_graph.int8_path(found.graph)
        if not graph.exists() or (args.fast and int8_graph.accepted(found.graph) is not True):
            return None
    elif choice != "fp32":
        return None  # not measured yet, or bf16 won: torch measures or runs it
    try:
        engine = OrtEngine.from_compiled(found, threads=threads, graph=graph, precision=choice)
    except Exception as error:  # a damaged cache: the torch path exports it again
        import logging

        logging.getLogger(__name__).debug("compiled detector unusable: %s", error)
        return None
    if args.fast and choice == "fp32":  # measured: nothing beats exact here (detect() says so)
        engine.note = NOTHING_FASTER
    return found, engine


def _run_results(args: argparse.Namespace, jobs: list[Job], failures: list[tuple[str, str]],
                 fmt: str, detector, params, device, on_ray: bool,
                 channel: int | None = None) -> int:
    """``--out DIR/``: the results folder (events and scores per recording, a manifest),
    in this process or on Ray; what the folder's manifest lists as done is skipped."""
    from ..detection.results import Results

    results = Results(args.out, fmt)
    if on_ray:
        from ..cluster import detect_archive

        summary = detect_archive(
            jobs, results, detector, params, channel=channel, address=args.ray,
            workers=args.workers,
            threads=args.threads, gpus_per_worker=args.gpus_per_worker, fast=args.fast,
            body_seconds=args.chunk_seconds, batch_size=args.batch_size,
            piece_seconds=args.piece_seconds, attempts=args.attempts, quiet=args.quiet,
        )  # fmt: skip
    else:
        from ..detection.archive import detect_to_results

        summary = detect_to_results(
            jobs, results, detector, params, device=device, channel=channel, fast=args.fast,
            precision=args.precision, batch_size=args.batch_size, body_seconds=args.chunk_seconds,
            cache=not args.no_cache, quiet=args.quiet,
        )  # fmt: skip
    failures = [*failures, *summary.failures]
    if args.scores_out:  # the folder keeps them in scores/; copies where they were asked for
        import shutil

        entries = results.done_entries()
        for job in jobs:
            entry = entries.get(job.recording)
            if entry and (results.root / entry["scores"]).is_file():
                target = Path(args.scores_out) / Path(entry["scores"]).name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(results.root / entry["scores"], target)
    if not args.quiet:
        print(f"panns-sed: {summary.describe()}; results in {results.root} "
              f"(manifest {results.manifest_path.name}, model {detector.model_id}).",
              file=sys.stderr)  # fmt: skip
    return _report_failures(failures)


def _report_failures(failures: list[tuple[str, str]]) -> int:
    """List the files that failed (stderr); the exit code: 1 if any failed."""
    if not failures:
        return 0
    print(f"panns-sed: {len(failures)} file(s) failed:", file=sys.stderr)
    for path, message in failures:
        print(f"  {path}: {message}", file=sys.stderr)
    return 1
