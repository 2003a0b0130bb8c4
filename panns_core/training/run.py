"""Fine-tune a base model on a project: what ``panns-sed train`` and the GUI call.

Loads the project's training material and the base model, runs the
:class:`~.trainer.Trainer` in a run directory, records the run in the project, and
registers the result in the model registry with its classes, parent model, data
summary and validation metrics before and after. Under ``torchrun`` every
process calls this; only rank 0 writes to the project and the registry.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..cancel import CancelToken
from ..errors import TrainingError
from .config import TrainConfig
from .distributed import init_distributed
from .progress import ProgressCallback
from .state import STATE_FILE
from .trainer import Trainer, TrainResult

if TYPE_CHECKING:
    from ..hub.detector import Detector

RANDOM_INIT = "arch:"  # --base arch:NAME trains NAME from its (seeded) initialisation
RUN_INFO = "run.json"


@dataclass
class FineTuneOutcome:
    result: TrainResult
    model_name: str | None
    run_dir: Path


def runs_dir() -> Path:
    from ..paths import data_dir

    return data_dir() / "training"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "project"


def latest_run(project: str | Path) -> Path | None:
    """The newest run directory of ``project`` that has a resumable state."""
    project = str(Path(project).resolve())
    best: tuple[float, Path] | None = None
    root = runs_dir()
    for info in root.glob(f"*/{RUN_INFO}") if root.is_dir() else []:
        try:
            data = json.loads(info.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        state = info.parent / STATE_FILE
        if data.get("project") == project and state.is_file():
            stamp = state.stat().st_mtime
            if best is None or stamp > best[0]:
                best = (stamp, info.parent)
    return None if best is None else best[1]


def load_base(base: str | None, seed: int = 0) -> tuple[Detector, str | None]:
    """(detector, parent name) for a registry name / path / ``arch:NAME``.

    ``arch:NAME`` is an untrained network (no labels) drawn from ``seed``.
    """
    import torch

    from ..hub.detector import Detector

    if base and base.startswith(RANDOM_INIT):
        from ..models import build_model

        arch = base[len(RANDOM_INIT) :]
        # The first model built in a process draws differently from the seeded generator
        # (lazy initialisation in torch/torchlibrosa); build once so the seeded build is
        # the same in every process, whatever it did before.
        build_model(arch, classes_num=1)
        torch.manual_seed(seed)
        model = build_model(arch, classes_num=1)
        return Detector(model.eval(), (), base), None
    from ..hub.resolve import load_detector, resolve_checkpoint_path, resolve_record

    record = resolve_record(base)
    parent = record.name if record is not None else str(resolve_checkpoint_path(base))
    return load_detector(base), parent


def fine_tune(
    project: str | Path,
    base: str | None,
    config: TrainConfig,
    *,
    run_dir: str | Path | None = None,
    resume: bool = False,
    name: str | None = None,
    register: bool = True,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> FineTuneOutcome:
    """Fine-tune ``base`` on the events of ``project``; see the module docstring.

    ``resume``: continue ``run_dir`` (default: the latest run of this project).
    ``name``: registry name of the result (default ``<project>-ft-<time>``).
    ``config.time_budget`` counts from this call (loading the project and the base model
    included).
    """
    started = time.monotonic()
    import torch

    from ..annotations.store import ProjectStore
    from . import tiny  # noqa: F401  (registers TinySED)
    from .data import from_project

    if register and name is not None:  # before any work: a taken name fails now
        from ..hub.installed import get_registry

        get_registry().check_new_name(name)
    rank, _world = init_distributed()
    project = Path(project).resolve()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if resume and run_dir is None:
        run_dir = latest_run(project)
        if run_dir is None:
            raise TrainingError(
                f"No interrupted run of {project.name} to resume; start one without --resume."
            )
    if run_dir is None:
        run_dir = runs_dir() / f"{_slug(project.stem)}-{stamp}"
        if rank == 0 and run_dir.exists():
            run_dir = run_dir.with_name(run_dir.name + f"-{time.time_ns() % 10**6}")
        if _world > 1:  # every process must use the same directory
            import torch.distributed as dist

            holder = [str(run_dir)]
            dist.broadcast_object_list(holder, src=0)
            run_dir = Path(holder[0])
    run_dir = Path(run_dir)
    if resume and not (run_dir / STATE_FILE).is_file():
        raise TrainingError(f"{run_dir} holds no training state to resume.")

    store = ProjectStore(project, create=False)
    try:
        recordings, labels = from_project(store)
        base_detector, parent = load_base(base, config.seed)
        if rank == 0:
            run_dir.mkdir(parents=True, exist_ok=True)
            info = {"project": str(project), "base": base, "parent": parent,
                    "config": config.to_dict(), "started": stamp}  # fmt: skip
            if not (run_dir / RUN_INFO).is_file():
                (run_dir / RUN_INFO).write_text(json.dumps(info, indent=1), encoding="utf-8")
            run_id = store.start_training_run(
                base_model=parent, params={**config.to_dict(), "run_dir": str(run_dir)}
            )
        torch.manual_seed(config.seed)
        trainer = Trainer(
            base_detector, labels=labels,
            recordings=recordings, config=config, run_dir=run_dir, parent=parent,
            progress=progress, cancel=cancel, started=started,
        )  # fmt: skip
        try:
            result = trainer.fit(resume=resume)
        except BaseException:
            if rank == 0:
                store.finish_training_run(run_id, status="failed")
            raise
        model_name = None
        if rank == 0:
            if register and result.checkpoint is not None and result.status != "cancelled":
                model_name = _register(result, name or f"{_slug(project.stem)}-ft-{stamp}", parent)
            store.finish_training_run(
                run_id, status=result.status, output_model=model_name,
                metrics={"before": result.metrics_before, "after": result.metrics_after,
                         "best_epoch": result.best_epoch, "postprocess": result.postprocess},
            )  # fmt: skip
    finally:
        store.close()
    return FineTuneOutcome(result, model_name, run_dir)


def _register(result: TrainResult, name: str, parent: str | None) -> str:
    from ..hub.installed import register_checkpoint

    metrics = {
        "val_before": result.metrics_before,
        "val_after": result.metrics_after,
        "best_epoch": result.best_epoch,
        "data": result.data,
        "postprocess": result.postprocess,
    }
    record = register_checkpoint(result.checkpoint, name, "fine-tune", parent=parent,
                                 metrics=metrics)  # fmt: skip
    return record.name
