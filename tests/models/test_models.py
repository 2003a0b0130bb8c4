"""The PANNs model family: reference keys and shapes, golden outputs, and our additions.

Golden tests: our model, given ``deterministic_state_dict`` weights and loaded with
strict=True, must reproduce every reference output in tests/fixtures/reference within
1e-4, both directly and through a checkpoint file in the official layout.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from panns_core.errors import PannsError
from panns_core.hub.checkpoints import load_checkpoint
from panns_core.models import (
    FEATURES_16K,
    FEATURES_32K,
    architecture_spec,
    build_model,
    frames_to_segments,
    list_architectures,
)

REFERENCE = Path(__file__).parents[1] / "fixtures" / "reference"
KEYS = json.loads((REFERENCE / "state_dict_keys.json").read_text())
GOLDENS = sorted(p for p in REFERENCE.glob("*__*.npz") if not p.name.startswith("logmel__"))
GOLDEN_ARCHS = sorted({p.name.split("__")[0] for p in GOLDENS})
FAST_ARCHS = ("Cnn10", "Cnn6", "MobileNetV1")
TOLERANCE = 1e-4


def _deterministic_weights():
    spec = importlib.util.spec_from_file_location(
        "deterministic_weights", REFERENCE / "deterministic_weights.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.deterministic_state_dict


deterministic_state_dict = _deterministic_weights()


def _arch_param(arch: str):
    marks = () if arch in FAST_ARCHS else (pytest.mark.slow,)
    return pytest.param(arch, marks=marks, id=arch)


@pytest.fixture(scope="module", autouse=True)
def _few_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(min(2, before))
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def golden_model(request: pytest.FixtureRequest):
    """One deterministic, eval-mode model per architecture, shared within this module."""
    arch = request.param
    model = build_model(arch)
    model.load_state_dict(deterministic_state_dict(model.state_dict()), strict=True)
    return model.eval()


def _goldens(arch: str) -> list[Path]:
    return [p for p in GOLDENS if p.name.split("__")[0] == arch]


def _run(model: torch.nn.Module, waveform: np.ndarray) -> dict[str, np.ndarray]:
    with torch.inference_mode():
        out = model(torch.from_numpy(waveform)[None, :])
    return {k: v[0].numpy() for k, v in out.items()}


def _max_diffs(out: dict[str, np.ndarray], golden: np.lib.npyio.NpzFile) -> dict[str, float]:
    diffs = {}
    for key in golden.files:
        if key == "input":
            continue
        assert out[key].shape == golden[key].shape, key
        diffs[key] = float(np.max(np.abs(out[key] - golden[key])))
    return diffs


# ------------------------------------------------------------------ keys and shapes
def test_every_reference_architecture_is_registered() -> None:
    assert set(KEYS) <= set(list_architectures())
    assert set(GOLDEN_ARCHS) == set(KEYS)


@pytest.mark.parametrize("arch", sorted(KEYS))
@pytest.mark.parametrize("classes_num", [527, 1, 10])
def test_state_dict_keys_and_shapes_match_reference(arch: str, classes_num: int) -> None:
    with torch.device("meta"):
        model = build_model(arch, classes_num=classes_num)
    got = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    expected = [
        [k, [classes_num, *shape[1:]] if shape and shape[0] == 527 else shape]
        for k, shape in KEYS[arch]["keys"]
    ]
    assert got == expected


@pytest.mark.parametrize("arch", sorted(KEYS))
def test_spec_matches_reference_config_and_model(arch: str) -> None:
    spec = architecture_spec(arch)
    config = dict(KEYS[arch]["config"])
    assert config.pop("classes_num") == 527
    assert spec.feature_config.to_dict() == config
    with torch.device("meta"):
        model = build_model(arch)
    assert model.arch_name == arch
    assert model.feature_config == spec.feature_config
    assert model.classes_num == 527
    assert model.framewise == spec.framewise == arch.startswith("Cnn14_DecisionLevel")
    assert model.segment_frames == spec.segment_frames
    assert model.min_samples == spec.min_samples
    assert model.embedding_dim == spec.embedding_dim
    assert model.segment_samples == spec.segment_samples


def test_cnn14_timing_facts() -> None:
    spec = architecture_spec("Cnn14_DecisionLevelMax")
    assert spec.segment_samples == 10240  # 32 frames of 320 samples
    assert spec.min_samples == 9920  # 0.31 s: 32 frames after the centred STFT
    assert architecture_spec("cnn14_decisionlevelmax") is spec
    with pytest.raises(PannsError, match="Unknown architecture"):
        architecture_spec("Cnn15")


def test_importing_models_does_not_import_torch() -> None:
    code = (
        "import sys, panns_core.models as m; m.list_architectures(); print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_building_a_model_does_not_import_librosa() -> None:
    """The front end is our own: no torchlibrosa, librosa, numba or scipy.signal at start."""
    code = (
        "import sys; from panns_core.models import build_model; "
        "build_model('Cnn14_DecisionLevelMax'); "
        "print(sorted({k.split('.')[0] for k in sys.modules} "
        "& {'librosa', 'numba', 'torchlibrosa'}), 'scipy.signal' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] False"


# ----------------------------------------------------------------------- goldens
@pytest.mark.parametrize(
    "golden_model", [_arch_param(a) for a in GOLDEN_ARCHS], indirect=True, ids=str
)
def test_golden_outputs(golden_model: torch.nn.Module) -> None:
    goldens = _goldens(golden_model.arch_name)
    assert goldens
    for path in goldens:
        golden = np.load(path)
        out = _run(golden_model, golden["input"])
        diffs = _max_diffs(out, golden)
        assert diffs and max(diffs.values()) <= TOLERANCE, (path.name, diffs)
        assert out["clipwise_output"].shape == (527,)
        assert out["embedding"].shape == (golden_model.embedding_dim,)
        if golden_model.framewise:
            frames = golden["framewise_output"].shape[0]
            segments = out["segmentwise_output"].shape[0]
            assert segments == frames_to_segments(frames, 32)
            # framewise = each segment repeated 32 times, then the last frame repeated
            expanded = np.repeat(out["segmentwise_output"], 32, axis=0)
            np.testing.assert_array_equal(out["framewise_output"][: 32 * segments], expanded)
            assert np.all(out["framewise_output"][32 * segments :] == expanded[-1])


@pytest.mark.parametrize(
    "golden_model", [_arch_param(a) for a in GOLDEN_ARCHS], indirect=True, ids=str
)
def test_golden_outputs_through_official_checkpoint_file(
    golden_model: torch.nn.Module, tmp_path: Path
) -> None:
    """Weights saved as the official releases are ({'model': sd, 'iteration': 0}), with
    an official-style file name, load through load_checkpoint and give the goldens."""
    arch = golden_model.arch_name
    path = tmp_path / f"{arch}_mAP=0.000.pth"
    # The old (2020) files are in torch's legacy format; alternate to cover both.
    legacy = GOLDEN_ARCHS.index(arch) % 2 == 1
    torch.save(
        {"model": golden_model.state_dict(), "iteration": 0},
        path,
        _use_new_zipfile_serialization=not legacy,
    )
    loaded = load_checkpoint(path)
    assert loaded.architecture == arch
    assert loaded.feature_config == architecture_spec(arch).feature_config
    assert len(loaded.labels) == 527 and loaded.labels[0] == "Speech"
    model = loaded.build_model()
    path.unlink()
    assert not model.training
    golden = np.load(_goldens(arch)[0])
    diffs = _max_diffs(_run(model, golden["input"]), golden)
    assert max(diffs.values()) <= TOLERANCE, diffs


@pytest.mark.parametrize(
    ("name", "features"),
    [("logmel__32k_10s.npz", FEATURES_32K), ("logmel__16k_10s.npz", FEATURES_16K)],
)
def test_logmel_golden(name: str, features) -> None:
    golden = np.load(REFERENCE / name)
    model = build_model("Cnn6", feature_config=features).eval()
    with torch.inference_mode():
        logmel = model.logmel(torch.from_numpy(golden["input"])[None])[0].numpy()
    assert logmel.shape == golden["logmel"].shape
    assert float(np.max(np.abs(logmel - golden["logmel"]))) <= TOLERANCE


# ------------------------------------------------------------------- our additions
@pytest.fixture(scope="module")
def small_models() -> dict[str, torch.nn.Module]:
    models = {}
    for arch in FAST_ARCHS:
        torch.manual_seed(0)
        model = build_model(arch, classes_num=5)
        model.load_state_dict(deterministic_state_dict(model.state_dict()))
        models[arch] = model.eval()
    return models


def _signal(samples: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 32000
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(samples)
    return torch.from_numpy(x.astype(np.float32))


@pytest.mark.parametrize("arch", FAST_ARCHS)
def test_any_classes_num_and_embedding(small_models, arch: str) -> None:
    model = small_models[arch]
    x = torch.stack([_signal(32000, 1), _signal(48000, 2)[:32000]])
    with torch.inference_mode():
        out = model(x)
        embedding = model.embed(x)
        via_head = torch.sigmoid(model.fc_audioset(out["embedding"]))
    assert out["clipwise_output"].shape == (2, 5)
    assert out["embedding"].shape == (2, model.embedding_dim)
    torch.testing.assert_close(embedding, out["embedding"])
    assert torch.all(out["embedding"] >= 0)  # after ReLU
    # In eval mode the classifier's input is exactly the embedding.
    torch.testing.assert_close(via_head, out["clipwise_output"])
    torch.testing.assert_close(torch.sigmoid(out["clipwise_logits"]), out["clipwise_output"])


@pytest.mark.parametrize("arch", FAST_ARCHS)
def test_batch_items_are_independent_in_eval(small_models, arch: str) -> None:
    model = small_models[arch]
    a, b = _signal(20000, 3), _signal(20000, 4)
    with torch.inference_mode():
        both = model(torch.stack([a, b]))["clipwise_output"]
        alone = model(b[None])["clipwise_output"]
    torch.testing.assert_close(both[1:], alone, atol=1e-6, rtol=0)


@pytest.mark.parametrize("arch", FAST_ARCHS)
@pytest.mark.parametrize("samples", [1, 600, 4000])
def test_short_inputs_are_zero_padded(small_models, arch: str, samples: int) -> None:
    model = small_models[arch]
    x = _signal(samples)[None]
    padded = torch.nn.functional.pad(x, (0, model.min_samples - samples))
    with torch.inference_mode():
        out = model(x)
        reference = model(padded)
        logmel = model.logmel(x)
    torch.testing.assert_close(out["clipwise_output"], reference["clipwise_output"])
    assert logmel.shape == (1, samples // 320 + 1, 64)


@pytest.mark.slow
def test_sed_outputs_short_and_odd_lengths() -> None:
    model = build_model("Cnn14_DecisionLevelMax", classes_num=3)
    model.load_state_dict(deterministic_state_dict(model.state_dict()))
    model.eval()
    assert model.segment_samples == 10240
    for samples in (500, 9920, 10240 * 2 + 7):
        x = _signal(samples)[None]
        with torch.inference_mode():
            out = model(x)
            padded = model(torch.nn.functional.pad(x, (0, max(0, model.min_samples - samples))))
            seg = torch.sigmoid(model.fc_audioset(out["segment_embedding"]))
        frames = samples // 320 + 1
        segments = frames_to_segments(max(frames, 32), 32)
        assert out["framewise_output"].shape == (1, frames, 3)
        assert out["segmentwise_output"].shape == (1, segments, 3)
        assert out["segment_embedding"].shape == (1, segments, 2048)
        torch.testing.assert_close(out["segmentwise_output"], padded["segmentwise_output"])
        torch.testing.assert_close(seg, out["segmentwise_output"])
        torch.testing.assert_close(out["clipwise_output"], seg.max(dim=1).values)
        torch.testing.assert_close(out["embedding"], out["segment_embedding"].mean(dim=1))


@pytest.fixture(scope="module")
def wavegram_model() -> torch.nn.Module:
    model = build_model("Wavegram_Logmel_Cnn14")
    model.load_state_dict(deterministic_state_dict(model.state_dict()))
    return model.eval()


@pytest.mark.slow
@pytest.mark.parametrize("samples", [1, 5000, 9920, 9921, 10239, 10240, 10881, 32017, 64000])
def test_wavegram_model_accepts_any_length(wavegram_model, samples: int) -> None:
    x = _signal(samples, seed=samples)[None]
    with torch.inference_mode():
        out = wavegram_model(x)
        image = wavegram_model.wavegram(x)
    assert out["clipwise_output"].shape == (1, 527)
    assert torch.isfinite(out["clipwise_output"]).all()
    assert out["embedding"].shape == (1, 2048)
    assert image.shape == (1, -(-samples // 320), 128)
    assert torch.isfinite(image).all() and torch.all(image >= 0)


@pytest.mark.slow
def test_wavegram_is_the_model_branch_and_batches_agree(wavegram_model) -> None:
    """On a multiple of 640 samples nothing is padded: the Wavegram is the branch output,
    and a batch of two gives each item's own result."""
    a, b = _signal(12800, 5), _signal(12800, 6)
    with torch.inference_mode():
        branch = wavegram_model._wavegram_branch(a[None])
        image = wavegram_model.wavegram(a)
        both = wavegram_model(torch.stack([a, b]))["clipwise_output"]
        alone = wavegram_model(b[None])["clipwise_output"]
        # an odd length is cropped from the padded computation
        odd = wavegram_model.wavegram(a[:12000])
    torch.testing.assert_close(image, branch.transpose(1, 2))
    assert image.shape == (1, 40, 128)
    torch.testing.assert_close(both[1:], alone, atol=1e-6, rtol=0)
    assert odd.shape == (1, 38, 128)
    padded = torch.nn.functional.pad(a[:12000], (0, 160))  # to 19 * 640 samples
    with torch.inference_mode():
        torch.testing.assert_close(
            odd, wavegram_model._wavegram_branch(padded[None])[:, :, :38].transpose(1, 2)
        )
    with pytest.raises(AttributeError, match="no Wavegram"):
        build_model("Cnn6").wavegram(a)


def test_reset_classifier_and_freeze(small_models) -> None:
    model = build_model("Cnn6", classes_num=527)
    prior = torch.tensor([0.01, 0.2, 0.5])
    model.reset_classifier(3, bias=torch.logit(prior))
    assert model.classes_num == 3
    assert model.fc_audioset.weight.shape == (3, 512)
    torch.testing.assert_close(model.fc_audioset.bias.detach(), torch.logit(prior))
    model.eval()
    with torch.inference_mode():
        assert model(_signal(16000)[None])["clipwise_output"].shape == (1, 3)
    assert model.classifier_prefixes() == ("fc_audioset.",)

    stages = model.stage_names()
    assert stages == ["bn0", "conv_block1", "conv_block2", "conv_block3", "conv_block4",
                      "fc1", "fc_audioset"]  # fmt: skip
    frozen = model.freeze_until("conv_block4")
    assert frozen == ["bn0", "conv_block1", "conv_block2", "conv_block3"]
    model.train()
    assert not model.conv_block2.training and not model.conv_block2.bn1.training
    assert model.conv_block4.training
    assert not any(p.requires_grad for p in model.conv_block3.parameters())
    assert all(p.requires_grad for p in model.conv_block4.parameters())
    assert model.freeze_until(None) == []
    assert all(p.requires_grad for n, p in model.named_parameters() if "extractor" not in n)
    with pytest.raises(ValueError, match="Unknown stage"):
        model.freeze_until("conv_block9")


def test_reset_classifier_of_attention_head() -> None:
    with torch.device("meta"):
        model = build_model("Cnn14_DecisionLevelAtt")
    model.reset_classifier(4)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith("att_block")}
    assert shapes["att_block.cla.weight"] == (4, 2048, 1)
    assert shapes["att_block.bn_att.running_mean"] == (4,)
    assert model.classifier_prefixes() == ("att_block.",)


def test_training_mode_mixup_and_gradients() -> None:
    torch.manual_seed(0)
    model = build_model("Cnn6", classes_num=4)
    model.train()
    x = torch.stack([_signal(16000, s) for s in range(4)])
    lam = torch.tensor([0.7, 0.3, 0.6, 0.4])
    out = model(x, mixup_lambda=lam)
    assert out["clipwise_output"].shape == (2, 4)  # pairs mixed, as the reference does
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        out["clipwise_logits"], torch.ones(2, 4)
    )
    loss.backward()
    assert model.conv_block1.conv1.weight.grad is not None
    assert model.spectrogram_extractor.stft.conv_real.weight.grad is None  # frozen front end


def test_small_event_detector_addition() -> None:
    """Cnn6_DecisionLevelMax (ours, not released): Cnn6 weights with the SED head."""
    assert "Cnn6_DecisionLevelMax" not in list_architectures(reference_only=True)
    spec = architecture_spec("Cnn6_DecisionLevelMax")
    assert spec.framewise and not spec.reference and spec.segment_samples == 5120
    model = build_model("Cnn6_DecisionLevelMax", classes_num=2).eval()
    cnn6 = build_model("Cnn6", classes_num=2)
    model.load_state_dict(cnn6.state_dict(), strict=True)
    with torch.inference_mode():
        out = model(_signal(32000)[None])
    assert out["segmentwise_output"].shape == (1, frames_to_segments(101, 16), 2)
    assert out["framewise_output"].shape == (1, 101, 2)
    torch.testing.assert_close(out["clipwise_output"], out["segmentwise_output"].max(dim=1).values)


def test_a_typed_class_list_keeps_class_names_that_hold_commas() -> None:
    from panns_core.labels import audioset_labels, split_label_list

    known = audioset_labels().names
    typed = "dog, Cattle, bovinae, Canidae, dogs, wolves,  Speech ,, my own, sound"
    assert split_label_list(typed, known) == [
        "Dog", "Cattle, bovinae", "Canidae, dogs, wolves", "Speech", "my own", "sound"]
    assert split_label_list('"my own, sound", Dog', known) == ["my own, sound", "Dog"]
    assert split_label_list("", known) == [] and split_label_list(" , ", known) == []
    assert split_label_list(", ".join(known), known) == known  # every class round-trips
