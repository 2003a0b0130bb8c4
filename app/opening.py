"""What a path given to the window is (project, folder or audio file), adding a
folder's audio files to the project on a worker, and hashing added files on a worker
(so a file moved later is found again by its content).

``panns-annotator birds.panns``, a ``.panns`` file dropped on the window and one opened
from a file manager (the desktop entry passes ``%f``) all open that project; a folder
adds the audio files under it (recursively, by extension); anything else is an audio
file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from panns_core.errors import PannsError

from .workers import Progress

PROJECT_SUFFIXES = (".panns", ".sqlite", ".sqlite3", ".db")
AUDIO_SUFFIXES = frozenset((".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff",
                            ".aifc", ".w64", ".caf", ".au", ".snd", ".rf64"))
_SQLITE_MAGIC = b"SQLite format 3\x00"


def is_project(path: str | os.PathLike) -> bool:
    """A project file: ends in .panns (existing or not), or is an SQLite file with a
    project suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".panns":
        return True
    if suffix not in PROJECT_SUFFIXES or not path.is_file():
        return False
    try:
        with open(path, "rb") as handle:
            return handle.read(16) == _SQLITE_MAGIC
    except OSError:
        return False


def is_audio(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in AUDIO_SUFFIXES


def audio_files_in(folder: str | os.PathLike) -> list[Path]:
    """The audio files under ``folder`` (recursive, hidden folders skipped), sorted."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root) / f for f in files if is_audio(f) and not f.startswith(".")]
    return sorted(found)


@dataclass
class Sorted:
    """Paths given to the window, by kind."""

    projects: list[Path] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)
    audio: list[Path] = field(default_factory=list)


def sort_paths(paths: Iterable[str | os.PathLike]) -> Sorted:
    out = Sorted()
    for p in paths:
        path = Path(p).expanduser()
        if path.is_dir():
            out.folders.append(path)
        elif is_project(path):
            out.projects.append(path)
        else:
            out.audio.append(path)
    return out


@dataclass
class Added:
    """What :func:`add_files_job` did: new recording ids and files it could not read."""

    ids: list[int] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def add_files_job(store, paths: list[Path], cancel=None) -> Iterator[Progress]:
    """Add ``paths`` to ``store`` one by one (header only), yielding progress; a file
    that is not readable audio is skipped and reported. Returns an :class:`Added`."""
    added = Added()
    total = max(1, len(paths))
    for i, path in enumerate(paths):
        if cancel is not None and cancel.is_set():
            break
        try:
            added.ids.append(store.add_recording(path, hash=False))
        except PannsError as error:
            added.skipped.append((path, str(error)))
        if i % 5 == 0 or i == len(paths) - 1:
            yield Progress((i + 1) / total, f"{i + 1} of {len(paths)}: {path.name}")
    return added


def hash_job(store, cancel=None) -> Iterator[Progress]:
    """Take the content hash of every recording that has none (whole-file reads, so on
    a worker); a missing or unreadable file is left for later."""
    from panns_core.audio import file_sha256

    todo = [r for r in store.recordings() if not r.sha256]
    for i, rec in enumerate(todo):
        if cancel is not None and cancel.is_set():
            return
        try:
            store.set_recording_hash(rec.id, file_sha256(rec.path))
        except (OSError, PannsError):
            continue
        yield Progress((i + 1) / len(todo), rec.name)
