"""A results folder: events and scores per recording, and a manifest of what is done.

``panns-sed detect ... --out RESULTS/`` writes here, in one process or on a Ray cluster
(:mod:`panns_core.cluster`), in the same layout::

    RESULTS/<name><suffix>    the recording's events in the chosen format (DCASE .tsv, ...)
    RESULTS/scores/<name>.tsv its segment scores (sed_scores_eval layout)
    RESULTS/manifest.jsonl    the run manifest: one JSON object a line, appended as work ends

``<name>`` is the recording's path inside the archive with ``/`` as ``__`` and without its
extension. The manifest has a ``run`` line when a run starts (model id, precision,
post-processing, format, workers), a ``done`` line per finished recording (content
sha256, size and modification time, model id, precision, duration, its files, its run,
worker and attempts), a ``failed`` line per recording given up on (with the error), and
an ``end`` line with the run's summary.

Every file is written under a temporary name (``.NAME.PID.tmp``, removed when the next run
starts if a killed writer left it) and renamed (``os.replace``), and the
``done`` line is appended only after both files are in place: a run killed at any moment
leaves each recording either complete and listed or absent, never half-written under its
final name. A later run skips a recording whose last ``done`` line has its content hash,
the model id and the precision and whose files exist (the hash is taken from that line
while the file's size and modification time are unchanged, else the file is hashed);
when only the post-processing or the format changed, its events are made again from the
stored scores without detecting. One run at a time writes into a folder.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import FormatError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .postprocess import PostprocessParams
    from .scores import Scores

MANIFEST = "manifest.jsonl"
SCORES_DIR = "scores"
SUFFIX = {
    "dcase": ".tsv",
    "audacity": ".txt",
    "raven": ".selections.txt",
    "csv": ".csv",
    "json": ".json",
    "sonic_visualiser": ".csv",
    "label_studio": ".json",
}


def flat_name(recording: str) -> str:
    """A recording's path in the archive as one file name: ``a/b.wav`` -> ``a__b``."""
    stem = recording.rsplit(".", 1)[0] if "." in Path(recording).name else recording
    return stem.replace("/", "__")


def dumps_events(events: pd.DataFrame, fmt: str, recordings: list[str] | None = None) -> str:
    """The text of an events file: ``csv``/``json`` keep every column (mean_confidence
    too); the annotation formats are written as :func:`dumps_annotations` writes them."""
    if fmt == "csv":  # the events table (every column), plus mean_confidence
        from ..annotations.formats.events_table import write_table

        return write_table(events)
    if fmt == "json":
        return events.to_json(orient="records", indent=1) + "\n"
    from ..annotations.formats import dumps_annotations

    return dumps_annotations(events.drop(columns=["mean_confidence"], errors="ignore"), fmt,
                             recordings=recordings)


def write_atomic(target: Path, text: str) -> None:
    """``text`` into ``target`` by a temporary file and ``os.replace``; FormatError on failure."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise FormatError(f"Cannot write {target}: {error.strerror or error}.") from None


def write_scores_atomic(scores: Scores, target: Path) -> None:
    """The sed_scores_eval TSV of ``scores`` into ``target``, atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # not *.tsv: a reader of the scores folder (sed_scores_eval) must never see a torn one
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        scores.write_tsv(tmp)
        os.replace(tmp, target)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise FormatError(f"Cannot write {target}: {error.strerror or error}.") from None


@dataclass(frozen=True)
class Todo:
    """What a run has to do for one recording: ``skip`` (done), ``events`` (make events
    again from the stored scores) or ``detect``; ``entry`` is its last ``done`` line."""

    action: str
    entry: dict | None = None
    sha256: str | None = None


@dataclass
class RunSummary:
    """What a run did: counts, audio seconds detected, wall time, failures."""

    run: str
    processed: int = 0
    rederived: int = 0
    skipped: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    workers: int = 1
    worker_restarts: int = 0  # workers that died and were started again
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def realtime_factor(self) -> float:
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def describe(self) -> str:
        """One line: what was detected, how fast, what was skipped or failed."""
        hours = self.audio_seconds / 3600
        text = (f"{hours:.2f} h of audio in {self.processed} recording(s) in "
                f"{_duration(self.wall_seconds)}")  # fmt: skip
        if self.processed:
            text += f" ({self.realtime_factor:.1f}x real time"
            text += f", {self.workers} worker(s))" if self.workers > 1 else ")"
        if self.skipped:
            text += f"; {self.skipped} done before, skipped"
        if self.rederived:
            text += f"; {self.rederived} re-made from stored scores"
        if self.worker_restarts:
            text += f"; {self.worker_restarts} worker(s) lost and restarted"
        text += f"; {len(self.failures)} failed" if self.failures else "; no failures"
        return text


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


class Results:
    """One results folder (``root``), written in ``fmt`` (events files)."""

    def __init__(self, root: str | os.PathLike, fmt: str = "dcase") -> None:
        if fmt not in SUFFIX:
            raise ValueError(f"unknown events format {fmt!r}")
        self.root = Path(root)
        self.fmt = fmt
        self.run_id = ""
        self._names: dict[str, str] = {}

    # -- layout ----------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def assign_names(self, recordings: Iterable[str]) -> None:
        """File names for ``recordings``: the flat name, with the audio extension kept
        where two recordings would share one (``a.wav`` and ``a.flac``)."""
        recordings = list(recordings)
        counts: dict[str, int] = {}
        for rec in recordings:
            counts[flat_name(rec)] = counts.get(flat_name(rec), 0) + 1
        for rec in recordings:
            name = flat_name(rec)
            self._names[rec] = name if counts[name] == 1 else rec.replace("/", "__")

    def name(self, recording: str) -> str:
        return self._names.get(recording) or flat_name(recording)

    def set_name(self, recording: str, name: str) -> None:
        """Use ``name`` for the files of ``recording`` (as the driver assigned it)."""
        self._names[recording] = name

    def events_path(self, recording: str) -> Path:
        return self.root / f"{self.name(recording)}{SUFFIX[self.fmt]}"

    def scores_path(self, recording: str) -> Path:
        return self.root / SCORES_DIR / f"{self.name(recording)}.tsv"

    # -- the manifest ----------------------------------------------------------------
    def read_manifest(self) -> list[dict]:
        """Every line of the manifest (a torn last line from a killed run is skipped)."""
        if not self.manifest_path.exists():
            return []
        lines = []
        with open(self.manifest_path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict):
                    lines.append(record)
        return lines

    def done_entries(self) -> dict[str, dict]:
        """The last ``done`` line of every recording."""
        return {r["recording"]: r for r in self.read_manifest()
                if r.get("kind") == "done" and "recording" in r}  # fmt: skip

    def _append(self, record: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        with open(self.manifest_path, "a+b") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell():  # a killed writer may have left a line without its newline
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    handle.write(b"\n")
            handle.write(line.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())

    def start_run(self, **info: Any) -> str:
        """Append the ``run`` line; returns the run id every later line of this run carries."""
        from .. import __version__

        self.run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        for folder in (self.root, self.root / SCORES_DIR):  # what a killed writer left
            for stale in folder.glob(".*.tmp") if folder.is_dir() else ():
                stale.unlink(missing_ok=True)
        self._append({"kind": "run", "run": self.run_id, "started": _now(),
                      "host": socket.gethostname(), "format": self.fmt,
                      "version": __version__, **info})  # fmt: skip
        return self.run_id

    def end_run(self, summary: RunSummary) -> None:
        self._append({"kind": "end", "run": self.run_id, "finished": _now(),
                      "processed": summary.processed, "rederived": summary.rederived,
                      "skipped": summary.skipped, "failed": len(summary.failures),
                      "audio_seconds": round(summary.audio_seconds, 3),
                      "wall_seconds": round(summary.wall_seconds, 3),
                      "workers": summary.workers,
                      "worker_restarts": summary.worker_restarts})  # fmt: skip

    # -- what to do ------------------------------------------------------------------
    def plan(self, recording: str, path: Path, model_id: str, precision: str,
             params: PostprocessParams, entries: dict[str, dict] | None = None,
             channel: int | None = None) -> Todo:
        """What this run does for ``recording`` (at ``path``; ``channel`` from 0, None: the
        mix of its channels), given the manifest. The audio key is the file's sha256, with
        ``-chN`` for one channel (:func:`~.scores.channel_hash`)."""
        from .scores import channel_hash, channel_of

        entries = self.done_entries() if entries is None else entries
        entry = entries.get(recording)
        if entry is None or entry.get("model_id") != model_id or (
                entry.get("precision") != precision) or (
                channel_of(entry.get("sha256", "")) != channel):  # fmt: skip
            return Todo("detect")
        scores_file = self.root / entry.get("scores", "")
        if not entry.get("scores") or not scores_file.is_file():
            return Todo("detect")
        stat = path.stat()
        if (stat.st_size, stat.st_mtime_ns) == (entry.get("size"), entry.get("mtime_ns")):
            sha256 = entry.get("sha256")
        else:
            from ..audio import file_sha256

            sha256 = channel_hash(file_sha256(path), channel)
            if sha256 != entry.get("sha256"):
                return Todo("detect", sha256=sha256)
        events_file = self.root / entry.get("events", "")
        same_output = (entry.get("format") == self.fmt and entry.get("params") == params.to_dict()
                       and entry.get("events") and events_file.is_file()
                       and Path(entry["events"]) == self.events_path(recording).relative_to(
                           self.root))  # fmt: skip
        return Todo("skip" if same_output else "events", entry, sha256)

    # -- writing ---------------------------------------------------------------------
    def write(self, recording: str, path: Path, scores: Scores, params: PostprocessParams, *,
              write_scores: bool = True, **info: Any) -> dict:
        """Write the events (and scores) of one recording, then its ``done`` line; returns
        the line. ``info`` (worker, attempts, seconds, ...) goes into the line."""
        record = self.write_files(recording, path, scores, params, write_scores=write_scores)
        return self.note_done(record, **info)

    def write_files(self, recording: str, path: Path, scores: Scores,
                    params: PostprocessParams, *, write_scores: bool = True) -> dict:
        """Write the events (and scores) of one recording, atomically, without touching the
        manifest (a Ray worker does this; the driver notes the returned record)."""
        from .postprocess import scores_to_events

        events = scores_to_events(scores, params, recording, mean_confidence=True)
        scores_file = self.scores_path(recording)
        if write_scores:
            write_scores_atomic(scores, scores_file)
        events_file = self.events_path(recording)
        write_atomic(events_file, dumps_events(events, self.fmt, [recording]))
        stat = path.stat()
        return {
            "recording": recording, "path": str(path.resolve()),
            "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": scores.audio_hash,
            "model_id": scores.model_id, "precision": scores.precision,
            "duration": scores.duration, "segments": scores.n_segments,
            "events": events_file.relative_to(self.root).as_posix(),
            "scores": scores_file.relative_to(self.root).as_posix(),
            "n_events": len(events), "format": self.fmt, "params": params.to_dict(),
        }  # fmt: skip

    def note_done(self, record: dict, **info: Any) -> dict:
        """Append the ``done`` line of a recording whose files :meth:`write_files` wrote."""
        line = {"kind": "done", "run": self.run_id, **record, "finished": _now(), **info}
        self._append(line)
        return line

    def rederive(self, recording: str, path: Path, entry: dict,
                 params: PostprocessParams) -> dict:
        """Events of a done recording made again from its stored scores (no detection)."""
        from .scores import Scores

        scores = Scores.read_tsv(self.root / entry["scores"], model_id=entry["model_id"],
                                 audio_hash=entry["sha256"])  # fmt: skip
        scores.precision = entry.get("precision", scores.precision)
        return self.write(recording, path, scores, params, write_scores=False,
                          attempts=0, rederived_from=entry.get("run"))

    def fail(self, recording: str, path: Path, error: str, attempts: int) -> None:
        self._append({"kind": "failed", "run": self.run_id, "recording": recording,
                      "path": str(path.resolve()), "error": error, "attempts": attempts,
                      "finished": _now()})  # fmt: skip


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
