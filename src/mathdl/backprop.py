"""Backpropagation by hand: the lecture's pseudo-code in NumPy, checked against torch.autograd.

A network is a list of layers ``x_{t+1} = phi_t(x_t)``, t = 0..T-1: linear layers
``z = W x + b`` and elementwise activations ``a = sigma(z)``. The forward pass stores every
layer's input ``x_t``. For a loss ``L(x_T)`` the backward pass carries the *row* vector
``delta_t = dL/dx_t`` (Rumelhart, Hinton and Williams 1986; Goodfellow et al. 2016, 6.5):

    delta_T = dL/dx_T
    delta_t = delta_{t+1} J_t         J_t = d phi_t / d x_t:  W for a linear layer,
                                                              diag(sigma'(z)) for an activation
    dL/dW_t = delta_{t+1}^T x_t^T,    dL/db_t = delta_{t+1}^T            (linear layers)

On a batch the rows of ``X`` (N, d) are the examples and the rows of ``Delta`` their deltas;
the gradients of a sum over examples add up over rows, ``dL/dW = Delta^T X``. An activation's
Jacobian is diagonal, so ``delta J`` is the elementwise product ``delta * sigma'(z)``;
:meth:`Activation.jacobian` and :func:`backward_with_jacobians` form the matrices
explicitly, as the lecture writes them (the tests check that both agree).

The loss is the squared loss ``L = 1/(2N) sum_i ||f(x_i) - y_i||^2``, so
``delta_T = (f(X) - Y) / N``. Everything here is NumPy; torch appears only in
:func:`autograd_gradients`, the reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy.special import expit


# ----------------------------------------------------------------------------- activations


@dataclass(frozen=True)
class ActivationFunction:
    """sigma, its derivative sigma', and the points where sigma is not differentiable."""

    value: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray], np.ndarray]
    kinks: tuple[float, ...] = ()


def _step(z):
    return (z >= 0).astype(z.dtype)  # Heaviside H(z) = 1[z >= 0]


def _relu_derivative(z):
    return (z > 0).astype(z.dtype)  # 0 at the kink, as torch.relu's backward


def _tanh_derivative(z):
    t = np.tanh(z)
    return 1 - t * t


def _logistic_derivative(z):
    s = expit(z)
    return s * (1 - s)


ACTIVATIONS: dict[str, ActivationFunction] = {
    # The step's derivative is 0 away from 0 (a Dirac mass at 0): gradients through it vanish.
    "step": ActivationFunction(_step, np.zeros_like, kinks=(0.0,)),
    "logistic": ActivationFunction(expit, _logistic_derivative),
    "tanh": ActivationFunction(np.tanh, _tanh_derivative),
    "relu": ActivationFunction(lambda z: np.maximum(z, 0), _relu_derivative, kinks=(0.0,)),
    # softplus(z) = log(1 + e^z), computed without overflow; softplus' = logistic.
    "softplus": ActivationFunction(lambda z: np.logaddexp(0, z), expit),
    "identity": ActivationFunction(lambda z: z, np.ones_like),
}

# The activations that backpropagation can train through (the step's gradient is 0 a.e.).
DIFFERENTIABLE = ("logistic", "tanh", "relu", "softplus", "identity")


def get_activation(name: str) -> ActivationFunction:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}") from None


# ----------------------------------------------------------------------------- layers


@dataclass(frozen=True)
class Linear:
    """z = W x + b, on a batch Z = X W^T + b."""

    weight: np.ndarray  # (out, in)
    bias: np.ndarray  # (out,)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x @ self.weight.T + self.bias  # (N, out)

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """dz/dx = W, the same at every x (one example, shape (in,))."""
        return self.weight

    def backward(self, x: np.ndarray, delta: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """delta_t = delta_{t+1} W; dL/dW = Delta^T X, dL/db = the column sums of Delta."""
        return delta @ self.weight, {"weight": delta.T @ x, "bias": delta.sum(axis=0)}


@dataclass(frozen=True)
class Activation:
    """a = sigma(z), elementwise."""

    name: str

    def forward(self, z: np.ndarray) -> np.ndarray:
        return get_activation(self.name).value(z)

    def jacobian(self, z: np.ndarray) -> np.ndarray:
        """da/dz = diag(sigma'(z)) (one example, shape (d,))."""
        return np.diag(get_activation(self.name).derivative(z))

    def backward(self, z: np.ndarray, delta: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """delta diag(sigma'(z)) = delta * sigma'(z), row by row; no parameters."""
        return delta * get_activation(self.name).derivative(z), {}


Layer = Linear | Activation


# ----------------------------------------------------------------------------- the passes


def forward(layers: Sequence[Layer], x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The output f(X) and the stored input of every layer, inputs[t] = x_t."""
    inputs = []
    for layer in layers:
        inputs.append(x)
        x = layer.forward(x)
    return x, inputs


def backward(layers: Sequence[Layer], inputs: Sequence[np.ndarray], delta: np.ndarray):
    """From delta_T = dL/dx_T back to delta_0 = dL/dx_0; the parameter gradients of each layer.

    Returns ``(delta_0, grads)`` where ``grads[t]`` is a dict (empty for activations).
    """
    grads: list[dict[str, np.ndarray]] = [{} for _ in layers]
    for t in reversed(range(len(layers))):
        delta, grads[t] = layers[t].backward(inputs[t], delta)
    return delta, grads


def backward_with_jacobians(layers: Sequence[Layer], inputs: Sequence[np.ndarray], delta: np.ndarray):
    """The same pass with the Jacobians as matrices, one example at a time: the lecture verbatim.

    For each example (row) ``delta <- delta @ J_t`` and ``dL/dW_t += outer(delta_{t+1}, x_t)``.
    Slow (it forms diag(sigma'(z))), for tests and small networks.
    """
    grads: list[dict[str, np.ndarray]] = [
        {"weight": np.zeros_like(l.weight), "bias": np.zeros_like(l.bias)} if isinstance(l, Linear) else {}
        for l in layers
    ]
    deltas_in = np.empty_like(inputs[0])
    for i in range(delta.shape[0]):
        d = delta[i]  # (dim x_T,)
        for t in reversed(range(len(layers))):
            x = inputs[t][i]
            if isinstance(layers[t], Linear):
                grads[t]["weight"] += np.outer(d, x)  # delta_{t+1}^T x_t^T
                grads[t]["bias"] += d
            d = d @ layers[t].jacobian(x)  # delta_t = delta_{t+1} J_t
        deltas_in[i] = d
    return deltas_in, grads


def squared_loss(output: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """L = 1/(2N) sum_i ||f(x_i) - y_i||^2 and delta_T = dL/df = (f(X) - Y)/N."""
    n = output.shape[0]
    residual = output - target
    return float((residual * residual).sum() / (2 * n)), residual / n


def loss_and_gradients(layers: Sequence[Layer], x: np.ndarray, y: np.ndarray):
    """The squared loss, the gradients of every linear layer, and dL/dX, by hand.

    Returns ``(loss, grads, grad_input)``; ``grads`` lists ``(dL/dW_t, dL/db_t)`` over the linear
    layers in order.
    """
    output, inputs = forward(layers, x)
    loss, delta = squared_loss(output, y)
    grad_input, grads = backward(layers, inputs, delta)
    return loss, [(g["weight"], g["bias"]) for g in grads if g], grad_input


# ----------------------------------------------------------------------------- random networks


def random_network(rng: np.random.Generator, input_dim: int, width: int, depth: int, output_dim: int,
                   activation: str, dtype=np.float64) -> list[Layer]:
    """``depth`` hidden layers of ``width`` units, then a linear output layer.

    Weights are N(0, 1/fan_in) (variance-preserving, so signals neither vanish nor explode
    at the depths tested) and biases N(0, 1/4), so the kinks of ReLU are crossed.
    """
    get_activation(activation)
    dims = [input_dim] + [width] * depth + [output_dim]
    layers: list[Layer] = []
    for t, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
        w = rng.standard_normal((fan_out, fan_in)) / np.sqrt(fan_in)
        b = 0.5 * rng.standard_normal(fan_out)
        layers.append(Linear(w.astype(dtype), b.astype(dtype)))
        if t < depth:
            layers.append(Activation(activation))
    return layers


# ----------------------------------------------------------------------------- the reference


def _torch_activation(name: str):
    import torch

    table = {
        "logistic": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        # log(1 + e^z) exactly; torch's softplus switches to z above a threshold.
        "softplus": lambda z: torch.logaddexp(z, torch.zeros_like(z)),
        "identity": lambda z: z,
    }
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"no autograd reference for activation {name!r}; valid: {', '.join(table)}") from None


def autograd_gradients(layers: Sequence[Layer], x: np.ndarray, y: np.ndarray):
    """The same loss and gradients by torch.autograd, in the dtype of the arrays.

    Returns ``(loss, grads, grad_input)`` as :func:`loss_and_gradients`, as NumPy arrays.
    """
    import torch

    xt = torch.tensor(x, requires_grad=True)
    params: list[tuple[torch.Tensor, torch.Tensor]] = []
    h = xt
    for layer in layers:
        if isinstance(layer, Linear):
            w = torch.tensor(layer.weight, requires_grad=True)
            b = torch.tensor(layer.bias, requires_grad=True)
            params.append((w, b))
            h = h @ w.T + b
        else:
            h = _torch_activation(layer.name)(h)
    yt = torch.tensor(y)
    loss = ((h - yt) ** 2).sum() / (2 * x.shape[0])
    flat = [p for pair in params for p in pair]
    grads = torch.autograd.grad(loss, [*flat, xt])
    pairs = [(grads[2 * i].numpy(), grads[2 * i + 1].numpy()) for i in range(len(params))]
    return float(loss.item()), pairs, grads[-1].numpy()


def relative_error(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    """||a - b|| / ||b|| over all arrays concatenated (0 when both vanish)."""
    diff = np.sqrt(sum(float(np.sum((np.asarray(u, np.float64) - np.asarray(v, np.float64)) ** 2)) for u, v in zip(a, b)))
    ref = np.sqrt(sum(float(np.sum(np.asarray(v, np.float64) ** 2)) for v in b))
    if ref == 0:
        return 0.0 if diff == 0 else float("inf")
    return float(diff / ref)


def compare_with_autograd(layers: Sequence[Layer], x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Relative errors of the hand-written loss, parameter gradients and input gradient."""
    loss, grads, grad_x = loss_and_gradients(layers, x, y)
    ref_loss, ref_grads, ref_grad_x = autograd_gradients(layers, x, y)
    flat = [g for pair in grads for g in pair]
    ref_flat = [g for pair in ref_grads for g in pair]
    return {
        "relative_error": relative_error(flat, ref_flat),
        "input_relative_error": relative_error([grad_x], [ref_grad_x]),
        "loss_relative_error": relative_error([np.array(loss)], [np.array(ref_loss)]),
    }


def finite_difference_derivative(name: str, z: np.ndarray, step: float) -> np.ndarray:
    """Central difference (sigma(z + h) - sigma(z - h)) / (2h), error O(h^2) where sigma is smooth."""
    f = get_activation(name).value
    return (f(z + step) - f(z - step)) / (2 * step)
