"""Per-model losses and error rates of an ensemble's outputs.

Outputs have shape (M, K, B). Targets are labels (M, B) for classification or values
(M, K, B) for regression. Each function returns one number per model, shape (M,).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def squared_error(out: torch.Tensor, target: torch.Tensor, n_outputs: int) -> torch.Tensor:
    """mean over the batch of sum_k (f_k(x) - y_k)^2 / K; one-hot targets for labels."""
    if target.dtype == torch.int64:
        target = F.one_hot(target, n_outputs).transpose(1, 2).to(out.dtype)  # (M, K, B)
    return ((out - target) ** 2).mean(dim=(1, 2))


def cross_entropy(out: torch.Tensor, target: torch.Tensor, n_outputs: int) -> torch.Tensor:
    """mean over the batch of -log softmax(f(x))_y."""
    if target.dtype != torch.int64:
        raise ValueError("train.loss: cross_entropy needs a classification task")
    logp = torch.log_softmax(out, dim=1)  # (M, K, B)
    return -logp.gather(1, target.unsqueeze(1)).squeeze(1).mean(dim=1)


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]] = {
    "mse": squared_error,
    "cross_entropy": cross_entropy,
}


def loss_function(name: str):
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; valid: {', '.join(sorted(LOSSES))}") from None


def error_rate(out: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Share of misclassified points per model."""
    return (out.argmax(dim=1) != labels).to(out.dtype).mean(dim=1)
