"""Networks as stacked-parameter ensembles: M models of one shape in one set of tensors.

Layer l of all M models is a weight of shape (M, out, in) and a bias of shape (M, out, 1);
activations are kept as columns, h of shape (M, features, batch), so a layer is one
``baddbmm``: h_{l+1} = sigma(b_l + c_l W_l h_l), with c_l = 1 in the standard
parametrization and c_l = 1/sqrt(fan_in) in the NTK parametrization (Jacot et al. 2018).
(Columns rather than rows: measured on the 2-core CI CPU, a whole training step in this layout
ran about 10% faster than with h of shape (M, batch, features).)

Two architectures, both ending in a linear read-out scaled by ``output_scale`` (alpha):

- plain: ``depth`` hidden layers, x -> sigma(W_1 x + b_1) -> ... -> alpha (W_out h + b_out);
- residual: a linear embedding h_0 = W_0 x + b_0, then ``depth`` blocks
  h <- h + s (W_2 sigma(W_1 h + b_1) + b_2) with branch scale s (He et al. 2016), then the read-out.

Dropout, when asked for, multiplies each hidden activation sigma(.) (inside the branch of a
residual block) by a mask that the caller draws. Each model's parameters are drawn from its
own generator, layer by layer, weight then bias, exactly as ``torch.nn.init`` would draw them
on a ``torch.nn.Linear`` after ``torch.manual_seed(seed)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from mathdl.spec import ModelConfig


def _step(h: torch.Tensor) -> torch.Tensor:
    """Heaviside step 1[h > 0]; it has no gradient, so layers below it do not train."""
    return (h > 0).to(h.dtype)


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "logistic": torch.sigmoid,
    "tanh": torch.tanh,
    "softplus": torch.nn.functional.softplus,
    "identity": lambda h: h,
    "step": _step,
}


def activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(sorted(ACTIVATIONS))}") from None


@dataclass(frozen=True)
class Architecture:
    """The shape of every network of a group and how its forward pass runs."""

    input_dim: int
    output_dim: int
    depth: int  # hidden layers, or residual blocks
    width: int
    activation: str
    residual: bool
    residual_scale: float
    init: str
    output_scale: float

    @property
    def layers(self) -> list[tuple[int, int]]:
        """(fan_in, fan_out) of every linear layer in forward order."""
        d, w, k = self.input_dim, self.width, self.output_dim
        if self.residual:
            return [(d, w)] + [(w, w)] * (2 * self.depth) + [(w, k)]
        return [(d, w)] + [(w, w)] * (self.depth - 1) + [(w, k)]

    def parameter_count(self) -> int:
        return sum(fan_in * fan_out + fan_out for fan_in, fan_out in self.layers)


def architecture(model: ModelConfig, input_dim: int, output_dim: int) -> Architecture:
    activation(model.activation)  # an unknown name fails here, before any work
    if model.init not in INITS:
        raise ValueError(f"unknown init {model.init!r}; valid: {', '.join(sorted(INITS))}")
    return Architecture(
        input_dim=input_dim,
        output_dim=output_dim,
        depth=model.depth,
        width=model.width,
        activation=model.activation,
        residual=model.residual,
        residual_scale=model.residual_scale,
        init=model.init,
        output_scale=model.output_scale,
    )


def parameter_count(model: ModelConfig, input_dim: int, output_dim: int) -> int:
    """Weights and biases of one network."""
    return architecture(model, input_dim, output_dim).parameter_count()


# ----------------------------------------------------------------------------- initialization
# Each rule draws (weight (out, in), bias (out,)) for one layer from one generator, in float32
# (so a float64 run starts from the same numbers as a float32 one), weight first.


def _init_pytorch(fan_in: int, fan_out: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """nn.Linear's default: kaiming_uniform_(a=sqrt(5)) for W, U[-1/sqrt(fan_in), 1/sqrt(fan_in)] for b."""
    # The same float arithmetic as torch.nn.init, so that the draws agree bit for bit.
    gain = math.sqrt(2.0 / (1 + math.sqrt(5) ** 2))
    w_bound = math.sqrt(3.0) * (gain / math.sqrt(fan_in))
    b_bound = 1 / math.sqrt(fan_in)
    w = torch.empty(fan_out, fan_in).uniform_(-w_bound, w_bound, generator=g)
    b = torch.empty(fan_out).uniform_(-b_bound, b_bound, generator=g)
    return w, b


def _init_uniform(fan_in: int, fan_out: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The lecture's rule of thumb: W ~ U[-c, c] with c = sqrt(3 / fan_in) (variance 1/fan_in); b = 0."""
    c = math.sqrt(3.0 / fan_in)
    return torch.empty(fan_out, fan_in).uniform_(-c, c, generator=g), torch.zeros(fan_out)


def _init_he(fan_in: int, fan_out: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """He et al. (2015): W ~ N(0, 2/fan_in), as kaiming_normal_(nonlinearity='relu'); b = 0."""
    std = math.sqrt(2.0) / math.sqrt(fan_in)
    return torch.empty(fan_out, fan_in).normal_(0.0, std, generator=g), torch.zeros(fan_out)


def _init_glorot(fan_in: int, fan_out: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Glorot and Bengio (2010): W ~ N(0, 2/(fan_in + fan_out)), as xavier_normal_; b = 0."""
    std = 1.0 * math.sqrt(2.0 / float(fan_in + fan_out))
    return torch.empty(fan_out, fan_in).normal_(0.0, std, generator=g), torch.zeros(fan_out)


def _init_ntk(fan_in: int, fan_out: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """NTK parametrization: W ~ N(0, 1) (the forward pass divides by sqrt(fan_in)); b = 0."""
    return torch.empty(fan_out, fan_in).normal_(0.0, 1.0, generator=g), torch.zeros(fan_out)


INITS: dict[str, Callable[[int, int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]] = {
    "pytorch": _init_pytorch,
    "uniform": _init_uniform,
    "he": _init_he,
    "glorot": _init_glorot,
    "ntk": _init_ntk,
}


def init_params(arch: Architecture, generators: Sequence[torch.Generator]) -> list[torch.Tensor]:
    """One model per generator: [W_1, b_1, W_2, b_2, ...], W_l (M, out, in), b_l (M, out, 1), float32."""
    rule = INITS[arch.init]
    per_model = [[t for fan_in, fan_out in arch.layers for t in rule(fan_in, fan_out, g)] for g in generators]
    params = [torch.stack(ts) for ts in zip(*per_model)]
    return [p if i % 2 == 0 else p.unsqueeze(-1) for i, p in enumerate(params)]


# ----------------------------------------------------------------------------- forward pass


def forward(
    params: Sequence[torch.Tensor],
    x: torch.Tensor,
    arch: Architecture,
    dropout: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Ensemble forward pass. x: (M, in, B) -> outputs (M, out, B).

    ``dropout(h)`` is applied to every hidden activation when given (training only).
    """
    act = ACTIVATIONS[arch.activation]
    ntk = arch.init == "ntk"
    scales = [1.0 / math.sqrt(fan_in) if ntk else 1.0 for fan_in, _ in arch.layers]

    def linear(i: int, h: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(params[2 * i + 1], params[2 * i], h, alpha=scales[i])  # (M, out, B)

    def hidden(i: int, h: torch.Tensor) -> torch.Tensor:
        a = act(linear(i, h))
        return dropout(a) if dropout is not None else a

    if arch.residual:
        h = linear(0, x)
        for block in range(arch.depth):
            branch = linear(2 + 2 * block, hidden(1 + 2 * block, h))
            h = h + branch if arch.residual_scale == 1.0 else torch.add(h, branch, alpha=arch.residual_scale)
    else:
        h = x
        for i in range(arch.depth):
            h = hidden(i, h)
    out = linear(len(arch.layers) - 1, h)
    return out if arch.output_scale == 1.0 else out * arch.output_scale

