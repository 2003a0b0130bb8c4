"""The PANNs annotator desktop application (PySide6 + pyqtgraph).

Layout: :mod:`app.model` is the plain-Python model every widget binds to (no Qt);
:mod:`app.main_window` assembles the views (:mod:`app.views`), the player, the
detection panel and the dialogs; :mod:`app.workers` runs heavy work off the Qt thread.
Nothing here imports torch at import time.
"""

__all__: list[str] = []
