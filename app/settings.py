"""Small app settings (recent files, last project, view choices) as JSON in config_dir().

A JSON file, not QSettings, so a test's PANNS_ANNOTATOR_HOME isolates it and the
user can read it. Writes go through a temporary file and a rename.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from panns_core.paths import config_dir, data_dir

MAX_RECENT = 12


def _path() -> Path:
    return config_dir() / "annotator.json"


def load() -> dict[str, Any]:
    try:
        return json.loads(_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def save(values: dict[str, Any]) -> None:
    path = _path()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(values, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)


def value(key: str, default: Any = None) -> Any:
    return load().get(key, default)


def set_value(key: str, new: Any) -> None:
    if isinstance(new, bytes | bytearray) or hasattr(new, "toBase64"):
        return  # binary Qt state (geometry) is not worth a JSON round trip
    values = load()
    values[key] = new
    save(values)


def recent_files() -> list[str]:
    return [p for p in value("recent_files", []) if isinstance(p, str)]


def add_recent_file(path: str | Path) -> None:
    text = str(Path(path).resolve())
    files = [text] + [p for p in recent_files() if p != text]
    set_value("recent_files", files[:MAX_RECENT])


def default_project_path() -> Path:
    """The last project, else ``<data dir>/projects/default.panns``."""
    last = value("last_project")
    if last and Path(last).parent.is_dir():
        return Path(last)
    return data_dir() / "projects" / "default.panns"


def first_start() -> bool:
    """True until :func:`mark_started` was called once."""
    return not value("started_before", False)


def mark_started() -> None:
    set_value("started_before", True)


MAX_PROJECT_STATES = 40


def _project_key(path: str | Path) -> str:
    return str(Path(path).expanduser().resolve())


def project_state(path: str | Path) -> dict[str, Any]:
    """How the window showed the project at ``path`` when it was last left (or {})."""
    states = value("project_states", {})
    state = states.get(_project_key(path)) if isinstance(states, dict) else None
    return state if isinstance(state, dict) else {}


def set_project_state(path: str | Path, state: dict[str, Any]) -> None:
    """Remember ``state`` for the project at ``path`` (the newest few projects are kept)."""
    states = value("project_states", {})
    states = dict(states) if isinstance(states, dict) else {}
    key = _project_key(path)
    states.pop(key, None)
    states[key] = state
    while len(states) > MAX_PROJECT_STATES:
        states.pop(next(iter(states)))
    set_value("project_states", states)
