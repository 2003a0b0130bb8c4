"""Segment-wise detection scores: the output of inference, the input of post-processing.

A :class:`Scores` holds one probability per class for every *segment*, the model's true
time resolution (32 frames = 0.32 s for CNN14 SED at 32 kHz, hop 320). Segment ``i``
starts at ``i * segment_seconds``; the last segment runs to the end of the recording,
exactly as the reference framewise output repeats the last segment to the last frame.
Expand to frames only for display (:meth:`Scores.framewise`).

Scores save to and load from ``.npz`` (no pickles), export to the sed_scores_eval TSV
layout (``onset offset <class names...>``, one row per segment), and are cached under
:func:`panns_core.paths.cache_dir` keyed by audio content hash, model id and precision.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import FormatError

FORMAT_VERSION = 1
FP32 = "fp32"


def channel_hash(audio_hash: str, channel: int | None) -> str:
    """The audio identity of one channel of a file: the file's hash with ``-chN``
    (N from 1); the file's own hash for the mix of its channels."""
    return audio_hash if channel is None else f"{audio_hash}-ch{int(channel) + 1}"


def channel_of(audio_hash: str) -> int | None:
    """The channel (from 0) an audio hash names; None for the mix."""
    head, _, tail = (audio_hash or "").rpartition("-ch")
    return int(tail) - 1 if head and tail.isdigit() else None


@dataclass
class Scores:
    """Segment-wise class probabilities of one recording.

    ``probabilities`` is float32 of shape (n_segments, n_classes); ``duration`` is the
    recording length in seconds (defaults to ``n_segments * segment_seconds``);
    ``precision`` says which inference path produced them ("fp32" is exact, anything
    else, e.g. "bf16", is the opt-in fast path).
    """

    probabilities: np.ndarray
    segment_seconds: float
    labels: list[str]
    model_id: str = ""
    audio_hash: str = ""
    duration: float | None = None
    precision: str = FP32
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        probs = np.asarray(self.probabilities, dtype=np.float32)
        if probs.ndim != 2:
            raise ValueError(f"probabilities must be 2-d (segments, classes), got {probs.shape}")
        self.probabilities = probs
        self.labels = [str(label) for label in self.labels]
        if len(self.labels) != probs.shape[1]:
            raise ValueError(f"{len(self.labels)} labels for {probs.shape[1]} probability columns")
        self.segment_seconds = float(self.segment_seconds)
        if not self.segment_seconds > 0:
            raise ValueError("segment_seconds must be positive")
        if self.duration is None:
            self.duration = probs.shape[0] * self.segment_seconds
        self.duration = float(self.duration)
        if probs.shape[0] and self.duration <= (probs.shape[0] - 1) * self.segment_seconds:
            raise ValueError(
                f"duration {self.duration} s ends before the last segment starts "
                f"({(probs.shape[0] - 1) * self.segment_seconds} s)"
            )

    # -- shape and time axis -------------------------------------------------------
    @property
    def n_segments(self) -> int:
        return int(self.probabilities.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.probabilities.shape[1])

    @property
    def timestamps(self) -> np.ndarray:
        """Segment boundaries in seconds, shape (n_segments + 1,); the last is the duration."""
        edges = np.arange(self.n_segments + 1, dtype=np.float64) * self.segment_seconds
        if self.n_segments:
            edges[-1] = self.duration
        return edges

    @property
    def times(self) -> np.ndarray:
        """Onset of every segment in seconds."""
        return self.timestamps[:-1]

    @property
    def offsets(self) -> np.ndarray:
        """Offset of every segment in seconds (the last one is the duration)."""
        return self.timestamps[1:]

    def class_index(self, label: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise KeyError(f"no class named {label!r} in these scores") from None

    def select(self, labels: Sequence[str]) -> Scores:
        """The same scores restricted to ``labels`` (in that order)."""
        idx = [self.class_index(label) for label in labels]
        return Scores(
            self.probabilities[:, idx],
            self.segment_seconds,
            [self.labels[i] for i in idx],
            model_id=self.model_id,
            audio_hash=self.audio_hash,
            duration=self.duration,
            precision=self.precision,
            metadata=dict(self.metadata),
        )

    def framewise(self, hop_seconds: float) -> np.ndarray:
        """Probabilities expanded to frames of ``hop_seconds`` (for display only)."""
        n_frames = int(np.floor(self.duration / hop_seconds + 1e-9)) + 1
        ratio = hop_seconds / self.segment_seconds
        idx = np.floor(np.arange(n_frames) * ratio + 1e-9).astype(np.int64)
        return self.probabilities[np.clip(idx, 0, max(self.n_segments - 1, 0))]

    # -- npz --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write to ``path`` (.npz, no pickles) atomically; returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            "format_version": np.int64(FORMAT_VERSION),
            "probabilities": self.probabilities,
            "segment_seconds": np.float64(self.segment_seconds),
            "labels": np.array(self.labels, dtype=np.str_),
            "model_id": np.array(self.model_id, dtype=np.str_),
            "audio_hash": np.array(self.audio_hash, dtype=np.str_),
            "duration": np.float64(self.duration),
            "precision": np.array(self.precision, dtype=np.str_),
            "metadata_keys": np.array(list(self.metadata), dtype=np.str_),
            "metadata_values": np.array([str(v) for v in self.metadata.values()], dtype=np.str_),
        }
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".scores-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez_compressed(handle, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Scores:
        """Read scores written by :meth:`save`; FormatError if the file is not one."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                version = int(data["format_version"])
                if version > FORMAT_VERSION:
                    raise FormatError(
                        f"{path}: scores format {version} is newer than this program "
                        f"understands ({FORMAT_VERSION}); update panns-annotator."
                    )
                keys = [str(k) for k in data["metadata_keys"]]
                values = [str(v) for v in data["metadata_values"]]
                return cls(
                    data["probabilities"],
                    float(data["segment_seconds"]),
                    [str(label) for label in data["labels"]],
                    model_id=str(data["model_id"]),
                    audio_hash=str(data["audio_hash"]),
                    duration=float(data["duration"]),
                    precision=str(data["precision"]),
                    metadata=dict(zip(keys, values)),
                )
        except FormatError:
            raise
        except FileNotFoundError:
            raise FormatError(f"{path}: no such scores file.") from None
        except (OSError, KeyError, ValueError) as error:
            raise FormatError(
                f"{path}: not a scores file written by panns-annotator ({error}); "
                "delete it and run detection again."
            ) from None

    # -- sed_scores_eval layout ---------------------------------------------------------
    def to_dataframe(self):
        """A pandas frame in the sed_scores_eval layout: onset, offset, one column per class."""
        import pandas as pd

        edges = self.timestamps
        frame = pd.DataFrame(self.probabilities.astype(np.float64), columns=self.labels)
        frame.insert(0, "offset", edges[1:])
        frame.insert(0, "onset", edges[:-1])
        return frame

    def write_tsv(self, path: str | os.PathLike) -> Path:
        """Write the sed_scores_eval TSV (``onset offset <classes...>``, one row per segment)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        bad = [label for label in self.labels if "\\" in label or "\t" in label]
        if bad:
            raise FormatError(
                f"class names {bad} contain a tab or backslash, which the sed_scores_eval "
                "layout cannot hold; rename those classes."
            )
        self.to_dataframe().to_csv(path, sep="\t", index=False, float_format="%.9g")
        return path

    @classmethod
    def read_tsv(
        cls, path: str | os.PathLike, *, model_id: str = "", audio_hash: str = ""
    ) -> Scores:
        """Read a sed_scores_eval TSV with equal-length segments (the last may be shorter)."""
        import pandas as pd

        path = Path(path)
        try:
            frame = pd.read_csv(path, sep="\t")
        except (OSError, ValueError) as error:
            raise FormatError(f"{path}: cannot read scores TSV ({error}).") from None
        columns = list(frame.columns)
        if len(columns) < 3 or columns[:2] != ["onset", "offset"] or frame.empty:
            raise FormatError(
                f"{path}: a scores TSV needs the columns onset, offset and one per class, "
                f"and at least one row; found {columns[:5]}."
            )
        onsets = frame["onset"].to_numpy(np.float64)
        offsets = frame["offset"].to_numpy(np.float64)
        if not np.allclose(offsets[:-1], onsets[1:]):
            raise FormatError(f"{path}: each row's onset must equal the previous row's offset.")
        step = onsets[1] - onsets[0] if len(onsets) > 1 else offsets[0] - onsets[0]
        if len(onsets) > 1 and not np.allclose(np.diff(onsets), step, atol=1e-6):
            raise FormatError(f"{path}: segments are not evenly spaced.")
        return cls(
            frame[columns[2:]].to_numpy(np.float32),
            float(step),
            columns[2:],
            model_id=model_id,
            audio_hash=audio_hash,
            duration=float(offsets[-1]),
        )


# -- cache ------------------------------------------------------------------------------
class ScoreCache:
    """Scores on disk keyed by (audio content hash, model id, precision).

    The fp32 path is exact, so fp32 and fast-path scores are cached apart.
    """

    def __init__(self, directory: str | os.PathLike | None = None) -> None:
        if directory is None:
            from ..paths import cache_dir

            directory = cache_dir() / "scores"
        self.directory = Path(directory)

    def path_for(self, audio_hash: str, model_id: str, precision: str = FP32) -> Path:
        if not audio_hash or not model_id:
            raise ValueError("a cache key needs both an audio hash and a model id")
        key = hashlib.sha256(f"{audio_hash}\0{model_id}\0{precision}".encode()).hexdigest()
        return self.directory / f"{key[:40]}.npz"

    def get(self, audio_hash: str, model_id: str, precision: str = FP32) -> Scores | None:
        """Cached scores, or None when absent or unreadable (a broken entry is removed)."""
        path = self.path_for(audio_hash, model_id, precision)
        if not path.exists():
            return None
        try:
            scores = Scores.load(path)
        except FormatError:
            path.unlink(missing_ok=True)
            return None
        if (scores.audio_hash, scores.model_id, scores.precision) != (
            audio_hash,
            model_id,
            precision,
        ):
            return None
        return scores

    def put(self, scores: Scores) -> Path:
        """Store ``scores`` (which must carry audio_hash and model_id)."""
        return scores.save(self.path_for(scores.audio_hash, scores.model_id, scores.precision))

    def clear(self) -> int:
        """Delete every cached entry; returns how many were removed."""
        if not self.directory.exists():
            return 0
        removed = 0
        for entry in self.directory.glob("*.npz"):
            entry.unlink(missing_ok=True)
            removed += 1
        return removed
