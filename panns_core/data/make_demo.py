"""Synthesize the demo recording shipped as ``panns_core/data/demo.flac``.

A 20-second scene the project makes itself (no third-party audio, no licence
questions): a bed of pink-ish noise with wind-like swells, bird-like chirp trills,
two dog-bark-like bursts, speech-like formant syllables and a few door knocks.
Run ``python panns_core/data/make_demo.py`` to rebuild it; the output is deterministic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 32000
DURATION = 20.0


def _envelope(n: int, attack: float, release: float, sr: int) -> np.ndarray:
    a = max(1, int(attack * sr))
    r = max(1, int(release * sr))
    env = np.ones(n)
    env[:a] = np.linspace(0.0, 1.0, min(a, n))[: min(a, n)]
    if r < n:
        env[-r:] *= np.linspace(1.0, 0.0, r)
    return env


def _noise_bed(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    white = rng.standard_normal(n)
    spectrum = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(n, 1 / sr)
    spectrum /= np.sqrt(np.maximum(freqs, 20.0))  # pink-ish: -3 dB / octave
    pink = np.fft.irfft(spectrum, n)
    pink /= np.abs(pink).max()
    t = np.arange(n) / sr
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * 0.07 * t + 1.0) ** 2
    return 0.035 * pink * swell


def _chirp(sr: int, f0: float, f1: float, seconds: float) -> np.ndarray:
    n = int(seconds * sr)
    t = np.arange(n) / sr
    # exponential sweep plus a little vibrato, like a songbird's note
    k = np.log(f1 / f0) / seconds
    phase = 2 * np.pi * f0 * (np.exp(k * t) - 1) / k
    phase += 0.6 * np.sin(2 * np.pi * 60 * t)
    tone = np.sin(phase) + 0.25 * np.sin(2 * phase)
    return tone * np.hanning(n)


def _bird_trill(rng: np.random.Generator, sr: int, notes: int) -> np.ndarray:
    parts = []
    for _ in range(notes):
        f0 = rng.uniform(3000, 4200)
        f1 = f0 * rng.uniform(1.3, 1.7)
        parts.append(_chirp(sr, f0, f1, rng.uniform(0.06, 0.1)))
        parts.append(np.zeros(int(rng.uniform(0.03, 0.06) * sr)))
    return 0.35 * np.concatenate(parts)


def _bark(rng: np.random.Generator, sr: int) -> np.ndarray:
    n = int(0.22 * sr)
    t = np.arange(n) / sr
    f = 420 * np.exp(-3.0 * t) + 180  # a falling, harsh fundamental
    phase = 2 * np.pi * np.cumsum(f) / sr
    harmonic = sum(np.sin(h * phase) / h for h in range(1, 12))
    noise = rng.standard_normal(n)
    noise = np.convolve(noise, np.ones(6) / 6, mode="same")
    sound = 0.8 * harmonic + 0.6 * noise
    return 0.45 * sound * _envelope(n, 0.008, 0.12, sr) / np.abs(sound).max()


def _formant_syllable(sr: int, f0: float, formants: tuple[float, ...], seconds: float):
    n = int(seconds * sr)
    t = np.arange(n) / sr
    pitch = f0 * (1 + 0.08 * np.sin(2 * np.pi * 3 * t))  # intonation
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    out = np.zeros(n)
    for h in range(1, int(4000 / f0)):
        freq = h * pitch
        gain = sum(1.0 / (1.0 + ((freq - fm) / (0.08 * fm + 60)) ** 2) for fm in formants)
        out += gain * np.sin(h * phase) / np.sqrt(h)
    return out * _envelope(n, 0.03, 0.06, sr)


def _speech(sr: int) -> np.ndarray:
    vowels = [
        (730.0, 1090.0, 2440.0),  # a
        (270.0, 2290.0, 3010.0),  # i
        (300.0, 870.0, 2240.0),  # u
        (530.0, 1840.0, 2480.0),  # e
        (570.0, 840.0, 2410.0),  # o
    ]
    rng = np.random.default_rng(7)
    parts = []
    for i in range(9):
        formants = vowels[int(rng.integers(len(vowels)))]
        parts.append(_formant_syllable(sr, 125.0 + 10 * (i % 3), formants, rng.uniform(0.14, 0.26)))
        parts.append(np.zeros(int(rng.uniform(0.03, 0.12) * sr)))
    sound = np.concatenate(parts)
    return 0.3 * sound / np.abs(sound).max()


def _knock(sr: int) -> np.ndarray:
    n = int(0.09 * sr)
    t = np.arange(n) / sr
    body = np.sin(2 * np.pi * 190 * t) + 0.5 * np.sin(2 * np.pi * 410 * t)
    return 0.5 * body * np.exp(-45 * t)


# What the scene holds (onset, offset, AudioSet label), for demos and tests.
DEMO_EVENTS = (
    (0.8, 1.9, "Bird vocalization, bird call, bird song"),
    (2.6, 3.4, "Bird vocalization, bird call, bird song"),
    (5.0, 5.22, "Bark"),
    (5.45, 5.67, "Bark"),
    (7.6, 10.1, "Speech"),
    (10.6, 11.39, "Knock"),
    (12.2, 13.6, "Bird vocalization, bird call, bird song"),
    (15.3, 15.52, "Bark"),
    (17.4, 18.35, "Bird vocalization, bird call, bird song"),
)


def synthesize(sample_rate: int = SAMPLE_RATE, duration: float = DURATION) -> np.ndarray:
    """The demo scene as float32 mono samples."""
    rng = np.random.default_rng(20240601)
    n = int(sample_rate * duration)
    out = _noise_bed(rng, n, sample_rate)

    def place(sound: np.ndarray, start: float) -> None:
        a = int(start * sample_rate)
        b = min(n, a + len(sound))
        out[a:b] += sound[: b - a]

    for start, notes in ((0.8, 7), (2.6, 5), (12.2, 9), (17.4, 6)):
        place(_bird_trill(rng, sample_rate, notes), start)
    for start in (5.0, 5.45, 15.3):
        place(_bark(rng, sample_rate), start)
    place(_speech(sample_rate), 7.6)
    for i, start in enumerate((10.6, 10.95, 11.3)):
        place(_knock(sample_rate) * (1.0 - 0.1 * i), start)
    peak = np.abs(out).max()
    return (0.89 * out / peak).astype(np.float32)


def main(path: Path | None = None) -> Path:
    path = path or Path(__file__).resolve().parent / "demo.flac"
    sf.write(path, synthesize(), SAMPLE_RATE, subtype="PCM_16")
    return path


if __name__ == "__main__":
    print(main())
