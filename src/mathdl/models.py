"""Networks as stacked-parameter ensembles: M models of one shape in one set of tensors.

Layer l of all M models is a weight of shape (M, out, in) and a bias of shape (M, out, 1);
activations are kept as columns, h of shape (M, features, batch), so a layer is one
``baddbmm``: h_{l+1} = sigma(b_l + W_l h_l). Each model's parameters are drawn from its own
generator, exactly as ``torch.nn.Linear`` would draw them after ``torch.manual_seed(seed)``.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

from mathdl.config import ModelConfig

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "logistic": torch.sigmoid,
    "tanh": torch.tanh,
    "softplus": torch.nn.functional.softplus,
    "identity": lambda h: h,
}


def activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(sorted(ACTIVATIONS))}") from None


def layer_sizes(model: ModelConfig, input_dim: int, output_dim: int) -> list[int]:
    return [input_dim] + [model.width] * model.depth + [output_dim]


def init_params(sizes: Sequence[int], generators: Sequence[torch.Generator]) -> list[torch.Tensor]:
    """PyTorch's default ``nn.Linear`` init, per model: W, b ~ U[-1/sqrt(fan_in), 1/sqrt(fan_in)].

    Returns [W_1, b_1, W_2, b_2, ...] with W_l of shape (M, out, in) and b_l of shape (M, out, 1).
    The draws follow nn.Linear's order (weight then bias, layer by layer) on each generator.
    """
    params: list[list[torch.Tensor]] = [[] for _ in range(2 * (len(sizes) - 1))]
    for g in generators:
        for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            bound = 1.0 / math.sqrt(fan_in)
            # kaiming_uniform_(a=sqrt(5)) as nn.Linear uses it has exactly this bound.
            w = torch.empty(fan_out, fan_in).uniform_(-bound, bound, generator=g)
            b = torch.empty(fan_out).uniform_(-bound, bound, generator=g)
            params[2 * layer].append(w)
            params[2 * layer + 1].append(b.unsqueeze(-1))
    return [torch.stack(p) for p in params]


def forward(params: Sequence[torch.Tensor], x: torch.Tensor, act: Callable) -> torch.Tensor:
    """Ensemble forward pass. x: (M, in, B) -> outputs (M, out, B)."""
    h = x
    n_layers = len(params) // 2
    for layer in range(n_layers):
        w, b = params[2 * layer], params[2 * layer + 1]
        h = torch.baddbmm(b, w, h)  # (M, out, B)
        if layer < n_layers - 1:
            h = act(h)
    return h
