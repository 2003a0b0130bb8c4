"""Where a run is (:class:`FitState`) and the files of a run directory.

``state.pt`` (:data:`STATE_FILE`) is the resumable state: the run's position and
best-so-far (the :class:`FitState` fields), the weights that train, the optimiser,
and what must not change for a resume to continue the same run (config, labels,
data summary, trunk fingerprint). ``best.pth`` and ``model.pth`` are ordinary
checkpoints (:mod:`panns_core.hub.checkpoints`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import TrainingError
from .config import RESUMABLE_OVERRIDES, TrainConfig

STATE_FILE = "state.pt"
BEST_FILE = "best.pth"
MODEL_FILE = "model.pth"
EVENTS_FILE = "events.jsonl"
STATE_FORMAT = "panns-training-state"


@dataclass
class FitState:
    """The position and best-so-far of a run: all the fit loop carries between steps.

    ``epoch`` (from 1) and ``step`` are the next step to take; ``epoch_losses`` the
    losses of the current epoch so far. ``best_score`` is the selection score of
    ``best_epoch`` (-1 before any); ``best_head`` the best head's weights when only the
    head trains (the other strategies keep the best weights in ``best.pth``).
    ``time_before``: seconds used before this process resumed the run.
    """

    planned_epochs: int
    epoch: int = 1
    step: int = 0
    epoch_losses: list[float] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    best_score: float = -1.0
    best_epoch: int | None = None
    bad_epochs: int = 0
    metrics_before: dict[str, Any] | None = None
    best_head: dict[str, torch.Tensor] | None = None
    time_before: float = 0.0
    resumed: bool = False
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def begin(cls, config: TrainConfig, saved: Mapping[str, Any] | None,
              started: float | None = None) -> FitState:  # fmt: skip
        """A new run's state, or the one ``saved`` in a state file."""
        started = time.monotonic() if started is None else started
        if saved is None:
            return cls(planned_epochs=config.epochs, started=started)
        planned = saved["planned_epochs"]
        planned = min(config.epochs, planned) if config.time_budget else config.epochs
        return cls(
            planned_epochs=planned,
            epoch=saved["epoch"],
            step=saved["step"],
            epoch_losses=list(saved["epoch_losses"]),
            history=list(saved["history"]),
            best_score=saved["best_f1"],
            best_epoch=saved["best_epoch"],
            bad_epochs=saved["bad_epochs"],
            metrics_before=saved["metrics_before"],
            best_head=saved.get("best_head"),
            time_before=float(saved["elapsed"]),
            resumed=True,
            started=started,
        )

    def elapsed(self) -> float:
        """Seconds the run has used, over all its processes' lives."""
        return self.time_before + time.monotonic() - self.started

    def global_step(self, steps_per_epoch: int) -> int:
        return (self.epoch - 1) * steps_per_epoch + self.step

    def next_epoch(self) -> None:
        self.epoch += 1
        self.step = 0
        self.epoch_losses = []

    def progress_fields(self) -> dict[str, Any]:
        """The state file's fields about the run's progress (names as saved)."""
        return {
            "history": self.history, "best_f1": self.best_score, "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs, "planned_epochs": self.planned_epochs,
            "metrics_before": self.metrics_before, "epoch_losses": self.epoch_losses,
        }  # fmt: skip

    def best_metrics(self) -> dict[str, Any] | None:
        """The validation metrics of the best epoch."""
        epochs = [h["epoch"] for h in self.history]
        return self.history[epochs.index(self.best_epoch)]["metrics"]


def read_state(run_dir: Path) -> dict[str, Any] | None:
    """The saved state of ``run_dir`` (None when there is none)."""
    path = Path(run_dir) / STATE_FILE
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != STATE_FORMAT:
        raise TrainingError(f"{path} is not a training state; start a new run.")
    return state


def resumed_config(saved: Mapping[str, Any], config: TrainConfig,
                   labels: list[str]) -> TrainConfig:  # fmt: skip
    """The saved run's config with the settings a resume may change taken from ``config``."""
    resumed = TrainConfig.from_dict(saved["config"])
    for key in RESUMABLE_OVERRIDES:
        setattr(resumed, key, getattr(config, key))
    if saved["labels"] != labels:
        raise TrainingError("The project's labels changed since this run started; start a new run.")
    return resumed


def check_same_data(saved: Mapping[str, Any], summary: Mapping[str, Any]) -> None:
    if saved["data"] != summary:
        raise TrainingError(
            "The project's events changed since this run started, so resuming would not "
            "continue the same run; start a new run."
        )


@dataclass
class RunFiles:
    """Writes the state and checkpoints of a run (main process only).

    ``fingerprint``: the frozen trunk's fingerprint when only the head trains (the
    state then holds the head alone).
    """

    run_dir: Path
    model: nn.Module
    config: TrainConfig
    labels: list[str]
    parent: str | None
    summary: dict[str, Any]
    head_init: Any
    fingerprint: str | None

    def save_state(self, fit: FitState, optimizer: torch.optim.Optimizer) -> Path:
        """Write ``state.pt`` atomically; ``fit`` gives the position to resume at."""
        from .strategies import trainable_state

        if self.fingerprint:  # head only: the frozen rest is the base model's
            weights = trainable_state(self.model)
        else:
            weights = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        state = {
            "format": STATE_FORMAT,
            "version": 1,
            "config": self.config.to_dict(),
            "labels": self.labels,
            "architecture": self.model.arch_name,
            "parent": self.parent,
            "data": self.summary,
            "epoch": fit.epoch,
            "step": fit.step,
            "model": weights,
            "head_only": bool(self.fingerprint),
            "trunk": self.fingerprint,
            "best_head": fit.best_head,
            "optimizer": optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "elapsed": fit.elapsed(),
            **fit.progress_fields(),
        }
        path = self.run_dir / STATE_FILE
        tmp = path.with_suffix(".part")
        torch.save(state, tmp)
        os.replace(tmp, path)
        return path

    def save_weights(self, path: Path, state_dict: Mapping, metrics: dict, status: str,
                     best_epoch: int | None,
                     extra: Mapping[str, Any] | None = None) -> Path:  # fmt: skip
        """Write a checkpoint of ``state_dict`` with the run's provenance (and ``extra``
        metadata, e.g. the calibrated ``postprocess``)."""
        from ..hub.checkpoints import save_checkpoint

        return save_checkpoint(
            path,
            state_dict,
            architecture=self.model.arch_name,
            feature_config=self.model.feature_config,
            labels=self.labels,
            parent=self.parent,
            metrics=metrics,
            extra={
                "data": self.summary,
                "training": self.config.to_dict(),
                "head_init": self.head_init,
                "status": status,
                "best_epoch": best_epoch,
                **(extra or {}),
            },
        )
