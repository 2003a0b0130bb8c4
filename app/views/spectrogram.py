"""Log-mel spectrogram view: what the model sees (its own front end), tile by tile.

Its y axis is the mel bin; events are boxes on it (see :mod:`app.views.timefreq`)."""

from __future__ import annotations

import numpy as np

from panns_core.display.freq_axis import FrequencyAxis
from panns_core.display.mel import mel_frequencies
from panns_core.display.tiles import logmel_tile
from panns_core.models import FEATURES_32K

from .timefreq import TimeFrequencyView

_TICK_HZ = (200, 500, 1000, 2000, 4000, 8000, 12000, 16000)


class SpectrogramView(TimeFrequencyView):
    title = "Log-mel"
    frame_origin = -0.5  # the model's STFT is centred: frame i is centred on i * hop

    def __init__(self, document, parent=None, feature_config=FEATURES_32K) -> None:
        self.feature_config = feature_config
        self.n_bins = feature_config.mel_bins
        self.frame_seconds = feature_config.frame_seconds
        self.axis = FrequencyAxis.mel(feature_config.mel_bins, feature_config.fmin,
                                      feature_config.fmax)
        super().__init__(document, parent)
        self._set_ticks()

    def tile_key(self, tile: int):
        return (str(self._path), self.feature_config, tile)

    def compute_tile(self, path, tile: int) -> np.ndarray:
        return logmel_tile(path, tile, self.feature_config)

    def _set_ticks(self) -> None:
        fc = self.feature_config
        centres = mel_frequencies(fc.mel_bins, fc.fmin, fc.fmax)
        ticks = []
        for hz in _TICK_HZ:
            if fc.fmin <= hz <= fc.fmax:
                pos = float(np.interp(hz, centres, np.arange(len(centres)))) + 0.5
                ticks.append((pos, f"{hz // 1000}k" if hz >= 1000 else str(hz)))
        self.getPlotItem().getAxis("left").setTicks([ticks, []])
