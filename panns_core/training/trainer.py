"""The fine-tuning loop: prepare, train epochs, validate, keep the best, stop, finish.

Reproducibility is by construction. Every random choice of a step is drawn from
generators seeded with (seed, epoch, step, chunk) (:mod:`.steps`), never from state
carried between steps. So a run resumed from its state file (weights, optimiser,
:class:`~.state.FitState`) takes exactly the steps of an uninterrupted run, and a
global batch split over N DDP processes (chunks r, r+N, ...) takes the steps one
process takes when it accumulates the same chunks.

The parts: :mod:`.strategies` (what trains: head / partial / full), :mod:`.steps`
(inputs, augmentation, loss, learning-rate schedule), :mod:`.features` (log-mel
computed once for the full / partial strategies), :mod:`.validation` (metrics and
the best-epoch rule: validation segment mAP), :mod:`.calibration` (post-processing
tuned on validation after training, shipped in the checkpoint), :mod:`.state`
(position, resume, checkpoints) and :mod:`.distributed` (DDP). Optimiser AdamW,
learning rate with linear warm-up then cosine decay to zero, set per step from the
step number; with a time budget, from the share of the training budget used (a
shared CPU does fewer steps than any plan promises), which is not reproducible
step for step: resume and DDP equality hold for runs without a time budget.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..cancel import CancelToken
from ..errors import TrainingError
from .config import TrainConfig
from .data import (
    BalancedSampler,
    ClipAudio,
    LabelledRecording,
    clip_targets,
    data_summary,
    make_clips,
    split_by_recording,
)
from .distributed import (
    agree,
    average_buffers,
    barrier,
    device_for,
    dist_info,
    sum_over_processes,
)
from .features import LogMelNet, can_cache_features, clip_features
from .heads import adapt_head
from .progress import EventLog, ProgressCallback
from .state import (
    BEST_FILE,
    EVENTS_FILE,
    MODEL_FILE,
    STATE_FILE,
    FitState,
    RunFiles,
    check_same_data,
    read_state,
    resumed_config,
)
from .steps import (
    Batches,
    ClipGeometry,
    chunk_loss,
    lr_factor,
    lr_fraction,
    resolve_precision,
    targets_at,
)
from .strategies import (
    CachedHead,
    clip_embeddings,
    freeze,
    is_sliced,
    restore_weights,
    sliced_embeddings,
    snap_clips,
    trainable_state,
)
from .validation import (
    SELECTION_METRIC,
    Validator,
    improves,
    patience_ran_out,
    selection_score,
)

if TYPE_CHECKING:
    from ..hub.detector import Detector


@dataclass
class TrainResult:
    """What a run produced."""

    status: str
    run_dir: Path
    checkpoint: Path | None
    state: Path | None
    best_epoch: int | None
    epochs_run: int
    metrics_before: dict[str, Any] | None
    metrics_after: dict[str, Any] | None
    history: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    #: the post-processing calibrated on validation (PostprocessParams.to_dict()), or None
    postprocess: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "checkpoint": None if self.checkpoint is None else str(self.checkpoint),
            "state": None if self.state is None else str(self.state),
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "metrics_before": self.metrics_before,
            "metrics_after": self.metrics_after,
            "postprocess": self.postprocess,
        }


class Trainer:
    """Fine-tunes the network of ``base`` (a PannsCNN with its base head) on recordings.

    ``base.labels`` name the base head's outputs (empty for an untrained network);
    the new head covers ``labels``. The network is trained in place. ``run_dir``
    receives the resumable state (``state.pt``), the best weights (``best.pth``), the
    result (``model.pth``) and the event log. ``progress`` gets the events documented
    in :mod:`.progress`; ``cancel`` is checked between steps.
    """

    def __init__(
        self,
        base: Detector,
        *,
        labels: Sequence[str],
        recordings: Sequence[LabelledRecording],
        config: TrainConfig,
        run_dir: str | Path,
        parent: str | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        started: float | None = None,
    ) -> None:
        self.model: nn.Module = base.module
        self.base_labels = list(base.labels)
        self.labels = list(labels)
        self.recordings = list(recordings)
        self.config = config
        self.run_dir = Path(run_dir)
        self.parent = parent
        self.progress = progress
        self.cancel = cancel
        self.rank, self.world = dist_info()
        # the run's clock (time budget) starts at ``started`` (time.monotonic()), e.g. when
        # the command started, else now
        self.fit_state = FitState(planned_epochs=config.epochs)
        if started is not None:
            self.fit_state.started = started
        self.postprocess: dict[str, Any] | None = None
        self.calibration: dict[str, Any] | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def elapsed(self) -> float:
        return self.fit_state.elapsed()

    # -------------------------------------------------------------------- run
    def fit(self, resume: bool = False) -> TrainResult:
        """Train; with ``resume`` continue from ``run_dir/state.pt`` when it exists."""
        threads = torch.get_num_threads()
        try:
            return self._fit(resume)
        finally:
            torch.set_num_threads(threads)

    def _fit(self, resume: bool) -> TrainResult:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        saved = read_state(self.run_dir) if resume else None
        if saved is not None:
            self.config = resumed_config(saved, self.config, self.labels)
        fit = self.fit_state = FitState.begin(self.config, saved, self.fit_state.started)
        self._prepare(saved)
        if saved is not None:
            check_same_data(saved, self.summary)
        self._emit_start(fit)
        if not fit.resumed:
            fit.metrics_before = self.validator.validate()
            self._emit({"event": "validation", "epoch": 0, "metrics": fit.metrics_before})

        # the time-based schedule runs from here (a resumed run: from the run's start)
        self.train_started = 0.0 if fit.resumed else self.elapsed()
        status = "completed"
        while fit.epoch <= fit.planned_epochs:
            epoch_t0 = time.monotonic()
            stop = self._train_epoch(fit)
            if stop == "cancelled":
                return self._cancelled(fit)
            average_buffers(self.model, self.world)
            metrics = self.validator.validate()
            improved = self._select(fit, metrics)
            seconds = time.monotonic() - epoch_t0
            self._plan_time_budget(fit, seconds)
            record = {"epoch": fit.epoch, "train_loss": float(np.mean(fit.epoch_losses)),
                      "metrics": metrics}  # fmt: skip
            fit.history.append(record)
            stop = stop or self._stop_rule(fit, metrics, seconds)
            fit.next_epoch()
            path = self.files.save_state(fit, self.optimizer) if self.is_main else None
            self._emit({
                "event": "epoch", **record, "best_epoch": fit.best_epoch,
                "best_score": fit.best_score if fit.best_score >= 0 else None,
                "selection_metric": SELECTION_METRIC,
                "best_f1": self._best_event_f1(fit),
                "improved": improved, "checkpoint": path,
                "best_checkpoint": self.run_dir / BEST_FILE,
                "planned_epochs": fit.planned_epochs, "total_steps": self.total_steps,
                "seconds": seconds,
            })  # fmt: skip
            stop = agree(stop, self.world)
            if stop:
                status = stop
                break

        result = self._finish(status, fit)
        self._emit({"event": "done", "status": status, "result": result.to_dict()})
        return result

    # ------------------------------------------------------------------- set-up
    def _prepare(self, saved: dict | None) -> None:
        """Data, clips, targets, strategy, optimiser, validation: all a run needs."""
        cfg, model = self.config, self.model
        self.device = device_for(cfg.device, self.rank)
        if cfg.precision == "auto":
            self.config = cfg = dataclasses.replace(cfg, precision=resolve_precision(self.device))
        self.geometry = geo = ClipGeometry.of(model, cfg)

        # the data: split by recording, clips around events, balanced sampling
        self.train_idx, self.val_idx = split_by_recording(
            self.recordings, cfg.val_fraction, cfg.seed
        )
        self.clips = make_clips(
            self.recordings, self.train_idx, cfg.clip_seconds, cfg.background_ratio, cfg.seed
        )
        self.sliced = is_sliced(model, cfg)
        if self.sliced:
            self.clips, self.rec_segments = snap_clips(
                model, self.recordings, self.clips, self.val_idx, geo
            )
        if not any(c.anchor >= 0 for c in self.clips):
            raise TrainingError(
                "The training recordings have no accepted, edited or added events; "
                "confirm or add some events first."
            )
        self.summary = data_summary(
            self.recordings, self.train_idx, self.val_idx, self.labels, self.clips
        )
        self.steps_per_epoch = max(1, round(
            (cfg.samples_per_epoch or len(self.clips)) / cfg.batch_size))  # fmt: skip
        self.sampler = BalancedSampler(self.clips, cfg.seed, self.steps_per_epoch * cfg.batch_size)
        audio = features = None
        self.cached_features = cfg.feature_cache and can_cache_features(model, cfg.strategy)
        if self.cached_features:
            features = clip_features(model, self.recordings, self.clips, cfg.clip_seconds,
                                     cfg.shift)  # fmt: skip
        elif not self.sliced:
            audio = ClipAudio(self.recordings, self.clips, cfg.clip_seconds, cfg.shift,
                              geo.sample_rate)  # fmt: skip
        nominal = self._nominal_targets()
        self.total_steps = self.fit_state.planned_epochs * self.steps_per_epoch
        self.warmup = max(1, round(cfg.warmup_fraction * cfg.epochs * self.steps_per_epoch))

        # the batch split: chunks of micro-batches shared by the processes
        self.micro = cfg.micro_batch or max(1, cfg.batch_size // self.world)
        self.n_chunks = cfg.batch_size // self.micro
        if self.n_chunks % self.world:
            raise TrainingError(
                f"batch_size {cfg.batch_size} / micro_batch {self.micro} = {self.n_chunks} "
                f"chunks cannot be shared by {self.world} processes; choose sizes so they "
                "divide."
            )

        # the network: new head, strategy, resumed weights, optimiser
        order = self.sampler.epoch(0)
        prior = np.mean([nominal[i][0] for i in order], axis=(0, 1))
        head_init = adapt_head(model, self.base_labels, self.labels, prior)
        model.spec_augment = cfg.spec_augment
        freeze(model, cfg)
        model.to(self.device)
        fingerprint = None
        if cfg.strategy == "head":
            from .embeddings import trunk_fingerprint

            fingerprint = trunk_fingerprint(model)
        if saved is not None:
            restore_weights(model, saved, fingerprint)
        self.optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad],
            lr=cfg.lr, weight_decay=cfg.weight_decay,
        )  # fmt: skip
        if saved is not None:
            self.optimizer.load_state_dict(saved["optimizer"])
        self.files = RunFiles(self.run_dir, model, cfg, self.labels, self.parent, self.summary,
                              head_init, fingerprint)  # fmt: skip

        # validation (main process) and the inputs of the steps
        self.validator = Validator(
            model, self.recordings, self.val_idx if self.is_main else [], self.labels,
            config=cfg, geometry=geo, device=self.device, sliced=self.sliced,
        )  # fmt: skip
        head_inputs = None
        if cfg.strategy == "head":
            head_inputs, self.validator.embeddings = self._head_inputs(audio, fingerprint)
        self.batches = Batches(cfg, self.recordings, self.clips, geo, len(self.labels), nominal,
                               audio, self.device, head_inputs, features)  # fmt: skip
        self.net: nn.Module = model
        if cfg.strategy == "head":
            self.net = CachedHead(model)
        elif self.cached_features:
            self.net = LogMelNet(model)
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(
                self.net,
                find_unused_parameters=getattr(model, "head", "") == "att",
                broadcast_buffers=False,
            )
        if self.sliced and self.device.type == "cpu":
            # Epochs on cached tensors are many tiny ops; on a busy CPU every parallel
            # region waits for a second core (measured: 1.4 s vs 0.2 s per epoch).
            torch.set_num_threads(1)

    def _nominal_targets(self) -> list[tuple[np.ndarray, ...]]:
        """Targets of every clip at its nominal start (the prior; the head-only steps)."""
        cfg, geo = self.config, self.geometry
        nominal = [
            targets_at(self.recordings[c.recording], c.start, geo, len(self.labels),
                       cfg.negative_weight)
            for c in self.clips
        ]  # fmt: skip
        if self.sliced:  # rows past the end of a recording shorter than a clip: no loss
            for k, clip in enumerate(self.clips):
                first = round(clip.start / geo.segment_seconds)
                seg_t, seg_w = nominal[k][:2]
                if first + geo.n_seg > self.rec_segments[clip.recording]:
                    seg_w[max(0, self.rec_segments[clip.recording] - first) :] = 0.0
                    clip_t, clip_w = clip_targets(seg_t, seg_w)
                    weak = self.recordings[clip.recording].weak_classes()
                    clip_t[weak], clip_w[weak] = nominal[k][2][weak], nominal[k][3][weak]
                    nominal[k] = (seg_t, seg_w, clip_t, clip_w)
        return nominal

    def _head_inputs(self, audio: ClipAudio | None, fingerprint: str | None):
        """Head-only: the cached embeddings of the clips and validation recordings."""
        kw = {"precision": self.config.precision, "device": self.device}
        if self.sliced:
            return sliced_embeddings(
                self.model, self.recordings, self.clips, self.validator.indices,
                self.rec_segments, self.geometry, fingerprint=fingerprint, **kw,
            )  # fmt: skip
        windows = {i: self.validator.windows(i)[0] for i in self.validator.indices}
        return clip_embeddings(self.model, self.clips, audio, windows, **kw)

    # ----------------------------------------------------------------- training
    def _train_epoch(self, fit: FitState) -> str | None:
        """Steps from ``fit.step`` to the end of the epoch; the reason it stopped early."""
        cfg = self.config
        order = self.sampler.epoch(fit.epoch)
        while fit.step < self.steps_per_epoch:
            global_step = fit.global_step(self.steps_per_epoch)
            lr = cfg.lr * self._lr_factor(global_step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            loss = self._train_step(fit.epoch, fit.step, order)
            fit.epoch_losses.append(loss)
            fit.step += 1
            if self.is_main and (fit.step % cfg.log_every == 0
                                 or fit.step == self.steps_per_epoch):  # fmt: skip
                self._emit({
                    "event": "step", "epoch": fit.epoch, "step": fit.step,
                    "global_step": global_step + 1, "total_steps": self.total_steps,
                    "loss": loss, "lr": lr,
                })  # fmt: skip
            stop = self._should_stop(fit.step < self.steps_per_epoch)
            if stop:
                return stop
        return None

    def _lr_factor(self, global_step: int) -> float:
        """Warm-up then cosine: over the planned steps, or with a time budget over the
        share of the training budget used (or of the epochs, if that is larger), so a
        busy CPU doing fewer steps than a timing probe promised still decays to 0."""
        cfg = self.config
        budget = cfg.train_budget
        if not budget:
            return lr_factor(global_step, self.total_steps, self.warmup)
        start = self.train_started
        used = (self.elapsed() - start) / max(1e-9, budget - start)
        used = max(used, global_step / max(1, cfg.epochs * self.steps_per_epoch))
        return lr_fraction(used, cfg.warmup_fraction)

    def _train_step(self, epoch: int, step: int, order: np.ndarray) -> float:
        """One optimiser step on a global batch; this process takes its chunks."""
        cfg = self.config
        batch = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
        mine = list(range(self.rank, self.n_chunks, self.world))
        self.net.train()
        self.optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), dtype=torch.float64)
        scale = self.world / self.n_chunks
        for k, chunk in enumerate(mine):
            indices = batch[chunk * self.micro : (chunk + 1) * self.micro]
            inputs, mixup, targets = self.batches.chunk(epoch, step, chunk, indices)
            sync = k == len(mine) - 1 or self.world == 1
            context = self.net.no_sync() if not sync else contextlib.nullcontext()
            with context:
                loss = chunk_loss(self.net, inputs, mixup, targets, config=cfg,
                                  head_only=cfg.strategy == "head", device=self.device)  # fmt: skip
                (loss * scale).backward()
            total += loss.detach().double().cpu()
        sum_over_processes(total, self.world)
        self.optimizer.step()
        return float(total) / self.n_chunks

    # -------------------------------------------------------- select and stop
    def _select(self, fit: FitState, metrics: dict[str, Any] | None) -> bool:
        """Keep the weights of an improved epoch (main process); whether it improved."""
        if not self.is_main:
            return False
        score = selection_score(metrics)
        if not improves(score, fit.best_score):
            fit.bad_epochs += 1
            return False
        fit.best_score = score if score is not None else -1.0
        fit.best_epoch, fit.bad_epochs = fit.epoch, 0
        if self.files.fingerprint:  # head only: the best head lives in the state
            fit.best_head = trainable_state(self.model)
        else:
            self.files.save_weights(self.run_dir / BEST_FILE, self.model.state_dict(),
                                    {"val": metrics}, "best", fit.epoch)  # fmt: skip
        return True

    @staticmethod
    def _best_event_f1(fit: FitState) -> float | None:
        """Validation event F1 of the best epoch so far (what the GUI shows)."""
        if fit.best_epoch is None:
            return None
        metrics = fit.best_metrics()
        return None if not metrics else metrics.get("event_f1")

    def _plan_time_budget(self, fit: FitState, seconds: float) -> None:
        """After a new run's first epoch: plan as many epochs as fit in the budget."""
        cfg = self.config
        if fit.epoch == 1 and not fit.resumed and cfg.train_budget:
            fits = max(1, int((cfg.train_budget - (self.elapsed() - seconds)) // seconds))
            # the time-based schedule goes on until the budget; this is the estimate shown
            self.total_steps = min(cfg.epochs, fits) * self.steps_per_epoch

    def _stop_rule(self, fit: FitState, metrics: dict | None, seconds: float) -> str | None:
        """Stop after this epoch? (patience ran out, or the next epoch would overrun)."""
        cfg = self.config
        progress = fit.epoch / max(1, fit.planned_epochs)
        if cfg.time_budget:
            progress = max(progress, self.elapsed() / cfg.time_budget)
        if metrics is not None and patience_ran_out(fit.bad_epochs, cfg.patience, progress):
            return "early_stopped"
        if cfg.train_budget and fit.epoch < fit.planned_epochs and (
            self.elapsed() >= cfg.train_budget
            or (fit.epoch > 1 and self.elapsed() + 0.25 * seconds > cfg.train_budget)
        ):  # the next epoch would not do a quarter of its steps
            return "time_budget"
        return None

    def _should_stop(self, mid_epoch: bool) -> str | None:
        reason = None
        if self.cancel is not None and self.cancel.is_set():
            reason = "cancelled"
        elif mid_epoch and self.config.train_budget and self.elapsed() > self.config.train_budget:
            reason = "time_budget"
        return agree(reason, self.world)

    # ------------------------------------------------------------------ finish
    def _cancelled(self, fit: FitState) -> TrainResult:
        """Save where the run stopped so it can resume at the next step."""
        path = self.files.save_state(fit, self.optimizer) if self.is_main else None
        barrier(self.world)
        result = self._result("cancelled", fit, path)
        self._emit({"event": "done", "status": "cancelled", "result": result.to_dict()})
        return result

    def _finish(self, status: str, fit: FitState) -> TrainResult:
        """Write ``model.pth``: the best epoch's weights (else the last ones)."""
        checkpoint, after = None, None
        if self.is_main:
            best_path = self.run_dir / BEST_FILE
            if fit.best_epoch is not None and fit.best_head is not None:
                weights = copy.deepcopy(self.model.state_dict())
                weights.update(fit.best_head)
                after = fit.best_metrics()
            elif fit.best_epoch is not None and best_path.is_file():
                from ..hub.checkpoints import load_checkpoint

                weights = load_checkpoint(best_path).state_dict
                after = fit.best_metrics()
            else:
                weights = copy.deepcopy(self.model.state_dict())
                after = fit.history[-1]["metrics"] if fit.history else None
            self.model.load_state_dict(weights)
            postprocess = self._calibrate(after)
            extra = {} if postprocess is None else {"postprocess": postprocess}
            checkpoint = self.files.save_weights(
                self.run_dir / MODEL_FILE, weights,
                {"before": fit.metrics_before, "after": after}, status, fit.best_epoch,
                extra,
            )  # fmt: skip
        barrier(self.world)
        return self._result(status, fit, self.run_dir / STATE_FILE, checkpoint, after)

    def _calibrate(self, after: dict[str, Any] | None) -> dict[str, Any] | None:
        """Post-processing tuned on the validation recordings with the kept weights
        (:mod:`.calibration`); adds its validation event F1 to ``after``."""
        if not self.config.calibrate or not self.validator.indices or after is None:
            return None
        from .calibration import calibrate

        cfg = self.config
        deadline = None
        if cfg.time_budget:
            deadline = time.monotonic() + max(0.0, cfg.time_budget - self.elapsed())
        self._emit({"event": "calibration", "stage": "start"})
        predictions = self.validator.predictions()
        params, report = calibrate(predictions, self.labels, self.geometry.segment_seconds,
                                   deadline=deadline)  # fmt: skip
        self.calibration = report
        self._emit({"event": "calibration", "stage": "done", "report": report})
        if params is None:
            return None
        after["calibrated_event_f1"] = report["event_f1"]
        after["calibration"] = {k: report[k] for k in ("chosen", "global", "per_class_event_f1")}
        self.postprocess = params.to_dict()
        return self.postprocess

    def _result(self, status: str, fit: FitState, state_path: Path | None,
                checkpoint: Path | None = None,
                after: dict | None = None) -> TrainResult:  # fmt: skip
        return TrainResult(
            status=status, run_dir=self.run_dir, checkpoint=checkpoint, state=state_path,
            best_epoch=fit.best_epoch, epochs_run=len(fit.history),
            metrics_before=fit.metrics_before, metrics_after=after, history=fit.history,
            data=self.summary, labels=self.labels, elapsed=self.elapsed(),
            postprocess=self.postprocess,
        )  # fmt: skip

    # ------------------------------------------------------------------ events
    def _emit_start(self, fit: FitState) -> None:
        cfg = self.config
        self._emit({
            "event": "start", "run_dir": self.run_dir, "architecture": self.model.arch_name,
            "base": self.parent, "strategy": cfg.strategy, "labels": self.labels,
            "head_init": self.files.head_init, "data": self.summary,
            "epochs": fit.planned_epochs, "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps,
            "global_step": fit.global_step(self.steps_per_epoch),
            "batch_size": cfg.batch_size, "world_size": self.world, "device": str(self.device),
            "precision": cfg.precision, "resumed": fit.resumed, "epoch": fit.epoch,
            "step": fit.step, "config": cfg.to_dict(),
        })  # fmt: skip

    def _emit(self, event: dict[str, Any]) -> None:
        if not self.is_main:
            return
        event = {"event": event.pop("event"), "time": round(self.elapsed(), 3), **event}
        EventLog(self.run_dir / EVENTS_FILE)(event)
        if self.progress is not None:
            self.progress(event)
