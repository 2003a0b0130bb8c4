"""The label space of a fine-tuned model: a new output layer over the project's labels.

Rows of labels the base model already knows (an AudioSet class, or a class of an
earlier fine-tuned model; matched ignoring case) start as copies of the base
model's rows, so fine-tuning starts from what the model knew. New rows start from
PANNs' initialisation with the bias at the logit of the class prior: with a zero
bias the first steps of a short run are spent only on learning that events are rare.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def prior_logits(prior: np.ndarray, low: float = 1e-4, high: float = 0.5) -> torch.Tensor:
    """logit(p) of each class prior, clipped to [low, high] first."""
    p = np.clip(np.asarray(prior, dtype=np.float64), low, high)
    return torch.as_tensor(np.log(p / (1 - p)), dtype=torch.float32)


def _head_layers(model: nn.Module) -> list[nn.Module]:
    if getattr(model, "head", None) == "att":
        return [model.att_block.cla, model.att_block.att]
    return [model.fc_audioset]


def adapt_head(
    model: nn.Module,
    base_labels: Sequence[str],
    labels: Sequence[str],
    prior: np.ndarray,
) -> dict[str, str | None]:
    """Give ``model`` an output layer for ``labels``; returns {label: base label or None}.

    The model must offer ``reset_classifier(num_classes, bias)`` (every
    :class:`~panns_core.models.network.PannsCNN` does).
    """
    old = [(layer.weight.detach().clone(), layer.bias.detach().clone())
           for layer in _head_layers(model)]  # fmt: skip
    folded = {name.casefold(): i for i, name in enumerate(base_labels)}
    model.reset_classifier(len(labels), bias=prior_logits(prior))
    source: dict[str, str | None] = {}
    with torch.no_grad():
        for row, label in enumerate(labels):
            i = folded.get(label.casefold())
            source[label] = None if i is None else base_labels[i]
            if i is None:
                continue
            for layer, (weight, bias) in zip(_head_layers(model), old):
                layer.weight[row] = weight[i]
                layer.bias[row] = bias[i]
    return source


def head_outputs(
    model: nn.Module, embedding: torch.Tensor, training: bool
) -> tuple[torch.Tensor | None, torch.Tensor, bool]:
    """The output layer on cached inputs, as the model's own head computes it.

    ``embedding`` is the model's ``segment_embedding`` (batch, segments, dim) for
    SED models, or ``embedding`` (batch, dim) for tagging models. Returns
    (segment logits or None, clip output, whether the clip output is a logit).
    """
    head = getattr(model, "head", "clip")
    if head == "clip":
        return None, model.fc_audioset(embedding), True
    hidden = F.dropout(embedding, p=model.head_dropout, training=training)
    if head == "att":
        clipwise, _, logits = model.att_block(hidden.transpose(1, 2))
        return logits.transpose(1, 2), clipwise, False
    logits = model.fc_audioset(hidden)
    if head == "max":
        return logits, logits.max(dim=1).values, True
    return logits, torch.sigmoid(logits).mean(dim=1), False
