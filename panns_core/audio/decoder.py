"""Decode a file with libsndfile into mono float32 blocks at its own rate.

Two libsndfile quirks (soundfile 0.14 wheel, libsndfile 1.2.2) shape this module:

* soundfile's ``SoundFile.read`` calls ``sf_seek`` before and after every read to track
  the position. For MP3, libsndfile turns each of those into an mpg123 seek, and seeking
  in a VBR MP3 can corrupt everything decoded afterwards (zeros or wrong frames; a
  sine or a file with silent passages shows it). So blocks are read with libsndfile's
  ``sf_readf_float`` directly, which never seeks, and an MP3 is never seeked at all: to
  start later in an MP3 we decode from the beginning and discard.
* A WAV whose header promises more data than the file holds is read silently up to the
  end of the file. We compare the RIFF data size with the file size ourselves.

Every failure becomes an :class:`~panns_core.errors.AudioError` naming the file and what
to do; NaN/Inf samples are set to 0 with an :class:`~panns_core.errors.AudioWarning`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from panns_core.audio._sniff import unsupported_container, wav_truncation
from panns_core.errors import AudioError, AudioWarning

try:  # soundfile's cffi handle on libsndfile; see the module docstring for why we need it.
    from soundfile import _ffi, _snd
except ImportError:  # pragma: no cover - a future soundfile without these names
    _ffi = _snd = None

CONVERT_HINT = ("Convert it to WAV or FLAC (for example `ffmpeg -i INPUT output.flac`) and "
                "open that.")
_MP3_FRAME_SLACK = 2 * 1152  # libsndfile's MP3 frame count may be an estimate


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header without decoding the audio.

    ``frames`` is libsndfile's count at the file's own rate; for MP3 it can be an estimate.
    """

    path: Path
    duration: float
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str


def _check_path(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"Audio file not found: {path}. Check the path and that the drive "
                         "is mounted.")
    if path.is_dir():
        raise AudioError(f"{path} is a folder, not an audio file. Choose a file inside it.")
    if path.stat().st_size == 0:
        raise AudioError(f"{path} is empty (0 bytes). Record or copy the file again.")


def _open_error(path: Path, exc: Exception) -> AudioError:
    what = unsupported_container(path)
    if what is not None:
        return AudioError(f"Cannot read {path}: it is {what}, an encoding this program cannot "
                          f"decode. {CONVERT_HINT}")
    text = str(exc)
    if "not recognised" in text.lower() or "unknown format" in text.lower():
        return AudioError(f"Cannot read {path}: it is not an audio file in a format this program "
                          "knows (WAV, FLAC, OGG, MP3, AIFF, ...). If it is audio in another "
                          f"format, {CONVERT_HINT[0].lower()}{CONVERT_HINT[1:]}")
    if "system error" in text.lower() or isinstance(exc, OSError):
        return AudioError(f"Cannot open {path}: {text}. Check that the file is readable.")
    return AudioError(f"Cannot read {path}: the file is damaged or unreadable ({text}). "
                      f"{CONVERT_HINT}")


class Decoder:
    """An open audio file that yields mono float32 frames at its own rate.

    ``channel=None`` downmixes by the mean of all channels; an int picks that channel.
    Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike[str], channel: int | None = None) -> None:
        self.path = Path(path)
        _check_path(self.path)
        try:
            self._file = sf.SoundFile(self.path)
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise _open_error(self.path, exc) from exc
        f = self._file
        try:
            self.info = AudioInfo(path=self.path, duration=f.frames / f.samplerate,
                                  sample_rate=int(f.samplerate), channels=int(f.channels),
                                  frames=int(f.frames), format=f.format, subtype=f.subtype)
            self._check_header()
            if channel is not None and not (0 <= channel < self.info.channels):
                raise AudioError(f"{self.path} has {self.info.channels} channel(s); channel "
                                 f"{channel} does not exist. Choose 0 to "
                                 f"{self.info.channels - 1}, or none to mix all channels.")
        except BaseException:
            f.close()
            raise
        self.channel = channel
        self.position = 0  # next frame to decode, at the file's rate
        self._warned_nonfinite = False
        self._is_mp3 = self.info.format == "MP3"

    # -- header checks -------------------------------------------------------------------
    def _check_header(self) -> None:
        info = self.info
        if info.frames == 0:
            raise AudioError(f"{self.path} contains no audio samples (the file may be cut "
                             "short or still being written). Record or export it again.")
        if info.format in ("WAV", "WAVEX"):
            cut = wav_truncation(self.path)
            if cut is not None:
                declared, present = cut
                raise AudioError(
                    f"{self.path} is truncated: its header declares {declared} bytes of audio "
                    f"but only {present} are in the file ({present / declared:.0%}). Copy or "
                    "download it again; to keep what is there, rewrite it with a tool that "
                    "repairs headers (for example `sox INPUT output.wav`).")

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate

    # -- reading -------------------------------------------------------------------------
    def _read_raw(self, n: int) -> np.ndarray:
        f = self._file
        if _snd is None or _ffi is None:  # pragma: no cover - fallback, correct except MP3
            return f.read(n, dtype="float32", always_2d=True)
        buf = np.empty((n, self.info.channels), dtype=np.float32)
        got = _snd.sf_readf_float(f._file, _ffi.cast("float *", buf.ctypes.data), n)
        err = _snd.sf_error(f._file)
        if err:
            msg = _ffi.string(_snd.sf_strerror(f._file)).decode("utf-8", "replace")
            raise AudioError(f"Cannot decode {self.path} at {self.position / self.sample_rate:.2f}"
                             f" s: {msg}. The file is damaged or truncated. {CONVERT_HINT}")
        return buf[:max(got, 0)]

    def read(self, n: int) -> np.ndarray:
        """Up to ``n`` mono float32 frames; an empty array at the end of the file."""
        if self._file.closed:
            raise ValueError("read from a closed Decoder")
        block = self._read_raw(n)
        if len(block) == 0:
            self._at_end()
            return np.zeros(0, dtype=np.float32)
        if not np.isfinite(block).all():
            self._repair(block)
        self.position += len(block)
        if self.channel is not None:
            return np.ascontiguousarray(block[:, self.channel])
        if block.shape[1] == 1:
            return block[:, 0]
        return block.mean(axis=1, dtype=np.float32)

    def _repair(self, block: np.ndarray) -> None:
        bad = ~np.isfinite(block)
        if not self._warned_nonfinite:
            first = self.position + int(np.argmax(bad.any(axis=1)))
            warnings.warn(f"{self.path} contains NaN or infinite samples (first at "
                          f"{first / self.sample_rate:.3f} s); they were replaced by 0. The "
                          "file may be damaged.", AudioWarning, stacklevel=4)
            self._warned_nonfinite = True
        block[bad] = 0.0

    def _at_end(self) -> None:
        declared, got = self.info.frames, self.position
        if got >= declared:
            return
        if self._is_mp3:
            if got < declared - _MP3_FRAME_SLACK:
                warnings.warn(f"{self.path} ended after {got / self.sample_rate:.2f} s but its "
                              f"header says {declared / self.sample_rate:.2f} s; it may be "
                              "truncated. Loaded what is there.", AudioWarning, stacklevel=4)
            return
        if self.info.format == "OGG":  # frame count comes from the last page: always exact
            return
        raise AudioError(f"{self.path} is truncated or damaged: it ends after "
                         f"{got / self.sample_rate:.2f} s of the {declared / self.sample_rate:.2f}"
                         f" s its header declares. Copy or export it again. {CONVERT_HINT}")

    def seek(self, frame: int) -> None:
        """Position at ``frame`` (file rate). MP3s are decoded and discarded up to it."""
        frame = max(0, int(frame))
        if frame == self.position:
            return
        if self._is_mp3 or not self._file.seekable():
            if frame < self.position:
                raise ValueError("cannot seek backwards in this file")
            while self.position < frame:
                if len(self.read(min(1 << 16, frame - self.position))) == 0:
                    break
            return
        if frame >= self.info.frames:
            frame = self.info.frames
        self._file.seek(frame)
        self.position = frame

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Decoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
