"""The tangent kernel three ways, the linearization, and GD on it in closed form."""

from __future__ import annotations

import math

import pytest
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
    assert ntk.relative_change(tuple(3 * t for t in p), p) == pytest.approx(2.0, rel=1e-14)  # ||2 theta_0|| / ||theta_0||
    assert all(float(b.abs().max()) == 0 for b in (p[1], p[3]))  # NTK init: zero biases


# ----------------------------------------------------------------------------- lazy-training GD


def _plain_network(params, x):
    """f(theta, x) = W_2 relu(W_1 x / sqrt(d) + b_1) / sqrt(m) + b_2, written out again."""
    w1, b1, w2, b2 = params
    m, d = w1.shape
    return (torch.relu(x @ w1.T / d**0.5 + b1) @ w2[0]) / m**0.5 + b2[0]


def _lazy_problem(width=16, d=3, n=8, seed=5):
    p0 = ntk.init_params(width, d, seed=seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    return p0, x, torch.sin(2 * x[:, 0]) + x[:, 1]


def test_gradient_descent_starts_from_a_centred_output():
    p0, x, y = _lazy_problem()
    assert _plain_network(p0, x).abs().min() > 1e-3  # the uncentred network does not start at 0
    for alpha in (1.0, 10.0):
        params, mse = ntk.gradient_descent(p0, x, y, lr=0.1, steps=0, alpha=alpha)
        assert all(torch.equal(p, q) for p, q in zip(params, p0))
        # alpha h(theta_0) = 0, so the loss at step 0 is the mean of y^2 whatever alpha and f(theta_0).
        assert mse == pytest.approx(float((y**2).mean()), rel=1e-14)
        assert ntk.gradient_descent(p0, x, torch.zeros_like(y), lr=0.1, steps=0, alpha=alpha)[1] == 0.0


def test_one_step_of_gradient_descent_by_hand():
    p0, x, y = _lazy_problem()
    w1, b1, w2, b2 = p0
    m, d = w1.shape
    n, alpha, lr = len(y), 3.0, 0.2
    # At theta_0 the output alpha h is 0, so the gradient of F = (1/n) sum (alpha h - y)^2 / alpha^2
    # is (2 / (n alpha)) J^T (0 - y), with J the rows df/dtheta of the (unscaled) network:
    z = x @ w1.T / math.sqrt(d) + b1  # (n, m)
    gate = (z > 0).to(z.dtype) * w2[0] / math.sqrt(m)  # df/db_1, (n, m)
    r = -2.0 / (n * alpha) * y  # dF/df_i, (n,)
    grads = (
        (gate * r[:, None]).T @ x / math.sqrt(d),  # dF/dW_1 (m, d)
        gate.T @ r,  # dF/db_1 (m,)
        (torch.relu(z).T @ r / math.sqrt(m))[None],  # dF/dW_2 (1, m)
        r.sum()[None],  # dF/db_2 (1,)
    )
    expected = tuple(p - lr * g for p, g in zip(p0, grads))
    params, mse = ntk.gradient_descent(p0, x, y, lr=lr, steps=1, alpha=alpha)
    for p, e in zip(params, expected):
        torch.testing.assert_close(p, e, rtol=1e-12, atol=1e-14)
    out = alpha * (_plain_network(expected, x) - _plain_network(p0, x))
    assert mse == pytest.approx(float(((out - y) ** 2).mean()), rel=1e-12)


def test_gradient_descent_steps_equal_autograd_on_a_plain_network():
    p0, x, y = _lazy_problem()
    alpha, lr, steps = 4.0, 0.3, 5
    f0 = _plain_network(p0, x)
    params = [p.clone().requires_grad_() for p in p0]
    for _ in range(steps):
        loss = ((alpha * (_plain_network(params, x) - f0) - y) ** 2).mean() / alpha**2
        grads = torch.autograd.grad(loss, params)
        params = [(p - lr * g).detach().requires_grad_() for p, g in zip(params, grads)]
    got, mse = ntk.gradient_descent(p0, x, y, lr=lr, steps=steps, alpha=alpha)
    for p, e in zip(got, params):
        torch.testing.assert_close(p, e.detach(), rtol=1e-12, atol=1e-13)
    final = alpha * (_plain_network([p.detach() for p in params], x) - f0)
    assert mse == pytest.approx(float(((final - y) ** 2).mean()), rel=1e-12)


def test_gradient_descent_at_large_alpha_follows_the_linearized_dynamics():
    # Chizat et al. (2019): with output scale alpha, theta moves O(1/alpha) and alpha h follows GD
    # on the linearized model with the alpha = 1 kernel, started from the output 0.
    p0, x, y = _lazy_problem(width=32)
    lr, steps = 0.5, 30
    jac = ntk.jacobian(p0, x)
    lin_out, _ = ntk.linearized_gd(jac @ jac.T, jac[:0] @ jac.T, torch.zeros_like(y), torch.zeros(0, dtype=y.dtype),
                                   y, lr, steps)
    lin_mse = float(((lin_out - y) ** 2).mean())
    assert lin_mse < 0.5 * float((y**2).mean())  # training got somewhere
    gaps, moves = {}, {}
    for alpha in (1.0, 100.0, 1000.0):
        params, mse = ntk.gradient_descent(p0, x, y, lr=lr, steps=steps, alpha=alpha)
        out = alpha * (ntk.forward(params, x) - ntk.forward(p0, x))
        assert mse == pytest.approx(float(((out - y) ** 2).mean()), rel=1e-12)
        gaps[alpha] = float((out - lin_out).abs().max())
        moves[alpha] = ntk.relative_change(params, p0)
    assert gaps[1.0] > 0.05  # at alpha = 1 the network leaves its linearization
    assert gaps[100.0] / gaps[1000.0] > 5 and gaps[1000.0] < 1e-4  # the gap closes like 1/alpha
    # The parameters move as 1/alpha (lazy training).
    assert moves[100.0] / moves[1000.0] == pytest.approx(10.0, rel=0.05)
