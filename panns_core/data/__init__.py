"""The data files the program ships: AudioSet labels, the checkpoint catalogue, the demo
recording, the icon and the desktop entry. They are package data of this package, so a
source checkout and an installed wheel find them in the same place."""

from __future__ import annotations

from pathlib import Path

from ..errors import PannsError

_HERE = Path(__file__).resolve().parent


def resources_dir() -> Path:
    if (_HERE / "class_labels_indices.csv").is_file():
        return _HERE
    raise PannsError(
        "The program's data files (panns_core/data) are missing. Reinstall panns-annotator."
    )


def resource_path(name: str) -> Path:
    """Path of a shipped data file, e.g. ``resource_path("checkpoints.json")``."""
    path = resources_dir() / name
    if not path.exists():
        raise PannsError(f"Shipped data file {name!r} is missing. Reinstall panns-annotator.")
    return path
