"""The Ray actor: one loaded detector that detects pieces of recordings.

A plain class (``ray.remote`` wraps it when a run starts, so importing this module needs
no Ray). Each worker loads the model once, picks its engine once (ONNX Runtime on the
CPU, torch on a GPU), and then runs :func:`~panns_core.detection.inference.iter_detect`
over the windows of one piece at a time, at the window geometry the driver chose, so the
pieces fit together exactly as one process's chunks do.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import replace
from typing import Any

import numpy as np


class DetectorWorker:
    """Holds ``checkpoint`` (a model file) as ``model_id`` on ``device``."""

    def __init__(self, checkpoint: str, model_id: str, *, device: str = "cpu",
                 threads: int = 1, fast: bool = False, precision: str | None = None) -> None:
        from ..detection.device import choose_device, set_threads
        from ..detection.engines import select_engine
        from ..hub.resolve import load_detector

        set_threads(threads)
        self.device = choose_device(device)
        detector = load_detector(checkpoint, device=self.device)
        self.detector = replace(detector, model_id=model_id)
        self.engine = select_engine(self.detector, self.device, fast=fast, precision=precision)
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    def info(self) -> dict[str, Any]:
        """What the driver plans with: precision, engine and its window geometry."""
        return {"precision": self.engine.precision, "engine": self.engine.name,
                "body_seconds": self.engine.body_seconds, "batch_size": self.engine.batch_size,
                "device": str(self.device), "worker": self.name,
                "note": getattr(self.engine, "note", "")}  # fmt: skip

    def detect_piece(self, path: str, first: int, stop: int | None, body_seconds: float,
                     batch_size: int, want_hash: bool = False,
                     channel: int | None = None) -> tuple[dict[str, Any], np.ndarray]:
        """Scores of windows ``first`` to ``stop - 1`` (None: to the end) of ``path``:
        (a small description, the probabilities); the driver fetches only the first."""
        from ..detection.inference import iter_detect

        began = time.perf_counter()
        sha256 = None
        if want_hash:
            from ..audio import file_sha256

            sha256 = file_sha256(path)
        parts, start, last = [], None, None
        for chunk in iter_detect(path, self.detector, channel=channel, device=self.device,
                                 engine=self.engine,
                                 body_seconds=body_seconds, batch_size=batch_size,
                                 windows=(first, stop)):  # fmt: skip
            if start is None:
                start = chunk.start_segment
            parts.append(chunk.probabilities)
            last = chunk
        meta = {"start_segment": start, "segments": sum(len(p) for p in parts),
                "is_last": last.is_last, "recording_seconds": last.recording_seconds,
                "segment_seconds": last.segment_seconds, "sha256": sha256,
                "seconds": time.perf_counter() - began, "worker": self.name}  # fmt: skip
        return meta, np.concatenate(parts)

    def finish(self, job: dict[str, Any], *probabilities: np.ndarray) -> dict[str, Any]:
        """Put a recording's pieces end to end and write its files into the results
        folder (events and scores, atomically); returns its manifest record."""
        from pathlib import Path

        from ..detection.postprocess import PostprocessParams
        from ..detection.results import Results
        from ..detection.scores import Scores

        began = time.perf_counter()
        pieces = job["pieces"]
        expected = 0
        for piece, probs in zip(pieces, probabilities):
            if piece["start_segment"] != expected or len(probs) != piece["segments"]:
                raise RuntimeError(f"pieces do not line up (segment {piece['start_segment']} "
                                   f"after {expected})")  # fmt: skip
            expected += len(probs)
        if not pieces or not pieces[-1]["is_last"]:
            raise RuntimeError("the last piece did not reach the end of the recording")
        scores = Scores(np.concatenate(probabilities), pieces[0]["segment_seconds"],
                        job["labels"], model_id=job["model_id"], audio_hash=job["sha256"],
                        duration=pieces[-1]["recording_seconds"],
                        precision=job["precision"])  # fmt: skip
        results = Results(job["root"], job["format"])
        results.set_name(job["recording"], job["name"])
        record = results.write_files(job["recording"], Path(job["path"]), scores,
                                     PostprocessParams.from_dict(job["params"]))  # fmt: skip
        record["worker"] = self.name
        record["write_seconds"] = time.perf_counter() - began
        return record

    def pid(self) -> int:
        return os.getpid()
