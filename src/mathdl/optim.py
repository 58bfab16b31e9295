"""Elementwise optimizers over stacked parameters, with per-model hyperparameters.

Every hyperparameter is a tensor of shape (M, 1, 1) that broadcasts over a parameter of shape
(M, ...), so the M models of a group may each have their own. Every update is elementwise,
so model m's update reads only model m's slices: one model's NaN never reaches another.

The gradient g that an optimizer sees includes the regularizers, as torch.optim adds weight
decay: g = grad L(theta) + weight_decay * theta + l1 * sign(theta) (the last is the subgradient
of l1 * ||theta||_1). Both apply to every parameter, biases included, as torch.optim does.
With a constant learning rate each optimizer takes the steps that the matching torch.optim one
takes (the tests check this); the momentum methods are written as in the lecture:

- gd / sgd:  theta <- theta - lr g (Robbins and Monro 1951);
- momentum:  v <- mu v - lr g(theta);           theta <- theta + v   (Polyak 1964, heavy ball);
- nesterov:  v <- mu v - lr g(theta + mu v);    theta <- theta + v   (Nesterov 1983; the
  look-ahead form of Sutskever et al. 2013). The parameters the forward pass sees are the
  look-ahead point phi = theta + mu v; ``eval_params`` gives theta;
- adagrad:   s <- s + g^2;  theta <- theta - lr g / (sqrt(s) + eps)   (Duchi et al. 2011);
- adam:      m <- b1 m + (1 - b1) g;  s <- b2 s + (1 - b2) g^2;
             theta <- theta - lr m_hat / (sqrt(s_hat) + eps), with bias corrections
             m_hat = m / (1 - b1^t), s_hat = s / (1 - b2^t)   (Kingma and Ba 2015); b1 is ``momentum``.

A frozen model (diverged, or stopped early) keeps its parameters and optimizer state: ``step``
takes the indices of frozen models and restores their slices after the update.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch


class Optimizer:
    """Per-model hyperparameters, the regularized gradient and freezing; subclasses give the update."""

    n_buffers = 0  # optimizer state tensors per parameter, each shaped like it

    def __init__(self, params: Sequence[torch.Tensor], hyper: dict[str, torch.Tensor]):
        self.params = list(params)
        self.hyper = hyper  # name -> (M, 1, 1)
        self.t = 0  # steps taken
        self.buffers = [[torch.zeros_like(p) for _ in range(self.n_buffers)] for p in self.params]
        wd, l1 = hyper.get("weight_decay"), hyper.get("l1")
        # Python flags, checked once: most groups have no regularizer, and the extra passes over
        # every parameter would cost a tenth of a step on a CPU.
        self._decay = wd is not None and bool((wd != 0).any())
        self._l1 = l1 is not None and bool((l1 != 0).any())

    def gradient(self, p: torch.Tensor) -> torch.Tensor | None:
        """grad + weight_decay * p + l1 * sign(p); None where the loss does not reach p."""
        g = p.grad
        if g is None:
            return None
        if self._decay:
            g = g.addcmul(p, self.hyper["weight_decay"])
        if self._l1:
            g = g.addcmul(torch.sign(p), self.hyper["l1"])
        return g

    @torch.no_grad()
    def step(self, lr_factor: float = 1.0, frozen: torch.Tensor | None = None) -> None:
        """One update with learning rate lr * lr_factor; models at indices ``frozen`` do not change."""
        self.t += 1
        lr = self.hyper["lr"] * lr_factor  # (M, 1, 1)
        saved = None
        if frozen is not None and len(frozen) > 0:
            saved = [[t[frozen].clone() for t in (p, *bufs)] for p, bufs in zip(self.params, self.buffers)]
        for p, bufs in zip(self.params, self.buffers):
            g = self.gradient(p)
            if g is not None:  # torch.optim skips such parameters too (no decay either)
                self.update(p, g, bufs, lr)
        if saved is not None:
            for p, bufs, old in zip(self.params, self.buffers, saved):
                for t, o in zip((p, *bufs), old):
                    t[frozen] = o

    def update(self, p: torch.Tensor, g: torch.Tensor, bufs: list[torch.Tensor], lr: torch.Tensor) -> None:
        raise NotImplementedError

    def eval_params(self) -> list[torch.Tensor]:
        """The parameters theta of the models (what metrics and results report)."""
        return self.params


class SGD(Optimizer):
    """theta <- theta - lr g; with the full batch this is gradient descent."""

    def update(self, p, g, bufs, lr):
        p.addcmul_(g, -lr)


class Momentum(Optimizer):
    """Heavy ball: v <- mu v - lr g; theta <- theta + v."""

    n_buffers = 1

    def update(self, p, g, bufs, lr):
        (v,) = bufs
        v.mul_(self.hyper["momentum"]).addcmul_(g, -lr)
        p.add_(v)


class Nesterov(Optimizer):
    """Look-ahead momentum. p holds phi = theta + mu v, where the gradient is taken:
    v' = mu v - lr g(phi); theta' = theta + v'; so phi' = phi - mu v + (1 + mu) v'.
    """

    n_buffers = 1

    def update(self, p, g, bufs, lr):
        (v,) = bufs
        mu = self.hyper["momentum"]
        p.addcmul_(v, -mu)  # back to theta
        v.mul_(mu).addcmul_(g, -lr)
        p.addcmul_(v, 1 + mu)  # theta' + mu v'

    @torch.no_grad()
    def eval_params(self):
        mu = self.hyper["momentum"]
        return [p.addcmul(v, -mu) for p, (v,) in zip(self.params, self.buffers)]


class AdaGrad(Optimizer):
    """s <- s + g^2; theta <- theta - lr g / (sqrt(s) + eps)."""

    n_buffers = 1

    def update(self, p, g, bufs, lr):
        (s,) = bufs
        s.addcmul_(g, g)
        p.addcmul_(g / s.sqrt().add_(self.hyper["eps"]), -lr)


class Adam(Optimizer):
    """Adam with b1 = momentum, b2 = beta2 and bias corrections."""

    n_buffers = 2

    def update(self, p, g, bufs, lr):
        m, s = bufs
        b1, b2 = self.hyper["momentum"], self.hyper["beta2"]
        m.lerp_(g, 1 - b1)
        s.mul_(b2).addcmul_(g, g * (1 - b2))
        step_size = lr / (1 - b1**self.t)  # (M, 1, 1)
        denom = (s.sqrt() / torch.sqrt(1 - b2**self.t)).add_(self.hyper["eps"])
        p.addcmul_(m / denom, -step_size)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "gd": SGD,  # the engine feeds it the full batch
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": AdaGrad,
    "adam": Adam,
}

FULL_BATCH_OPTIMIZERS = ("gd",)


def make_optimizer(name: str, params: Sequence[torch.Tensor], hyper: dict[str, torch.Tensor]) -> Optimizer:
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(sorted(OPTIMIZERS))}") from None
    return cls(params, hyper)


# ----------------------------------------------------------------------------- learning-rate schedules
# The factor that multiplies every run's lr during epoch e = 0, 1, ..., epochs - 1; the same as
# torch.optim.lr_scheduler's StepLR and CosineAnnealingLR (eta_min = 0) stepped once per epoch.


def _constant(e: int, epochs: int, step_epochs: int, gamma: float) -> float:
    return 1.0


def _step(e: int, epochs: int, step_epochs: int, gamma: float) -> float:
    """gamma^floor(e / step_epochs)."""
    return gamma ** (e // step_epochs)


def _cosine(e: int, epochs: int, step_epochs: int, gamma: float) -> float:
    """(1 + cos(pi e / epochs)) / 2 (Loshchilov and Hutter 2017, without restarts)."""
    return (1 + math.cos(math.pi * e / epochs)) / 2


SCHEDULES = {"constant": _constant, "step": _step, "cosine": _cosine}


def lr_factor(schedule: str, e: int, epochs: int, step_epochs: int = 1, gamma: float = 1.0) -> float:
    try:
        rule = SCHEDULES[schedule]
    except KeyError:
        raise ValueError(f"unknown lr_schedule {schedule!r}; valid: {', '.join(sorted(SCHEDULES))}") from None
    return rule(e, epochs, step_epochs, gamma)
