"""Live sound-event detection on the newest seconds of a recording.

A worker thread repeatedly takes the last ``window_seconds`` of audio from the
recorder's ring buffer (ending on a whole model segment of recording time), runs an SED
model on it and publishes the segment probabilities with their recording times. It runs
back to back, so results are at most about two compute times behind the live edge;
``LiveScores.lag`` reports how far behind each one was when it was published. Readers
(a GUI timer) drain ``results()``; nothing here calls back into another thread.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..audio.ringbuffer import RingBuffer

if TYPE_CHECKING:
    from ..hub.detector import Detector


@dataclass(frozen=True)
class LiveScores:
    """Probabilities for consecutive model segments of the recording."""

    start: float  # recording seconds where the first segment starts
    segment_seconds: float
    probabilities: np.ndarray  # (segments, classes) float32
    lag: float  # seconds of audio recorded past ``end`` when this was published
    compute_seconds: float

    @property
    def end(self) -> float:
        return self.start + len(self.probabilities) * self.segment_seconds


class SegmentPredictor:
    """Runs a :class:`Detector` on mono float32 at its sample rate -> (segments, classes).

    The engine is the one detection uses (:func:`panns_core.detection.engines.select_engine`):
    onnxruntime for exact CPU detection, the measured fast path with ``fast``.
    """

    def __init__(self, detector: Detector, *, fast: bool = False,
                 device: str | None = "cpu") -> None:
        from ..detection.device import choose_device
        from ..detection.engines import select_engine

        self.device = choose_device(device)
        detector.require_sed()
        self.detector = detector.to(self.device)
        self.model = self.detector.module
        self.fast = fast
        self.engine = select_engine(self.detector, self.device, fast=fast)
        self.precision = self.engine.precision
        self.sample_rate = self.detector.sample_rate
        self.segment_samples = self.detector.segment_samples
        self.min_samples = self.detector.min_samples
        self.labels = list(self.detector.labels)

    @property
    def segment_seconds(self) -> float:
        return self.segment_samples / self.sample_rate

    def __call__(self, waveform: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(waveform, dtype=np.float32)[None]
        return self.engine(x)[0]


class LiveDetector:
    """Runs ``predictor`` on the newest ``window_seconds`` of ``ring`` in a thread.

    ``ring`` holds the recording's frames at ``sample_rate`` (stream index = recording
    frame). Each run covers whole segments ending at the newest complete segment, and
    starts once at least ``step_seconds`` of new audio arrived since the previous run.
    """

    def __init__(
        self,
        ring: RingBuffer,
        sample_rate: int,
        predictor: SegmentPredictor | Any,
        *,
        window_seconds: float = 3.2,
        step_seconds: float | None = None,
        keep: int = 512,
        resample: Callable[[np.ndarray, int, int], np.ndarray] | None = None,
    ) -> None:
        self.ring = ring
        self.sample_rate = int(sample_rate)
        self.predictor = predictor
        seg_seconds = predictor.segment_seconds
        self.segment_frames = round(seg_seconds * self.sample_rate)
        if abs(self.segment_frames - seg_seconds * self.sample_rate) > 1e-6:
            raise ValueError(
                f"{self.sample_rate} Hz has no whole number of samples per model segment "
                f"({seg_seconds} s); record at 16000, 32000, 44100 or 48000 Hz."
            )
        self.window_segments = max(1, round(window_seconds / seg_seconds))
        min_frames = predictor.min_samples * self.sample_rate / predictor.sample_rate
        self.min_segments = max(1, int(np.ceil(min_frames / self.segment_frames)))
        self.step_frames = (
            self.segment_frames if step_seconds is None
            else max(1, round(step_seconds * self.sample_rate))
        )
        if self.window_segments * self.segment_frames > ring.capacity:
            raise ValueError("the ring buffer is shorter than the detection window")
        self._resample = resample
        self._results: deque[LiveScores] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.runs = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="live-detector", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def results(self) -> list[LiveScores]:
        """Everything published since the previous call, oldest first."""
        with self._lock:
            out = list(self._results)
            self._results.clear()
        return out

    def run_once(self) -> LiveScores | None:
        """One detection on the newest audio (None when there is not enough yet)."""
        end = self.ring.total // self.segment_frames * self.segment_frames
        first = max(0, end - self.window_segments * self.segment_frames)
        if (end - first) // self.segment_frames < self.min_segments:
            return None
        frames, got_first = self.ring.since(first, max_frames=end - first)
        if got_first != first or len(frames) != end - first:  # pragma: no cover - overrun
            return None
        started = time.perf_counter()
        probabilities = self.predict(frames)
        n = (end - first) // self.segment_frames
        scores = LiveScores(
            start=first / self.sample_rate,
            segment_seconds=self.predictor.segment_seconds,
            probabilities=np.asarray(probabilities[:n], dtype=np.float32),
            lag=(self.ring.total - end) / self.sample_rate,
            compute_seconds=time.perf_counter() - started,
        )
        self.runs += 1
        with self._lock:
            self._results.append(scores)
        return scores

    def predict(self, frames: np.ndarray) -> np.ndarray:
        """Mono, at the model's rate, through the predictor."""
        mono = frames.mean(axis=1) if frames.ndim == 2 else frames
        mono = np.ascontiguousarray(mono, dtype=np.float32)
        if self.predictor.sample_rate != self.sample_rate:
            resample = self._resample
            if resample is None:
                from ..audio import resample
            mono = resample(mono, self.sample_rate, self.predictor.sample_rate)
        return self.predictor(mono)

    def _loop(self) -> None:
        done = -1
        try:
            while not self._stop.is_set():
                total = self.ring.total
                if done >= 0 and total - done < self.step_frames:
                    self._stop.wait(0.01)
                    continue
                if self.run_once() is None:
                    self._stop.wait(0.01)
                    continue
                done = total
        except BaseException as error:  # reported to the reader, never lost silently
            self.error = error
        finally:  # the engine's working memory goes back when listening stops
            release = getattr(getattr(self.predictor, "engine", None), "release", None)
            if release is not None:
                try:
                    release()
                except Exception as error:  # a failed give-back must not hide the run's end
                    self.error = self.error or error
