"""Audio input: decode anything libsndfile reads to mono float32 at a requested rate.

* :func:`audio_info` - header facts, no decoding.
* :func:`load_audio` / :func:`read_range` - a whole file or a time range, resampled with
  soxr (HQ), mixed to mono by the channel mean or one picked channel.
* :func:`iter_blocks` - overlapping blocks from a file of any length in bounded memory;
  the blocks are exact slices of the whole-file result.
* :func:`resample` - soxr HQ on an array.
* :func:`file_sha256` (content identity) and :func:`quick_hash` (cheap change check).

Bad input raises :class:`~panns_core.errors.AudioError`; repaired input (NaN/Inf set to 0)
warns with :class:`~panns_core.errors.AudioWarning`.
"""

from panns_core.audio.blocks import AudioBlock, iter_blocks
from panns_core.audio.decoder import AudioInfo
from panns_core.audio.hashing import file_sha256, quick_hash
from panns_core.audio.loading import (
    RESAMPLE_QUALITY,
    audio_info,
    load_audio,
    read_range,
    resample,
)
from panns_core.errors import AudioError, AudioWarning

__all__ = [
    "RESAMPLE_QUALITY",
    "AudioBlock",
    "AudioError",
    "AudioInfo",
    "AudioWarning",
    "audio_info",
    "file_sha256",
    "iter_blocks",
    "load_audio",
    "quick_hash",
    "read_range",
    "resample",
]
