"""The project store (one SQLite file) and the undoable edit operations on its events.

    store = ProjectStore("birds.panns")          # or ProjectStore(":memory:")
    rec = store.add_recording("dawn.wav")
    undo = store.apply(store.make_add_events(frame, rec))
    redo = store.apply(undo)
"""

from .ops import (
    ROW_FIELDS,
    AddEvents,
    Batch,
    Change,
    DeleteEvents,
    MoveEvents,
    Operation,
    RemoveRecordings,
    ReplaceProposed,
    RestoreRecordings,
    UpdateEvents,
    relabel,
    resize,
    set_status,
)
from .project import EVENT_FRAME_COLUMNS, LabelEntry, ProjectStore, Recording
from .schema import SCHEMA_VERSION

__all__ = [
    "EVENT_FRAME_COLUMNS",
    "ROW_FIELDS",
    "SCHEMA_VERSION",
    "AddEvents",
    "Batch",
    "Change",
    "DeleteEvents",
    "LabelEntry",
    "MoveEvents",
    "Operation",
    "ProjectStore",
    "Recording",
    "RemoveRecordings",
    "ReplaceProposed",
    "RestoreRecordings",
    "UpdateEvents",
    "relabel",
    "resize",
    "set_status",
]
