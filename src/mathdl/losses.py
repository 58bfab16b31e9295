"""Per-model losses and error rates of an ensemble's outputs.

Outputs have shape (M, K, B). Targets are labels (M, B) for classification or values
(M, K, B) for regression. Each loss returns its mean over the batch, one number per model,
shape (M,); each equals the matching ``torch.nn`` loss with its default mean reduction.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def _one_hot(target: torch.Tensor, n_outputs: int, dtype: torch.dtype) -> torch.Tensor:
    return F.one_hot(target, n_outputs).transpose(1, 2).to(dtype)  # (M, K, B)


def squared_error(out: torch.Tensor, target: torch.Tensor, n_outputs: int) -> torch.Tensor:
    """mean over the batch of sum_k (f_k(x) - y_k)^2 / K (nn.MSELoss); one-hot targets for labels."""
    if target.dtype == torch.int64:
        target = _one_hot(target, n_outputs, out.dtype)
    return ((out - target) ** 2).mean(dim=(1, 2))


def cross_entropy(out: torch.Tensor, target: torch.Tensor, n_outputs: int) -> torch.Tensor:
    """mean over the batch of -log softmax(f(x))_y (nn.CrossEntropyLoss)."""
    if target.dtype != torch.int64:
        raise ValueError("train.loss: cross_entropy needs a classification task")
    logp = torch.log_softmax(out, dim=1)  # (M, K, B)
    return -logp.gather(1, target.unsqueeze(1)).squeeze(1).mean(dim=1)


def hinge(out: torch.Tensor, target: torch.Tensor, n_outputs: int) -> torch.Tensor:
    """Multiclass hinge (Weston and Watkins 1999; nn.MultiMarginLoss):
    mean over the batch of sum_{k != y} max(0, 1 - f_y(x) + f_k(x)) / K.
    """
    if target.dtype != torch.int64:
        raise ValueError("train.loss: hinge needs a classification task")
    f_y = out.gather(1, target.unsqueeze(1))  # (M, 1, B)
    margins = torch.clamp_min(1.0 - f_y + out, 0.0).scatter(1, target.unsqueeze(1), 0.0)  # (M, K, B)
    return margins.sum(dim=1).mean(dim=1) / out.shape[1]


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]] = {
    "mse": squared_error,
    "cross_entropy": cross_entropy,
    "hinge": hinge,
}


def loss_function(name: str):
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; valid: {', '.join(sorted(LOSSES))}") from None


def error_rate(out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Share of misclassified points per model (ties go to the lowest class, as argmax does)."""
    # argmax along the last, contiguous dim: along dim 1 it is ~20x slower on a CPU.
    predicted = out.transpose(1, 2).contiguous().argmax(dim=2)  # (M, B)
    return (predicted != labels).to(out.dtype).mean(dim=1)
