"""What depth buys: Telgarsky's sawtooth and a trained radial separation.

(a) **Sawtooth** (Telgarsky 2016). The tent map ``t(x) = 2 relu(x) - 4 relu(x - 1/2)`` sends
[0, 1] onto itself; composed k times it is the sawtooth ``s_k(x) = 2 dist(2^(k-1) x, Z)`` with
2^(k-1) teeth and 2^k linear pieces. It is a ReLU network of depth k and width 2 (weights in
``sawtooth_params``; 6k + 1 parameters). We evaluate that network with the project's forward
pass (``mathdl.models.forward``, float64) on the dyadic grid ``j / 2^(k + refine)``, compare it
with the closed form, and count its linear pieces on the grid.

A one-hidden-layer ReLU network of width W is affine between its at most W breakpoints, so on
[0, 1] it has at most W + 1 pieces. s_k is a row of 2^(k-1) teeth (tents of width 2^(1-k));
at least 2^(k-1) - W of them contain no breakpoint, and on such a tooth the best affine L2 fit
of the tent is its mean (the tent is symmetric, x - 1/2 is not), leaving 2^(1-k) Var(tent) =
2^(1-k) / 12. Hence for every width-W network f (the study's proposition, the piece counting
of Telgarsky 2016, Theorem 1.1, in L2)
    int_0^1 (f - s_k)^2 dx >= (1 - W / 2^(k-1))_+ / 12.
Counting the 2^k pieces instead of the teeth, (1 - W / 2^k)_+ / 12, is false (a width-3
network is at 0.0065 < 1/48 from s_2; ``piece_count_value``). The check is against the best
networks found, not hand-placed ones: for each W the first layer is optimized by L-BFGS from
``shallow_restarts`` starts with the output layer solved exactly by least squares in L2[0, 1]
(``optimize_shallow``); the errors are integrated exactly (the error is piecewise linear between
the merged breakpoints). The fit with breakpoints at the first W dyadic points j / 2^k
(``shallow_knots``) is kept as a reference and as one of the starts; from W = 2^k on it is exact.

(b) **Radial target** (Eldan and Shamir 2016; Safran and Shamir 2017). x ~ N(0, I_d), target
``y = sin(2 pi f (|x| - sqrt(d)))``, oscillating in the radius. A three-layer network (two
hidden layers of width ``deep_width``) can compute |x|^2 as a sum of one-dimensional functions
and then the profile; a two-layer network of (about) the same parameter count (width chosen to
match) must tile the sphere's shells with ridge functions. Both are trained with the engine
(adam, mse, the same schedule, one network per seed); we report the test MSE at the last epoch.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mathdl.tables import CI_LEVEL, json_number as _num, mean_ci_dict

DEFAULTS: dict[str, Any] = {
    "description": (
        "Can a shallow network do what a deep one does with the same number of parameters? "
        "Telgarsky's sawtooth, and a radial target in several dimensions."
    ),
    "seeds": [0, 1, 2],
    "task": {"name": "none"},
    "sweep": {},
}

PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "k_max": {
            "description": "Largest number of tent-map compositions k of the sawtooth; k = 1..k_max.",
            "type": "integer", "minimum": 1, "maximum": 16, "default": 6,
        },
        "grid_refine": {
            "description": "The sawtooth of depth k is evaluated on 2^(k + grid_refine) + 1 dyadic points.",
            "type": "integer", "minimum": 1, "maximum": 10, "default": 4,
        },
        "shallow_widths": {
            "description": "Widths W of the one-hidden-layer networks fitted to each sawtooth.",
            "type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1,
            "default": [1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64],
        },
        "shallow_restarts": {
            "description": "Starts of the search (L-BFGS on the first layer, the output layer solved exactly) "
                           "for the best one-hidden-layer network of each width and k.",
            "type": "integer", "minimum": 1, "default": 16,
        },
        "dim": {
            "description": "Input dimension d of the radial target.",
            "type": "integer", "minimum": 2, "maximum": 1000, "default": 10,
        },
        "frequency": {
            "description": "Frequency f of the radial profile sin(2 pi f (|x| - sqrt d)).",
            "type": "number", "exclusiveMinimum": 0, "default": 0.4,
        },
        "n_train": {
            "description": "Training points of the radial target (shared by all seeds).",
            "type": "integer", "minimum": 1, "default": 8000,
        },
        "n_test": {
            "description": "Test points of the radial target.",
            "type": "integer", "minimum": 1, "default": 4000,
        },
        "deep_width": {
            "description": "Width of both hidden layers of the three-layer network; the two-layer "
                           "network's width is chosen to match its parameter count.",
            "type": "integer", "minimum": 1, "default": 32,
        },
        "epochs": {"description": "Training epochs of both networks.", "type": "integer", "minimum": 1,
                   "default": 80},
        "lr": {"description": "Adam learning rate of both networks.", "type": "number",
               "exclusiveMinimum": 0, "default": 0.005},
        "batch_size": {"description": "Minibatch size of both networks.", "type": "integer", "minimum": 1,
                       "default": 256},
        "data_seed": {"description": "Seed of the radial data set (the run seeds vary the networks).",
                      "type": "integer", "minimum": 0, "default": 0},
    },
}

EXACT_TOL = 1e-10  # an L2 error below this counts as an exact fit
BOUND_TOL = 1e-12  # a squared error this far below a bound counts as a violation (errors are ~1e-2)
FIGURES = ("sawtooth", "shallow_fit", "radial")
ARCHS = ("shallow", "deep")  # two-layer (one hidden layer) and three-layer (two hidden layers)


# ----------------------------------------------------------------------------- the sawtooth


def sawtooth(x: np.ndarray, k: int) -> np.ndarray:
    """The k-fold tent map in closed form: s_k(x) = 2 dist(2^(k-1) x, Z) on [0, 1]."""
    y = np.ldexp(np.asarray(x, dtype=np.float64), k - 1)
    return 2.0 * np.abs(y - np.round(y))


def sawtooth_architecture(k: int):
    from mathdl.models import Architecture

    return Architecture(input_dim=1, output_dim=1, depth=k, width=2, activation="relu", residual=False,
                        residual_scale=1.0, init="pytorch", output_scale=1.0)


def sawtooth_params(k: int) -> list:
    """The weights of t∘...∘t (k times) as a width-2 ReLU network, stacked for M = 1 model.

    Hidden layer 1: (relu(x), relu(x - 1/2)); the read-out of each tent is 2 h_1 - 4 h_2, so
    hidden layer l > 1 applies both units to that combination: W_l = [[2, -4], [2, -4]],
    b_l = (0, -1/2); the output is 2 h_1 - 4 h_2. Tensors of shape (1, out, in) and (1, out, 1).
    """
    import torch

    f64 = torch.float64
    first_w, bias = torch.tensor([[1.0], [1.0]], dtype=f64), torch.tensor([[0.0], [-0.5]], dtype=f64)
    inner_w, out_w = torch.tensor([[2.0, -4.0], [2.0, -4.0]], dtype=f64), torch.tensor([[2.0, -4.0]], dtype=f64)
    params = [first_w[None], bias[None]]
    for _ in range(k - 1):
        params += [inner_w[None], bias[None]]
    return params + [out_w[None], torch.zeros(1, 1, 1, dtype=f64)]


def deep_sawtooth(x: np.ndarray, k: int) -> np.ndarray:
    """The depth-k width-2 network evaluated by the engine's forward pass, in float64."""
    import torch

    from mathdl.models import forward

    xt = torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(1, 1, -1)  # (M, in, B)
    return forward(sawtooth_params(k), xt, sawtooth_architecture(k)).reshape(-1).numpy()


def dyadic_grid(k: int, refine: int) -> np.ndarray:
    """j / 2^(k + refine), j = 0..2^(k + refine): every breakpoint of s_k is a grid point."""
    n = 2 ** (k + refine)
    return np.arange(n + 1, dtype=np.float64) / n


def count_pieces(x: np.ndarray, y: np.ndarray, tol: float = 1e-8) -> int:
    """Linear pieces of the piecewise linear interpolant of (x, y): 1 + changes of slope.

    Exact for a continuous piecewise linear function whose breakpoints are all in ``x``.
    """
    slopes = np.diff(y) / np.diff(x)
    jumps = np.abs(np.diff(slopes)) > tol * np.maximum(1.0, np.abs(slopes[:-1]))
    return 1 + int(jumps.sum())


# ----------------------------------------------------------------------------- shallow fits


def shallow_knots(width: int, k: int) -> np.ndarray:
    """The W breakpoints of the shallow fit to s_k: the first min(W, 2^k) dyadic points j/2^k
    (j = 0, 1, ...), so the fit follows s_k exactly on [0, (W-1)/2^k] and is one line after it;
    from W = 2^k on all of them (an exact fit) and the rest spread over (0, 1)."""
    n = 2**k
    extra = max(width - n, 0)
    return np.concatenate([np.arange(min(width, n)) / n, (np.arange(extra) + 0.5) / max(extra, 1)])


def shallow_features(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """relu(x - t_j) for the W knots t_j, and a constant (the output bias): (n, W + 1)."""
    return np.concatenate([np.maximum(x[:, None] - knots[None, :], 0.0), np.ones((len(x), 1))], axis=1)


def fit_shallow(x: np.ndarray, y: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Output-layer coefficients of the one-hidden-layer network with these breakpoints, least
    squares on (x, y) (the minimum-norm solution where knots repeat)."""
    coef, *_ = np.linalg.lstsq(shallow_features(x, knots), y, rcond=None)
    return coef


def shallow_eval(x: np.ndarray, knots: np.ndarray, coef: np.ndarray) -> np.ndarray:
    return shallow_features(x, knots) @ coef


def shallow_network_pieces(x: np.ndarray, w: np.ndarray, b: np.ndarray, a: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate f(x) = c + sum_i a_i relu(w_i x + b_i) on ``x`` merged with its breakpoints in (0, 1).

    Returns (points, values), ready for ``count_pieces``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        kinks = -b / w
    kinks = kinks[np.isfinite(kinks) & (kinks > x.min()) & (kinks < x.max())]
    pts = np.unique(np.concatenate([x, kinks]))
    return pts, c + np.maximum(np.outer(pts, w) + b, 0.0) @ a


def exact_l2_error(knots: np.ndarray, coef: np.ndarray, k: int, refine: int) -> float:
    """int_0^1 (f - s_k)^2 dx exactly: the error is linear between the merged grid and breakpoints."""
    pts = np.union1d(dyadic_grid(k, refine), knots)
    e = shallow_eval(pts, knots, coef) - sawtooth(pts, k)
    h = np.diff(pts)
    return float(np.sum(h * (e[:-1] ** 2 + e[:-1] * e[1:] + e[1:] ** 2) / 3.0))


def shallow_lower_bound(width: int, k: int) -> float:
    """(1 - W / 2^(k-1))_+ / 12: no one-hidden-layer ReLU network of width W gets closer to s_k
    in squared L2 on [0, 1] (the study's proposition: count the 2^(k-1) teeth its at most W
    breakpoints miss; each costs 2^(1-k) Var(tent) = 2^(1-k) / 12)."""
    return max(0.0, 1.0 - width / 2 ** (k - 1)) / 12.0


def piece_count_value(width: int, k: int) -> float:
    """(1 - W / 2^k)_+ / 12, what counting the 2^k pieces of s_k instead of its teeth would give.

    Not a bound: for k = 2 the width-3 network
    4.116 - 9.456 relu(x - 0.219) - 5.752 relu(0.749 - x) + 6.626 relu(x - 0.485)
    is at squared distance 0.0065 < 1/48. The optimized fits are compared with it to show
    that the search is strong enough to refute a false bound.
    """
    return max(0.0, 1.0 - width / 2**k) / 12.0


def network_kinks(w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The breakpoints -b_i / w_i of the units relu(w_i x + b_i) that lie in (0, 1)."""
    w, b = np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)
    on = w != 0
    t = -b[on] / w[on]
    return t[(t > 0) & (t < 1)]


def network_pieces(w, b, a, tol: float = 1e-8) -> int:
    """Affine pieces of the network on [0, 1]: 1 + changes of its slope sum_i a_i w_i [w_i x + b_i > 0]
    between consecutive breakpoints (slopes from the weights, not from differences of values,
    which round badly across breakpoints that nearly coincide)."""
    w, a = np.asarray(w, dtype=np.float64), np.asarray(a, dtype=np.float64)
    pts = np.union1d([0.0, 1.0], network_kinks(w, b))
    mid = (pts[:-1] + pts[1:]) / 2
    slopes = ((np.outer(mid, w) + np.asarray(b)) > 0) @ (a * w)
    jumps = np.abs(np.diff(slopes)) > tol * np.maximum(1.0, np.abs(slopes[:-1]))
    return 1 + int(jumps.sum())


def network_eval(x: np.ndarray, w, b, a, c: float) -> np.ndarray:
    """f(x) = c + sum_i a_i relu(w_i x + b_i), a one-hidden-layer ReLU network on a batch of x."""
    return c + np.maximum(np.outer(x, w) + np.asarray(b), 0.0) @ np.asarray(a, dtype=np.float64)


def network_l2_error(w, b, a, c: float, k: int) -> float:
    """int_0^1 (f - s_k)^2 dx exactly for the network f: the error is linear between the merged
    breakpoints of f and of s_k, where int (linear)^2 = h (e0^2 + e0 e1 + e1^2) / 3."""
    pts = np.union1d(dyadic_grid(k, 0), network_kinks(w, b))
    e = network_eval(pts, w, b, a, c) - sawtooth(pts, k)
    h = np.diff(pts)
    return float(np.sum(h * (e[:-1] ** 2 + e[:-1] * e[1:] + e[1:] ** 2) / 3.0))


def _simpson_nodes(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (the points, then the midpoints) and weights of Simpson's rule on each interval
    between consecutive ``pts``: exact for every function that is quadratic on each interval."""
    n, h = len(pts), np.diff(pts)
    nodes = np.concatenate([pts, (pts[:-1] + pts[1:]) / 2])
    weights = np.zeros(2 * n - 1)
    weights[: n - 1] += h / 6  # left ends
    weights[1:n] += h / 6  # right ends
    weights[n:] = 4 * h / 6  # midpoints
    return nodes, weights


def fit_output_layer(w, b, k: int) -> tuple[np.ndarray, float, float, np.ndarray]:
    """The best output layer (a, c) for the first layer (w, b): least squares in L2[0, 1], exact.

    Between the merged breakpoints of the network and of s_k every feature relu(w_i x + b_i),
    the constant and s_k are linear, so the squared error is quadratic there and Simpson's rule
    on those intervals integrates it exactly; a weighted linear least-squares problem in (a, c)
    (the minimum-norm solution where features coincide). Returns (a, c, error, gradient of the
    error in (w, b)): by the envelope theorem d/dw_i = 2 a_i int e x 1[w_i x + b_i > 0] and
    d/db_i = 2 a_i int e 1[w_i x + b_i > 0], e = f - s_k, also exact by Simpson's rule on each
    interval (the indicator is constant inside it).
    """
    w, b = np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)
    pts = np.union1d(dyadic_grid(k, 0), network_kinks(w, b))
    nodes, weights = _simpson_nodes(pts)
    features = np.concatenate([np.maximum(np.outer(nodes, w) + b, 0.0), np.ones((len(nodes), 1))], axis=1)
    target = sawtooth(nodes, k)
    root = np.sqrt(weights)
    coef, *_ = np.linalg.lstsq(features * root[:, None], target * root, rcond=None)
    e = features @ coef - target
    error = float(weights @ e**2)
    n, h = len(pts), np.diff(pts)

    def per_interval(v):  # Simpson's rule on each interval: (intervals,)
        return h / 6 * (v[: n - 1] + 4 * v[n:] + v[1:n])

    active = (np.outer(nodes[n:], w) + b > 0).astype(np.float64)  # (intervals, W): the unit's slope is on
    a = coef[:-1]
    grad = np.concatenate([2 * a * (per_interval(e * nodes) @ active), 2 * a * (per_interval(e) @ active)])
    return a, float(coef[-1]), error, grad


def _first_layer_start(width: int, k: int, start: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Start ``start`` of the search: 0, the dyadic breakpoints j / 2^k of ``shallow_knots``;
    then three in four with breakpoints near a random subset of the kinks of s_k (the better
    starts) and one in four with uniform ones; random orientations (the sign of w_i) and scales
    except at start 0."""
    n = 2**k
    if start == 0:
        knots = shallow_knots(width, k)
        return np.ones(width), -knots
    if start % 4 != 0:
        m = min(width, n - 1)
        knots = rng.choice(np.arange(1, n) / n, m, replace=False) + rng.normal(0.0, 0.1 / n, m)
        knots = np.concatenate([knots, rng.uniform(-0.5, 1.5, width - m)])
    else:
        knots = rng.uniform(0.0, 1.0, width)
    w = rng.choice([-1.0, 1.0], width) * rng.uniform(0.5, 2.0, width)
    return w, -w * knots


def optimize_shallow(width: int, k: int, restarts: int, max_iter: int = 300) -> dict:
    """The best width-W one-hidden-layer ReLU network for s_k found by ``restarts`` starts.

    Variable projection: the output layer is solved exactly for each first layer
    (``fit_output_layer``) and the first layer is optimized by L-BFGS on that exact error.
    The result is the smallest error found, an upper estimate of the best possible one; its
    error is recomputed by ``network_l2_error``. Seeded by (k, W, start): reproducible.
    """
    from scipy.optimize import minimize
    from threadpoolctl import threadpool_limits

    def objective(theta):
        _, _, error, grad = fit_output_layer(theta[:width], theta[width:], k)
        return error, grad

    best = None
    with threadpool_limits(limits=1):  # tiny least-squares problems: threads only cost
        for start in range(restarts):
            w, b = _first_layer_start(width, k, start, np.random.default_rng([k, width, start]))
            res = minimize(objective, np.concatenate([w, b]), jac=True, method="L-BFGS-B",
                           options={"maxiter": max_iter})
            if best is None or res.fun < best.fun:
                best = res
            if best.fun < EXACT_TOL:
                break  # exact: no start can do better
    w, b = best.x[:width], best.x[width:]
    a, c, _, _ = fit_output_layer(w, b, k)
    return {"w": w, "b": b, "a": a, "c": c, "l2_error": network_l2_error(w, b, a, c, k)}


def sawtooth_rows(k_max: int, refine: int, widths, restarts: int) -> list[tuple]:
    """(epoch, split, metric, value) rows of part (a); epoch is k for the sawtooth, W for the fits.

    Per k and W: the fit with fixed dyadic breakpoints (``l2_error``, ``max_error``, ``pieces``),
    the best network found by ``optimize_shallow`` (``best_l2_error``, ``best_pieces``), the
    proposition's bound (``lower_bound``) and the piece count that is no bound (``piece_count``).
    """
    rows = []
    for k in range(1, k_max + 1):
        x = dyadic_grid(k, refine)
        target, deep = sawtooth(x, k), deep_sawtooth(x, k)
        rows += [
            (k, "sawtooth", "max_error", float(np.max(np.abs(deep - target)))),
            (k, "sawtooth", "pieces", count_pieces(x, deep)),
            (k, "sawtooth", "deep_params", sawtooth_architecture(k).parameter_count()),
        ]
        for width in widths:
            knots = shallow_knots(width, k)
            pts = np.union1d(x, knots)  # fit on the knots too: the fit is linear between these points
            coef = fit_shallow(pts, sawtooth(pts, k), knots)
            fitted = shallow_eval(pts, knots, coef)
            best = optimize_shallow(width, k, restarts)
            split = f"shallow_k{k}"
            rows += [
                (width, split, "l2_error", exact_l2_error(knots, coef, k, refine)),
                (width, split, "max_error", float(np.max(np.abs(fitted - sawtooth(pts, k))))),
                (width, split, "pieces", count_pieces(pts, fitted)),
                (width, split, "best_l2_error", best["l2_error"]),
                (width, split, "best_pieces", network_pieces(best["w"], best["b"], best["a"])),
                (width, split, "lower_bound", shallow_lower_bound(width, k)),
                (width, split, "piece_count", piece_count_value(width, k)),
            ]
    return rows


# ----------------------------------------------------------------------------- the radial target


def radial_profile(r: np.ndarray, dim: int, frequency: float) -> np.ndarray:
    """g(r) = sin(2 pi f (r - sqrt d)): oscillates across the shell where |x| concentrates."""
    return np.sin(2 * np.pi * frequency * (r - math.sqrt(dim)))


def radial_data(p: dict):
    """x ~ N(0, I_d) and y = g(|x|), float32; no validation split (nothing is selected)."""
    from mathdl.tasks import Dataset

    rng = np.random.default_rng([p["data_seed"], p["dim"]])

    def sample(n):
        x = rng.standard_normal((n, p["dim"]))
        y = radial_profile(np.linalg.norm(x, axis=1), p["dim"], p["frequency"])
        return x.astype(np.float32), y[:, None].astype(np.float32)

    x_train, y_train = sample(p["n_train"])
    x_test, y_test = sample(p["n_test"])
    return Dataset("regression", 1, x_train, y_train, x_train[:0], y_train[:0], x_test, y_test)


def matched_widths(dim: int, deep_width: int) -> tuple[int, int, int]:
    """(shallow width, shallow params, deep params): the one-hidden-layer width whose parameter
    count (d + 2) W + 1 is nearest to that of two hidden layers of width ``deep_width``."""
    w = deep_width
    deep = (dim + 1) * w + (w + 1) * w + w + 1
    shallow_w = max(1, round((deep - 1) / (dim + 2)))
    return shallow_w, (dim + 2) * shallow_w + 1, deep


def train_radial(group, p: dict, device: str):
    """Train both architectures on the radial data on ``device``, all seeds batched; rows, each
    run's first diverged epoch (-1: none) and the device used."""
    from mathdl import engine

    data = radial_data(p)
    shallow_w, _, _ = matched_widths(p["dim"], p["deep_width"])
    train = {"loss": "mse", "optimizer": "adam", "lr": p["lr"], "batch_size": p["batch_size"],
             "epochs": p["epochs"], "eval_points": 12}
    seeds = [r.seed for r in group.runs]
    by_seed = {r.seed: r.run_id for r in group.runs}
    frames, diverged = [], {r.run_id: -1 for r in group.runs}
    var_y = float(np.var(data.y_test))
    for arch, (depth, width) in zip(ARCHS, [(1, shallow_w), (2, p["deep_width"])]):
        spec = engine.make_group(seeds, model={"depth": depth, "width": width, "activation": "relu"},
                                 train=train, experiment=group.experiment)
        result = engine.train(spec, data, device=device, progress=False)
        seed_of = {r.run_id: r.seed for r in spec.runs}
        m = result.metrics[(result.metrics["metric"] == "loss") & result.metrics["split"].isin(["train", "test"])]
        m = m.assign(run_id=m["run_id"].map(seed_of).map(by_seed), metric=f"{arch}_mse")
        rel = m.assign(metric=f"{arch}_relative_mse", value=m["value"] / var_y)
        frames += [m, rel]
        for _, row in result.runs.iterrows():
            rid = by_seed[seed_of[row["run_id"]]]
            if row["diverged"]:
                e = int(row["diverged_epoch"])
                diverged[rid] = e if diverged[rid] < 0 else min(diverged[rid], e)
    rows = pd.concat(frames, ignore_index=True)[["run_id", "epoch", "split", "metric", "value"]]
    return rows, diverged, result.device


# ----------------------------------------------------------------------------- compute


def networks(group) -> list:
    """What the group's job trains (mathdl.resources sizes the job from it): the two radial
    architectures, all seeds batched, one after the other (part (a) is closed form)."""
    from mathdl.resources import Networks

    p = group.runs[0].params
    shallow_w, _, _ = matched_widths(p["dim"], p["deep_width"])
    return [Networks.of_group(group, model=dataclasses.replace(group.model, depth=depth, width=width, residual=False),
                              input_dim=p["dim"], n_outputs=1, n_train=p["n_train"], n_eval=p["n_test"],
                              batch_size=p["batch_size"], epochs=p["epochs"], eval_points=12, optimizer="adam",
                              dtype="float32", early_stopping=False)
            for depth, width in ((1, shallow_w), (2, p["deep_width"]))]


def compute(group, data, device):
    """Part (a) in closed form (the same rows for every seed), part (b) trained with the engine."""
    from mathdl.engine import TrainResult, resolve_device

    start = time.perf_counter()
    resolve_device(device)  # a device that cannot be had fails now, not after part (a)
    p = dict(group.runs[0].params)
    saw = pd.DataFrame(sawtooth_rows(p["k_max"], p["grid_refine"], p["shallow_widths"], p["shallow_restarts"]),
                       columns=["epoch", "split", "metric", "value"])
    radial, diverged, used = train_radial(group, p, device)
    frames, runs = [], []
    shallow_w, shallow_params, deep_params = matched_widths(p["dim"], p["deep_width"])
    for run in group.runs:
        frames.append(saw.assign(run_id=run.run_id)[["run_id", "epoch", "split", "metric", "value"]])
        runs.append({"run_id": run.run_id, "seed": run.seed, "diverged": diverged[run.run_id] >= 0,
                     "diverged_epoch": diverged[run.run_id], "shallow_width": shallow_w,
                     "shallow_params": shallow_params, "deep_width": p["deep_width"], "deep_params": deep_params})
    metrics = pd.concat(frames + [radial], ignore_index=True)
    metrics["value"] = metrics["value"].astype(float)
    metrics["epoch"] = metrics["epoch"].astype(int)
    return TrainResult(metrics=metrics, runs=pd.DataFrame(runs), device=used,
                       wall_time_s=time.perf_counter() - start)


# ----------------------------------------------------------------------------- analyze





def _sawtooth_summary(metrics: pd.DataFrame, restarts: int) -> dict:
    """Part (a) from one run (its rows are the same for every run): the deep network's errors and
    pieces; per k and W the dyadic and the best fits, the bound and the piece count; the check of
    the bound (how many best fits with a positive bound fall below it, and by what factor they
    stay above) and of the search's power (how many fall below the piece count, which is no bound)."""
    one = metrics[metrics["run_id"] == metrics["run_id"].iloc[0]]
    saw = one[one["split"] == "sawtooth"].pivot_table(index="epoch", columns="metric", values="value")
    ks = [int(k) for k in saw.index]
    names = {"l2_error": "shallow_dyadic_l2_error", "max_error": "shallow_dyadic_max_error",
             "pieces": "shallow_dyadic_pieces", "best_l2_error": "shallow_best_l2_error",
             "best_pieces": "shallow_best_pieces", "lower_bound": "shallow_lower_bound",
             "piece_count": "shallow_piece_count"}
    fits: dict[str, dict] = {key: {} for key in names.values()}
    exact_width = {}
    for k in ks:
        df = one[one["split"] == f"shallow_k{k}"].pivot_table(index="epoch", columns="metric", values="value")
        for metric, key in names.items():
            fits[key][str(k)] = {str(int(w)): (int(v) if metric.endswith("pieces") else float(v))
                                 for w, v in df[metric].items()}
        exact = [int(w) for w, v in df["best_l2_error"].items() if v < EXACT_TOL]
        exact_width[str(k)] = min(exact) if exact else None
    cases = [{"k": k, "width": int(w), "best_l2_error": fits["shallow_best_l2_error"][str(k)][w],
              "lower_bound": fits["shallow_lower_bound"][str(k)][w],
              "piece_count": fits["shallow_piece_count"][str(k)][w]}
             for k in ks for w in fits["shallow_best_l2_error"][str(k)]]
    checked = [c for c in cases if c["lower_bound"] > 0]
    ratios = [c["best_l2_error"] / c["lower_bound"] for c in checked]
    example = max(checked, key=lambda c: (c["k"], c["width"]), default=None)  # the widest at the largest k
    inexact = [c for c in cases if c["k"] == ks[-1] and c["best_l2_error"] >= EXACT_TOL]
    widest_inexact = max(inexact, key=lambda c: c["width"], default=None)
    return {
        "ks": ks,
        "sawtooth_max_error": float(saw["max_error"].max()),
        "sawtooth_pieces": {str(k): int(saw.loc[k, "pieces"]) for k in ks},
        "sawtooth_expected_pieces": {str(k): 2**k for k in ks},
        "sawtooth_pieces_match": all(int(saw.loc[k, "pieces"]) == 2**k for k in ks),
        "sawtooth_deep_params": {str(k): int(saw.loc[k, "deep_params"]) for k in ks},
        **fits,
        "shallow_restarts": int(restarts),
        "shallow_exact_width": exact_width,
        # The proposition's bound against the best networks found, where it is positive (W < 2^(k-1)).
        "shallow_bound_checks": len(checked),
        "shallow_bound_violations": sum(c["best_l2_error"] < c["lower_bound"] - BOUND_TOL for c in checked),
        "shallow_min_best_over_bound": min(ratios) if ratios else None,
        "shallow_max_best_over_bound": max(ratios) if ratios else None,
        "shallow_example": {**example, "best_over_bound": example["best_l2_error"] / example["lower_bound"]}
        if example else None,
        # The search's power: best networks below (1 - W/2^k)_+/12, which counting pieces would give.
        "shallow_piece_count_checks": sum(c["piece_count"] > 0 for c in cases),
        "shallow_below_piece_count": sum(c["best_l2_error"] < c["piece_count"] - BOUND_TOL for c in cases),
        "shallow_widest_inexact": widest_inexact,
    }


RADIAL_COLUMNS = ("test_shallow_mse", "test_deep_mse", "train_shallow_mse", "train_deep_mse",
                  "test_shallow_relative_mse", "test_deep_relative_mse")


def _without_diverged(final: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The final rows with a failed seed's radial errors NaN (both architectures, so that the two
    stay paired), and the number of failed seeds: those whose training diverged, at any epoch up to
    the last, or whose final loss is not finite."""
    values = final[list(RADIAL_COLUMNS)].to_numpy(dtype=float)
    failed = final["diverged"].astype(bool).to_numpy() | ~np.isfinite(values).all(axis=1)
    out = final.copy()
    out.loc[failed, list(RADIAL_COLUMNS)] = np.nan
    return out, int(failed.sum())


def _nanmean(v: np.ndarray) -> float:
    return float(np.mean(v[np.isfinite(v)])) if np.isfinite(v).any() else float("nan")


def _radial_summary(final: pd.DataFrame) -> dict:
    final, n_failed = _without_diverged(final)
    shallow, deep = final["test_shallow_mse"].to_numpy(), final["test_deep_mse"].to_numpy()
    row = final.iloc[0]
    return {
        "dim": int(row["params.dim"]),
        "frequency": float(row["params.frequency"]),
        "n_train": int(row["params.n_train"]),
        "epochs": int(row["params.epochs"]),
        "shallow_width": int(row["shallow_width"]),
        "deep_width": int(row["deep_width"]),
        "shallow_params": int(row["shallow_params"]),
        "deep_params": int(row["deep_params"]),
        "n_seeds": int(len(final)),
        "n_diverged": n_failed,  # left out of every mean below
        "test_mse": {"shallow": mean_ci_dict(shallow), "deep": mean_ci_dict(deep)},
        "train_mse": {"shallow": mean_ci_dict(final["train_shallow_mse"]), "deep": mean_ci_dict(final["train_deep_mse"])},
        "test_relative_mse": {"shallow": mean_ci_dict(final["test_shallow_relative_mse"]),
                              "deep": mean_ci_dict(final["test_deep_relative_mse"])},
        # The headline: the ratio of the seed means; beside it the mean of the per-seed ratios.
        "mse_ratio_shallow_over_deep": _num(_nanmean(shallow) / _nanmean(deep)),
        "mse_ratio_per_seed_mean": _num(_nanmean(shallow / deep)),
        # Whether the seeds' confidence intervals of the two test MSEs overlap (None: no intervals).
        "test_mse_intervals_overlap": _overlap(mean_ci_dict(shallow), mean_ci_dict(deep)),
    }


def _overlap(a: dict, b: dict) -> bool | None:
    ends = (a["ci_low"], a["ci_high"], b["ci_low"], b["ci_high"])
    if any(v is None for v in ends):
        return None
    return bool(a["ci_low"] <= b["ci_high"] and b["ci_low"] <= a["ci_high"])


def analyze(tables, experiment) -> dict:
    """Part (a): errors, pieces, the best shallow fits against the bound; part (b): test MSEs and their ratio.

    With a sweep, part (b) is summarized per sweep point under ``points`` and the headline keys
    are those of the first point.
    """
    final = tables.final()
    keys = [k for k, _ in experiment.sweep]
    points = []
    grouped = final.groupby(keys, sort=True) if keys else [((), final)]
    for values, df in grouped:
        values = values if isinstance(values, tuple) else (values,)
        points.append({"point": {k: (v.item() if hasattr(v, "item") else v) for k, v in zip(keys, values)},
                       **_radial_summary(df)})
    # The sawtooth part from the run with the largest k_max.
    best = final.sort_values("params.k_max").iloc[-1]
    metrics = tables.metrics[tables.metrics["run_id"] == best["run_id"]]
    head = {k: v for k, v in points[0].items() if k != "point"}
    saw = _sawtooth_summary(metrics, int(best["params.shallow_restarts"]))
    return {"confidence": CI_LEVEL, "exact_tol": EXACT_TOL, **saw, **head,
            "points": points if keys else []}


# ----------------------------------------------------------------------------- figures


def figures(tables, summary, experiment, plot, outdir: Path) -> list[str]:
    """sawtooth: the deep network for small k and its pieces; shallow_fit: L2 error against W;
    radial: test MSE during training of both architectures."""
    import seaborn as sns

    from mathdl import plots

    plots.setup(plot)
    colors = sns.color_palette(plot.palette)

    # The sawtooth curves are re-evaluated (a closed-form function, no training) for the drawing.
    fig, (ax, bx) = plots.new_figure(plot, ncols=2)
    x = dyadic_grid(max(summary["ks"][:3]), 4)
    for i, k in enumerate(summary["ks"][:3]):
        ax.plot(x, deep_sawtooth(x, k), color=colors[i], lw=1.2, label=f"k = {k}")
    ax.set_xlabel("x")
    ax.set_ylabel("deep network output")
    ax.legend(fontsize="small", loc="lower right")
    ks = np.array(summary["ks"])
    bx.plot(ks, [summary["sawtooth_pieces"][str(k)] for k in ks], "o", color=colors[0], label="counted pieces")
    bx.plot(ks, 2.0**ks, "--", color="gray", lw=1, label="$2^k$")
    bx.plot(ks, [summary["sawtooth_deep_params"][str(k)] for k in ks], "s-", color=colors[1], ms=3,
            label="parameters (6k+1)")
    bx.set_yscale("log", base=2)
    bx.set_xlabel("depth k")
    bx.legend(fontsize="small")
    names = [plots.save(fig, outdir, "sawtooth", plot)]

    # Per k: the best network found at each fitted width (solid) and the proposition's bound at
    # every width where it is positive, W < 2^(k-1) (dotted). A linear error axis: the gap between
    # the two is the point, and exact fits sit at 0.
    from matplotlib.lines import Line2D

    fig, (ax,) = plots.new_figure(plot)
    palette = sns.color_palette(plot.palette, len(ks))
    for i, k in enumerate(ks):
        err = summary["shallow_best_l2_error"][str(k)]
        ws = np.array(sorted(int(w) for w in err))
        ax.plot(ws, [err[str(w)] for w in ws], "o-", ms=3, color=palette[i], label=f"k = {k}")
        wb = np.arange(1, 2 ** (k - 1))
        if len(wb):
            # markers too: for k = 2 the bound is positive at W = 1 only
            ax.plot(wb, [shallow_lower_bound(int(w), k) for w in wb], "v:", ms=3, color=palette[i], lw=1.2)
    ax.set_xscale("log", base=2)
    ax.set_ylim(-0.003, 0.09)  # every error is at most that of the best constant, 1/12
    ax.set_xlabel("width W of the one-hidden-layer network")
    ax.set_ylabel(r"$\int_0^1 (f - s_k)^2\,dx$")
    styles = [Line2D([], [], color="gray", marker="o", ms=3, label="best network found"),
              Line2D([], [], color="gray", ls=":", marker="v", ms=3, lw=1.2, label="lower bound")]
    ax.legend(handles=ax.get_legend_handles_labels()[0] + styles, fontsize="small", ncols=4,
              loc="upper center", bbox_to_anchor=(0.5, -0.22))
    names.append(plots.save(fig, outdir, "shallow_fit", plot))

    curves = tables.metrics[(tables.metrics["split"] == "test")
                            & tables.metrics["metric"].isin(["shallow_relative_mse", "deep_relative_mse"])].copy()
    labels = {"shallow_relative_mse": f"2 layers, width {summary['shallow_width']} ({summary['shallow_params']} params)",
              "deep_relative_mse": f"3 layers, width {summary['deep_width']} ({summary['deep_params']} params)"}
    curves["network"] = curves["metric"].map(labels)
    fig, (ax,) = plots.new_figure(plot)
    sns.lineplot(data=curves, x="epoch", y="value", hue="network", marker="o", ms=4,
                 errorbar=("ci", round(100 * plot.confidence)), ax=ax)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(left=0)
    ax.set_yscale("log")
    ax.set_ylabel("test MSE / Var y")
    ax.legend(fontsize="small")
    names.append(plots.save(fig, outdir, "radial", plot))
    return names


# ----------------------------------------------------------------------------- words


def context(experiment, summary) -> dict:
    """What the templates need beyond the summary: the fitted widths, the table's cells and, with a
    sweep, each point's ratio of the two test errors."""
    from mathdl.report import escape, fmt, key_name

    k_max = str(summary["ks"][-1])
    widths = sorted(int(w) for w in summary["shallow_best_l2_error"][k_max])
    rows = [[fmt(k), fmt(summary["sawtooth_deep_params"][str(k)]), fmt(summary["sawtooth_pieces"][str(k)]),
             fmt(2**k), fmt(summary["shallow_exact_width"][str(k)])] for k in summary["ks"]]

    def cell(v):
        return fmt(v) if isinstance(v, (int, float)) else escape(str(v))

    point_ratios = [", ".join(f"{key_name(key)} $=$ {cell(v)}" for key, v in p["point"].items())
                    + f": {fmt(p['mse_ratio_shallow_over_deep'])}" for p in summary["points"]]
    return {"widths": widths, "rows": rows, "point_ratios": point_ratios,
            "swept": [key_name(k) for k, _ in experiment.sweep]}
