"""What a reference PANNs user runs: the baseline process of ``bench_detect.py``.

import torch, build Cnn14_DecisionLevelMax, ``torch.load`` the checkpoint, decode the
whole file (librosa, as panns_inference's examples do), one forward pass over the whole
waveform, framewise output. The model class is panns_core's PannsCNN, which computes
what the reference class computes (tests/test_models.py holds it to the golden outputs);
nothing else of panns_core is used.

    python benchmarks/reference_detect.py CHECKPOINT WAV OUT.npy --threads 2

Writes the segment probabilities (every 32nd frame of the framewise output) to OUT.npy.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("wav")
    parser.add_argument("out")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)

    import librosa
    import numpy as np
    import torch

    from panns_core.models import build_model

    if args.threads:
        torch.set_num_threads(args.threads)
    model = build_model("Cnn14_DecisionLevelMax")
    checkpoint = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    model.load_state_dict(checkpoint["model"])
    model.eval()
    waveform, _ = librosa.load(args.wav, sr=32000, mono=True)
    with torch.no_grad():
        out = model(torch.from_numpy(waveform)[None])
    framewise = out["framewise_output"][0].numpy()
    segments = out["segmentwise_output"].shape[1]
    np.save(args.out, framewise[::32][:segments].astype(np.float32))
    return 0


if __name__ == "__main__":
    sys.exit(main())
