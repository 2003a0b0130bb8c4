"""Keys typed into an editor stay there: no window shortcut takes them.

The window's shortcuts are single keys (Return adds an event, A accepts, Left scrolls,
Escape stops playback, ...) with window context, so without help they win over a text
box, a spin box, an editable combo box or a table cell being edited in a dock: Return
in the threshold box would add an event instead of committing the value, Escape would
not cancel a cell edit. Qt asks the focus widget first with a ``ShortcutOverride``
event; accepting it hands the key to the widget. This filter accepts it for

* text editors (line edits, spin boxes, text edits, editable combo boxes): every key
  without Ctrl, Alt or Meta (Ctrl shortcuts such as Ctrl+D stay with the window; the
  editors themselves claim Ctrl+Z, Ctrl+C, ... as Qt does by default);
* item views not being edited (recordings list, tables): Return/Enter and the keys
  that move the current row (Up, Down, Home, End, Page Up/Down), so Return activates
  the row and the keyboard walks the list (the same keys for other combo boxes).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
)

TEXT_EDITORS = (QLineEdit, QAbstractSpinBox, QTextEdit, QPlainTextEdit)
VIEW_KEYS = frozenset((Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Up, Qt.Key.Key_Down,
                       Qt.Key.Key_Home, Qt.Key.Key_End, Qt.Key.Key_PageUp,
                       Qt.Key.Key_PageDown))
COMMAND_MODIFIERS = (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
                     | Qt.KeyboardModifier.MetaModifier)


def editor_wants(widget, key: int, modifiers) -> bool:
    """Whether ``widget`` (the focus widget) keeps this key from the window shortcuts."""
    if widget is None or modifiers & COMMAND_MODIFIERS:
        return False
    if isinstance(widget, TEXT_EDITORS):
        if isinstance(widget, QTextEdit | QPlainTextEdit) and widget.isReadOnly():
            return False
        return not (isinstance(widget, QLineEdit) and widget.isReadOnly())
    if isinstance(widget, QComboBox):
        return widget.isEditable() or key in VIEW_KEYS
    if isinstance(widget, QAbstractItemView):
        return key in VIEW_KEYS and widget.state() != QAbstractItemView.State.EditingState
    return False


class EditorKeys(QObject):
    """The application-wide event filter described in the module docstring."""

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.ShortcutOverride and obj is QApplication.focusWidget() \
                and editor_wants(obj, event.key(), event.modifiers()):
            event.accept()
            return True
        return False


def install(app: QApplication | None = None) -> EditorKeys:
    """Install the filter on the application once (later calls return the same one)."""
    app = app or QApplication.instance()
    existing = app.findChild(EditorKeys)
    if existing is not None:
        return existing
    keys = EditorKeys(app)
    app.installEventFilter(keys)
    return keys
