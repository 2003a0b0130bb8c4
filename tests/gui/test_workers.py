"""Workers deliver their answers on the Qt thread, and never to a closed window."""

from __future__ import annotations

import threading

from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtWidgets import QLabel

from app.workers import Worker, while_alive


def test_a_worker_answers_a_living_widget(qtbot):
    label = QLabel()
    qtbot.addWidget(label)
    worker = Worker(lambda: "answer")
    worker.returned.connect(while_alive(label, lambda widget, text: widget.setText(text)))
    with qtbot.waitSignal(worker.finished, timeout=5000):
        worker.start()
    assert label.text() == "answer"


def test_an_answer_that_arrives_after_the_widget_was_deleted_goes_nowhere(qtbot):
    """The CI failure this mends: a calibration read finished while the window closed;
    its closure touched a deleted button and raised inside the event loop."""
    label = QLabel()
    release = threading.Event()
    calls: list[str] = []

    def job() -> str:
        release.wait(5)
        return "late"

    worker = Worker(job)
    worker.returned.connect(
        while_alive(label, lambda widget, text: (calls.append(text), widget.setText(text)))
    )
    worker.start()
    label.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    release.set()
    assert worker.wait(5)
    # the queued answer is delivered now, to a slot whose widget is gone
    for _ in range(3):
        QCoreApplication.processEvents()
    assert calls == []
