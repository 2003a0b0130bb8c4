"""Where the application keeps its data.

``PANNS_ANNOTATOR_HOME`` overrides every location (portable installs, tests): data,
cache and config then live in ``$PANNS_ANNOTATOR_HOME/{data,cache,config}``. Otherwise
the platform's user directories from appdirs are used. Nothing is created at import.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "panns-annotator"
APP_AUTHOR = "panns-annotator"
HOME_ENV = "PANNS_ANNOTATOR_HOME"


def _base(kind: str) -> Path:
    override = os.environ.get(HOME_ENV)
    if override:
        return Path(override).expanduser() / kind
    import appdirs

    func = {
        "data": appdirs.user_data_dir,
        "cache": appdirs.user_cache_dir,
        "config": appdirs.user_config_dir,
    }[kind]
    return Path(func(APP_NAME, APP_AUTHOR))


def data_dir(create: bool = True) -> Path:
    """User data: downloaded, imported and fine-tuned models, recordings."""
    return _ensure(_base("data"), create)


def cache_dir(create: bool = True) -> Path:
    """Caches that can be deleted at any time (score caches, envelopes)."""
    return _ensure(_base("cache"), create)


def config_dir(create: bool = True) -> Path:
    """Settings."""
    return _ensure(_base("config"), create)


def models_dir(create: bool = True) -> Path:
    """The model registry's folder."""
    return _ensure(data_dir(create) / "models", create)


def _ensure(path: Path, create: bool) -> Path:
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
