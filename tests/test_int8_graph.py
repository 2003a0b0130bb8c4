"""The int8 fast path (ONNX Runtime static quantization of the exact engine's graph):
what it quantizes, that it is checked before it is used, and that on a model trained on
real sound it keeps the events of the exact path."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from detect_helpers import TINY_LABELS, deterministic_model, scene, tiny_sed

from panns_core.detection import engines, int8_graph, onnx_engine
from panns_core.detection.engines import select_engine
from panns_core.detection.onnx_engine import OrtEngine
from panns_core.hub.detector import Detector

pytestmark = pytest.mark.skipif(not onnx_engine.available(), reason="onnxruntime not installed")


@pytest.fixture(autouse=True)
def _threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny():
    with tiny_sed() as arch:
        yield Detector.from_module(deterministic_model(arch, len(TINY_LABELS)), TINY_LABELS)


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
    n_keep = int8_graph.KEEP_FP32_CONVS
    assert quantized == [False] * n_keep + [True] * (len(convs) - n_keep)
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
