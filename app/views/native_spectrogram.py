"""The recording's own spectrogram: its native rate, up to its Nyquist frequency.

Tiles come from :func:`panns_core.display.spectrogram.spectrogram_tile` on a worker and
are cached like the log-mel tiles (the settings are part of the key, so going back to
earlier settings is instant). The y axis is hertz (linear) or log10 hertz (log); events
are boxes on it (:mod:`app.views.timefreq`). The channel shown is the document's
channel (None: the mix).
"""

from __future__ import annotations

import math

import numpy as np

from panns_core.display.freq_axis import FrequencyAxis
from panns_core.display.spectrogram import (
    SpectrogramSettings,
    log_fmin,
    row_frequencies,
    spectrogram_tile,
)
from panns_core.display.tiles import TILE_FRAMES

from .timefreq import TimeFrequencyView, format_hz

MAX_OVERVIEW_COLUMNS = 8192
CACHE_BYTES = 192 * 2**20  # tiles kept in memory: about this much, at least MIN_CACHED
MIN_CACHED = 16  # more than the tiles of the widest zoomed-in view (max_visible_tiles)


class NativeSpectrogramView(TimeFrequencyView):
    title = "Spectrogram"
    frame_origin = -0.5  # centred frames
    level_headroom = 3.0

    def __init__(self, document, parent=None,
                 settings: SpectrogramSettings | None = None) -> None:
        self.settings = settings or SpectrogramSettings()
        self.sample_rate = 32000
        self._configure(self.sample_rate)
        super().__init__(document, parent)
        self._size_cache()
        document.events.channel.connect(self._on_channel)
        self._set_ticks()

    # ----------------------------------------------------------------- geometry
    def _configure(self, sample_rate: int) -> None:
        self.sample_rate = int(sample_rate or 32000)
        rows = row_frequencies(self.settings, self.sample_rate)
        self.n_bins = len(rows)
        self.frame_seconds = self.settings.hop / self.sample_rate
        self.nyquist = self.sample_rate / 2
        self.axis = FrequencyAxis.native(self.settings, self.sample_rate)
        self.y_origin = self.axis.y_origin
        self._y_span = self.axis.y_span
        self.level_unit = "PCEN" if self.settings.pcen else "dB"
        if "cache" in self.__dict__:  # not before the base class made it
            self._size_cache()

    def _size_cache(self) -> None:
        """Tiles are n_fft / 2 rows tall: keep about CACHE_BYTES of them."""
        tile_bytes = self.n_bins * TILE_FRAMES * 4
        self.cache.capacity = max(MIN_CACHED, min(96, CACHE_BYTES // tile_bytes))

    def y_span(self) -> float:
        return self._y_span

    def _set_ticks(self) -> None:
        nyquist = self.nyquist
        if self.settings.scale == "linear":
            step = _nice_step(nyquist / 5)
            values = np.arange(0.0, nyquist + 1e-9, step)
            ticks = [(float(v), _short_hz(v)) for v in values]
        else:
            low = log_fmin(self.settings, self.sample_rate)
            values = [v * 10**e for e in range(1, 7) for v in (1, 2, 5)]
            ticks = [(math.log10(v), _short_hz(v)) for v in values if low <= v <= nyquist]
        self.getPlotItem().getAxis("left").setTicks([ticks, []])
        self.setYRange(self.y_origin, self.y_origin + self.y_span(), padding=0)

    # ------------------------------------------------------------------ tiles
    def tile_key(self, tile: int):
        return (str(self._path), self.settings, tile)

    def compute_tile(self, path, tile: int) -> np.ndarray:
        return spectrogram_tile(path, tile, self.settings)

    def on_recording_changed(self, recording) -> None:
        channel = self.document.channel
        if recording is not None:
            if channel is not None and channel >= recording.channels:
                channel = None
            self.settings = self.settings.with_(channel=channel)
            self._configure(recording.sample_rate)
            frames = recording.duration / self.frame_seconds
            # the zoomed-out overview: at most MAX_OVERVIEW_COLUMNS columns, ~64 MB
            columns = max(2048, min(MAX_OVERVIEW_COLUMNS, 2**26 // (self.n_bins * 4)))
            pool = 8
            while pool < TILE_FRAMES and frames / pool > columns:
                pool *= 2
            self.overview_pool = pool
        self._set_ticks()
        super().on_recording_changed(recording)
        self.boxes.update()

    def apply_settings(self, settings: SpectrogramSettings) -> None:
        """New settings: the frequency axis and the tiles follow (cached per settings)."""
        if settings == self.settings:
            return
        relevel = settings.pcen != self.settings.pcen
        self.settings = settings
        if relevel:
            self.auto_levels = True
        self.on_recording_changed(self.document.recording)

    def _on_channel(self, event) -> None:
        self.settings = self.settings.with_(channel=event.value)
        self.on_recording_changed(self.document.recording)

    def describe(self) -> str:
        s = self.settings
        what = "mix" if s.channel is None else f"channel {s.channel + 1}"
        return (f"{self.sample_rate / 1000:g} kHz, up to {format_hz(self.nyquist)}; FFT "
                f"{s.n_fft}, {s.overlap * 100:g} % overlap, {s.window}, {s.scale} axis"
                f"{', PCEN' if s.pcen else ''}; {what}")


def _nice_step(raw: float) -> float:
    exponent = math.floor(math.log10(max(raw, 1e-9)))
    for m in (1, 2, 5, 10):
        if m * 10**exponent >= raw:
            return m * 10**exponent
    return 10 ** (exponent + 1)


def _short_hz(hz: float) -> str:
    if hz >= 1000:
        return f"{hz / 1000:g}k"
    return f"{hz:g}"
