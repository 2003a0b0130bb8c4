"""torch's int8 copy of a PANNs CNN: the frozen trunk's embeddings of head-only training
with ``precision="int8"``, and int8 detection with ``engine="torch"`` (detection's int8
otherwise runs ONNX Runtime's graph: :mod:`.int8_graph`).

On CPUs without bf16 matrix instructions (AVX2-only x86) bf16 autocast runs about 10x
*slower* than fp32 (``cpu_has_native_bf16`` says which). This copy quantizes the
ConvBlocks of a PANNs CNN to int8 (conv+BN+ReLU fused, weights per output channel,
activations per tensor), keeping the log-mel front end, ``bn0`` and the
head in fp32. Activation ranges are calibrated once per model on the shipped demo
recording at three levels (so they do not depend on which file is detected first), in
about a second; the int8 copy shares the front end and head with the fp32 model.
Measured effect on probabilities and events: benchmarks/README.md.
"""

from __future__ import annotations

import copy
import threading
import warnings
import weakref
from typing import Any

import numpy as np

_LOCK = threading.Lock()
_QUANTIZED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# (start s, stop s, gain) excerpts of the demo recording: quiet, normal and loud input
CALIBRATION = ((0.0, 6.0, 0.1), (7.0, 13.0, 1.0), (14.0, 20.0, 3.0))


def cpu_has_native_bf16() -> bool:
    """True where bf16 matrix work is native (AVX512-BF16 or AMX), so autocast pays."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as handle:
            flags = handle.read()
    except OSError:  # not Linux: trust torch's view of the CPU
        import torch

        return "AVX512" in str(torch.backends.cpu.get_cpu_capability())
    return "avx512_bf16" in flags or "amx_bf16" in flags


def supports_int8(model: Any) -> bool:
    """Only the plain ConvBlock trunk (CNN14/10/6 and their SED heads) is quantized."""
    return getattr(model, "trunk", None) == "conv" and not getattr(model, "has_wavegram", True)


def _engine() -> str:
    import torch

    engines = torch.backends.quantized.supported_engines
    for name in ("onednn", "x86", "fbgemm"):
        if name in engines:
            return name
    raise RuntimeError("this torch build has no x86 quantized engine")


def _quant_block(block: Any, quantize_first: bool, qconfig: Any) -> Any:
    import torch.ao.quantization as tq
    import torch.nn.functional as F
    from torch import nn
    from torch.ao.nn.intrinsic import ConvReLU2d
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    from ..models.blocks import pool2d

    class QuantConvBlock(nn.Module):
        """conv-BN-ReLU (x1 or x2) + pooling with int8 convolutions."""

        def __init__(self) -> None:
            super().__init__()
            first = fuse_conv_bn_eval(block.conv1, block.bn1)
            # The first convolution of the network sees one log-mel channel: cheap, and
            # quantizing its input would cost precision, so it stays fp32.
            self.first = ConvReLU2d(first, nn.ReLU()) if quantize_first else first
            self.quantize_first = quantize_first
            layers = [ConvReLU2d(fuse_conv_bn_eval(block.conv2, block.bn2), nn.ReLU())] if (
                block.num_layers == 2
            ) else []  # fmt: skip
            self.rest = nn.ModuleList(layers)
            self.quant = tq.QuantStub()
            self.dequant = tq.DeQuantStub()
            self.qconfig = qconfig
            if not quantize_first:
                self.first.qconfig = None

        def forward(self, x, pool_size=(2, 2), pool_type="avg"):
            if self.quantize_first:
                x = self.first(self.quant(x))
            else:
                x = self.quant(F.relu(self.first(x)))
            for layer in self.rest:
                x = layer(x)
            return self.dequant(pool2d(x, pool_size, pool_type))

    return QuantConvBlock()


def _calibration_audio(sample_rate: int):
    from ..audio import load_audio
    from ..data import resource_path

    x, _ = load_audio(resource_path("demo.flac"), sample_rate=sample_rate)
    clips = [x[round(a * sample_rate) : round(b * sample_rate)] * g for a, b, g in CALIBRATION]
    return np.clip(np.stack(clips), -1.0, 1.0).astype(np.float32)


def int8_model(model: Any) -> Any:
    """An int8 copy of ``model`` (cached per model object; the original is untouched)."""
    with _LOCK:
        cached = _QUANTIZED.get(model)
        if cached is None:
            cached = build_int8(model)
            _QUANTIZED[model] = cached
        return cached


def build_int8(
    model: Any,
    *,
    blocks: Any = None,
    calibration: Any = None,
    qconfig: Any = None,
) -> Any:
    """An int8 copy of ``model`` (not cached): ``blocks`` are the 1-based ConvBlock
    numbers to quantize (default: all), ``calibration`` a (clips, samples) float32 array
    at the model's rate (default: the demo excerpts), ``qconfig`` torch's (default: the
    engine's)."""
    import torch
    import torch.ao.quantization as tq

    engine = _engine()
    torch.backends.quantized.engine = engine
    # a shallow copy sharing the front end and head; only the conv blocks are new
    quant = copy.copy(model)
    quant._modules = dict(model._modules)
    quant.eval()
    names = [n for n, _ in quant.named_children() if n.startswith("conv_block")]
    if blocks is not None:
        names = [n for n in names if int(n.removeprefix("conv_block")) in set(blocks)]
    if calibration is None:
        calibration = _calibration_audio(model.feature_config.sample_rate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation notes on quantized tensors
        qconfig = qconfig or tq.get_default_qconfig(engine)
        for name in names:
            first = name == "conv_block1"
            setattr(quant, name, _quant_block(getattr(quant, name), not first, qconfig))
        for name in names:
            tq.prepare(getattr(quant, name), inplace=True)
        with torch.no_grad():
            for clip in torch.from_numpy(np.asarray(calibration, dtype=np.float32)).split(4):
                quant(clip)
        for name in names:
            tq.convert(getattr(quant, name), inplace=True)
    return quant
