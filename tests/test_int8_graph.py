"""The int8 fast path (ONNX Runtime static quantization of the exact engine's graph):
what it quantizes, that it is checked before it is used, and that on a model trained on
real sound it keeps the events of the exact path."""

from __future__ import annotations

import json

import numpy as np
import pytest
from detect_helpers import scene

from panns_core.detection import engines, int8_graph, onnx_engine
from panns_core.detection.engines import select_engine
from panns_core.detection.onnx_engine import OrtEngine

pytestmark = [
    pytest.mark.skipif(not onnx_engine.available(), reason="onnxruntime not installed"),
    pytest.mark.usefixtures("two_threads"),
]


def test_the_first_block_and_the_output_layers_stay_fp32(tiny, app_home) -> None:
    import onnx

    exact = OrtEngine(tiny)
    graph = int8_graph.quantize_for(exact)
    assert graph == int8_graph.int8_path(exact.path) and graph.exists()
    model = onnx.load(str(graph))
    made_by = {out: node for node in model.graph.node for out in node.output}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    quantized = [made_by.get(n.input[1]) is not None
                 and made_by[n.input[1]].op_type == "DequantizeLinear" for n in convs]  # fmt: skip
    assert int8_graph.KEEP_FP32_CONVS == (0, 1)
    assert quantized == [False] * 2 + [True] * (len(convs) - 2)
    assert not any(made_by.get(i) is not None and made_by[i].op_type == "DequantizeLinear"
                   for n in model.graph.node if n.op_type in ("MatMul", "Gemm")
                   for i in n.input[1:2])  # fmt: skip
    # the same outputs as the exact graph, up to int8 rounding
    int8 = OrtEngine.variant(exact, graph, "int8")
    x = scene(12.0, tiny.sample_rate, seed=2)[None]
    a, b = exact(x), int8(x)
    assert a.shape == b.shape and 0 < np.abs(a - b).max() < 0.5


def test_a_graph_that_loses_events_is_refused_and_fast_runs_exact(tiny, app_home,
                                                                  monkeypatch) -> None:  # fmt: skip
    """A quantized graph whose last convolution's weights are off by a factor of 30 (as a
    bad calibration or a quantizer bug would leave them): the check sees the events
    change, records why, and --fast does not use it."""
    import onnx
    from onnx import numpy_helper

    from panns_core.detection import quantized

    real = int8_graph.quantize

    def broken(graph, out, logmels, **options):
        real(graph, out, logmels, **options)
        model = onnx.load(str(out))
        scales = [n.input[1] for n in model.graph.node if n.op_type == "DequantizeLinear"
                  and n.input[0].endswith("_quantized")]  # fmt: skip
        for init in model.graph.initializer:
            if init.name == scales[-1]:
                init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 30,
                                                      init.name))  # fmt: skip
        onnx.save_model(model, str(out), save_as_external_data=True,
                        location=out.name + ".data")  # fmt: skip

    monkeypatch.setattr(quantized, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(int8_graph, "quantize", broken)
    monkeypatch.setattr(engines, "measure_throughput",  # int8 would win: it is checked
                        lambda engine, *a: {"int8": 10.0}.get(engine.precision, 1.0))
    exact = OrtEngine(tiny)
    assert int8_graph.build(exact) is None
    record = json.loads(int8_graph.check_path(exact.path).read_text())
    assert record["ok"] is False and min(record["model"]["match"], record["0.5"]["match"]) < 0.99
    assert int8_graph.accepted(exact.path) is False
    assert int8_graph.build(exact) is None  # decided once per graph and CPU
    chosen = select_engine(tiny, "cpu", fast=True)
    assert chosen.precision == "fp32" and "exact" in chosen.note
    entry = next(iter(json.loads(engines._choice_file().read_text()).values()))
    assert entry["precision"] == "fp32" and entry["refused"]["int8"]["ok"] is False


def test_event_match_is_one_to_one_within_the_tolerance() -> None:
    import pandas as pd

    def table(rows):
        return pd.DataFrame(rows, columns=["onset", "offset", "label"])

    ref = table([(1.0, 2.0, "a"), (1.1, 2.1, "a"), (5.0, 6.0, "b")])
    assert int8_graph.event_match(ref, ref) == 1.0
    assert int8_graph.event_match(ref, table([(1.2, 2.3, "a")])) == pytest.approx(1 / 3)
    assert int8_graph.event_match(ref, table([(5.0, 6.0, "a")])) == 0.0  # label differs
    assert int8_graph.event_match(table([]), table([])) == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("seven_bit", [False, True], ids=["8-bit weights", "7-bit weights"])
def test_int8_on_a_model_trained_on_real_sound(soundscape_search, monkeypatch,
                                               seven_bit) -> None:  # fmt: skip
    """The session's TinySED (trained on real soundscapes dev_0000-0149; a weak model whose
    probabilities hover near 0.05, the hardest case for int8) on the 150 soundscapes it
    never saw: the int8 graph (calibrated on the demo only) stays within 0.05 of exact and
    keeps >= 93% of the exact events at 0.05 (measured: 97.4% with 8-bit weights, 94.7%
    with the 7-bit weights of CPUs without VNNI, computed here; the 99% the fast path aims
    at and the other models: benchmarks/README.md). Where 8-bit weights serve, the
    shipped check accepts it."""
    import soundscape_model

    from panns_core.detection.inference import detect
    from panns_core.detection.postprocess import PostprocessParams, find_events
    from panns_core.hub.resolve import load_detector

    if not seven_bit and int8_graph.needs_reduced_range():
        pytest.skip("8-bit weights are for CPUs with VNNI (without, uint8 x int8 saturates)")
    monkeypatch.setenv("PANNS_ANNOTATOR_HOME", str(soundscape_search.home))
    monkeypatch.setattr(int8_graph, "needs_reduced_range", lambda: seven_bit)
    detector = load_detector(soundscape_search.checkpoint)
    exact = OrtEngine(detector)
    graph = int8_graph.quantize_for(exact)
    assert graph.name.endswith("r.onnx") == seven_bit
    if not seven_bit:
        assert int8_graph.build(exact) == graph, int8_graph.check_path(exact.path).read_text()
    int8 = OrtEngine.variant(exact, graph, "int8")
    matched = total = 0.0
    diff = 0.0
    for name in soundscape_model.SEARCHED:
        path = soundscape_model.CORPUS / "audio" / name
        a, b = detect(path, detector, engine=exact), detect(path, detector, engine=int8)
        assert b.precision == "int8" and a.precision == "fp32"
        diff = max(diff, float(np.abs(a.probabilities - b.probabilities).max()))
        ea, eb = find_events(a, PostprocessParams(0.05)), find_events(b, PostprocessParams(0.05))
        n = max(len(ea), len(eb))
        matched += int8_graph.event_match(ea, eb) * n
        total += n
    assert 0 < diff < 0.05
    assert total >= 500, total  # enough events to mean something
    assert matched / total >= 0.93, (matched, total)


def test_live_detection_and_the_window_run_the_chosen_int8(tiny, app_home, monkeypatch) -> None:
    """Where int8 was measured fastest (and kept the events), live detection's predictor
    runs the same int8 graph as `detect(fast=True)`, with the same scores."""
    from panns_core.detection.inference import detect
    from panns_core.recording.live import SegmentPredictor

    monkeypatch.setattr(engines, "measure_throughput",
                        lambda engine, *a: {"int8": 10.0}.get(engine.precision, 1.0))
    if engines.fast_cpu_choice(tiny) != "int8":
        pytest.skip("the int8 graph of the test model lost events on the check here")
    predictor = SegmentPredictor(tiny, fast=True)
    assert predictor.engine.precision == "int8"
    assert predictor.engine.path == int8_graph.int8_path(OrtEngine(tiny).path)
    x = scene(3.2, tiny.sample_rate, seed=5)
    window = detect(x, tiny, fast=True, body_seconds=3.2)
    assert window.precision == "int8"
    assert np.abs(predictor(x) - predictor.engine(x[None])[0]).max() == 0


def test_the_check_refuses_what_evidently_loses_events_not_one_changed_event() -> None:
    def result(*pairs):
        return {f"s{i}": {"events": n, "match": k / n if n else 1.0}
                for i, (k, n) in enumerate(pairs)} | {"max_abs_diff": 0.1}  # fmt: skip

    assert int8_graph.keeps_events(result((12, 12), (17, 17)))
    assert int8_graph.keeps_events(result((11, 12), (0, 0)))  # one event of 12: not evidence
    assert not int8_graph.keeps_events(result((12, 12), (1458, 1980)))
    assert not int8_graph.keeps_events(result((95, 100)))
    assert int8_graph.keeps_events(result((990, 1000)))
    assert not int8_graph.keeps_events(result((975, 1000)))
