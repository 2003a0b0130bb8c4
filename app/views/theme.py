"""Colours and styles of the views, provenance styles and label colours in one place."""

from __future__ import annotations

import zlib

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from panns_core import events as ev

BACKGROUND = "#17181c"
PANEL = "#202228"
AXIS = "#5b606b"
AXIS_TEXT = "#b9bec8"
GRID_ALPHA = 0.12
CURSOR = "#ffcc33"
TIME_SELECTION = (120, 170, 255, 45)
WAVEFORM = "#5fb3ff"
THRESHOLD = "#ff6f61"
MESSAGE = "#c6cad3"

# A palette with good separation on a dark background (Tableau 20-ish, brightened).
PALETTE = (
    "#4e9bff", "#ff9f40", "#45c46b", "#ff5a5f", "#b68cff", "#c9895f", "#ff8fd0",
    "#a0a4ab", "#d6d64a", "#35d0e0", "#7fb2ff", "#ffc078", "#8be08e", "#ff9b9d",
    "#d0b6ff", "#e0b090", "#ffb8e4", "#cfd3da", "#eeee8a", "#8eeaf3",
)


def label_color(label: str, vocabulary: dict[str, str] | None = None) -> QColor:
    """The colour of a label: the project vocabulary's, else a stable palette pick."""
    if vocabulary and vocabulary.get(label):
        color = QColor(vocabulary[label])
        if color.isValid():
            return color
    return QColor(PALETTE[zlib.crc32(label.encode("utf-8")) % len(PALETTE)])


# status -> (fill alpha, pen style, pen width, brush pattern, text marker)
STATUS_STYLE = {
    ev.PROPOSED: (70, Qt.PenStyle.DashLine, 1.2, Qt.BrushStyle.SolidPattern, "?"),
    ev.ACCEPTED: (165, Qt.PenStyle.SolidLine, 1.4, Qt.BrushStyle.SolidPattern, "✓"),
    ev.EDITED: (165, Qt.PenStyle.SolidLine, 1.4, Qt.BrushStyle.SolidPattern, "✎"),
    ev.ADDED: (190, Qt.PenStyle.SolidLine, 2.0, Qt.BrushStyle.SolidPattern, "+"),
    ev.REJECTED: (120, Qt.PenStyle.DotLine, 1.0, Qt.BrushStyle.BDiagPattern, "✗"),
}

STATUS_TEXT = {
    ev.PROPOSED: "proposed (model)",
    ev.ACCEPTED: "accepted",
    ev.EDITED: "edited",
    ev.ADDED: "added by hand",
    ev.REJECTED: "rejected",
}

SELECTED_PEN = "#ffffff"
REJECTED_COLOR = QColor("#8a8f98")
