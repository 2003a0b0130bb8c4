"""Log-mel features computed once, for the strategies that train the network on them.

The STFT / mel front end of a network never trains, so recomputing it at every step
spends time on nothing that learns. :class:`ClipFeatures` runs the model's own front
end (:meth:`PannsCNN.logmel`) once over the audio the clips need and keeps the
(frames, mel) tensors; a training clip is then a slice of frames (its start snapped to
the hop), and the gain augmentation is a constant added in dB (a waveform gain ``g``
adds ``20 log10 g`` dB to every log-mel bin). :class:`LogMelNet` runs the rest of the
network (``bn0``, SpecAugment, mixup, trunk, head) on such features exactly as
``PannsCNN.forward`` does after its front end.

Used for the ``full`` and ``partial`` strategies of models with a plain log-mel input
(no Wavegram branch). A slice of a long recording's features differs from the
features of the slice only in the frames that see past the slice's edges (the
front end's centred window), which detection sees too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..errors import TrainingError
from .data import Clip, ClipAudio, LabelledRecording

#: log-mel of silence (torchlibrosa: 10 log10(amin) with amin 1e-10)
SILENCE_DB = -100.0


def can_cache_features(model: nn.Module, strategy: str) -> bool:
    """Whether steps may train on cached log-mel (a plain log-mel network, not head-only)."""
    return (
        strategy in ("full", "partial")
        and hasattr(model, "logmel")
        and hasattr(model, "bn0")
        and not getattr(model, "has_wavegram", True)
    )


class ClipFeatures:
    """The log-mel frames of the audio the clips need, computed once (eval, no grad)."""

    def __init__(self, model: nn.Module, audio: ClipAudio, clip_seconds: float) -> None:
        fc = model.feature_config
        self.hop = int(fc.hop_size)
        self.sample_rate = int(fc.sample_rate)
        self.frames = int(fc.num_frames(round(clip_seconds * self.sample_rate)))
        self._spans: dict[int, list[tuple[int, torch.Tensor]]] = {}
        device = model.spectrogram_extractor.stft.conv_real.weight.device
        with torch.no_grad():
            for index, spans in audio._spans.items():
                rows = []
                for origin, x in zip(spans.starts, spans.arrays):
                    wave = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(device)
                    rows.append((origin, model.logmel(wave)[0].float().cpu().contiguous()))
                self._spans[index] = rows

    def snap(self, start: float) -> float:
        """``start`` moved to the nearest frame (what a crop really starts at)."""
        return round(start * self.sample_rate / self.hop) * self.hop / self.sample_rate

    def crop(self, recording: int, start: float) -> torch.Tensor:
        """(frames, mel) of a clip starting at ``snap(start)``; silence past the end."""
        first = round(start * self.sample_rate / self.hop) * self.hop
        for origin, mel in self._spans[recording]:
            offset = (first - origin) // self.hop
            if 0 <= offset < max(len(mel), 1):
                piece = mel[offset : offset + self.frames]
                if len(piece) < self.frames:
                    pad = piece.new_full((self.frames - len(piece), mel.shape[1]), SILENCE_DB)
                    piece = torch.cat([piece, pad])
                return piece
        raise TrainingError(f"internal: no features at {start:.2f} s of recording {recording}")


def clip_features(model: nn.Module, recordings: Sequence[LabelledRecording],
                  clips: Sequence[Clip], clip_seconds: float, margin: float,
                  ) -> ClipFeatures:  # fmt: skip
    """Decode the clips' audio at the model's rate and compute its log-mel once."""
    audio = ClipAudio(recordings, clips, clip_seconds, margin, model.feature_config.sample_rate)
    return ClipFeatures(model, audio, clip_seconds)


class LogMelNet(nn.Module):
    """``model`` from log-mel (batch, frames, mel) on: the output dict of its forward."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, logmel: torch.Tensor,
                mixup_lambda: torch.Tensor | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
        from ..models.blocks import do_mixup

        m = self.model
        num_frames = logmel.shape[1]
        x = logmel[:, None].to(m.bn0.weight.dtype)
        x = m.bn0(x.transpose(1, 3)).transpose(1, 3)
        if m.training and m.spec_augment:
            x = m.spec_augmenter(x)
        if m.training and mixup_lambda is not None:
            x = do_mixup(x, mixup_lambda)
        x = torch.mean(m._trunk(x, None), dim=3)
        if m.head == "clip":
            return m._clip_head(x)
        return m._sed_head(x, num_frames)
