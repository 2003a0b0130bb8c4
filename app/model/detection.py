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
from panns_core.detection.scores import channel_hash, channel_of

from .evented import EmitterGroup

log = logging.getLogger(__name__)

DEFAULT_MODEL_KEY = "<default model>"


__all__ = ["channel_hash", "channel_of"]


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


def window_default_params():
    """The window's post-processing for a model without calibrated params."""
    from panns_core.detection.postprocess import PostprocessParams

    return PostprocessParams(threshold=0.3, off_threshold=0.15, top_k=10)


class Detection:
    """Model choice, params and scores; emitters ``scores`` (extra: partial), ``params``
    and ``model``, each firing only on a real change (``scores`` on every set).

    A model that ships post-processing calibrated on its validation recordings (a
    fine-tuned model: ``Detector.postprocess``) has it become the params when the model is
    chosen or used (:meth:`adopt_model_params`, called with what the model carries once it
    is known), unless the params were changed by hand for this project
    (:attr:`params_by_hand`, saved with the project's window state;
    :meth:`use_model_params` goes back to the model's). Choosing another model drops
    the previous model's calibrated params (they are that model's) for the window's
    defaults, until the new model's are known.
    """

    def __init__(self) -> None:
        self.events = EmitterGroup(self, ("scores", "params", "model"))
        self._scores = None
        self._partial = False
        self._params = None
        self._model: str | None = None
        self._model_params = None  # the chosen model's calibrated params, once known
        self.params_by_hand = False
        self.memory = ScoreMemory()
        self._disk = None  # the ScoreCache, made on first save
        self.channel: int | None = None  # scores of other channels are not shown

    # ------------------------------------------------------------------ choice
    @property
    def model(self) -> str | None:
        """The chosen model spec (registry name or path; None = the default model)."""
        return self._model

    @model.setter
    def model(self, spec: str | None) -> None:
        if spec != self._model:
            previous = self._model_params
            self._model = spec
            self._model_params = None
            if previous is not None and self._params == previous and not self.params_by_hand:
                self.params = window_default_params()  # not this model's calibration
            self.events.model.emit(spec)

    @property
    def model_key(self) -> str:
        return self._model or DEFAULT_MODEL_KEY

    @property
    def params(self):
        """Post-processing params; changing them re-derives events from cached scores."""
        if self._params is None:
            self._params = window_default_params()
        return self._params

    @params.setter
    def params(self, params) -> None:
        if params != self._params:
            self._params = params
            self.events.params.emit(params)

    def update_params(self, **changes: Any) -> None:
        self.params = replace(self.params, **changes)

    # ------------------------------------------------------- the model's calibration
    @property
    def model_params(self):
        """The chosen model's calibrated post-processing (None: it has none, or it is not
        known yet: the model has not been loaded since it was chosen)."""
        return self._model_params

    @property
    def params_are_models(self) -> bool:
        """True while the params are the chosen model's calibrated ones."""
        return self._model_params is not None and self.params == self._model_params

    def adopt_model_params(self, spec: str | None, calibrated) -> bool:
        """What model ``spec`` carries is now known: its calibrated params (or None).
        They become the params unless those were set by hand; True if they did. An
        answer for a model that is no longer the chosen one is ignored."""
        if spec != self._model:
            return False
        self._model_params = calibrated
        if calibrated is None or self.params_by_hand:
            return False
        self.params = calibrated
        return True

    def set_params_by_hand(self, **changes: Any) -> None:
        """The user changed the post-processing: from now on the model's calibrated
        params no longer replace them (for this project)."""
        self.params_by_hand = True
        self.update_params(**changes)

    def use_model_params(self) -> None:
        """Back to the model's calibrated params (when known), and let them follow the
        model again."""
        self.params_by_hand = False
        if self._model_params is not None:
            self.params = self._model_params

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
        if scores is not None and channel_of(scores.audio_hash) != self.channel:
            scores = None
        if scores is None and store is not None:
            try:
                path = store.cached_scores(rec_id, self.model_key)
                if path is not None:
                    from panns_core.detection.scores import Scores

                    scores = Scores.load(path)
                    if channel_of(scores.audio_hash) != self.channel:
                        return None  # detected on another channel
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
