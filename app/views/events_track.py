"""The events track: one lane per label, coloured regions styled by provenance.

Mouse: click selects (shift extends, ctrl toggles), double-click asks for a new label,
dragging an event moves it (with the rest of the selection), dragging its edge resizes
it, dragging on empty space adds an event (in a label's lane: that label; in the
bottom "new" lane: the default label). Every change is one document edit, so undo
works. All events are painted by one item in pixel space, so a long recording with
thousands of events stays fast.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPen

from panns_core import events as ev

from . import theme
from .base import TimeView

EDGE_PIXELS = 6
LANE_FILL = 0.78  # fraction of a lane an event's box fills


class _EventsItem(pg.GraphicsObject):
    """Paints every visible event; geometry in seconds x lanes."""

    def __init__(self, view: EventsTrackView) -> None:
        super().__init__()
        self._view = view
        self.font = QFont()
        self.font.setPointSizeF(8.5)
        self._metrics = QFontMetrics(self.font)

    def boundingRect(self) -> QRectF:  # noqa: N802
        view = self._view
        return QRectF(0, 0, max(view.document.duration, 1.0), max(1, view.n_lanes))

    def paint(self, painter, option, widget=None) -> None:
        view = self._view
        frame = view.draw_frame()
        if frame is None or not len(frame):
            return
        transform = painter.transform()
        painter.save()
        painter.resetTransform()
        painter.setFont(self.font)
        selected = view.document.selection
        colours = view.label_colours
        for row in frame.itertuples(index=False):
            lane = view.lane_of(row.label)
            top_left = transform.map(QPointF(row.onset, lane + (1 - LANE_FILL) / 2))
            bottom_right = transform.map(QPointF(row.offset, lane + (1 + LANE_FILL) / 2))
            rect = QRectF(top_left, bottom_right).normalized()
            if rect.width() < 2:
                rect.setWidth(2)
            status = row.status
            alpha, pen_style, pen_width, pattern, marker = theme.STATUS_STYLE.get(
                status, theme.STATUS_STYLE[ev.PROPOSED]
            )
            colour = (
                theme.REJECTED_COLOR
                if status == ev.REJECTED
                else theme.label_color(row.label, colours)
            )
            fill = QColor(colour)
            fill.setAlpha(alpha)
            painter.setBrush(QBrush(fill, pattern))
            is_selected = int(row.id) in selected
            if is_selected:
                pen = QPen(QColor(theme.SELECTED_PEN), 2.2)
            else:
                pen = QPen(colour.lighter(130), pen_width)
                pen.setStyle(pen_style)
            painter.setPen(pen)
            painter.drawRoundedRect(rect, 3, 3)
            # label text, elided to the box
            text = f"{marker} {row.label}"
            if status == ev.PROPOSED and row.confidence == row.confidence:
                text += f"  {row.confidence:.2f}"
            room = int(rect.width()) - 8
            if room > 14:
                elided = self._metrics.elidedText(text, Qt.TextElideMode.ElideRight, room)
                painter.setPen(QColor("#ffffff") if is_selected else QColor("#eef0f4"))
                painter.drawText(rect.adjusted(5, 0, -3, 0),
                                 Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                                 elided)
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


class EventsTrackView(TimeView):
    title = "Events"
    show_time_axis = True
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
        self.getPlotItem().getAxis("left").setStyle(tickLength=0)
        self.getPlotItem().getAxis("left").setTextPen(theme.AXIS_TEXT)
        self.getPlotItem().showGrid(x=True, y=False, alpha=theme.GRID_ALPHA)
        self.item = _EventsItem(self)
        self.addItem(self.item)
        self._lane_lines: list[pg.InfiniteLine] = []
        document.events.annotations.connect(self._on_annotations)
        document.events.selection.connect(self._on_selection)
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
        metrics = QFontMetrics(QFont())
        for i, label in enumerate(lanes):
            ticks.append((i + 0.5, metrics.elidedText(label, Qt.TextElideMode.ElideRight, 84)))
        new_text = metrics.elidedText(
            f"+ {self.document.default_label}", Qt.TextElideMode.ElideRight, 84
        )
        ticks.append((len(lanes) + 0.5, new_text))
        self.getPlotItem().getAxis("left").setTicks([ticks, []])
        self.setYRange(0, self.n_lanes, padding=0)
        for line in self._lane_lines:
            self.removeItem(line)
        self._lane_lines = []
        for i in range(1, self.n_lanes):
            line = pg.InfiniteLine(i, angle=0, pen=pg.mkPen(theme.AXIS, width=0.5))
            self.addItem(line, ignoreBounds=True)
            self._lane_lines.append(line)
        self.item.prepareGeometryChange()
        self.item.update()

    def preferred_height(self) -> int:
        return 40 + 26 * self.n_lanes

    # ------------------------------------------------------------ doc -> view
    def _on_annotations(self, event=None) -> None:
        self._update_lanes()

    def _on_selection(self, event) -> None:
        self.item.update()

    def _on_vocabulary(self, event) -> None:
        self.label_colours = self.document.label_colours()
        self.item.update()

    def on_range_changed(self, start: float, stop: float) -> None:
        self.item.update()

    def draw_frame(self):
        frame = self.document.annotations
        if not len(frame):
            return frame
        start, stop = self.document.view_range
        visible = (frame["offset"] >= start) & (frame["onset"] <= stop)
        return frame[visible]

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
            self.setToolTip(
                f"{row['label']}  {row['onset']:.2f}–{row['offset']:.2f} s\n"
                f"{theme.STATUS_TEXT.get(row['status'], row['status'])} ({row['source']}"
                f"{conf_text})"
            )
        else:
            self.setCursor(Qt.CursorShape.CrossCursor)
            self.setToolTip("Drag to add an event; click an event to select it")
