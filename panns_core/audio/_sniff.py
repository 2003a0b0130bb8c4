"""Look at a file's first bytes to explain why libsndfile refused it, and check RIFF sizes.

libsndfile's own messages are terse ("Format not recognised", "Malformed 'fmt ' chunk" for
a WAV whose codec it lacks). Recognising the container lets us tell the user whether the
file is not audio at all or audio in an encoding we cannot decode.
"""

from __future__ import annotations

import struct
from pathlib import Path

# WAV format tags libsndfile decodes (PCM, ADPCM, float, A-law, mu-law, IMA, GSM, G.721,
# MPEG layer II/III, extensible).
_WAV_SUPPORTED_TAGS = {0x0001, 0x0002, 0x0003, 0x0006, 0x0007, 0x0011, 0x0031, 0x0040,
                       0x0050, 0x0055, 0xFFFE}
_WAV_TAG_NAMES = {
    0x0092: "Dolby AC-3 (S/PDIF)",
    0x00FF: "AAC",
    0x0160: "WMA v1",
    0x0161: "WMA",
    0x0162: "WMA Pro",
    0x0163: "WMA Lossless",
    0x1610: "AAC (ADTS)",
    0x2000: "AC-3",
    0x2001: "DTS",
    0x674F: "Vorbis",
    0x6750: "Vorbis",
    0x6751: "Vorbis",
}


def _head(path: Path, n: int = 64) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return b""


def unsupported_container(path: Path) -> str | None:
    """Name the audio container/codec if the file is audio libsndfile cannot decode, else None."""
    head = _head(path)
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "MP4/M4A (AAC or ALAC)"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "ASF/WMA"
    if head.startswith(b"#!AMR"):
        return "AMR"
    if head.startswith(b"MAC "):
        return "Monkey's Audio (APE)"
    if head.startswith(b"wvpk"):
        return "WavPack"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "Matroska/WebM"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        tag = wav_format_tag(path)
        if tag is not None and tag not in _WAV_SUPPORTED_TAGS:
            name = _WAV_TAG_NAMES.get(tag, "an unknown codec")
            return f"WAV with {name} data (format tag 0x{tag:04X})"
    return None


def _riff_chunks(path: Path):
    """Yield (chunk_id, declared_size, data_offset, file_size) of a little-endian RIFF WAVE."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            hdr = f.read(8)
            if len(hdr) < 8:
                return
            cid, csize = hdr[:4], struct.unpack("<I", hdr[4:])[0]
            yield cid, csize, pos + 8, size, f
            pos += 8 + csize + (csize & 1)


def wav_format_tag(path: Path) -> int | None:
    """The format tag of a RIFF WAVE's fmt chunk, or None if there is none."""
    try:
        for cid, csize, offset, _size, f in _riff_chunks(path):
            if cid == b"fmt " and csize >= 2:
                f.seek(offset)
                return struct.unpack("<H", f.read(2))[0]
    except (OSError, struct.error):
        return None
    return None


def wav_truncation(path: Path) -> tuple[int, int] | None:
    """(declared, present) data bytes if a RIFF WAVE's data chunk is cut short, else None.

    A declared size of 0 or 0xFFFFFFFF is a writer's placeholder (streamed or unfinished
    recording), not a promise, so it never counts as truncation.
    """
    try:
        for cid, csize, offset, size, _f in _riff_chunks(path):
            if cid == b"data":
                present = size - offset
                if csize in (0, 0xFFFFFFFF) or present >= csize:
                    return None
                return csize, present
    except OSError:
        return None
    return None
