"""Settings of a fine-tuning run (plain data, no torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import TrainingError

STRATEGIES = ("head", "partial", "full")
#: "int8": the frozen trunk's one embedding pass on the int8 CPU fast path (head only);
#: "auto": bf16 autocast on a CPU with native bf16 (AVX512-BF16 / AMX), else fp32
PRECISIONS = ("auto", "fp32", "bf16", "int8")
#: settings a resumed run may change; everything else comes from the saved state
RESUMABLE_OVERRIDES = ("epochs", "time_budget", "patience", "device", "log_every")


@dataclass
class TrainConfig:
    """How to fine-tune. Times in seconds.

    ``batch_size`` is the global batch of one optimiser step. It is processed as
    ``batch_size // micro_batch`` chunks, each seeded from (seed, epoch, step,
    chunk): one process runs the chunks one after another and accumulates
    gradients, ``N`` DDP processes share them, and both take the same steps.

    The defaults are the recipe measured to learn from scratch within a CPU budget
    (notes/exp12): whole 10-s clips, no mixup and no SpecAugment (both slowed
    learning; the options stay), gain jitter, log-mel computed once
    (``feature_cache``), bf16 where the CPU has it. With a ``time_budget`` (the wall
    time of the whole run) the learning rate's warm-up and cosine follow the share of
    the budget used, training stops at ``1 - calibration_reserve`` of it and the rest
    is left for the post-processing calibration.
    """

    strategy: str = "full"
    epochs: int = 30
    batch_size: int = 16
    micro_batch: int | None = None
    lr: float = 2e-3
    weight_decay: float = 1e-2
    warmup_fraction: float = 0.05
    clip_seconds: float = 10.0
    background_ratio: float = 0.5
    max_shift: float | None = None
    negative_weight: float = 2.0
    clip_loss_weight: float = 1.0
    mixup_alpha: float = 1.0
    mixup_prob: float = 0.0
    spec_augment: bool = False
    gain_db: float = 6.0
    partial_blocks: int = 2
    val_fraction: float = 0.25
    threshold: float = 0.5
    median_seconds: float = 0.0
    patience: int = 5
    time_budget: float | None = None
    samples_per_epoch: int | None = None
    precision: str = "auto"
    feature_cache: bool = True
    calibrate: bool = True
    calibration_reserve: float = 0.1
    seed: int = 0
    device: str = "cpu"
    log_every: int = 1

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise TrainingError(
                f"Unknown strategy {self.strategy!r}; use one of {', '.join(STRATEGIES)}."
            )
        if self.precision not in PRECISIONS:
            raise TrainingError(f"precision must be one of {PRECISIONS}, not {self.precision!r}.")
        if self.precision == "int8" and self.strategy != "head":
            raise TrainingError(
                "precision int8 only computes the frozen embeddings of head-only training; "
                "use fp32 or bf16 for the partial and full strategies."
            )
        if self.batch_size < 1 or self.epochs < 1:
            raise TrainingError("batch_size and epochs must be at least 1.")
        if self.micro_batch is not None and (
            self.micro_batch < 1 or self.batch_size % self.micro_batch
        ):
            raise TrainingError(
                f"micro_batch {self.micro_batch} must divide batch_size {self.batch_size}."
            )
        if not 0 <= self.calibration_reserve < 1:
            raise TrainingError("calibration_reserve must be in [0, 1).")
        if not 0 <= self.val_fraction < 1:
            raise TrainingError("val_fraction must be in [0, 1).")
        if self.clip_seconds <= 0:
            raise TrainingError("clip_seconds must be positive.")

    @property
    def shift(self) -> float:
        return self.clip_seconds / 4 if self.max_shift is None else float(self.max_shift)

    @property
    def train_budget(self) -> float | None:
        """Seconds of the budget training may use (the rest: calibration)."""
        if not self.time_budget:
            return None
        reserve = self.calibration_reserve if self.calibrate and self.val_fraction > 0 else 0
        return self.time_budget * (1 - reserve)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
