"""Time-tiled image views (log-mel spectrogram, Wavegram) fed by workers.

Only the tiles the visible span needs are computed, nearest the centre first, in one
worker whose request is replaced when the view moves (ephyviewer's request/ready idea).
Computed tiles stay in an LRU cache, so scrolling back is instant.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Signal

from ..compute import TILE_FRAMES, TileCache
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

    def __init__(self, document, parent=None) -> None:
        super().__init__(document, parent)
        self.cache = TileCache()
        self._items: dict[int, pg.ImageItem] = {}
        self._slot = WorkerSlot(self)
        self._path = None
        self._pending: set[int] = set()
        self.colormap_name = "magma"
        self._lut = pg.colormap.get(self.colormap_name).getLookupTable(nPts=256)
        self.levels = (-90.0, 10.0)
        self.auto_levels = True  # set levels from the first tile of each recording
        self.setYRange(0, self.n_bins, padding=0)
        self.message = pg.TextItem("", color=theme.MESSAGE, anchor=(0.5, 0.5))
        self.message.setZValue(2000)
        self.addItem(self.message, ignoreBounds=True)

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

    def set_levels(self, low: float, high: float, *, auto: bool = False) -> None:
        self.auto_levels = auto
        if high <= low:
            high = low + 1.0
        self.levels = (float(low), float(high))
        for item in self._items.values():
            item.setLevels(self.levels)

    # ------------------------------------------------------------------- events
    def on_recording_changed(self, recording) -> None:
        self._slot.cancel()
        self._pending.clear()
        for item in self._items.values():
            self.removeItem(item)
        self._items.clear()
        self._path = recording.path if recording else None
        self._levels_from_data = self.auto_levels
        self.refresh()

    def on_range_changed(self, start: float, stop: float) -> None:
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
            self._show_message(
                f"Zoom in to under {self.max_visible_tiles * width / 60:.0f} min "
                "to see this view"
            )
            wanted = []
        else:
            self._show_message("")
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

    def _compute_job(self, path, tiles, cancel=None):
        for tile in tiles:
            if cancel is not None and cancel.is_set():
                return
            image = self.compute_tile(path, tile)
            yield (path, tile, image)

    def _auto_levels(self, image: np.ndarray) -> None:
        """Map the quiet half of the first tile to the dark end of the colour map."""
        if getattr(self, "_levels_from_data", False) and image.size:
            self._levels_from_data = False
            low, high = np.percentile(image, [40.0, 99.9])
            self.set_levels(float(low), float(high) + 2.0, auto=True)

    def _on_tile(self, item) -> None:
        path, tile, image = item
        key = (str(path), tile)
        self._auto_levels(image)
        self.cache.put(key, image)
        self._pending.discard(tile)
        if path == self._path:
            self._place(tile, image)
            self.tiles_updated.emit()

    def _on_error(self, error) -> None:
        self._pending.clear()
        self.failed.emit(error)

    def _place(self, tile: int, image: np.ndarray) -> None:
        if tile in self._items or not len(image):
            return
        item = pg.ImageItem(image, levels=self.levels, lut=self._lut, autoLevels=False)
        item.setRect(QRectF(tile * self.tile_seconds(), 0, len(image) * self.frame_seconds,
                            image.shape[1]))
        self.addItem(item, ignoreBounds=True)
        self._items[tile] = item
        if len(self._items) > self.cache.capacity:
            for old in sorted(self._items, key=lambda t: abs(t - tile))[self.cache.capacity :]:
                self.removeItem(self._items.pop(old))

    def _show_message(self, text: str) -> None:
        self.message.setText(text)
        if text:
            start, stop = self.document.view_range
            self.message.setPos((start + stop) / 2, self.n_bins / 2)
        self.message.setVisible(bool(text))

    def visible_tiles(self) -> list[int]:
        return sorted(self._items)

    def shutdown(self) -> None:
        self._slot.cancel()
