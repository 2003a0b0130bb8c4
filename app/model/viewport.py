"""What part of the recording is on screen: visible range, playhead cursor, time span."""

from __future__ import annotations

import numpy as np

from .evented import EmitterGroup

MIN_SPAN = 0.01  # seconds: the narrowest view


class Viewport:
    """Visible ``view_range``, ``cursor``, ``time_selection`` and ``band_selection`` of
    one recording.

    Emitters (``viewport.events``): ``view_range`` (start, stop), ``cursor`` (seconds),
    ``time_selection`` ((start, stop) or None), ``band_selection`` ((low_hz, high_hz) or
    None: the frequency band of a box drawn on a time-frequency view; it goes with the
    time selection and is cleared with it); each fires only on a real change.
    """

    def __init__(self) -> None:
        self.events = EmitterGroup(self, ("cursor", "view_range", "time_selection",
                                            "band_selection"))
        self.duration = 0.0
        self._cursor = 0.0
        self._view_range: tuple[float, float] = (0.0, 1.0)
        self._time_selection: tuple[float, float] | None = None
        self._band_selection: tuple[float, float] | None = None

    def reset(self, duration: float) -> None:
        """A new recording: whole-file view, cursor at 0, no time span (no events)."""
        self.duration = float(duration)
        self._cursor = 0.0
        self._time_selection = None
        self._band_selection = None
        self._view_range = (0.0, duration if duration > 0 else 1.0)

    def emit_all(self) -> None:
        self.events.time_selection.emit(self._time_selection)
        self.events.band_selection.emit(self._band_selection)
        self.events.cursor.emit(self._cursor)
        self.events.view_range.emit(self._view_range)

    @property
    def cursor(self) -> float:
        return self._cursor

    @cursor.setter
    def cursor(self, seconds: float) -> None:
        seconds = float(min(max(0.0, seconds), self.duration or 0.0))
        if seconds != self._cursor:
            self._cursor = seconds
            self.events.cursor.emit(seconds)

    @property
    def view_range(self) -> tuple[float, float]:
        return self._view_range

    @view_range.setter
    def view_range(self, span: tuple[float, float]) -> None:
        new = self._clamp_range(*span)
        if not np.allclose(new, self._view_range, rtol=0, atol=1e-9):
            self._view_range = new
            self.events.view_range.emit(new)

    def _clamp_range(self, start: float, stop: float) -> tuple[float, float]:
        duration = self.duration or 1.0
        width = min(max(stop - start, MIN_SPAN), duration)
        start = min(max(0.0, start), duration - width)
        return (float(start), float(start + width))

    def zoom(self, factor: float, center: float | None = None) -> None:
        """Zoom the time axis by ``factor`` (< 1 zooms in) around ``center`` seconds."""
        start, stop = self._view_range
        center = (start + stop) / 2 if center is None else center
        self.view_range = (center - (center - start) * factor, center + (stop - center) * factor)

    def scroll(self, fraction: float) -> None:
        """Shift the view by ``fraction`` of its width."""
        start, stop = self._view_range
        shift = (stop - start) * fraction
        self.view_range = (start + shift, stop + shift)

    def show_all(self) -> None:
        self.view_range = (0.0, self.duration or 1.0)

    @property
    def time_selection(self) -> tuple[float, float] | None:
        return self._time_selection

    @time_selection.setter
    def time_selection(self, span: tuple[float, float] | None) -> None:
        if span is not None:
            a, b = sorted((float(span[0]), float(span[1])))
            a, b = max(0.0, a), min(self.duration, b)
            span = (a, b) if b - a > 1e-6 else None
        if span != self._time_selection:
            self._time_selection = span
            self.events.time_selection.emit(span)
        if span is None:
            self.band_selection = None

    @property
    def band_selection(self) -> tuple[float, float] | None:
        return self._band_selection

    @band_selection.setter
    def band_selection(self, band: tuple[float, float] | None) -> None:
        if band is not None:
            low, high = sorted((max(0.0, float(band[0])), max(0.0, float(band[1]))))
            band = (low, high) if high - low > 1e-9 else None
        if band != self._band_selection:
            self._band_selection = band
            self.events.band_selection.emit(band)
