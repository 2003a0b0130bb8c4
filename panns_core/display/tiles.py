"""Spectrogram tiles for the views, computed off the Qt thread (imports torch lazily).

Log-mel tiles use the model's own front end (Spectrogram + LogmelFilterBank of
:mod:`panns_core.models.frontend`, with the model's
:class:`~panns_core.models.FeatureConfig`), so the user sees what the model sees. A tile
covers ``TILE_FRAMES`` frames; it is computed from the audio of its frames plus a margin,
so it equals the same frames of a whole-file pass except where the file itself starts or
ends.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

TILE_FRAMES = 1024
_MARGIN_FRAMES = 8
_LOCK = threading.Lock()
_FRONT_ENDS: dict = {}


def _torch_setup():
    import torch

    if torch.get_num_threads() > 2:
        torch.set_num_threads(2)
    return torch


def front_end(feature_config):
    """A cached log-mel front end (torch module) for ``feature_config``."""
    with _LOCK:
        module = _FRONT_ENDS.get(feature_config)
        if module is None:
            torch = _torch_setup()
            from ..models.frontend import LogmelFilterBank, Spectrogram

            fc = feature_config
            module = torch.nn.Sequential(
                Spectrogram(
                    n_fft=fc.window_size, hop_length=fc.hop_size, win_length=fc.window_size,
                    center=True, pad_mode="reflect",
                ),
                LogmelFilterBank(
                    sr=fc.sample_rate, n_fft=fc.window_size, n_mels=fc.mel_bins, fmin=fc.fmin,
                    fmax=fc.fmax, ref=1.0, amin=1e-10, top_db=None,
                ),
            ).eval()
            _FRONT_ENDS[feature_config] = module
    return module


def tile_audio(path, tile: int, hop: int, sample_rate: int, frames: int = TILE_FRAMES):
    """Audio for tile ``tile`` plus margins; returns (samples, index of the tile's frame 0)."""
    from ..audio import read_range

    first = tile * frames
    start_frame = max(0, first - _MARGIN_FRAMES)
    stop_frame = first + frames + _MARGIN_FRAMES
    x = read_range(path, start_frame * hop / sample_rate, stop_frame * hop / sample_rate,
                   sample_rate=sample_rate)
    return x, first - start_frame


def logmel_tile(path, tile: int, feature_config, frames: int = TILE_FRAMES) -> np.ndarray:
    """Log-mel (frames, mel_bins) in dB of one tile; fewer frames at the end of a file."""
    torch = _torch_setup()
    fc = feature_config
    x, offset = tile_audio(path, tile, fc.hop_size, fc.sample_rate, frames)
    if len(x) == 0:
        return np.zeros((0, fc.mel_bins), np.float32)
    n_frames = len(x) // fc.hop_size + 1
    if len(x) <= fc.window_size // 2:
        x = np.pad(x, (0, fc.window_size // 2 + 1 - len(x)))
    with torch.inference_mode():
        image = front_end(fc)(torch.from_numpy(np.ascontiguousarray(x))[None, :])
    image = image[0, 0, :n_frames].numpy()
    return np.ascontiguousarray(image[offset : offset + frames], dtype=np.float32)


def wavegram_tile(path, tile: int, model, frames: int = TILE_FRAMES) -> np.ndarray:
    """Wavegram (frames, 128) of one tile from a model with a Wavegram branch."""
    torch = _torch_setup()
    fc = model.feature_config
    x, offset = tile_audio(path, tile, fc.hop_size, fc.sample_rate, frames)
    if len(x) == 0:
        return np.zeros((0, 128), np.float32)
    with torch.inference_mode():
        image = model.wavegram(torch.from_numpy(np.ascontiguousarray(x))[None, :])
    image = image[0].float().numpy()
    return np.ascontiguousarray(image[offset : offset + frames], dtype=np.float32)


class TileCache:
    """A small thread-safe LRU of computed tiles."""

    def __init__(self, capacity: int = 96) -> None:
        self.capacity = capacity
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
