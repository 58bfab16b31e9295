"""The NTK module, pinned where mutation testing found it loose (tests/README.md, "Mutation testing").

Activations other than ReLU through every function that takes one, and the closed-form GD on
the linearized model along a kernel direction whose eigenvalue is below the cutoff.
"""

from __future__ import annotations

import math

import pytest
import torch

from mathdl import ntk


def _problem(width=9, d=3, n=6, seed=2):
    p0 = ntk.init_params(width, d, seed=seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    return p0, x, torch.cos(x[:, 0]) - x[:, 2]


def _tanh_network(params, x):
    """f(theta, x) = W_2 tanh(W_1 x / sqrt(d) + b_1) / sqrt(m) + b_2, written out again."""
    w1, b1, w2, b2 = params
    m, d = w1.shape
    return (torch.tanh(x @ w1.T / d**0.5 + b1) @ w2[0]) / m**0.5 + b2[0]


def test_forward_jacobian_and_kernel_use_the_activation_they_are_given():
    p0, x, _ = _problem()
    torch.testing.assert_close(ntk.forward(p0, x, alpha=2.0, activation="tanh"), 2.0 * _tanh_network(p0, x),
                               rtol=1e-13, atol=1e-13)
    jac = torch.func.jacrev(lambda p: _tanh_network(p, x))(p0)
    jac = torch.cat([j.reshape(len(x), -1) for j in jac], dim=1)
    torch.testing.assert_close(ntk.jacobian(p0, x, activation="tanh"), jac, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(ntk.ntk(p0, x, x[:2], activation="tanh"), jac @ jac[:2].T, rtol=1e-12, atol=1e-13)


def test_linearized_forward_uses_its_activation():
    p0, x, _ = _problem()
    delta = ntk.init_params(9, 3, seed=7)
    step = tuple(p + 0.1 * q for p, q in zip(p0, delta))
    jac = ntk.jacobian(p0, x, alpha=1.5, activation="tanh")
    expected = 1.5 * _tanh_network(p0, x) + jac @ (ntk.flat(step) - ntk.flat(p0))
    torch.testing.assert_close(ntk.linearized_forward(step, p0, x, alpha=1.5, activation="tanh"), expected,
                               rtol=1e-12, atol=1e-13)


def test_gradient_descent_uses_its_activation():
    p0, x, y = _problem()
    alpha, lr, steps = 2.0, 0.3, 3
    f0 = _tanh_network(p0, x)
    params = [p.clone().requires_grad_() for p in p0]
    for _ in range(steps):
        loss = ((alpha * (_tanh_network(params, x) - f0) - y) ** 2).mean() / alpha**2
        grads = torch.autograd.grad(loss, params)
        params = [(p - lr * g).detach().requires_grad_() for p, g in zip(params, grads)]
    got, mse = ntk.gradient_descent(p0, x, y, lr=lr, steps=steps, alpha=alpha, activation="tanh")
    for p, e in zip(got, params):
        torch.testing.assert_close(p, e.detach(), rtol=1e-12, atol=1e-13)
    final = alpha * (_tanh_network([p.detach() for p in params], x) - f0)
    assert mse == pytest.approx(float(((final - y) ** 2).mean()), rel=1e-12)


def _kernel_with_eigenvalues(lam: list[float], seed=0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(len(lam), len(lam), generator=g, dtype=torch.float64))
    return q, q @ torch.diag(torch.tensor(lam, dtype=torch.float64)) @ q.T


def _g(lam: torch.Tensor, eta: float, steps: float) -> torch.Tensor:
    """(1 - (1 - eta lam)^T) / lam, evaluated as -expm1(T log1p(-eta lam)) / lam: accurate at tiny lam."""
    return -torch.expm1(steps * torch.log1p(-eta * lam)) / lam


def test_linearized_gd_below_the_eigenvalue_cutoff_takes_the_limit_eta_t():
    # An eigenvalue of 1e-13 lambda_max (lambda_max = 1) is below the cutoff (1e-12), where g is replaced by its limit
    # eta T. After T = 1e9 steps (eta = 1) that direction has moved by eta lam T = 1e-4 of its residual:
    # small, but far above the rounding of the other directions, so the limit is what is checked.
    lam = [1.0, 0.4, 1e-13]
    q, kernel = _kernel_with_eigenvalues(lam)
    n, lr, steps = 3, 1.5, 1e9  # eta = 2 lr / n = 1
    y = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    f0 = torch.tensor([0.3, 0.1, -0.4], dtype=torch.float64)
    lam_t = torch.tensor(lam, dtype=torch.float64)
    g = _g(lam_t, 1.0, steps)
    g[:2] = 1 / lam_t[:2]  # (1 - eta lam)^T is 0 there to the last bit: (1 - 0) / lam
    coef = q @ (g * (q.T @ (f0 - y)))
    train, test = ntk.linearized_gd(kernel, kernel[:1], f0, f0[:1], y, lr, steps)
    # coef is 1e9 along the tiny direction, so K's rounding (1e-16) costs 1e-7 in the outputs
    torch.testing.assert_close(train, f0 - kernel @ coef, rtol=0, atol=1e-6)
    torch.testing.assert_close(test, f0[:1] - kernel[:1] @ coef, rtol=0, atol=1e-6)
    # the direction did move: 1e-4 of its residual component, which a g of 0 or eta / T would not give
    moved = q[:, 2] @ (f0 - train)
    assert float(moved) == pytest.approx(1e-4 * float(q[:, 2] @ (f0 - y)), rel=1e-2)


def test_linearized_gd_at_infinity_is_the_pseudo_inverse_on_a_singular_kernel():
    # Kernel regression with a rank-deficient kernel: coefficients K^+ (f0 - y), so the train outputs
    # are y projected onto the kernel's range, f0 kept along its null space.
    q, kernel = _kernel_with_eigenvalues([3.0, 0.5, 0.0, 0.0], seed=1)
    y = torch.tensor([1.0, -1.0, 2.0, 0.0], dtype=torch.float64)
    f0 = torch.tensor([0.2, 0.0, -0.3, 0.1], dtype=torch.float64)
    train, test = ntk.linearized_gd(kernel, kernel[1:3], f0, f0[1:3], y, lr=0.1, steps=math.inf)
    coef = torch.linalg.pinv(kernel, hermitian=True, rtol=1e-10) @ (f0 - y)
    torch.testing.assert_close(train, f0 - kernel @ coef, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(test, f0[1:3] - kernel[1:3] @ coef, rtol=1e-10, atol=1e-12)
    range_ = q[:, :2]
    torch.testing.assert_close(range_.T @ train, range_.T @ y, rtol=1e-10, atol=1e-12)


def test_linearized_gd_at_infinity_drops_directions_below_the_cutoff_relative_to_the_largest():
    # lambda_max = 10 and an eigenvalue of 1e-13 lambda_max: below the cutoff 1e-12 lambda_max, so
    # kernel regression leaves that direction alone (coefficient 0) instead of dividing by 1e-12.
    q, kernel = _kernel_with_eigenvalues([10.0, 2.0, 1e-12], seed=3)
    y = torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64)
    f0 = torch.zeros(3, dtype=torch.float64)
    train, _ = ntk.linearized_gd(kernel, kernel[:1], f0, f0[:1], y, lr=0.1, steps=math.inf)
    range_ = q[:, :2]
    torch.testing.assert_close(train, range_ @ (range_.T @ y), rtol=1e-9, atol=1e-9)


def test_linearized_gd_on_a_zero_kernel_leaves_the_outputs_at_f0():
    # A zero kernel (no parameter moves the outputs): every eigenvalue is at the cutoff, nothing moves.
    f0 = torch.tensor([0.5, -0.2], dtype=torch.float64)
    y = torch.tensor([1.0, 1.0], dtype=torch.float64)
    zero = torch.zeros(2, 2, dtype=torch.float64)
    for steps in (10.0, math.inf):
        train, test = ntk.linearized_gd(zero, zero[:1], f0, f0[:1], y, lr=0.1, steps=steps)
        torch.testing.assert_close(train, f0, rtol=0, atol=0)
        torch.testing.assert_close(test, f0[:1], rtol=0, atol=0)


def test_relu_closed_form_at_a_pre_activation_of_exactly_zero():
    # NTK initialization has zero biases, so the input 0 puts every unit exactly at the kink, where
    # torch's ReLU has derivative 0: the gate is 1[z > 0], not 1[z >= 0].
    p = ntk.init_params(6, 3, seed=1)
    x = torch.cat([torch.zeros(1, 3, dtype=torch.float64), torch.randn(3, 3, dtype=torch.float64)])
    closed = ntk.ntk_relu_closed_form(p, x, x)
    torch.testing.assert_close(closed, ntk.ntk(p, x, x), rtol=1e-12, atol=1e-12)
    assert float(closed[0, 0]) == 1.0  # only b_2's gradient is left at x = 0


def test_gradient_descent_default_alpha_is_one():
    p0, x, y = _problem()
    default = ntk.gradient_descent(p0, x, y, lr=0.1, steps=2)
    explicit = ntk.gradient_descent(p0, x, y, lr=0.1, steps=2, alpha=1.0)
    assert default[1] == explicit[1]
    assert all(torch.equal(a, b) for a, b in zip(default[0], explicit[0]))
