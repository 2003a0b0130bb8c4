"""What every time view shares: one time axis, the cursor, the time selection.

A :class:`TimeView` is a pyqtgraph ``PlotWidget`` bound to a :class:`~app.model.Document`.
The document's ``view_range`` is the one truth about the visible time span: a view that
is zoomed or panned by the user writes it, and every view follows the document's event
(the view that started the change included, so the document's clamping wins). Mouse in
every view: wheel zooms time around the pointer, right- or middle-drag pans, a left click
moves the cursor and a left drag selects a time span. The events track overrides left
clicks and drags for editing.
"""

from __future__ import annotations

import weakref

import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QTextOption
from PySide6.QtWidgets import QGraphicsItem

from ..model import Document
from . import theme

_CENTRED = QTextOption(Qt.AlignmentFlag.AlignHCenter)
AXIS_WIDTH = 124  # fixed left-axis width so all views line up on the time axis


def format_time(seconds: float, span: float = 10.0) -> str:
    """``m:ss.s`` style time text; finer digits when the view is narrow."""
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    minutes, secs = divmod(seconds, 60.0)
    hours, minutes = divmod(int(minutes), 60)
    digits = 0 if span > 120 else 1 if span > 10 else 2 if span > 1 else 3
    sec_text = f"{secs:0{3 + digits if digits else 2}.{digits}f}"
    if hours:
        return f"{sign}{hours}:{minutes:02d}:{sec_text}"
    return f"{sign}{minutes}:{sec_text}"


class TimeAxis(pg.AxisItem):
    """Bottom axis in minutes:seconds."""

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (Qt naming)
        span = spacing * 10
        return [format_time(v, span) for v in values]


class TimeViewBox(pg.ViewBox):
    """A ViewBox that routes mouse gestures on the time axis through its TimeView."""

    def __init__(self, view: TimeView) -> None:
        super().__init__(enableMenu=False)
        self._view_ref = weakref.ref(view)
        self.setMouseEnabled(x=False, y=False)  # we handle zoom and pan ourselves

    @property
    def view(self) -> TimeView | None:
        return self._view_ref()

    def wheelEvent(self, event, axis=None):  # noqa: N802
        view = self.view
        if view is None:
            return
        delta = event.delta() if hasattr(event, "delta") else event.angleDelta().y()
        x = self.mapSceneToView(event.scenePos()).x()
        if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            view.document.scroll(-delta / 1200)
        else:
            view.document.zoom(0.85 ** (delta / 120), center=x)
        event.accept()

    def hoverEvent(self, event):  # noqa: N802
        view = self.view
        hover = getattr(view, "hover", None)
        if hover is None:
            return
        if event.isExit():
            hover(None)
        else:
            hover(self.mapSceneToView(event.scenePos()))

    def mouseClickEvent(self, event):  # noqa: N802
        view = self.view
        if view is None:
            return
        pos = self.mapSceneToView(event.scenePos())
        if view.on_click(event, pos):
            event.accept()
            return
        if event.button() == Qt.MouseButton.LeftButton:
            view.document.cursor = pos.x()
            view.document.time_selection = None
            event.accept()

    def mouseDragEvent(self, event, axis=None):  # noqa: N802
        view = self.view
        if view is None:
            return
        event.accept()
        if event.button() in (Qt.MouseButton.RightButton, Qt.MouseButton.MiddleButton):
            pos = self.mapSceneToView(event.scenePos())
            last = self.mapSceneToView(event.lastScenePos())
            start, stop = view.document.view_range
            shift = last.x() - pos.x()
            view.document.view_range = (start + shift, stop + shift)
            return
        if event.button() != Qt.MouseButton.LeftButton:
            return
        down = self.mapSceneToView(event.buttonDownScenePos())
        pos = self.mapSceneToView(event.scenePos())
        view.on_drag(event, down, pos)


class TimeView(pg.PlotWidget):
    """Base of the stacked views; subclasses draw, this keeps time in step."""

    #: emitted with an exception when background work of the view fails
    failed = Signal(object)
    title = "View"
    show_time_axis = False

    def __init__(self, document: Document, parent=None) -> None:
        self.document = document
        axis = {"bottom": TimeAxis("bottom")}
        super().__init__(parent=parent, viewBox=TimeViewBox(self), axisItems=axis)
        self.setBackground(theme.BACKGROUND)
        self.setMenuEnabled(False)
        self.hideButtons()
        item = self.getPlotItem()
        item.setContentsMargins(0, 2, 6, 2)
        left = item.getAxis("left")
        # the left axis does not change while time zooms or scrolls: paint it from a
        # cached pixmap instead of re-rendering its text every frame
        left.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        left.setWidth(AXIS_WIDTH)
        left.setTextPen(theme.AXIS_TEXT)
        left.setPen(theme.AXIS)
        bottom = item.getAxis("bottom")
        bottom.setTextPen(theme.AXIS_TEXT)
        bottom.setPen(theme.AXIS)
        if not self.show_time_axis:
            item.hideAxis("bottom")  # one time axis (the events track's) is enough
        self._shown_title: str | None = None
        self.fit_title()
        vb = self.getViewBox()
        vb.setDefaultPadding(0.0)
        self.cursor_line = pg.InfiniteLine(
            0.0, angle=90, movable=False, pen=pg.mkPen(theme.CURSOR, width=1.5)
        )
        self.cursor_line.setZValue(1000)
        self.addItem(self.cursor_line, ignoreBounds=True)
        self.selection_region = pg.LinearRegionItem(
            movable=False, brush=QColor(*theme.TIME_SELECTION), pen=pg.mkPen(None)
        )
        self.selection_region.setZValue(900)
        self.selection_region.hide()
        self.addItem(self.selection_region, ignoreBounds=True)
        document.viewport.events.view_range.connect(self._on_view_range)
        document.viewport.events.cursor.connect(self._on_cursor)
        document.viewport.events.time_selection.connect(self._on_time_selection)
        document.events.recording.connect(self._on_recording)

    # ------------------------------------------------------------ doc -> view
    def _on_view_range(self, event) -> None:
        start, stop = event.value
        self.getViewBox().setXRange(start, stop, padding=0.0)
        self.on_range_changed(start, stop)

    def _on_cursor(self, event) -> None:
        self.cursor_line.setValue(event.value)

    def _on_time_selection(self, event) -> None:
        if event.value is None:
            self.selection_region.hide()
        else:
            self.selection_region.setRegion(event.value)
            self.selection_region.show()

    def _on_recording(self, event) -> None:
        self.on_recording_changed(event.value)

    # ------------------------------------------------------- hooks for subclasses
    def on_recording_changed(self, recording) -> None:
        """A new current recording (or None): drop old content, start loading."""

    def on_range_changed(self, start: float, stop: float) -> None:
        """The visible span changed: fetch what is needed for it."""

    def on_click(self, event, pos: QPointF) -> bool:
        """Return True when the click was handled (the default moves the cursor)."""
        return False

    def on_drag(self, event, down: QPointF, pos: QPointF) -> None:
        """Left drag: select a time span; the cursor goes to its start at the end."""
        self.document.viewport.band_selection = None  # a span of time only, all frequencies
        self.document.time_selection = (down.x(), pos.x())
        if event.isFinish() and self.document.time_selection:
            self.document.cursor = self.document.time_selection[0]

    # ----------------------------------------------------------------- helpers
    def pixels_wide(self) -> int:
        return max(1, int(self.getViewBox().width()))

    def fit_message(self, item: pg.TextItem) -> None:
        """Wrap a centred message to the plot's width (it never runs off the sides)."""
        item.setTextWidth(max(120, self.pixels_wide() - 40))
        item.textItem.document().setDefaultTextOption(_CENTRED)

    def wanted_title(self) -> str:
        """The rotated title at the left (subclasses may drop it, e.g. for a scroll bar)."""
        return self.title

    def fit_title(self) -> None:
        """Show the title only when the view is tall enough for all of it: a clipped
        "aveform" reads worse than none (the axis still says what the view is)."""
        title = self.wanted_title()
        if title and QFontMetrics(QFont()).horizontalAdvance(title) + 10 > self.height():
            title = ""
        if title != self._shown_title:
            self._shown_title = title
            self.setLabel("left", title, color=theme.AXIS_TEXT)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if "_shown_title" in self.__dict__:  # not while the base class is being built
            self.fit_title()
        message = self.__dict__.get("message")
        if isinstance(message, pg.TextItem) and message.isVisible():
            self.fit_message(message)

    def view_to_widget(self, x: float, y: float) -> QPointF:
        """Widget (viewport) coordinates of a data point: for tests and tooltips."""
        scene = self.getViewBox().mapViewToScene(QPointF(x, y))
        return self.mapFromScene(scene).toPointF()

    def shutdown(self) -> None:
        """Stop background work before the window closes."""
