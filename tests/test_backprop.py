"""The hand-written backpropagation of mathdl.backprop against autograd and finite differences."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from mathdl import backprop as bp

# In float64 both methods compute the same sums in possibly different orders: a few roundoffs.
FLOAT64_TOL = 1e-12
FLOAT32_TOL = 1e-5


def _data(rng, n, d_in, d_out, dtype=np.float64):
    return rng.standard_normal((n, d_in)).astype(dtype), rng.standard_normal((n, d_out)).astype(dtype)


@pytest.mark.parametrize("activation", bp.DIFFERENTIABLE)
def test_hand_written_gradients_equal_autograd_in_float64(activation):
    rng = np.random.default_rng(0)
    for depth, width in itertools.product([0, 1, 2, 4, 6], [1, 3, 17]):
        layers = bp.random_network(rng, 4, width, depth, 3, activation)
        x, y = _data(rng, 7, 4, 3)
        err = bp.compare_with_autograd(layers, x, y)
        assert err["relative_error"] < FLOAT64_TOL, (depth, width, err)
        assert err["input_relative_error"] < FLOAT64_TOL, (depth, width, err)
        assert err["loss_relative_error"] < FLOAT64_TOL, (depth, width, err)


def test_hand_written_gradients_equal_autograd_in_float32():
    rng = np.random.default_rng(1)
    for activation in bp.DIFFERENTIABLE:
        layers = bp.random_network(rng, 5, 8, 3, 2, activation, dtype=np.float32)
        x, y = _data(rng, 6, 5, 2, np.float32)
        loss, grads, _ = bp.loss_and_gradients(layers, x, y)
        assert grads[0][0].dtype == np.float32
        assert bp.compare_with_autograd(layers, x, y)["relative_error"] < FLOAT32_TOL


def test_gradients_have_the_shapes_of_the_parameters_and_autograd_is_not_trivially_zero():
    rng = np.random.default_rng(2)
    layers = bp.random_network(rng, 3, 5, 2, 2, "tanh")
    x, y = _data(rng, 4, 3, 2)
    _, grads, grad_x = bp.loss_and_gradients(layers, x, y)
    linear = [l for l in layers if isinstance(l, bp.Linear)]
    assert [(gw.shape, gb.shape) for gw, gb in grads] == [(l.weight.shape, l.bias.shape) for l in linear]
    assert grad_x.shape == x.shape
    assert all(np.linalg.norm(gw) > 1e-3 for gw, _ in grads)


def test_backward_with_explicit_jacobians_matches_the_vectorised_pass():
    """delta_t = delta_{t+1} J_t with J_t = W or diag(sigma'(z)) as matrices, example by example."""
    rng = np.random.default_rng(3)
    for activation in bp.DIFFERENTIABLE:
        layers = bp.random_network(rng, 3, 6, 3, 2, activation)
        x, y = _data(rng, 5, 3, 2)
        out, inputs = bp.forward(layers, x)
        _, delta = bp.squared_loss(out, y)
        d_vec, g_vec = bp.backward(layers, inputs, delta)
        d_jac, g_jac = bp.backward_with_jacobians(layers, inputs, delta)
        np.testing.assert_allclose(d_jac, d_vec, rtol=1e-13, atol=1e-15)
        for a, b in zip(g_vec, g_jac):
            assert a.keys() == b.keys()
            for key in a:
                np.testing.assert_allclose(b[key], a[key], rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("activation", bp.DIFFERENTIABLE)
def test_layer_jacobians_match_finite_differences(activation):
    rng = np.random.default_rng(4)
    h = 1e-6
    z = rng.standard_normal(5) + 0.1  # away from ReLU's kink at 0
    z[np.abs(z) < 1e-2] = 0.5
    for layer in (bp.Linear(rng.standard_normal((3, 5)), rng.standard_normal(3)), bp.Activation(activation)):
        columns = []
        for j in range(5):
            e = np.zeros(5)
            e[j] = h
            columns.append((layer.forward(z + e) - layer.forward(z - e)) / (2 * h))
        np.testing.assert_allclose(layer.jacobian(z), np.column_stack(columns), atol=1e-8)


def test_gradient_matches_finite_differences_of_the_loss():
    """A check without torch: directional derivatives of L along random directions."""
    rng = np.random.default_rng(5)
    layers = bp.random_network(rng, 3, 4, 2, 2, "softplus")
    x, y = _data(rng, 6, 3, 2)
    _, grads, _ = bp.loss_and_gradients(layers, x, y)
    linear = [t for t, l in enumerate(layers) if isinstance(l, bp.Linear)]
    h = 1e-6

    def loss_moved(dirs, step):
        moved = list(layers)
        for t, (dw, db) in zip(linear, dirs):
            moved[t] = bp.Linear(layers[t].weight + step * dw, layers[t].bias + step * db)
        return bp.squared_loss(bp.forward(moved, x)[0], y)[0]

    for _ in range(3):
        dirs = [(rng.standard_normal(layers[t].weight.shape), rng.standard_normal(layers[t].bias.shape)) for t in linear]
        fd = (loss_moved(dirs, h) - loss_moved(dirs, -h)) / (2 * h)
        exact = sum(float((gw * dw).sum() + (gb * db).sum()) for (gw, gb), (dw, db) in zip(grads, dirs))
        assert abs(fd - exact) < 1e-7 * max(1.0, abs(exact))


def test_linear_model_gradient_is_the_closed_form():
    """Depth 0: L = 1/(2N)||X W^T + b - Y||^2, dL/dW = R^T X / N, dL/db = sum of the rows of R / N."""
    rng = np.random.default_rng(6)
    layers = bp.random_network(rng, 4, 1, 0, 3, "relu")
    (lin,) = layers
    x, y = _data(rng, 9, 4, 3)
    r = x @ lin.weight.T + lin.bias - y
    _, [(gw, gb)], gx = bp.loss_and_gradients(layers, x, y)
    np.testing.assert_allclose(gw, r.T @ x / 9, rtol=1e-14)
    np.testing.assert_allclose(gb, r.sum(0) / 9, rtol=1e-14)
    np.testing.assert_allclose(gx, r @ lin.weight / 9, rtol=1e-14)


@pytest.mark.parametrize("name", list(bp.ACTIVATIONS))
def test_activation_derivatives_match_finite_differences_away_from_kinks(name):
    fn = bp.ACTIVATIONS[name]
    z = np.linspace(-6, 6, 2001)
    keep = np.ones_like(z, dtype=bool)
    for k in fn.kinks:
        keep &= np.abs(z - k) > 1e-3
    fd = bp.finite_difference_derivative(name, z[keep], 1e-6)
    # central differences: O(h^2) truncation plus O(eps/h) rounding, about 1e-10 here
    np.testing.assert_allclose(fn.derivative(z[keep]), fd, atol=1e-8)


def test_activation_values_and_kink_conventions():
    z = np.array([-1e3, -2.0, 0.0, 2.0, 1e3])
    act = bp.ACTIVATIONS
    np.testing.assert_array_equal(act["step"].value(z), [0, 0, 1, 1, 1])  # H(0) = 1
    np.testing.assert_array_equal(act["step"].derivative(z), 0)
    np.testing.assert_array_equal(act["relu"].derivative(z), [0, 0, 0, 1, 1])  # as torch at 0
    zt = torch.tensor([0.0], dtype=torch.float64, requires_grad=True)
    torch.relu(zt).backward()
    assert zt.grad.item() == 0.0
    assert np.all(np.isfinite(act["softplus"].value(z))) and act["softplus"].value(z)[-1] == 1e3
    np.testing.assert_allclose(act["softplus"].value(np.array([0.0])), np.log(2))
    np.testing.assert_allclose(act["logistic"].derivative(np.array([0.0])), 0.25)
    np.testing.assert_allclose(act["tanh"].derivative(np.array([0.0])), 1.0)


def test_errors_name_the_valid_choices():
    with pytest.raises(ValueError, match="unknown activation 'sigmoid'; valid: step, logistic"):
        bp.get_activation("sigmoid")
    with pytest.raises(ValueError, match="no autograd reference for activation 'step'"):
        bp.autograd_gradients([bp.Activation("step")], np.zeros((1, 1)), np.zeros((1, 1)))


def test_relative_error():
    a = [np.array([1.0, 0.0]), np.array([[0.0]])]
    assert bp.relative_error(a, a) == 0.0
    assert bp.relative_error([np.zeros(2)], [np.zeros(2)]) == 0.0
    assert bp.relative_error([np.array([1.0, 1.0])], [np.array([1.0, 0.0])]) == pytest.approx(1.0)
