"""The driver of archive detection on Ray: plan pieces, feed the workers, write results.

Recordings left to do (:func:`panns_core.detection.archive.prepare`: done ones skipped)
are cut into *pieces* of whole detection windows (``piece_seconds`` of audio each; a short
recording is one piece). Every worker (:class:`.worker.DetectorWorker`) keeps two pieces
queued so it never waits for the driver. When the last piece of a recording is in, the
worker that ran it puts the pieces end to end (they are exactly one process's chunks),
turns them into events and writes both to the results folder; the driver then appends
the recording's manifest line (so it only ever handles small descriptions). A piece whose
worker died (its process killed, its machine gone) or that raised is tried again, on any
worker, up to ``attempts`` times; then its recording is reported failed with the error
and the others go on. Ray restarts dead workers (each loads the model again).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..detection.archive import advance
from ..detection.scores import channel_hash
from ..errors import Cancelled, PannsError
from .connect import connect, require_ray

if TYPE_CHECKING:  # pragma: no cover
    from ..cancel import CancelToken
    from ..detection.archive import Job
    from ..detection.postprocess import PostprocessParams
    from ..detection.results import Results, RunSummary, Todo
    from ..hub.detector import Detector

IN_FLIGHT = 2  # pieces queued per worker: one running, one waiting


@dataclass
class Piece:
    recording: int  # index into the run's recordings
    index: int
    first: int
    stop: int | None
    attempts: int = 0


@dataclass(frozen=True)
class RunModel:
    """What every recording's scores carry."""

    labels: list[str]
    model_id: str
    precision: str
    channel: int | None = None  # from 0; None: the mean of the channels


@dataclass
class Pending:
    """A recording whose pieces are out."""

    job: Job
    todo: Todo
    duration: float
    n_pieces: int
    parts: dict[int, dict] = field(default_factory=dict)  # piece descriptions
    refs: dict[int, Any] = field(default_factory=dict)  # piece scores, in Ray's object store
    reported: float = 0.0  # seconds of it shown on the progress bar
    failed: bool = False
    attempts: int = 1


def plan_pieces(n_windows: int, windows_per_piece: int) -> list[tuple[int, int | None]]:
    """(first, stop) window ranges: ``windows_per_piece`` each, the last one open-ended
    (it runs to the true end of the recording, as the last window of one process does)."""
    starts = list(range(0, max(n_windows, 1), max(1, windows_per_piece)))
    return [*itertools.pairwise(starts), (starts[-1], None)]


def detect_archive(
    archive: str | os.PathLike | Iterable[str | os.PathLike] | list[Job],
    out: str | os.PathLike | Results,
    detector: Detector | None = None,
    params: PostprocessParams | None = None,
    *,
    model: str | os.PathLike | None = None,
    fmt: str = "dcase",
    channel: int | None = None,
    address: str | None = "auto",
    workers: int | None = None,
    threads: int | None = None,
    gpus_per_worker: float = 0.0,
    fast: bool = False,
    body_seconds: float | None = None,
    batch_size: int | None = None,
    piece_seconds: float = 600.0,
    attempts: int = 3,
    quiet: bool = True,
    cancel: CancelToken | None = None,
) -> RunSummary:
    """Detect every recording of ``archive`` (folders, files, or jobs) on Ray into the
    results folder ``out`` (see :mod:`panns_core.detection.results`).

    ``detector`` (or ``model``: an installed name or checkpoint file; default: the default
    model) and ``params`` (default: the model's calibrated post-processing) as for
    single-process detection. ``address``: "auto" joins this machine's cluster or
    RAY_ADDRESS, else starts a local Ray; an address joins that cluster; None starts a
    local Ray. When Ray is connected already (``ray.init`` was called), that connection is
    used. ``workers`` actors (default: what the cluster's CPUs, or GPUs with
    ``gpus_per_worker``, allow at ``threads`` CPUs each, default 1) each hold the model.
    ``channel`` (from 0): that channel of every file (None: their mean). Returns the run's
    summary; failures are in it (and in the manifest), not raised.
    """
    from ..detection.archive import Job, collect_inputs, durations_of, prepare, progress_bar
    from ..detection.inference import ChunkPlan, window_count
    from ..detection.postprocess import PostprocessParams
    from ..detection.results import Results, RunSummary

    ray = require_ray()
    if isinstance(archive, (str, os.PathLike)):
        archive = [archive]
    archive = list(archive)
    if archive and all(isinstance(a, Job) for a in archive):
        jobs = archive
        problems: list[tuple[str, str]] = []
    else:
        jobs, problems = collect_inputs([os.fspath(a) for a in archive])
    results = out if isinstance(out, Results) else Results(out, fmt)
    if detector is None:
        from ..hub.resolve import load_detector

        detector = load_detector(model)
    if params is None:
        params = detector.postprocess or PostprocessParams()
    if detector.path is None:
        raise PannsError("Detection on Ray loads the model from its file in every worker; "
                         "give a checkpoint file or an installed model.")
    threads = max(1, int(threads or 1))
    if workers is not None and workers < 1:
        raise PannsError(f"--workers must be at least 1, not {workers}.")
    if attempts < 1:
        raise PannsError(f"--attempts must be at least 1, not {attempts}.")

    started = time.perf_counter()
    owned = connect(address, cpus=None if workers is None else workers * threads)
    handles: list[Any] = []
    summary = None
    try:
        count = _worker_count(ray, workers, threads, gpus_per_worker)
        remote = ray.remote(_worker_class()).options(
            # a dead worker is restarted (loading the model again) and Ray runs the pieces it
            # held again, there, up to attempts - 1 times; errors a piece raises are retried
            # by _drive (both ways a piece gets ``attempts`` tries)
            num_cpus=threads, num_gpus=gpus_per_worker, max_restarts=-1,
            max_task_retries=attempts - 1, scheduling_strategy="SPREAD",
        )  # fmt: skip
        device = "cuda" if gpus_per_worker > 0 else "cpu"
        checkpoint, model_id = str(Path(detector.path).resolve()), detector.model_id
        first = remote.remote(checkpoint, model_id, device=device, threads=threads, fast=fast)
        handles.append(first)
        try:
            info = ray.get(first.info.remote())
        except ray.exceptions.RayError as error:  # its creation failed: the cause is last
            cause = (str(error).strip().splitlines() or ["unknown error"])[-1]
            raise PannsError(f"A Ray worker could not load the model {checkpoint}: {cause} "
                             "(every machine needs the model file at that path).") from None
        precision = info["precision"]
        handles += [remote.remote(checkpoint, model_id, device=device, threads=threads,
                                  precision=precision) for _ in range(count - 1)]  # fmt: skip
        body = body_seconds or info["body_seconds"]
        batch = batch_size or info["batch_size"]
        results.start_run(mode="ray", model_id=model_id, precision=precision,
                          params=params.to_dict(), workers=count, engine=info["engine"],
                          body_seconds=body, recordings=len(jobs),
                          address=_address(ray))  # fmt: skip
        summary = RunSummary(results.run_id, workers=count)
        for path, message in problems:
            summary.failures.append((path, message))
        todo = durations_of(prepare(results, jobs, model_id, precision, params, summary,
                                    channel), results, summary)  # fmt: skip
        plan = ChunkPlan.for_model(detector, body_seconds=body)
        per_piece = max(1, round(piece_seconds / (plan.hop_samples / detector.sample_rate)))
        pending: dict[int, Pending] = {}
        queue: collections.deque[Piece] = collections.deque()
        for number, (job, plan_entry, duration) in enumerate(todo):
            total = round(duration * detector.sample_rate)
            ranges = plan_pieces(window_count(total, plan), per_piece)
            pending[number] = Pending(job, plan_entry, duration, len(ranges))
            queue.extend(Piece(number, i, a, b) for i, (a, b) in enumerate(ranges))
        bar = progress_bar(sum(p.duration for p in pending.values()), quiet)
        try:
            run = RunModel(list(detector.labels), model_id, precision, channel)
            _drive(ray, handles, queue, pending, results, run, params, summary, bar,
                   body=body, batch=batch, attempts=attempts, cancel=cancel)  # fmt: skip
        finally:
            bar.close()
    finally:
        for handle in handles:
            with contextlib.suppress(Exception):  # a worker already gone
                ray.kill(handle)
        if summary is not None:
            summary.wall_seconds = time.perf_counter() - started
            results.end_run(summary)
        if owned:
            ray.shutdown()
    return summary


def _address(ray: Any) -> str:
    try:
        return str(ray.get_runtime_context().gcs_address)
    except Exception:  # Ray Client connections do not say
        return ""


def _worker_class() -> type:
    from .worker import DetectorWorker

    return DetectorWorker


def _worker_count(ray: Any, workers: int | None, threads: int, gpus: float) -> int:
    resources = ray.cluster_resources()
    cpus = int(resources.get("CPU", 0))
    if gpus > 0:
        fit = int(resources.get("GPU", 0) / gpus)
        if fit < 1:
            raise PannsError(f"--gpus-per-worker {gpus:g}: the Ray cluster has "
                             f"{resources.get('GPU', 0):g} GPUs.")  # fmt: skip
    else:
        fit = cpus // threads
    fit = min(fit, cpus // threads) if cpus else fit
    if workers is None:
        return max(1, fit)
    if workers > fit:
        have = f"{cpus} CPUs" + (f", {resources.get('GPU', 0):g} GPUs" if gpus else "")
        raise PannsError(f"--workers {workers} at {threads} CPU(s) each does not fit the Ray "
                         f"cluster ({have}); ask for at most {max(fit, 0)}.")  # fmt: skip
    return workers


def _reason(ray: Any, error: BaseException) -> str:
    """One line for a failed piece: the worker's own error, or how the worker was lost."""
    if isinstance(error, ray.exceptions.RayTaskError):
        cause = getattr(error, "cause", None)
        if isinstance(cause, PannsError):
            return str(cause)
        if cause is not None:
            return f"{type(cause).__name__}: {cause}"
        return str(error).strip().splitlines()[-1]
    if isinstance(error, ray.exceptions.RayActorError | ray.exceptions.ActorUnavailableError):
        return "its Ray worker was lost (process killed or machine gone)"
    return f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error) else ''}"


def _drive(ray: Any, handles: list, queue: collections.deque, pending: dict[int, Pending],
           results: Results, run: RunModel, params: PostprocessParams, summary: RunSummary,
           bar: Any, *,
           body: float, batch: int, attempts: int, cancel: CancelToken | None) -> None:
    """Feed the workers until every recording is written or given up.

    A piece returns two objects: a small description (fetched here) and its scores (left
    in Ray's object store). When a recording's pieces are all in, the worker that ran its
    last piece puts them together and writes the files (:meth:`DetectorWorker.finish`);
    here only its manifest line is appended, so the driver stays light however many
    workers there are.
    """
    in_flight: dict[Any, tuple[int, Piece | int]] = {}
    load = [0] * len(handles)
    pids: list[str | None] = [None] * len(handles)

    def give_up(state: Pending, reason: str, tries: int) -> None:
        state.failed = True
        summary.failures.append((str(state.job.path), reason))
        results.fail(state.job.recording, state.job.path, reason, tries)
        advance(bar, state.duration - state.reported)
        state.reported = state.duration
        state.refs.clear()  # its pieces' scores may go

    while queue or in_flight:
        if cancel is not None and cancel.is_set():
            raise Cancelled("Detection cancelled.")
        for w, handle in enumerate(handles):
            while load[w] < IN_FLIGHT and queue:
                piece = queue.popleft()
                state = pending[piece.recording]
                if state.failed:
                    continue
                meta_ref, scores_ref = handle.detect_piece.options(num_returns=2).remote(
                    str(state.job.path.resolve()), piece.first, piece.stop, body, batch,
                    want_hash=piece.index == 0 and state.todo.sha256 is None,
                    channel=run.channel,
                )  # fmt: skip
                state.refs[piece.index] = scores_ref
                in_flight[meta_ref] = (w, piece)
                load[w] += 1
        if not in_flight:
            break
        ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
        for ref in ready:
            w, task = in_flight.pop(ref)
            load[w] -= 1
            number = task if isinstance(task, int) else task.recording
            state = pending[number]
            try:
                part = ray.get(ref)
            except ray.exceptions.RayError as error:
                if state.failed:
                    continue
                lost = isinstance(error, ray.exceptions.RayActorError
                                  | ray.exceptions.ActorUnavailableError)  # fmt: skip
                if isinstance(task, int):  # writing failed (or lost its worker and retries)
                    give_up(state, _reason(ray, error), state.attempts)
                    continue
                # a lost worker's pieces were tried again by Ray already (max_task_retries)
                task.attempts = attempts if lost else task.attempts + 1
                state.attempts = max(state.attempts, task.attempts + 1)
                if task.attempts < attempts:
                    queue.appendleft(task)  # again, on whichever worker is free first
                else:
                    give_up(state, _reason(ray, error), task.attempts)
                continue
            if pids[w] is not None and pids[w] != part["worker"]:
                summary.worker_restarts += 1  # the process under this handle is a new one
            pids[w] = part["worker"]
            if state.failed:
                continue
            if isinstance(task, int):  # written: note it
                del pending[number]
                results.note_done(part, attempts=state.attempts, pieces=state.n_pieces,
                                  worker=sorted({m["worker"] for m in state.parts.values()}),
                                  seconds=round(sum(m["seconds"] for m in state.parts.values())
                                                + part.pop("write_seconds"), 3))  # fmt: skip
                advance(bar, state.duration - state.reported)
                summary.processed += 1
                summary.audio_seconds += part["duration"]
                continue
            state.parts[task.index] = part
            seconds = min(part["segments"] * part["segment_seconds"],
                          state.duration - state.reported)  # fmt: skip
            advance(bar, seconds)
            state.reported += max(0.0, seconds)
            if len(state.parts) == state.n_pieces:
                job = {"root": str(results.root), "format": results.fmt,
                       "name": results.name(state.job.recording),
                       "recording": state.job.recording, "path": str(state.job.path.resolve()),
                       "params": params.to_dict(), "labels": run.labels,
                       "model_id": run.model_id, "precision": run.precision,
                       "sha256": state.todo.sha256 or channel_hash(state.parts[0]["sha256"],
                                                                   run.channel),
                       "pieces": [state.parts[i] for i in range(state.n_pieces)]}  # fmt: skip
                ref = handles[w].finish.remote(job, *(state.refs[i]
                                                      for i in range(state.n_pieces)))
                in_flight[ref] = (w, number)
                load[w] += 1
