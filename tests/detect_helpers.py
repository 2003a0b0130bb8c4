"""Shared by the detection tests: models with deterministic weights and test recordings.

``tiny_sed`` registers a narrow SED network with the CNN14 SED geometry (32 kHz, hop 320,
six ConvBlocks, 32 frames = 0.32 s per segment, max head) built from the same
:class:`PannsCNN` class as the real models, so detection tests run in milliseconds; the
CNN14 tests use the real architecture.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

REFERENCE = Path(__file__).parent / "fixtures" / "reference"
TINY = "DetectTinySED"
TINY_LABELS = ["Speech", "Dog", "Bark", "Music", "Chink, clink", "Vehicle", "Bird"]


def deterministic_state_dict(state_dict: dict) -> dict:
    spec = importlib.util.spec_from_file_location(
        "deterministic_weights", REFERENCE / "deterministic_weights.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.deterministic_state_dict(state_dict)


@contextlib.contextmanager
def tiny_sed() -> Iterator[str]:
    """Register the tiny SED architecture for the duration of a test."""
    from panns_core.models import ARCHITECTURES, FEATURES_32K, ArchSpec
    from panns_core.models.registry import register_architecture

    def build(classes_num, feature_config):
        from panns_core.models.network import PannsCNN

        return PannsCNN(
            arch_name=TINY,
            feature_config=feature_config,
            classes_num=classes_num,
            channels=(8, 8, 16, 16, 32, 32),
            head="max",
        )

    spec = ArchSpec(TINY, FEATURES_32K, True, 32, 32, "detection tests", reference=False)
    register_architecture(spec)(build)
    try:
        yield TINY
    finally:
        ARCHITECTURES.pop(TINY, None)


def deterministic_model(arch: str, classes_num: int = 527):
    from panns_core.models import build_model

    model = build_model(arch, classes_num)
    model.load_state_dict(deterministic_state_dict(model.state_dict()), strict=True)
    return model.eval()


def scene(seconds: float, sample_rate: int = 32000, seed: int = 0) -> np.ndarray:
    """Noise with tone bursts and clicks: a signal whose scores vary over time."""
    rng = np.random.default_rng(seed)
    n = round(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    x = 0.02 * rng.standard_normal(n)
    for start in np.arange(0.3, seconds, 1.7):
        on = (t >= start) & (t < start + 0.6)
        x[on] += 0.3 * np.sin(2 * np.pi * rng.uniform(300, 3000) * t[on])
    for click in rng.uniform(0, seconds, max(1, int(seconds))):
        i = int(click * sample_rate)
        x[i : i + 64] += 0.8
    return x.astype(np.float32)


def write_scene(path: Path, seconds: float, sample_rate: int = 32000, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, scene(seconds, sample_rate, seed), sample_rate, subtype="PCM_16")
    return path


def single_pass_framewise(model, waveform: np.ndarray) -> np.ndarray:
    """The reference way: one forward pass over the whole waveform, framewise output."""
    import torch

    with torch.inference_mode():
        out = model(torch.from_numpy(np.asarray(waveform, dtype=np.float32)[None]))
    return out["framewise_output"][0].numpy()
