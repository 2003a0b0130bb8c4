"""Detection scores: a heatmap of the top classes over time, and curves with the threshold.

Both follow ``doc.detection.events.scores`` and redraw as chunks arrive while detection runs.
The threshold line in the curves view can be dragged; it sets the document's params,
which re-derives the proposed events from the cached scores.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QFont

from . import theme
from .base import AXIS_WIDTH, TimeView

TOP_CLASSES = 6
CURVE_CLASSES = 4
LEGEND_STRIP = 18  # pixels above the curves for their legend
RUN_HINT = "Run detection (Detect ▸ Detect in this recording, Ctrl+D) to see class probabilities"
NO_MODEL_HINT = ("No detection model installed. Get one in Models ▸ Model manager… "
                 "(download or import), then run detection (Ctrl+D).")


def any_model_installed() -> bool:
    """True when the registry holds a model file (True too when it cannot be read)."""
    try:
        from panns_core.hub.installed import list_models

        return any(record.path.is_file() for record in list_models())
    except Exception:
        return True  # cannot tell: keep the usual hint


def top_classes(scores, n: int) -> list[int]:
    """Indices of the ``n`` classes with the highest peak probability."""
    if scores is None or not scores.n_segments:
        return []
    peaks = scores.probabilities.max(axis=0)
    order = np.argsort(-peaks, kind="stable")
    return [int(i) for i in order[:n]]


class ProbabilityHeatmapView(TimeView):
    title = "Classes"

    def __init__(self, document, parent=None) -> None:
        super().__init__(document, parent)
        self.image = pg.ImageItem(levels=(0.0, 1.0), autoLevels=False)
        self.image.setLookupTable(pg.colormap.get("inferno").getLookupTable(nPts=256))
        self.addItem(self.image)
        self.getViewBox().invertY(True)
        font = self.getPlotItem().getAxis("left").style.get("tickFont") or QFont()
        font.setPointSizeF(8.0)
        self.getPlotItem().getAxis("left").setStyle(tickFont=font)
        self.classes: list[int] = []
        self.message = pg.TextItem("", color=theme.MESSAGE, anchor=(0.5, 0.5))
        self.addItem(self.message, ignoreBounds=True)
        document.detection.events.scores.connect(self._on_scores)
        self._show_empty()

    def _show_empty(self) -> None:
        self.image.clear()
        self.classes = []
        self.setYRange(0, TOP_CLASSES, padding=0)
        self.getPlotItem().getAxis("left").setTicks([[], []])
        start, stop = self.document.view_range
        self.refresh_hint()
        self.fit_message(self.message)
        self.message.setPos((start + stop) / 2, TOP_CLASSES / 2)
        self.message.show()

    def refresh_hint(self) -> None:
        """Say how to get a model first when none is installed (models may have changed)."""
        self.message.setText(RUN_HINT if any_model_installed() else NO_MODEL_HINT)

    def on_range_changed(self, start: float, stop: float) -> None:
        if self.message.isVisible():
            self.message.setPos((start + stop) / 2, TOP_CLASSES / 2)

    def _on_scores(self, event) -> None:
        scores = event.value
        if scores is None or not scores.n_segments:
            self._show_empty()
            return
        self.message.hide()
        self.classes = top_classes(scores, TOP_CLASSES)
        data = scores.probabilities[:, self.classes]
        self.image.setImage(data, levels=(0.0, 1.0), autoLevels=False)
        self.image.setRect(QRectF(0, 0, scores.n_segments * scores.segment_seconds,
                                  len(self.classes)))
        labels = [scores.labels[i] for i in self.classes]
        ticks = [(i + 0.5, _short(label, 13)) for i, label in enumerate(labels)]
        self.getPlotItem().getAxis("left").setTicks([ticks, []])
        self.setYRange(0, max(1, len(self.classes)), padding=0)


class ProbabilityCurvesView(TimeView):
    title = "Probability"

    def __init__(self, document, parent=None) -> None:
        super().__init__(document, parent)
        self.setYRange(0, 1.02, padding=0)
        self.getPlotItem().getAxis("left").setTicks([[(0, "0"), (0.5, "0.5"), (1, "1")], []])
        self.getPlotItem().showGrid(x=False, y=True, alpha=theme.GRID_ALPHA)
        # the legend sits in a strip above the plot, never over a curve
        item = self.getPlotItem()
        item.setContentsMargins(0, LEGEND_STRIP, 6, 2)
        self.legend = pg.LegendItem(labelTextSize="8pt", colCount=CURVE_CLASSES,
                                    verSpacing=0, horSpacing=12, frame=False)
        self.legend.layout.setContentsMargins(0, 0, 0, 0)
        self.legend.setParentItem(item)
        self.legend.anchor((0, 0), (0, 0), offset=(AXIS_WIDTH + 2, 0))
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.chosen: list[str] | None = None  # None: follow the top classes
        self.threshold_line = pg.InfiniteLine(
            document.params.threshold, angle=0, movable=True,
            pen=pg.mkPen(theme.THRESHOLD, width=1.5, style=pg.QtCore.Qt.PenStyle.DashLine),
            label="threshold {value:.2f}",
            labelOpts={"position": 0.97, "color": theme.THRESHOLD, "anchors": [(1, 1), (1, 1)]},
        )
        self.threshold_line.setBounds((0.01, 0.99))
        self.threshold_line.sigPositionChangeFinished.connect(self._on_threshold_dragged)
        self.addItem(self.threshold_line, ignoreBounds=True)
        document.detection.events.scores.connect(self._on_scores)
        document.detection.events.params.connect(self._on_params)

    def choose_classes(self, labels: list[str] | None) -> None:
        self.chosen = labels
        self._redraw(self.document.scores)

    def _on_threshold_dragged(self, line) -> None:
        self.document.update_params(threshold=round(float(line.value()), 3))

    def _on_params(self, event) -> None:
        self.threshold_line.setValue(event.value.threshold)

    def _on_scores(self, event) -> None:
        self._redraw(event.value)

    def _redraw(self, scores) -> None:
        if scores is None or not scores.n_segments:
            for curve in self.curves.values():
                self.removeItem(curve)
            self.curves.clear()
            self.legend.clear()
            return
        if self.chosen:
            wanted = [lab for lab in self.chosen if lab in scores.labels]
        else:
            wanted = [scores.labels[i] for i in top_classes(scores, CURVE_CLASSES)]
        for label in list(self.curves):
            if label not in wanted:
                curve = self.curves.pop(label)
                self.removeItem(curve)
                self.legend.removeItem(curve)
        colours = self.document.label_colours()
        # step curve: each segment's value holds over its span
        n = scores.n_segments
        edges = np.arange(n + 1) * scores.segment_seconds
        edges[-1] = max(edges[-1], min(scores.duration, edges[-1]))
        for label in wanted:
            values = scores.probabilities[:, scores.labels.index(label)]
            curve = self.curves.get(label)
            if curve is None:
                pen = pg.mkPen(theme.label_color(label, colours), width=1.6)
                curve = pg.PlotDataItem(pen=pen, name=_short(label, 28), stepMode="center")
                self.addItem(curve)
                self.legend.addItem(curve, _short(label, 28))
                self.curves[label] = curve
            curve.setData(edges, values)


def _short(label: str, width: int = 16) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"
