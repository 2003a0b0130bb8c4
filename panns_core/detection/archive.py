"""Detection of many recordings into a results folder (:mod:`.results`), in this process.

:func:`collect_inputs` finds the recordings (files, folders searched recursively);
:func:`prepare` decides with the folder's manifest what is left to do (skipping what is
done, making events again from stored scores when only the post-processing changed);
:func:`detect_to_results` detects the rest one after the other and writes each recording
as soon as it is complete. :func:`panns_core.cluster.detect_archive` does the same on a Ray
cluster, with the same inputs, the same :func:`prepare` and the same folder.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import PannsError

if TYPE_CHECKING:  # pragma: no cover
    from ..cancel import CancelToken
    from ..hub.detector import Detector
    from .postprocess import PostprocessParams
    from .results import Results, RunSummary, Todo

# Extensions libsndfile reads (the soundfile wheel includes MP3 and Opus).
AUDIO_EXTENSIONS = frozenset((
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
    ".au", ".snd", ".w64", ".rf64", ".caf", ".sd2", ".htk", ".voc", ".pvf", ".xi", ".avr",
    ".wve", ".mpc",
))  # fmt: skip


@dataclass(frozen=True)
class Job:
    """One recording: its file and the name written in the outputs (its path inside the
    folder it was found in, or the file name)."""

    path: Path
    recording: str


def collect_inputs(paths: list[str]) -> tuple[list[Job], list[tuple[str, str]]]:
    """Audio files named or found (recursively) in folders; plus problems found."""
    jobs: list[Job] = []
    problems: list[tuple[str, str]] = []
    seen: set[Path] = set()
    for text in paths:
        path = Path(text).expanduser()
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
            )
            if not found:
                problems.append((text, "no audio files in this folder"))
            for file in found:
                if file.resolve() not in seen:
                    seen.add(file.resolve())
                    jobs.append(Job(file, file.relative_to(path).as_posix()))
        elif path.is_file():
            if path.resolve() not in seen:
                seen.add(path.resolve())
                jobs.append(Job(path, path.name))
        else:
            problems.append((text, "no such file or folder"))
    return jobs, problems


def error_text(error: BaseException) -> str:
    """A failure as one line: our errors' own message, others with their type."""
    if isinstance(error, PannsError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def prepare(results: Results, jobs: list[Job], model_id: str, precision: str,
            params: PostprocessParams, summary: RunSummary,
            channel: int | None = None) -> list[tuple[Job, Todo]]:
    """The jobs that need detection (with what the manifest knows of them). Done ones are
    counted as skipped; those whose post-processing or format changed get their events
    again from the stored scores here. A file that cannot be read becomes a failure."""
    results.assign_names(job.recording for job in jobs)
    entries = results.done_entries()
    todo = []
    for job in jobs:
        try:
            plan = results.plan(job.recording, job.path, model_id, precision, params, entries,
                                channel)  # fmt: skip
            if plan.action == "skip":
                summary.skipped += 1
            elif plan.action == "events":
                results.rederive(job.recording, job.path, plan.entry, params)
                summary.rederived += 1
            else:
                todo.append((job, plan))
        except (PannsError, OSError, ValueError) as error:
            summary.failures.append((str(job.path), error_text(error)))
            results.fail(job.recording, job.path, error_text(error), 0)
    return todo


def progress_bar(total_seconds: float, quiet: bool, desc: str = "detect"):
    """The one tqdm bar of a run, in seconds of audio."""
    from tqdm import tqdm

    return tqdm(total=total_seconds, unit="s", unit_scale=True, desc=desc,
                disable=quiet, file=sys.stderr, dynamic_ncols=True)  # fmt: skip


def advance(bar, seconds: float) -> None:
    """Move the bar on by ``seconds`` of audio, never past its total (float sums of the
    pieces may overshoot it by a rounding error)."""
    step = min(max(0.0, seconds), max(0.0, (bar.total or 0) - bar.n))
    if step:
        bar.update(step)


def durations_of(todo: list[tuple[Job, Todo]], results: Results, summary: RunSummary
                 ) -> list[tuple[Job, Todo, float]]:
    """Header durations of the jobs to detect (a file whose header fails is a failure)."""
    from ..audio import audio_info

    out = []
    for job, plan in todo:
        try:
            out.append((job, plan, audio_info(job.path).duration))
        except PannsError as error:
            summary.failures.append((str(job.path), str(error)))
            results.fail(job.recording, job.path, str(error), 1)
    return out


def detect_to_results(
    jobs: list[Job],
    results: Results,
    detector: Detector,
    params: PostprocessParams,
    *,
    device: str = "cpu",
    channel: int | None = None,
    fast: bool = False,
    precision: str | None = None,
    batch_size: int | None = None,
    body_seconds: float | None = None,
    cache: bool = True,
    quiet: bool = True,
    cancel: CancelToken | None = None,
    on_done: Callable[[Job], None] | None = None,
) -> RunSummary:
    """Detect ``jobs`` one after the other in this process into ``results``.

    Each recording's scores and events are written as soon as it is complete; what the
    folder's manifest lists as done is skipped; a failing recording is reported and the
    others go on. ``channel`` (from 0): detect that channel of every file (None: their
    mean). Returns the run's :class:`~.results.RunSummary`.
    """
    from .device import choose_device
    from .engines import fast_precision
    from .inference import detect
    from .results import RunSummary

    dev = choose_device(device)
    forced = precision
    precision = forced or (fast_precision(detector, dev, "auto") if fast else "fp32")
    started = time.perf_counter()
    results.start_run(mode="local", model_id=detector.model_id, precision=precision,
                      params=params.to_dict(), workers=1, recordings=len(jobs))  # fmt: skip
    summary = RunSummary(results.run_id)
    todo = durations_of(prepare(results, jobs, detector.model_id, precision, params, summary,
                                channel), results, summary)  # fmt: skip
    bar = progress_bar(sum(d for *_, d in todo), quiet)
    try:
        for job, plan, duration in todo:
            bar.set_postfix_str(job.recording[-40:], refresh=False)
            done = 0.0

            def progress(fraction: float, _chunk, duration=duration) -> None:
                nonlocal done
                now = fraction * duration
                advance(bar, now - done)
                done = now

            began = time.perf_counter()
            try:
                scores = detect(job.path, detector, channel=channel, device=dev, fast=fast,
                                precision=forced, batch_size=batch_size, body_seconds=body_seconds,
                                progress=progress, cancel=cancel, cache=cache,
                                audio_hash=plan.sha256)  # fmt: skip
                results.write(job.recording, job.path, scores, params, attempts=1,
                              worker=f"{os.uname().nodename}:{os.getpid()}",
                              seconds=round(time.perf_counter() - began, 3))  # fmt: skip
            except (PannsError, OSError, RuntimeError, ValueError, MemoryError) as error:
                from ..errors import Cancelled

                if isinstance(error, Cancelled):
                    raise
                summary.failures.append((str(job.path), error_text(error)))
                results.fail(job.recording, job.path, error_text(error), 1)
                continue
            finally:
                advance(bar, duration - done)
            summary.processed += 1
            summary.audio_seconds += scores.duration
            if on_done is not None:
                on_done(job)
    finally:
        bar.close()
        summary.wall_seconds = time.perf_counter() - started
        results.end_run(summary)
    return summary
