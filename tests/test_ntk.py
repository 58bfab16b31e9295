"""The tangent kernel three ways, the linearization, and GD on it in closed form."""

from __future__ import annotations

import math

import torch

from mathdl import models, ntk


def _params(width=7, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(width, d, generator=g, dtype=torch.float64)
    return (w1, torch.randn(width, generator=g, dtype=torch.float64),
            torch.randn(1, width, generator=g, dtype=torch.float64), torch.randn(1, generator=g, dtype=torch.float64))


def test_forward_is_the_engines_network():
    p = ntk.init_params(9, 3, seed=4)
    x = torch.randn(5, 3, dtype=torch.float64)
    arch = models.Architecture(3, 1, 1, 9, "relu", False, 1.0, "ntk", 2.5)
    stacked = [p[0][None], p[1][None, :, None], p[2][None], p[3][None, :, None]]
    engine_out = models.forward(stacked, x.T[None], arch)[0, 0]
    torch.testing.assert_close(ntk.forward(p, x, alpha=2.5), engine_out, rtol=1e-12, atol=1e-12)


def test_ntk_from_jacobians_equals_jvps_and_the_closed_form():
    p = _params()
    x1, x2 = torch.randn(5, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    k = ntk.ntk(p, x1, x2)
    torch.testing.assert_close(k, ntk.ntk_jvp(p, x1, x2), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(k, ntk.ntk_relu_closed_form(p, x1, x2), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ntk.ntk(p, x1, x1, activation="tanh"), ntk.ntk_jvp(p, x1, x1, activation="tanh"),
                               rtol=1e-12, atol=1e-12)


def test_linearized_model_equals_the_network_at_init_and_is_affine():
    p0 = _params()
    x = torch.randn(6, 3, dtype=torch.float64)
    torch.testing.assert_close(ntk.linearized_forward(p0, p0, x), ntk.forward(p0, x), rtol=0, atol=1e-14)
    delta = _params(seed=1)
    step = tuple(a + 1e-6 * b for a, b in zip(p0, delta))
    # Close to theta_0 the network and its linearization agree to second order.
    gap = (ntk.linearized_forward(step, p0, x) - ntk.forward(step, x)).abs().max()
    assert gap < 1e-9
    flat_delta = ntk.flat(tuple(a - b for a, b in zip(step, p0)))
    torch.testing.assert_close(ntk.linearized_forward(step, p0, x),
                               ntk.forward(p0, x) + ntk.jacobian(p0, x) @ flat_delta, rtol=1e-12, atol=1e-12)


def test_closed_form_gd_on_the_linearized_model_equals_running_it():
    p0 = _params(width=20)
    x, xt = torch.randn(6, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    y = torch.sin(x.sum(1))
    jac, jac_t = ntk.jacobian(p0, x), ntk.jacobian(p0, xt)
    f0, f0_t = ntk.forward(p0, x), ntk.forward(p0, xt)
    lr, steps = 0.02, 40
    delta = torch.zeros(jac.shape[1], dtype=torch.float64)
    for _ in range(steps):  # GD on (1/n) sum (f_lin - y)^2
        delta -= lr * 2 / len(y) * jac.T @ (f0 + jac @ delta - y)
    train, test = ntk.linearized_gd(jac @ jac.T, jac_t @ jac.T, f0, f0_t, y, lr, steps)
    torch.testing.assert_close(train, f0 + jac @ delta, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(test, f0_t + jac_t @ delta, rtol=1e-10, atol=1e-10)
    # T = infinity interpolates (6 points, 101 parameters: the kernel is invertible).
    train_inf, _ = ntk.linearized_gd(jac @ jac.T, jac_t @ jac.T, f0, f0_t, y, lr, math.inf)
    torch.testing.assert_close(train_inf, y, rtol=1e-8, atol=1e-8)


def test_relative_change_and_engine_init():
    p = ntk.init_params(11, 2, seed=3)
    assert ntk.relative_change(p, p) == 0.0
    assert all(float(b.abs().max()) == 0 for b in (p[1], p[3]))  # NTK init: zero biases
