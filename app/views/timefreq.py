"""Time-frequency views: events drawn as boxes, edited with the mouse, and a read-out.

A :class:`TimeFrequencyView` is a tiled image whose y axis is frequency; a subclass says
how hertz map to its y coordinate (:meth:`~TimeFrequencyView.hz_to_y`, mel bins for the
log-mel view, hertz or log10 hertz for the native-rate spectrogram). Every event of the
recording is a box: its time span by its frequency band (``low_freq`` / ``high_freq``);
an event without a band spans every frequency (drawn as a dotted outline while it is
selected, not at all otherwise, so many detections do not hide the picture).

Mouse: a click on a box selects it (Shift extends, Ctrl toggles); dragging a box moves
it in time and frequency; dragging one of its four edges moves that edge; dragging on
empty space draws a selection box (time span and frequency band: Enter adds an event
with that band, playback plays that band). An event without a band is not grabbed by its
body (it covers the whole height, where a drag draws a box instead); once selected, its
edges can be dragged (the top or bottom edge gives it a band). Every change is one
undoable document edit.
Hovering shows time, frequency and level (``hovered`` signal).
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPen

from panns_core import events as ev

from . import theme
from .base import format_time
from .tiled import TILE_FRAMES, TiledImageView

EDGE_PIXELS = 6
SELECTION_PEN = "#9ec1ff"


def format_hz(hz: float) -> str:
    if hz != hz:
        return ""
    return f"{hz / 1000:.2f} kHz" if hz >= 1000 else f"{hz:.0f} Hz"


class _BoxesItem(pg.GraphicsObject):
    """Paints the events' boxes, the drag preview and the selection box in pixel space."""

    def __init__(self, view: TimeFrequencyView) -> None:
        super().__init__()
        self._view = view
        self.font = QFont()
        self.font.setPointSizeF(8.0)
        self._metrics = QFontMetrics(self.font)
        self.setZValue(800)

    def boundingRect(self) -> QRectF:  # noqa: N802
        view = self._view
        return QRectF(0, view.y_origin, max(view.document.duration, 1.0), view.y_span())

    def paint(self, painter, option, widget=None) -> None:
        view = self._view
        transform = painter.transform()
        painter.save()
        painter.resetTransform()
        painter.setFont(self.font)
        for rect, brush, pen, text in view.box_shapes(transform):
            painter.setBrush(brush)
            painter.setPen(pen)
            painter.drawRect(rect)
            if text and rect.width() > 30 and rect.height() > 12:
                painter.setPen(QPen(QColor("#f4f6fa")))
                elided = self._metrics.elidedText(text, Qt.TextElideMode.ElideRight,
                                                  int(rect.width()) - 6)
                painter.drawText(rect.adjusted(3, 1, -3, 0),
                                 Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, elided)
        painter.restore()


class TimeFrequencyView(TiledImageView):
    """Base of the spectrogram views; see the module docstring."""

    #: read-out text while the pointer is over the view ("" when it leaves)
    hovered = Signal(str)
    level_unit = "dB"

    def __init__(self, document, parent=None) -> None:
        super().__init__(document, parent)
        self.box_preview: tuple[float, float, float, float] | None = None  # t0 t1 y0 y1
        self._drag: dict | None = None
        self._box_data: dict | None = None
        self.label_colours: dict[str, str] = {}
        self.boxes = _BoxesItem(self)
        self.addItem(self.boxes, ignoreBounds=True)
        document.events.annotations.connect(self._on_annotations)
        document.selection_model.events.selection.connect(self._repaint_boxes)
        document.viewport.events.band_selection.connect(self._on_band_selection)
        document.events.vocabulary.connect(self._on_vocabulary)
        self.setMouseTracking(True)

    # --------------------------------------------------------- frequency axis
    #: panns_core.display.freq_axis.FrequencyAxis of the view (set by the subclass)
    axis = None

    def hz_to_y(self, hz):
        """View y of frequencies (array or float, Hz)."""
        return self.axis.hz_to_y(hz)

    def y_to_hz(self, y):
        return self.axis.y_to_hz(y)

    def y_top(self) -> float:
        return self.y_origin + self.y_span()

    def clamp_y(self, y: float) -> float:
        return float(min(max(y, self.y_origin), self.y_top()))

    # -------------------------------------------------------------- read-out
    def level_at(self, seconds: float, y: float) -> float | None:
        """The image's value (dB, or PCEN) under a point, from the computed tiles."""
        if self._path is None:
            return None
        x = seconds - self.frame_origin * self.frame_seconds
        if x < 0:
            return None
        frame = int(x // self.frame_seconds)
        tile, index = divmod(frame, TILE_FRAMES)
        image = self.cache.get(self.tile_key(tile))
        if image is None or index >= len(image):
            return None
        row = int((y - self.y_origin) / self.y_span() * image.shape[1])
        if not 0 <= row < image.shape[1]:
            return None
        return float(image[index, row])

    def readout(self, seconds: float, y: float) -> str:
        hz = float(self.y_to_hz(self.clamp_y(y)))
        text = f"{format_time(seconds, 1)}   {format_hz(hz)}"
        level = self.level_at(seconds, y)
        if level is not None and math.isfinite(level):
            text += f"   {level:.1f} {self.level_unit}"
        return text

    # ------------------------------------------------------------------ boxes
    def _on_annotations(self, event=None) -> None:
        self._box_data = None
        self.boxes.update()

    def _repaint_boxes(self, event=None) -> None:
        self.boxes.update()

    def _on_vocabulary(self, event) -> None:
        self.label_colours = self.document.label_colours()
        self.boxes.update()

    def _on_band_selection(self, event) -> None:
        self._on_time_selection_shape()

    def _on_time_selection(self, event) -> None:
        super()._on_time_selection(event)
        self._on_time_selection_shape()

    def _on_time_selection_shape(self) -> None:
        # a box selection is drawn as a box, not as a full-height time span
        if self.document.viewport.band_selection is not None:
            self.selection_region.hide()
        self.boxes.update()

    def on_range_changed(self, start: float, stop: float) -> None:
        super().on_range_changed(start, stop)
        self.boxes.update()

    def box_data(self) -> dict:
        """Numpy columns of the events' boxes in view coordinates (cached per edit)."""
        if self._box_data is None:
            frame = self.document.annotations
            low = frame["low_freq"].to_numpy(np.float64)
            high = frame["high_freq"].to_numpy(np.float64)
            self._box_data = {
                "id": frame["id"].to_numpy(np.int64),
                "onset": frame["onset"].to_numpy(np.float64),
                "offset": frame["offset"].to_numpy(np.float64),
                "low": low, "high": high,
                "label": frame["label"].astype(str).to_numpy(object),
                "status": frame["status"].astype(str).to_numpy(object),
            }
        data = self._box_data
        # y is recomputed each time: the frequency axis may change (settings)
        bottom, top = self.y_origin, self.y_top()
        with np.errstate(invalid="ignore", divide="ignore"):
            y0 = np.where(np.isnan(data["low"]), bottom, self.hz_to_y(np.nan_to_num(data["low"])))
            y1 = np.where(np.isnan(data["high"]), top, self.hz_to_y(np.nan_to_num(data["high"])))
        data["y0"] = np.clip(y0, bottom, top)
        data["y1"] = np.clip(y1, bottom, top)
        data["banded"] = ~(np.isnan(data["low"]) & np.isnan(data["high"]))
        return data

    def event_box(self, event_id: int) -> tuple[float, float, float, float]:
        """(onset, offset, y0, y1) of an event's box in view coordinates."""
        data = self.box_data()
        i = int(np.flatnonzero(data["id"] == event_id)[0])
        return (float(data["onset"][i]), float(data["offset"][i]), float(data["y0"][i]),
                float(data["y1"][i]))

    def box_shapes(self, transform):
        """(pixel rect, brush, pen, text) of everything to paint."""
        doc = self.document
        start, stop = doc.view_range
        shapes = []
        data = self.box_data()
        selected = doc.selection
        # an event without a band is drawn (full height, dotted) only while selected: the
        # picture stays readable under many detections, as before boxes
        shown = data["banded"] | np.isin(data["id"], np.fromiter(selected, np.int64))
        visible = np.flatnonzero((data["offset"] >= start) & (data["onset"] <= stop) & shown)
        for i in visible:
            a = transform.map(QPointF(data["onset"][i], data["y1"][i]))
            b = transform.map(QPointF(data["offset"][i], data["y0"][i]))
            rect = QRectF(a, b).normalized()
            if rect.width() < 2:
                rect.setWidth(2)
            status = data["status"][i]
            colour = (theme.REJECTED_COLOR if status == ev.REJECTED
                      else theme.label_color(data["label"][i], self.label_colours))
            is_selected = int(data["id"][i]) in selected
            if is_selected:
                pen = QPen(QColor(theme.SELECTED_PEN), 2.0)
            else:
                pen = QPen(colour.lighter(120), 1.6)
            if not data["banded"][i]:
                pen.setStyle(Qt.PenStyle.DotLine)
                brush = QBrush(Qt.BrushStyle.NoBrush)
            else:
                if status == ev.PROPOSED:
                    pen.setStyle(Qt.PenStyle.DashLine)
                fill = QColor(colour)
                fill.setAlpha(45)
                brush = QBrush(fill)
            text = data["label"][i] if data["banded"][i] or is_selected else ""
            shapes.append((rect, brush, pen, text))
        boxes = []
        if self.box_preview is not None:
            boxes.append((self.box_preview, QColor("#ffffff")))
        span, band = doc.time_selection, doc.viewport.band_selection
        if span is not None and band is not None and self.box_preview is None:
            boxes.append(((span[0], span[1], float(self.hz_to_y(band[0])),
                           float(self.hz_to_y(band[1]))), QColor(SELECTION_PEN)))
        for (t0, t1, y0, y1), colour in boxes:
            a = transform.map(QPointF(t0, y1))
            b = transform.map(QPointF(t1, y0))
            pen = QPen(colour, 1.5, Qt.PenStyle.DashLine)
            fill = QColor(colour)
            fill.setAlpha(35)
            shapes.append((QRectF(a, b).normalized(), QBrush(fill), pen, ""))
        return shapes

    # ------------------------------------------------------------- hit testing
    def _units_per_pixel(self) -> tuple[float, float]:
        (x0, x1), (y0, y1) = self.getViewBox().viewRange()
        vb = self.getViewBox()
        return (x1 - x0) / max(1.0, vb.width()), (y1 - y0) / max(1.0, vb.height())

    def hit(self, pos: QPointF) -> tuple[int | None, str]:
        """(event id, part) under a view point; part is body, left, right, bottom, top."""
        data = self.box_data()
        if not len(data["id"]):
            return None, ""
        sx, sy = self._units_per_pixel()
        tx, ty = EDGE_PIXELS * sx, EDGE_PIXELS * sy
        x, y = pos.x(), pos.y()
        inside = ((data["onset"] - tx <= x) & (data["offset"] + tx >= x)
                  & (data["y0"] - ty <= y) & (data["y1"] + ty >= y))
        # an event without a band covers the whole height: it is not grabbed by its body
        # (a drag there draws a box), only by the edges, and only once selected
        selected = np.isin(data["id"], np.fromiter(self.document.selection, np.int64))
        near_edge = ((np.abs(data["onset"] - x) <= tx) | (np.abs(data["offset"] - x) <= tx)
                     | (np.abs(data["y0"] - y) <= ty) | (np.abs(data["y1"] - y) <= ty))
        inside &= data["banded"] | (selected & near_edge)
        hits = np.flatnonzero(inside)
        if not len(hits):
            return None, ""
        area = ((data["offset"][hits] - data["onset"][hits]) / sx
                * (data["y1"][hits] - data["y0"][hits]) / sy)
        order = hits[np.argsort(area, kind="stable")]
        chosen = order[0]
        for i in order:
            if int(data["id"][i]) in self.document.selection:
                chosen = i
                break
        left, right = data["onset"][chosen], data["offset"][chosen]
        bottom, top = data["y0"][chosen], data["y1"][chosen]
        distances = {"left": abs(x - left) / sx, "right": abs(x - right) / sx,
                     "bottom": abs(y - bottom) / sy, "top": abs(y - top) / sy}
        if (right - left) / sx < 3 * EDGE_PIXELS:  # narrow: grab the body, not the sides
            distances.pop("left"), distances.pop("right")
        if (top - bottom) / sy < 3 * EDGE_PIXELS:
            distances.pop("bottom"), distances.pop("top")
        part = "body"
        if distances:
            nearest = min(distances, key=distances.get)
            if distances[nearest] <= EDGE_PIXELS:
                part = nearest
        if part == "body" and not data["banded"][chosen]:
            return None, ""
        return int(data["id"][chosen]), part

    # ------------------------------------------------------------------- mouse
    def on_click(self, event, pos: QPointF) -> bool:
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        event_id, _part = self.hit(pos)
        if event_id is None:
            return False
        mods = event.modifiers()
        self.document.select(
            event_id,
            extend=bool(mods & Qt.KeyboardModifier.ShiftModifier),
            toggle=bool(mods & Qt.KeyboardModifier.ControlModifier),
        )
        return True

    def on_drag(self, event, down: QPointF, pos: QPointF) -> None:
        doc = self.document
        if event.isStart() or self._drag is None:
            event_id, part = self.hit(down)
            if event_id is None:
                self._drag = {"mode": "select"}
            else:
                if event_id not in doc.selection:
                    doc.select(event_id)
                box = self.event_box(event_id)
                banded = bool(self.box_data()["banded"][
                    int(np.flatnonzero(self.box_data()["id"] == event_id)[0])])
                self._drag = {"mode": part, "id": event_id, "box": box, "banded": banded}
        drag = self._drag
        mode = drag["mode"]
        x0, x1 = down.x(), pos.x()
        y0, y1 = self.clamp_y(down.y()), self.clamp_y(pos.y())
        if mode == "select":
            doc.time_selection = (x0, x1)
            doc.viewport.band_selection = (float(self.y_to_hz(min(y0, y1))),
                                           float(self.y_to_hz(max(y0, y1))))
            if event.isFinish():
                self._drag = None
                if doc.time_selection:
                    doc.cursor = doc.time_selection[0]
            return
        t0, t1, b0, b1 = drag["box"]
        if mode == "body":
            dx = x1 - x0
            dy = (y1 - y0) if drag["banded"] else 0.0
            dy = min(max(dy, self.y_origin - b0), self.y_top() - b1)
            new = (t0 + dx, t1 + dx, b0 + dy, b1 + dy)
        elif mode == "left":
            new = (min(x1, t1 - 1e-3), t1, b0, b1)
        elif mode == "right":
            new = (t0, max(x1, t0 + 1e-3), b0, b1)
        elif mode == "bottom":
            new = (t0, t1, min(y1, b1), b1)
        else:  # top
            new = (t0, t1, b0, max(y1, b0))
        self.box_preview = new
        self.boxes.update()
        if event.isFinish():
            self._drag = None
            self.box_preview = None
            self.boxes.update()
            self._finish_drag(drag, new, abs(x1 - x0) / self._units_per_pixel()[0]
                              + abs(y1 - y0) / self._units_per_pixel()[1])

    def _finish_drag(self, drag: dict, new: tuple[float, float, float, float],
                     moved_pixels: float) -> None:
        if moved_pixels < 1:
            return
        mode = drag["mode"]
        t0, t1, b0, b1 = new
        kwargs: dict = {}
        if mode in ("body", "left", "right"):
            kwargs.update(onset=t0, offset=t1)
        if mode in ("bottom", "top") or (mode == "body" and drag["banded"]):
            low, high = float(self.y_to_hz(b0)), float(self.y_to_hz(b1))
            if not drag["banded"]:  # a first band: the edge not dragged stays at the end
                low, high = (low, None) if mode == "bottom" else (None, high)
            kwargs["band"] = (low, high)
        text = "Move box" if mode == "body" else f"Move the {mode} edge of a box"
        self.document.edit_box(drag["id"], text=text, **kwargs)

    def hover(self, pos: QPointF | None) -> None:
        if pos is None:
            self.unsetCursor()
            self.hovered.emit("")
            return
        _event_id, part = self.hit(pos)
        shapes = {"left": Qt.CursorShape.SizeHorCursor, "right": Qt.CursorShape.SizeHorCursor,
                  "bottom": Qt.CursorShape.SizeVerCursor, "top": Qt.CursorShape.SizeVerCursor,
                  "body": Qt.CursorShape.OpenHandCursor}
        self.setCursor(shapes.get(part, Qt.CursorShape.CrossCursor))
        self.hovered.emit(self.readout(pos.x(), pos.y()))
