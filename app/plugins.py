"""Panels and dialogs that plug into the main window through its public hooks
(:meth:`MainWindow.add_dock`, :meth:`MainWindow.add_action`, ``label_picker``).

``install_all(window)`` is called once from the window's constructor, after its own
menus and docks exist; each module's ``install(window)`` adds what it needs.
"""

from __future__ import annotations


def install_all(window) -> None:
    from .dialogs import io_dialogs, label_picker
    from .panels import events_table, recording, review, training

    events_table.install(window)
    label_picker.install(window)
    review.install(window)
    io_dialogs.install(window)
    training.install(window)
    recording.install(window)
