"""The events track: one lane per label, coloured regions styled by provenance.

Mouse: click selects (shift extends, ctrl toggles), double-click asks for a new label,
dragging an event moves it (with the rest of the selection), dragging its edge resizes
it, dragging on empty space adds an event (in a label's lane: that label; in the
bottom "new" lane: the default label). Every change is one document edit, so undo
works. A lane is never shorter than :data:`MIN_LANE_PIXELS`: when the labels do not
fit, the lanes scroll (the scroll bar at the left edge, or the wheel over the lane
names) and follow the selected event. All events are painted by one item in pixel
space, so a long recording with thousands of events stays fast.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPen
from PySide6.QtWidgets import QScrollBar

from panns_core import events as ev

from . import theme
from .base import AXIS_WIDTH, TimeView

EDGE_PIXELS = 6
LANE_FILL = 0.78  # fraction of a lane an event's box fills
MIN_LANE_PIXELS = 19  # lanes scroll rather than get thinner than this


class _EventsItem(pg.GraphicsObject):
    """Paints every visible event; geometry in seconds x lanes."""

    def __init__(self, view: EventsTrackView) -> None:
        super().__init__()
        self._view = view
        self.font = QFont()
        self.font.setPointSizeF(8.5)
        self._metrics = QFontMetrics(self.font)
        self._text_pen = QPen(QColor("#eef0f4"))
        self._text_pen_selected = QPen(QColor("#ffffff"))

    def boundingRect(self) -> QRectF:  # noqa: N802
        view = self._view
        return QRectF(0, 0, max(view.document.duration, 1.0), max(1, view.n_lanes))

    def paint(self, painter, option, widget=None) -> None:
        view = self._view
        data = view.paint_data()
        transform = painter.transform()
        # the view maps (seconds, lane) by scale and offset only
        sx, dx, sy, dy = transform.m11(), transform.m31(), transform.m22(), transform.m32()
        painter.save()
        painter.resetTransform()
        painter.setFont(self.font)
        if data is not None and len(data["onset"]):
            self._paint_events(painter, data, sx, dx, sy, dy)
        # drag preview (ghost boxes)
        preview = view.drag_preview
        if preview:
            painter.setBrush(QBrush(QColor(255, 255, 255, 50)))
            painter.setPen(QPen(QColor("#ffffff"), 1.5, Qt.PenStyle.DashLine))
            for onset, offset, lane in preview:
                a = transform.map(QPointF(onset, lane + (1 - LANE_FILL) / 2))
                b = transform.map(QPointF(offset, lane + (1 + LANE_FILL) / 2))
                painter.drawRoundedRect(QRectF(a, b).normalized(), 3, 3)
        painter.restore()


    def _paint_events(self, painter, data: dict, sx: float, dx: float, sy: float,
                      dy: float) -> None:
        """Events grouped by style; narrow boxes (zoomed out) merged per pixel run, so
        the cost follows the pixels, not the number of events."""
        view = self._view
        start, stop = view.document.view_range
        visible = np.nonzero((data["offset"] >= start) & (data["onset"] <= stop))[0]
        if not len(visible):
            return
        x0 = data["onset"][visible] * sx + dx
        widths = np.maximum(data["offset"][visible] * sx + dx - x0, 2.0)
        lanes = data["lane"][visible]
        height = LANE_FILL * sy
        selected_ids = np.fromiter(view.document.selection, np.int64)
        selected = np.isin(data["id"][visible], selected_ids)
        keys = data["style"][visible] * 2 + selected
        order = np.lexsort((x0, keys))
        bounds = np.nonzero(np.diff(keys[order]))[0] + 1
        text_jobs = []
        for members in np.split(order, bounds):
            first = visible[members[0]]
            brush, pen = view.style_for(data["label"][first], data["status"][first],
                                        bool(selected[members[0]]))
            painter.setBrush(brush)
            painter.setPen(pen)
            top = (lanes[members[0]] + (1 - LANE_FILL) / 2) * sy + dy
            wide = members[widths[members] >= 12]
            for j in wide:
                rect = QRectF(x0[j], top, widths[j], height)
                painter.drawRoundedRect(rect, 3, 3)
                if widths[j] > 22:
                    text_jobs.append((rect, visible[j], bool(selected[j])))
            narrow = members[widths[members] < 12]
            if len(narrow):
                a = np.floor(x0[narrow])
                b = np.ceil(x0[narrow] + widths[narrow])
                # merge runs that touch or overlap (a is sorted within the group)
                run_end = np.maximum.accumulate(b)
                new_run = np.ones(len(a), bool)
                new_run[1:] = a[1:] > run_end[:-1] + 1
                starts = a[new_run]
                ends = np.maximum.reduceat(run_end, np.nonzero(new_run)[0])
                painter.drawRects([QRectF(float(u), top, float(v - u), height)
                                   for u, v in zip(starts, ends)])
        align = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft
        for rect, i, is_selected in text_jobs:
            status = data["status"][i]
            marker = theme.STATUS_STYLE.get(status, theme.STATUS_STYLE[ev.PROPOSED])[4]
            text = f"{marker} {data['label'][i]}"
            confidence = data["confidence"][i]
            if status == ev.PROPOSED and confidence == confidence:
                text += f"  {confidence:.2f}"
            elided = self._metrics.elidedText(text, Qt.TextElideMode.ElideRight,
                                              int(rect.width()) - 8)
            painter.setPen(self._text_pen_selected if is_selected else self._text_pen)
            painter.drawText(rect.adjusted(5, 0, -3, 0), align, elided)


class EventsTrackView(TimeView):
    title = "Events"
    show_time_axis = True
    lane_bar: QScrollBar | None = None
    #: double-click on an event: the window opens the label picker for these ids
    relabel_requested = Signal(object)

    def __init__(self, document, parent=None) -> None:
        super().__init__(document, parent)
        self.lanes: list[str] = []
        self.label_colours: dict[str, str] = {}
        self.drag_preview: list[tuple[float, float, int]] = []
        self._drag: dict | None = None
        vb = self.getViewBox()
        vb.invertY(True)
        self.lane_font = QFont()
        self.lane_font.setPointSizeF(8.5)
        self.getPlotItem().getAxis("left").setStyle(tickLength=0, tickFont=self.lane_font)
        self.getPlotItem().getAxis("left").setTextPen(theme.AXIS_TEXT)
        self.getPlotItem().showGrid(x=True, y=False, alpha=theme.GRID_ALPHA)
        self._paint_data: dict | None = None
        self._styles: dict[tuple, tuple[QBrush, QPen]] = {}
        self.item = _EventsItem(self)
        self.addItem(self.item)
        self._lane_lines: list[pg.InfiniteLine] = []
        self.first_lane = 0  # the top lane shown when not all fit
        self.lane_bar = QScrollBar(Qt.Orientation.Vertical, self)
        self.lane_bar.setToolTip("More labels: scroll the lanes (or the wheel over the names)")
        self.lane_bar.valueChanged.connect(self._on_lane_bar)
        self.lane_bar.hide()
        self.getViewBox().sigResized.connect(self._fit_lanes)
        document.events.annotations.connect(self._on_annotations)
        document.selection_model.events.selection.connect(self._on_selection)
        document.events.vocabulary.connect(self._on_vocabulary)
        document.events.default_label.connect(self._on_annotations)
        self.setMouseTracking(True)
        self._update_lanes()

    # ------------------------------------------------------------------- lanes
    @property
    def n_lanes(self) -> int:
        return len(self.lanes) + 1  # plus the "new" lane

    def lane_of(self, label: str) -> int:
        try:
            return self.lanes.index(label)
        except ValueError:
            return len(self.lanes)

    def label_of_lane(self, lane: int) -> str:
        if 0 <= lane < len(self.lanes):
            return self.lanes[lane]
        return self.document.default_label

    def _update_lanes(self) -> None:
        used = self.document.labels_in_use()
        # keep existing lane order stable; new labels go below
        lanes = [lab for lab in self.lanes if lab in used]
        lanes += [lab for lab in used if lab not in lanes]
        self.lanes = lanes
        ticks = []
        metrics = QFontMetrics(self.lane_font)
        for i, label in enumerate(lanes):
            ticks.append((i + 0.5, metrics.elidedText(label, Qt.TextElideMode.ElideRight,
                                                      AXIS_WIDTH - 10)))
        new_text = metrics.elidedText(
            f"+ {self.document.default_label}", Qt.TextElideMode.ElideRight, AXIS_WIDTH - 10
        )
        ticks.append((len(lanes) + 0.5, new_text))
        self.getPlotItem().getAxis("left").setTicks([ticks, []])
        self._fit_lanes()
        for line in self._lane_lines:
            self.removeItem(line)
        self._lane_lines = []
        for i in range(1, self.n_lanes):
            line = pg.InfiniteLine(i, angle=0, pen=pg.mkPen(theme.AXIS, width=0.5))
            self.addItem(line, ignoreBounds=True)
            self._lane_lines.append(line)
        self._paint_data = None
        self.item.prepareGeometryChange()
        self.item.update()

    # --------------------------------------------------------- lane scrolling
    @property
    def lanes_shown(self) -> int:
        """How many lanes fit at :data:`MIN_LANE_PIXELS` (all when they fit)."""
        height = self.getViewBox().height()
        if height <= 0:
            return self.n_lanes
        return max(1, min(self.n_lanes, int(height // MIN_LANE_PIXELS)))

    def _fit_lanes(self, *_args) -> None:
        shown = self.lanes_shown
        extra = self.n_lanes - shown
        self.first_lane = min(max(0, self.first_lane), max(0, extra))
        self.setYRange(self.first_lane, self.first_lane + shown, padding=0)
        self.lane_bar.blockSignals(True)
        self.lane_bar.setRange(0, max(0, extra))
        self.lane_bar.setPageStep(shown)
        self.lane_bar.setValue(self.first_lane)
        self.lane_bar.blockSignals(False)
        if self.lane_bar.isVisibleTo(self) != (extra > 0):
            self.lane_bar.setVisible(extra > 0)
            self.fit_title()
        self._place_lane_bar()

    def wanted_title(self) -> str:
        # the lane scroll bar takes the place of the rotated title
        return "" if self.lane_bar is not None and not self.lane_bar.isHidden() else self.title

    def _place_lane_bar(self) -> None:
        rect = self.getViewBox().sceneBoundingRect()
        top = self.mapFromScene(rect.topLeft()).y()
        width = min(14, self.lane_bar.sizeHint().width())
        self.lane_bar.setGeometry(0, max(0, top), width, max(10, int(rect.height())))

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self.lane_bar is not None:  # None while the base class is being built
            self._fit_lanes()

    def _on_lane_bar(self, value: int) -> None:
        self.scroll_lanes_to(value)

    def scroll_lanes_to(self, first: int) -> None:
        """Make ``first`` the top lane shown (clamped)."""
        self.first_lane = int(first)
        self._fit_lanes()

    def show_lane(self, lane: int) -> None:
        """Scroll the lanes so that ``lane`` is shown."""
        shown = self.lanes_shown
        if lane < self.first_lane:
            self.scroll_lanes_to(lane)
        elif lane >= self.first_lane + shown:
            self.scroll_lanes_to(lane - shown + 1)

    def wheelEvent(self, event) -> None:  # noqa: N802
        over_names = event.position().x() < AXIS_WIDTH
        if (over_names or event.modifiers() & Qt.KeyboardModifier.AltModifier) \
                and self.n_lanes > self.lanes_shown:
            delta = event.angleDelta().y() or event.angleDelta().x()
            self.scroll_lanes_to(self.first_lane - (1 if delta > 0 else -1))
            event.accept()
            return
        super().wheelEvent(event)

    def paint_data(self) -> dict | None:
        """Numpy columns of the annotations for painting (rebuilt when they change)."""
        if self._paint_data is None:
            frame = self.document.annotations
            self._paint_data = {
                "onset": frame["onset"].to_numpy(np.float64),
                "offset": frame["offset"].to_numpy(np.float64),
                "lane": np.array([self.lane_of(lab) for lab in frame["label"]], np.float64),
                "label": frame["label"].astype(str).to_numpy(object),
                "status": frame["status"].astype(str).to_numpy(object),
                "id": frame["id"].to_numpy(np.int64),
                "confidence": frame["confidence"].to_numpy(np.float64),
            }
            # one style code per (label, status): events sharing it are drawn together
            pairs = list(zip(self._paint_data["label"], self._paint_data["status"]))
            codes = {pair: k for k, pair in enumerate(dict.fromkeys(pairs))}
            self._paint_data["style"] = np.array([codes[p] for p in pairs], np.int64)
        return self._paint_data

    def style_for(self, label: str, status: str, selected: bool) -> tuple[QBrush, QPen]:
        key = (label, status, selected)
        style = self._styles.get(key)
        if style is None:
            alpha, pen_style, pen_width, pattern, _marker = theme.STATUS_STYLE.get(
                status, theme.STATUS_STYLE[ev.PROPOSED])
            colour = (theme.REJECTED_COLOR if status == ev.REJECTED
                      else theme.label_color(label, self.label_colours))
            fill = QColor(colour)
            fill.setAlpha(alpha)
            if selected:
                pen = QPen(QColor(theme.SELECTED_PEN), 2.2)
            else:
                pen = QPen(colour.lighter(130), pen_width)
                pen.setStyle(pen_style)
            style = (QBrush(fill, pattern), pen)
            self._styles[key] = style
        return style

    # ------------------------------------------------------------ doc -> view
    def _on_annotations(self, event=None) -> None:
        self._update_lanes()

    def _on_selection(self, event) -> None:
        ids = event.value
        if len(ids) == 1 and self.n_lanes > self.lanes_shown:
            frame = self.document.annotations
            rows = frame[frame["id"] == next(iter(ids))]
            if len(rows):
                self.show_lane(self.lane_of(str(rows["label"].iloc[0])))
        self.item.update()

    def _on_vocabulary(self, event) -> None:
        self.label_colours = self.document.label_colours()
        self._styles.clear()
        self.item.update()

    def on_range_changed(self, start: float, stop: float) -> None:
        self.item.update()

    # ------------------------------------------------------------- hit testing
    def hit(self, pos: QPointF) -> tuple[int | None, str]:
        """(event id, part) under a view point; part is "body", "start", "end" or ""."""
        frame = self.document.annotations
        if not len(frame):
            return None, ""
        lane = int(np.floor(pos.y()))
        if not 0 <= lane < len(self.lanes):
            return None, ""
        label = self.lanes[lane]
        seconds_per_pixel = self._seconds_per_pixel()
        edge = EDGE_PIXELS * seconds_per_pixel
        rows = frame[frame["label"] == label]
        x = pos.x()
        near = rows[(rows["onset"] - edge <= x) & (rows["offset"] + edge >= x)]
        if near.empty:
            return None, ""
        # prefer the selected one, then the shortest
        durations = (near["offset"] - near["onset"]).to_numpy()
        order = np.argsort(durations)
        chosen = near.iloc[order[0]]
        for idx in order:
            if int(near.iloc[idx]["id"]) in self.document.selection:
                chosen = near.iloc[idx]
                break
        width_px = (chosen["offset"] - chosen["onset"]) / seconds_per_pixel
        part = "body"
        if width_px >= 3 * EDGE_PIXELS or abs(x - chosen["onset"]) <= edge / 2:
            if abs(x - chosen["onset"]) <= edge:
                part = "start"
            elif abs(x - chosen["offset"]) <= edge:
                part = "end"
        return int(chosen["id"]), part

    def _seconds_per_pixel(self) -> float:
        start, stop = self.document.view_range
        return (stop - start) / self.pixels_wide()

    # ------------------------------------------------------------------- mouse
    def on_click(self, event, pos: QPointF) -> bool:
        if event.button() != Qt.MouseButton.LeftButton:
            return False
        event_id, _part = self.hit(pos)
        mods = event.modifiers()
        if event.double() and event_id is not None:
            self.document.select(event_id)
            self.relabel_requested.emit([event_id])
            return True
        if event_id is None:
            if not mods & (Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier):
                self.document.selection = ()
            self.document.cursor = pos.x()
            return True
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
                lane = min(max(0, int(np.floor(down.y()))), len(self.lanes))
                self._drag = {"mode": "create", "lane": lane}
            elif part in ("start", "end"):
                row = doc.event(event_id)
                self._drag = {"mode": part, "id": event_id, "lane": self.lane_of(row["label"]),
                              "onset": float(row["onset"]), "offset": float(row["offset"])}
            else:
                if event_id not in doc.selection:
                    doc.select(event_id, extend=bool(
                        event.modifiers() & Qt.KeyboardModifier.ShiftModifier))
                self._drag = {"mode": "move", "ids": sorted(doc.selection)}
        drag = self._drag
        mode = drag["mode"]
        x0, x1 = down.x(), pos.x()
        if mode == "create":
            self.drag_preview = [(min(x0, x1), max(x0, x1), drag["lane"])]
        elif mode in ("start", "end"):
            onset, offset = drag["onset"], drag["offset"]
            if mode == "start":
                onset = min(x1, offset - 1e-3)
            else:
                offset = max(x1, onset + 1e-3)
            drag["new"] = (max(0.0, onset), min(doc.duration, offset))
            self.drag_preview = [(*drag["new"], drag["lane"])]
        else:
            frame = doc.annotations.set_index("id").loc[drag["ids"]]
            delta = x1 - x0
            self.drag_preview = [
                (row.onset + delta, row.offset + delta, self.lane_of(row.label))
                for row in frame.itertuples()
            ]
        self.item.update()
        if event.isFinish():
            self.drag_preview = []
            self._drag = None
            self.item.update()
            self._finish_drag(drag, x0, x1)

    def _finish_drag(self, drag: dict, x0: float, x1: float) -> None:
        doc = self.document
        mode = drag["mode"]
        if mode == "create":
            if abs(x1 - x0) / self._seconds_per_pixel() < 3:
                return
            doc.add_event(min(x0, x1), max(x0, x1), self.label_of_lane(drag["lane"]))
        elif mode in ("start", "end"):
            if "new" in drag:
                doc.resize_event(drag["id"], *drag["new"])
        elif abs(x1 - x0) / self._seconds_per_pixel() >= 1:
            doc.move_events(drag["ids"], x1 - x0)

    def hover(self, pos: QPointF | None) -> None:
        if pos is None:
            self.unsetCursor()
            return
        event_id, part = self.hit(pos)
        if part in ("start", "end"):
            self.setCursor(Qt.CursorShape.SizeHorCursor)
        elif part == "body":
            self.setCursor(Qt.CursorShape.OpenHandCursor)
            row = self.document.event(event_id)
            conf = row["confidence"]
            conf_text = f", p={conf:.2f}" if conf == conf else ""
            low, high = row["low_freq"], row["high_freq"]
            band = ""
            if low == low or high == high:  # a band (NaN: none)
                band = (f"  {0 if low != low else low / 1000:.2f}–"
                        f"{'Nyquist' if high != high else f'{high / 1000:.2f}'} kHz")
            self.setToolTip(
                f"{row['label']}  {row['onset']:.2f}–{row['offset']:.2f} s{band}\n"
                f"{theme.STATUS_TEXT.get(row['status'], row['status'])} ({row['source']}"
                f"{conf_text})"
            )
        else:
            self.setCursor(Qt.CursorShape.CrossCursor)
            self.setToolTip("Drag to add an event; click an event to select it")
