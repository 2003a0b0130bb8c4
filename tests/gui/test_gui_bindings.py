"""Widgets follow the document and write to it (napari-style "change the model, check
the widget"), without echo loops."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.gui


def test_params_bind_both_ways(make_main_window):
    window = make_main_window()
    doc, panel = window.document, window.panels["detection"]
    changes = []
    doc.events.params.connect(lambda e: changes.append(e.value))
    doc.update_params(threshold=0.42, off_threshold=0.2, min_duration=0.5)
    assert len(changes) == 1  # the widgets did not echo a second change
    assert panel.threshold_spin.value() == pytest.approx(0.42)
    assert panel.threshold_slider.value() == 42
    assert panel.off_spin.value() == pytest.approx(0.2)
    assert panel.min_duration_spin.value() == pytest.approx(0.5)
    assert window.curves.threshold_line.value() == pytest.approx(0.42)
    panel.threshold_slider.setValue(61)  # widget -> model
    assert doc.params.threshold == pytest.approx(0.61)
    assert doc.params.off_threshold == pytest.approx(0.2)
    panel.threshold_spin.setValue(0.1)  # off threshold never above the on threshold
    assert doc.params.off_threshold == pytest.approx(0.1)
    window.curves.threshold_line.setValue(0.33)  # dragging the line in the curves view
    window.curves.threshold_line.sigPositionChangeFinished.emit(window.curves.threshold_line)
    assert doc.params.threshold == pytest.approx(0.33)
    assert panel.threshold_spin.value() == pytest.approx(0.33)


def test_views_follow_the_document(make_main_window, demo_path):
    window = make_main_window()
    window.open_files([demo_path])
    doc = window.document
    doc.view_range = (4.0, 6.0)
    for view in window.views:
        assert view.getViewBox().viewRange()[0] == pytest.approx([4.0, 6.0], abs=1e-9)
    doc.cursor = 5.5
    assert all(view.cursor_line.value() == pytest.approx(5.5) for view in window.views)
    assert "0:05.50" in window.time_label.text()
    doc.time_selection = (4.5, 5.0)
    assert all(view.selection_region.getRegion() == pytest.approx((4.5, 5.0))
               for view in window.views)
    assert window.scrollbar.maximum() > 0
    doc.show_all()
    assert window.scrollbar.maximum() == 0
