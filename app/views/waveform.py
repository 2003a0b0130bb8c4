"""Waveform view: min/max envelope from the pyramid, raw samples when zoomed in.

The pyramid (:mod:`panns_core.display.envelope`) is built by a worker and drawn as it fills (a
compressed file first shows a coarse preview); redrawing for any zoom touches only a
few thousand values. When fewer than ``base_bin`` samples fall on a pixel the exact
samples of the visible span are read by a worker (a short read) and drawn instead.

Vertical zoom: a quiet file is scaled so its loudest peak fills most of the height
(``gain``; the axis shows the true amplitudes); Ctrl+wheel over the view, or the wheel
over the amplitude axis, zooms the amplitude, and :meth:`WaveformView.fit_amplitude`
goes back to the automatic scale.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal

from panns_core.display.envelope import iter_envelope, read_samples

from ..workers import Worker, WorkerSlot
from . import theme
from .base import AXIS_WIDTH, TimeView

MAX_GAIN = 1000.0
FILL = 0.9  # the loudest peak of the file fills this much of the half height


class WaveformView(TimeView):
    title = "Waveform"
    #: the envelope changed (argument: True when complete)
    envelope_updated = Signal(bool)

    def __init__(self, document, parent=None) -> None:
        super().__init__(document, parent)
        self.getPlotItem().getAxis("left").enableAutoSIPrefix(False)  # no "(x0.1)"
        self.gain = 1.0  # amplitude zoom: the view shows +-1/gain
        self.auto_gain = True  # follow the file's peak (until the user zooms)
        self._apply_gain()
        # one vertical min-max bar per pixel column: a single path, cheap at any zoom
        self._bars = pg.PlotCurveItem(pen=pg.mkPen(theme.WAVEFORM, width=1), connect="pairs",
                                      skipFiniteCheck=True)
        self._line = pg.PlotDataItem(pen=pg.mkPen(theme.WAVEFORM, width=1.2))
        for item in (self._bars, self._line):
            self.addItem(item)
        self.pyramid = None
        #: the drawn envelope is the complete one (the worker keeps filling ``pyramid``
        #: in place, so its own ``complete`` can run ahead of what is drawn)
        self.envelope_complete = False
        self._envelope_slot = WorkerSlot()
        self._samples_slot = WorkerSlot()
        self._samples: tuple[float, float, np.ndarray, int] | None = None
        self._path = None
        self.message = pg.TextItem("", color=theme.MESSAGE, anchor=(0.5, 0.5))
        self.addItem(self.message, ignoreBounds=True)

    # ------------------------------------------------------------------ loading
    def on_recording_changed(self, recording) -> None:
        self._envelope_slot.cancel()
        self._samples_slot.cancel()
        self.pyramid = None
        self.envelope_complete = False
        self._samples = None
        self._path = recording.path if recording else None
        self.auto_gain = True
        self.set_gain(1.0, auto=True)
        self._clear_curves()
        if recording is None:
            return
        worker = Worker(_envelope_job, recording.path)
        worker.yielded.connect(self._on_pyramid)
        worker.errored.connect(self.failed.emit)
        self._envelope_slot.start(worker)

    def _on_pyramid(self, item) -> None:
        path, pyramid, complete = item
        if path != self._path:
            return
        self.pyramid = pyramid
        self.envelope_complete = complete
        if self.auto_gain:
            self.set_gain(self.fitting_gain(), auto=True)
        self.redraw()
        self.envelope_updated.emit(complete)

    # ---------------------------------------------------------- amplitude zoom
    def peak(self) -> float:
        """The loudest absolute sample value known so far (0 before any envelope)."""
        pyramid = self.pyramid
        if pyramid is None or not self.document.duration:
            return 0.0
        _t, lo, hi = pyramid.envelope(0.0, self.document.duration, 512)
        if not len(lo):
            return 0.0
        return float(max(np.nanmax(np.abs(lo)), np.nanmax(np.abs(hi))))

    def fitting_gain(self) -> float:
        peak = self.peak()
        return 1.0 if peak <= 0 else float(np.clip(FILL / peak, 1.0, MAX_GAIN))

    def set_gain(self, gain: float, *, auto: bool = False) -> None:
        self.gain = float(np.clip(gain, 1.0, MAX_GAIN))
        self.auto_gain = auto
        self._apply_gain()

    def zoom_amplitude(self, factor: float) -> None:
        """Multiply the amplitude zoom (>1: quieter sounds look bigger)."""
        self.set_gain(self.gain * factor)

    def fit_amplitude(self) -> None:
        self.set_gain(self.fitting_gain(), auto=True)

    def _apply_gain(self) -> None:
        limit = 1.0 / self.gain
        self.setYRange(-limit * 1.02, limit * 1.02, padding=0)
        text = f"{limit:.2g}"
        self.getPlotItem().getAxis("left").setTicks(
            [[(-limit, f"-{text}"), (0, "0"), (limit, text)], []])

    def wheelEvent(self, event) -> None:  # noqa: N802
        over_axis = event.position().x() < AXIS_WIDTH
        if over_axis or event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            delta = event.angleDelta().y() or event.angleDelta().x()
            self.zoom_amplitude(1.25 if delta > 0 else 0.8)
            event.accept()
            return
        super().wheelEvent(event)

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802
        if event.position().x() < AXIS_WIDTH:  # on the amplitude axis: automatic again
            self.fit_amplitude()
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    # ------------------------------------------------------------------ drawing
    def on_range_changed(self, start: float, stop: float) -> None:
        self.redraw()

    def _clear_curves(self) -> None:
        self._bars.setData([], [])
        self._line.setData([], [])

    def _set_bars(self, times: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        self._bars.setData(np.repeat(times, 2), np.column_stack((lo, hi)).ravel())

    def envelope_data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(times, mins, maxs) as drawn now (tests, benchmarks)."""
        x, y = self._bars.getData()
        if x is None or not len(x):
            return np.zeros(0), np.zeros(0), np.zeros(0)
        return x[::2], y[::2], y[1::2]

    def redraw(self) -> None:
        pyramid = self.pyramid
        if pyramid is None:
            return
        start, stop = self.document.view_range
        pixels = self.pixels_wide()
        samples_in_view = (stop - start) * pyramid.sample_rate
        if samples_in_view < pyramid.base_bin * pixels and self.envelope_complete:
            if self._draw_samples(start, stop, pixels):
                return
            self._request_samples(start, stop)
        margin = (stop - start) * 0.05
        times, lo, hi = pyramid.envelope(max(0.0, start - margin), stop + margin, pixels)
        self._line.setData([], [])
        self._set_bars(times, lo, hi)

    def _draw_samples(self, start: float, stop: float, pixels: int) -> bool:
        if self._samples is None:
            return False
        a, b, samples, sr = self._samples
        if start < a or stop > b:
            return False
        i0 = max(0, int((start - a) * sr) - 1)
        i1 = min(len(samples), int((stop - a) * sr) + 2)
        chunk = samples[i0:i1]
        times = a + (i0 + np.arange(len(chunk))) / sr
        if len(chunk) > 2 * pixels:  # still dense: min/max per pixel
            k = len(chunk) // pixels
            whole = len(chunk) // k * k
            shaped = chunk[:whole].reshape(-1, k)
            t = times[:whole].reshape(-1, k).mean(axis=1)
            self._line.setData([], [])
            self._set_bars(t, shaped.min(axis=1), shaped.max(axis=1))
        else:
            self._bars.setData([], [])
            self._line.setData(times, chunk)
        return True

    def _request_samples(self, start: float, stop: float) -> None:
        if self._path is None:
            return
        width = stop - start
        a, b = max(0.0, start - width), min(self.document.duration, stop + width)
        worker = Worker(_samples_job, self._path, a, b)
        worker.returned.connect(self._on_samples)
        worker.errored.connect(self.failed.emit)
        self._samples_slot.start(worker)

    def _on_samples(self, item) -> None:
        path, a, b, samples, sr = item
        if path != self._path:
            return
        self._samples = (a, b, samples, sr)
        self.redraw()

    def shutdown(self) -> None:
        self._envelope_slot.cancel()
        self._samples_slot.cancel()


def _envelope_job(path, cancel=None):
    for pyramid in iter_envelope(path, cancel=cancel):
        # completeness as of this yield, while the generator is paused
        yield (path, pyramid, bool(pyramid.complete))


def _samples_job(path, start: float, stop: float):
    samples, sr = read_samples(path, start, stop)
    return (path, start, stop, samples, sr)
