"""What each training strategy freezes and trains, and the head-only inputs.

* ``head``: only the output layer trains. The network's input to it (per-segment
  embeddings) is computed once per *recording* in eval mode (segment-aligned
  windows with context, :mod:`.embeddings`; cached on disk by audio hash and
  trunk fingerprint) and each clip is a slice of its recording's rows, so clip
  starts snap to the segment grid and each epoch costs only the head on cached
  tensors. Augmentation there is the head's own dropout (no audio augmentation:
  the features are fixed). ``precision="int8"`` runs that one pass on the int8
  CPU fast path. The resumable state holds only the head (plus the trunk's
  fingerprint), not the frozen network. A tagging model (no segments) embeds
  each clip and validation window instead.
* ``partial``: the last ``partial_blocks`` conv blocks, ``fc1`` and the head train;
  earlier stages stay frozen in eval mode (their batch norms do not move).
* ``full``: everything but the fixed STFT / mel front end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import TrainingError
from .config import TrainConfig
from .data import Clip, ClipAudio, LabelledRecording
from .heads import head_outputs
from .steps import ClipGeometry, autocast_for


def freeze(model: nn.Module, config: TrainConfig) -> None:
    """Freeze what ``config.strategy`` keeps fixed."""
    stages = model.stage_names()
    if config.strategy == "full":
        model.freeze_until(None)
    elif config.strategy == "head":
        model.freeze_until(stages[-1])
    else:
        blocks = [s for s in stages if s.startswith(("conv_block", "features"))]
        keep = max(1, config.partial_blocks)
        first = blocks[-keep] if len(blocks) >= keep else blocks[0]
        model.freeze_until(first)


def is_sliced(model: nn.Module, config: TrainConfig) -> bool:
    """Head-only on a SED model: clips are row slices of per-recording embeddings."""
    return config.strategy == "head" and bool(getattr(model, "framewise", False))


class CachedHead(nn.Module):
    """The output layer on cached embeddings, as a module (so DDP can wrap it)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, embedding: torch.Tensor) -> tuple:
        return head_outputs(self.model, embedding, self.training)


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the weights that train (the head, for the head-only strategy)."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()
            if k in names}  # fmt: skip


def load_head(model: nn.Module, weights: Mapping[str, torch.Tensor]) -> None:
    """Put saved head weights into ``model`` (the rest stays the base's)."""
    missing = [k for k in weights if k not in model.state_dict()]
    if missing:
        raise TrainingError(f"The saved head does not fit this model ({missing[:3]}).")
    model.load_state_dict(weights, strict=False)


def restore_weights(model: nn.Module, saved: Mapping, fingerprint: str | None) -> None:
    """The weights of a resumed run: the head only, or the whole network."""
    if saved.get("head_only"):
        if saved.get("trunk") != fingerprint:
            raise TrainingError(
                "The base model's weights changed since this head-only run started; "
                "start a new run."
            )
        load_head(model, saved["model"])
    else:
        model.load_state_dict(saved["model"])


def snap_clips(model: nn.Module, recordings: Sequence[LabelledRecording], clips: Sequence[Clip],
               val_indices: Sequence[int], geometry: ClipGeometry,
               ) -> tuple[list[Clip], dict[int, int]]:  # fmt: skip
    """Clip starts moved to their recording's segment grid, inside the recording.

    Also returns the number of segments of every recording used (clips' and validation).
    """
    from ..audio import audio_info
    from .embeddings import total_segments

    rec_segments: dict[int, int] = {}
    for index in {c.recording for c in clips} | set(val_indices):
        info = audio_info(recordings[index].path)
        samples = round(info.frames * geometry.sample_rate / info.sample_rate)
        rec_segments[index] = total_segments(model, samples)
    snapped = []
    for clip in clips:
        latest = max(0, rec_segments[clip.recording] - geometry.n_seg)
        first = min(max(round(clip.start / geometry.segment_seconds), 0), latest)
        snapped.append(Clip(clip.recording, first * geometry.segment_seconds, clip.anchor))
    return snapped, rec_segments


@torch.no_grad()
def embed(model: nn.Module, batch: np.ndarray, *, precision: str,
          device: torch.device) -> torch.Tensor:  # fmt: skip
    """Inputs of the output layer for a batch of waveforms (eval mode)."""
    was = model.training
    model.eval()
    runner = model
    if precision == "int8":
        from ..detection.quantized import int8_model

        runner = int8_model(model)
    with autocast_for(device, precision), torch.inference_mode():
        out = runner(torch.from_numpy(batch).to(device))
    model.train(was)
    key = "segment_embedding" if getattr(model, "framewise", False) else "embedding"
    return out[key].float()


def clip_embeddings(model: nn.Module, clips: Sequence[Clip], audio: ClipAudio,
                    val_windows: Mapping[int, np.ndarray], *, precision: str,
                    device: torch.device, batch: int = 16,
                    ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:  # fmt: skip
    """Head inputs of every clip and validation window (a tagging model)."""
    chunks = []
    for i in range(0, len(clips), batch):
        waves = np.stack([audio.crop(c.recording, c.start) for c in clips[i : i + batch]])
        chunks.append(embed(model, waves, precision=precision, device=device))
    val = {}
    for index, windows in val_windows.items():
        val[index] = torch.cat([
            embed(model, windows[k : k + batch], precision=precision, device=device)
            for k in range(0, len(windows), batch)
        ])  # fmt: skip
    return torch.cat(chunks), val


def sliced_embeddings(model: nn.Module, recordings: Sequence[LabelledRecording],
                      clips: Sequence[Clip], val_indices: Sequence[int],
                      rec_segments: Mapping[int, int], geometry: ClipGeometry, *,
                      precision: str, device: torch.device, fingerprint: str | None,
                      ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:  # fmt: skip
    """One embedding pass per recording (cached on disk); clips are row slices.

    Returns the clips' rows (clip, segment, feature) and every validation
    recording's rows (1, segment, feature).
    """
    from .embeddings import EmbeddingRequest, recording_embeddings

    n_seg = geometry.n_seg
    wanted: dict[int, list[tuple[int, int]]] = {}
    for clip in clips:
        first = round(clip.start / geometry.segment_seconds)
        wanted.setdefault(clip.recording, []).append((first, first + n_seg))
    for index in val_indices:
        wanted.setdefault(index, []).append((0, rec_segments[index]))
    order = sorted(wanted)
    rows = recording_embeddings(
        model,
        [EmbeddingRequest(recordings[i].path, tuple(wanted[i])) for i in order],
        precision=precision, device=device, fingerprint=fingerprint,
    )  # fmt: skip
    table = {i: torch.from_numpy(r) for i, r in zip(order, rows)}
    parts = []
    for clip in clips:
        first = round(clip.start / geometry.segment_seconds)
        part = table[clip.recording][first : first + n_seg]
        if len(part) < n_seg:  # recording shorter than a clip (weights are 0 there)
            part = torch.cat([part, part.new_zeros(n_seg - len(part), part.shape[1])])
        parts.append(part)
    val = {i: table[i][None].to(device) for i in val_indices}
    return torch.stack(parts).to(device), val
