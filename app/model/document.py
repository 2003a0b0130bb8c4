"""The document every widget binds to: plain Python with event emitters, no Qt.

One :class:`Document` holds the open project (a
:class:`~panns_core.annotations.store.ProjectStore`), the current recording
(:class:`OpenRecording`) and its annotations, and composes the small models views
listen to (napari ViewerModel style): :attr:`Document.viewport` (visible range, cursor,
time span), :attr:`Document.selection_model` (selected events),
:attr:`Document.detection` (model choice, params, scores and their cache) and
:attr:`Document.history` (undo/redo). Each model owns its emitters; ``doc.events``
lists them all beside the document's own (see :data:`EMITTERS`), so a view may listen
to the one model it draws or to the document.

Every annotation edit goes through one method here, which calls one store edit
operation (committed at once) and records the inverse on :attr:`Document.history`, so
undo/redo covers every change, a detection run included.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from panns_core import events as ev

from .detection import Detection
from .evented import EmitterGroup
from .history import History
from .selection import Selection
from .viewport import Viewport

OWN_EMITTERS = (
    "project",  # a project store was opened (value: path)
    "recordings",  # the list of recordings changed
    "recording",  # the current recording changed (value: OpenRecording | None)
    "annotations",  # the current recording's events changed (extra: ids)
    "default_label",  # label used for new events
    "vocabulary",  # the project's label vocabulary changed
    "status",  # a short message for the status bar
    "edits",  # an edit of any recording's events or of the list was applied (value: Change)
    "channel",  # the channel viewed, played and detected on (value: int | None = the mix)
)
EMITTERS = (
    *OWN_EMITTERS,
    "selection",  # selected event ids (value: frozenset) - Selection
    "cursor",  # playhead / cursor seconds (value: float) - Viewport
    "view_range",  # visible (start, stop) seconds - Viewport
    "time_selection",  # selected time span (start, stop) or None - Viewport
    "band_selection",  # frequency band (low, high) Hz of a drawn box, or None - Viewport
    "scores",  # detection scores of the current recording (extra: partial) - Detection
    "params",  # post-processing params (value: PostprocessParams) - Detection
    "model",  # the chosen model spec (registry name or path, None = default) - Detection
    "history",  # undo/redo availability changed - History
)


@dataclass(frozen=True)
class OpenRecording:
    """A recording of the open project as the window shows it (the store's row is
    :class:`panns_core.annotations.store.project.Recording`)."""

    id: int
    path: Path
    duration: float
    sample_rate: int
    channels: int = 1

    @property
    def name(self) -> str:
        return self.path.name


class Document:
    """State of the annotator window; see the module docstring."""

    def __init__(self) -> None:
        self.store = None
        self.project_path: Path | None = None
        self._recordings: list[OpenRecording] = []
        self._recording: OpenRecording | None = None
        self._annotations: pd.DataFrame = _empty_annotations()
        self._default_label = "Speech"
        self._channel: int | None = None
        self._unsubscribe = None  # the store subscription of the open project
        self._known_vocabulary: list = []  # as last emitted
        self._applying = 0  # inside apply/undo/redo: a view's error waits for the history
        self._view_error: BaseException | None = None
        self.viewport = Viewport()
        self.selection_model = Selection(self._known_ids)
        self.detection = Detection()
        self.history = History(self._apply_raw)
        self.events = EmitterGroup(self, OWN_EMITTERS)
        for model in (self.selection_model, self.viewport, self.detection, self.history):
            for emitter in model.events:
                self.events.add(emitter)

    # ------------------------------------------------------------ simple state
    @property
    def recordings(self) -> list[OpenRecording]:
        return list(self._recordings)

    @property
    def recording(self) -> OpenRecording | None:
        return self._recording

    @property
    def duration(self) -> float:
        return self._recording.duration if self._recording else 0.0

    @property
    def annotations(self) -> pd.DataFrame:
        """Events of the current recording (schema columns + ``id``), sorted by onset."""
        return self._annotations

    def _known_ids(self) -> set[int]:
        frame = self._annotations
        return set(frame["id"].astype(int)) if len(frame) else set()

    # shortcuts to the composed models (the views' and tests' vocabulary)
    @property
    def selection(self) -> frozenset[int]:
        return self.selection_model.ids

    @selection.setter
    def selection(self, ids: Iterable[int]) -> None:
        self.selection_model.ids = ids

    def select(self, event_id: int | None, *, extend: bool = False,
               toggle: bool = False) -> None:
        self.selection_model.select(event_id, extend=extend, toggle=toggle)

    @property
    def cursor(self) -> float:
        return self.viewport.cursor

    @cursor.setter
    def cursor(self, seconds: float) -> None:
        self.viewport.cursor = seconds

    @property
    def view_range(self) -> tuple[float, float]:
        return self.viewport.view_range

    @view_range.setter
    def view_range(self, span: tuple[float, float]) -> None:
        self.viewport.view_range = span

    def zoom(self, factor: float, center: float | None = None) -> None:
        self.viewport.zoom(factor, center)

    def scroll(self, fraction: float) -> None:
        self.viewport.scroll(fraction)

    def show_all(self) -> None:
        self.viewport.show_all()

    @property
    def time_selection(self) -> tuple[float, float] | None:
        return self.viewport.time_selection

    @time_selection.setter
    def time_selection(self, span: tuple[float, float] | None) -> None:
        self.viewport.time_selection = span

    @property
    def params(self):
        return self.detection.params

    @params.setter
    def params(self, params) -> None:
        self.detection.params = params

    def update_params(self, **changes: Any) -> None:
        self.detection.update_params(**changes)

    @property
    def model(self) -> str | None:
        return self.detection.model

    @model.setter
    def model(self, spec: str | None) -> None:
        self.detection.model = spec

    @property
    def default_label(self) -> str:
        return self._default_label

    @default_label.setter
    def default_label(self, label: str) -> None:
        if label and label != self._default_label:
            self._default_label = label
            self.events.default_label.emit(label)

    @property
    def channel(self) -> int | None:
        """The channel of a multichannel recording that the native-rate spectrogram shows,
        playback plays and detection listens to (0-based); None: the mean of all channels,
        as detection has always done."""
        return self._channel

    @channel.setter
    def channel(self, channel: int | None) -> None:
        if channel is not None:
            channel = int(channel)
            channels = self._recording.channels if self._recording is not None else 1
            if not 0 <= channel < channels:
                from panns_core.errors import PannsError

                raise PannsError(f"This recording has {channels} channel(s); choose channel "
                                 f"1 to {channels} or the mix.")
        if channel != self._channel:
            self._channel = channel
            self.detection.channel = channel
            self.events.channel.emit(channel)
            if self._recording is not None:  # show that channel's scores (or none)
                self.detection.load(self.store, self._recording.id)
                self.events.scores.emit(self.scores, partial=False)

    def status(self, message: str) -> None:
        self.events.status.emit(message)

    # ------------------------------------------------------------------ scores
    @property
    def scores(self):
        """Scores of the current recording (may be partial while detection runs)."""
        return self.detection.scores

    @property
    def scores_partial(self) -> bool:
        return self.detection.partial

    def set_scores(self, scores, *, partial: bool = False, recording_id: int | None = None
                   ) -> None:
        """Scores of a recording (default: the current one); finished ones are kept."""
        current = self._recording.id if self._recording is not None else None
        if recording_id is not None and recording_id != current:
            if not partial and scores is not None:
                self.detection.memory.put(recording_id, scores)
            return
        if current is not None and not partial and scores is not None:
            self.detection.memory.put(current, scores)
        self.detection.show(scores, partial=partial)

    def finished_scores(self, rec_id: int):
        """A recording's last finished scores (memory or disk), or None."""
        return self.detection.cached(self.store, rec_id)

    def save_scores(self, rec_id: int, scores) -> None:
        """Keep a finished run's scores on disk (see :mod:`app.model.detection`)."""
        self.detection.save(self.store, rec_id, scores)

    def derived_events(self) -> pd.DataFrame:
        """Events the current scores and params give (not yet in the store)."""
        return self.detection.derived_events(self._recording)

    # ------------------------------------------------------------------ project
    def open_project(self, path: str | Path) -> None:
        """Open (or create) a project file; the current recording is closed."""
        from panns_core.annotations.store import ProjectStore

        store = ProjectStore(path)
        self.close_project()
        self.store = store
        self.project_path = None if str(path) == ":memory:" else Path(path)
        self._unsubscribe = store.subscribe(self._on_store_change)
        self._reload_recordings()
        self.events.project.emit(self.project_path)
        self._emit_vocabulary()

    def close_project(self) -> None:
        if self.store is None:
            return
        self.set_recording(None)
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.store.close()
        self.store = None
        self.project_path = None
        self._recordings = []
        self.history.clear()
        self.events.recordings.emit([])

    def _require_store(self):
        if self.store is None:
            from panns_core.errors import StoreError

            raise StoreError("No project is open. Open or create a project first.")
        return self.store

    def _reload_recordings(self) -> None:
        store = self._require_store()
        recordings = []
        for rec in store.recordings():
            recordings.append(
                OpenRecording(rec.id, rec.path, float(rec.duration or 0.0),
                          int(rec.sample_rate or 0), int(rec.channels or 1))
            )
        self._recordings = recordings
        self.events.recordings.emit(self.recordings)

    def reload_recordings(self) -> None:
        """Read the project's recordings again (after a worker added some)."""
        self._reload_recordings()

    def relocate(self, folder: str | Path) -> dict[int, Path]:
        """Point missing recordings at their files under ``folder`` (the store's
        relocate); the current recording is read again from its new place."""
        found = self._require_store().relocate(folder)
        if found:
            current = self._recording.id if self._recording is not None else None
            self._reload_recordings()
            if current in found:
                self._recording = None  # force a reload of views from the new path
                self.set_recording(current)
            from panns_core.annotations.store import Change

            self.events.edits.emit(Change(listed=frozenset(found)))
        return found

    def add_recordings(self, paths: Iterable[str | Path]) -> list[int]:
        """Add audio files to the project (header only, no decoding); returns their ids."""
        store = self._require_store()
        ids = [store.add_recording(Path(p), hash=False) for p in paths]
        self._reload_recordings()
        return ids

    def remove_recordings(self, ids: Iterable[int]) -> None:
        """Take recordings out of the project, their events with them (one undo step;
        the audio files stay where they are)."""
        from panns_core.annotations.store import RemoveRecordings

        ids = [int(i) for i in ids]
        if not ids:
            return
        names = [r.name for r in self._recordings if r.id in ids]
        text = f"Remove {names[0]}" if len(names) == 1 else f"Remove {len(ids)} recordings"
        self.apply(RemoveRecordings(ids), text)
        self.history.seal()

    def open_file(self, path: str | Path) -> OpenRecording:
        """Add ``path`` to the project if needed and make it the current recording."""
        (rec_id,) = self.add_recordings([path])
        self.set_recording(rec_id)
        assert self._recording is not None
        return self._recording

    def set_recording(self, rec_id: int | None) -> None:
        """Make a recording current: its events, whole-file view, cursor at 0."""
        if rec_id is None:
            new = None
        else:
            matches = [r for r in self._recordings if r.id == rec_id]
            if not matches:
                self._reload_recordings()
                matches = [r for r in self._recordings if r.id == rec_id]
            if not matches:
                raise KeyError(rec_id)
            new = matches[0]
        if new == self._recording:
            return
        self._recording = new
        if self._channel is not None and (new is None or self._channel >= new.channels):
            self._channel = None  # a channel the new recording does not have: the mix
            self.detection.channel = None
            self.events.channel.emit(None)
        self.selection_model.reset()
        self.viewport.reset(new.duration if new else 0.0)
        self.detection.load(self.store, new.id if new else None)
        self._annotations = self._load_annotations()
        self.events.recording.emit(new)
        self.events.annotations.emit(self._annotations, ids=None)
        self.events.selection.emit(self.selection)
        self.viewport.emit_all()
        self.events.scores.emit(self.scores, partial=False)

    def _load_annotations(self) -> pd.DataFrame:
        if self._recording is None or self.store is None:
            return _empty_annotations()
        frame = self.store.events(self._recording.id)
        return frame.drop(columns=["recording_id"]).reset_index(drop=True)

    def refresh_annotations(self, ids=None) -> None:
        self._annotations = self._load_annotations()
        self.selection_model.prune()
        self.events.annotations.emit(self._annotations, ids=ids)

    def _on_store_change(self, change) -> None:
        """A committed change: views follow. A view that fails while the document is
        applying an undoable step does not cost that step its place in the history: the
        error is raised once the step is recorded (see :meth:`_recorded`)."""
        try:
            self._follow_change(change)
        except Exception as error:
            if not self._applying:
                raise
            if self._view_error is None:
                self._view_error = error

    def _recorded(self) -> None:
        """The step is in the history now: raise a view's error held back meanwhile."""
        error, self._view_error = self._view_error, None
        if error is not None and not self._applying:
            raise error

    def _follow_change(self, change) -> None:
        if change.listed:
            before = [r.id for r in self._recordings]
            self._reload_recordings()
            self._follow_removed(before)
        elif self._recording is not None and self._recording.id in change.recordings:
            self.refresh_annotations(change.added | change.removed | change.updated)
        self.events.edits.emit(change)

    def _follow_removed(self, before: list[int]) -> None:
        """After the list was read again: when the current recording is gone, show the
        one after it (else the one before it)."""
        now = [r.id for r in self._recordings]
        if self._recording is not None and self._recording.id not in now:
            same = [r.id for r in self._recordings if r.path == self._recording.path]
            if same:  # the file is back under another id (a removal undone): stay on it
                self.set_recording(same[0])
                return
            at = before.index(self._recording.id) if self._recording.id in before else 0
            later = [i for i in before[at + 1:] if i in now]
            earlier = [i for i in before[:at] if i in now]
            self.set_recording((later or earlier[::-1] or now[:1] or [None])[0])

    # ------------------------------------------------------------ other writers
    def poll_outside_changes(self) -> bool:
        """When another program (a second window, ``panns-sed detect``/``import``/
        ``train``) committed to the project since the last look: show the project as it
        is now and drop the undo/redo steps its changes touched (and those under them),
        so undo never reverts that program's work; steps on other recordings stay.
        Cheap (``PRAGMA data_version``): the window calls it on a timer."""
        changes = self.store.take_outside() if self.store is not None else []
        if not changes:
            return False
        dropped = sum(self.history.drop(seq, footprint) for seq, footprint in changes)
        self._reload_outside(dropped)
        return True

    def _reload_outside(self, dropped: int) -> None:
        from panns_core.annotations.store import Change

        before = [r.id for r in self._recordings]
        current = self._recording
        self._reload_recordings()
        self._follow_removed(before)
        if current is not None and self._recording is not None \
                and self._recording.id == current.id:
            fresh = next(r for r in self._recordings if r.id == current.id)
            if fresh != current:  # moved or re-read: reload its views from the new facts
                self._recording = None
                self.set_recording(fresh.id)
            else:
                self.refresh_annotations()
        self._emit_vocabulary(force=False)
        self.events.edits.emit(Change(recordings=frozenset(r.id for r in self._recordings)))
        text = ("The project was changed outside this window (another window or panns-sed); "
                "it is shown as it is now")
        if dropped:
            text += (f". {dropped} undo/redo step(s) touching the same events were dropped, "
                     "so undo cannot revert that work")
        self.status(text + ".")

    # --------------------------------------------------------------- vocabulary
    def vocabulary(self) -> list:
        """The project's label vocabulary (store LabelEntry: name, colour, hotkey, ...)."""
        return self.store.labels() if self.store is not None else []

    def label_colours(self) -> dict[str, str]:
        return {entry.name: entry.colour for entry in self.vocabulary() if entry.colour}

    def _emit_vocabulary(self, force: bool = True) -> None:
        labels = self.vocabulary()
        if force or labels != self._known_vocabulary:
            self._known_vocabulary = labels
            self.events.vocabulary.emit(labels)

    def add_label(self, name: str, **fields: Any) -> None:
        """Add a label to the vocabulary (undoable)."""
        from panns_core.annotations.store.vocabulary import AddLabels

        self.apply(AddLabels.named([name], **fields), f"Add label {name}")

    def ensure_labels(self, names: Iterable[str]) -> None:
        self._require_store().ensure_labels(names)
        self._emit_vocabulary()

    def update_label(self, name: str, **fields: Any) -> None:
        """Change a vocabulary entry (undoable): a new ``name`` renames the label on its
        events too; a ``hotkey`` another label has moves to this one."""
        from panns_core.annotations.store import Batch
        from panns_core.annotations.store.vocabulary import RenameLabel, UpdateLabels

        store = self._require_store()
        entry = store.label(name)
        ops = []
        new_name = fields.pop("name", name)
        hotkey = fields.get("hotkey")
        if hotkey:
            owner = next((e for e in store.labels() if e.hotkey == hotkey), None)
            if owner is not None and owner.id != entry.id:
                ops.append(UpdateLabels.set(owner.id, hotkey=None))
        if fields:
            ops.append(UpdateLabels.set(entry.id, **fields))
        if new_name != name:
            ops.append(RenameLabel(name, new_name))
        if ops:
            what = (f"Rename label {name} to {new_name}" if new_name != name
                    else f"Edit label {name}")
            self.apply(Batch(ops), what)

    def rename_label(self, old: str, new: str) -> None:
        """Rename a label in the vocabulary and on all its events (undoable; renaming to
        an existing label merges them)."""
        from panns_core.annotations.store.vocabulary import RenameLabel

        self.apply(RenameLabel(old, new), f"Rename label {old} to {new}")

    def remove_label(self, name: str, *, delete_events: bool = False) -> None:
        """Take a label out of the vocabulary (undoable); its events keep it unless
        ``delete_events``."""
        from panns_core.annotations.store import Batch, DeleteEvents
        from panns_core.annotations.store.vocabulary import RemoveLabels

        ops = [RemoveLabels([name])]
        if delete_events:
            ids = self._require_store().events(labels=[name])["id"].tolist()
            ops.append(DeleteEvents(ids))
        self.apply(Batch(ops), f"Remove label {name}")

    # -------------------------------------------------------------------- edits
    def apply(self, op, text: str, merge_key: str | None = None):
        """Apply a store operation as one undoable step; returns its inverse."""
        from panns_core.errors import ProjectChangedError

        guard = self.history.merge_guard(merge_key) if merge_key else None
        self._applying += 1
        try:
            try:  # a merged step's undo reverts the older part too: it must be ours alone
                inverse, footprint, seq = self._apply_raw(op, *(guard or (None, 0)))
            except ProjectChangedError:
                self.poll_outside_changes()  # reload, drop the touched step: start anew
                inverse, footprint, seq = self._apply_raw(op)
            self.history.push(text, inverse, merge_key, footprint, seq)
        finally:
            self._applying -= 1
        self._recorded()
        return inverse

    def _edit(self, op, text: str):
        """A user's event edit: the labels of the events it accepts, edits or adds join
        the vocabulary in the same undo step (returns the GrowVocabulary inverse)."""
        from panns_core.annotations.store.vocabulary import GrowVocabulary

        return self.apply(GrowVocabulary(op), text)

    def _apply_raw(self, op, guard=None, since: int = 0):
        """The store's apply_tracked: (inverse, footprint, outside sequence number);
        with ``guard``, refused (ProjectChangedError) when another program's commit after
        ``since`` touched it (checked inside the write transaction)."""
        result = self._require_store().apply_tracked(op, guard=guard, since=since)
        self._emit_vocabulary(force=False)  # an edit (or its undo) may change it
        return result

    def _current_id(self) -> int:
        if self._recording is None:
            from panns_core.errors import PannsError

            raise PannsError("No recording is open. Open a recording first.")
        return self._recording.id

    def _ids(self, ids: Iterable[int] | None) -> list[int]:
        return sorted(self.selection if ids is None else {int(i) for i in ids})

    def _edited_status(self, event_id: int) -> str:
        status = self.event(event_id)["status"]
        return ev.ADDED if status == ev.ADDED else ev.EDITED

    def add_event(self, onset: float, offset: float, label: str | None = None, *,
                  select: bool = True, band: tuple[float, float] | None = None) -> int:
        """A human-added event; returns its id (and selects it). ``band`` (low, high) Hz
        makes it a box on the time-frequency views; None spans all frequencies."""
        from panns_core.annotations.store import AddEvents

        onset, offset = sorted((float(onset), float(offset)))
        onset = max(0.0, onset)
        offset = min(self.duration, offset) if self.duration else offset
        if offset - onset < 1e-3:
            from panns_core.errors import PannsError

            raise PannsError("An event needs a duration: drag over a span of time.")
        label = label or self.default_label
        low, high = self._check_band(band) if band is not None else (None, None)
        op = AddEvents.from_records([{
            "recording_id": self._current_id(), "onset": onset, "offset": offset,
            "label": label, "source": ev.HUMAN, "status": ev.ADDED,
            "low_freq": low, "high_freq": high,
        }])
        inverse = self._edit(op, f"Add {label}")
        new_id = int(inverse.ops[0].ids[0])
        if select:
            self.selection = {new_id}
        return new_id

    def add_event_in(self, rec_id: int, onset: float, offset: float, label: str,
                     status: str = ev.ADDED) -> int:
        """A human event in any recording of the project (search hits: ``added`` is a
        positive, ``rejected`` a negative of ``label``); one undoable step; returns its id."""
        from panns_core.annotations.store import AddEvents

        op = AddEvents.from_records([{
            "recording_id": int(rec_id), "onset": float(onset), "offset": float(offset),
            "label": label, "source": ev.HUMAN, "status": status,
        }])
        verb = "Reject" if status == ev.REJECTED else "Add"
        inverse = self._edit(op, f"{verb} {label}")
        return int(inverse.ops[0].ids[0])

    def move_events(self, ids: Iterable[int] | None, delta: float) -> None:
        """Shift events by ``delta`` seconds (clamped to the recording)."""
        from panns_core.annotations.store import UpdateEvents

        ids = self._ids(ids)
        if not ids or delta == 0:
            return
        rows = self._annotations.set_index("id").loc[ids]
        low = -float(rows["onset"].min())
        high = self.duration - float(rows["offset"].max()) if self.duration else delta
        delta = min(max(delta, low), max(high, low))
        if abs(delta) < 1e-9:
            return
        changes = {
            i: {"onset": float(rows.at[i, "onset"]) + delta,
                "offset": float(rows.at[i, "offset"]) + delta,
                "status": self._edited_status(i)}
            for i in ids
        }
        self._edit(UpdateEvents.each(changes), f"Move {len(ids)} event(s)")

    def resize_event(self, event_id: int, onset: float, offset: float) -> None:
        from panns_core.annotations.store import resize

        onset, offset = sorted((float(onset), float(offset)))
        onset = max(0.0, onset)
        if self.duration:
            offset = min(self.duration, offset)
        offset = max(offset, onset + 1e-3)
        self._edit(resize(event_id, onset, offset, status=self._edited_status(event_id)),
                   "Resize event")

    def nyquist(self) -> float:
        """Half the current recording's own rate (the highest frequency it holds)."""
        rec = self._recording
        return rec.sample_rate / 2 if rec is not None and rec.sample_rate else 0.0

    def _check_band(self, band: tuple[float | None, float | None]
                    ) -> tuple[float | None, float | None]:
        """(low, high) Hz made valid: sorted, within 0..Nyquist; (None, None) = no band."""
        low, high = (None if v is None or v != v else float(v) for v in band)
        if low is None and high is None:
            return None, None
        top = self.nyquist() or float("inf")
        low = 0.0 if low is None else low
        high = top if high is None else high
        if low < 0 or high < 0:
            from panns_core.errors import PannsError

            raise PannsError("A frequency band cannot go below 0 Hz; give 0 or more.")
        low, high = sorted((min(low, top), min(high, top)))
        if high - low < 1e-6:
            from panns_core.errors import PannsError

            raise PannsError("A frequency band needs a width: the high edge must be above "
                             "the low edge.")
        return low, high

    def edit_box(self, event_id: int, *, onset: float | None = None,
                 offset: float | None = None, band: tuple[float | None, float | None]
                 | None = None, text: str = "Edit box") -> None:
        """New times and/or band of one event as one undoable step (a box moved or one
        of its edges dragged on a time-frequency view, or a band cell typed in).
        ``band=(None, None)`` takes the band away (the event spans all frequencies)."""
        from panns_core.annotations.store import UpdateEvents

        row = self.event(event_id)
        fields: dict[str, Any] = {}
        if onset is not None or offset is not None:
            new_on = float(row["onset"]) if onset is None else float(onset)
            new_off = float(row["offset"]) if offset is None else float(offset)
            new_on, new_off = sorted((new_on, new_off))
            new_on = max(0.0, new_on)
            if self.duration:
                new_off = min(self.duration, new_off)
            new_off = max(new_off, new_on + 1e-3)
            fields.update(onset=new_on, offset=new_off)
        if band is not None:
            low, high = self._check_band(band)
            fields.update(low_freq=low, high_freq=high)
        old = {k: row[k] for k in fields}
        same = all((v is None and old[k] != old[k]) or v == old[k] for k, v in fields.items())
        if not fields or same:
            return
        fields["status"] = self._edited_status(event_id)
        self._edit(UpdateEvents.set([event_id], **fields), text)

    def set_band(self, event_id: int, low: float | None, high: float | None) -> None:
        """The frequency band of one event (undoable); None, None removes it."""
        self.edit_box(event_id, band=(low, high), text="Edit band")

    def relabel(self, ids: Iterable[int] | None, label: str) -> None:
        from panns_core.annotations.store import UpdateEvents

        ids = self._ids(ids)
        if not ids or not label:
            return
        changes = {i: {"label": label, "status": self._edited_status(i)} for i in ids}
        self._edit(UpdateEvents.each(changes), f"Label {len(ids)} event(s) {label}")
        self.default_label = label

    def delete_events(self, ids: Iterable[int] | None = None) -> None:
        from panns_core.annotations.store import DeleteEvents

        ids = self._ids(ids)
        if ids:
            self.apply(DeleteEvents(ids), f"Delete {len(ids)} event(s)")

    def accept(self, ids: Iterable[int] | None = None) -> None:
        """Confirm events: proposed/rejected ones become accepted (edited/added stay)."""
        from panns_core.annotations.store import UpdateEvents

        ids = self._ids(ids)
        frame = self._annotations.set_index("id")
        changes = {
            i: {"status": ev.ACCEPTED} for i in ids
            if frame.at[i, "status"] in (ev.PROPOSED, ev.REJECTED)
        }
        if changes:
            self._edit(UpdateEvents.each(changes), f"Accept {len(changes)} event(s)")

    def reject(self, ids: Iterable[int] | None = None) -> None:
        from panns_core.annotations.store import set_status

        ids = self._ids(ids)
        frame = self._annotations.set_index("id")
        ids = [i for i in ids if frame.at[i, "status"] != ev.REJECTED]
        if ids:
            self.apply(set_status(ids, ev.REJECTED), f"Reject {len(ids)} event(s)")

    def set_note(self, event_id: int, note: str) -> None:
        from panns_core.annotations.store import UpdateEvents

        self.apply(UpdateEvents.set([event_id], note=note), "Edit note")

    def apply_detection(self, events: pd.DataFrame, *, source: str | None = None,
                        live: bool = False) -> None:
        """Replace the current recording's proposed events by ``events`` (one undo step).

        ``live=True`` (threshold sliders) folds consecutive re-derivations into one step.
        """
        store = self._require_store()
        rec_id = self._current_id()
        op = store.make_replace_proposed(rec_id, events, source=None)
        n = len(events)
        text = f"Detection: {n} proposed event(s)"
        self.apply(op, text, merge_key=f"detect:{rec_id}" if live else None)
        if not live:
            self.history.seal()

    def apply_detection_to(self, rec_id: int, events: pd.DataFrame) -> None:
        """A detection run's proposals for any recording of the project (one undo step)."""
        store = self._require_store()
        op = store.make_replace_proposed(rec_id, events, source=None)
        name = next((r.name for r in self._recordings if r.id == rec_id), str(rec_id))
        self.apply(op, f"Detection on {name}: {len(events)} proposed event(s)")
        self.history.seal()

    def rederive_events(self) -> int:
        """Re-derive proposed events from the cached scores with the current params."""
        if self.scores is None or self._recording is None:
            return 0
        events = self.derived_events()
        self.apply_detection(events, source=self.scores.model_id, live=True)
        return len(events)

    def undo(self) -> bool:
        return self._undo_redo(self.history.undo)

    def redo(self) -> bool:
        return self._undo_redo(self.history.redo)

    def _undo_redo(self, step) -> bool:
        from panns_core.errors import ProjectChangedError

        self.poll_outside_changes()
        self._applying += 1
        try:
            done = step()
        except ProjectChangedError:  # a commit slipped in since the poll above
            self.poll_outside_changes()
            done = False
        finally:
            self._applying -= 1
        self._recorded()
        return done

    # ----------------------------------------------------------------- queries
    def event(self, event_id: int) -> pd.Series:
        rows = self._annotations[self._annotations["id"] == event_id]
        if rows.empty:
            raise KeyError(event_id)
        return rows.iloc[0]

    def event_at(self, seconds: float, label: str | None = None) -> int | None:
        """Id of the shortest event covering ``seconds`` (optionally of one label)."""
        frame = self._annotations
        if frame.empty:
            return None
        hit = (frame["onset"] <= seconds) & (frame["offset"] >= seconds)
        if label is not None:
            hit &= frame["label"] == label
        hits = frame[hit]
        if hits.empty:
            return None
        return int(hits.loc[(hits["offset"] - hits["onset"]).idxmin(), "id"])

    def labels_in_use(self) -> list[str]:
        """Labels of the current recording's events, in order of first appearance."""
        frame = self._annotations.sort_values("onset", kind="stable")
        return list(dict.fromkeys(frame["label"]))

    def neighbour_event(self, step: int) -> int | None:
        """The next (+1) or previous (-1) event from the selection or the cursor."""
        frame = self._annotations.sort_values(["onset", "id"], kind="stable")
        if frame.empty:
            return None
        ids = list(frame["id"].astype(int))
        if self.selection:
            positions = [ids.index(i) for i in self.selection if i in ids]
            pos = (max(positions) if step > 0 else min(positions)) + step
        else:
            onsets = frame["onset"].to_numpy()
            if step > 0:
                pos = int(np.searchsorted(onsets, self.cursor, side="right"))
            else:
                pos = int(np.searchsorted(onsets, self.cursor, side="left")) - 1
        if 0 <= pos < len(ids):
            return ids[pos]
        return None


def _empty_annotations() -> pd.DataFrame:
    frame = ev.empty_events()
    frame.insert(0, "id", pd.Series(dtype=np.int64))
    return frame


