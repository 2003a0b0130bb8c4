"""The window's eye on its project file: other writers and idle checkpoints.

A :class:`ProjectWatch` polls the open project every ``interval_ms`` on the Qt thread
(``PRAGMA data_version``, microseconds): when a second window or ``panns-sed``
committed, :meth:`Document.poll_outside_changes` shows the project as it is now and
clears the undo history (undo never reverts another program's work). It waits while a
mouse button is down (a drag in progress keeps its events). When the project has been
quiet for ``idle_s`` seconds after a write, it checkpoints the WAL (passive: never
waits), so a copy of the .panns file alone holds every commit.
"""

from __future__ import annotations

import logging
import time

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication

from panns_core.errors import PannsError

log = logging.getLogger(__name__)


class ProjectWatch(QObject):
    def __init__(self, window, interval_ms: int = 500, idle_s: float = 2.0) -> None:
        super().__init__(window)
        self.window = window
        self.idle_s = idle_s
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.tick)
        self.timer.start()

    def tick(self) -> None:
        doc = self.window.document
        store = doc.store
        if store is None or QApplication.mouseButtons() != Qt.MouseButton.NoButton:
            return
        try:
            doc.poll_outside_changes()
            if store.dirty and time.monotonic() - store.last_write >= self.idle_s:
                store.checkpoint()
        except PannsError as error:  # e.g. the file vanished: say so, keep the window
            self.window.statusBar().showMessage(str(error), 10000)
        except Exception:  # never let a timer tick raise into Qt
            log.exception("project watch")

    def stop(self) -> None:
        self.timer.stop()
