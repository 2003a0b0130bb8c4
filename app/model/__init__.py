"""The document models every widget binds to: plain Python with emitters, no Qt.

:class:`Document` composes :class:`Viewport`, :class:`Selection`, :class:`Detection`
and :class:`History`; each owns its emitters (:mod:`app.model.evented`).
"""

from .detection import Detection
from .document import EMITTERS, Document, OpenRecording
from .history import History
from .selection import Selection
from .viewport import MIN_SPAN, Viewport

__all__ = ["EMITTERS", "MIN_SPAN", "Detection", "Document", "History", "OpenRecording",
           "Selection", "Viewport"]
