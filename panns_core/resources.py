"""Access to the data files shipped in ``resources/``.

In an installed distribution they live in the ``panns_core._resources`` package; in a
source checkout they are the top-level ``resources/`` folder next to ``panns_core/``.
"""

from __future__ import annotations

from pathlib import Path

from .errors import PannsError

_HERE = Path(__file__).resolve().parent
_CANDIDATES = (_HERE / "_resources", _HERE.parent / "resources")


def resources_dir() -> Path:
    for candidate in _CANDIDATES:
        if (candidate / "class_labels_indices.csv").is_file():
            return candidate
    raise PannsError(
        "The program's data files (resources/) are missing. Reinstall panns-annotator."
    )


def resource_path(name: str) -> Path:
    """Path of a shipped data file, e.g. ``resource_path("checkpoints.json")``."""
    path = resources_dir() / name
    if not path.exists():
        raise PannsError(f"Shipped data file {name!r} is missing. Reinstall panns-annotator.")
    return path
