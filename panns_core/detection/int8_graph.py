"""The CPU fast path: the exact engine's ONNX graph with its convolutions in int8.

ONNX Runtime's static quantization (QDQ: int8 weights per output channel, uint8
activations per tensor, ranges calibrated once) of the graph :mod:`.onnx_engine` exports.
On AVX-512 VNNI it ran CNN14's trunk ~3x faster than fp32 (a 34.56-s window in 0.22 s
against 0.64 s); dynamic activation ranges (``ConvInteger``) ran 5x *slower* than fp32,
so they are not offered. What stays fp32: the first conv block (its input is the
normalised log-mel, the widest range of the graph, and at 12% of the work the cheapest
to keep exact) and the output layers (``MatMul``: little work, and their errors reach the
probabilities directly).

A quantized graph is only used where it keeps the model's events. After it is built its
events on check audio (the demo recording at other levels than the calibration, and the
probe) are compared with the exact graph's under the model's own post-processing, at
threshold 0.5, and at a threshold the model crosses on that audio; where they show that
fewer than :data:`MIN_AGREEMENT` of the events survive (:func:`keeps_events`) it is
recorded as refused and ``--fast`` runs exact. That check is coarse (a minute of
synthetic audio): it stops int8 where it breaks a model (the deterministic test CNN14:
74% of 1980 events), not where it costs a percent; the agreement on real sound is
measured by ``benchmarks/fast_candidates_soundscapes.py``.

Files, beside the exported graph: ``<graph>-int8q<V>.onnx`` (+ ``.data``; ``...q<V>r``
with 7-bit weights for CPUs without VNNI), its optimized form per CPU, and
``<graph>-int8q<V>-cpu<sig>.json`` (the check's result on this CPU).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

QUANT_VERSION = 1
MIN_AGREEMENT = 0.99
# (start s, stop s, gain) of the demo recording: calibration at three levels...
CALIBRATION = ((0.0, 6.0, 0.1), (7.0, 13.0, 1.0), (14.0, 20.0, 3.0))
# ...and the check at others (whole recording)
CHECK_GAINS = (0.3, 1.0, 2.0)
KEEP_FP32_CONVS = (0, 1)  # convolutions kept fp32, by order: the first conv block
EVENT_TOLERANCE = 0.32  # seconds: one CNN14 segment


def int8_path(graph: Path) -> Path:
    """Where the int8 form of exported graph ``graph`` for this CPU is kept."""
    tag = "r" if needs_reduced_range() else ""
    return graph.with_name(f"{graph.stem}-int8q{QUANT_VERSION}{tag}.onnx")


def needs_reduced_range() -> bool:
    """True on x86 CPUs without VNNI (AVX2-only): there ONNX Runtime multiplies uint8 by
    int8 with ``vpmaddubsw``, whose int16 sums can saturate, so weights get 7 bits (ONNX
    Runtime's advice for such CPUs). Elsewhere full 8-bit weights."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return False
    from .engines import cpu_flags

    flags = set(cpu_flags())
    return bool(flags) and not flags & {"avx512_vnni", "avx_vnni", "amx_int8"}


def check_path(graph: Path) -> Path:
    """The int8 check's record for ``graph`` on this CPU."""
    from .onnx_engine import record_path

    return record_path(int8_path(graph))


def accepted(graph: Path) -> bool | None:
    """True / False when the int8 form of ``graph`` passed / failed the check on this CPU;
    None when it was not checked yet."""
    try:
        return bool(json.loads(check_path(graph).read_text())["ok"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def event_match(ref: pd.DataFrame, got: pd.DataFrame, tolerance: float = EVENT_TOLERANCE) -> float:
    """Share of events (of the larger set) matched one-to-one: same label, onset and
    offset within ``tolerance`` seconds."""
    if not len(ref) and not len(got):
        return 1.0
    matched = 0
    for label, group in ref.groupby("label"):
        candidates = got[got["label"] == label]
        used = np.zeros(len(candidates), bool)
        on, off = candidates["onset"].to_numpy(), candidates["offset"].to_numpy()
        for row in group.itertuples():
            ok = (~used) & (np.abs(on - row.onset) <= tolerance) & (
                np.abs(off - row.offset) <= tolerance
            )
            if ok.any():
                used[np.flatnonzero(ok)[0]] = True
                matched += 1
    return matched / max(len(ref), len(got))


def _demo(sample_rate: int) -> np.ndarray:
    from ..audio import load_audio
    from ..data import resource_path

    x, _ = load_audio(resource_path("demo.flac"), sample_rate=sample_rate)
    return np.asarray(x, np.float32)


def calibration_audio(sample_rate: int) -> list[np.ndarray]:
    """Clips at the model's rate whose activation ranges the int8 graph is fixed to."""
    x = _demo(sample_rate)
    return [np.clip(x[round(a * sample_rate) : round(b * sample_rate)] * g, -1, 1)
            for a, b, g in CALIBRATION]  # fmt: skip


def check_audio(sample_rate: int) -> list[np.ndarray]:
    """Recordings the int8 graph's events are compared on (not the calibration clips)."""
    from .onnx_engine import probe_audio

    x = _demo(sample_rate)
    return [np.clip(x * g, -1, 1).astype(np.float32) for g in CHECK_GAINS] + [
        probe_audio(sample_rate)
    ]


def quantize(graph: Path, out: Path, logmels: list[np.ndarray], *,
             keep_fp32_convs: tuple[int, ...] = KEEP_FP32_CONVS, method: str = "minmax",
             reduce_range: bool | None = None) -> None:  # fmt: skip
    """Write the int8 form of ``graph`` to ``out`` (+ ``.data``): its Conv nodes but those
    numbered ``keep_fp32_convs`` (in graph order, negative from the end), activation
    ranges from ``logmels`` ((1, frames, mels) each) by ``method`` (minmax, percentile),
    7-bit weights with ``reduce_range`` (default: :func:`needs_reduced_range`)."""
    if reduce_range is None:
        reduce_range = needs_reduced_range()
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    convs = [n.name for n in onnx.load(str(graph), load_external_data=False).graph.node
             if n.op_type == "Conv"]  # fmt: skip

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(logmels)

        def get_next(self) -> dict | None:
            item = next(self.items, None)
            return None if item is None else {"logmel": item}

    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile}
    part = out.with_name(f"{out.stem}.{os.getpid()}.part.onnx")
    data = out.name + ".data"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import logging

        quiet = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)  # "consider pre-processing" notes
        try:
            quantize_static(
                str(graph), str(part), Reader(), quant_format=QuantFormat.QDQ,
                per_channel=True, activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
                nodes_to_exclude=[convs[i] for i in keep_fp32_convs],
                calibrate_method=methods[method], reduce_range=reduce_range,
                use_external_data_format=False,
            )  # fmt: skip
        finally:
            logging.getLogger().setLevel(quiet)
    model = onnx.load(str(part))
    final = out.with_name(f"{out.stem}.{os.getpid()}.part2.onnx")
    out.with_name(data).unlink(missing_ok=True)
    onnx.save_model(model, str(final), save_as_external_data=True,
                    all_tensors_to_one_file=True, location=data, size_threshold=1024)  # fmt: skip
    part.unlink(missing_ok=True)
    os.replace(final, out)  # the graph last: its presence means the data is complete


def agreement(exact: Any, candidate: Any, postprocess: Any, recordings: list[np.ndarray],
              sample_rate: int) -> dict:  # fmt: skip
    """Events of ``candidate`` against ``exact`` on ``recordings``: under ``postprocess``
    (the model's calibrated post-processing, or None: the defaults), at threshold 0.5, and
    at the threshold the exact probabilities pass 0.5% of the time (within 0.02-0.5: a
    model quiet on this audio still has events to compare)."""
    from .inference import detect
    from .postprocess import PostprocessParams, find_events

    diff = 0.0
    pairs = []
    for audio in recordings:
        a = detect(audio, exact.detector, engine=exact, sample_rate=sample_rate)
        b = detect(audio, exact.detector, engine=candidate, sample_rate=sample_rate)
        diff = max(diff, float(np.abs(a.probabilities - b.probabilities).max()))
        pairs.append((a, b))
    busiest = np.concatenate([a.probabilities.ravel() for a, _ in pairs])
    busy = float(np.clip(np.quantile(busiest, 0.995), 0.02, 0.5))
    settings = {"model": postprocess or PostprocessParams(), "0.5": PostprocessParams(0.5),
                f"{busy:.3g}": PostprocessParams(busy)}  # fmt: skip
    result: dict[str, Any] = {}
    for name, params in settings.items():
        matched = total = 0.0
        for a, b in pairs:
            ea, eb = find_events(a, params), find_events(b, params)
            n = max(len(ea), len(eb))
            matched += event_match(ea, eb) * n
            total += n
        result[name] = {"events": int(total), "match": matched / total if total else 1.0}
    result["max_abs_diff"] = diff
    return result


def keeps_events(result: dict) -> bool:
    """Whether an :func:`agreement` result is consistent with keeping >= :data:`MIN_AGREEMENT`
    of the events in every setting: refused only where the one-sided 95% Clopper-Pearson
    upper bound of the share kept is below it. The check audio holds tens of events, so
    one changed event (11 of 12: bound 0.996) does not decide; 1458 of 1980 does."""
    from scipy.stats import beta

    for entry in result.values():
        if not isinstance(entry, dict) or not entry.get("events"):
            continue
        n = int(entry["events"])
        kept = min(n, round(entry["match"] * n))
        upper = 1.0 if kept >= n else float(beta.ppf(0.95, kept + 1, n - kept))
        if upper < MIN_AGREEMENT:
            return False
    return True


def quantize_for(exact: Any) -> Path:
    """The int8 graph of exact engine ``exact``, quantized now if it is not there yet."""
    out = int8_path(Path(exact.path))
    if not out.exists():
        rate = exact.detector.sample_rate
        logmels = [exact.front_end(clip[None]) for clip in calibration_audio(rate)]
        quantize(Path(exact.path), out, logmels)
    return out


def build(exact: Any) -> Path | None:
    """The int8 graph of exact engine ``exact`` (an :class:`~.onnx_engine.OrtEngine`),
    made and checked once per graph and CPU; None where it does not keep the events."""
    graph = Path(exact.path)
    out = int8_path(graph)
    known = accepted(graph)
    if known is not None and out.exists():
        return out if known else None
    from .onnx_engine import OrtEngine

    rate = exact.detector.sample_rate
    quantize_for(exact)
    candidate = OrtEngine.variant(exact, out, "int8")
    result = agreement(exact, candidate, getattr(exact.detector, "postprocess", None),
                       check_audio(rate), rate)  # fmt: skip
    result.update(ok=keeps_events(result), min_agreement=MIN_AGREEMENT,
                  model_id=exact.detector.model_id)  # fmt: skip
    record = check_path(graph)
    tmp = record.with_suffix(f".{os.getpid()}.part")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, record)
    return out if result["ok"] else None
