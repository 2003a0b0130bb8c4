"""The fine-tuning loop: strategies, augmentation, loss, checkpoints, resume, DDP.

Reproducibility is by construction. Every random choice of a step (which clips,
their time shift and gain, mixup, SpecAugment stripes, dropout masks) is drawn
from generators seeded with (seed, epoch, step, chunk), never from state carried
between steps. So a run resumed from its checkpoint (weights, optimiser, position,
best-so-far) takes exactly the steps of an uninterrupted run, and a global batch
split over N DDP processes (chunks r, r+N, ...) takes the steps one process takes
when it accumulates the same chunks.

Strategies:

* ``head``: only the output layer trains. The network's input to it (per-segment
  embeddings) is computed once per *recording* in eval mode (segment-aligned
  windows with context, :mod:`.embeddings`; cached on disk by audio hash and
  trunk fingerprint) and each clip is a slice of its recording's rows, so clip
  starts snap to the segment grid and each epoch costs only the head on cached
  tensors. Augmentation there is the head's own dropout (no audio augmentation:
  the features are fixed). ``precision="int8"`` runs that one pass on the int8
  CPU fast path. The resumable state holds only the head (plus the trunk's
  fingerprint), not the frozen network.
* ``partial``: the last ``partial_blocks`` conv blocks, ``fc1`` and the head train;
  earlier stages stay frozen in eval mode (their batch norms do not move).
* ``full``: everything but the fixed STFT / mel front end.

Loss: binary cross-entropy with logits on the segment-wise output (strong
targets with weights, see :mod:`.data`) plus ``clip_loss_weight`` times BCE on
the clip-wise output (weak targets). Optimiser AdamW, learning rate with linear
warm-up then cosine decay to zero, set per step from the step number.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..cancel import CancelToken
from ..errors import TrainingError
from .config import RESUMABLE_OVERRIDES, TrainConfig
from .data import (
    BalancedSampler,
    Clip,
    ClipAudio,
    LabelledRecording,
    clip_targets,
    data_summary,
    make_clips,
    segment_targets,
    split_by_recording,
)
from .heads import adapt_head, head_outputs
from .progress import EventLog, ProgressCallback

STATE_FILE = "state.pt"
BEST_FILE = "best.pth"
MODEL_FILE = "model.pth"
EVENTS_FILE = "events.jsonl"
STATE_FORMAT = "panns-training-state"


@dataclass
class TrainResult:
    """What a run produced."""

    status: str
    run_dir: Path
    checkpoint: Path | None
    state: Path | None
    best_epoch: int | None
    epochs_run: int
    metrics_before: dict[str, Any] | None
    metrics_after: dict[str, Any] | None
    history: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "checkpoint": None if self.checkpoint is None else str(self.checkpoint),
            "state": None if self.state is None else str(self.state),
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "metrics_before": self.metrics_before,
            "metrics_after": self.metrics_after,
        }


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine from 1 to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / span)))


def _bce(logits_or_probs: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
         is_logit: bool) -> torch.Tensor:  # fmt: skip
    x = logits_or_probs.float()
    if is_logit:
        loss = F.binary_cross_entropy_with_logits(x, target, reduction="none")
    else:
        x = x.clamp(1e-7, 1 - 1e-7)
        loss = -(target * torch.log(x) + (1 - target) * torch.log1p(-x))
    return (loss * weight).sum() / weight.sum().clamp_min(1.0)


class _CachedHead(nn.Module):
    """The output layer on cached embeddings, as a module (so DDP can wrap it)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, embedding: torch.Tensor) -> tuple:
        return head_outputs(self.model, embedding, self.training)


class Trainer:
    """Fine-tunes ``model`` (a PannsCNN with its base head) on labelled recordings.

    ``run_dir`` receives the resumable state (``state.pt``), the best weights
    (``best.pth``), the result (``model.pth``) and the event log. ``progress`` gets
    the events documented in :mod:`.progress`; ``cancel`` is anything with
    ``is_set()`` (checked between steps).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        base_labels: Sequence[str],
        labels: Sequence[str],
        recordings: Sequence[LabelledRecording],
        config: TrainConfig,
        run_dir: str | Path,
        parent: str | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        self.model = model
        self.base_labels = list(base_labels)
        self.labels = list(labels)
        self.recordings = list(recordings)
        self.config = config
        self.run_dir = Path(run_dir)
        self.parent = parent
        self.progress = progress
        self.cancel = cancel
        self.rank, self.world = _dist_info()
        self._t0 = time.monotonic()
        self._elapsed_before = 0.0

    # ------------------------------------------------------------------ helpers
    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def elapsed(self) -> float:
        return self._elapsed_before + time.monotonic() - self._t0

    def _emit(self, event: dict[str, Any]) -> None:
        if not self.is_main:
            return
        event = {"event": event.pop("event"), "time": round(self.elapsed(), 3), **event}
        EventLog(self.run_dir / EVENTS_FILE)(event)
        if self.progress is not None:
            self.progress(event)

    def _autocast(self):
        return torch.autocast(
            device_type=self.device.type,
            dtype=torch.bfloat16,
            enabled=self.config.precision == "bf16",
        )

    # ------------------------------------------------------------------- set-up
    def _prepare(self, resume_state: dict | None) -> None:
        cfg = self.config
        model = self.model
        self.device = _device(cfg.device, self.rank)
        fc = model.feature_config
        self.sample_rate = int(fc.sample_rate)
        self.clip_len = round(cfg.clip_seconds * self.sample_rate)
        if getattr(model, "framewise", False):
            from ..models import frames_to_segments

            self.n_seg = frames_to_segments(fc.num_frames(self.clip_len), model.segment_frames)
            self.segment_seconds = model.segment_samples / self.sample_rate
            # validation windows tile a recording exactly in whole segments
            self.val_len = self.n_seg * model.segment_samples
        else:  # tagging models: one "segment" per clip
            self.n_seg, self.segment_seconds = 1, cfg.clip_seconds
            self.val_len = self.clip_len
        if self.n_seg < 1:
            raise TrainingError(
                f"clip_seconds {cfg.clip_seconds} is too short for {model.arch_name}; "
                f"use at least {model.min_samples / self.sample_rate:.2f} s."
            )

        self.train_idx, self.val_idx = split_by_recording(
            self.recordings, cfg.val_fraction, cfg.seed
        )
        self.clips: list[Clip] = make_clips(
            self.recordings, self.train_idx, cfg.clip_seconds, cfg.background_ratio, cfg.seed
        )
        # head-only on a SED model: clips are slices of per-recording embeddings
        self.sliced = cfg.strategy == "head" and getattr(model, "framewise", False)
        if self.sliced:
            self._snap_clips()
        if not any(c.anchor >= 0 for c in self.clips):
            raise TrainingError(
                "The training recordings have no accepted, edited or added events; "
                "confirm or add some events first."
            )
        self.summary = data_summary(
            self.recordings, self.train_idx, self.val_idx, self.labels, self.clips
        )
        self.steps_per_epoch = max(1, round(
            (cfg.samples_per_epoch or len(self.clips)) / cfg.batch_size))  # fmt: skip
        self.sampler = BalancedSampler(self.clips, cfg.seed, self.steps_per_epoch * cfg.batch_size)
        self.audio = None
        if not self.sliced:
            self.audio = ClipAudio(
                self.recordings, self.clips, cfg.clip_seconds, cfg.shift, self.sample_rate
            )
        # Strong and weak targets of every clip at its nominal start (for the prior and
        # the head-only strategy, which has no time shift).
        self.nominal = [self._targets(c, c.start) for c in self.clips]
        if self.sliced:  # rows past the end of a recording shorter than a clip: no loss
            for k, clip in enumerate(self.clips):
                first = round(clip.start / self.segment_seconds)
                seg_t, seg_w = self.nominal[k][:2]
                if first + self.n_seg > self.rec_segments[clip.recording]:
                    seg_w[max(0, self.rec_segments[clip.recording] - first) :] = 0.0
                    self.nominal[k] = (seg_t, seg_w, *clip_targets(seg_t, seg_w))

        micro = cfg.micro_batch or max(1, cfg.batch_size // self.world)
        self.n_chunks = cfg.batch_size // micro
        self.micro = micro
        if self.n_chunks % self.world:
            raise TrainingError(
                f"batch_size {cfg.batch_size} / micro_batch {micro} = {self.n_chunks} chunks "
                f"cannot be shared by {self.world} processes; choose sizes so they divide."
            )
        order = self.sampler.epoch(0)
        prior = np.mean([self.nominal[i][0] for i in order], axis=(0, 1))
        self.head_init = adapt_head(model, self.base_labels, self.labels, prior)
        model.spec_augment = cfg.spec_augment
        self._freeze()
        model.to(self.device)
        self.fingerprint = None
        if cfg.strategy == "head":
            from .embeddings import trunk_fingerprint

            self.fingerprint = trunk_fingerprint(model)
        if resume_state is not None:
            if resume_state.get("head_only"):
                if resume_state.get("trunk") != self.fingerprint:
                    raise TrainingError(
                        "The base model's weights changed since this head-only run started; "
                        "start a new run."
                    )
                self._load_head(resume_state["model"])
            else:
                model.load_state_dict(resume_state["model"])
        self.best_head = (resume_state or {}).get("best_head")
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
        if resume_state is not None:
            self.optimizer.load_state_dict(resume_state["optimizer"])
        self.val_audio = (
            {i: self._load_val(i) for i in self.val_idx} if self.is_main and not self.sliced else {}
        )
        if cfg.strategy == "head":
            self._cache_embeddings()
        self.net: nn.Module = _CachedHead(model) if cfg.strategy == "head" else model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(
                self.net,
                find_unused_parameters=getattr(model, "head", "") == "att",
                broadcast_buffers=False,
            )

    def _snap_clips(self) -> None:
        """Move clip starts to the recording's segment grid, inside the recording."""
        from ..audio import audio_info
        from .embeddings import total_segments

        self.rec_segments: dict[int, int] = {}
        for index in {c.recording for c in self.clips} | set(self.val_idx):
            info = audio_info(self.recordings[index].path)
            samples = round(info.frames * self.sample_rate / info.sample_rate)
            self.rec_segments[index] = total_segments(self.model, samples)
        snapped = []
        for clip in self.clips:
            latest = max(0, self.rec_segments[clip.recording] - self.n_seg)
            first = min(max(round(clip.start / self.segment_seconds), 0), latest)
            snapped.append(Clip(clip.recording, first * self.segment_seconds, clip.anchor))
        self.clips = snapped

    def _head_state(self) -> dict[str, torch.Tensor]:
        names = {n for n, p in self.model.named_parameters() if p.requires_grad}
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()
                if k in names}  # fmt: skip

    def _load_head(self, weights: dict[str, torch.Tensor]) -> None:
        missing = [k for k in weights if k not in self.model.state_dict()]
        if missing:
            raise TrainingError(f"The saved head does not fit this model ({missing[:3]}).")
        self.model.load_state_dict(weights, strict=False)

    def _freeze(self) -> None:
        cfg, model = self.config, self.model
        stages = model.stage_names()
        if cfg.strategy == "full":
            model.freeze_until(None)
        elif cfg.strategy == "head":
            model.freeze_until(stages[-1])
        else:
            blocks = [s for s in stages if s.startswith(("conv_block", "features"))]
            keep = max(1, cfg.partial_blocks)
            first = blocks[-keep] if len(blocks) >= keep else blocks[0]
            model.freeze_until(first)

    def _targets(self, clip: Clip, start: float) -> tuple[np.ndarray, ...]:
        rec = self.recordings[clip.recording]
        seg_t, seg_w = segment_targets(
            rec, start, self.n_seg, self.segment_seconds, len(self.labels),
            self.config.negative_weight,
        )  # fmt: skip
        clip_t, clip_w = clip_targets(seg_t, seg_w)
        return seg_t, seg_w, clip_t, clip_w

    def _load_val(self, index: int) -> np.ndarray:
        from ..audio import load_audio

        x, _ = load_audio(self.recordings[index].path, self.sample_rate)
        return x

    def _val_windows(self, index: int) -> tuple[np.ndarray, list[float]]:
        """Adjacent windows of whole segments covering the recording (zero padded)."""
        x = self.val_audio[index]
        count = max(1, math.ceil(len(x) / self.val_len))
        padded = np.pad(x, (0, count * self.val_len - len(x)))
        starts = [k * self.val_len / self.sample_rate for k in range(count)]
        return padded.reshape(count, self.val_len), starts

    @torch.no_grad()
    def _embed(self, batch: np.ndarray) -> torch.Tensor:
        """Inputs of the output layer for a batch of waveforms (eval mode)."""
        was = self.model.training
        self.model.eval()
        runner = self.model
        if self.config.precision == "int8":
            from ..detection.quantized import int8_model

            runner = int8_model(self.model)
        with self._autocast(), torch.inference_mode():
            out = runner(torch.from_numpy(batch).to(self.device))
        self.model.train(was)
        key = "segment_embedding" if getattr(self.model, "framewise", False) else "embedding"
        return out[key].float()

    def _cache_embeddings(self, batch: int = 16) -> None:
        if self.sliced:
            self._slice_embeddings()
            return
        chunks = []
        for i in range(0, len(self.clips), batch):
            waves = np.stack(
                [self.audio.crop(c.recording, c.start) for c in self.clips[i : i + batch]]
            )
            chunks.append(self._embed(waves))
        self.clip_embeddings = torch.cat(chunks)
        self.val_embeddings = {}
        for index in self.val_idx if self.is_main else []:
            windows, _ = self._val_windows(index)
            self.val_embeddings[index] = torch.cat(
                [self._embed(windows[k : k + batch]) for k in range(0, len(windows), batch)]
            )

    def _slice_embeddings(self) -> None:
        """One embedding pass per recording (cached on disk); clips are row slices."""
        from .embeddings import EmbeddingRequest, recording_embeddings

        wanted: dict[int, list[tuple[int, int]]] = {}
        for clip in self.clips:
            first = round(clip.start / self.segment_seconds)
            wanted.setdefault(clip.recording, []).append((first, first + self.n_seg))
        for index in self.val_idx if self.is_main else []:
            wanted.setdefault(index, []).append((0, self.rec_segments[index]))
        order = sorted(wanted)
        rows = recording_embeddings(
            self.model,
            [EmbeddingRequest(self.recordings[i].path, tuple(wanted[i])) for i in order],
            precision=self.config.precision, device=self.device, fingerprint=self.fingerprint,
        )  # fmt: skip
        table = {i: torch.from_numpy(r) for i, r in zip(order, rows)}
        clips = []
        for clip in self.clips:
            first = round(clip.start / self.segment_seconds)
            part = table[clip.recording][first : first + self.n_seg]
            if len(part) < self.n_seg:  # recording shorter than a clip (weights are 0 there)
                part = torch.cat([part, part.new_zeros(self.n_seg - len(part), part.shape[1])])
            clips.append(part)
        self.clip_embeddings = torch.stack(clips).to(self.device)
        self.val_embeddings = {i: table[i][None].to(self.device)
                               for i in (self.val_idx if self.is_main else [])}  # fmt: skip

    # ----------------------------------------------------------------- training
    def _chunk_batch(self, epoch: int, step: int, chunk: int, indices: np.ndarray):
        """Inputs and targets of one chunk, with its augmentation, all seeded."""
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, 17, epoch, step, chunk])
        torch.manual_seed(int(rng.integers(2**62)))
        if cfg.strategy == "head":
            seg_t, seg_w, clip_t, clip_w = (
                np.stack(a) for a in zip(*(self.nominal[i] for i in indices))
            )
            inputs = self.clip_embeddings[torch.as_tensor(indices)]
            mixup = None
        else:
            waves, targets = [], []
            for i in indices:
                clip = self.clips[i]
                rec = self.recordings[clip.recording]
                latest = max(0.0, rec.duration - cfg.clip_seconds)
                shift = float(rng.uniform(-cfg.shift, cfg.shift)) if cfg.shift > 0 else 0.0
                start = min(max(clip.start + shift, 0.0), latest)
                gain = 10 ** (float(rng.uniform(-cfg.gain_db, cfg.gain_db)) / 20)
                waves.append(self.audio.crop(clip.recording, start) * gain)
                targets.append(self._targets(clip, start))
            seg_t, seg_w, clip_t, clip_w = (np.stack(a) for a in zip(*targets))
            inputs = torch.from_numpy(np.stack(waves))
            mixup = None
            if cfg.mixup_alpha > 0 and len(indices) >= 2 and rng.random() < cfg.mixup_prob:
                n = len(indices) // 2 * 2
                lam = rng.beta(cfg.mixup_alpha, cfg.mixup_alpha, size=n // 2)
                mixup = np.empty(n)
                mixup[0::2], mixup[1::2] = lam, 1 - lam
                inputs = inputs[:n]
                seg_t, seg_w, clip_t, clip_w = (
                    _mix(a[:n], mixup, w) for a, w in
                    ((seg_t, False), (seg_w, True), (clip_t, False), (clip_w, True))
                )  # fmt: skip
                mixup = torch.as_tensor(mixup, dtype=torch.float32)
        t = [torch.from_numpy(a).to(self.device) for a in (seg_t, seg_w, clip_t, clip_w)]
        return inputs.to(self.device), (None if mixup is None else mixup.to(self.device)), t

    def _loss(
        self, inputs: torch.Tensor, mixup: torch.Tensor | None, targets: list
    ) -> torch.Tensor:
        seg_t, seg_w, clip_t, clip_w = targets
        with self._autocast():
            if self.config.strategy == "head":
                seg, clip, clip_is_logit = self.net(inputs)
            else:
                out = self.net(inputs, mixup_lambda=mixup)
                seg = out.get("segmentwise_logits")
                clip_is_logit = "clipwise_logits" in out
                clip = out["clipwise_logits"] if clip_is_logit else out["clipwise_output"]
        loss = self.config.clip_loss_weight * _bce(clip, clip_t, clip_w, clip_is_logit)
        if seg is not None:
            if seg.shape[1] != seg_t.shape[1]:
                raise TrainingError(
                    f"internal: model gave {seg.shape[1]} segments, targets have {seg_t.shape[1]}"
                )
            loss = loss + _bce(seg, seg_t, seg_w, True)
        return loss

    def _train_step(self, epoch: int, step: int, order: np.ndarray) -> float:
        cfg = self.config
        batch = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
        mine = list(range(self.rank, self.n_chunks, self.world))
        self.net.train()
        self.optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), dtype=torch.float64)
        scale = self.world / self.n_chunks
        for k, chunk in enumerate(mine):
            indices = batch[chunk * self.micro : (chunk + 1) * self.micro]
            inputs, mixup, targets = self._chunk_batch(epoch, step, chunk, indices)
            sync = k == len(mine) - 1 or self.world == 1
            context = self.net.no_sync() if not sync else contextlib.nullcontext()
            with context:
                loss = self._loss(inputs, mixup, targets)
                (loss * scale).backward()
            total += loss.detach().double().cpu()
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(total)
        self.optimizer.step()
        return float(total) / self.n_chunks

    # --------------------------------------------------------------- validation
    @torch.no_grad()
    def validate(self) -> dict[str, Any] | None:
        """Metrics of the current weights on the validation recordings (main process)."""
        if not self.val_idx or not self.is_main:
            return None
        from ..detection.postprocess import PostprocessParams
        from ..evaluation import metrics

        model = self.model
        was = model.training
        model.eval()
        params = PostprocessParams(
            threshold=self.config.threshold, median_seconds=self.config.median_seconds
        )
        estimated, reference, durations, losses = [], [], {}, []
        for index in self.val_idx:
            rec = self.recordings[index]
            if self.sliced:  # the whole recording's segments at once, as detection sees it
                seg = head_outputs(model, self.val_embeddings[index], False)[0][0].float().cpu()
                t, w = segment_targets(rec, 0.0, len(seg), self.segment_seconds,
                                       len(self.labels), 1.0)  # fmt: skip
                losses.append(float(_bce(seg, torch.from_numpy(t), torch.from_numpy(w), True)))
                self._add_val_scores(rec, torch.sigmoid(seg).numpy(), params, estimated,
                                     reference, durations)  # fmt: skip
                continue
            windows, starts = self._val_windows(index)
            seg_probs = []
            for k in range(0, len(windows), 16):
                if self.config.strategy == "head":
                    seg, clip, is_logit = head_outputs(
                        model, self.val_embeddings[index][k : k + 16], False
                    )
                else:
                    with self._autocast():
                        out = model(torch.from_numpy(windows[k : k + 16]).to(self.device))
                    seg = out.get("segmentwise_logits")
                    is_logit = "clipwise_logits" in out
                    clip = out["clipwise_logits"] if is_logit else out["clipwise_output"]
                if seg is None:  # tagging model: the window is the segment
                    seg = (
                        clip[:, None, :]
                        if is_logit
                        else torch.logit(clip.float()[:, None, :], 1e-7)
                    )
                seg = seg.float().cpu()
                for j, start in enumerate(starts[k : k + 16]):
                    t, w = segment_targets(rec, start, seg.shape[1], self.segment_seconds,
                                           len(self.labels), 1.0)  # fmt: skip
                    losses.append(
                        float(_bce(seg[j], torch.from_numpy(t), torch.from_numpy(w), True))
                    )
                seg_probs.append(torch.sigmoid(seg).reshape(-1, len(self.labels)).numpy())
            self._add_val_scores(rec, np.concatenate(seg_probs), params, estimated, reference,
                                 durations)  # fmt: skip
        model.train(was)
        import pandas as pd

        ref, est = pd.concat(reference), pd.concat(estimated)
        event = metrics.event_based(ref, est, labels=self.labels)
        segment = metrics.segment_based(ref, est, labels=self.labels, durations=durations)
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

    def _add_val_scores(self, rec, probs, params, estimated, reference, durations) -> None:
        from ..detection.postprocess import scores_to_events
        from ..detection.scores import Scores

        keep = max(1, math.ceil(rec.duration / self.segment_seconds - 1e-9))
        duration = max(rec.duration, (min(keep, len(probs)) - 1) * self.segment_seconds + 1e-6)
        scores = Scores(probs[:keep], self.segment_seconds, self.labels, duration=duration)
        estimated.append(scores_to_events(scores, params, recording=rec.key))
        reference.append(rec.reference_events(self.labels))
        durations[rec.key] = rec.duration

    # ------------------------------------------------------------ checkpoints
    def _save_state(self, epoch: int, step: int, extra: dict) -> Path:
        if self.fingerprint:  # head only: the frozen rest is the base model's
            weights = self._head_state()
        else:
            weights = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        state = {
            "format": STATE_FORMAT,
            "version": 1,
            "config": self.config.to_dict(),
            "labels": self.labels,
            "architecture": self.model.arch_name,
            "parent": self.parent,
            "data": self.summary,
            "epoch": epoch,
            "step": step,
            "model": weights,
            "head_only": bool(self.fingerprint),
            "trunk": self.fingerprint,
            "best_head": self.best_head,
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "elapsed": self.elapsed(),
            **extra,
        }
        path = self.run_dir / STATE_FILE
        tmp = path.with_suffix(".part")
        torch.save(state, tmp)
        os.replace(tmp, path)
        return path

    def _save_weights(self, path: Path, state_dict: dict, metrics: dict, status: str,
                      best_epoch: int | None) -> Path:  # fmt: skip
        from ..hub.checkpoints import save_checkpoint

        return save_checkpoint(
            path,
            state_dict,
            architecture=self.model.arch_name,
            feature_config=self.model.feature_config,
            labels=self.labels,
            parent=self.parent,
            metrics=metrics,
            extra={
                "data": self.summary,
                "training": self.config.to_dict(),
                "head_init": self.head_init,
                "status": status,
                "best_epoch": best_epoch,
            },
        )

    # -------------------------------------------------------------------- run
    def fit(self, resume: bool = False) -> TrainResult:
        """Train; with ``resume`` continue from ``run_dir/state.pt`` when it exists."""
        threads = torch.get_num_threads()
        try:
            return self._fit(resume)
        finally:
            torch.set_num_threads(threads)

    def _fit(self, resume: bool) -> TrainResult:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        cfg = self.config
        state = None
        state_path = self.run_dir / STATE_FILE
        if resume and state_path.is_file():
            state = torch.load(state_path, map_location="cpu", weights_only=True)
            if state.get("format") != STATE_FORMAT:
                raise TrainingError(f"{state_path} is not a training state; start a new run.")
            saved = TrainConfig.from_dict(state["config"])
            for key in RESUMABLE_OVERRIDES:
                setattr(saved, key, getattr(cfg, key))
            self.config = cfg = saved
            if state["labels"] != self.labels:
                raise TrainingError(
                    "The project's labels changed since this run started; start a new run."
                )
            self._elapsed_before = float(state["elapsed"])
        self._prepare(state)
        if self.sliced and self.device.type == "cpu":
            # Epochs on cached tensors are many tiny ops; on a busy CPU every parallel
            # region waits for a second core (measured: 1.4 s vs 0.2 s per epoch).
            torch.set_num_threads(1)
        if state is not None and state["data"] != self.summary:
            raise TrainingError(
                "The project's events changed since this run started, so resuming would not "
                "continue the same run; start a new run."
            )
        start_epoch, start_step = (state["epoch"], state["step"]) if state else (1, 0)
        history: list[dict] = list(state["history"]) if state else []
        best_f1 = state["best_f1"] if state else -1.0
        best_epoch = state["best_epoch"] if state else None
        bad_epochs = state["bad_epochs"] if state else 0
        planned = state["planned_epochs"] if state else cfg.epochs
        if state:
            planned = min(cfg.epochs, planned) if cfg.time_budget else cfg.epochs
        before = state["metrics_before"] if state else None
        total_steps = planned * self.steps_per_epoch
        warmup = max(1, round(cfg.warmup_fraction * cfg.epochs * self.steps_per_epoch))

        self._emit({
            "event": "start", "run_dir": self.run_dir, "architecture": self.model.arch_name,
            "base": self.parent, "strategy": cfg.strategy, "labels": self.labels,
            "head_init": self.head_init, "data": self.summary, "epochs": planned,
            "steps_per_epoch": self.steps_per_epoch, "total_steps": total_steps,
            "global_step": (start_epoch - 1) * self.steps_per_epoch + start_step,
            "batch_size": cfg.batch_size, "world_size": self.world, "device": str(self.device),
            "precision": cfg.precision, "resumed": state is not None, "epoch": start_epoch,
            "step": start_step, "config": cfg.to_dict(),
        })  # fmt: skip
        if state is None:
            before = self.validate()
            self._emit({"event": "validation", "epoch": 0, "metrics": before})

        status = "completed"
        epoch = start_epoch
        epochs_run = len(history)
        while epoch <= planned:
            epoch_t0 = time.monotonic()
            order = self.sampler.epoch(epoch)
            losses = list(state["epoch_losses"]) if state and epoch == start_epoch else []
            step = start_step if epoch == start_epoch else 0
            stop_reason = None
            while step < self.steps_per_epoch:
                global_step = (epoch - 1) * self.steps_per_epoch + step
                lr = cfg.lr * lr_factor(global_step, total_steps, warmup)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                loss = self._train_step(epoch, step, order)
                losses.append(loss)
                step += 1
                if self.is_main and (step % cfg.log_every == 0 or step == self.steps_per_epoch):
                    self._emit({
                        "event": "step", "epoch": epoch, "step": step,
                        "global_step": global_step + 1, "total_steps": total_steps,
                        "loss": loss, "lr": lr,
                    })  # fmt: skip
                stop_reason = self._should_stop(step < self.steps_per_epoch)
                if stop_reason:
                    break
            if stop_reason == "cancelled":
                path = None
                if self.is_main:
                    path = self._save_state(
                        epoch,
                        step,
                        self._progress_state(
                            history, best_f1, best_epoch, bad_epochs, planned, before, losses
                        ),
                    )
                self._sync()
                result = self._result("cancelled", history, best_epoch, before, path)
                self._emit({"event": "done", "status": "cancelled", "result": result.to_dict()})
                return result
            _average_buffers(self.model, self.world)
            metrics = self.validate()
            epochs_run += 1
            improved = False
            if self.is_main:
                f1 = metrics["event_f1"] if metrics else None
                if f1 is None or f1 > best_f1 + 1e-6:
                    improved = True
                    best_f1, best_epoch, bad_epochs = (f1 if f1 is not None else -1.0), epoch, 0
                    if self.fingerprint:  # head only: the best head lives in the state
                        self.best_head = self._head_state()
                    else:
                        self._save_weights(self.run_dir / BEST_FILE, self.model.state_dict(),
                                           {"val": metrics}, "best", epoch)  # fmt: skip
                else:
                    bad_epochs += 1
            seconds = time.monotonic() - epoch_t0
            if epoch == 1 and state is None and cfg.time_budget:
                fits = max(1, int((cfg.time_budget - (self.elapsed() - seconds)) // seconds))
                planned = min(cfg.epochs, fits)
                total_steps = planned * self.steps_per_epoch
            record = {"epoch": epoch, "train_loss": float(np.mean(losses)), "metrics": metrics}
            history.append(record)
            if stop_reason is None and metrics is not None and bad_epochs >= cfg.patience:
                stop_reason = "early_stopped"
            if (stop_reason is None and cfg.time_budget and epoch < planned
                    and self.elapsed() + seconds > cfg.time_budget):  # fmt: skip
                stop_reason = "time_budget"
            next_epoch = epoch + 1
            path = None
            if self.is_main:
                path = self._save_state(
                    next_epoch,
                    0,
                    self._progress_state(
                        history, best_f1, best_epoch, bad_epochs, planned, before, []
                    ),
                )
            self._emit({
                "event": "epoch", **record, "best_epoch": best_epoch,
                "best_f1": best_f1 if best_f1 >= 0 else None, "improved": improved,
                "checkpoint": path, "best_checkpoint": self.run_dir / BEST_FILE,
                "planned_epochs": planned, "total_steps": total_steps, "seconds": seconds,
            })  # fmt: skip
            stop_reason = self._agree(stop_reason)
            epoch = next_epoch
            state = None
            if stop_reason:
                status = stop_reason
                break

        result = self._finish(status, history, best_epoch, before)
        self._emit({"event": "done", "status": status, "result": result.to_dict()})
        return result

    def _progress_state(self, history, best_f1, best_epoch, bad_epochs, planned, before,
                        losses) -> dict:  # fmt: skip
        return {
            "history": history, "best_f1": best_f1, "best_epoch": best_epoch,
            "bad_epochs": bad_epochs, "planned_epochs": planned, "metrics_before": before,
            "epoch_losses": losses,
        }  # fmt: skip

    def _should_stop(self, mid_epoch: bool) -> str | None:
        reason = None
        if self.cancel is not None and self.cancel.is_set():
            reason = "cancelled"
        elif mid_epoch and self.config.time_budget and self.elapsed() > self.config.time_budget:
            reason = "time_budget"
        return self._agree(reason)

    def _agree(self, reason: str | None) -> str | None:
        """All processes take the main process's decision (DDP)."""
        if self.world == 1:
            return reason
        import torch.distributed as dist

        codes = (None, "cancelled", "time_budget", "early_stopped")
        flag = torch.tensor([codes.index(reason) if reason in codes else 0])
        dist.broadcast(flag, src=0)
        return codes[int(flag)]

    def _sync(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def _result(self, status, history, best_epoch, before, state_path, checkpoint=None,
                after=None) -> TrainResult:  # fmt: skip
        return TrainResult(
            status=status, run_dir=self.run_dir, checkpoint=checkpoint, state=state_path,
            best_epoch=best_epoch, epochs_run=len(history), metrics_before=before,
            metrics_after=after, history=history, data=self.summary, labels=self.labels,
            elapsed=self.elapsed(),
        )  # fmt: skip

    def _finish(self, status: str, history: list, best_epoch: int | None, before) -> TrainResult:
        checkpoint, after = None, None
        if self.is_main:
            best_path = self.run_dir / BEST_FILE
            if best_epoch is not None and self.best_head is not None:
                weights = copy.deepcopy(self.model.state_dict())
                weights.update(self.best_head)
                after = history[[h["epoch"] for h in history].index(best_epoch)]["metrics"]
            elif best_epoch is not None and best_path.is_file():
                from ..hub.checkpoints import load_checkpoint

                weights = load_checkpoint(best_path).state_dict
                after = history[[h["epoch"] for h in history].index(best_epoch)]["metrics"]
            else:
                weights = copy.deepcopy(self.model.state_dict())
                after = history[-1]["metrics"] if history else None
            checkpoint = self._save_weights(
                self.run_dir / MODEL_FILE, weights, {"before": before, "after": after},
                status, best_epoch,
            )  # fmt: skip
        self._sync()
        return self._result(status, history, best_epoch, before, self.run_dir / STATE_FILE,
                            checkpoint, after)  # fmt: skip


def _mix(a: np.ndarray, lam: np.ndarray, is_weight: bool) -> np.ndarray:
    """PANNs' pairwise mixup of targets (even/odd items); a zero weight stays zero."""
    shape = (-1, *([1] * (a.ndim - 1)))
    l_even, l_odd = lam[0::2].reshape(shape), lam[1::2].reshape(shape)
    mixed = a[0::2] * l_even + a[1::2] * l_odd
    if is_weight:
        mixed = np.where((a[0::2] == 0) | (a[1::2] == 0), 0.0, mixed)
    return mixed.astype(np.float32)


def _average_buffers(model: nn.Module, world: int) -> None:
    """Average batch-norm running statistics over the DDP processes (end of epoch)."""
    if world == 1:
        return
    import torch.distributed as dist

    for name, buffer in model.named_buffers():
        if name.endswith(("running_mean", "running_var")):
            dist.all_reduce(buffer)
            buffer /= world


def _dist_info() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed() -> tuple[int, int]:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR ...).

    gloo on CPU, nccl when CUDA is there. Returns (rank, world size); (0, 1) when
    not started by torchrun.
    """
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    return _dist_info()


def _device(name: str, rank: int) -> torch.device:
    from ..errors import DeviceError

    if name in ("auto", ""):
        if torch.cuda.is_available():
            name = "cuda"
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("CUDA was asked for but no CUDA GPU is available; use --device cpu.")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
    if name == "mps" and not (getattr(torch.backends, "mps", None)
                              and torch.backends.mps.is_available()):  # fmt: skip
        raise DeviceError("MPS was asked for but is not available; use --device cpu.")
    try:
        return torch.device(name)
    except RuntimeError:
        raise DeviceError(f"Unknown device {name!r}; use cpu, cuda, mps or auto.") from None


ProgressFn = Callable[[dict[str, Any]], None]
