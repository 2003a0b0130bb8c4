"""The document model every widget binds to: plain Python with event emitters, no Qt.

One :class:`Document` holds the open project (a
:class:`~panns_core.annotations.store.ProjectStore`), the current recording and its
annotations, the selection, playhead cursor, visible time range, the detection scores of
the current recording and the post-processing params.
Widgets change it through its methods and properties; it tells every listener through
``doc.events.<name>`` (see :data:`EMITTERS`), each emitter firing only on real changes.

Every annotation edit goes through one method here, which calls one store edit
operation (committed at once) and records the inverse on :attr:`Document.history`, so
undo/redo covers every change, a detection run included.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from panns_core import events as ev
from panns_core.errors import AudioError

from .evented import EmitterGroup

log = logging.getLogger(__name__)

EMITTERS = (
    "project",  # a project store was opened (value: path)
    "recordings",  # the list of recordings changed
    "recording",  # the current recording changed (value: Recording | None)
    "annotations",  # the current recording's events changed (extra: ids)
    "selection",  # selected event ids (value: frozenset)
    "cursor",  # playhead / cursor seconds (value: float)
    "view_range",  # visible (start, stop) seconds
    "time_selection",  # selected time span (start, stop) or None
    "scores",  # detection scores of the current recording (extra: partial: bool)
    "params",  # post-processing params (value: PostprocessParams)
    "model",  # the chosen model spec (registry name or path, None = default)
    "default_label",  # label used for new events
    "vocabulary",  # the project's label vocabulary changed
    "history",  # undo/redo availability changed
    "status",  # a short message for the status bar
)

MIN_SPAN = 0.01  # seconds: the narrowest view


@dataclass(frozen=True)
class Recording:
    """A recording of the project as the GUI needs it."""

    id: int
    path: Path
    duration: float
    sample_rate: int
    channels: int = 1

    @property
    def name(self) -> str:
        return self.path.name


def read_recording_info(path: str | Path) -> tuple[float, int, int]:
    """(duration, sample_rate, channels) of an audio file, without decoding it."""
    try:
        from panns_core.audio import audio_info

        info = audio_info(path)
        return float(info.duration), int(info.sample_rate), int(info.channels)
    except ImportError:  # pragma: no cover - audio module always present once built
        import soundfile as sf

        try:
            info = sf.info(str(path))
        except Exception as error:
            raise AudioError(f"{path}: cannot read this file as audio ({error}).") from None
        return info.frames / info.samplerate, info.samplerate, info.channels


class Document:
    """State of the annotator window; see the module docstring."""

    def __init__(self) -> None:
        self.events = EmitterGroup(self, EMITTERS)
        self.store = None
        self.project_path: Path | None = None
        self._recordings: list[Recording] = []
        self._recording: Recording | None = None
        self._annotations: pd.DataFrame = _empty_annotations()
        self._selection: frozenset[int] = frozenset()
        self._cursor = 0.0
        self._view_range: tuple[float, float] = (0.0, 1.0)
        self._time_selection: tuple[float, float] | None = None
        self._scores = None
        self._scores_partial = False
        self._scores_by_recording: dict[int, Any] = {}
        self._params = None
        self._model: str | None = None
        self._default_label = "Speech"
        self.history = History(self)

    # ------------------------------------------------------------ simple state
    @property
    def recordings(self) -> list[Recording]:
        return list(self._recordings)

    @property
    def recording(self) -> Recording | None:
        return self._recording

    @property
    def duration(self) -> float:
        return self._recording.duration if self._recording else 0.0

    @property
    def annotations(self) -> pd.DataFrame:
        """Events of the current recording (schema columns + ``id``), sorted by onset."""
        return self._annotations

    @property
    def selection(self) -> frozenset[int]:
        return self._selection

    @selection.setter
    def selection(self, ids: Iterable[int]) -> None:
        known = set(self._annotations["id"].astype(int)) if len(self._annotations) else set()
        new = frozenset(int(i) for i in ids if int(i) in known)
        if new != self._selection:
            self._selection = new
            self.events.selection.emit(new)

    def select(self, event_id: int | None, *, extend: bool = False, toggle: bool = False):
        """Click semantics: replace, extend (shift) or toggle (ctrl) the selection."""
        if event_id is None:
            if not extend and not toggle:
                self.selection = ()
            return
        current = set(self._selection)
        if toggle:
            current ^= {event_id}
        elif extend:
            current.add(event_id)
        else:
            current = {event_id}
        self.selection = current

    @property
    def cursor(self) -> float:
        return self._cursor

    @cursor.setter
    def cursor(self, seconds: float) -> None:
        seconds = float(min(max(0.0, seconds), self.duration or 0.0))
        if seconds != self._cursor:
            self._cursor = seconds
            self.events.cursor.emit(seconds)

    @property
    def view_range(self) -> tuple[float, float]:
        return self._view_range

    @view_range.setter
    def view_range(self, span: tuple[float, float]) -> None:
        new = self._clamp_range(*span)
        if not np.allclose(new, self._view_range, rtol=0, atol=1e-9):
            self._view_range = new
            self.events.view_range.emit(new)

    def _clamp_range(self, start: float, stop: float) -> tuple[float, float]:
        duration = self.duration or 1.0
        width = min(max(stop - start, MIN_SPAN), duration)
        start = min(max(0.0, start), duration - width)
        return (float(start), float(start + width))

    def zoom(self, factor: float, center: float | None = None) -> None:
        """Zoom the time axis by ``factor`` (< 1 zooms in) around ``center`` seconds."""
        start, stop = self._view_range
        center = (start + stop) / 2 if center is None else center
        self.view_range = (center - (center - start) * factor, center + (stop - center) * factor)

    def scroll(self, fraction: float) -> None:
        """Shift the view by ``fraction`` of its width."""
        start, stop = self._view_range
        shift = (stop - start) * fraction
        self.view_range = (start + shift, stop + shift)

    def show_all(self) -> None:
        self.view_range = (0.0, self.duration or 1.0)

    @property
    def time_selection(self) -> tuple[float, float] | None:
        return self._time_selection

    @time_selection.setter
    def time_selection(self, span: tuple[float, float] | None) -> None:
        if span is not None:
            a, b = sorted((float(span[0]), float(span[1])))
            a, b = max(0.0, a), min(self.duration, b)
            span = (a, b) if b - a > 1e-6 else None
        if span != self._time_selection:
            self._time_selection = span
            self.events.time_selection.emit(span)

    @property
    def params(self):
        """Post-processing params; changing them re-derives events from cached scores."""
        if self._params is None:
            from panns_core.detection.postprocess import PostprocessParams

            self._params = PostprocessParams(threshold=0.3, off_threshold=0.15, top_k=10)
        return self._params

    @params.setter
    def params(self, params) -> None:
        if params != self._params:
            self._params = params
            self.events.params.emit(params)

    def update_params(self, **changes: Any) -> None:
        self.params = replace(self.params, **changes)

    @property
    def model(self) -> str | None:
        return self._model

    @model.setter
    def model(self, spec: str | None) -> None:
        if spec != self._model:
            self._model = spec
            self.events.model.emit(spec)

    @property
    def default_label(self) -> str:
        return self._default_label

    @default_label.setter
    def default_label(self, label: str) -> None:
        if label and label != self._default_label:
            self._default_label = label
            self.events.default_label.emit(label)

    def status(self, message: str) -> None:
        self.events.status.emit(message)

    # ------------------------------------------------------------------ scores
    @property
    def scores(self):
        """Scores of the current recording (may be partial while detection runs)."""
        return self._scores

    @property
    def scores_partial(self) -> bool:
        return self._scores_partial

    def set_scores(self, scores, *, partial: bool = False, recording_id: int | None = None
                   ) -> None:
        """Scores of a recording (default: the current one); kept per recording."""
        if recording_id is not None and (
            self._recording is None or recording_id != self._recording.id
        ):
            if not partial and scores is not None:
                self._scores_by_recording[recording_id] = scores
            return
        if self._recording is not None and not partial and scores is not None:
            self._scores_by_recording[self._recording.id] = scores
        self._scores = scores
        self._scores_partial = partial
        self.events.scores.emit(scores, partial=partial)

    def _model_key(self) -> str:
        return self._model or "<default model>"

    def save_scores(self, rec_id: int, scores) -> None:
        """Keep a finished run's scores on disk and in the project (per recording and
        chosen model), so the controls can re-derive events after a restart too."""
        import hashlib

        from panns_core.paths import cache_dir

        if self.store is None:
            return
        tag = hashlib.sha1(f"{self.project_path}|{rec_id}|{self._model_key()}".encode())
        path = cache_dir() / "scores" / f"{tag.hexdigest()[:20]}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            scores.save(path)
            self.store.cache_scores(rec_id, self._model_key(), path)
        except Exception as error:  # a cache that cannot be written costs only time
            log.debug("scores not cached: %s", error)

    def _scores_for(self, rec_id: int):
        scores = self._scores_by_recording.get(rec_id)
        if scores is None and self.store is not None:
            try:
                path = self.store.cached_scores(rec_id, self._model_key())
                if path is not None:
                    from panns_core.detection.scores import Scores

                    scores = Scores.load(path)
                    self._scores_by_recording[rec_id] = scores
            except Exception as error:
                log.debug("cached scores not loaded: %s", error)
        return scores

    def derived_events(self) -> pd.DataFrame:
        """Events the current scores and params give (not yet in the store)."""
        if self._scores is None or self._recording is None:
            return ev.empty_events()
        from panns_core.detection.postprocess import scores_to_events

        return scores_to_events(self._scores, self.params, recording=str(self._recording.path))

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
        self.events.vocabulary.emit(self.vocabulary())

    def close_project(self) -> None:
        if self.store is None:
            return
        self.set_recording(None)
        unsubscribe = getattr(self, "_unsubscribe", None)
        if unsubscribe:
            unsubscribe()
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
                Recording(rec.id, rec.path, float(rec.duration or 0.0),
                          int(rec.sample_rate or 0), int(rec.channels or 1))
            )
        self._recordings = recordings
        self.events.recordings.emit(self.recordings)

    def add_recordings(self, paths: Iterable[str | Path]) -> list[int]:
        """Add audio files to the project (header only, no decoding); returns their ids."""
        store = self._require_store()
        ids = [store.add_recording(Path(p), hash=False) for p in paths]
        self._reload_recordings()
        return ids

    def open_file(self, path: str | Path) -> Recording:
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
        self._selection = frozenset()
        self._time_selection = None
        self._cursor = 0.0
        self._scores = self._scores_for(new.id) if new else None
        self._scores_partial = False
        self._view_range = (0.0, new.duration if new and new.duration > 0 else 1.0)
        self._annotations = self._load_annotations()
        self.events.recording.emit(new)
        self.events.annotations.emit(self._annotations, ids=None)
        self.events.selection.emit(self._selection)
        self.events.time_selection.emit(None)
        self.events.cursor.emit(0.0)
        self.events.view_range.emit(self._view_range)
        self.events.scores.emit(self._scores, partial=False)

    def _load_annotations(self) -> pd.DataFrame:
        if self._recording is None or self.store is None:
            return _empty_annotations()
        frame = self.store.events(self._recording.id)
        return frame.drop(columns=["recording_id"]).reset_index(drop=True)

    def refresh_annotations(self, ids=None) -> None:
        self._annotations = self._load_annotations()
        known = set(self._annotations["id"].astype(int))
        if not self._selection <= known:
            self._selection = frozenset(self._selection & known)
            self.events.selection.emit(self._selection)
        self.events.annotations.emit(self._annotations, ids=ids)

    def _on_store_change(self, change) -> None:
        if self._recording is not None and self._recording.id in change.recordings:
            self.refresh_annotations(change.added | change.removed | change.updated)

    # --------------------------------------------------------------- vocabulary
    def vocabulary(self) -> list:
        """The project's label vocabulary (store LabelEntry: name, colour, hotkey, ...)."""
        return self.store.labels() if self.store is not None else []

    def label_colours(self) -> dict[str, str]:
        return {entry.name: entry.colour for entry in self.vocabulary() if entry.colour}

    def add_label(self, name: str, **fields: Any) -> None:
        self._require_store().add_label(name, **fields)
        self.events.vocabulary.emit(self.vocabulary())

    def ensure_labels(self, names: Iterable[str]) -> None:
        self._require_store().ensure_labels(names)
        self.events.vocabulary.emit(self.vocabulary())

    def update_label(self, name: str, **fields: Any) -> None:
        self._require_store().update_label(name, **fields)
        self.events.vocabulary.emit(self.vocabulary())

    def remove_label(self, name: str) -> None:
        self._require_store().remove_label(name)
        self.events.vocabulary.emit(self.vocabulary())

    # -------------------------------------------------------------------- edits
    def apply(self, op, text: str, merge_key: str | None = None):
        """Apply a store operation as one undoable step; returns its inverse."""
        inverse = self._apply_raw(op)
        self.history.push(text, inverse, merge_key)
        return inverse

    def _apply_raw(self, op):
        return self._require_store().apply(op)

    def _current_id(self) -> int:
        if self._recording is None:
            from panns_core.errors import PannsError

            raise PannsError("No recording is open. Open a recording first.")
        return self._recording.id

    def _ids(self, ids: Iterable[int] | None) -> list[int]:
        return sorted(self._selection if ids is None else {int(i) for i in ids})

    def _edited_status(self, event_id: int) -> str:
        status = self.event(event_id)["status"]
        return ev.ADDED if status == ev.ADDED else ev.EDITED

    def add_event(self, onset: float, offset: float, label: str | None = None, *,
                  select: bool = True) -> int:
        """A human-added event; returns its id (and selects it)."""
        from panns_core.annotations.store import AddEvents

        onset, offset = sorted((float(onset), float(offset)))
        onset = max(0.0, onset)
        offset = min(self.duration, offset) if self.duration else offset
        if offset - onset < 1e-3:
            from panns_core.errors import PannsError

            raise PannsError("An event needs a duration: drag over a span of time.")
        label = label or self.default_label
        op = AddEvents.from_records([{
            "recording_id": self._current_id(), "onset": onset, "offset": offset,
            "label": label, "source": ev.HUMAN, "status": ev.ADDED,
        }])
        inverse = self.apply(op, f"Add {label}")
        new_id = int(inverse.ids[0])
        if select:
            self.selection = {new_id}
        return new_id

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
        self.apply(UpdateEvents.each(changes), f"Move {len(ids)} event(s)")

    def resize_event(self, event_id: int, onset: float, offset: float) -> None:
        from panns_core.annotations.store import resize

        onset, offset = sorted((float(onset), float(offset)))
        onset = max(0.0, onset)
        if self.duration:
            offset = min(self.duration, offset)
        offset = max(offset, onset + 1e-3)
        self.apply(resize(event_id, onset, offset, status=self._edited_status(event_id)),
                   "Resize event")

    def relabel(self, ids: Iterable[int] | None, label: str) -> None:
        from panns_core.annotations.store import UpdateEvents

        ids = self._ids(ids)
        if not ids or not label:
            return
        changes = {i: {"label": label, "status": self._edited_status(i)} for i in ids}
        self.apply(UpdateEvents.each(changes), f"Label {len(ids)} event(s) {label}")
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
            self.apply(UpdateEvents.each(changes), f"Accept {len(changes)} event(s)")

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
        if self._scores is None or self._recording is None:
            return 0
        events = self.derived_events()
        self.apply_detection(events, source=self._scores.model_id, live=True)
        return len(events)

    def undo(self) -> bool:
        return self.history.undo()

    def redo(self) -> bool:
        return self.history.redo()

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
        if self._selection:
            anchor = max(self._selection) if step > 0 else min(self._selection)
            positions = [ids.index(i) for i in self._selection if i in ids]
            pos = (max(positions) if step > 0 else min(positions)) + step
            del anchor
        else:
            onsets = frame["onset"].to_numpy()
            if step > 0:
                pos = int(np.searchsorted(onsets, self._cursor, side="right"))
            else:
                pos = int(np.searchsorted(onsets, self._cursor, side="left")) - 1
        if 0 <= pos < len(ids):
            return ids[pos]
        return None


def _empty_annotations() -> pd.DataFrame:
    frame = ev.empty_events()
    frame.insert(0, "id", pd.Series(dtype=np.int64))
    return frame


class History:
    """Undo/redo of document edits: each entry is (text, store operation to apply).

    Undoing applies the stored inverse and keeps the operation the store returns as
    the redo (and the other way round), so both directions are exact. Plain Python;
    Qt undo actions and any undo view listen to ``doc.events.history``. Consecutive
    pushes with the same ``merge_key`` fold into one step (live threshold changes).
    """

    def __init__(self, document: Document, limit: int = 500) -> None:
        self._doc = document
        self._undo: list[list[Any]] = []  # [text, op, merge_key]
        self._redo: list[list[Any]] = []
        self.limit = limit

    def push(self, text: str, undo_op, merge_key: str | None = None) -> None:
        from panns_core.annotations.store import Batch

        if merge_key and self._undo and self._undo[-1][2] == merge_key and not self._redo:
            # undo of the merged step: undo the newest part, then the older ones
            self._undo[-1][1] = Batch((undo_op, self._undo[-1][1]))
        else:
            self._undo.append([text, undo_op, merge_key])
            del self._undo[: -self.limit]
        self._redo.clear()
        self._doc.events.history.emit(self)

    def seal(self) -> None:
        """Stop merging into the newest step."""
        if self._undo:
            self._undo[-1][2] = None

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
        self._doc.events.history.emit(self)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_text(self) -> str:
        return self._undo[-1][0] if self._undo else ""

    @property
    def redo_text(self) -> str:
        return self._redo[-1][0] if self._redo else ""

    @property
    def undo_texts(self) -> list[str]:
        return [entry[0] for entry in self._undo]

    @property
    def redo_texts(self) -> list[str]:
        return [entry[0] for entry in reversed(self._redo)]

    def undo(self) -> bool:
        if not self._undo:
            return False
        text, op, _ = self._undo.pop()
        redo_op = self._doc._apply_raw(op)
        self._redo.append([text, redo_op, None])
        self._doc.events.history.emit(self)
        return True

    def redo(self) -> bool:
        if not self._redo:
            return False
        text, op, _ = self._redo.pop()
        undo_op = self._doc._apply_raw(op)
        self._undo.append([text, undo_op, None])
        self._doc.events.history.emit(self)
        return True


def finite_or(value: float, default: float) -> float:
    return value if isinstance(value, float | int) and math.isfinite(value) else default
