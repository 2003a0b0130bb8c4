"""The validation pass and the rule that picks the best epoch.

:class:`Validator` scores the validation recordings with the current weights, turns
the scores into events as detection does (threshold, median filter) and compares
them with the reference events. :func:`selection_score` and :func:`improves` are the
one place that decides which epoch is kept and when patience runs out: change them
(and the metrics :meth:`Validator.validate` returns) together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .config import TrainConfig
from .data import LabelledRecording, segment_targets
from .heads import head_outputs
from .steps import ClipGeometry, autocast_for, bce

SELECTION_METRIC = "event_f1"
_BATCH = 16


def selection_score(metrics: Mapping[str, Any] | None) -> float | None:
    """The number the best epoch maximises (None: no validation set)."""
    return None if metrics is None else metrics[SELECTION_METRIC]


def improves(score: float | None, best: float) -> bool:
    """Whether ``score`` beats ``best``; without validation every epoch does."""
    return score is None or score > best + 1e-6


class Validator:
    """Metrics of the current weights on the validation recordings.

    ``indices``: the validation recordings this process scores (none but on the main
    process). Their audio is loaded once, unless ``sliced`` (head-only on a SED model:
    each recording's segment embeddings are scored at once). The head-only strategy sets
    :attr:`embeddings` (from :mod:`.strategies`) before the first validation.
    """

    def __init__(self, model: nn.Module, recordings: Sequence[LabelledRecording],
                 indices: Sequence[int], labels: Sequence[str], *, config: TrainConfig,
                 geometry: ClipGeometry, device: torch.device, sliced: bool) -> None:  # fmt: skip
        self.model = model
        self.recordings = recordings
        self.indices = list(indices)
        self.labels = list(labels)
        self.config = config
        self.geometry = geometry
        self.device = device
        self.sliced = sliced
        self.audio = {} if sliced else {i: self._load(i) for i in self.indices}
        self.embeddings: dict[int, torch.Tensor] | None = None

    def _load(self, index: int) -> np.ndarray:
        from ..audio import load_audio

        x, _ = load_audio(self.recordings[index].path, self.geometry.sample_rate)
        return x

    def windows(self, index: int) -> tuple[np.ndarray, list[float]]:
        """Adjacent windows of whole segments covering the recording (zero padded)."""
        x = self.audio[index]
        size = self.geometry.val_len
        count = max(1, math.ceil(len(x) / size))
        padded = np.pad(x, (0, count * size - len(x)))
        starts = [k * size / self.geometry.sample_rate for k in range(count)]
        return padded.reshape(count, size), starts

    @torch.no_grad()
    def validate(self) -> dict[str, Any] | None:
        """The metrics (None when this process has no validation recordings)."""
        if not self.indices:
            return None
        from ..detection.postprocess import PostprocessParams

        model = self.model
        was = model.training
        model.eval()
        params = PostprocessParams(
            threshold=self.config.threshold, median_seconds=self.config.median_seconds
        )
        estimated, reference, durations, losses = [], [], {}, []
        for index in self.indices:
            rec = self.recordings[index]
            probs = self._scores(index, rec, losses)
            self._add_events(rec, probs, params, estimated, reference, durations)
        model.train(was)
        return self._metrics(reference, estimated, durations, losses)

    def _scores(self, index: int, rec: LabelledRecording, losses: list[float]) -> np.ndarray:
        """Segment probabilities (segment, label) of one recording; adds its losses."""
        model, n_labels = self.model, len(self.labels)
        seconds = self.geometry.segment_seconds
        embeddings = self.embeddings
        if self.sliced:
            # sliced head-only: the whole recording's segments at once, as detection sees it
            seg = head_outputs(model, embeddings[index], False)[0][0].float().cpu()
            t, w = segment_targets(rec, 0.0, len(seg), seconds, n_labels, 1.0)
            losses.append(float(bce(seg, torch.from_numpy(t), torch.from_numpy(w), True)))
            return torch.sigmoid(seg).numpy()
        windows, starts = self.windows(index)
        seg_probs = []
        for k in range(0, len(windows), _BATCH):
            if embeddings is not None:
                seg, clip, is_logit = head_outputs(model, embeddings[index][k : k + _BATCH], False)
            else:
                with autocast_for(self.device, self.config.precision):
                    out = model(torch.from_numpy(windows[k : k + _BATCH]).to(self.device))
                seg = out.get("segmentwise_logits")
                is_logit = "clipwise_logits" in out
                clip = out["clipwise_logits"] if is_logit else out["clipwise_output"]
            if seg is None:  # tagging model: the window is the segment
                seg = clip[:, None, :] if is_logit else torch.logit(clip.float()[:, None, :], 1e-7)
            seg = seg.float().cpu()
            for j, start in enumerate(starts[k : k + _BATCH]):
                t, w = segment_targets(rec, start, seg.shape[1], seconds, n_labels, 1.0)
                losses.append(float(bce(seg[j], torch.from_numpy(t), torch.from_numpy(w), True)))
            seg_probs.append(torch.sigmoid(seg).reshape(-1, n_labels).numpy())
        return np.concatenate(seg_probs)

    def _add_events(self, rec, probs, params, estimated, reference, durations) -> None:
        from ..detection.postprocess import scores_to_events
        from ..detection.scores import Scores

        seconds = self.geometry.segment_seconds
        keep = max(1, math.ceil(rec.duration / seconds - 1e-9))
        duration = max(rec.duration, (min(keep, len(probs)) - 1) * seconds + 1e-6)
        scores = Scores(probs[:keep], seconds, self.labels, duration=duration)
        estimated.append(scores_to_events(scores, params, recording=rec.key))
        reference.append(rec.reference_events(self.labels))
        durations[rec.key] = rec.duration

    def _metrics(self, reference, estimated, durations, losses) -> dict[str, Any]:
        import pandas as pd

        from ..evaluation import event_based, segment_based

        ref, est = pd.concat(reference), pd.concat(estimated)
        event = event_based.evaluate(ref, est, labels=self.labels)
        segment = segment_based.evaluate(ref, est, labels=self.labels, durations=durations)
        o = event["overall"]
        return {
            "event_f1": o["f1"] or 0.0,
            "event_precision": o["precision"],
            "event_recall": o["recall"],
            "event_error_rate": o["error_rate"],
            "segment_f1": segment["overall"]["f1"] or 0.0,
            "segment_error_rate": segment["overall"]["error_rate"],
            "loss": float(np.mean(losses)),
            "class_event_f1": {k: v["f1"] for k, v in event["class_wise"].items()},
        }
