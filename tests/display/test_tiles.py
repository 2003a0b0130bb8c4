"""Log-mel tiles equal the model's own front end over the whole file, with no librosa."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import soundfile as sf
import torch

from panns_core.display.tiles import TILE_FRAMES, logmel_tile
from panns_core.models import architecture_spec, build_model


def test_tiles_equal_the_models_front_end(tmp_path) -> None:
    fc = architecture_spec("Cnn14_DecisionLevelMax").feature_config
    rng = np.random.default_rng(5)
    x = (0.1 * rng.standard_normal(fc.sample_rate * 25)).astype(np.float32)
    path = tmp_path / "noise.wav"
    sf.write(path, x, fc.sample_rate, subtype="FLOAT")
    model = build_model("Cnn14_DecisionLevelMax", classes_num=3).eval()
    with torch.inference_mode():
        whole = model.logmel_extractor(model.spectrogram_extractor(torch.from_numpy(x)[None]))
    whole = whole[0, 0].numpy()
    tiles = np.concatenate([logmel_tile(path, i, fc) for i in range(3)])
    assert tiles.shape[0] == whole.shape[0] and whole.shape[0] > 2 * TILE_FRAMES
    np.testing.assert_allclose(tiles, whole, atol=1e-3)


def test_a_tile_needs_no_librosa() -> None:
    code = ("import sys; from panns_core.display.tiles import front_end; "
            "from panns_core.models import architecture_spec; "
            "front_end(architecture_spec('Cnn14').feature_config); "
            "print(sorted(m for m in ('librosa', 'torchlibrosa', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
