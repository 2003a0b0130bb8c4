"""Time-tiled image views (log-mel spectrogram, Wavegram) fed by workers.

Only the tiles the visible span needs are computed, nearest the centre first, in one
worker whose request is replaced when the view moves (ephyviewer's request/ready idea).
Computed tiles stay in an LRU cache, so scrolling back is instant.
"""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QTimer, Signal

from panns_core.display.tiles import TILE_FRAMES, TileCache

from ..workers import Worker, WorkerSlot
from . import theme
from .base import TimeView

COLORMAPS = ("magma", "viridis", "inferno", "plasma", "cividis", "CET-L1", "CET-L16")


class TiledImageView(TimeView):
    """Subclasses set ``n_bins``, ``frame_seconds`` and implement ``compute_tile``."""

    tiles_updated = Signal()
    max_visible_tiles = 14
    n_bins = 64
    frame_seconds = 0.01
    #: where frame 0 starts, in frames: -0.5 for centred STFT frames (frame i is centred on
    #: i * hop), 0 for frames that cover [i * hop, (i + 1) * hop)
    frame_origin = 0.0
    #: added above the 99.9th percentile by the automatic levels (in the image's units)
    level_headroom = 2.0
    #: the image's rows span y_origin .. y_origin + y_span() in view coordinates
    y_origin = 0.0

    def y_span(self) -> float:
        return float(self.n_bins)

    def __init__(self, document, parent=None) -> None:
        super().__init__(document, parent)
        self.cache = TileCache()
        self._items: dict[int, pg.ImageItem] = {}
        self._slot = WorkerSlot()
        self._path = None
        self._pending: set[int] = set()
        self.colormap_name = "magma"
        self._lut = pg.colormap.get(self.colormap_name).getLookupTable(nPts=256)
        self.levels = (-90.0, 10.0)
        self.auto_levels = True  # set levels from the first tile of each recording
        self.setYRange(self.y_origin, self.y_origin + self.y_span(), padding=0)
        self.message = pg.TextItem("", color=theme.MESSAGE, anchor=(0.5, 0.5))
        self.message.setZValue(2000)
        self.addItem(self.message, ignoreBounds=True)
        # zoomed out past max_visible_tiles: one pooled image of the whole file, filled
        # by a background worker from the visible centre outwards
        self.overview_item = pg.ImageItem(autoLevels=False)
        self.overview_item.setZValue(-10)
        self.addItem(self.overview_item, ignoreBounds=True)
        self.overview_item.hide()
        self._overview: np.ndarray | None = None
        self._overview_done = 0
        self._overview_slot = WorkerSlot()
        self._overview_timer = QTimer(self)
        self._overview_timer.setSingleShot(True)
        self._overview_timer.setInterval(250)
        self._overview_timer.timeout.connect(self._show_overview)
        self._delay_timer = QTimer(self)
        self._delay_timer.setSingleShot(True)
        self._delay_timer.timeout.connect(self.refresh)

    # -------------------------------------------------------------- subclass api
    def compute_tile(self, path, tile: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def tile_key(self, tile: int):
        return (str(self._path), tile)

    def available(self) -> bool:
        """False when the view cannot compute (e.g. no model); show a message then."""
        return True

    # ------------------------------------------------------------------ settings
    def set_colormap(self, name: str) -> None:
        self.colormap_name = name
        self._lut = pg.colormap.get(name).getLookupTable(nPts=256)
        for item in self._items.values():
            item.setLookupTable(self._lut)
        self.overview_item.setLookupTable(self._lut)

    def set_levels(self, low: float, high: float, *, auto: bool = False) -> None:
        self.auto_levels = auto
        if not auto:
            self._levels_from_data = False  # the user's range stays
        if high <= low:
            high = low + 1.0
        self.levels = (float(low), float(high))
        for item in self._items.values():
            item.setLevels(self.levels)
        self.overview_item.setLevels(self.levels)

    # ------------------------------------------------------------------- events
    def on_recording_changed(self, recording) -> None:
        self._slot.cancel()
        self._overview_slot.cancel()
        self._overview = None
        self._overview_done = 0
        self._overview_delayed = False
        self.overview_item.hide()
        self._pending.clear()
        for item in self._items.values():
            self.removeItem(item)
        self._items.clear()
        self._path = recording.path if recording else None
        self._levels_from_data = self.auto_levels
        self.refresh()

    def on_range_changed(self, start: float, stop: float) -> None:
        self._last_move = time.monotonic()
        self.refresh()

    def reset(self) -> None:
        """Forget every tile (the front end changed) and recompute the visible ones."""
        self.cache.clear()
        self.on_recording_changed(self.document.recording)

    def tile_seconds(self) -> float:
        return TILE_FRAMES * self.frame_seconds

    def refresh(self) -> None:
        if self._path is None:
            self._show_message("")
            return
        if not self.available():
            return
        start, stop = self.document.view_range
        width = self.tile_seconds()
        first = max(0, int(start // width))
        last = int(min(stop, self.document.duration) // width)
        wanted = list(range(first, last + 1))
        if len(wanted) > self.max_visible_tiles:
            for item in self._items.values():
                item.hide()
            self._start_overview(first, last)
            wanted = []
        else:
            self._show_message("")
            self.overview_item.hide()
            for item in self._items.values():
                item.show()
        centre = (start + stop) / 2 / width
        missing = []
        for tile in sorted(wanted, key=lambda t: abs(t + 0.5 - centre)):
            image = self.cache.get(self.tile_key(tile))
            if image is not None:
                self._place(tile, image)
            else:
                missing.append(tile)
        if missing and set(missing) != self._pending:
            self._pending = set(missing)
            worker = Worker(self._compute_job, self._path, missing)
            worker.yielded.connect(self._on_tile)
            worker.errored.connect(self._on_error)
            self._slot.start(worker)

    # ---------------------------------------------------------------- overview
    overview_pool = 8  # frames merged (max) into one overview column
    overview_delay_ms = 1500

    def _start_overview(self, first: int, last: int) -> None:
        n_tiles = int(np.ceil(self.document.duration / self.tile_seconds()))
        columns = TILE_FRAMES // self.overview_pool
        if self._overview is None:
            self._overview = np.full((n_tiles * columns, self.n_bins), np.nan, np.float32)
            self._overview_done = 0
        self._show_overview()
        if self._overview_done >= n_tiles:
            self._show_message("")
            return
        self._show_message(f"Computing the overview… {100 * self._overview_done // n_tiles} %"
                           if self._overview_done else "Computing the overview…")
        if not self._overview_slot.busy:
            if self._overview_done == 0 and not getattr(self, "_overview_delayed", False):
                # let the waveform and the visible views go first on a fresh file
                self._overview_delayed = True
                self._delay_timer.start(self.overview_delay_ms)
                return
            centre = (first + last) / 2
            order = sorted(range(n_tiles), key=lambda t: abs(t - centre))
            done = {t for t in range(n_tiles)
                    if not np.isnan(self._overview[t * columns, 0])}
            worker = Worker(self._overview_job, self._path, [t for t in order if t not in done])
            worker.yielded.connect(self._on_overview_tile)
            worker.errored.connect(self._on_error)
            self._overview_slot.start(worker)

    def _overview_job(self, path, tiles, cancel=None):
        pool = self.overview_pool
        for tile in tiles:
            # background work: pause while the user zooms or scrolls, so frames stay fast
            while time.monotonic() - getattr(self, "_last_move", 0.0) < 0.5:
                if cancel is not None and cancel.is_set():
                    return
                time.sleep(0.05)
            if cancel is not None and cancel.is_set():
                return
            image = self.cache.get(self.tile_key(tile))
            if image is None:
                image = self.compute_tile(path, tile)
            usable = len(image) // pool * pool
            pooled = image[:usable].reshape(-1, pool, image.shape[1]).max(axis=1)
            yield (path, tile, pooled)
            time.sleep(0.01)  # background work: leave the GIL to the Qt thread

    def _on_overview_tile(self, item) -> None:
        path, tile, pooled = item
        if path != self._path or self._overview is None:
            return
        columns = TILE_FRAMES // self.overview_pool
        self._auto_levels(pooled)
        self._overview[tile * columns : tile * columns + len(pooled)] = pooled
        self._overview_done += 1
        if not self._overview_timer.isActive():
            self._overview_timer.start()

    def _show_overview(self) -> None:
        if self._overview is None:
            return
        seconds = self.frame_seconds * self.overview_pool * len(self._overview)
        self.overview_item.setImage(self._overview, levels=self.levels, lut=self._lut,
                                    autoLevels=False)
        self.overview_item.setRect(
            QRectF(self.frame_origin * self.frame_seconds, self.y_origin, seconds, self.y_span())
        )
        start, stop = self.document.view_range
        zoomed_out = (stop - start) > self.max_visible_tiles * self.tile_seconds()
        self.overview_item.setVisible(zoomed_out)
        n_tiles = int(np.ceil(self.document.duration / self.tile_seconds()))
        if zoomed_out:
            if self._overview_done >= n_tiles:
                self._show_message("")
            else:
                self._show_message(
                    f"Computing the overview… {100 * self._overview_done // n_tiles} %")

    def overview_fraction(self) -> float:
        if self._overview is None:
            return 0.0
        n_tiles = int(np.ceil(self.document.duration / self.tile_seconds()))
        return self._overview_done / max(1, n_tiles)

    def _compute_job(self, path, tiles, cancel=None):
        keys = {tile: self.tile_key(tile) for tile in tiles}  # the settings asked for
        for tile in tiles:
            if cancel is not None and cancel.is_set():
                return
            image = self.compute_tile(path, tile)
            yield (path, tile, image, keys[tile])

    def _auto_levels(self, image: np.ndarray) -> None:
        """Map the quiet half of the first tile to the dark end of the colour map."""
        if getattr(self, "_levels_from_data", False) and image.size:
            self._levels_from_data = False
            low, high = np.percentile(image, [40.0, 99.9])
            self.set_levels(float(low), float(high) + self.level_headroom, auto=True)

    def _on_tile(self, item) -> None:
        path, tile, image, key = item
        self.cache.put(key, image)
        self._pending.discard(tile)
        if path == self._path and key == self.tile_key(tile):
            self._auto_levels(image)
            self._place(tile, image)
            self.tiles_updated.emit()

    def _on_error(self, error) -> None:
        self._pending.clear()
        self.failed.emit(error)

    def _place(self, tile: int, image: np.ndarray) -> None:
        if tile in self._items or not len(image):
            return
        item = pg.ImageItem(image, levels=self.levels, lut=self._lut, autoLevels=False)
        left = tile * self.tile_seconds() + self.frame_origin * self.frame_seconds
        item.setRect(QRectF(left, self.y_origin, len(image) * self.frame_seconds,
                            self.y_span()))
        self.addItem(item, ignoreBounds=True)
        self._items[tile] = item
        if len(self._items) > self.cache.capacity:
            for old in sorted(self._items, key=lambda t: abs(t - tile))[self.cache.capacity :]:
                self.removeItem(self._items.pop(old))

    def _show_message(self, text: str) -> None:
        self.message.setText(text)
        self.fit_message(self.message)
        if text:
            start, stop = self.document.view_range
            self.message.setPos((start + stop) / 2, self.y_origin + self.y_span() / 2)
        self.message.setVisible(bool(text))

    def visible_tiles(self) -> list[int]:
        return sorted(self._items)

    def shutdown(self) -> None:
        self._slot.cancel()
        self._overview_slot.cancel()
        self._overview_timer.stop()
        self._delay_timer.stop()
