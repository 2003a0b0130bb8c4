"""A TinySED trained from scratch on part of the real soundscape corpus, once per session
(the search tests' model). Train split: dev_0000-0149; the search tests index the rest."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

CORPUS = Path(os.environ.get("PANNS_SOUNDSCAPES", "/work/shared/corpus/soundscapes"))
TRAIN = [f"dev_{i:04d}.flac" for i in range(0, 150)]
SEARCHED = [f"dev_{i:04d}.flac" for i in range(150, 300)]
#: a fixed number of steps (not a time budget: the same model whatever the load)
EPOCHS = 3
SAMPLES_PER_EPOCH = 256  # 16 steps of 16 clips per epoch


def available() -> bool:
    return (CORPUS / "events.tsv").is_file()


def reference_events() -> pd.DataFrame:
    return pd.read_csv(CORPUS / "events.tsv", sep="\t")


def train_model(folder: Path) -> Path:
    """Train TinySED on TRAIN (full strategy); returns the checkpoint path."""
    from panns_core.annotations.store import ProjectStore
    from panns_core.training.config import TrainConfig
    from panns_core.training.run import fine_tune

    folder.mkdir(parents=True, exist_ok=True)
    project = folder / "train.panns"
    events = reference_events()
    store = ProjectStore(project)
    try:
        for name in TRAIN:
            store.add_recording(CORPUS / "audio" / name)
        rows = events[events["filename"].isin(TRAIN)].rename(columns={"filename": "recording",
                                                                       "event_label": "label"})
        store.add_events(rows[["recording", "onset", "offset", "label"]])
    finally:
        store.close()
    config = TrainConfig(strategy="full", epochs=EPOCHS, samples_per_epoch=SAMPLES_PER_EPOCH,
                         patience=1000, calibrate=False, seed=0)
    outcome = fine_tune(project, "arch:TinySED", config, run_dir=folder / "run", register=False)
    assert outcome.result.checkpoint is not None
    return Path(outcome.result.checkpoint)


if __name__ == "__main__":  # pragma: no cover - used to time the fixture
    import sys
    import time

    started = time.time()
    print(train_model(Path(sys.argv[1])), f"{time.time() - started:.1f} s")


@dataclass(frozen=True)
class SearchSetup:
    checkpoint: Path
    project: Path
    model_id: str
    home: Path


def build(folder: Path) -> SearchSetup:
    """Train the model, make a project of SEARCHED and index it."""
    from panns_core.annotations.store import ProjectStore
    from panns_core.hub.resolve import load_detector
    from panns_core.search import build_index

    # PANNS_SEARCH_MODEL: a checkpoint train_model() made before (a developer's re-runs)
    ready = os.environ.get("PANNS_SEARCH_MODEL")
    checkpoint = Path(ready) if ready and Path(ready).is_file() else train_model(folder / "model")
    project = folder / "searched.panns"
    store = ProjectStore(project)
    try:
        for name in SEARCHED:
            store.add_recording(CORPUS / "audio" / name)
    finally:
        store.close()
    detector = load_detector(checkpoint)
    build_index(project, detector)
    return SearchSetup(checkpoint, project, detector.model_id, folder / "home")
