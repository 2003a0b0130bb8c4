"""The one event schema used everywhere: a pandas DataFrame at the boundaries.

Columns (in this order):

===========  =======  ==========================================================
recording    str      recording identifier (file name, path or store id as text)
onset        float    seconds from the start of the recording
offset       float    seconds, > onset
label        str      class label (AudioSet display name or project vocabulary)
confidence   float    model probability in [0, 1], NaN for human events
low_freq     float    Hz, NaN when unknown
high_freq    float    Hz, NaN when unknown
source       str      model id, or "human"
status       str      one of STATUSES
note         str      free text ("" when none)
created      float    Unix time
modified     float    Unix time
===========  =======  ==========================================================
"""

from __future__ import annotations

import time
from typing import Final

import numpy as np
import pandas as pd

PROPOSED: Final = "proposed"
ACCEPTED: Final = "accepted"
EDITED: Final = "edited"
REJECTED: Final = "rejected"
ADDED: Final = "added"
STATUSES: Final = (PROPOSED, ACCEPTED, EDITED, REJECTED, ADDED)
HUMAN: Final = "human"
#: the source of a clip tag (a weak label): an event spanning its whole recording that says
#: the class occurs somewhere in it; training uses it through the clip loss only
CLIP_TAG_SOURCE: Final = "clip-tag"

EVENT_COLUMNS: Final = (
    "recording",
    "onset",
    "offset",
    "label",
    "confidence",
    "low_freq",
    "high_freq",
    "source",
    "status",
    "note",
    "created",
    "modified",
)

_DTYPES: Final = {
    "recording": object,
    "onset": np.float64,
    "offset": np.float64,
    "label": object,
    "confidence": np.float64,
    "low_freq": np.float64,
    "high_freq": np.float64,
    "source": object,
    "status": object,
    "note": object,
    "created": np.float64,
    "modified": np.float64,
}

_DEFAULTS: Final = {
    "recording": "",
    "confidence": np.nan,
    "low_freq": np.nan,
    "high_freq": np.nan,
    "source": HUMAN,
    "status": ADDED,
    "note": "",
}


def empty_events() -> pd.DataFrame:
    """An events frame with no rows and the schema's columns and dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=_DTYPES[c]) for c in EVENT_COLUMNS})


def make_events(data: pd.DataFrame | list[dict] | None = None, **defaults) -> pd.DataFrame:
    """Normalise rows into the event schema.

    Missing optional columns get defaults (``defaults`` overrides them, e.g.
    ``recording="a.wav"``); onset, offset and label are required. Extra columns are
    dropped. Rows keep their order; the index is reset.
    """
    if data is None:
        return empty_events()
    frame = pd.DataFrame(data).copy()
    if frame.empty and not len(frame.columns):
        return empty_events()
    missing = [c for c in ("onset", "offset", "label") if c not in frame.columns]
    if missing:
        raise ValueError(f"events need the columns {missing}")
    now = time.time()
    fill = {**_DEFAULTS, "created": now, "modified": now, **defaults}
    for column in EVENT_COLUMNS:
        if column not in frame.columns:
            frame[column] = fill[column]
        elif column in defaults:
            frame[column] = frame[column].where(frame[column].notna(), defaults[column])
    frame = frame.loc[:, list(EVENT_COLUMNS)].reset_index(drop=True)
    for column, dtype in _DTYPES.items():
        if dtype is object:
            frame[column] = frame[column].astype(object)
        else:
            frame[column] = frame[column].astype(dtype)
    frame["note"] = frame["note"].where(frame["note"].notna(), "")
    return frame
