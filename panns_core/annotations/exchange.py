"""Export a project's events to annotation files, and import files into a project.

The planning steps are separate from the writing/applying so a dialog can preview
("12 events from 3 recordings -> 3 files") before anything happens:

    plan = plan_export(store, "dcase", "out/", statuses=...)   # ExportPlan
    write_export(plan)                                        # the files written
    items = plan_import(store, ["a.txt", "b.tsv"])            # ImportItem per file
    op = import_operation(store, items)                       # one undoable AddEvents

Recordings are matched like ``panns-sed project import``: a file that names its
recordings (DCASE, Raven, Label Studio) by path, name or stem; a file that does not
(Audacity, Sonic Visualiser) by its own name starting with a recording's stem, else
the ``fallback`` recording, else the only recording of the project.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import FormatError, PannsError, StoreError
from ..events import REJECTED, STATUSES

DEFAULT_EXPORT_STATUSES = tuple(s for s in STATUSES if s != REJECTED)


@dataclass
class ExportPlan:
    """What an export will write: ``files`` pairs a destination with its events."""

    format: str
    files: list[tuple[Path, pd.DataFrame]] = field(default_factory=list)

    @property
    def n_events(self) -> int:
        return sum(len(frame) for _, frame in self.files)

    @property
    def n_recordings(self) -> int:
        ids: set[int] = set()
        for _, frame in self.files:
            ids.update(frame["recording_id"].astype(int))
        return len(ids)

    def describe(self) -> str:
        if not self.files:
            return "Nothing to export."
        where = (str(self.files[0][0]) if len(self.files) == 1
                 else f"{len(self.files)} files in {self.files[0][0].parent}")
        return (f"{self.n_events} event(s) from {self.n_recordings} recording(s) -> {where}")


def plan_export(store, format: str, dest: str | os.PathLike, *,
                recordings: Sequence[int] | None = None,
                statuses: Iterable[str] | None = None,
                per_recording: bool | None = None, file_names: bool = True) -> ExportPlan:
    """Plan writing the events of ``recordings`` (default: all) with ``statuses``
    (default: all but rejected) in ``format``.

    ``per_recording``: one file per recording in the folder ``dest`` (named after the
    recording, with the format's extension); False: ``dest`` is one file; None: a
    folder when ``dest`` is a folder or has no suffix, or the format holds one recording
    and several have events. Formats holding one recording per file refuse one file for
    several. ``file_names`` writes recordings by file name instead of full path. One
    DCASE file lists each of the given ``recordings`` that has no events as an empty row.
    """
    from .formats import EXTENSIONS, MULTI_RECORDING, format_name

    fmt = format_name(format)
    statuses = list(DEFAULT_EXPORT_STATUSES if statuses is None else statuses)
    if recordings is None:
        events = store.events(statuses=statuses)
    else:
        frames = [store.events(int(r), statuses=statuses) for r in recordings]
        events = pd.concat(frames, ignore_index=True) if frames else store.events(ids=[])
    if not len(events):
        return ExportPlan(fmt)
    paths = {int(r.id): r.path for r in store.recordings()}
    if file_names:
        events["recording"] = events["recording"].map(lambda p: Path(p).name)
    dest = Path(dest)
    n_recordings = events["recording_id"].nunique()
    if per_recording is None:
        per_recording = (dest.is_dir() or not dest.suffix
                         or (fmt not in MULTI_RECORDING and n_recordings > 1))
    if not per_recording:
        if fmt not in MULTI_RECORDING and n_recordings > 1:
            raise FormatError(
                f"A {fmt} file holds one recording, but {n_recordings} recordings have events. "
                "Export one file per recording into a folder, or one recording only."
            )
        if fmt == "dcase" and recordings is not None:
            # The chosen recordings without events are listed as empty rows (DESED).
            events.attrs["recordings"] = [
                Path(paths[int(r)]).name if file_names else str(paths[int(r)])
                for r in recordings if int(r) in paths
            ]
        return ExportPlan(fmt, [(dest, events)])
    files = [
        (dest / (paths[int(rec_id)].stem + EXTENSIONS[fmt]), part.reset_index(drop=True))
        for rec_id, part in events.groupby("recording_id", sort=True)
    ]
    return ExportPlan(fmt, files)


def write_export(plan: ExportPlan) -> list[Path]:
    """Write the planned files (folders are made); returns their paths."""
    from .formats import write_annotations

    written = []
    for path, frame in plan.files:
        blocker = next((p for p in (path.parent, *path.parent.parents)
                        if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise FormatError(f"{blocker} is a file, not a folder; choose another destination.")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise FormatError(f"Cannot make the folder {path.parent}: {error.strerror}.") from None
        written.append(write_annotations(frame, path, plan.format,
                                         recordings=frame.attrs.get("recordings")))
    return written


@dataclass
class ImportItem:
    """One annotation file read for import: its events (``recording`` holds the
    project's recording id as text) or the reason it cannot be imported."""

    path: Path
    format: str | None = None
    events: pd.DataFrame | None = None
    error: str | None = None
    already: int = 0
    """Events of the file that the project holds already (left out of ``events``)."""
    recordings: tuple[int, ...] = ()
    """The project recordings the file's events belong to (also those already held)."""

    @property
    def ok(self) -> bool:
        return self.error is None and self.events is not None

    @property
    def n_events(self) -> int:
        return 0 if self.events is None else len(self.events)

    def recording_ids(self) -> list[int]:
        return list(self.recordings)


def plan_import(store, paths: Iterable[str | os.PathLike], *, format: str | None = None,
                fallback: int | None = None) -> list[ImportItem]:
    """Read each file (format detected unless given) and match its recordings.

    Errors are kept per file (the PannsError text), never raised, so a preview can
    show which files are fine.
    """
    from .formats import detect_format, format_name, read_annotations
    from .formats._common import decode

    items = []
    for raw in paths:
        path = Path(raw)
        item = ImportItem(path)
        try:
            if format:
                item.format = format_name(format)
            else:
                item.format = detect_format(decode(path.read_bytes(), str(path)), str(path))
            if item.format == "dcase" and _is_weak_label_file(path):
                events = _clip_tags(store, path, fallback)
            else:
                events = read_annotations(path, item.format)
                _match_recordings(store, events, path, fallback)
            item.recordings = tuple(sorted({int(r) for r in events["recording"]}))
            fresh = _not_in_project(store, events)
            item.already = len(events) - len(fresh)
            item.events = fresh
        except OSError as error:
            item.error = f"Cannot read {path}: {error.strerror or error}."
        except PannsError as error:
            item.error = str(error)
        items.append(item)
    return items


def _is_weak_label_file(path: Path) -> bool:
    """A DCASE weak-label TSV (``filename<TAB>event_labels``, no times)?"""
    from .formats._common import decode
    from .formats.dcase import WEAK_HEADER

    first = decode(path.read_bytes()[:4096], str(path)).lstrip().split("\n", 1)[0]
    return tuple(c.strip().lower() for c in first.split("\t")) == WEAK_HEADER


def _clip_tags(store, path: Path, fallback: int | None) -> pd.DataFrame:
    """The clip tags of a weak-label file as events spanning their recordings
    (source :data:`~panns_core.events.CLIP_TAG_SOURCE`), recording = project id as text."""
    from ..events import ADDED, CLIP_TAG_SOURCE, make_events
    from .formats import read_weak_labels

    tags = read_weak_labels(path)
    rows = pd.DataFrame(
        [{"recording": name, "label": label} for name, labels in tags.items()
         for label in dict.fromkeys(labels)], columns=["recording", "label"])  # fmt: skip
    _match_recordings(store, rows, path, fallback)
    durations = {r.id: r.duration for r in store.recordings()}
    rows["onset"] = 0.0
    rows["offset"] = [float(durations[int(r)] or 0.0) for r in rows["recording"]]
    return make_events(rows, source=CLIP_TAG_SOURCE, status=ADDED)


def _match_recordings(store, events: pd.DataFrame, path: Path, fallback: int | None) -> None:
    """Replace the ``recording`` column by project recording ids (as text), in place."""
    if not len(events):
        return
    recordings = store.recordings()
    names = events["recording"].astype(str)
    resolved: dict[str, int] = {}
    missing = []
    for key in dict.fromkeys(names):
        if key == "":
            continue
        try:
            resolved[key] = store.recording_id(key)
        except StoreError:
            missing.append(key)
    if missing:
        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise StoreError(
            f"{path.name} has events for {shown}, which {'is' if len(missing) == 1 else 'are'} "
            "not in the project. Add the recording(s) first, then import again."
        )
    unnamed = names == ""
    if unnamed.any():
        stem = path.name.casefold()
        candidates = [r for r in recordings if stem.startswith(r.path.stem.casefold())]
        if len(candidates) == 1:
            target = candidates[0].id
        elif fallback is not None:
            target = int(fallback)
        elif len(recordings) == 1:
            target = recordings[0].id
        else:
            raise StoreError(
                f"{path.name} does not say which recording it annotates, and its name matches "
                f"{len(candidates)} recordings of the project. Choose the recording to import "
                "it into (on the command line: --recording NAME)."
            )
        resolved[""] = target
    events["recording"] = names.map(lambda k: str(resolved[k]))


#: an imported event equals a project event with the same recording and label whose
#: onset and offset are both within this many seconds
SAME_EVENT_TOLERANCE = 1e-3


def _not_in_project(store, events: pd.DataFrame) -> pd.DataFrame:
    """``events`` (recording = project id as text) without those the project holds."""
    if not len(events):
        return events
    keep = np.ones(len(events), dtype=bool)
    for rec, rows in events.groupby("recording", sort=False):
        existing = store.events(int(rec))
        if not len(existing):
            continue
        by_label = {label: group[["onset", "offset"]].to_numpy(np.float64)
                    for label, group in existing.groupby("label")}
        for index, label, onset, offset in zip(rows.index, rows["label"], rows["onset"],
                                               rows["offset"]):
            spans = by_label.get(label)
            if spans is None:
                continue
            if np.any((np.abs(spans[:, 0] - onset) <= SAME_EVENT_TOLERANCE)
                      & (np.abs(spans[:, 1] - offset) <= SAME_EVENT_TOLERANCE)):
                keep[events.index.get_loc(index)] = False
    return events[keep].reset_index(drop=True)


def import_operation(store, items: Iterable[ImportItem]):
    """One AddEvents operation holding the events of every importable item that the
    project does not hold yet (checked again now, so items planned together and files
    listing the same event twice add it once)."""
    from .store import AddEvents

    frames = [item.events for item in items if item.ok and item.n_events]
    if not frames:
        return AddEvents(())
    events = pd.concat(frames, ignore_index=True)
    key = pd.DataFrame({
        "recording": events["recording"].astype(str),
        "label": events["label"].astype(str),
        "onset": np.round(events["onset"].to_numpy(np.float64) / SAME_EVENT_TOLERANCE),
        "offset": np.round(events["offset"].to_numpy(np.float64) / SAME_EVENT_TOLERANCE),
    })
    events = events[~key.duplicated()].reset_index(drop=True)
    events = _not_in_project(store, events)
    if not len(events):
        return AddEvents(())
    return store.make_add_events(events)
