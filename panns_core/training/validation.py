"""The validation pass and the rule that picks the best epoch.

:class:`Validator` scores the validation recordings with the current weights, turns
the scores into events as detection does (threshold, median filter) and compares
them with the reference events. :func:`selection_score`, :func:`improves` and
:func:`patience_ran_out` are the one place that decides which epoch is kept and when
patience runs out: change them (and the metrics :meth:`Validator.validate` returns)
together.

The selection measure is threshold-free: the segment-level mean average precision
(``segment_map``: AP per class over every validation segment that carries a loss
weight, averaged over the classes with positives). Thresholded event F1 stays 0
until probabilities cross the threshold, so early in a run trained from scratch it
cannot tell a learning model from a dead one; AP ranks the scores and sees learning
start. ``event_f1`` / ``segment_f1`` (at ``config.threshold``) are still reported.
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

SELECTION_METRIC = "segment_map"
#: early stopping never ends a run before this share of its epochs / time budget
MIN_RUN_FRACTION = 0.5
_BATCH = 16


def selection_score(metrics: Mapping[str, Any] | None) -> float | None:
    """The number the best epoch maximises (None: no validation set)."""
    return None if metrics is None else float(metrics[SELECTION_METRIC])


def improves(score: float | None, best: float) -> bool:
    """Whether ``score`` beats ``best``; without validation every epoch does."""
    return score is None or score > best + 1e-6


def patience_ran_out(bad_validations: int, patience: int, progress: float) -> bool:
    """Stop early? ``bad_validations`` in a row did not improve, and at least
    :data:`MIN_RUN_FRACTION` of the run (``progress``: the share of the planned epochs
    or of the time budget used, whichever is larger) is behind."""
    return bad_validations >= patience and progress >= MIN_RUN_FRACTION


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float | None:
    """Average precision of ``scores`` ranking the positives of ``targets`` (0/1);
    None without positives. Non-interpolated (as sklearn's), ties in score order."""
    targets = np.asarray(targets, dtype=np.float64)
    n_pos = float(targets.sum())
    if n_pos <= 0:
        return None
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    hits = targets[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / n_pos)


def segment_map(probs: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> float:
    """Mean over classes with positives of the AP over segments of weight > 0.

    All arrays (segment, class); 0.0 when no class has a positive.
    """
    aps = []
    for c in range(probs.shape[1]):
        keep = weights[:, c] > 0
        ap = average_precision(probs[keep, c], targets[keep, c] > 0)
        if ap is not None:
            aps.append(ap)
    return float(np.mean(aps)) if aps else 0.0


def _segment_logits(seg: torch.Tensor | None, clip: torch.Tensor,
                    is_logit: bool) -> torch.Tensor:  # fmt: skip
    """Segment logits as float32 on the CPU; a tagging model's window is one segment."""
    if seg is None:
        seg = clip[:, None, :] if is_logit else torch.logit(clip.float()[:, None, :], 1e-7)
    return seg.float().cpu()


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
        self._prefetched: dict[int, torch.Tensor] = {}

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
        estimated, reference, durations, losses, rows = [], [], {}, [], []
        self._prefetched = self._prefetch()
        for index in self.indices:
            rec = self.recordings[index]
            probs = self._scores(index, rec, losses, rows)
            self._add_events(rec, probs, params, estimated, reference, durations)
        self._prefetched = {}
        model.train(was)
        metrics = self._metrics(reference, estimated, durations, losses)
        probs, targets, weights = (np.concatenate(a) for a in zip(*rows))
        metrics["segment_map"] = segment_map(probs, targets, weights)
        return metrics

    @torch.no_grad()
    def predictions(self) -> list[tuple[LabelledRecording, np.ndarray]]:
        """Each validation recording with its segment probabilities (segment, label),
        cut to the recording's length: what calibration tunes the post-processing on."""
        was = self.model.training
        self.model.eval()
        out = []
        self._prefetched = self._prefetch()
        for index in self.indices:
            rec = self.recordings[index]
            probs = self._scores(index, rec, [], [])
            out.append((rec, probs[: self._kept(rec, probs)]))
        self._prefetched = {}
        self.model.train(was)
        return out

    def _kept(self, rec: LabelledRecording, probs: np.ndarray) -> int:
        """Rows of ``probs`` inside the recording (the rest is padding of the last window)."""
        keep = max(1, math.ceil(rec.duration / self.geometry.segment_seconds - 1e-9))
        return min(keep, len(probs))

    def _scores(self, index: int, rec: LabelledRecording, losses: list[float],
                rows: list[tuple[np.ndarray, ...]]) -> np.ndarray:  # fmt: skip
        """Segment probabilities (segment, label) of one recording; adds its losses and
        its (probabilities, targets, weights) inside the recording to ``rows``."""
        model, n_labels = self.model, len(self.labels)
        seconds = self.geometry.segment_seconds
        embeddings = self.embeddings
        if self.sliced:
            # sliced head-only: the whole recording's segments at once, as detection sees it
            seg = head_outputs(model, embeddings[index], False)[0][0].float().cpu()
            t, w = segment_targets(rec, 0.0, len(seg), seconds, n_labels, 1.0)
            losses.append(float(bce(seg, torch.from_numpy(t), torch.from_numpy(w), True)))
            probs = torch.sigmoid(seg).numpy()
            keep = self._kept(rec, probs)
            rows.append((probs[:keep], t[:keep], w[:keep]))
            return probs
        windows, starts = self.windows(index)
        seg_probs, seg_t, seg_w = [], [], []
        prefetched = self._prefetched.get(index) if self._prefetched else None
        for k in range(0, len(windows), _BATCH):
            if embeddings is not None:
                seg = _segment_logits(*head_outputs(model, embeddings[index][k : k + _BATCH],
                                                    False))  # fmt: skip
            elif prefetched is not None:
                seg = prefetched[k : k + _BATCH]
            else:
                seg = self._window_logits(windows[k : k + _BATCH])
            for j, start in enumerate(starts[k : k + _BATCH]):
                t, w = segment_targets(rec, start, seg.shape[1], seconds, n_labels, 1.0)
                losses.append(float(bce(seg[j], torch.from_numpy(t), torch.from_numpy(w), True)))
                seg_t.append(t)
                seg_w.append(w)
            seg_probs.append(torch.sigmoid(seg).reshape(-1, n_labels).numpy())
        probs = np.concatenate(seg_probs)
        keep = self._kept(rec, probs)
        rows.append((probs[:keep], np.concatenate(seg_t)[:keep], np.concatenate(seg_w)[:keep]))
        return probs

    def _window_logits(self, windows: np.ndarray) -> torch.Tensor:
        """Segment logits (window, segment, label) of a batch of windows, on the CPU."""
        with autocast_for(self.device, self.config.precision):
            out = self.model(torch.from_numpy(windows).to(self.device))
        is_logit = "clipwise_logits" in out
        clip = out["clipwise_logits"] if is_logit else out["clipwise_output"]
        return _segment_logits(out.get("segmentwise_logits"), clip, is_logit)

    def _prefetch(self) -> dict[int, torch.Tensor]:
        """Every validation window's segment logits, in batches across recordings (most
        recordings are one window: one forward call per recording would waste the batch)."""
        if self.sliced or self.embeddings is not None:
            return {}
        windows = {i: self.windows(i)[0] for i in self.indices}
        items = [(i, k) for i in self.indices for k in range(len(windows[i]))]
        parts: dict[int, list[torch.Tensor]] = {i: [] for i in self.indices}
        for b in range(0, len(items), _BATCH):
            batch = items[b : b + _BATCH]
            x = np.stack([windows[i][k] for i, k in batch])
            for (i, _), seg in zip(batch, self._window_logits(x)):
                parts[i].append(seg)
        return {i: torch.stack(v) for i, v in parts.items()}

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
