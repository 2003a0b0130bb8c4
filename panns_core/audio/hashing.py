"""Content hashes of files, for caches and the project store.

* :func:`file_sha256` reads every byte: the identity of a recording (same hash, same
  content, wherever the file lives). Use it for anything stored or shared.
* :func:`quick_hash` reads the size and at most the first and last MiB: a cheap check
  that a file has not changed since it was last hashed. Two different files can share a
  quick hash, so never use it as an identity.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from panns_core.errors import AudioError

_MIB = 1 << 20


def _open(path: Path):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise AudioError(f"File not found: {path}. Check the path.") from None
    except IsADirectoryError:
        raise AudioError(f"{path} is a folder, not a file.") from None
    except OSError as exc:
        raise AudioError(f"Cannot read {path}: {exc.strerror}. Check its permissions.") from exc


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of the file's bytes, read in streaming fashion (any file size)."""
    with _open(Path(path)) as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def quick_hash(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of (size, first MiB, last MiB): a fast change check, not an identity."""
    path = Path(path)
    with _open(path) as f:
        size = os.fstat(f.fileno()).st_size
        h = hashlib.sha256(f"{size}:".encode())
        h.update(f.read(_MIB))
        if size > 2 * _MIB:
            f.seek(size - _MIB)
            h.update(f.read(_MIB))
        elif size > _MIB:
            h.update(f.read())
    return h.hexdigest()
