"""Elementwise optimizers over stacked parameters, with per-model hyperparameters.

Every hyperparameter is a tensor of shape (M, 1, 1) that broadcasts over a parameter of
shape (M, ...), so the M models of a group may each have their own. A model whose entry of
``active`` is 0 is frozen: its parameters no longer change.
"""

from __future__ import annotations

from typing import Sequence

import torch


class SGD:
    """theta <- theta - lr * grad (Robbins and Monro 1951); full batch, this is gradient descent."""

    def __init__(self, params: Sequence[torch.Tensor], lr: torch.Tensor):
        self.params = list(params)
        self.lr = lr  # (M, 1, 1)

    @torch.no_grad()
    def step(self, active: torch.Tensor) -> None:
        scale = self.lr * active  # (M, 1, 1)
        for p in self.params:
            if p.grad is not None:
                p.sub_(scale.view(-1, *([1] * (p.dim() - 1))) * torch.nan_to_num(p.grad))


OPTIMIZERS = {"sgd": SGD}


def make_optimizer(name: str, params: Sequence[torch.Tensor], hyper: dict[str, torch.Tensor]):
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(sorted(OPTIMIZERS))}") from None
    return cls(params, **hyper)
