"""One optimisation step: clip geometry, seeded inputs and targets, augmentation, loss.

Every random choice of a step (which clips, their time shift and gain, mixup,
SpecAugment stripes, dropout masks) is drawn from generators seeded with
(seed, epoch, step, chunk), never from state carried between steps; this is what
makes resume and DDP take exactly the steps of one uninterrupted process.

Loss: binary cross-entropy with logits on the segment-wise output (strong targets
with weights, see :mod:`.data`) plus ``clip_loss_weight`` times BCE on the
clip-wise output (weak targets). The learning rate follows :func:`lr_factor`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TrainingError
from .config import TrainConfig
from .data import Clip, ClipAudio, LabelledRecording, clip_targets, segment_targets


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine from 1 to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / span)))


def lr_fraction(used: float, warmup_fraction: float) -> float:
    """:func:`lr_factor` on the share ``used`` of a run (time or steps) in [0, 1]."""
    used = min(max(used, 0.0), 1.0)
    if used < warmup_fraction:
        return max(used / warmup_fraction, 1e-3)
    span = max(1e-9, 1.0 - warmup_fraction)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (used - warmup_fraction) / span)))


def resolve_precision(device: torch.device) -> str:
    """What ``precision="auto"`` means on ``device``: bf16 autocast on a CPU with native
    bf16 units (AVX512-BF16 / AMX; twice the steps there), fp32 elsewhere (on an
    AVX2-only CPU bf16 is emulated and much slower)."""
    if device.type != "cpu":
        return "fp32"
    from ..detection.quantized import cpu_has_native_bf16

    return "bf16" if cpu_has_native_bf16() else "fp32"


def bce(logits_or_probs: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
        is_logit: bool) -> torch.Tensor:  # fmt: skip
    """Weighted binary cross-entropy (mean over the weight)."""
    x = logits_or_probs.float()
    if is_logit:
        loss = F.binary_cross_entropy_with_logits(x, target, reduction="none")
    else:
        x = x.clamp(1e-7, 1 - 1e-7)
        loss = -(target * torch.log(x) + (1 - target) * torch.log1p(-x))
    return (loss * weight).sum() / weight.sum().clamp_min(1.0)


def mix_targets(a: np.ndarray, lam: np.ndarray, is_weight: bool) -> np.ndarray:
    """PANNs' pairwise mixup of targets (even/odd items); a zero weight stays zero."""
    shape = (-1, *([1] * (a.ndim - 1)))
    l_even, l_odd = lam[0::2].reshape(shape), lam[1::2].reshape(shape)
    mixed = a[0::2] * l_even + a[1::2] * l_odd
    if is_weight:
        mixed = np.where((a[0::2] == 0) | (a[1::2] == 0), 0.0, mixed)
    return mixed.astype(np.float32)


def autocast_for(device: torch.device, precision: str):
    """bf16 autocast when ``precision`` asks for it, else a no-op context."""
    return torch.autocast(
        device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16"
    )


@dataclass(frozen=True)
class ClipGeometry:
    """How a training clip and a validation window map to the model's segments."""

    sample_rate: int
    clip_len: int  # samples of a training clip
    n_seg: int  # segments (score rows) of a clip
    segment_seconds: float
    val_len: int  # samples of a validation window

    @classmethod
    def of(cls, model: nn.Module, config: TrainConfig) -> ClipGeometry:
        fc = model.feature_config
        sample_rate = int(fc.sample_rate)
        clip_len = round(config.clip_seconds * sample_rate)
        if getattr(model, "framewise", False):
            from ..models import frames_to_segments

            n_seg = frames_to_segments(fc.num_frames(clip_len), model.segment_frames)
            segment_seconds = model.segment_samples / sample_rate
            # validation windows tile a recording exactly in whole segments
            val_len = n_seg * model.segment_samples
        else:  # tagging models: one "segment" per clip
            n_seg, segment_seconds = 1, config.clip_seconds
            val_len = clip_len
        if n_seg < 1:
            raise TrainingError(
                f"clip_seconds {config.clip_seconds} is too short for {model.arch_name}; "
                f"use at least {model.min_samples / sample_rate:.2f} s."
            )
        return cls(sample_rate, clip_len, n_seg, segment_seconds, val_len)


def targets_at(rec: LabelledRecording, start: float, geometry: ClipGeometry, n_labels: int,
               negative_weight: float) -> tuple[np.ndarray, ...]:  # fmt: skip
    """Strong and weak targets with weights of a clip of ``rec`` starting at ``start``."""
    seg_t, seg_w = segment_targets(
        rec, start, geometry.n_seg, geometry.segment_seconds, n_labels, negative_weight
    )
    clip_t, clip_w = clip_targets(seg_t, seg_w)
    weak = rec.weak_classes() if len(rec.tags) else ()
    seconds = geometry.n_seg * geometry.segment_seconds
    if len(weak) and start <= 1e-6 and seconds >= rec.duration - geometry.segment_seconds / 2:
        clip_t[weak], clip_w[weak] = 1.0, 1.0  # a clip tag and the clip is the recording
    return seg_t, seg_w, clip_t, clip_w


@dataclass
class Batches:
    """Builds the inputs and targets of one chunk of a step.

    ``head_inputs`` (head-only strategy): the cached embeddings of every clip; the
    targets are then the clips' nominal ones (no time shift, no mixup). Otherwise the
    waveforms are cropped with a random shift and gain, and mixed up; with
    ``features`` (:class:`~.features.ClipFeatures`) the inputs are the cached log-mel
    frames instead (start snapped to the hop, the gain added in dB).
    """

    config: TrainConfig
    recordings: Sequence[LabelledRecording]
    clips: Sequence[Clip]
    geometry: ClipGeometry
    n_labels: int
    nominal: Sequence[tuple[np.ndarray, ...]]
    audio: ClipAudio | None
    device: torch.device
    head_inputs: torch.Tensor | None = None
    features: Any = None

    def chunk(self, epoch: int, step: int, chunk: int, indices: np.ndarray):
        """Inputs, mixup weights (or None) and targets of one chunk, all seeded."""
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, 17, epoch, step, chunk])
        torch.manual_seed(int(rng.integers(2**62)))
        if self.head_inputs is not None:
            seg_t, seg_w, clip_t, clip_w = (
                np.stack(a) for a in zip(*(self.nominal[i] for i in indices))
            )
            inputs = self.head_inputs[torch.as_tensor(indices)]
            mixup = None
        else:
            waves, targets = [], []
            for i in indices:
                clip = self.clips[i]
                rec = self.recordings[clip.recording]
                latest = max(0.0, rec.duration - cfg.clip_seconds)
                shift = float(rng.uniform(-cfg.shift, cfg.shift)) if cfg.shift > 0 else 0.0
                start = min(max(clip.start + shift, 0.0), latest)
                gain_db = float(rng.uniform(-cfg.gain_db, cfg.gain_db))
                if self.features is not None:
                    start = self.features.snap(start)
                    waves.append(self.features.crop(clip.recording, start) + gain_db)
                else:
                    gain = 10 ** (gain_db / 20)
                    waves.append(torch.from_numpy(self.audio.crop(clip.recording, start) * gain))
                targets.append(
                    targets_at(rec, start, self.geometry, self.n_labels, cfg.negative_weight)
                )
            seg_t, seg_w, clip_t, clip_w = (np.stack(a) for a in zip(*targets))
            inputs = torch.stack(waves)
            mixup = None
            if cfg.mixup_alpha > 0 and len(indices) >= 2 and rng.random() < cfg.mixup_prob:
                n = len(indices) // 2 * 2
                lam = rng.beta(cfg.mixup_alpha, cfg.mixup_alpha, size=n // 2)
                mixup = np.empty(n)
                mixup[0::2], mixup[1::2] = lam, 1 - lam
                inputs = inputs[:n]
                seg_t, seg_w, clip_t, clip_w = (
                    mix_targets(a[:n], mixup, w) for a, w in
                    ((seg_t, False), (seg_w, True), (clip_t, False), (clip_w, True))
                )  # fmt: skip
                mixup = torch.as_tensor(mixup, dtype=torch.float32)
        t = [torch.from_numpy(a).to(self.device) for a in (seg_t, seg_w, clip_t, clip_w)]
        return inputs.to(self.device), (None if mixup is None else mixup.to(self.device)), t


def chunk_loss(net: nn.Module, inputs: torch.Tensor, mixup: torch.Tensor | None,
               targets: list, *, head_only: bool, config: TrainConfig,
               device: torch.device) -> torch.Tensor:  # fmt: skip
    """The training loss of one chunk (see the module docstring)."""
    seg_t, seg_w, clip_t, clip_w = targets
    with autocast_for(device, config.precision):
        if head_only:
            seg, clip, clip_is_logit = net(inputs)
        else:
            out = net(inputs, mixup_lambda=mixup)
            seg = out.get("segmentwise_logits")
            clip_is_logit = "clipwise_logits" in out
            clip = out["clipwise_logits"] if clip_is_logit else out["clipwise_output"]
    loss = config.clip_loss_weight * bce(clip, clip_t, clip_w, clip_is_logit)
    if seg is not None:
        if seg.shape[1] != seg_t.shape[1]:
            raise TrainingError(
                f"internal: model gave {seg.shape[1]} segments, targets have {seg_t.shape[1]}"
            )
        loss = loss + bce(seg, seg_t, seg_w, True)
    return loss
