"""Training material from a project's events: labelled recordings, clips, targets.

What each event status means for training (per class, inside the event's span):

========================  =========================================================
accepted, edited, added   positive (target 1)
rejected                  explicit negative (target 0, weight ``negative_weight``)
proposed                  unknown: not reviewed, so no loss for that class there
(no event)                implicit negative (target 0, weight 1)
========================  =========================================================

Only recordings the user has worked on (at least one positive or rejected event)
are used. Targets are strong, at the model's segment resolution: a segment is
positive when an event covers at least half of it (or half of a shorter event);
a segment an event only grazes gets weight 0 for that class, so boundaries are
not punished either way. Clip (weak) targets follow: positive if any segment is,
unknown if any segment of a negative clip is unknown.

Clips of ``clip_seconds`` are cut around each positive event (centred, then moved
by the time-shift augmentation) and from stretches without events (background).
The validation split is by recording, so no recording is on both sides.

Weak labels (clip tags): a recording may carry only "this class occurs somewhere in
here", without times (e.g. imported from a DCASE weak-label file). A project holds
such a tag as an event spanning the whole recording whose ``source`` is
:data:`CLIP_TAG_SOURCE` (status accepted/added, as any positive). For a tagged class
without timed events in that recording, every segment is unknown (no segment loss)
and the clip target is positive when the clip covers the whole recording (else
unknown), so the recording trains through the clip loss, as in the weak-label SED
recipe; other classes follow the usual rules (implicit negatives). Tag-only
recordings go to training (validation needs times).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import TrainingError
from ..events import ACCEPTED, ADDED, CLIP_TAG_SOURCE, EDITED, PROPOSED, REJECTED

POSITIVE_STATUSES = (ACCEPTED, EDITED, ADDED)


@dataclass(frozen=True)
class LabelledRecording:
    """One recording with its events as arrays of (onset, offset, class index)."""

    key: str
    path: Path
    duration: float
    positives: np.ndarray  # (n, 3) float64: onset, offset, class
    negatives: np.ndarray
    unknown: np.ndarray
    #: classes (indices) tagged for the whole recording without times (weak labels)
    tags: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def weak_classes(self) -> np.ndarray:
        """Tagged classes that have no timed positive event in this recording."""
        strong = set(self.positives[:, 2].astype(int).tolist())
        return np.array([c for c in np.unique(self.tags) if int(c) not in strong], np.int64)

    def reference_events(self, labels: Sequence[str]) -> pd.DataFrame:
        """The positives as events (recording = ``key``) for evaluation."""
        return pd.DataFrame(
            {
                "recording": [self.key] * len(self.positives),
                "onset": self.positives[:, 0],
                "offset": self.positives[:, 1],
                "label": [labels[int(c)] for c in self.positives[:, 2]],
            }
        )


@dataclass(frozen=True)
class Clip:
    """A training window: recording index, nominal start (s), anchor class (-1: background)."""

    recording: int
    start: float
    anchor: int


def _spans(frame: pd.DataFrame, index: Mapping[str, int]) -> np.ndarray:
    if not len(frame):
        return np.zeros((0, 3))
    classes = frame["label"].map(index).to_numpy(dtype=np.float64)
    return np.column_stack(
        [frame["onset"].to_numpy(float), frame["offset"].to_numpy(float), classes]
    )


def labelled_recordings(
    events: pd.DataFrame,
    recordings: Mapping[str, tuple[str | Path, float]],
    labels: Sequence[str],
) -> list[LabelledRecording]:
    """Group ``events`` (events.py schema) by recording into :class:`LabelledRecording`.

    ``recordings`` maps each value of the ``recording`` column to (audio path,
    duration in seconds). Events of labels outside ``labels`` are ignored; a
    recording is kept when it has a positive or a rejected event.
    """
    index = {label: i for i, label in enumerate(labels)}
    frame = events[events["label"].isin(index)]
    frame = frame[frame["offset"] > frame["onset"]]
    result = []
    for key, group in frame.groupby(frame["recording"].astype(str), sort=True):
        status = group["status"]
        if not status.isin((*POSITIVE_STATUSES, REJECTED)).any():
            continue
        if key not in recordings:
            raise TrainingError(
                f"Events refer to recording {key!r}, whose audio file is unknown; "
                "add the recording to the project or relocate it."
            )
        path, duration = recordings[key]
        positive = status.isin(POSITIVE_STATUSES)
        source = group["source"].astype(str) if "source" in group else ""
        tag = positive & (source == CLIP_TAG_SOURCE)
        result.append(
            LabelledRecording(
                key=key,
                path=Path(path),
                duration=float(duration),
                positives=_spans(group[positive & ~tag], index),
                negatives=_spans(group[status == REJECTED], index),
                unknown=_spans(group[status == PROPOSED], index),
                tags=np.unique(group.loc[tag, "label"].map(index).to_numpy(np.int64)),
            )
        )
    return result


def split_by_recording(
    recordings: Sequence[LabelledRecording], val_fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """Indices of (train, validation) recordings; a seeded shuffle, at least one each.

    Recordings without positives go to training (they carry only negatives).
    """
    if val_fraction <= 0:
        return list(range(len(recordings))), []
    with_events = [i for i, r in enumerate(recordings) if len(r.positives)]
    if len(with_events) < 2:
        raise TrainingError(
            "A validation split needs at least two recordings with accepted or added "
            f"events; this project has {len(with_events)}. Annotate another recording, "
            "or train without validation (--val-fraction 0)."
        )
    order = np.random.default_rng([seed, 7]).permutation(with_events).tolist()
    n_val = min(len(order) - 1, max(1, round(val_fraction * len(order))))
    val = sorted(order[:n_val])
    train = [i for i in range(len(recordings)) if i not in set(val)]
    return train, val


def segment_targets(
    recording: LabelledRecording,
    start: float,
    n_segments: int,
    segment_seconds: float,
    n_classes: int,
    negative_weight: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Strong targets and loss weights (n_segments, n_classes) for a window at ``start``."""
    edges = start + segment_seconds * np.arange(n_segments + 1)
    lo, hi = edges[:-1], edges[1:]
    targets = np.zeros((n_segments, n_classes), np.float32)
    weights = np.ones((n_segments, n_classes), np.float32)
    end = edges[-1]

    def overlap(onset: float, offset: float) -> np.ndarray:
        return np.clip(np.minimum(offset, hi) - np.maximum(onset, lo), 0.0, None)

    for onset, offset, c in recording.unknown:
        if offset > start and onset < end:
            weights[overlap(onset, offset) > 0, int(c)] = 0.0
    if len(recording.tags):
        weights[:, recording.weak_classes()] = 0.0  # somewhere in the recording: unknown
    for onset, offset, c in recording.negatives:
        if offset > start and onset < end:
            covered = overlap(onset, offset) > 0
            weights[covered, int(c)] = np.where(weights[covered, int(c)] > 0, negative_weight, 0.0)
    for onset, offset, c in recording.positives:
        if offset > start and onset < end:
            ov = overlap(onset, offset)
            need = 0.5 * min(segment_seconds, offset - onset)
            full = ov >= need - 1e-9
            graze = (ov > 0) & ~full
            targets[full, int(c)] = 1.0
            weights[full, int(c)] = 1.0
            weights[graze & (targets[:, int(c)] == 0), int(c)] = 0.0
    return targets, weights


def clip_targets(targets: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weak targets from strong ones (last axis classes, second to last segments)."""
    positive = (targets * (weights > 0)).max(axis=-2)
    unknown = (weights == 0).any(axis=-2)
    weight = np.where(positive > 0, 1.0, np.where(unknown, 0.0, weights.max(axis=-2)))
    return positive.astype(np.float32), weight.astype(np.float32)


def make_clips(
    recordings: Sequence[LabelledRecording],
    indices: Iterable[int],
    clip_seconds: float,
    background_ratio: float,
    seed: int,
) -> list[Clip]:
    """Event clips (one centred on each positive) and background clips."""
    clips: list[Clip] = []
    background: list[Clip] = []
    for i in indices:
        rec = recordings[i]
        latest = max(0.0, rec.duration - clip_seconds)
        for onset, offset, c in rec.positives:
            centre = 0.5 * (onset + offset)
            clips.append(Clip(i, float(min(max(centre - clip_seconds / 2, 0.0), latest)), int(c)))
        busy = rec.positives[:, :2]
        weak = rec.weak_classes() if len(rec.tags) else ()
        for c in weak:  # a clip tag: the clip from the start (the whole recording if it fits)
            clips.append(Clip(i, 0.0, int(c)))
        if len(weak):  # tagged classes may be anywhere: no background clip here
            busy = np.vstack([busy, [[0.0, rec.duration]]])
        for start in np.arange(0.0, latest + 1e-9, clip_seconds / 2):
            stop = start + clip_seconds
            if not ((busy[:, 0] < stop) & (busy[:, 1] > start)).any():
                background.append(Clip(i, float(start), -1))
    wanted = min(len(background), round(background_ratio * max(1, len(clips))))
    if wanted:
        rng = np.random.default_rng([seed, 11])
        chosen = sorted(rng.choice(len(background), size=wanted, replace=False).tolist())
        clips.extend(background[j] for j in chosen)
    return clips


class BalancedSampler:
    """Draws clip indices class-balanced: a category (class or background) uniformly,
    then a clip of it uniformly. Each epoch's order is a pure function of (seed, epoch),
    so a run can resume from any (epoch, step)."""

    def __init__(self, clips: Sequence[Clip], seed: int, samples_per_epoch: int | None = None):
        anchors = np.array([c.anchor for c in clips])
        self.pools = [np.flatnonzero(anchors == a) for a in np.unique(anchors)]
        self.seed = int(seed)
        self.samples_per_epoch = int(samples_per_epoch or len(clips))
        if not clips:
            raise TrainingError("No training clips: the training recordings have no events.")

    def epoch(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 13, epoch])
        which = rng.integers(len(self.pools), size=self.samples_per_epoch)
        picks = rng.random(self.samples_per_epoch)
        return np.array(
            [self.pools[w][int(p * len(self.pools[w]))] for w, p in zip(which, picks)],
            dtype=np.int64,
        )


# ----------------------------------------------------------------------------- audio


@dataclass
class _Spans:
    starts: list[int] = field(default_factory=list)
    arrays: list[np.ndarray] = field(default_factory=list)


class ClipAudio:
    """The audio the clips need, loaded once at the model's sample rate.

    Only the stretches around clips (plus the time-shift margin) are decoded, so a
    long recording with a few events costs little memory.
    """

    def __init__(
        self,
        recordings: Sequence[LabelledRecording],
        clips: Sequence[Clip],
        clip_seconds: float,
        margin: float,
        sample_rate: int,
    ) -> None:
        from ..audio import load_audio

        self.sample_rate = int(sample_rate)
        self.length = round(clip_seconds * sample_rate)
        self._spans: dict[int, _Spans] = {}
        wanted: dict[int, list[tuple[float, float]]] = {}
        for clip in clips:
            rec = recordings[clip.recording]
            a = max(0.0, clip.start - margin)
            b = min(rec.duration, clip.start + clip_seconds + margin)
            wanted.setdefault(clip.recording, []).append((a, b))
        for index, ranges in wanted.items():
            merged: list[list[float]] = []
            for a, b in sorted(ranges):
                if merged and a <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], b)
                else:
                    merged.append([a, b])
            spans = _Spans()
            for a, b in merged:
                x, _ = load_audio(recordings[index].path, self.sample_rate, start=a, stop=b)
                spans.starts.append(round(a * self.sample_rate))
                spans.arrays.append(x)
            self._spans[index] = spans

    def crop(self, recording: int, start: float) -> np.ndarray:
        """``clip_seconds`` of audio from ``start`` (zeros past the end of the file)."""
        spans = self._spans[recording]
        first = round(start * self.sample_rate)
        for origin, x in zip(spans.starts, spans.arrays):
            if origin <= first < origin + max(len(x), 1):
                piece = x[first - origin : first - origin + self.length]
                if len(piece) < self.length:
                    piece = np.pad(piece, (0, self.length - len(piece)))
                return piece
        raise TrainingError(f"internal: no audio loaded at {start:.2f} s of recording {recording}")


def data_summary(
    recordings: Sequence[LabelledRecording],
    train: Sequence[int],
    val: Sequence[int],
    labels: Sequence[str],
    clips: Sequence[Clip],
) -> dict[str, Any]:
    """Counts for the log, the GUI and the registry entry of the result."""

    def counts(indices: Sequence[int], attr: str) -> dict[str, int]:
        out = dict.fromkeys(labels, 0)
        for i in indices:
            for c in getattr(recordings[i], attr)[:, 2]:
                out[labels[int(c)]] += 1
        return out

    return {
        "labels": list(labels),
        "train_recordings": [recordings[i].key for i in train],
        "val_recordings": [recordings[i].key for i in val],
        "train_seconds": round(sum(recordings[i].duration for i in train), 3),
        "val_seconds": round(sum(recordings[i].duration for i in val), 3),
        "train_events": counts(train, "positives"),
        "val_events": counts(val, "positives"),
        "rejected_events": counts([*train, *val], "negatives"),
        "unreviewed_events": counts([*train, *val], "unknown"),
        "clip_tags": {labels[int(c)]: sum(1 for i in train if c in recordings[i].weak_classes())
                      for c in sorted({int(c) for i in train
                                       for c in recordings[i].weak_classes()})},
        "weak_recordings": [recordings[i].key for i in train
                            if len(recordings[i].weak_classes())],
        "event_clips": sum(1 for c in clips if c.anchor >= 0),
        "background_clips": sum(1 for c in clips if c.anchor < 0),
    }


def trainable_labels(events: pd.DataFrame, vocabulary: Sequence[str]) -> list[str]:
    """The label space a project trains: every label of an accepted, edited or added
    event, those of the vocabulary in its order first, then the others sorted.

    A vocabulary label without such an event is not trained (nothing shows the model
    what it sounds like); rejected and proposed events alone do not make a label
    trainable either.
    """
    used = set(events.loc[events["status"].isin(POSITIVE_STATUSES), "label"].astype(str))
    return [name for name in vocabulary if name in used] + sorted(used - set(vocabulary))


def from_project(
    store: Any, labels: Sequence[str] | None = None
) -> tuple[list[LabelledRecording], list[str]]:
    """Labelled recordings and the label space of a project store.

    The label space defaults to :func:`trainable_labels`.
    """
    events = store.events()
    if labels is None:
        labels = trainable_labels(events, [entry.name for entry in store.labels()])
    labels = list(labels)
    if not labels:
        raise TrainingError(
            "No accepted, corrected or added events yet, so no label to train: review the "
            "proposed events (accept or correct some) or add events, then train."
        )
    table = {}
    for rec in store.recordings():
        duration = rec.duration
        if duration is None or not math.isfinite(duration):
            from ..audio import audio_info

            duration = audio_info(rec.path).duration
        table[str(rec.path)] = (rec.path, float(duration))
    missing = [key for key in set(events["recording"].astype(str)) if key not in table]
    if missing:
        raise TrainingError(f"Events point to recordings not in the project: {missing[:3]}.")
    absent = [str(p) for p, _ in table.values() if not Path(p).is_file()]
    used_recordings = labelled_recordings(events, table, labels)
    gone = [r.key for r in used_recordings if str(r.path) in absent]
    if gone:
        raise TrainingError(
            f"Audio files of annotated recordings are missing: {gone[:3]}. Relocate them "
            "(panns-sed project relocate) and start again."
        )
    return used_recordings, labels


def clip_tag_events(tags: Mapping[str, Sequence[str]],
                    durations: Mapping[str, float]) -> pd.DataFrame:  # fmt: skip
    """Events (project schema) holding weak labels: for each recording key in ``tags``,
    one event per label spanning the recording (``durations[key]`` seconds), with
    ``source`` :data:`CLIP_TAG_SOURCE` and status added. E.g. from
    :func:`panns_core.annotations.formats.read_weak_labels` (keys mapped to the
    project's recordings)."""
    from ..events import make_events

    rows = [
        {"recording": key, "onset": 0.0, "offset": float(durations[key]), "label": label}
        for key, labels in tags.items() for label in dict.fromkeys(labels)
    ]  # fmt: skip
    table = pd.DataFrame(rows, columns=["recording", "onset", "offset", "label"])
    return make_events(table, source=CLIP_TAG_SOURCE, status=ADDED)
