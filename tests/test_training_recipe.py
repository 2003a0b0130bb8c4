"""The from-scratch recipe's parts: defaults, log-mel computed once (and the network run
from it exactly as from audio), the time-based learning-rate schedule, automatic bf16."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from panns_core.training import tiny  # noqa: F401  (registers TinySED)
from panns_core.training.config import TrainConfig
from panns_core.training.data import Clip, ClipAudio, LabelledRecording
from panns_core.training.features import (
    SILENCE_DB,
    ClipFeatures,
    LogMelNet,
    can_cache_features,
)
from panns_core.training.steps import lr_fraction, resolve_precision


def test_defaults_are_the_measured_recipe():
    cfg = TrainConfig()
    assert cfg.clip_seconds == 10.0 and cfg.mixup_prob == 0.0 and not cfg.spec_augment
    assert cfg.gain_db > 0 and cfg.feature_cache and cfg.calibrate
    assert cfg.precision == "auto" and cfg.warmup_fraction > 0
    assert TrainConfig(time_budget=900).train_budget == pytest.approx(810.0)
    assert TrainConfig(time_budget=900, val_fraction=0).train_budget == 900
    assert TrainConfig().train_budget is None


def test_lr_fraction_warms_up_then_decays_to_zero():
    assert lr_fraction(0.0, 0.05) == pytest.approx(1e-3)
    assert lr_fraction(0.025, 0.05) == pytest.approx(0.5)
    assert lr_fraction(0.05, 0.05) == pytest.approx(1.0)
    values = [lr_fraction(u, 0.05) for u in np.linspace(0.05, 1.0, 50)]
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert lr_fraction(1.0, 0.05) == pytest.approx(0.0, abs=1e-12)
    assert lr_fraction(3.0, 0.05) == pytest.approx(0.0, abs=1e-12)


def test_auto_precision_follows_the_cpu(monkeypatch):
    import panns_core.detection.quantized as quantized

    monkeypatch.setattr(quantized, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision(torch.device("cpu")) == "bf16"
    monkeypatch.setattr(quantized, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision(torch.device("cpu")) == "fp32"


def model():
    from panns_core.models import build_model

    torch.manual_seed(0)
    return build_model("TinySED", classes_num=3).eval()


def test_network_from_cached_log_mel_equals_the_network_from_audio():
    net = model()
    assert can_cache_features(net, "full") and not can_cache_features(net, "head")
    wave = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 32000)).astype("f4"))
    with torch.no_grad():
        direct = net(wave)
        cached = LogMelNet(net)(net.logmel(wave))
    for key in ("segmentwise_logits", "clipwise_output", "segment_embedding"):
        assert torch.allclose(direct[key], cached[key], atol=1e-5), key


def test_clip_features_are_slices_of_the_recording(tmp_path):
    import soundfile as sf

    net = model()
    rate = net.feature_config.sample_rate
    x = (0.1 * np.random.default_rng(2).standard_normal(4 * rate)).astype("f4")
    sf.write(tmp_path / "a.wav", x, rate)
    r = LabelledRecording("a", tmp_path / "a.wav", 4.0, np.zeros((0, 3)), np.zeros((0, 3)),
                          np.zeros((0, 3)))  # fmt: skip
    clips = [Clip(0, 1.0, -1), Clip(0, 3.0, -1)]
    audio = ClipAudio([r], clips, 1.0, 0.25, rate)
    feats = ClipFeatures(net, audio, 1.0)
    hop = net.feature_config.hop_size
    start = feats.snap(1.003)
    assert start * rate % hop == pytest.approx(0.0, abs=1e-6)
    crop = feats.crop(0, 1.003)
    assert crop.shape == (feats.frames, net.feature_config.mel_bins)
    with torch.no_grad():
        whole = net.logmel(torch.from_numpy(x))[0]
    first = round(start * rate / hop)
    # away from the span's edges a slice equals the whole recording's frames
    # (to 0.01 dB: the span is decoded on its own)
    assert torch.allclose(crop[5:-5], whole[first + 5 : first + feats.frames - 5], atol=1e-2)
    tail = feats.crop(0, 3.5)  # past the end: silence
    assert (tail[-5:] == SILENCE_DB).all()
    assert Path(r.path).is_file()
