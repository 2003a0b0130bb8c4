"""The agile loop: a linear head on the index's cached embeddings, trained in seconds
from a few labelled windows, re-ranking every window; an uncertainty order for active
learning; and the head registered as a detection model.

Labels come from the project's events of one label: accepted, edited and added events
are positives, rejected ones negatives (the same reading as fine-tuning's); random
unlabelled windows join as weak negatives (small weight: most windows are not the
class), so a few positives alone already train a useful head.

The head is the fine-tuning engine's head-only strategy on cached embeddings, reduced
to one class: a linear layer over the model's ``segment_embedding`` whose bias starts at
the logit of the class prior (:func:`panns_core.training.heads.prior_logits`). The window
vectors are means of segment embeddings, so the head applied to each segment is the same
linear function: :func:`register_head` writes it as the model's own output layer (one
class) and the result detects like any fine-tuned model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..cancel import CancelToken
from ..errors import Cancelled, TrainingError
from .index import ProjectIndex
from .query import Hit, rank_rows

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ..hub.detector import Detector
    from ..hub.installed import ModelRecord

POSITIVE_STATUSES = ("accepted", "edited", "added")
NEGATIVE_STATUSES = ("rejected",)
WEAK_NEGATIVES = 512
WEAK_WEIGHT = 0.1
STEPS = 300
MODES = ("score", "uncertain")


@dataclass(frozen=True)
class Labelled:
    """Index rows under positive and negative events, and the spans they came from."""

    positives: np.ndarray
    negatives: np.ndarray
    spans: tuple[tuple[int, float, float], ...]  # (entry, onset, offset) of every event


def labelled_rows(index: ProjectIndex, events: pd.DataFrame, label: str) -> Labelled:
    """Rows of ``index`` under the events of ``label`` (an events frame of the store)."""
    pos: list[np.ndarray] = []
    neg: list[np.ndarray] = []
    spans = []
    names = {e.path: i for i, e in enumerate(index.entries)}
    by_name = {e.name: i for i, e in enumerate(index.entries)}
    mine = events[events["label"].astype(str).str.casefold() == label.casefold()]
    for rec, onset, offset, status in zip(mine["recording"].astype(str), mine["onset"],
                                          mine["offset"], mine["status"]):  # fmt: skip
        i = names.get(rec, by_name.get(Path(rec).name))
        if i is None or status not in POSITIVE_STATUSES + NEGATIVE_STATUSES:
            continue
        rows = index.rows_in(index.entries[i], float(onset), float(offset))
        (pos if status in POSITIVE_STATUSES else neg).append(rows)
        spans.append((i, float(onset), float(offset)))
    join = lambda parts: np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)  # noqa: E731
    positives, negatives = join(pos), join(neg)
    negatives = np.setdiff1d(negatives, positives)  # a window with both: positive
    return Labelled(positives, negatives, tuple(spans))


@dataclass(frozen=True)
class Head:
    """``logit = vectors @ weight + bias`` over the raw (un-normalised) window vectors."""

    label: str
    weight: np.ndarray
    bias: float
    positives: int
    negatives: int
    seconds: float
    model_id: str

    def logits(self, vectors: np.ndarray, chunk: int = 65536) -> np.ndarray:
        out = np.empty(len(vectors), np.float32)
        for lo in range(0, len(vectors), chunk):
            block = np.asarray(vectors[lo : lo + chunk], np.float32)
            out[lo : lo + chunk] = block @ self.weight + self.bias
        return out


HeadProgress = Callable[[float], None]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for large |x|


def train_head(index: ProjectIndex, labelled: Labelled, label: str, *,
               weak_negatives: int = WEAK_NEGATIVES, steps: int = STEPS, seed: int = 0,
               progress: HeadProgress | None = None,
               cancel: CancelToken | None = None) -> Head:  # fmt: skip
    """Fit the head on the labelled rows (plus weak negatives); well under a second."""
    from ..training.heads import prior_logits

    started = time.monotonic()
    if len(labelled.positives) == 0:
        raise TrainingError(f"No positive example of {label!r} yet: accept or add one (A) "
                            "before training.")  # fmt: skip
    rng = np.random.default_rng(seed)
    taken = np.union1d(labelled.positives, labelled.negatives)
    pool = np.setdiff1d(np.arange(index.rows), taken)
    weak = rng.choice(pool, min(weak_negatives, len(pool)), replace=False) if len(pool) else (
        np.zeros(0, np.int64))  # fmt: skip
    rows = np.concatenate([labelled.positives, labelled.negatives, weak]).astype(np.int64)
    order = np.argsort(rows)  # memory-mapped reads in file order
    x = np.empty((len(rows), index.dim), np.float64)
    x[order] = np.asarray(index.vectors[rows[order]], np.float64)
    y = np.concatenate([np.ones(len(labelled.positives)), np.zeros(len(rows) -
                        len(labelled.positives))])  # fmt: skip
    n_pos, n_neg = len(labelled.positives), len(labelled.negatives)
    w = np.concatenate([np.full(n_pos, 1.0), np.full(n_neg, 1.0),
                        np.full(len(weak), WEAK_WEIGHT)])  # fmt: skip
    # balance: positives carry as much weight as all negatives together
    w[:n_pos] *= max(1.0, w[n_pos:].sum() / max(n_pos, 1))
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-3
    xs = (x - mean) / scale
    w = w / w.sum()
    # full-batch AdamW in numpy: the problem is small (hundreds of rows), and torch's
    # threads on a busy 2-core machine made 300 steps take 8 s instead of 0.2 s
    rng_init = np.random.default_rng(seed)
    weight = rng_init.normal(0.0, 0.01, index.dim)
    prior = float(w[:n_pos].sum())
    bias = float(prior_logits(np.array([prior]), 1e-3, 1 - 1e-3)[0])
    params = np.concatenate([weight, [bias]])
    m1, m2 = np.zeros_like(params), np.zeros_like(params)
    lr, beta1, beta2, decay = 0.02, 0.9, 0.999, 1e-2
    for step in range(1, steps + 1):
        if cancel is not None and cancel.is_set():
            raise Cancelled("Training the head was cancelled.")
        logits = xs @ params[:-1] + params[-1]
        residual = w * (_sigmoid(logits) - y)  # d(weighted BCE)/d(logit)
        grad = np.concatenate([xs.T @ residual, [residual.sum()]])
        m1 = beta1 * m1 + (1 - beta1) * grad
        m2 = beta2 * m2 + (1 - beta2) * grad**2
        update = (m1 / (1 - beta1**step)) / (np.sqrt(m2 / (1 - beta2**step)) + 1e-8)
        params[:-1] *= 1 - lr * decay  # decoupled weight decay (as AdamW)
        params -= lr * update
        if progress is not None and (step % 10 == 0 or step == steps):
            progress(step / steps)
    a = params[:-1] / scale  # fold the scaling in
    b = float(params[-1]) - float(a @ mean)
    return Head(label, a.astype(np.float32), b, n_pos, n_neg, time.monotonic() - started,
                index.model_id)  # fmt: skip


def rerank(index: ProjectIndex, head: Head, *, top: int = 50, mode: str = "score",
           exclude: Sequence[tuple[int, float, float]] = ()) -> list[Hit]:  # fmt: skip
    """Every window ranked by the head: ``score`` (probability, best first) or
    ``uncertain`` (nearest the decision boundary first). ``exclude``: spans already
    labelled. A hit's score is the head's probability in both modes."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    logits = head.logits(index.vectors)
    probability = _sigmoid(logits.astype(np.float64))
    key = probability if mode == "score" else -np.abs(logits)
    count = min(index.rows, 8 * top + 64)
    rows = np.argpartition(-key, count - 1)[:count] if count < index.rows else np.arange(
        index.rows)  # fmt: skip
    order = rows[np.argsort(-key[rows], kind="stable")]
    hits = rank_rows(index, order, np.linspace(1.0, 0.0, len(order)), top, exclude)
    return [Hit(h.recording, h.path, h.onset, h.offset, float(probability[h.row]), h.row)
            for h in hits]  # fmt: skip


def head_module(detector: Detector, head: Head) -> Any:
    """A copy of ``detector``'s network whose output layer is ``head`` (one class)."""
    import copy

    import torch

    module = copy.deepcopy(detector.module).cpu().float().eval()
    module.reset_classifier(1, bias=torch.tensor([head.bias]))
    weight = torch.from_numpy(head.weight.astype(np.float32))
    with torch.no_grad():
        if getattr(module, "head", None) == "att":
            module.att_block.cla.weight.copy_(weight.view(1, -1, 1))
            module.att_block.att.weight.zero_()  # uniform attention over time
            module.att_block.att.bias.zero_()
        else:
            module.fc_audioset.weight.copy_(weight.view(1, -1))
            module.fc_audioset.bias.fill_(head.bias)
    return module


def register_head(detector: Detector, head: Head, name: str, *,
                  folder: str | Path | None = None) -> ModelRecord:  # fmt: skip
    """Save the head as a checkpoint of ``detector``'s architecture and register it."""
    import tempfile

    from ..hub.checkpoints import save_checkpoint
    from ..hub.installed import get_registry

    if detector.model_id != head.model_id:
        raise TrainingError(f"This head was trained on {head.model_id}'s embeddings, not on "
                            f"{detector.model_id}'s; load that model.")  # fmt: skip
    registry = get_registry()
    registry.check_new_name(name)
    module = head_module(detector, head)
    metrics = {"agile": {"positives": head.positives, "negatives": head.negatives,
                         "train_seconds": round(head.seconds, 3)}}  # fmt: skip
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        path = save_checkpoint(Path(tmp) / f"{name}.pth", module,
                               architecture=detector.architecture,
                               feature_config=module.feature_config, labels=[head.label],
                               parent=detector.model_id, metrics=metrics)  # fmt: skip
        return registry.register_checkpoint(path, name, "fine-tune", parent=detector.model_id,
                                            metrics=metrics)  # fmt: skip
