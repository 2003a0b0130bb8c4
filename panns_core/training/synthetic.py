"""A synthetic strongly-labelled sound-event dataset, for tests and benchmarks.

Five event classes with sounds a small network can tell apart, placed over
low-level coloured background noise at known times:

============  ==========================================================
Low tone      harmonic tone around 400 Hz
High tone     pure tone around 2.5 kHz
Chirp         upward sweeps 3 -> 7 kHz, ten per second
Noise burst   band-limited noise 4-10 kHz
Clicks        train of short clicks at about 15 Hz
============  ==========================================================

Events of one recording never overlap (so event-based metrics are easy to
reason about) and keep 0.3 s apart. Everything is drawn from one seed: the same
arguments give the same files, byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

SYNTHETIC_CLASSES: tuple[str, ...] = ("Low tone", "High tone", "Chirp", "Noise burst", "Clicks")


@dataclass
class SyntheticDataset:
    """What :func:`make_synthetic_dataset` wrote."""

    directory: Path
    sample_rate: int
    labels: list[str]
    recordings: list[Path]
    durations: dict[str, float]
    #: events in the :mod:`panns_core.events` schema; ``recording`` is the file name
    events: pd.DataFrame = field(repr=False)

    def write_dcase(self, path: str | Path) -> Path:
        """Ground truth as a DCASE TSV (``filename onset offset event_label``)."""
        path = Path(path)
        frame = self.events.rename(columns={"recording": "filename", "label": "event_label"})
        frame[["filename", "onset", "offset", "event_label"]].to_csv(
            path, sep="\t", index=False, float_format="%.6f"
        )
        return path

    def write_durations(self, path: str | Path) -> Path:
        """Durations TSV (``filename duration``) as sed_scores_eval reads it."""
        path = Path(path)
        pd.DataFrame(
            {"filename": list(self.durations), "duration": list(self.durations.values())}
        ).to_csv(path, sep="\t", index=False)
        return path


def _fade(x: np.ndarray, sample_rate: int, seconds: float = 0.01) -> np.ndarray:
    n = min(len(x) // 2, int(seconds * sample_rate))
    if n > 0:
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        x[:n] *= ramp
        x[-n:] *= ramp[::-1]
    return x


def _bandpass_noise(rng: np.random.Generator, n: int, sr: int, lo: float, hi: float) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    spectrum[(freqs < lo) | (freqs > hi)] = 0.0
    x = np.fft.irfft(spectrum, n)
    return x / (np.abs(x).max() + 1e-9)


def event_sound(
    label: str, seconds: float, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """One event of a synthetic class, peak amplitude about 1."""
    n = max(1, round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    if label == "Low tone":
        f0 = 400.0 * rng.uniform(0.95, 1.05)
        x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in (1, 2, 3))
    elif label == "High tone":
        x = np.sin(2 * np.pi * 2500.0 * rng.uniform(0.95, 1.05) * t)
    elif label == "Chirp":  # repeated 0.1 s upward sweeps, the same texture throughout
        f_lo, f_hi, period = 3000.0, 7000.0, 0.1
        tau = np.mod(t, period)
        x = np.sin(2 * np.pi * (f_lo * tau + (f_hi - f_lo) * tau**2 / (2 * period)))
    elif label == "Noise burst":
        x = _bandpass_noise(rng, n, sample_rate, 4000.0, min(10000.0, sample_rate / 2 - 1))
    elif label == "Clicks":
        x = np.zeros(n)
        period = int(sample_rate / (15.0 * rng.uniform(0.9, 1.1)))
        click = np.hanning(max(8, int(0.002 * sample_rate))) * np.sign(rng.standard_normal())
        for start in range(0, n - len(click), period):
            x[start : start + len(click)] += click
    else:
        raise ValueError(f"unknown synthetic class {label!r}; use one of {SYNTHETIC_CLASSES}")
    x = np.asarray(x, dtype=np.float32)
    x /= np.abs(x).max() + 1e-9
    return _fade(x, sample_rate)


def background_noise(n: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Pink-ish noise (1/f power), peak about 1."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    spectrum /= np.sqrt(np.maximum(freqs, 20.0))
    x = np.fft.irfft(spectrum, n)
    return (x / (np.abs(x).max() + 1e-9)).astype(np.float32)


def _place_events(
    rng: np.random.Generator,
    duration: float,
    labels: Sequence[str],
    count: int,
    min_len: float,
    max_len: float,
    gap: float = 0.3,
) -> list[tuple[float, float, str]]:
    """Non-overlapping events; classes taken in turn from a random start, so they stay balanced."""
    events: list[tuple[float, float, str]] = []
    first = int(rng.integers(len(labels)))
    for _ in range(count * 50):
        if len(events) >= count:
            break
        length = float(rng.uniform(min_len, max_len))
        onset = float(rng.uniform(0.1, max(0.1, duration - length - 0.1)))
        offset = onset + length
        if any(onset < b + gap and offset > a - gap for a, b, _ in events):
            continue
        events.append(
            (round(onset, 4), round(offset, 4), labels[(first + len(events)) % len(labels)])
        )
    return sorted(events)


def make_synthetic_dataset(
    directory: str | Path,
    *,
    n_recordings: int = 8,
    duration: float = 10.0,
    sample_rate: int = 32000,
    labels: Sequence[str] = SYNTHETIC_CLASSES,
    events_per_recording: int = 5,
    min_event: float = 0.4,
    max_event: float = 1.5,
    snr_db: float = 10.0,
    seed: int = 0,
    prefix: str = "syn",
) -> SyntheticDataset:
    """Write ``n_recordings`` mono 16-bit WAV files with up to ``events_per_recording`` events each.

    ``snr_db`` is the ratio of event peak to background peak. Returns the file
    list, durations and the events (status ``added``, source ``human``).
    """
    import soundfile as sf

    from ..events import make_events

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = list(labels)
    rows: list[dict] = []
    files: list[Path] = []
    durations: dict[str, float] = {}
    n = round(duration * sample_rate)
    for index in range(n_recordings):
        name = f"{prefix}_{index:03d}.wav"
        x = background_noise(n, sample_rate, rng) * 10 ** (-snr_db / 20) * 0.5
        for onset, offset, label in _place_events(
            rng, duration, labels, events_per_recording, min_event, max_event
        ):
            start = round(onset * sample_rate)
            sound = event_sound(label, offset - onset, sample_rate, rng)
            stop = min(n, start + len(sound))
            x[start:stop] += 0.5 * float(rng.uniform(0.6, 1.0)) * sound[: stop - start]
            rows.append({"recording": name, "onset": onset, "offset": offset, "label": label})
        path = directory / name
        sf.write(path, np.clip(x, -1.0, 1.0), sample_rate, subtype="PCM_16")
        files.append(path)
        durations[name] = n / sample_rate
    events = make_events(rows, source="human", status="added", created=0.0, modified=0.0)
    return SyntheticDataset(directory, sample_rate, labels, files, durations, events)


def write_project(dataset: SyntheticDataset, project: str | Path) -> Path:
    """Put a synthetic dataset into a project file: recordings, vocabulary, events.

    Returns the project path. The events keep their status (``added``); the
    ``recording`` column is replaced by each file's absolute path.
    """
    from ..annotations.store import ProjectStore

    project = Path(project)
    store = ProjectStore(project)
    try:
        for path in dataset.recordings:
            store.add_recording(path)
        store.ensure_labels(dataset.labels)
        events = dataset.events.copy()
        events["recording"] = [
            str((dataset.directory / name).resolve()) for name in events["recording"]
        ]
        store.add_events(events)
    finally:
        store.close()
    return project
