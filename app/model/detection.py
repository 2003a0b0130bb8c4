"""Detection state of the window: the chosen model, the post-processing params and the
scores of the current recording, with the one score cache of the application.

Scores live on disk in :class:`panns_core.detection.scores.ScoreCache` (keyed by the
audio's hash, the model id and the precision); the project remembers which entry belongs
to each (recording, chosen model), so they come back after a restart. A small in-memory
LRU (:class:`ScoreMemory`) keeps the last recordings' scores for quick switching.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import replace
from typing import Any

import pandas as pd

from panns_core import events as ev

from .evented import EmitterGroup

log = logging.getLogger(__name__)

DEFAULT_MODEL_KEY = "<default model>"


class ScoreMemory:
    """The last ``limit`` recordings' scores in memory (least recently used goes first)."""

    def __init__(self, limit: int = 16) -> None:
        self.limit = limit
        self._items: OrderedDict[int, Any] = OrderedDict()

    def get(self, rec_id: int):
        scores = self._items.get(rec_id)
        if scores is not None:
            self._items.move_to_end(rec_id)
        return scores

    def put(self, rec_id: int, scores) -> None:
        self._items[rec_id] = scores
        self._items.move_to_end(rec_id)
        while len(self._items) > self.limit:
            self._items.popitem(last=False)


class Detection:
    """Model choice, params and scores; emitters ``scores`` (extra: partial), ``params``
    and ``model``, each firing only on a real change (``scores`` on every set)."""

    def __init__(self) -> None:
        self.events = EmitterGroup(self, ("scores", "params", "model"))
        self._scores = None
        self._partial = False
        self._params = None
        self._model: str | None = None
        self.memory = ScoreMemory()
        self._disk = None  # the ScoreCache, made on first save

    # ------------------------------------------------------------------ choice
    @property
    def model(self) -> str | None:
        """The chosen model spec (registry name or path; None = the default model)."""
        return self._model

    @model.setter
    def model(self, spec: str | None) -> None:
        if spec != self._model:
            self._model = spec
            self.events.model.emit(spec)

    @property
    def model_key(self) -> str:
        return self._model or DEFAULT_MODEL_KEY

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

    # ------------------------------------------------------------------ scores
    @property
    def scores(self):
        """Scores of the current recording (may be partial while detection runs)."""
        return self._scores

    @property
    def partial(self) -> bool:
        return self._partial

    def show(self, scores, *, partial: bool = False) -> None:
        """Make ``scores`` the current recording's (emits ``scores``)."""
        self._scores = scores
        self._partial = partial
        self.events.scores.emit(scores, partial=partial)

    def load(self, store, rec_id: int | None) -> None:
        """The scores of a newly current recording, from memory or disk (no event)."""
        self._scores = self.cached(store, rec_id) if rec_id is not None else None
        self._partial = False

    def cached(self, store, rec_id: int):
        """A recording's finished scores: memory first, then the project's disk entry."""
        scores = self.memory.get(rec_id)
        if scores is None and store is not None:
            try:
                path = store.cached_scores(rec_id, self.model_key)
                if path is not None:
                    from panns_core.detection.scores import Scores

                    scores = Scores.load(path)
                    self.memory.put(rec_id, scores)
            except Exception as error:
                log.debug("cached scores not loaded: %s", error)
        return scores

    def save(self, store, rec_id: int, scores) -> None:
        """Keep a finished run's scores in the disk cache and note the entry in the
        project (per recording and chosen model), so they survive a restart."""
        if store is None or not scores.audio_hash or not scores.model_id:
            return
        from panns_core.detection.scores import ScoreCache

        if self._disk is None:
            self._disk = ScoreCache()
        try:
            path = self._disk.put(scores)
            store.cache_scores(rec_id, self.model_key, path, audio_hash=scores.audio_hash)
        except Exception as error:  # a cache that cannot be written costs only time
            log.debug("scores not cached: %s", error)

    def derived_events(self, recording) -> pd.DataFrame:
        """Events the current scores and params give for ``recording`` (not stored)."""
        if self._scores is None or recording is None:
            return ev.empty_events()
        from panns_core.detection.postprocess import scores_to_events

        return scores_to_events(self._scores, params_for(self._scores, self.params),
                                recording=str(recording.path))


def params_for(scores, params):
    """``params`` with its class filter cut to the classes ``scores`` has: a filter
    naming a class the model lacks (one of another model, or a label of your own) finds
    no events of it instead of failing."""
    if params.classes is None or scores is None:
        return params
    from dataclasses import replace

    known = set(scores.labels)
    return replace(params, classes=[c for c in params.classes if c in known])
