"""The checkpoint loader: every layout a user may have, our format, and refusals."""

from __future__ import annotations

import importlib.util
import pickle
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch

from panns_core.errors import CheckpointError
from panns_core.hub.checkpoints import (
    architecture_candidates,
    detect_architecture,
    load_checkpoint,
    save_checkpoint,
)
from panns_core.hub.detector import Detector
from panns_core.labels import audioset_labels
from panns_core.models import FEATURES_16K, build_model, list_architectures

REFERENCE = Path(__file__).parents[1] / "fixtures" / "reference"


def _deterministic_state_dict(sd: dict) -> dict:
    spec = importlib.util.spec_from_file_location("dw", REFERENCE / "deterministic_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.deterministic_state_dict(sd)


@pytest.fixture(scope="module")
def cnn6() -> torch.nn.Module:
    model = build_model("Cnn6", classes_num=527)
    model.load_state_dict(_deterministic_state_dict(model.state_dict()))
    return model.eval()


@pytest.fixture(scope="module")
def probe() -> torch.Tensor:
    rng = np.random.default_rng(7)
    return torch.from_numpy(rng.standard_normal((1, 16000)).astype(np.float32) * 0.1)


def _outputs(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(x)["clipwise_output"]


def _meta_state_dict(arch: str, classes_num: int = 527, **kwargs) -> dict[str, torch.Tensor]:
    with torch.device("meta"):
        return build_model(arch, classes_num, **kwargs).state_dict()


def _numpy_sampler_state() -> dict:
    """What the reference training loop stores next to the weights (Cnn14_16k's file)."""
    rs = np.random.RandomState(1234)
    return {
        "indexes_per_class": [np.arange(5, dtype=np.int64), np.arange(3, dtype=np.int32)],
        "queue": [np.int64(3), np.int64(1)],
        "pointers_of_classes": [0, 2],
        "random_state": rs.get_state(),  # ('MT19937', uint32 array, int, int, float)
        "weights": np.linspace(0, 1, 4, dtype=np.float32),
        "flags": np.array([True, False]),
    }


# -------------------------------------------------------------------- the layouts
@pytest.mark.parametrize(
    "layout", ["official", "official-legacy", "bare", "module", "orig_mod", "state_dict"]
)
def test_every_layout_loads_and_gives_the_same_model(cnn6, probe, tmp_path, layout) -> None:
    sd = cnn6.state_dict()
    payload: object = {
        "official": {"model": sd, "iteration": 10000},
        "official-legacy": {"model": sd, "iteration": 10000},
        "bare": sd,
        "module": {"model": {f"module.{k}": v for k, v in sd.items()}, "iteration": 1},
        "orig_mod": {f"_orig_mod.module.{k}": v for k, v in sd.items()},
        "state_dict": {"state_dict": sd, "epoch": 3},
    }[layout]
    path = tmp_path / "weights.pth"
    torch.save(payload, path, _use_new_zipfile_serialization=layout != "official-legacy")
    loaded = load_checkpoint(path)
    assert loaded.architecture == "Cnn6"
    assert loaded.path == path
    assert set(loaded.state_dict) == set(sd)
    assert loaded.labels == audioset_labels().names
    detector = Detector.from_checkpoint(loaded)
    model = detector.module
    assert not model.training
    assert detector.labels == tuple(audioset_labels().names)
    assert not hasattr(model, "labels")  # nothing is patched onto the module
    assert detector.model_id.startswith("weights@") and len(detector.model_id) == 20
    torch.testing.assert_close(_outputs(model, probe), _outputs(cnn6, probe), rtol=0, atol=0)


@pytest.mark.parametrize("legacy", [False, True])
def test_numpy_sampler_state_loads_with_weights_only(cnn6, tmp_path, legacy) -> None:
    path = tmp_path / "with_sampler.pth"
    torch.save(
        {"iteration": 5, "model": cnn6.state_dict(), "sampler": _numpy_sampler_state()},
        path,
        _use_new_zipfile_serialization=not legacy,
    )
    assert load_checkpoint(path).architecture == "Cnn6"


def test_numpy_1x_module_names_load(cnn6, tmp_path) -> None:
    """Files pickled under numpy 1.x name ``numpy.core.multiarray``; numpy 2 renamed it."""
    path = tmp_path / "numpy1.pth"
    torch.save(
        {"model": cnn6.state_dict(), "sampler": _numpy_sampler_state()},
        path,
        _use_new_zipfile_serialization=False,
    )
    raw = path.read_bytes()
    assert b"numpy._core.multiarray\n_reconstruct" in raw  # protocol-2 GLOBAL opcodes
    path.write_bytes(raw.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))
    assert b"numpy.core.multiarray\n_reconstruct" in path.read_bytes()
    assert load_checkpoint(path).architecture == "Cnn6"


@pytest.mark.slow
def test_cnn14_16k_official_file_with_sampler_state(tmp_path) -> None:
    model = build_model("Cnn14_16k")
    sd = _deterministic_state_dict(model.state_dict())
    path = tmp_path / "Cnn14_16k_mAP=0.438.pth"
    torch.save(
        {"iteration": 1, "model": sd, "sampler": _numpy_sampler_state()},
        path,
        _use_new_zipfile_serialization=False,
    )
    loaded = load_checkpoint(path)
    path.unlink()  # 330 MB
    assert loaded.architecture == "Cnn14_16k"
    assert loaded.feature_config == FEATURES_16K
    rebuilt = loaded.build_model()
    assert rebuilt.feature_config.sample_rate == 16000
    torch.testing.assert_close(rebuilt.fc1.weight, sd["fc1.weight"])


# ------------------------------------------------------------------- our own format
def test_own_format_round_trip(cnn6, probe, tmp_path) -> None:
    torch.manual_seed(3)
    model = build_model("Cnn6", classes_num=527)
    model.load_state_dict(cnn6.state_dict())
    model.reset_classifier(3, bias=-2.0)
    model.eval()
    labels = ["Wren", "Robin", "Car horn"]
    path = save_checkpoint(
        tmp_path / "models" / "birds.pth",
        model,
        architecture="Cnn6",
        feature_config=model.feature_config,
        labels=labels,
        parent="Cnn6_mAP=0.343",
        metrics={"f1": np.float32(0.75), "per_class": np.array([0.5, 1.0]), "steps": 120},
        extra={"recordings": [Path("/data/a.wav")], "note": "first run"},
    )
    assert path == tmp_path / "models" / "birds.pth"
    assert [p.name for p in path.parent.iterdir()] == ["birds.pth"]  # no temp file left

    loaded = load_checkpoint(path)
    assert loaded.architecture == "Cnn6"
    assert loaded.labels == labels
    assert loaded.feature_config == model.feature_config
    meta = loaded.metadata
    assert meta["parent"] == "Cnn6_mAP=0.343"
    assert meta["metrics"] == {"f1": 0.75, "per_class": [0.5, 1.0], "steps": 120}
    assert meta["extra"] == {"recordings": ["/data/a.wav"], "note": "first run"}
    created = datetime.fromisoformat(meta["created"])
    assert created.tzinfo is not None
    assert abs((datetime.now(created.tzinfo) - created).total_seconds()) < 600
    assert "architecture_candidates" not in meta

    rebuilt = loaded.build_model()
    assert rebuilt.classes_num == 3
    torch.testing.assert_close(_outputs(rebuilt, probe), _outputs(model, probe), rtol=0, atol=0)
    # The official layout's 'model' entry is there too: other PANNs tools can read it.
    raw = torch.load(path, weights_only=True)
    assert set(raw["model"]) == set(model.state_dict())


@pytest.mark.slow
def test_own_format_keeps_architecture_between_identical_heads(tmp_path) -> None:
    """Cnn14 and Cnn14_DecisionLevelAvg have the same weights: our metadata decides."""
    model = build_model("Cnn14_DecisionLevelAvg", classes_num=2)
    path = save_checkpoint(
        tmp_path / "anything.pth",
        model,
        architecture="Cnn14_DecisionLevelAvg",
        feature_config=model.feature_config,
        labels=["a", "b"],
    )
    loaded = load_checkpoint(path)
    path.unlink()  # 300 MB
    assert loaded.architecture == "Cnn14_DecisionLevelAvg"
    assert loaded.build_model().head == "avg"


def test_save_refuses_inconsistent_input(cnn6, tmp_path) -> None:
    fc = cnn6.feature_config
    with pytest.raises(CheckpointError, match="3 labels given for a model with 527 outputs"):
        save_checkpoint(tmp_path / "a.pth", cnn6, architecture="Cnn6", feature_config=fc,
                        labels=["a", "b", "c"])  # fmt: skip
    with pytest.raises(CheckpointError, match="do not fit architecture Cnn10"):
        save_checkpoint(tmp_path / "b.pth", cnn6, architecture="Cnn10", feature_config=fc,
                        labels=audioset_labels().names)  # fmt: skip
    with pytest.raises(CheckpointError, match="Cannot store metrics"):
        save_checkpoint(tmp_path / "c.pth", cnn6, architecture="Cnn6", feature_config=fc,
                        labels=audioset_labels().names, metrics={"x": object()})  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_metadata_naming_another_architecture_is_refused(cnn6, tmp_path) -> None:
    path = tmp_path / "liar.pth"
    torch.save(
        {
            "format": "panns-annotator-checkpoint",
            "format_version": 1,
            "model": cnn6.state_dict(),
            "metadata": {"architecture": "MobileNetV1"},
        },
        path,
    )
    with pytest.raises(CheckpointError, match="do not fit architecture MobileNetV1"):
        load_checkpoint(path)


def test_forced_architecture_and_labels_for_other_class_counts(tmp_path) -> None:
    model = build_model("Cnn6", classes_num=4)
    path = tmp_path / "four.pth"
    torch.save(model.state_dict(), path)
    loaded = load_checkpoint(path, architecture="cnn6")
    assert loaded.architecture == "Cnn6"
    assert loaded.labels == ["class_0", "class_1", "class_2", "class_3"]
    with pytest.raises(CheckpointError, match="do not fit architecture Cnn10"):
        load_checkpoint(path, architecture="Cnn10")
    with pytest.raises(CheckpointError, match="does not know"):
        load_checkpoint(path, architecture="ResNet38")


# ----------------------------------------------------------------------- detection
@pytest.mark.parametrize("arch", list_architectures())
@pytest.mark.parametrize("classes_num", [527, 3])
def test_detect_every_architecture_from_keys_and_shapes(arch, classes_num) -> None:
    sd = _meta_state_dict(arch, classes_num)
    assert detect_architecture(sd, hint=f"{arch}_mAP=0.4.pth") == arch
    assert arch in architecture_candidates(sd)


def test_identical_cnn14_heads_use_the_file_name() -> None:
    sd = _meta_state_dict("Cnn14")
    assert architecture_candidates(sd) == ["Cnn14_DecisionLevelMax", "Cnn14_DecisionLevelAvg",
                                           "Cnn14"]  # fmt: skip
    assert detect_architecture(sd, hint="Cnn14_mAP=0.431.pth") == "Cnn14"
    assert detect_architecture(sd, hint="Cnn14_DecisionLevelAvg_x.pth") == "Cnn14_DecisionLevelAvg"
    assert detect_architecture(sd, hint="my_model.pth") == "Cnn14_DecisionLevelMax"
    assert detect_architecture(sd) == "Cnn14_DecisionLevelMax"
    # The 16 kHz front end and the attention head are told apart by shapes alone.
    assert architecture_candidates(_meta_state_dict("Cnn14_16k")) == ["Cnn14_16k"]
    assert architecture_candidates(_meta_state_dict("Cnn14_DecisionLevelAtt")) == [
        "Cnn14_DecisionLevelAtt"
    ]


@pytest.mark.slow
def test_ambiguous_file_reports_its_candidates(tmp_path) -> None:
    model = build_model("Cnn14", classes_num=2)
    path = tmp_path / "renamed.pth"
    torch.save({"model": model.state_dict()}, path)
    loaded = load_checkpoint(path)
    path.unlink()  # 300 MB
    assert loaded.architecture == "Cnn14_DecisionLevelMax"
    assert loaded.metadata["architecture_candidates"] == [
        "Cnn14_DecisionLevelMax",
        "Cnn14_DecisionLevelAvg",
        "Cnn14",
    ]


def test_detection_failure_names_closest_architecture_and_differences() -> None:
    sd = dict(_meta_state_dict("Cnn10"))
    del sd["conv_block3.bn2.bias"]
    sd["fc1.weight"] = torch.empty(512, 256, device="meta")
    sd["extra_layer.weight"] = torch.empty(3, device="meta")
    with pytest.raises(CheckpointError) as info:
        detect_architecture(sd)
    message = str(info.value)
    assert "Closest is Cnn10" in message
    assert "missing: conv_block3.bn2.bias" in message
    assert "unexpected: extra_layer.weight" in message
    assert "fc1.weight [512, 256] instead of [512, 512]" in message


def test_file_matching_nothing_fails_with_closest(tmp_path) -> None:
    sd = build_model("Cnn6", classes_num=2).state_dict()
    sd.pop("bn0.running_var")
    path = tmp_path / "broken.pth"
    torch.save({"model": sd}, path)
    with pytest.raises(CheckpointError, match=r"Closest is Cnn6 \(missing: bn0.running_var\)"):
        load_checkpoint(path)


# ------------------------------------------------------------------------ refusals
class _Payload:
    """An object whose unpickling would run code (creates a marker file)."""

    marker: Path

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("legacy", [False, True])
def test_pickle_with_code_is_refused_and_not_run(cnn6, tmp_path, legacy) -> None:
    marker = tmp_path / "code_ran"
    payload = _Payload()
    payload.marker = marker
    path = tmp_path / "evil.pth"
    torch.save(
        {"model": cnn6.state_dict(), "x": payload}, path, _use_new_zipfile_serialization=not legacy
    )
    with pytest.raises(CheckpointError, match="safe load refuses") as info:
        load_checkpoint(path)
    assert "refuses (io.open)" in str(info.value)
    assert not marker.exists()


def test_plain_pickle_of_python_objects_is_refused(tmp_path) -> None:
    path = tmp_path / "objects.pth"
    with open(path, "wb") as fh:
        pickle.dump({"model": {"w": datetime.now()}}, fh, protocol=2)
    with pytest.raises(CheckpointError, match="safe load refuses"):
        load_checkpoint(path)


@pytest.mark.parametrize("kind", ["text", "empty", "wav", "zip", "truncated", "directory"])
def test_files_that_are_not_checkpoints(cnn6, tmp_path, kind) -> None:
    path = tmp_path / "model.pth"
    if kind == "text":
        path.write_text("this is not a model\n" * 20)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "wav":
        import soundfile as sf

        sf.write(path, np.zeros(1000, dtype=np.float32), 16000, format="WAV")
    elif kind == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("readme.txt", "hello")
    elif kind == "truncated":
        torch.save({"model": cnn6.state_dict()}, path)
        path.write_bytes(path.read_bytes()[:50000])
    else:
        path.mkdir()
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message
    expected = "is a folder" if kind == "directory" else "not a PyTorch checkpoint"
    assert expected in message


def test_missing_file_and_non_weight_content(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pth")
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match="holds a list, not model weights"):
        load_checkpoint(path)
    torch.save({"model": {"w": torch.zeros(2), "step": 3}}, path)
    with pytest.raises(CheckpointError, match="not tensors: step"):
        load_checkpoint(path)


def test_save_without_labels_means_audioset_for_527_outputs(tmp_path: Path) -> None:
    model = build_model("Cnn6")
    path = save_checkpoint(
        tmp_path / "c.pth", model, architecture="Cnn6", feature_config=model.feature_config
    )
    assert load_checkpoint(path).labels == audioset_labels().names
    small = build_model("Cnn6", classes_num=3)
    with pytest.raises(CheckpointError, match="one label per output"):
        save_checkpoint(
            tmp_path / "d.pth", small, architecture="Cnn6", feature_config=small.feature_config
        )


def test_a_checkpoint_carries_its_calibrated_post_processing(cnn6, tmp_path) -> None:
    from panns_core.detection.postprocess import PostprocessParams
    from panns_core.hub.checkpoints import save_checkpoint
    from panns_core.models import architecture_spec

    calibrated = PostprocessParams(threshold=0.15, class_thresholds={"Speech": 0.3},
                                   class_median_seconds={"Speech": 1.12}, median_seconds=0.8)
    fc = architecture_spec("Cnn6").feature_config
    path = save_checkpoint(tmp_path / "c.pth", cnn6, architecture="Cnn6", feature_config=fc,
                           extra={"postprocess": calibrated.to_dict()})
    assert Detector.from_checkpoint(load_checkpoint(path)).postprocess == calibrated
    plain = save_checkpoint(tmp_path / "p.pth", cnn6, architecture="Cnn6", feature_config=fc)
    assert Detector.from_checkpoint(load_checkpoint(plain)).postprocess is None
