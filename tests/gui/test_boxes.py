"""Events as boxes on the time-frequency views, driven with the mouse like a user.

pyqtgraph drops mouse moves that come less than 10 ms apart and reads a press and
release with no accepted move as a click, so the drags here wait between moves.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.panels.events_table import KEYS
from panns_core import events as ev


def _send(widget, kind, pos: QPoint, button, buttons) -> None:
    event = QMouseEvent(kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)), button, buttons,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def timed_drag(qtbot, view, start: tuple[float, float], stop: tuple[float, float],
               steps: int = 8, wait_ms: int = 15) -> None:
    """Press at ``start`` (view coordinates), move in timed steps, release at ``stop``."""
    viewport = view.viewport()
    a = view.view_to_widget(*start).toPoint()
    b = view.view_to_widget(*stop).toPoint()
    left = Qt.MouseButton.LeftButton
    _send(viewport, QEvent.Type.MouseMove, a, Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)
    qtbot.wait(wait_ms)
    _send(viewport, QEvent.Type.MouseButtonPress, a, left, left)
    for i in range(1, steps + 1):
        qtbot.wait(wait_ms)
        _send(viewport, QEvent.Type.MouseMove, a + (b - a) * (i / steps), Qt.MouseButton.NoButton,
              left)
    qtbot.wait(wait_ms)
    _send(viewport, QEvent.Type.MouseButtonRelease, b, left, Qt.MouseButton.NoButton)
    QApplication.processEvents()


def hover(qtbot, view, at: tuple[float, float]) -> None:
    p = view.view_to_widget(*at).toPoint()
    _send(view.viewport(), QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton,
          Qt.MouseButton.NoButton)
    qtbot.wait(20)
    QApplication.processEvents()


def _key(window, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    if not window.isActiveWindow():
        window.activateWindow()
    QTest.keyClick(QApplication.focusWidget() or window, key, modifier)
    QApplication.processEvents()


def _band(doc, event_id) -> tuple[float, float]:
    row = doc.event(event_id)
    return float(row["low_freq"]), float(row["high_freq"])


def _hz_tolerance(view, hz: float, pixels: float = 2.5) -> float:
    """What ``pixels`` of the view's height mean in hertz around ``hz``."""
    per_pixel = view._units_per_pixel()[1]
    return abs(view.y_to_hz(view.hz_to_y(hz) + pixels * per_pixel) - hz) + 1.0


@pytest.mark.slow
def test_box_draw_move_resize_undo_table_and_raven(make_main_window, qtbot, demo_path,
                                                    tmp_path):
    from app.dialogs.io_dialogs import ExportDialog, ImportDialog

    window = make_main_window()
    window.resize(1400, 1000)
    window.open_files([demo_path])
    doc = window.document
    qtbot.waitUntil(lambda: window.waveform.envelope_complete, timeout=30000)
    view = window.spectrogram
    doc.view_range = (10.0, 16.0)
    qtbot.wait(50)
    y = view.hz_to_y
    spp = view._units_per_pixel()[0]

    # draw: a drag on empty space selects a box (time span and band); Enter adds it
    timed_drag(qtbot, view, (11.0, y(1000.0)), (12.0, y(4000.0)))
    assert doc.time_selection == pytest.approx((11.0, 12.0), abs=3 * spp)
    low, high = doc.viewport.band_selection
    assert low == pytest.approx(1000.0, abs=_hz_tolerance(view, 1000.0))
    assert high == pytest.approx(4000.0, abs=_hz_tolerance(view, 4000.0))
    assert not view.selection_region.isVisible()  # drawn as a box, not a full-height span
    # a span dragged on the waveform is all frequencies: it drops the drawn band
    timed_drag(qtbot, window.waveform, (13.0, 0.0), (14.0, 0.0))
    assert doc.time_selection is not None and doc.viewport.band_selection is None
    timed_drag(qtbot, view, (11.0, y(1000.0)), (12.0, y(4000.0)))
    # the same drag again gives the same band, to the pixel the pointer lands on
    again = doc.viewport.band_selection
    assert again[0] == pytest.approx(low, abs=_hz_tolerance(view, low))
    assert again[1] == pytest.approx(high, abs=_hz_tolerance(view, high))
    _key(window, Qt.Key.Key_Return)
    assert len(doc.annotations) == 1
    event_id = int(doc.annotations["id"].iloc[0])
    assert _band(doc, event_id) == again
    low, high = again
    assert doc.time_selection is None and doc.viewport.band_selection is None

    # move: the body dragged 0.5 s later and up; on the mel axis the band moves in mel
    before = doc.event(event_id)
    t0, t1, b0, b1 = view.event_box(event_id)
    centre = ((t0 + t1) / 2, (b0 + b1) / 2)
    dy = (b1 - b0) / 4
    timed_drag(qtbot, view, centre, (centre[0] + 0.5, centre[1] + dy))
    row = doc.event(event_id)
    assert row["onset"] - before["onset"] == pytest.approx(0.5, abs=3 * spp)
    assert row["offset"] - row["onset"] == pytest.approx(before["offset"] - before["onset"])
    new_low, new_high = _band(doc, event_id)
    assert new_low > low and new_high > high
    assert view.hz_to_y(new_low) == pytest.approx(b0 + dy, abs=3 * view._units_per_pixel()[1])
    assert row["status"] == ev.ADDED  # a person's own event stays "added"

    # resize each edge
    edges = {}
    t0, t1, b0, b1 = view.event_box(event_id)
    mid_t, mid_y = (t0 + t1) / 2, (b0 + b1) / 2
    timed_drag(qtbot, view, (t0, mid_y), (t0 - 0.3, mid_y))  # left
    edges["left"] = doc.event(event_id)["onset"]
    assert edges["left"] == pytest.approx(t0 - 0.3, abs=3 * spp)
    timed_drag(qtbot, view, (t1, mid_y), (t1 + 0.4, mid_y))  # right
    edges["right"] = doc.event(event_id)["offset"]
    assert edges["right"] == pytest.approx(t1 + 0.4, abs=3 * spp)
    bottom_target = b0 - (b1 - b0) / 3
    timed_drag(qtbot, view, (mid_t, b0), (mid_t, bottom_target))  # bottom
    lo = _band(doc, event_id)[0]
    assert lo == pytest.approx(view.y_to_hz(bottom_target), abs=_hz_tolerance(view, lo))
    top_target = b1 + (b1 - b0) / 3
    band_before_top = _band(doc, event_id)
    timed_drag(qtbot, view, (mid_t, b1), (mid_t, top_target))  # top
    hi = _band(doc, event_id)[1]
    assert hi == pytest.approx(view.y_to_hz(top_target), abs=_hz_tolerance(view, hi))
    assert _band(doc, event_id)[0] == band_before_top[0]  # the other edges stay
    assert doc.event(event_id)["onset"] == edges["left"]

    # undo: the top edge goes back exactly, then the bottom one; redo brings it again
    assert doc.history.undo_text == "Move the top edge of a box"
    _key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _band(doc, event_id) == band_before_top
    _key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _band(doc, event_id)[0] == new_low
    _key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ShiftModifier
         | Qt.KeyboardModifier.ControlModifier)
    assert _band(doc, event_id) == band_before_top

    # the events table: band cells show and edit the band (one undoable step each)
    panel = window.panels["events_table"]
    model = panel.model
    row_index = model.rows_of([event_id])[0]
    low_cell = model.index(row_index, KEYS.index("low_freq"))
    assert low_cell.data() == f"{band_before_top[0]:.0f}"
    assert model.setData(low_cell, "1.5k")
    qtbot.waitUntil(lambda: _band(doc, event_id)[0] == 1500.0, timeout=5000)
    high_cell = model.index(model.rows_of([event_id])[0], KEYS.index("high_freq"))
    assert model.setData(high_cell, "6000")
    qtbot.waitUntil(lambda: _band(doc, event_id)[1] == 6000.0, timeout=5000)
    assert doc.history.undo_text == "Edit band"
    assert view.event_box(event_id)[2] == pytest.approx(view.hz_to_y(1500.0))
    bad = model.index(model.rows_of([event_id])[0], KEYS.index("high_freq"))
    model.setData(bad, "loud")
    qtbot.waitUntil(lambda: window.last_error is not None, timeout=5000)
    assert "not a frequency" in window.last_error
    assert _band(doc, event_id) == (1500.0, 6000.0)

    # hovering reads out time, frequency and level
    hover(qtbot, view, (13.0, view.hz_to_y(2000.0)))
    text = window.readout_label.text()
    assert "0:13" in text and "kHz" in text
    qtbot.waitUntil(lambda: view.level_at(13.0, view.hz_to_y(2000.0)) is not None,
                    timeout=20000)
    hover(qtbot, view, (13.0, view.hz_to_y(2000.0)))
    assert window.readout_label.text().endswith("dB")

    # an event without a band covers the whole height: a drag over it draws a box and
    # leaves it be; once selected, dragging its top edge gives it a band from 0 Hz
    wind = doc.add_event(14.0, 15.5, "Wind", select=False)
    doc.selection = ()
    timed_drag(qtbot, view, (14.3, y(300.0)), (14.8, y(900.0)))
    assert doc.time_selection == pytest.approx((14.3, 14.8), abs=3 * spp)
    assert doc.event(wind)["onset"] == 14.0 and math.isnan(_band(doc, wind)[1])
    doc.time_selection = None
    doc.select(wind)
    top = view.y_top() - view._units_per_pixel()[1]
    timed_drag(qtbot, view, (14.7, top), (14.7, y(3000.0)))
    low, high = _band(doc, wind)
    assert low == 0.0 and high == pytest.approx(3000.0, abs=_hz_tolerance(view, 3000.0))
    _key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert math.isnan(_band(doc, wind)[0])
    _key(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert wind not in set(doc.annotations["id"])

    # a second event without a band; export to Raven, delete, import: the same boxes
    plain = doc.add_event(2.0, 3.0, "Dog")
    expected = doc.annotations.sort_values("onset")[["onset", "offset", "low_freq",
                                                     "high_freq", "label"]]
    export = ExportDialog(doc, window)
    export.set_format("raven")
    out = tmp_path / "boxes.selections.txt"
    export.set_destination(out)
    export.export()
    export.deleteLater()
    text = out.read_text()
    assert "\t1500\t6000\t" in text.replace(".0\t", "\t")
    doc.delete_events([event_id, plain])
    assert doc.annotations.empty
    importer = ImportDialog(doc, window, paths=[out])
    assert importer.import_files() == 2
    importer.deleteLater()
    again = doc.annotations.sort_values("onset")[["onset", "offset", "low_freq", "high_freq",
                                                  "label"]]
    for column in ("onset", "offset"):
        np.testing.assert_allclose(again[column], expected[column], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(again["low_freq"], expected["low_freq"])
    np.testing.assert_array_equal(again["high_freq"], expected["high_freq"])
    assert math.isnan(again["low_freq"].iloc[0])  # no band stays no band
