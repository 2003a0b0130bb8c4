"""The Qt binding must not corrupt reference counts.

PySide6 6.12.0 on Python 3.11 drops a reference to None on every call of a method that
returns void (QPen.setWidth, QPainter.setBrush, ...): a session crashes with
"none_dealloc" after a few thousand paints. pyproject.toml pins below 6.12; this test
fails on any binding with that bug.
"""

from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QObject, QPointF
from PySide6.QtGui import QPen

pytestmark = pytest.mark.gui


def test_void_methods_keep_none_refcount():
    pen, point, obj = QPen(), QPointF(), QObject()
    before = sys.getrefcount(None)
    for _ in range(200):
        pen.setWidth(2)
        point.setX(1.0)
        obj.setObjectName("x")
    assert sys.getrefcount(None) - before > -50
