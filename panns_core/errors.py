"""The one exception family of panns_core.

Every error a user can cause (bad file, wrong checkpoint, broken annotation file, ...)
is raised as a subclass of :class:`PannsError` whose message says what was wrong and
what to do. The GUI shows ``str(error)``; the CLI prints it and exits non-zero.
"""

from __future__ import annotations


class PannsError(Exception):
    """Base class of every error panns_core raises on purpose."""


class AudioError(PannsError):
    """An audio file is missing, empty, unreadable, truncated or not audio."""


class CheckpointError(PannsError):
    """A checkpoint file cannot be loaded or matches no known architecture."""


class ModelNotFoundError(CheckpointError):
    """A model name is neither installed nor in the catalogue."""


class DownloadError(PannsError):
    """A download failed, was cancelled, or delivered the wrong bytes."""


class FormatError(PannsError):
    """An annotation or score file is malformed (the message names file and line)."""


class StoreError(PannsError):
    """The project database cannot be opened, migrated or written."""


class ProjectFileError(StoreError):
    """A project file failed the checks made before it is opened (not an SQLite file,
    damaged, written by a newer version, or holding schema objects this program did not
    make). Nothing was written to it. ``salvageable``: ``panns-sed project salvage`` (or
    the window's Salvage button) can copy what is readable into a new project."""

    def __init__(self, message: str, path: str = "", *, salvageable: bool = False) -> None:
        super().__init__(message)
        self.path = path
        self.salvageable = salvageable


class ProjectChangedError(StoreError):
    """Another program (a second window, ``panns-sed``) changed the project since this
    one last read it, so an undo/redo prepared from the old state was not applied."""


class TrainingError(PannsError):
    """Fine-tuning cannot start or cannot go on."""


class DeviceError(PannsError):
    """An audio device or compute device is missing or failed."""


class AudioWarning(UserWarning):
    """Audio was loaded but something was repaired on the way (NaN/Inf samples set to 0,
    a possibly truncated MP3). Not an error: the result is usable."""


class Cancelled(PannsError):
    """Long work was cancelled by the user."""

    def __init__(self, message: str = "Cancelled.") -> None:
        super().__init__(message)


#: import name -> what to ``pip install`` when it is missing
_DISTRIBUTIONS = {
    "pkg_resources": "setuptools<81",
    "PySide6": "PySide6-Essentials",
    "sed_eval": "sed_eval",
    "sed_scores_eval": "sed_scores_eval",
    "dcase_util": "dcase_util",
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
}


def missing_module_message(error: ModuleNotFoundError) -> str:
    """One line that says which package a missing import needs and how to install it."""
    module = (error.name or "").split(".")[0] or "?"
    package = _DISTRIBUTIONS.get(module, module)
    return (f"this needs the Python package {package!r}, which is not installed; install it "
            f"with: pip install '{package}' (or reinstall panns-annotator: pip install .)")
