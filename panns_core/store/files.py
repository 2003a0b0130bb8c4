"""Facts about audio files for the store: content hash and audio properties."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import AudioError


def sha256_of(path: str | os.PathLike, block: int = 1 << 20) -> str:
    """sha256 of the file's bytes, read in blocks (a long recording never sits in memory)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(block):
                digest.update(chunk)
    except OSError as error:
        raise AudioError(f"Cannot read {path}: {error.strerror or error}.") from None
    return digest.hexdigest()


@dataclass(frozen=True)
class AudioFacts:
    duration: float
    sample_rate: int
    channels: int


def audio_facts(path: str | os.PathLike) -> AudioFacts:
    """Duration, rate and channels without decoding (panns_core.audio when present)."""
    try:
        from ..audio import audio_info
    except ImportError:
        audio_info = None
    if audio_info is not None:
        info = audio_info(path)
        return AudioFacts(float(info.duration), int(info.sample_rate), int(info.channels))
    import soundfile

    try:
        info = soundfile.info(str(path))
    except (RuntimeError, OSError) as error:
        raise AudioError(
            f"{Path(path)} is not an audio file this program can read ({error}). "
            "Convert it to WAV or FLAC and add it again."
        ) from None
    return AudioFacts(float(info.duration), int(info.samplerate), int(info.channels))
