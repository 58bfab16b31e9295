"""Gradient-descent paths: GD, heavy-ball, Nesterov and AdaGrad on two-dimensional landscapes.

The methods, from x_{-1} = x_0 (no momentum at the start), with step lr and momentum mu:

    gradient descent   x_{t+1} = x_t - lr grad f(x_t)
    heavy ball         x_{t+1} = x_t - lr grad f(x_t) + mu (x_t - x_{t-1})            (Polyak 1964)
    Nesterov           y_t = x_t + mu (x_t - x_{t-1}),  x_{t+1} = y_t - lr grad f(y_t)  (Nesterov 1983)
    AdaGrad            G_t = sum_{s<=t} g_s^2 (elementwise),
                       x_{t+1} = x_t - lr g_t / (sqrt(G_t) + eps)                      (Duchi, Hazan and Singer 2011)

Landscapes:

* ``quadratic``: f(x) = a x1^2 + b x2^2 with b = kappa a; the Hessian is H = diag(mu, L) with
  mu = 2a, L = 2b, so kappa = L / mu, and x* = 0, f* = 0. By default each method takes the step
  that the theory tunes to (mu, L), and the error e_t = x_t - x* obeys a linear recursion:
  GD e_{t+1} = (I - lr H) e_t, heavy ball e_{t+1} = ((1 + mu) I - lr H) e_t - mu e_{t-1}, Nesterov
  e_{t+1} = (I - lr H)((1 + mu) e_t - mu e_{t-1}). Per eigenvalue lambda of H each is a scalar
  recursion with characteristic roots z; the asymptotic rate lim ||e_t||^{1/t} is the largest |z|
  over the spectrum (the spectral radius of the iteration):

    GD, lr = 2/(L + mu):                                  rho = (kappa - 1)/(kappa + 1)
    heavy ball, lr = 4/(sqrt L + sqrt mu)^2,
        mu_hb = ((sqrt kappa - 1)/(sqrt kappa + 1))^2:    rho = (sqrt kappa - 1)/(sqrt kappa + 1)
    Nesterov, lr = 1/L,
        mu_n = (sqrt kappa - 1)/(sqrt kappa + 1):         rho = 1 - 1/sqrt kappa

  (Polyak 1964; Nesterov 2004, Section 2.2; Bottou, Curtis and Nocedal 2018, Section 7). For the
  tuned heavy ball the roots at lambda = mu and L, and for Nesterov the root at lambda = mu, are
  double, so ||e_t|| ~ C t rho^t: a log-linear fit over a window [t1, t2] measures about
  rho (t2/t1)^{1/(t2 - t1)} > rho; the summary reports this excess. AdaGrad on this diagonal
  quadratic is invariant to the scaling of the coordinates: g_t / sqrt(G_t) = x_t / sqrt(sum_s x_s^2)
  per coordinate, so with eps = 0 its path does not depend on a and b at all.
* ``lecture``: f(x) = (x1^2 - 1)^2 + (x1^2 x2 - x1 - 1)^2, a sum of two squares that vanishes
  exactly at (1, 2) and (-1, 0), so f* = 0 there. The study finds its minimizers numerically
  (BFGS from a grid of starts, then Newton's method) and does not assume them. Here the steps are
  fixed (lr = 0.01, mu = 0.9 unless given): the theory's tuned steps, which use curvature bounds
  valid near one minimizer, diverged from many of the starts we tried on this quartic. Near a
  minimizer x* the same spectral radius, of the iteration linearized with H = Hessian(x*),
  predicts the local rate.

For AdaGrad the accumulator G_t converges when the gradients decay geometrically, and the
iteration tends to preconditioned GD with P = diag(lr / (sqrt(G_inf) + eps)); the spectral
radius of I - P H, with the run's final accumulator for G_inf, is its a-posteriori local rate.

Each run computes every method of ``params.methods`` on one landscape (one kappa), so one
group is one panel of the figures. The measured rate of a path is exp(slope) of a least-squares
fit of log ||x_t - x*|| against t over the last ``fit_tail`` of the iterations before the error
falls below round-off (x* = 0 is exact on the quadratic, where floating point keeps relative
precision down to underflow; the floor there is 1e-250). Nothing is random: every seed gives
the same paths.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from mathdl.tables import json_number as _num

METHODS = ("gd", "heavy_ball", "nesterov", "adagrad")
METHOD_LABELS = {"gd": "GD", "heavy_ball": "heavy ball", "nesterov": "Nesterov", "adagrad": "AdaGrad"}
LANDSCAPES = ("quadratic", "lecture")

DEFAULTS: dict[str, Any] = {
    "description": (
        "How fast do gradient descent, heavy-ball momentum, Nesterov's method and AdaGrad converge "
        "on ill-conditioned quadratics and on the lecture's two-minimum landscape, and do the "
        "measured linear rates match the theory?"
    ),
    "seeds": [0],  # nothing is random: more seeds repeat the same paths
    "task": {"name": "none"},
    "params": {},  # filled from PARAMS_SCHEMA
    # The lecture landscape ignores kappa: its paths repeat once per kappa, and the analysis
    # keeps the run with the smallest kappa.
    "sweep": {"params.landscape": ["quadratic", "lecture"], "params.kappa": [1, 10, 100]},
}

PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "landscape": {
            "description": "quadratic: a x1^2 + b x2^2 with b = kappa a; lecture: (x1^2-1)^2 + (x1^2 x2 - x1 - 1)^2.",
            "enum": list(LANDSCAPES), "default": "quadratic",
        },
        "kappa": {
            "description": "Condition number b/a = L/mu of the quadratic (ignored by the lecture landscape).",
            "type": "number", "minimum": 1, "default": 10,
        },
        "a": {
            "description": "Coefficient a of x1^2 in the quadratic; the Hessian is diag(2a, 2 kappa a).",
            "type": "number", "exclusiveMinimum": 0, "default": 0.5,
        },
        "methods": {
            "description": "Methods computed in every run: gd, heavy_ball, nesterov, adagrad.",
            "type": "array", "items": {"enum": list(METHODS)}, "minItems": 1, "uniqueItems": True,
            "default": list(METHODS),
        },
        "iterations": {
            "description": "Iterations of every method.",
            "type": "integer", "minimum": 1, "maximum": 100000, "default": 500,
        },
        "start": {
            "description": "Start point [x1, x2]; null: (-2, 1) on the quadratic, (2, 0) on the lecture landscape.",
            "type": ["array", "null"], "items": {"type": "number"}, "minItems": 2, "maxItems": 2, "default": None,
        },
        "lr": {
            "description": (
                "Step of GD, heavy ball and Nesterov; null: on the quadratic each method's tuned step "
                "(2/(L+mu), 4/(sqrt L + sqrt mu)^2, 1/L), on the lecture landscape 0.01."
            ),
            "type": ["number", "null"], "exclusiveMinimum": 0, "default": None,
        },
        "momentum": {
            "description": (
                "Momentum mu of heavy ball and Nesterov; null: on the quadratic the tuned values "
                "(((sqrt k - 1)/(sqrt k + 1))^2 and (sqrt k - 1)/(sqrt k + 1)), on the lecture landscape 0.9."
            ),
            "type": ["number", "null"], "minimum": 0, "exclusiveMaximum": 1, "default": None,
        },
        "adagrad_lr": {
            "description": "AdaGrad's step lr (its first step moves every coordinate by about lr).",
            "type": "number", "exclusiveMinimum": 0, "default": 0.5,
        },
        "adagrad_eps": {
            "description": "AdaGrad's eps in lr g / (sqrt(G) + eps).",
            "type": "number", "minimum": 0, "default": 1e-8,
        },
        "fit_tail": {
            "description": "Fraction of the usable iterations (the last ones) over which the linear rate is fitted.",
            "type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 0.5,
        },
    },
}

LECTURE_LR = 0.01  # steps of the lecture landscape when params.lr / params.momentum are null
LECTURE_MOMENTUM = 0.9
ROUNDOFF_FLOOR = 1e3 * np.finfo(float).eps  # errors below this times ||x*|| are round-off
UNDERFLOW_FLOOR = 1e-250  # below this, squares of errors underflow
APPROACHED = 1e-2  # a path approaches x* when its final error is below this times its first
MIN_FIT_POINTS = 4  # fewer usable points: the method terminated (rate from the last step)
FIGURES = ("paths", "suboptimality", "rates", "slide_quadratic", "slide_lecture")
SUBOPTIMALITY_FLOOR = 1e-30  # lower limit of the log axis of f - f*
# One fixed colour (the colour-blind palette's blue, orange, green and purple), line style and
# marker per method in every figure, so that no two methods look alike, in colour or in grey.
METHOD_STYLES = {
    "gd": {"color": "#0173B2", "linestyle": "-", "marker": "o"},
    "heavy_ball": {"color": "#DE8F05", "linestyle": "--", "marker": "s"},
    "nesterov": {"color": "#029E73", "linestyle": "-.", "marker": "^"},
    "adagrad": {"color": "#CC78BC", "linestyle": ":", "marker": "D"},
}
LEGEND_PT, TITLE_PT = 8, 9  # font sizes (pt) at the figure's own size; the paper shrinks paths by 0.9
SLIDE_FIGSIZE = (6.0, 2.3)  # inches: one panel's paths and f - f* across a 16:9 frame (6.0 x 3.4 in) at scale ~1
ADAGRAD_SAME_PATH = 1e-6  # AdaGrad's paths for different kappa coincide within this times the start's scale


# ----------------------------------------------------------------------------- landscapes


@dataclass(frozen=True)
class Landscape:
    """A smooth function of x in R^2, vectorized over leading axes: f (..., 2) -> (...)."""

    name: str
    f: Callable[[np.ndarray], np.ndarray]
    grad: Callable[[np.ndarray], np.ndarray]
    hessian: Callable[[np.ndarray], np.ndarray]  # (2,) -> (2, 2)
    start: tuple[float, float]
    box: tuple[float, float, float, float]  # x1_min, x1_max, x2_min, x2_max of the minimizer search
    known_minimizers: tuple[tuple[float, float], ...] = ()  # exact, when known in closed form


def quadratic(a: float, b: float) -> Landscape:
    """f(x) = a x1^2 + b x2^2; its minimizer x* = 0 is exact."""
    return Landscape(
        "quadratic",
        f=lambda x: a * x[..., 0] ** 2 + b * x[..., 1] ** 2,
        grad=lambda x: np.stack([2 * a * x[..., 0], 2 * b * x[..., 1]], axis=-1),
        hessian=lambda x: np.diag([2 * a, 2 * b]),
        start=(-2.0, 1.0),
        box=(-2.5, 2.5, -1.5, 1.5),
        known_minimizers=((0.0, 0.0),),
    )


def _lecture_f(x):
    x1, x2 = x[..., 0], x[..., 1]
    return (x1**2 - 1) ** 2 + (x1**2 * x2 - x1 - 1) ** 2


def _lecture_grad(x):
    x1, x2 = x[..., 0], x[..., 1]
    u, v = x1**2 - 1, x1**2 * x2 - x1 - 1
    return np.stack([4 * x1 * u + 2 * v * (2 * x1 * x2 - 1), 2 * v * x1**2], axis=-1)


def _lecture_hessian(x):
    x1, x2 = float(x[0]), float(x[1])
    u, v = x1**2 - 1, x1**2 * x2 - x1 - 1
    jac = np.array([[2 * x1, 0.0], [2 * x1 * x2 - 1, x1**2]])  # of the residuals (u, v)
    second = 2 * u * np.array([[2.0, 0.0], [0.0, 0.0]]) + 2 * v * np.array([[2 * x2, 2 * x1], [2 * x1, 0.0]])
    return 2 * jac.T @ jac + second


def lecture() -> Landscape:
    """The lecture's (x1^2 - 1)^2 + (x1^2 x2 - x1 - 1)^2; minimizers found numerically."""
    return Landscape("lecture", _lecture_f, _lecture_grad, _lecture_hessian, start=(2.0, 0.0), box=(-2.5, 2.5, -1.5, 3.5))


def make_landscape(params) -> Landscape:
    builders = {
        "quadratic": lambda p: quadratic(p["a"], p["kappa"] * p["a"]),
        "lecture": lambda p: lecture(),
    }
    try:
        return builders[params["landscape"]](params)
    except KeyError:
        raise ValueError(f"unknown landscape {params['landscape']!r}; valid: {', '.join(builders)}") from None


def find_minimizers(land: Landscape, grid: int = 7, newton_steps: int = 50) -> np.ndarray:
    """Local minimizers (k, 2), by f: BFGS from a grid of starts over the box, polished by Newton.

    Exact minimizers, when the landscape knows them, are returned as they are (x* = 0 of the
    quadratic must not be replaced by a BFGS approximation of it).
    """
    if land.known_minimizers:
        return np.array(land.known_minimizers, dtype=float)
    from scipy.optimize import minimize

    found: list[np.ndarray] = []
    x1s = np.linspace(land.box[0], land.box[1], grid)
    x2s = np.linspace(land.box[2], land.box[3], grid)
    for s1 in x1s:
        for s2 in x2s:
            res = minimize(lambda z: float(land.f(z)), np.array([s1, s2]), jac=land.grad, method="BFGS",
                           options={"gtol": 1e-10})
            x = res.x
            for _ in range(newton_steps):  # quadratic convergence: to the last bit
                try:
                    step = np.linalg.solve(land.hessian(x), land.grad(x))
                except np.linalg.LinAlgError:
                    break
                x = x - step
                if np.linalg.norm(step) <= 4 * np.finfo(float).eps * (1 + np.linalg.norm(x)):
                    break
            if not np.all(np.isfinite(x)) or np.linalg.eigvalsh(land.hessian(x))[0] <= 0:
                continue  # a saddle or a maximum, or lost
            if all(np.linalg.norm(x - y) > 1e-6 for y in found):
                found.append(x)
    if not found:
        raise RuntimeError(f"no minimizer of the {land.name} landscape found in its box")
    found.sort(key=lambda x: (float(land.f(x)), tuple(x)))
    return np.array(found)


# ----------------------------------------------------------------------------- methods


def tuned_hyperparameters(mu: float, L: float) -> dict[str, dict[str, float]]:
    """The steps and momenta that the quadratic theory tunes to curvature bounds mu <= L."""
    kappa = L / mu
    q = (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
    return {
        "gd": {"lr": 2 / (L + mu), "momentum": 0.0},
        "heavy_ball": {"lr": 4 / (math.sqrt(L) + math.sqrt(mu)) ** 2, "momentum": q**2},
        "nesterov": {"lr": 1 / L, "momentum": q},
    }


def theoretical_rates(kappa: float) -> dict[str, float]:
    """Closed-form asymptotic rates of the tuned methods on a quadratic of condition number kappa."""
    r = math.sqrt(kappa)
    return {"gd": (kappa - 1) / (kappa + 1), "heavy_ball": (r - 1) / (r + 1), "nesterov": 1 - 1 / r}


def hyperparameters(land: Landscape, params) -> dict[str, dict[str, float]]:
    """lr and momentum of each method: given, or tuned (quadratic) / the lecture's fixed ones."""
    if land.name == "quadratic":
        a = params["a"]
        base = tuned_hyperparameters(2 * a, 2 * a * params["kappa"])
    else:
        base = {m: {"lr": LECTURE_LR, "momentum": LECTURE_MOMENTUM} for m in ("gd", "heavy_ball", "nesterov")}
        base["gd"]["momentum"] = 0.0
    out = {}
    for method, hp in base.items():
        lr = hp["lr"] if params["lr"] is None else params["lr"]
        mom = hp["momentum"] if params["momentum"] is None or method == "gd" else params["momentum"]
        out[method] = {"lr": float(lr), "momentum": float(mom)}
    out["adagrad"] = {"lr": float(params["adagrad_lr"]), "eps": float(params["adagrad_eps"])}
    return out


def momentum_path(grad, x0, lr: float, momentum: float, iterations: int, nesterov: bool) -> np.ndarray:
    """Heavy ball (nesterov=False) or Nesterov's look-ahead form; momentum 0 is GD. (T+1, 2)."""
    path = np.empty((iterations + 1, 2))
    path[0] = x = prev = np.asarray(x0, dtype=float)
    for t in range(iterations):
        if nesterov:
            y = x + momentum * (x - prev)
            new = y - lr * grad(y)
        else:
            new = x - lr * grad(x) + momentum * (x - prev)
        prev, x = x, new
        path[t + 1] = x
        if not np.all(np.isfinite(x)):
            return path[: t + 2]
    return path


def gd_path(grad, x0, lr: float, iterations: int) -> np.ndarray:
    path = np.empty((iterations + 1, 2))
    path[0] = x = np.asarray(x0, dtype=float)
    for t in range(iterations):
        x = x - lr * grad(x)
        path[t + 1] = x
        if not np.all(np.isfinite(x)):
            return path[: t + 2]
    return path


def adagrad_path(grad, x0, lr: float, eps: float, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """AdaGrad's path (T+1, 2) and its final accumulator G_T = sum of squared gradients (2,)."""
    path = np.empty((iterations + 1, 2))
    path[0] = x = np.asarray(x0, dtype=float)
    acc = np.zeros(2)
    for t in range(iterations):
        g = grad(x)
        acc = acc + g * g
        x = x - lr * g / (np.sqrt(acc) + eps)
        path[t + 1] = x
        if not np.all(np.isfinite(x)):
            return path[: t + 2], acc
    return path, acc


def run_method(method: str, land: Landscape, x0, hp: dict, iterations: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The path of one method, and AdaGrad's final accumulator (None for the others)."""
    if method == "gd":
        return gd_path(land.grad, x0, hp["lr"], iterations), None
    if method in ("heavy_ball", "nesterov"):
        return momentum_path(land.grad, x0, hp["lr"], hp["momentum"], iterations, nesterov=method == "nesterov"), None
    if method == "adagrad":
        return adagrad_path(land.grad, x0, hp["lr"], hp["eps"], iterations)
    raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")


def _largest_root(b: float, c: float) -> float:
    """max |z| over the roots of z^2 - b z + c (real b, c)."""
    disc = b * b - 4 * c
    if disc <= 0:  # then c >= b^2/4 >= 0
        return math.sqrt(c)  # complex pair (or double root): |z|^2 = c
    s = math.sqrt(disc)
    return max(abs(b + s), abs(b - s)) / 2


def linear_rate(method: str, hessian: np.ndarray, hp: dict, adagrad_acc: np.ndarray | None = None) -> float:
    """Spectral radius of the method's iteration linearized at a minimizer with this Hessian.

    Per eigenvalue lam of H: GD |1 - lr lam|; heavy ball z^2 - (1 + mu - lr lam) z + mu;
    Nesterov z^2 - (1 + mu)(1 - lr lam) z + mu (1 - lr lam). AdaGrad: rho(I - P H) with
    P = diag(lr / (sqrt(G) + eps)) from its final accumulator G.
    """
    if method == "adagrad":
        if adagrad_acc is None:
            return float("nan")
        p = hp["lr"] / (np.sqrt(adagrad_acc) + hp["eps"])
        return float(np.max(np.abs(np.linalg.eigvals(np.eye(2) - p[:, None] * hessian))))
    lams = np.linalg.eigvalsh(hessian)
    lr, mu = hp["lr"], hp["momentum"]
    if method == "gd":
        return float(np.max(np.abs(1 - lr * lams)))
    if method == "heavy_ball":
        return max(_largest_root(1 + mu - lr * lam, mu) for lam in lams)
    if method == "nesterov":
        return max(_largest_root((1 + mu) * (1 - lr * lam), mu * (1 - lr * lam)) for lam in lams)
    raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")


def fit_rate(errors: np.ndarray, floor: float, tail: float) -> dict[str, Any]:
    """Linear rate of a sequence of errors: exp(slope) of log e_t against t over the tail.

    Only the iterations before the error first reaches ``floor`` count. With fewer than
    MIN_FIT_POINTS of them (finite termination, as for kappa = 1), the rate is
    (e_k / e_0)^(1/k) at the first k below the floor: 0 when e_k is exactly 0.
    """
    e = np.asarray(errors, dtype=float)
    below = np.flatnonzero(~(e > floor))  # also catches NaN
    usable = int(below[0]) if len(below) else len(e)
    if usable < MIN_FIT_POINTS:
        k = min(usable, len(e) - 1)
        if k < 1 or not np.isfinite(e[k]) or e[0] <= 0:
            return {"rate": float("nan"), "first": 0, "last": k, "kind": "none"}
        return {"rate": float((e[k] / e[0]) ** (1 / k)), "first": 0, "last": k, "kind": "terminated"}
    first = min(int(usable * (1 - tail)), usable - MIN_FIT_POINTS)
    t = np.arange(first, usable)
    slope, _ = np.polyfit(t, np.log(e[first:usable]), 1)
    return {"rate": float(math.exp(slope)), "first": first, "last": usable - 1, "kind": "fit"}


def error_floor(x_star: np.ndarray) -> float:
    """Errors at or below this are round-off (or underflow, for x* = 0)."""
    return max(ROUNDOFF_FLOOR * float(np.max(np.abs(x_star))), UNDERFLOW_FLOOR)


# ----------------------------------------------------------------------------- compute


def _rows(run_id: str, split: str, metric: str, values, epochs=None) -> pd.DataFrame:
    values = np.atleast_1d(np.asarray(values, dtype=float))
    epochs = np.arange(len(values)) if epochs is None else np.asarray(epochs)
    return pd.DataFrame({"run_id": run_id, "epoch": epochs.astype(int), "split": split, "metric": metric,
                         "value": values})


def compute_run(run_id: str, params) -> tuple[list[pd.DataFrame], dict]:
    """All methods on one landscape: paths, f - f*, errors, hyperparameters and theory."""
    land = make_landscape(params)
    minimizers = find_minimizers(land)
    values = land.f(minimizers)
    f_star = float(values.min())
    x0 = np.array(params["start"] if params["start"] is not None else land.start, dtype=float)
    hps = hyperparameters(land, params)
    frames = [
        _rows(run_id, "landscape", "f_star", f_star),
        _rows(run_id, "landscape", "minimizer_x1", minimizers[:, 0]),
        _rows(run_id, "landscape", "minimizer_x2", minimizers[:, 1]),
        _rows(run_id, "landscape", "minimizer_f", values),
        _rows(run_id, "landscape", "hessian_min_eig", [np.linalg.eigvalsh(land.hessian(x))[0] for x in minimizers]),
        _rows(run_id, "landscape", "hessian_max_eig", [np.linalg.eigvalsh(land.hessian(x))[1] for x in minimizers]),
    ]
    diverged = []
    for method in params["methods"]:
        hp = hps[method]
        path, acc = run_method(method, land, x0, hp, params["iterations"])
        finite = bool(np.all(np.isfinite(path)))
        if not finite:
            diverged.append(method)
            path = path[np.all(np.isfinite(path), axis=1)]
        target = int(np.argmin(np.linalg.norm(minimizers - path[-1], axis=1)))
        x_star = minimizers[target]
        err = np.linalg.norm(path - x_star, axis=1)
        with np.errstate(over="ignore", invalid="ignore"):
            gap = np.maximum(land.f(path) - f_star, 0.0)
        approached = finite and err[-1] <= APPROACHED * err[0]
        theory = linear_rate(method, land.hessian(x_star), hp, acc) if approached else float("nan")
        frames += [
            _rows(run_id, method, "x1", path[:, 0]),
            _rows(run_id, method, "x2", path[:, 1]),
            _rows(run_id, method, "f_gap", gap),
            _rows(run_id, method, "error", err),
            _rows(run_id, method, "lr", hp["lr"]),
            _rows(run_id, method, "momentum" if method != "adagrad" else "eps", hp.get("momentum", hp.get("eps"))),
            _rows(run_id, method, "minimizer", target),
            _rows(run_id, method, "approached", float(approached)),
            _rows(run_id, method, "error_floor", error_floor(x_star)),
            _rows(run_id, method, "theory_rate", theory),
        ]
        if method == "adagrad":
            frames.append(_rows(run_id, method, "accumulator", acc))
    info = {"diverged": bool(diverged), "diverged_epoch": -1, "diverged_methods": ",".join(diverged),
            "f_star": f_star, "n_minimizers": int(len(minimizers))}
    return frames, info


def networks(group) -> list:
    """No network: the job computes with NumPy on the host (and asks for no GPU)."""
    return []


def compute(group, data, device: str = "cpu"):
    """Every run of the group: all methods on its landscape (NumPy, closed form; no data set)."""
    from mathdl.engine import TrainResult
    from mathdl.studies import host_device

    del data
    used = host_device(device)
    start = time.perf_counter()
    metrics, runs = [], []
    for run in group.runs:
        frames, info = compute_run(run.run_id, dict(run.params))
        metrics += frames
        runs.append({"run_id": run.run_id, "seed": run.seed, **info})
    return TrainResult(metrics=pd.concat(metrics, ignore_index=True), runs=pd.DataFrame(runs), device=used,
                       wall_time_s=time.perf_counter() - start)


# ----------------------------------------------------------------------------- analyze




def swept_extras(experiment) -> list[str]:
    """Swept study parameters other than landscape and kappa: they also tell panels apart."""
    return [k for k, _ in experiment.sweep if k.startswith("params.") and k not in ("params.landscape", "params.kappa")]


def panels(runs: pd.DataFrame, extras: list[str]) -> pd.DataFrame:
    """One run per landscape (and kappa, for the quadratic) and value of the other swept params.

    The lecture landscape ignores kappa, so runs that differ only in kappa repeat it; the one
    with the smallest kappa stands for them. Seeds repeat the same paths: the first is kept.
    """
    runs = runs.sort_values(["params.landscape", "params.kappa", "seed", "run_id"])
    keys = runs[extras].astype(str) if extras else pd.DataFrame(index=runs.index)
    quad = runs["params.landscape"] == "quadratic"
    first = (keys.assign(_l=runs["params.landscape"], _k=runs["params.kappa"].where(quad, 0))
             .duplicated(keep="first"))
    out = runs[~first]
    order = {name: i for i, name in enumerate(LANDSCAPES)}
    extra = keys.loc[out.index].agg("|".join, axis=1) if extras else ""
    return (out.assign(_order=out["params.landscape"].map(order), _extra=extra)
            .sort_values(["_order", "params.kappa", "_extra"]).drop(columns=["_order", "_extra"]))


def _panel_label(row, extras: list[str]) -> str:
    if row["params.landscape"] == "quadratic":
        label = f"quadratic, kappa = {_plain_number(row['params.kappa'])}"
    else:
        label = f"{row['params.landscape']} landscape"
    for key in extras:
        value = row[key]
        shown = _plain_number(value) if isinstance(value, (int, float, np.number)) and value is not None else str(value)
        label += f", {key.removeprefix('params.')} = {shown}"
    return label


def _plain_number(v) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() else f"{v:g}"


def analyze(tables, experiment) -> dict:
    """Fitted linear rates per landscape and method beside the theory; the lecture's minimizers."""
    m = tables.metrics
    extras = swept_extras(experiment)
    runs = panels(tables.runs, extras)
    scalars = m[m["epoch"] == 0].pivot_table(index=["run_id", "split"], columns="metric", values="value")
    entries = []
    for _, row in runs.iterrows():
        rid = row["run_id"]
        mine = m[m["run_id"] == rid]
        entry: dict[str, Any] = {
            "landscape": row["params.landscape"],
            "kappa": _num(row["params.kappa"]) if row["params.landscape"] == "quadratic" else None,
            "label": _panel_label(row, extras),
            "start": _start(row),
            "iterations": int(row["params.iterations"]),
            "f_star": _num(row["f_star"]),
            "minimizers": _minimizers(mine),
            "methods": {},
        }
        closed = theoretical_rates(float(row["params.kappa"])) if row["params.landscape"] == "quadratic" else {}
        tuned = row["params.landscape"] == "quadratic" and _is_null(row["params.lr"]) and _is_null(row["params.momentum"])
        for method in [s for s in METHODS if (rid, s) in scalars.index]:
            sc = scalars.loc[(rid, method)]
            err = mine[(mine["split"] == method) & (mine["metric"] == "error")].sort_values("epoch")["value"].to_numpy()
            gap = mine[(mine["split"] == method) & (mine["metric"] == "f_gap")].sort_values("epoch")["value"].to_numpy()
            approached = bool(sc["approached"])
            fit = fit_rate(err, float(sc["error_floor"]), float(row["params.fit_tail"])) if approached else None
            fit_f = (fit_rate(np.sqrt(gap), float(sc["error_floor"]), float(row["params.fit_tail"]))
                     if approached else None)
            theory = _num(sc["theory_rate"])
            rate = _num(fit["rate"]) if fit else None
            xy = mine[(mine["split"] == method) & mine["metric"].isin(["x1", "x2"])]
            final_point = xy[xy["epoch"] == xy["epoch"].max()].set_index("metric")["value"]
            at_floor = np.flatnonzero(~(err > float(sc["error_floor"])))
            res = {
                "lr": float(sc["lr"]),
                "momentum": _num(sc["momentum"]) if "momentum" in sc and method != "adagrad" else None,
                "diverged": method in _diverged_methods(row),
                "approached": approached,
                "minimizer": int(sc["minimizer"]),
                "final_point": [float(final_point["x1"]), float(final_point["x2"])],
                "final_error": _num(err[-1]),
                # the first iteration at round-off (None: never); 1 at kappa = 1 for the tuned methods
                "iterations_to_floor": int(at_floor[0]) if len(at_floor) else None,
                "final_f_gap": _num(gap[-1]),
                "iterations_run": int(len(err) - 1),
                "rate": rate,
                "rate_from_f": _num(fit_f["rate"]) if fit_f else None,
                "fit_kind": fit["kind"] if fit else "not approached",
                "fit_window": [fit["first"], fit["last"]] if fit else None,
                "theory_rate": theory,
                "closed_form_rate": closed.get(method) if tuned else None,
                "rate_minus_theory": (rate - theory) if rate is not None and theory is not None else None,
            }
            entry["methods"][method] = res
        entries.append(entry)

    quad = [e for e in entries if e["landscape"] == "quadratic"]

    def worst(method, signed):
        diffs = [e["methods"][method]["rate_minus_theory"] for e in quad
                 if method in e["methods"] and e["methods"][method]["rate_minus_theory"] is not None]
        if not diffs:
            return None
        return max(diffs) if signed else max(abs(d) for d in diffs)

    def least(method):  # the smallest signed difference: negative when a fit is below the theory
        diffs = [e["methods"][method]["rate_minus_theory"] for e in quad
                 if method in e["methods"] and e["methods"][method]["rate_minus_theory"] is not None]
        return min(diffs) if diffs else None

    lecture_entry = next((e for e in entries if e["landscape"] == "lecture"), None)
    summary: dict[str, Any] = {
        "methods": [s for s in METHODS if any(s in e["methods"] for e in entries)],
        "kappas": [e["kappa"] for e in quad],
        "landscapes": entries,
        "gd_rate_error": worst("gd", signed=False),
        "heavy_ball_rate_excess": worst("heavy_ball", signed=True),
        "heavy_ball_rate_error": worst("heavy_ball", signed=False),
        "heavy_ball_rate_excess_min": least("heavy_ball"),
        "nesterov_rate_excess": worst("nesterov", signed=True),
        "nesterov_rate_excess_min": least("nesterov"),
        "nesterov_rate_error": worst("nesterov", signed=False),
        "adagrad_rate_error": worst("adagrad", signed=False),
        "tuned": all(_is_null(r) for r in tables.runs["params.lr"]) and all(_is_null(r) for r in tables.runs["params.momentum"]),
        # per method, per kappa (per panel label when other parameters are swept too)
        "rates": {
            method: {_rate_key(e, extras): e["methods"][method]["rate"] for e in quad if method in e["methods"]}
            for method in METHODS
        },
        "theory_rates": {
            method: {_rate_key(e, extras): e["methods"][method]["theory_rate"] for e in quad if method in e["methods"]}
            for method in METHODS
        },
        "n_diverged": int(tables.runs["diverged"].sum()),
        # paths: one per method and panel; a diverged path is cut at its last finite iterate
        "n_paths": sum(len(e["methods"]) for e in entries),
        "n_diverged_paths": sum(r["diverged"] for e in entries for r in e["methods"].values()),
        "iterations": int(tables.runs["params.iterations"].max()),
        "fit_tails": sorted({float(v) for v in tables.runs["params.fit_tail"]}),
        # the tuned GD, heavy ball and Nesterov reach x* in one step where kappa = 1 (to round-off)
        "one_step_kappas": [e["kappa"] for e in quad if _one_step(e)],
        # the quadratic panel of the slides: the largest kappa (the first such panel)
        "showcase_kappa": max((e["kappa"] for e in quad), default=None),
    }
    quad_rows = [r for _, r in runs.iterrows() if r["params.landscape"] == "quadratic"]
    groups: dict[str, list] = {}
    for r in quad_rows:  # same start, steps and iterations: only kappa differs
        groups.setdefault("|".join(str(r[k]) for k in extras), []).append(r)
    spreads = [d for g in groups.values() if (d := _adagrad_invariance(m, g)) is not None]
    summary["adagrad_kappa_invariance"] = max(spreads) if spreads else None
    # Same paths up to round-off and eps: within 1e-6 of the start's scale.
    start_scale = max((max(abs(v) for v in e["start"]) for e in quad), default=1.0) or 1.0
    summary["adagrad_paths_coincide"] = (summary["adagrad_kappa_invariance"] is not None
                                         and summary["adagrad_kappa_invariance"] <= ADAGRAD_SAME_PATH * start_scale)
    if lecture_entry is not None:
        summary["lecture_f_star"] = lecture_entry["f_star"]
        summary["lecture_minimizers"] = lecture_entry["minimizers"]
        summary["lecture_methods"] = lecture_entry["methods"]
        diffs = [abs(r["rate_minus_theory"]) for r in lecture_entry["methods"].values() if r["rate_minus_theory"] is not None]
        summary["lecture_rate_error"] = max(diffs) if diffs else None
        summary.update(_where_paths_end(lecture_entry))
    return summary


def _one_step(entry) -> bool:
    """GD, heavy ball and Nesterov (those run) all at round-off after exactly one step."""
    momentum = [r for m, r in entry["methods"].items() if m != "adagrad"]
    return bool(momentum) and all(r["iterations_to_floor"] == 1 for r in momentum)


def _where_paths_end(entry) -> dict[str, Any]:
    """Where the methods end on a landscape with several minimizers: which minimizers the paths
    reached (final distance below APPROACHED of the initial one), and how far apart the final
    iterates are, relative to the distance between the two closest minimizers (or, with one
    minimizer, to the start's distance from it)."""
    methods = entry["methods"]
    mins = np.array([[x["x1"], x["x2"]] for x in entry["minimizers"]])
    ends = np.array([r["final_point"] for r in methods.values()])
    spread = float(max((np.linalg.norm(a - b) for a in ends for b in ends), default=0.0))
    if len(mins) > 1:
        scale = min(float(np.linalg.norm(a - b)) for i, a in enumerate(mins) for b in mins[i + 1:])
    else:
        scale = float(np.linalg.norm(np.array(entry["start"]) - mins[0])) or 1.0
    reached = sorted({r["minimizer"] for r in methods.values() if r["approached"]})
    return {
        "lecture_reached_minimizers": reached,  # indices into lecture_minimizers
        "lecture_n_reached_minimizers": len(reached),
        "lecture_n_approached": sum(r["approached"] for r in methods.values()),
        "lecture_final_spread": spread,
        "lecture_minimizer_scale": scale,
        "lecture_final_spread_relative": spread / scale,
    }


def _diverged_methods(row) -> set[str]:
    value = row.get("diverged_methods", "")
    return set(value.split(",")) - {""} if isinstance(value, str) else set()


def _rate_key(entry, extras) -> str:
    return entry["label"] if extras else _plain_number(entry["kappa"])


def _adagrad_invariance(m: pd.DataFrame, quad_rows) -> float | None:
    """Largest distance between AdaGrad paths on quadratics of different kappa (same start, lr)."""
    paths = []
    for row in quad_rows:
        sel = m[(m["run_id"] == row["run_id"]) & (m["split"] == "adagrad") & m["metric"].isin(["x1", "x2"])]
        if sel.empty:
            continue
        wide = sel.pivot_table(index="epoch", columns="metric", values="value").sort_index()
        paths.append(wide[["x1", "x2"]].to_numpy())
    if len(paths) < 2:
        return None
    n = min(len(p) for p in paths)
    return float(max(np.max(np.abs(p[:n] - paths[0][:n])) for p in paths))


def _is_null(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _start(row) -> list[float]:
    s = row["params.start"]
    if s is None or (isinstance(s, float) and math.isnan(s)):
        land = make_landscape({"landscape": row["params.landscape"], "a": 1.0, "kappa": 1.0})
        return [float(v) for v in land.start]
    return [float(v) for v in s]


def _minimizers(mine: pd.DataFrame) -> list[dict]:
    land = mine[mine["split"] == "landscape"]
    wide = land.pivot_table(index="epoch", columns="metric", values="value").sort_index()
    wide = wide.dropna(subset=["minimizer_x1"])
    return [
        {"x1": float(r["minimizer_x1"]), "x2": float(r["minimizer_x2"]), "f": float(r["minimizer_f"]),
         "hessian_eigs": [float(r["hessian_min_eig"]), float(r["hessian_max_eig"])]}
        for _, r in wide.iterrows()
    ]


# ----------------------------------------------------------------------------- figures


def _grid_axes(plot, n: int, ncols: int | None = None, height_scale: float = 1.0):
    import matplotlib.pyplot as plt

    ncols = ncols or min(n, 2)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(plot.width * 1.4, plot.height * nrows * height_scale),
                             squeeze=False, layout="constrained")
    flat = axes.ravel()
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def figures(tables, summary, experiment, plot, outdir: Path) -> list[str]:
    """paths: over contours, one panel per landscape; suboptimality: f - f* by iteration; rates;
    slide_quadratic and slide_lecture: paths and f - f* of one panel each, sized for a slide."""
    from mathdl import plots

    plots.setup(plot)
    m = tables.metrics
    extras = swept_extras(experiment)
    rows = [r for _, r in panels(tables.runs, extras).iterrows()]
    methods = summary["methods"]
    by_label = {e["label"]: e for e in summary["landscapes"]}
    names = []

    # paths over contour plots
    fig, axes = _grid_axes(plot, len(rows), height_scale=1.25)
    for ax, row in zip(axes, rows):
        _draw_paths(ax, m, row, methods, extras)
    axes[0].legend(fontsize=LEGEND_PT, loc="best")
    names.append(plots.save(fig, outdir, "paths", plot))

    # f(x_t) - f* against t, log scale, with the theory's slopes for GD and heavy ball
    fig, axes = _grid_axes(plot, len(rows))
    for ax, row in zip(axes, rows):
        _draw_gap(ax, m, row, methods, by_label[_panel_label(row, extras)])
    axes[0].legend(fontsize=LEGEND_PT)
    names.append(plots.save(fig, outdir, "suboptimality", plot))

    # measured rates against kappa beside the closed forms
    quad = [e for e in summary["landscapes"] if e["landscape"] == "quadratic"]
    fig, (ax,) = plots.new_figure(plot)
    if quad:
        ks = np.array([e["kappa"] for e in quad])
        grid = np.geomspace(1, max(ks.max(), 2), 200)
        for method in [mt for mt in METHODS if mt in methods]:
            style = METHOD_STYLES[method]
            if summary["tuned"] and method != "adagrad":
                ax.plot(grid, [theoretical_rates(k)[method] for k in grid], color=style["color"],
                        linestyle=style["linestyle"], linewidth=1)
            pts = [(e["kappa"], e["methods"][method]["rate"]) for e in quad
                   if method in e["methods"] and e["methods"][method]["rate"] is not None]
            if pts:
                ax.plot(*zip(*pts), style["marker"], color=style["color"], label=METHOD_LABELS[method])
        ax.set_xscale("log")
        ax.set_xlabel(r"condition number $\kappa$")
        ax.set_ylabel(r"rate $\lim\|x_t-x^\star\|^{1/t}$")
        ax.set_ylim(-0.03, 1.03)
        ax.legend(fontsize=LEGEND_PT)
    else:
        _empty(ax, "no quadratic landscape in this experiment")
    names.append(plots.save(fig, outdir, "rates", plot))

    # One panel's paths and suboptimality side by side, at a size a slide shows without shrinking.
    showcase = {
        "slide_quadratic": next((r for r in rows if r["params.landscape"] == "quadratic"
                                 and float(r["params.kappa"]) == summary["showcase_kappa"]), None),
        "slide_lecture": next((r for r in rows if r["params.landscape"] == "lecture"), None),
    }
    for name, row in showcase.items():
        fig, (left, right) = plots.new_figure(plot, ncols=2)
        fig.set_size_inches(*SLIDE_FIGSIZE)
        if row is None:
            _empty(left, f"no {name.removeprefix('slide_')} landscape in this experiment")
            right.set_axis_off()
        else:
            _draw_paths(left, m, row, methods, extras)
            _draw_gap(right, m, row, methods, by_label[_panel_label(row, extras)])
            left.set_title("paths", fontsize=TITLE_PT)
            right.set_title(r"$f(x_t)-f^\star$", fontsize=TITLE_PT)
            right.legend(fontsize=LEGEND_PT)
        names.append(plots.save(fig, outdir, name, plot))
    return names


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def _draw_paths(ax, m: pd.DataFrame, row, methods, extras) -> None:
    """One panel: the methods' paths over log-spaced contours of f - f*, minimizers and start."""
    from matplotlib.colors import LogNorm

    params = {k.removeprefix("params."): row[k] for k in row.index if k.startswith("params.")}
    land = make_landscape(params)
    paths = {}
    for method in methods:
        sel = m[(m["run_id"] == row["run_id"]) & (m["split"] == method) & m["metric"].isin(["x1", "x2"])]
        if not sel.empty:
            paths[method] = sel.pivot_table(index="epoch", columns="metric", values="value").sort_index()
    x1_lo, x1_hi, x2_lo, x2_hi = _view(land, paths.values())
    g1, g2 = np.meshgrid(np.linspace(x1_lo, x1_hi, 300), np.linspace(x2_lo, x2_hi, 300))
    z = np.maximum(land.f(np.stack([g1, g2], axis=-1)) - float(row["f_star"]), 0) + 1e-3
    levels = np.geomspace(max(z.min(), 1e-3), z.max(), 18)
    ax.contour(g1, g2, z, levels=levels, norm=LogNorm(), cmap="Greys", linewidths=0.6, alpha=0.8)
    for method, path in paths.items():
        style = METHOD_STYLES[method]
        ax.plot(path["x1"], path["x2"], color=style["color"], linestyle=style["linestyle"], marker=".",
                markersize=2.5, linewidth=1.2, label=METHOD_LABELS[method])
    mins = m[(m["run_id"] == row["run_id"]) & (m["split"] == "landscape")]
    mx = mins[mins["metric"] == "minimizer_x1"]["value"].to_numpy()
    my = mins[mins["metric"] == "minimizer_x2"]["value"].to_numpy()
    ax.plot(mx, my, "k*", markersize=8, label="minimizer")
    ax.plot(*_start(row), "ko", markersize=4, fillstyle="none")
    ax.set_xlim(x1_lo, x1_hi)
    ax.set_ylim(x2_lo, x2_hi)
    ax.set_title(_panel_label(row, extras).replace("kappa", r"$\kappa$"), fontsize=TITLE_PT)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.grid(False)


def _draw_gap(ax, m: pd.DataFrame, row, methods, entry) -> None:
    """One panel: f(x_t) - f* by iteration (log scale); thin: (f(x_0) - f*) rho^(2t) for GD and heavy ball."""
    for method in methods:
        sel = m[(m["run_id"] == row["run_id"]) & (m["split"] == method) & (m["metric"] == "f_gap")].sort_values("epoch")
        if sel.empty:
            continue
        style = METHOD_STYLES[method]
        shown = sel[sel["value"] > SUBOPTIMALITY_FLOOR]
        few = len(shown) < 3  # finite termination (kappa = 1): a line of one point would not show
        ax.plot(shown["epoch"], shown["value"], color=style["color"], linestyle=style["linestyle"], linewidth=1.4,
                label=METHOD_LABELS[method], marker=style["marker"] if few else None, markersize=4)
        res = entry["methods"].get(method, {})
        if method in ("gd", "heavy_ball") and res.get("theory_rate") and len(sel):
            t = sel["epoch"].to_numpy()
            ref = sel["value"].iloc[0] * res["theory_rate"] ** (2 * t)
            keep = ref > SUBOPTIMALITY_FLOOR
            ax.plot(t[keep], ref[keep], color=style["color"], linestyle=style["linestyle"], linewidth=0.6, alpha=0.6)
    ax.set_yscale("log")
    ax.set_ylim(bottom=SUBOPTIMALITY_FLOOR)
    ax.set_xlabel("iteration $t$")
    ax.set_ylabel(r"$f(x_t)-f^\star$")
    ax.set_title(entry["label"].replace("kappa", r"$\kappa$"), fontsize=TITLE_PT)


def _view(land: Landscape, paths) -> tuple[float, float, float, float]:
    """The minimizer-search box, grown to hold the paths (finite, not far beyond)."""
    x1_lo, x1_hi, x2_lo, x2_hi = land.box
    for p in paths:
        p = p[np.isfinite(p).all(axis=1)]
        p = p[(p.abs() < 10).all(axis=1)]
        if len(p):
            x1_lo, x1_hi = min(x1_lo, p["x1"].min()), max(x1_hi, p["x1"].max())
            x2_lo, x2_hi = min(x2_lo, p["x2"].min()), max(x2_hi, p["x2"].max())
    pad1, pad2 = 0.05 * (x1_hi - x1_lo), 0.05 * (x2_hi - x2_lo)
    return x1_lo - pad1, x1_hi + pad1, x2_lo - pad2, x2_hi + pad2


# ----------------------------------------------------------------------------- words


def context(experiment, summary) -> dict:
    """What the templates need beyond the summary: the other swept parameters, the reach threshold."""
    del summary
    return {"extras": swept_extras(experiment), "approached": APPROACHED}
