"""A WAV file that can be appended to and stays readable if the process dies.

libsndfile writes a WAV header with a data size of zero and fixes it only on close;
strict readers (Python's ``wave``, many editors) then see an empty file after a crash.
:class:`CrashSafeWav` rewrites the header (``SFC_UPDATE_HEADER_NOW``, a seek and a
44-byte write) whenever ``sync()`` is called, so after a SIGKILL the file holds, and its
header announces, everything up to the last sync. The recorder syncs every quarter
second of audio and whenever the queue runs empty.

The data of a killed process is in the page cache and survives; ``durable=True`` adds an
fsync per sync for power loss.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np

from ..errors import AudioError

_SFC_UPDATE_HEADER_NOW = 0x1060
SUBTYPES = {"int16": "PCM_16", "int32": "PCM_32", "float32": "FLOAT"}


def _describe_write_failure(path: Path, seconds: float, error: BaseException) -> str:
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    kept = f"Everything recorded up to {seconds:.2f} s is kept in {path}."
    if free is not None and free < 1 << 20:
        return (
            f"The disk holding {path.parent} is full ({free} bytes free), so the recording "
            f"stopped. {kept} Free some space or record to another folder."
        )
    return (
        f"Writing the recording to {path} failed ({error}), so it stopped. {kept} "
        "Check the disk and the folder's permissions, or record to another folder."
    )


class CrashSafeWav:
    """Append-only WAV writer whose header is brought up to date by :meth:`sync`."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        sample_rate: int,
        channels: int,
        dtype: str = "int16",
        *,
        durable: bool = False,
    ) -> None:
        import soundfile

        if dtype not in SUBTYPES:
            raise AudioError(f"Cannot record {dtype} samples; use one of {', '.join(SUBTYPES)}.")
        self.path = Path(path)
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.dtype = np.dtype(dtype)
        self.durable = durable
        self.frames = 0
        self._synced = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = soundfile.SoundFile(
                self.path, "w", self.sample_rate, self.channels, SUBTYPES[dtype], format="WAV"
            )
        except (OSError, RuntimeError) as error:
            raise AudioError(
                f"Cannot create the recording file {self.path}: {error}. Check that the "
                "folder exists, is writable and has free space, or choose another file."
            ) from None
        self.sync()

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate

    @property
    def unsynced_frames(self) -> int:
        return self.frames - self._synced

    def append(self, block: np.ndarray) -> None:
        """Write (frames, channels) samples of this file's dtype.

        On a failed write (disk full, I/O error) the header is brought up to date with
        what did get written and AudioError says what happened and what was kept.
        """
        if block.dtype != self.dtype:
            raise TypeError(f"block dtype {block.dtype} != recording dtype {self.dtype}")
        try:
            self._file.write(block)
        except (OSError, RuntimeError) as error:
            self._salvage()
            raise AudioError(_describe_write_failure(self.path, self.seconds, error)) from None
        self.frames += len(block)

    def sync(self) -> None:
        """Rewrite the header so it announces every frame written so far."""
        from soundfile import _ffi, _snd

        _snd.sf_command(self._file._file, _SFC_UPDATE_HEADER_NOW, _ffi.NULL, 0)
        if self.durable:
            self._file.flush()  # sf_write_sync: fsync
        self._synced = self.frames

    def _salvage(self) -> None:
        """After a failed write: header = what is on disk; count what really got there."""
        try:
            self.sync()
        except Exception:  # pragma: no cover - nothing more can be done
            return
        try:
            import soundfile

            self.frames = soundfile.info(str(self.path)).frames
        except Exception:  # pragma: no cover
            pass

    def close(self) -> int:
        """Finish the file; returns the frames it holds."""
        if self._file.closed:
            return self.frames
        try:
            self.sync()
            self._file.close()
        except (OSError, RuntimeError):
            # Closing can fail on a full disk; the header was synced, the data is there.
            pass
        return self.frames


def next_recording_path(folder: str | os.PathLike[str], suffix: str = ".wav") -> Path:
    """``folder/recording-YYYYmmdd-HHMMSS[-n]<suffix>`` that does not exist yet
    (the folder is made)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = folder / f"recording-{stamp}{suffix}"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"recording-{stamp}-{n}{suffix}"
    return path
