"""Would a reduced-precision CPU path keep the events? Measured on real sound.

Candidates against the exact engine (ONNX Runtime fp32), on the held-out soundscapes
dev_0240-0299 of ``../shared/corpus/soundscapes`` (60 x 10 s, real recordings mixed with
DCASE annotations), with a model trained on the other recordings:

* ``int8``: what ``--fast`` runs where it is chosen (:mod:`panns_core.detection.int8_graph`):
  ONNX Runtime static quantization (QDQ, int8 per-channel weights, uint8 activations),
  the first conv block and the output layers kept fp32, activation ranges calibrated on
  the shipped demo recording at three levels;
* ``int8-all-convs``: the same with the first conv block in int8 too;
* ``int8-last-block-fp32-too``: the last conv block kept fp32 as well;
* ``int8-percentile``: ranges from the 99.999th percentile instead of min/max;
* ``int8-train-calibration``: the same as ``int8``, calibrated on 20 training soundscapes
  (the best case: audio like the test audio);
* ``bf16``: torch bf16 autocast (where the CPU has native bf16);
* a yardstick, not a candidate: the exact engine on the audio plus white noise at -90 dBFS
  (inaudible; about the dither of 16-bit audio).

Reported per candidate: trunk throughput against exact (one window of the engine's own
geometry, median of 3, alternated), max / mean |candidate - exact| of the segment
probabilities, and the share of events (one-to-one, same label, onset and offset within
one segment, :func:`~panns_core.detection.int8_graph.event_match`) that stay the same
under the model's own calibrated post-processing and at thresholds 0.3 and 0.5. The issue
asks for >= 99%. Also what the shipped check (:func:`int8_graph.build`) decided.

    # a model with real probabilities: CNN14 SED trained on the soundscapes (no pretrained
    # CNN14 can be downloaded here), e.g. by bench_learning.py:
    python benchmarks/bench_learning.py --runs arch:Cnn14_DecisionLevelMax/full \\
        --time-budget 2100 --work /tmp/bl
    python benchmarks/fast_candidates_soundscapes.py /tmp/bl/.../model.pth --json out.json
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parents[1] / "shared" / "corpus" / "soundscapes" / "audio"
NOISE = "exact, audio + noise at -90 dBFS"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="registered model name or checkpoint")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--held-out", default="dev_02[4-9]*.flac",
                        help="glob of the test recordings (default dev_0240-0299)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    import soundfile as sf
    import soxr
    import torch

    sys.path.insert(0, str(HERE))
    from panns_core.detection import engines, int8_graph
    from panns_core.detection.inference import detect
    from panns_core.detection.onnx_engine import OrtEngine
    from panns_core.detection.postprocess import PostprocessParams, find_events
    from panns_core.detection.quantized import cpu_has_native_bf16
    from panns_core.hub.resolve import load_detector

    torch.set_num_threads(args.threads)
    det = load_detector(args.model)
    exact = engines.exact_engine(det, torch.device("cpu"))
    assert isinstance(exact, OrtEngine), "the exact engine here is ONNX Runtime's"
    held = sorted(glob.glob(str(args.corpus / args.held_out)))
    train = sorted(glob.glob(str(args.corpus / "dev_00[0-4]*.flac")))[:20]
    rate = det.sample_rate

    def read(path: str) -> np.ndarray:
        x, sr = sf.read(path, dtype="float32")
        x = x.mean(axis=1) if x.ndim > 1 else x
        return soxr.resample(x, sr, rate) if sr != rate else x

    work = Path(tempfile.mkdtemp())
    shipped = int8_graph.build(exact)
    check = json.loads(int8_graph.check_path(exact.path).read_text())
    graph = int8_graph.quantize_for(exact)  # present even where the check refused it
    demo = [exact.front_end(c[None]) for c in int8_graph.calibration_audio(rate)]
    int8_graph.quantize(exact.path, work / "all.onnx", demo, keep_fp32_convs=())
    int8_graph.quantize(exact.path, work / "ends.onnx", demo, keep_fp32_convs=(0, 1, -2, -1))
    int8_graph.quantize(exact.path, work / "pct.onnx", demo, method="percentile")
    int8_graph.quantize(exact.path, work / "train.onnx",
                        [exact.front_end(read(p)[None]) for p in train])  # fmt: skip
    candidates = {
        "exact": exact,
        "int8": OrtEngine.variant(exact, graph, "int8"),
        "int8-all-convs": OrtEngine.variant(exact, work / "all.onnx", "int8"),
        "int8-last-block-fp32-too": OrtEngine.variant(exact, work / "ends.onnx", "int8"),
        "int8-percentile": OrtEngine.variant(exact, work / "pct.onnx", "int8"),
        "int8-train-calibration": OrtEngine.variant(exact, work / "train.onnx", "int8"),
    }
    if cpu_has_native_bf16():
        candidates["bf16"] = engines.TorchEngine(det, torch.device("cpu"), "bf16")

    speeds: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(3):
        for name, engine in candidates.items():
            speeds[name].append(engines.measure_throughput(engine, rate, det.segment_samples))
    audio = [read(p) for p in held]
    scores = {}
    for name, engine in candidates.items():
        started = time.perf_counter()
        scores[name] = [detect(x, det, engine=engine, sample_rate=rate) for x in audio]
        print(f"{name}: {len(audio)} files in {time.perf_counter() - started:.1f} s", flush=True)
    # a yardstick: exact on the audio plus white noise at -90 dBFS (inaudible, about the
    # dither of 16-bit audio): how far a change that is not int8 moves the events
    rng = np.random.default_rng(0)
    noisy = [x + (10 ** (-90 / 20) * rng.standard_normal(len(x))).astype(np.float32)
             for x in audio]  # fmt: skip
    scores[NOISE] = [detect(x, det, engine=exact, sample_rate=rate) for x in noisy]
    settings = {"calibrated": det.postprocess, "0.3": PostprocessParams(0.3),
                "0.5": PostprocessParams(0.5)}  # fmt: skip
    exact_speed = statistics.median(speeds["exact"])
    results = {"model": str(args.model), "files": len(held), "shipped_check": check,
               "shipped_accepts": shipped is not None, "candidates": {}}  # fmt: skip
    print(f"model {args.model}; {len(held)} held-out files; shipped check: "
          f"{'accepted' if shipped else 'refused'} ({check})")
    print("| candidate | speed vs exact | max / mean abs diff | events kept: calibrated "
          "post-processing | at 0.3 | at 0.5 |\n|---|---|---|---|---|---|")
    for name in [*list(candidates)[1:], NOISE]:
        diff = np.concatenate([np.abs(a.probabilities - b.probabilities).ravel()
                               for a, b in zip(scores["exact"], scores[name])])  # fmt: skip
        speed = statistics.median(speeds[name]) / exact_speed if name in speeds else float("nan")
        entry = {"speed_vs_exact": speed,
                 "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean())}
        cells = []
        for label, params in settings.items():
            if params is None:
                cells.append("-")
                continue
            matched = total = 0.0
            for a, b in zip(scores["exact"], scores[name]):
                ea, eb = find_events(a, params), find_events(b, params)
                n = max(len(ea), len(eb))
                matched += int8_graph.event_match(ea, eb) * n
                total += n
            share = matched / total if total else 1.0
            entry[label] = {"events": int(total), "kept": share}
            cells.append(f"{100 * share:.1f}% of {int(total)}")
        results["candidates"][name] = entry
        shown = "-" if np.isnan(speed) else f"{speed:.2f}x"
        print(f"| {name} | {shown} | {entry['max_abs_diff']:.3f} / "
              f"{entry['mean_abs_diff']:.4f} | " + " | ".join(cells) + " |")
    if det.postprocess is not None:
        print(f"calibrated post-processing: {det.postprocess.to_dict()}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
