"""The neural tangent kernel of a one-hidden-layer network, with ``torch.func``.

The network is the engine's (mathdl.models) in the NTK parametrization (Jacot, Gabriel and
Hongler 2018), written as a pure function of its parameters theta = (W_1, b_1, W_2, b_2):

    f(theta, x) = alpha * (W_2 sigma(W_1 x / sqrt(d) + b_1) / sqrt(m) + b_2),

W_1 of shape (m, d), b_1 (m,), W_2 (1, m), b_2 (1,). Its empirical NTK is
Theta(x, x') = <grad_theta f(theta, x), grad_theta f(theta, x')>, computed as vmap(jacrev(f))
and a product of Jacobians, or from Jacobian-vector products (the two methods of the
pytorch/tutorials ``neural_tangent_kernels.py``), or, for ReLU, in closed form.
The linearization around theta_0 is f_lin(theta, x) = f(theta_0, x) + J_0(x)(theta - theta_0)
(Lee et al. 2019); gradient descent on it has a closed form through the kernel.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch.func import jacrev, jvp, vjp, vmap

from mathdl import models

Params = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def forward(params: Params, x: torch.Tensor, alpha: float = 1.0, activation: str = "relu") -> torch.Tensor:
    """f(theta, x) for a batch x of shape (n, d); returns (n,)."""
    w1, b1, w2, b2 = params
    h = models.activation(activation)(x @ w1.T / math.sqrt(w1.shape[1]) + b1)  # (n, m)
    return alpha * ((h @ w2.T).squeeze(-1) / math.sqrt(w1.shape[0]) + b2)


def from_stacked(stacked: Sequence[torch.Tensor], i: int) -> Params:
    """Model i of the engine's stacked [W_1 (M, m, d), b_1 (M, m, 1), W_2 (M, 1, m), b_2 (M, 1, 1)]."""
    w1, b1, w2, b2 = stacked
    return w1[i], b1[i, :, 0], w2[i], b2[i, :, 0]


def init_params(width: int, input_dim: int, seed: int, dtype=torch.float64) -> Params:
    """The engine's NTK initialization for ``seed`` (W ~ N(0, 1), b = 0), drawn as the engine draws it."""
    arch = models.Architecture(input_dim, 1, 1, width, "relu", False, 1.0, "ntk", 1.0)
    stacked = models.init_params(arch, [torch.Generator().manual_seed(seed)])
    return tuple(p.to(dtype) for p in from_stacked(stacked, 0))


def flat(params: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([p.reshape(-1) for p in params])


def relative_change(params: Sequence[torch.Tensor], params0: Sequence[torch.Tensor]) -> float:
    """||theta - theta_0|| / ||theta_0||."""
    return float((flat(params) - flat(params0)).norm() / flat(params0).norm())


def jacobian(params: Params, x: torch.Tensor, alpha: float = 1.0, activation: str = "relu") -> torch.Tensor:
    """J(x) of shape (n, P): vmap over the examples of jacrev of the single-example network."""

    def single(p, xi):
        return forward(p, xi.unsqueeze(0), alpha, activation)[0]

    jac = vmap(jacrev(single), in_dims=(None, 0))(params, x)  # tuple of (n, *shape)
    return torch.cat([j.reshape(x.shape[0], -1) for j in jac], dim=1)


def ntk(params: Params, x1: torch.Tensor, x2: torch.Tensor, alpha: float = 1.0, activation: str = "relu") -> torch.Tensor:
    """Theta(x1, x2) = J(x1) J(x2)^T, shape (n1, n2)."""
    return jacobian(params, x1, alpha, activation) @ jacobian(params, x2, alpha, activation).T


def ntk_jvp(params: Params, x1: torch.Tensor, x2: torch.Tensor, alpha: float = 1.0, activation: str = "relu") -> torch.Tensor:
    """Theta(x1, x2) from products alone: u_j = J(x2)^T e_j by a vjp, then J(x1) u_j by a jvp."""
    _, pullback = vjp(lambda p: forward(p, x2, alpha, activation), params)
    (cotangents,) = vmap(pullback)(torch.eye(x2.shape[0], dtype=x2.dtype))  # tuple of (n2, *shape)

    def push(tangent):
        return jvp(lambda p: forward(p, x1, alpha, activation), (params,), (tangent,))[1]

    return vmap(push)(cotangents).T  # (n1, n2)


def ntk_relu_closed_form(params: Params, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """For ReLU and alpha = 1, summing the four parameter blocks by hand:

    Theta(x, x') = (1/m) sum_j [relu(z_j) relu(z'_j) + a_j^2 1[z_j > 0] 1[z'_j > 0] (x.x'/d + 1)] + 1,
    with z_j = w_j.x / sqrt(d) + b_j and a = W_2.
    """
    w1, b1, w2, _ = params
    m, d = w1.shape
    z1, z2 = x1 @ w1.T / math.sqrt(d) + b1, x2 @ w1.T / math.sqrt(d) + b1
    outer = torch.relu(z1) @ torch.relu(z2).T
    gates = ((z1 > 0).to(x1.dtype) * w2[0] ** 2) @ (z2 > 0).to(x1.dtype).T
    return (outer + gates * (x1 @ x2.T / d + 1)) / m + 1


def linearized_forward(params: Params, params0: Params, x: torch.Tensor, alpha: float = 1.0,
                       activation: str = "relu") -> torch.Tensor:
    """f_lin(theta, x) = f(theta_0, x) + J_0(x) (theta - theta_0), by one jvp."""
    delta = tuple(p - p0 for p, p0 in zip(params, params0))
    f0, dot = jvp(lambda p: forward(p, x, alpha, activation), (params0,), (delta,))
    return f0 + dot


def linearized_gd(kernel_train: torch.Tensor, kernel_test_train: torch.Tensor, f0_train: torch.Tensor,
                  f0_test: torch.Tensor, y: torch.Tensor, lr: float, steps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and test outputs of the linearized model after ``steps`` of full-batch GD with step ``lr``
    on the loss (1/n) sum_i (f(x_i) - y_i)^2 (the engine's mse); steps = inf is kernel regression.

    With eta = 2 lr / n and K = J_0 J_0^T the train residual is r_t = (I - eta K)^t r_0, so
    theta_T - theta_0 = -J_0^T g(K) r_0 with g(lambda) = (1 - (1 - eta lambda)^T) / lambda
    (= eta T at lambda = 0), and f_lin(x) = f_0(x) - Theta_0(x, X) g(K) r_0 (Lee et al. 2019).
    """
    n = y.shape[0]
    eta = 2.0 * lr / n
    lam, vec = torch.linalg.eigh(kernel_train)
    lam = lam.clamp_min(0.0)
    tiny = lam <= 1e-12 * lam.max()
    if math.isinf(steps):
        g = torch.where(tiny, torch.zeros_like(lam), 1.0 / torch.where(tiny, torch.ones_like(lam), lam))
    else:
        safe = torch.where(tiny, torch.ones_like(lam), lam)
        g = torch.where(tiny, torch.full_like(lam, eta * steps), (1 - (1 - eta * safe) ** steps) / safe)
    coef = vec @ (g * (vec.T @ (f0_train - y)))
    return f0_train - kernel_train @ coef, f0_test - kernel_test_train @ coef


def gradient_descent(params0: Params, x: torch.Tensor, y: torch.Tensor, lr: float, steps: int,
                     alpha: float = 1.0, activation: str = "relu") -> tuple[Params, float]:
    """Chizat, Oyallon and Bach (2019): GD with step ``lr`` on F(theta) = R(alpha h(theta)) / alpha^2,
    R the mse, h(theta) = f(theta, .) - f(theta_0, .) (centred, so the output starts at 0).
    Returns the final parameters and the final mse of alpha h."""
    f0 = forward(params0, x, 1.0, activation).detach()
    params = [p.detach().clone().requires_grad_() for p in params0]
    for _ in range(steps):
        out = alpha * (forward(params, x, 1.0, activation) - f0)
        loss = ((out - y) ** 2).mean() / alpha**2
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= lr * g
    with torch.no_grad():
        mse = float(((alpha * (forward(params, x, 1.0, activation) - f0) - y) ** 2).mean())
    return tuple(p.detach() for p in params), mse
