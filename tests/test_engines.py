"""Detection engines: the onnxruntime engine equals torch (1e-5) on every architecture it
serves, its export is cached and verified, and the fast path is chosen by measurement."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from detect_helpers import (
    REFERENCE,
    TINY_LABELS,
    deterministic_model,
    scene,
    single_pass_framewise,
)

from panns_core.detection import engines, onnx_engine
from panns_core.detection.engines import TorchEngine, select_engine
from panns_core.detection.inference import detect
from panns_core.detection.onnx_engine import EngineUnavailable, LogMel, OrtEngine
from panns_core.hub.detector import Detector
from panns_core.models import ARCHITECTURES, build_model

pytestmark = [
    pytest.mark.skipif(not onnx_engine.available(), reason="onnxruntime not installed"),
    pytest.mark.usefixtures("two_threads"),
]

TOLERANCE = 1e-5
SMALL_SERVED = ["TinySED", "Cnn6_DecisionLevelMax"]
CNN14_SERVED = ["Cnn14_DecisionLevelMax", "Cnn14_DecisionLevelAvg", "Cnn14_DecisionLevelAtt"]


def _torch_segments(module, waves: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return module(torch.from_numpy(waves))["segmentwise_output"].numpy()


def _check_equal(detector: Detector) -> None:
    ort = OrtEngine(detector)
    rate = detector.sample_rate
    # below the minimum length, odd lengths, a batch of two
    for seconds, batch in ((0.3, 1), (7.3, 1), (13.37, 2)):
        waves = np.stack([scene(seconds, rate, seed=s) * g for s, g in zip(range(batch),
                                                                         (1.0, 0.05))])
        expected = _torch_segments(detector.module, waves)
        got = ort(waves)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= TOLERANCE, (detector.architecture, seconds)


def test_served_architectures_are_the_sed_models_without_wavegram() -> None:
    served = set()
    for name in ARCHITECTURES:
        with torch.device("meta"):  # no weights: only the structure matters
            if onnx_engine.supports(build_model(name)):
                served.add(name)
    assert set(SMALL_SERVED + CNN14_SERVED) <= served
    assert "Wavegram_Logmel_Cnn14" not in served and "Cnn14" not in served


@pytest.mark.parametrize("arch", SMALL_SERVED)
def test_onnxruntime_equals_torch_small(arch, app_home) -> None:
    module = deterministic_model(arch, 7)
    _check_equal(Detector.from_module(module, TINY_LABELS))


def test_onnxruntime_equals_torch_on_the_test_architecture(tiny, app_home) -> None:
    _check_equal(tiny)


@pytest.mark.slow
@pytest.mark.parametrize("arch", CNN14_SERVED)
def test_onnxruntime_equals_torch_cnn14(arch, app_home) -> None:
    """The CNN14 SED models: equal to torch, and to the reference implementation."""
    detector = Detector.from_module(deterministic_model(arch))
    _check_equal(detector)
    golden = np.load(REFERENCE / f"{arch}__32k_10s.npz")
    scores = detect(golden["input"], detector, engine="onnxruntime", body_seconds=2.56)
    assert scores.metadata["engine"] == "onnxruntime"
    assert np.abs(scores.framewise(0.01) - golden["framewise_output"]).max() <= 1e-4


def test_detect_through_onnxruntime_equals_torch(tiny, app_home) -> None:
    x = scene(41.0001, seed=3)
    ours = detect(x, tiny, engine="onnxruntime", body_seconds=10.24)
    base = detect(x, tiny, engine="torch", body_seconds=10.24)
    assert ours.precision == base.precision == "fp32"
    assert ours.metadata["engine"] == "onnxruntime" and base.metadata["engine"] == "torch"
    assert np.abs(ours.probabilities - base.probabilities).max() <= TOLERANCE
    # and the default (auto) engine on the CPU is onnxruntime, against one torch pass
    auto = detect(x, tiny)
    assert auto.metadata["engine"] == "onnxruntime"
    single = single_pass_framewise(tiny.module, x)
    assert np.abs(auto.framewise(0.01) - single).max() <= TOLERANCE


def test_the_engine_gives_its_memory_back_after_each_recording(tiny, app_home,
                                                               monkeypatch) -> None:  # fmt: skip
    """ONNX Runtime keeps an arena of activations between windows (faster); detection
    gives it back after each recording, whether it ran to the end or was abandoned, and
    the next recording's scores are the same as before the give-back."""
    from panns_core.detection.inference import iter_detect

    released: list[int] = []
    original = OrtEngine.release

    def spy(self) -> None:
        released.append(1)
        original(self)

    monkeypatch.setattr(OrtEngine, "release", spy)
    engine = OrtEngine(tiny)
    x = scene(23.0, seed=5)
    first = detect(x, tiny, engine=engine, body_seconds=5.12)
    assert released == [1]
    chunks = iter_detect(x, tiny, engine=engine, body_seconds=5.12)
    next(chunks)
    chunks.close()  # the user stopped after the first window
    assert released == [1, 1]
    again = detect(x, tiny, engine=engine, body_seconds=5.12)
    assert released == [1, 1, 1]
    assert np.array_equal(first.probabilities, again.probabilities)


def test_front_end_equals_the_models(tiny) -> None:
    front = LogMel(tiny.module)
    for seconds in (0.05, 0.3, 1.0, 7.3):
        x = scene(seconds, seed=1)
        with torch.inference_mode():
            padded = tiny.module._pad_to(torch.from_numpy(x)[None], tiny.module.min_samples)
            expected = tiny.module.logmel_extractor(tiny.module.spectrogram_extractor(padded))
        got = front(x[None])
        assert got.shape == expected[:, 0].shape
        assert np.abs(got - expected[:, 0].numpy()).max() <= 1e-3  # dB


def test_export_is_cached_by_weights_and_verified(tiny, app_home) -> None:
    path, record = onnx_engine.cache_paths(tiny)
    assert not path.exists()
    OrtEngine(tiny)
    assert path.exists() and json.loads(record.read_text())["ok"] is True
    assert json.loads(record.read_text())["max_abs_diff"] <= TOLERANCE
    stamp = path.stat().st_mtime_ns
    onnx_engine._SESSIONS.clear()
    OrtEngine(tiny)  # a new process: the cached file, no new export
    assert path.stat().st_mtime_ns == stamp
    # other weights are another file
    module = deterministic_model(tiny.architecture, len(TINY_LABELS))
    with torch.no_grad():
        module.fc_audioset.bias.add_(0.5)
    other = Detector.from_module(module, TINY_LABELS)
    assert onnx_engine.cache_paths(other)[0] != path


def test_a_failed_verification_falls_back_to_torch(tiny, app_home) -> None:
    _, record = onnx_engine.cache_paths(tiny)
    OrtEngine(tiny)
    onnx_engine._SESSIONS.clear()
    record.write_text(json.dumps({"ok": False, "max_abs_diff": 0.5}))
    with pytest.raises(EngineUnavailable):
        OrtEngine(tiny)
    with pytest.warns(RuntimeWarning, match="torch"):
        chosen = select_engine(tiny, "cpu")
    assert isinstance(chosen, TorchEngine) and chosen.precision == "fp32"
    with pytest.raises(EngineUnavailable):
        select_engine(tiny, "cpu", engine="onnxruntime")


def test_unserved_models_run_on_torch(app_home) -> None:
    module = deterministic_model("Wavegram_Logmel_Cnn14")
    module.framewise = True  # pretend: the Wavegram branch is what keeps it on torch
    assert not onnx_engine.supports(module)


def test_fast_path_is_measured_once_and_cached(tiny, app_home, monkeypatch) -> None:
    from panns_core.detection import quantized

    monkeypatch.setattr(quantized, "cpu_has_native_bf16", lambda: True)
    calls = []
    real = engines.measure_throughput

    def counting(engine, *args):
        calls.append(engine.precision)
        return real(engine, *args)

    monkeypatch.setattr(engines, "measure_throughput", counting)
    first = engines.fast_cpu_choice(tiny)
    measured = sorted(calls)
    assert first in ("bf16", "int8", "fp32") and measured == ["bf16", "fp32", "int8"]
    # what beat exact was checked, fastest first; what lost events says why
    entry = next(iter(json.loads(engines._choice_file().read_text()).values()))
    speeds = entry["speeds_x_realtime"]
    assert set(speeds) == {"exact", "bf16", "int8"} and first not in entry["refused"]
    for name in entry["refused"]:
        assert speeds[name] > 1.1 * speeds["exact"] and entry["refused"][name]
    if first != "fp32":
        assert speeds[first] > 1.1 * speeds["exact"]
        assert all(speeds[n] <= speeds[first] for n in speeds if n not in entry["refused"])
    assert engines.fast_cpu_choice(tiny) == first and len(calls) == len(measured)  # cached
    chosen = select_engine(tiny, "cpu", fast=True)
    assert chosen.precision == first
    if first == "fp32":  # nothing faster: the fast path says so and runs exact
        assert "exact" in chosen.note


def test_fast_path_without_native_bf16_measures_int8_only(tiny, app_home, monkeypatch) -> None:
    from panns_core.detection import quantized

    monkeypatch.setattr(quantized, "cpu_has_native_bf16", lambda: False)
    calls = []
    real = engines.measure_throughput
    monkeypatch.setattr(engines, "measure_throughput",
                        lambda engine, *a: calls.append(engine.precision) or real(engine, *a))
    chosen = select_engine(tiny, "cpu", fast=True)
    assert "bf16" not in calls and isinstance(chosen, OrtEngine)
    assert chosen.precision in ("fp32", "int8")
    if chosen.precision == "fp32":
        assert "exact" in chosen.note
    forced = select_engine(tiny, "cpu", precision="int8")  # asked for: ONNX Runtime's int8
    assert isinstance(forced, OrtEngine) and forced.precision == "int8"
    assert isinstance(select_engine(tiny, "cpu", precision="int8", engine="torch"), TorchEngine)


def test_fast_path_without_any_candidate_runs_exact(tiny, app_home, monkeypatch) -> None:
    from panns_core.detection import quantized

    monkeypatch.setattr(quantized, "cpu_has_native_bf16", lambda: False)
    chosen = select_engine(tiny, "cpu", fast=True, engine="torch")
    assert isinstance(chosen, TorchEngine) and chosen.precision == "fp32"
    assert "exact" in chosen.note
    assert engines.known_fast_choice(tiny, 2, "torch") == "fp32"


def test_live_detection_uses_the_same_engine(tiny, app_home) -> None:
    from panns_core.recording.live import SegmentPredictor

    predictor = SegmentPredictor(tiny)
    assert type(predictor.engine) is type(select_engine(tiny, "cpu"))
    x = scene(3.2, seed=5)
    expected = _torch_segments(tiny.module, x[None])[0]
    assert np.abs(predictor(x) - expected).max() <= TOLERANCE


def test_the_fast_choice_is_each_models_own(tiny, app_home) -> None:
    """Whether int8 keeps the events is a model's own (its check), so a choice made for one
    model is not taken for another of the same architecture."""
    from dataclasses import replace

    choice = engines.fast_cpu_choice(tiny)
    assert engines.known_fast_choice(tiny, 2) == choice
    other = replace(tiny, model_id="another@1")
    assert other.architecture == tiny.architecture
    assert engines.known_fast_choice(other, 2) is None  # not measured for it yet
