"""Wavegram view: the learned time-frequency image of a Wavegram_Logmel_Cnn14 model.

The model comes from the registry (the first installed model with a Wavegram branch);
without one the view says how to get it. It is loaded on a worker the first time a
tile is needed, and only while the view is shown (it is hidden by default and the model
is large).
"""

from __future__ import annotations

import threading

import numpy as np

from panns_core.display.tiles import wavegram_tile

from .tiled import TiledImageView

WAVEGRAM_ARCH = "Wavegram_Logmel_Cnn14"
HOW_TO = (
    f"No Wavegram model installed: download {WAVEGRAM_ARCH} in Models ▸ Model manager… "
    f"(or run `panns-sed models download {WAVEGRAM_ARCH}`)."
)


def find_wavegram_model() -> str | None:
    """Name of an installed model with a Wavegram branch, or None."""
    try:
        from panns_core.hub.installed import get_registry

        for record in get_registry().list_models():
            if record.architecture == WAVEGRAM_ARCH and record.path.is_file():
                return record.name
    except Exception:
        return None
    return None


class WavegramView(TiledImageView):
    title = "Wavegram"
    n_bins = 128
    frame_seconds = 0.01
    level_headroom = 0.0  # log1p magnitudes, not dB: the 99.9th percentile is the top

    def __init__(self, document, parent=None) -> None:
        super().__init__(document, parent)
        self.levels = (0.0, 3.0)
        self.set_colormap("viridis")
        self._model_name: str | None = None
        self._model = None
        self._model_lock = threading.Lock()
        self.getPlotItem().getAxis("left").setTicks([[(16, "1"), (48, "2"), (80, "3"),
                                                      (112, "4")], []])
        self.refresh_model()

    def refresh_model(self) -> None:
        name = find_wavegram_model()
        if name != self._model_name:
            self._model_name = name
            self._model = None
            self.reset()  # drop the old model's tiles and the images drawn from them
        else:
            self.refresh()

    def refresh(self) -> None:
        if self.isVisible():  # showEvent catches up
            super().refresh()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt naming)
        super().showEvent(event)
        self.refresh()

    def available(self) -> bool:
        if self._model_name is None:
            self._show_message(HOW_TO)
            return False
        return True

    def tile_key(self, tile: int):
        return (str(self._path), tile)

    def compute_tile(self, path, tile: int) -> np.ndarray:
        with self._model_lock:
            if self._model is None:
                from panns_core.hub.resolve import resolve_checkpoint

                self._model = resolve_checkpoint(self._model_name).build_model("cpu")
            model = self._model
        image = wavegram_tile(path, tile, model)
        # channels are 4 groups of 32 bins: show them stacked, magnitudes log-compressed
        return np.log1p(np.maximum(image, 0.0)).astype(np.float32)
