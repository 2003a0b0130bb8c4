"""One parameterised implementation of the PANNs CNN family.

``PannsCNN`` covers every registered architecture: a log-mel front end
(:mod:`.frontend`: torchlibrosa's computation without importing librosa), ``bn0`` over
mel bins, a trunk (stacked :class:`ConvBlock`s or
MobileNetV1 features, optionally joined by the Wavegram branch), and a head that is
either clip-level (tagging) or segment-level (sound event detection). In eval mode
every path computes what the reference classes compute; the differences are
additions: short inputs are padded, Wavegram inputs of any length work, and every
model also returns its embedding.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import (
    AttBlock,
    ConvBlock,
    ConvPreWavBlock,
    do_mixup,
    init_bn,
    init_layer,
    mobilenet_v1_features,
)
from .config import FeatureConfig, min_samples_for
from .frontend import LogmelFilterBank, SpecAugmentation, Spectrogram

HEADS = ("clip", "max", "avg", "att")
WAVEGRAM_HOP = 320  # samples per frame of the Wavegram branch (5 * 4 * 4 * 4)
WAVEGRAM_BLOCK = 2 * WAVEGRAM_HOP  # input length must be a multiple of this


class PannsCNN(nn.Module):
    """A PANNs CNN (Cnn14 and its variants, Cnn10, Cnn6, MobileNetV1).

    Args:
        arch_name: the registered name (kept on the instance as ``arch_name``).
        feature_config: the log-mel front end.
        classes_num: number of output classes.
        channels: output channels of each ConvBlock (ignored for MobileNetV1).
        kernel_size: 3 (two 3x3 convs per block) or 5 (one 5x5 conv per block).
        last_pool: pooling of the last ConvBlock ((1, 1) for Cnn14, (2, 2) otherwise).
        trunk: ``"conv"`` or ``"mobilenet_v1"``.
        head: ``"clip"`` (tagging) or a segment-level pooling ``"max"``, ``"avg"``,
            ``"att"`` (sound event detection, with segment/frame outputs).
        wavegram: add the Wavegram branch, joined after the first ConvBlock.
    """

    def __init__(
        self,
        *,
        arch_name: str,
        feature_config: FeatureConfig,
        classes_num: int,
        channels: Sequence[int] = (64, 128, 256, 512, 1024, 2048),
        kernel_size: int = 3,
        last_pool: tuple[int, int] = (1, 1),
        trunk: str = "conv",
        head: str = "clip",
        wavegram: bool = False,
    ) -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, not {head!r}")
        if trunk not in ("conv", "mobilenet_v1"):
            raise ValueError(f"trunk must be 'conv' or 'mobilenet_v1', not {trunk!r}")
        if classes_num < 1:
            raise ValueError(f"classes_num must be at least 1, not {classes_num}")
        if wavegram and (feature_config.hop_size != WAVEGRAM_HOP or feature_config.mel_bins != 64):
            raise ValueError(
                "The Wavegram branch fixes hop_size=320 and mel_bins=64; "
                f"got {feature_config.hop_size} and {feature_config.mel_bins}."
            )
        self.arch_name = arch_name
        self.feature_config = feature_config
        self.classes_num = int(classes_num)
        self.head = head
        self.framewise = head != "clip"
        self.has_wavegram = wavegram
        self.trunk = trunk
        # Training-time regularisation (the reference values); fine-tuning may change them.
        self.block_dropout = 0.2
        self.head_dropout = 0.5
        self.spec_augment = True
        self._frozen: list[str] = []

        if wavegram:
            self.pre_conv0 = nn.Conv1d(1, 64, kernel_size=11, stride=5, padding=5, bias=False)
            self.pre_bn0 = nn.BatchNorm1d(64)
            self.pre_block1 = ConvPreWavBlock(64, 64)
            self.pre_block2 = ConvPreWavBlock(64, 128)
            self.pre_block3 = ConvPreWavBlock(128, 128)
            self.pre_block4 = ConvBlock(4, 64)

        fc = feature_config
        spectrogram, logmel = _front_end(fc)
        self.spectrogram_extractor = copy.deepcopy(spectrogram)
        self.logmel_extractor = copy.deepcopy(logmel)
        self.spec_augmenter = SpecAugmentation(
            time_drop_width=64, time_stripes_num=2, freq_drop_width=8, freq_stripes_num=2
        )
        self.bn0 = nn.BatchNorm2d(fc.mel_bins)

        if trunk == "mobilenet_v1":
            self.features = mobilenet_v1_features()
            self._pools: list[tuple[int, int]] = []
            width = 1024
            self.segment_frames = 32
        else:
            self._pools = [(2, 2)] * (len(channels) - 1) + [tuple(last_pool)]
            in_channels = 1
            for index, out_channels in enumerate(channels, start=1):
                if index == 2 and wavegram:
                    in_channels *= 2  # log-mel and Wavegram features are concatenated
                self.add_module(
                    f"conv_block{index}", ConvBlock(in_channels, out_channels, kernel_size)
                )
                in_channels = out_channels
            width = channels[-1]
            self.segment_frames = 1
            for pool in self._pools:
                self.segment_frames *= pool[0]
        self.embedding_dim = width

        self.fc1 = nn.Linear(width, width, bias=True)
        if head == "att":
            self.att_block = AttBlock(width, self.classes_num)
        else:
            self.fc_audioset = nn.Linear(width, self.classes_num, bias=True)
        self.init_weights()

    # ----------------------------------------------------------------- properties
    @property
    def min_samples(self) -> int:
        """Shortest input that needs no padding."""
        return min_samples_for(self.feature_config, self.segment_frames)

    @property
    def segment_samples(self) -> int:
        """Samples per segment: the time resolution of segment-level outputs."""
        return self.segment_frames * self.feature_config.hop_size

    @property
    def sample_rate(self) -> int:
        return self.feature_config.sample_rate

    # ------------------------------------------------------------ initialisation
    def init_weights(self) -> None:
        """PANNs' initialisation (xavier-uniform layers, unit batch norms)."""
        init_bn(self.bn0)
        init_layer(self.fc1)
        if self.head == "att":
            self.att_block.init_weights()
        else:
            init_layer(self.fc_audioset)
        if self.has_wavegram:
            init_layer(self.pre_conv0)
            init_bn(self.pre_bn0)

    def reset_classifier(self, num_classes: int, bias: torch.Tensor | float | None = None) -> None:
        """Replace the output layer with a fresh one for ``num_classes`` classes.

        ``bias`` sets the initial output bias (e.g. the logit of each class's prior,
        which makes short fine-tuning runs converge); default zero.
        """
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, not {num_classes}")
        device, dtype = self.fc1.weight.device, self.fc1.weight.dtype
        if self.head == "att":
            self.att_block = AttBlock(self.embedding_dim, num_classes).to(device, dtype)
            layer = self.att_block.cla
        else:
            self.fc_audioset = nn.Linear(self.embedding_dim, num_classes).to(device, dtype)
            init_layer(self.fc_audioset)
            layer = self.fc_audioset
        if bias is not None:
            with torch.no_grad():
                layer.bias.copy_(torch.as_tensor(bias, dtype=dtype).expand(num_classes))
        self.classes_num = int(num_classes)

    def classifier_prefixes(self) -> tuple[str, ...]:
        """State_dict key prefixes of the output layer (dropped when classes change)."""
        return ("att_block.",) if self.head == "att" else ("fc_audioset.",)

    def stage_names(self) -> list[str]:
        """Top-level learnable stages in forward order (for :meth:`freeze_until`)."""
        names = [n for n, m in self.named_children() if any(True for _ in m.parameters())]
        frozen_front = ("spectrogram_extractor", "logmel_extractor")
        return [n for n in names if n not in frozen_front]

    def freeze_until(self, stage: str | None) -> list[str]:
        """Freeze every stage before ``stage`` (None unfreezes all); returns the frozen ones.

        Frozen stages keep requires_grad=False and stay in eval mode (their batch
        norm statistics do not move) even when the model is put in training mode.
        """
        stages = self.stage_names()
        if stage is not None and stage not in stages:
            raise ValueError(f"Unknown stage {stage!r}; stages are {stages}")
        cut = 0 if stage is None else stages.index(stage)
        self._frozen = stages[:cut]
        for index, name in enumerate(stages):
            for parameter in getattr(self, name).parameters():
                parameter.requires_grad_(index >= cut)
        self.train(self.training)
        return list(self._frozen)

    def train(self, mode: bool = True) -> PannsCNN:
        super().train(mode)
        for name in self._frozen:
            getattr(self, name).eval()
        return self

    # ----------------------------------------------------------------- front ends
    def _as_batch(self, waveform: torch.Tensor) -> torch.Tensor:
        if waveform.dim() == 1:
            waveform = waveform[None, :]
        if waveform.dim() != 2:
            raise ValueError(f"waveform must be (batch, samples), got {tuple(waveform.shape)}")
        dtype = self.spectrogram_extractor.stft.conv_real.weight.dtype
        return waveform.to(dtype)

    def _pad_to(self, waveform: torch.Tensor, length: int) -> torch.Tensor:
        if waveform.shape[-1] >= length:
            return waveform
        return F.pad(waveform, (0, length - waveform.shape[-1]))

    def logmel(self, waveform: torch.Tensor) -> torch.Tensor:
        """Log-mel (batch, frames, mel_bins) in dB, before ``bn0``: the model's own view."""
        waveform = self._as_batch(waveform)
        frames = self.feature_config.num_frames(waveform.shape[-1])
        padded = self._pad_to(waveform, self.feature_config.window_size // 2 + 1)
        x = self.logmel_extractor(self.spectrogram_extractor(padded))
        return x[:, 0, :frames, :]

    def _wavegram_branch(self, waveform: torch.Tensor) -> torch.Tensor:
        """Wavegram activations (batch, 128, frames); length must be a multiple of 640."""
        x = F.relu(self.pre_bn0(self.pre_conv0(waveform[:, None, :])))
        x = self.pre_block1(x, pool_size=4)
        x = self.pre_block2(x, pool_size=4)
        return self.pre_block3(x, pool_size=4)

    def wavegram(self, waveform: torch.Tensor) -> torch.Tensor:
        """The learned Wavegram (batch, frames, 128) at the log-mel hop (10 ms at 32 kHz).

        The 128 channels are 4 groups of 32 frequency-like bins (channel = group * 32
        + bin), as the model reshapes them. Any input length works: the input is
        padded to a multiple of 640 samples and the result cropped to the frames
        that cover the input.
        """
        if not self.has_wavegram:
            raise AttributeError(f"{self.arch_name} has no Wavegram branch")
        waveform = self._as_batch(waveform)
        length = waveform.shape[-1]
        padded = self._pad_to(waveform, _round_up(max(length, 1), WAVEGRAM_BLOCK))
        x = self._wavegram_branch(padded)
        frames = -(-length // WAVEGRAM_HOP)
        return x[:, :, :frames].transpose(1, 2)

    # -------------------------------------------------------------------- forward
    def forward(
        self, waveform: torch.Tensor, mixup_lambda: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Run the model on ``waveform`` (batch, samples) at the model's sample rate.

        Returns ``clipwise_output`` (batch, classes) and ``embedding`` (batch, dim);
        SED models add ``segmentwise_output`` (batch, segments, classes),
        ``framewise_output`` (batch, frames, classes), ``segment_embedding`` and
        ``segmentwise_logits``. Tagging and max-pooling models add ``clipwise_logits``.
        ``mixup_lambda`` (training only) mixes batch items pairwise as the reference
        does, halving the batch.
        """
        waveform = self._as_batch(waveform)
        num_frames = self.feature_config.num_frames(waveform.shape[-1])
        waveform = self._pad_to(waveform, self.min_samples)

        x = self.logmel_extractor(self.spectrogram_extractor(waveform))  # (B, 1, T, M)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        if self.training and self.spec_augment:
            x = self.spec_augmenter(x)

        wave = None
        if self.has_wavegram:
            padded = self._pad_to(waveform, _round_up(waveform.shape[-1], WAVEGRAM_BLOCK))
            wave = self._wavegram_branch(padded)
            wave = wave.reshape(wave.shape[0], -1, 32, wave.shape[-1]).transpose(2, 3)
            wave = self.pre_block4(wave, pool_size=(2, 1))
        if self.training and mixup_lambda is not None:
            x = do_mixup(x, mixup_lambda)
            if wave is not None:
                wave = do_mixup(wave, mixup_lambda)

        x = self._trunk(x, wave)  # (B, C, T', F')
        x = torch.mean(x, dim=3)  # (B, C, T')
        if self.head == "clip":
            return self._clip_head(x)
        return self._sed_head(x, num_frames)

    def _trunk(self, x: torch.Tensor, wave: torch.Tensor | None) -> torch.Tensor:
        if self.trunk == "mobilenet_v1":
            return self.features(x)
        p = self.block_dropout
        for index, pool in enumerate(self._pools, start=1):
            x = getattr(self, f"conv_block{index}")(x, pool_size=pool, pool_type="avg")
            if index == 1 and wave is not None:
                # The Wavegram of the padded input is at least as long; keep the overlap.
                x = torch.cat((x, wave[:, :, : x.shape[2], :]), dim=1)
            x = F.dropout(x, p=p, training=self.training)
        return x

    def _clip_head(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = torch.max(x, dim=2).values + torch.mean(x, dim=2)
        x = F.dropout(x, p=self.head_dropout, training=self.training)
        x = F.relu(self.fc1(x))
        embedding = F.dropout(x, p=self.head_dropout, training=self.training)
        logits = self.fc_audioset(x)
        return {
            "clipwise_output": torch.sigmoid(logits),
            "clipwise_logits": logits,
            "embedding": embedding,
        }

    def _sed_head(self, x: torch.Tensor, num_frames: int) -> dict[str, torch.Tensor]:
        x = F.max_pool1d(x, kernel_size=3, stride=1, padding=1) + F.avg_pool1d(
            x, kernel_size=3, stride=1, padding=1
        )
        x = F.dropout(x, p=self.head_dropout, training=self.training)
        segment_embedding = F.relu(self.fc1(x.transpose(1, 2)))  # (B, S, D)
        hidden = F.dropout(segment_embedding, p=self.head_dropout, training=self.training)
        out: dict[str, torch.Tensor] = {}
        if self.head == "att":
            clipwise, _, logits = self.att_block(hidden.transpose(1, 2))
            logits = logits.transpose(1, 2)
            segmentwise = torch.sigmoid(logits)
        else:
            logits = self.fc_audioset(hidden)
            segmentwise = torch.sigmoid(logits)
            if self.head == "max":
                clip_logits = torch.max(logits, dim=1).values
                clipwise = torch.sigmoid(clip_logits)
                out["clipwise_logits"] = clip_logits
            else:
                clipwise = torch.mean(segmentwise, dim=1)
        out.update(
            clipwise_output=clipwise,
            segmentwise_output=segmentwise,
            segmentwise_logits=logits,
            framewise_output=expand_segments(segmentwise, self.segment_frames, num_frames),
            segment_embedding=segment_embedding,
            embedding=segment_embedding.mean(dim=1),
        )
        return out

    def embed(self, waveform: torch.Tensor) -> torch.Tensor:
        """Clip embedding (batch, embedding_dim): the input of the classifier."""
        return self.forward(waveform)["embedding"]

    def extra_repr(self) -> str:
        return f"arch={self.arch_name}, classes={self.classes_num}, head={self.head}"


def expand_segments(
    segmentwise: torch.Tensor, segment_frames: int, num_frames: int
) -> torch.Tensor:
    """Repeat each segment ``segment_frames`` times along time, then pad with the last
    frame (or crop) to ``num_frames`` frames, as the reference does."""
    frames = torch.repeat_interleave(segmentwise, segment_frames, dim=1)
    if frames.shape[1] >= num_frames:
        return frames[:, :num_frames]
    pad = frames[:, -1:].expand(-1, num_frames - frames.shape[1], -1)
    return torch.cat((frames, pad), dim=1)


@functools.lru_cache(maxsize=8)
def _front_end(fc: FeatureConfig) -> tuple[nn.Module, nn.Module]:
    """The STFT and mel filter bank for ``fc`` (:mod:`.frontend`), built once per config.

    Models copy this prototype. It is always built on the CPU (the weights come from
    numpy), which also lets a model be built on the "meta" device to check checkpoint
    keys cheaply.
    """
    with torch.device("cpu"):
        spectrogram = Spectrogram(
            n_fft=fc.window_size, hop_length=fc.hop_size, win_length=fc.window_size,
            center=True, pad_mode="reflect",
        )  # fmt: skip
        logmel = LogmelFilterBank(
            sr=fc.sample_rate, n_fft=fc.window_size, n_mels=fc.mel_bins, fmin=fc.fmin,
            fmax=fc.fmax, ref=1.0, amin=1e-10, top_db=None,
        )  # fmt: skip
    return spectrogram, logmel


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple
