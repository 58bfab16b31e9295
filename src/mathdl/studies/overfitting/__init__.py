"""Overfitting and regularization in the small: the demonstrations of the course's first lecture.

Three parts, all computed in closed form or by small convex solvers written here, once per seed:

* **poly** -- least squares polynomials of degree 0..D through ``n`` noisy samples of a smooth
  function (von Neumann's "elephant", Dyson 2004) on an equispaced grid of [-1, 1], in the
  Legendre basis (well conditioned, unlike the monomials). Degree ``n - 1`` interpolates: the
  training error is zero and the test error explodes, the U curve of the bias-variance
  trade-off (Hastie et al. 2009, Sec. 7.3). Leave-one-out errors come from the hat matrix,
  ``e_i / (1 - h_ii)`` (Hastie et al. 2009, Sec. 7.10).
* **paths** -- ridge (Hoerl and Kennard 1970) and LASSO (Tibshirani 1996) on a sparse linear
  model ``y = X beta* + noise`` with ``k`` of ``p`` coefficients non-zero, along a grid of
  ``lambda``. Objectives ``(1/2n)|y - X b|^2 + (lambda/2)|b|^2`` and ``(1/2n)|y - X b|^2 +
  lambda |b|_1``; ridge by the SVD, LASSO by cyclic coordinate descent with soft
  thresholding and warm starts (Friedman et al. 2010).
* **svm** -- the linear support vector classifier (Cortes and Vapnik 1995), solved as its dual
  quadratic program with SciPy's SLSQP: hard margin on a separable two-dimensional set, soft
  margin (``C``) on an overlapping one; and the lecture's one-dimensional red/blue points
  (red in the middle, blue on both sides), which no threshold separates and which a line
  separates after the feature map ``x -> (x, x^2)``.

The "best" degree and ``lambda`` minimise the mean error on a large fresh test sample: they
locate the minimum of the risk curve (an oracle quantity), they are not a model selected on
the test set. The leave-one-out degree is the selection a practitioner could make.
The study computes one configuration: sweep nothing, set ``params`` instead.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.polynomial import legendre

from mathdl.tables import CI_LEVEL, mean_ci_dict

DEFAULTS: dict[str, Any] = {
    "description": (
        "How does the test error of a least squares fit depend on its number of parameters, "
        "and how do ridge, the LASSO and the margin of a support vector machine control it?"
    ),
    "seeds": list(range(10)),
    "task": {"name": "none"},
    "sweep": {},
}

PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "poly_points": {
            "description": "Training points of the polynomial fits (equispaced on [-1, 1]).",
            "type": "integer", "minimum": 2, "maximum": 60, "default": 15,
        },
        "poly_max_degree": {
            "description": "Largest degree fitted (at most poly_points - 1; poly_points - 1 interpolates).",
            "type": "integer", "minimum": 0, "maximum": 59, "default": 14,
        },
        "poly_noise": {
            "description": "Standard deviation sigma of the Gaussian noise on the polynomial targets.",
            "type": "number", "minimum": 0, "default": 0.3,
        },
        "poly_test_points": {
            "description": "Fresh test points (uniform on [-1, 1], noisy) per seed.",
            "type": "integer", "minimum": 1, "default": 2000,
        },
        "paths_train": {
            "description": "Training points n of the sparse linear model (ridge and LASSO paths).",
            "type": "integer", "minimum": 2, "default": 50,
        },
        "paths_features": {
            "description": "Features p of the sparse linear model (i.i.d. standard normal).",
            "type": "integer", "minimum": 1, "maximum": 200, "default": 30,
        },
        "paths_nonzero": {
            "description": "Non-zero coefficients k of beta* (the first k, of sizes 2, ..., 2/k with alternating signs).",
            "type": "integer", "minimum": 1, "default": 4,
        },
        "paths_noise": {
            "description": "Noise standard deviation of the sparse linear model.",
            "type": "number", "minimum": 0, "default": 1.0,
        },
        "paths_test": {
            "description": "Fresh test points of the sparse linear model per seed.",
            "type": "integer", "minimum": 1, "default": 1000,
        },
        "lambda_min": {
            "description": "Smallest lambda of the (geometric) ridge and LASSO grid.",
            "type": "number", "exclusiveMinimum": 0, "default": 1e-3,
        },
        "lambda_max": {
            "description": "Largest lambda of the grid.",
            "type": "number", "exclusiveMinimum": 0, "default": 100.0,
        },
        "n_lambdas": {
            "description": "Number of lambda values on the grid.",
            "type": "integer", "minimum": 2, "maximum": 500, "default": 41,
        },
        "svm_points": {
            "description": "Points of each two-dimensional SVM data set (half per class).",
            "type": "integer", "minimum": 4, "maximum": 400, "default": 40,
        },
        "svm_c": {
            "description": "Soft-margin constant C on the overlapping set (the separable set uses the hard margin).",
            "type": "number", "exclusiveMinimum": 0, "default": 1.0,
        },
        "featuremap_points": {
            "description": "Points of the one-dimensional red/blue set (half red in (-1, 1), half blue in 1.5 < |x| < 2.5).",
            "type": "integer", "minimum": 4, "maximum": 400, "default": 24,
        },
    },
}

SWEEPABLE: tuple[str, ...] = ()  # one configuration, computed in one group
FIGURES = ("u_curve", "poly_fits", "regularization_paths", "regularization_error", "svm_margins", "feature_map",
           "slide_errors", "slide_margins")
LEGEND_PT = 8  # legend and annotation font size (pt)
WIDE = 1.25  # width of the two-panel figures, in figure widths: shown at the text width, about their size
SLIDE_FIGSIZE = (6.0, 2.2)  # inches: the slide figures across a 16:9 frame (6.0 x 3.4 in) at scale ~1
SVM_SETS = ("separable", "overlapping", "featuremap")
_STREAMS = {"poly": 0, "paths": 1, "svm": 2}  # one random stream per part: a part's params never move another's data


# ----------------------------------------------------------------------------- the mathematics


def elephant(x: np.ndarray) -> np.ndarray:
    """The smooth function behind the noisy points: f(x) = sin(2x) + cos(5x) / 2 on [-1, 1]."""
    return np.sin(2 * x) + 0.5 * np.cos(5 * x)


def legendre_fit(x: np.ndarray, y: np.ndarray, degree: int) -> np.ndarray:
    """Least squares coefficients c of sum_j c_j P_j(x), P_j the Legendre polynomials (x in [-1, 1])."""
    return np.linalg.lstsq(legendre.legvander(x, degree), y, rcond=None)[0]


def loo_mse(x: np.ndarray, y: np.ndarray, degree: int) -> float:
    """Leave-one-out mean squared error of the degree-``degree`` fit, in closed form.

    For a linear smoother y_hat = H y the LOO residual is e_i / (1 - h_ii). It is undefined
    (NaN here) when a point has leverage one, as every point has when the fit interpolates.
    """
    u, s, _ = np.linalg.svd(legendre.legvander(x, degree), full_matrices=False)
    u = u[:, s > s[0] * 1e-12]
    leverage = (u**2).sum(axis=1)
    resid = y - u @ (u.T @ y)
    if np.any(1 - leverage < 1e-9):
        return float("nan")
    return float(np.mean((resid / (1 - leverage)) ** 2))


def ridge_path(x: np.ndarray, y: np.ndarray, lambdas: np.ndarray) -> np.ndarray:
    """Minimisers of (1/2n)|y - X b|^2 + (lambda/2)|b|^2, one row per lambda: (L, p).

    b = V diag(s / (s^2 + n lambda)) U^T y from X = U S V^T; at lambda = 0 the minimum-norm
    least squares solution (the pseudo-inverse).
    """
    n = len(y)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    uty = u.T @ y
    out = []
    for lam in np.asarray(lambdas, dtype=float):
        denom = s**2 + n * lam
        shrink = np.divide(s, denom, out=np.zeros_like(s), where=denom > s[0] ** 2 * 1e-14)
        out.append(vt.T @ (shrink * uty))
    return np.array(out)


def soft_threshold(z: float, t: float) -> float:
    return math.copysign(max(abs(z) - t, 0.0), z)


def lasso_path(x: np.ndarray, y: np.ndarray, lambdas: np.ndarray, tol: float = 1e-10,
               max_sweeps: int = 100_000) -> np.ndarray:
    """Minimisers of (1/2n)|y - X b|^2 + lambda |b|_1 by cyclic coordinate descent: (L, p).

    Coordinate j moves to S(rho_j, lambda) / (|X_j|^2 / n), rho_j = X_j^T (r + X_j b_j) / n,
    S the soft threshold, r the residual; sweeps stop when no coordinate moves more than
    ``tol`` (scaled by the column norm). Lambdas are visited from the largest down, each
    starting from the previous solution (warm start).
    """
    n, p = x.shape
    col_sq = (x**2).sum(axis=0) / n
    lambdas = np.asarray(lambdas, dtype=float)
    beta = np.zeros(p)
    resid = y.astype(float).copy()
    out = np.zeros((len(lambdas), p))
    for i in np.argsort(-lambdas):
        lam = lambdas[i]
        for _ in range(max_sweeps):
            largest_move = 0.0
            for j in range(p):
                if col_sq[j] == 0:
                    continue
                rho = x[:, j] @ resid / n + col_sq[j] * beta[j]
                new = soft_threshold(rho, lam) / col_sq[j]
                move = new - beta[j]
                if move != 0.0:
                    resid -= move * x[:, j]
                    beta[j] = new
                    largest_move = max(largest_move, abs(move) * math.sqrt(col_sq[j]))
            if largest_move < tol:
                break
        else:
            raise RuntimeError(f"LASSO coordinate descent did not converge at lambda={lam:g}")
        out[i] = beta
    return out


def lasso_kkt_violation(x: np.ndarray, y: np.ndarray, beta: np.ndarray, lam: float) -> float:
    """Largest violation of the LASSO optimality conditions, 0 at the exact minimiser.

    With g = X^T (y - X b) / n: g_j = lambda sign(b_j) where b_j != 0, |g_j| <= lambda where b_j = 0.
    """
    g = x.T @ (y - x @ beta) / len(y)
    active = beta != 0
    on = np.abs(g[active] - lam * np.sign(beta[active]))
    off = np.maximum(np.abs(g[~active]) - lam, 0.0)
    return float(max(on.max(initial=0.0), off.max(initial=0.0)))


@dataclass(frozen=True)
class SVMFit:
    w: np.ndarray  # (2,) normal of the separating line w.x + b = 0
    b: float
    alpha: np.ndarray  # (n,) dual variables; support vectors have alpha > 0
    support: np.ndarray  # (n,) bool

    @property
    def margin(self) -> float:
        """Distance from the line to the margin lines w.x + b = +-1: 1 / |w|."""
        return float(1 / np.linalg.norm(self.w))

    def decision(self, x: np.ndarray) -> np.ndarray:
        return x @ self.w + self.b

    def train_error(self, x: np.ndarray, y: np.ndarray) -> float:
        """Share of points on the wrong side of the line, or on it."""
        return float(np.mean(y * self.decision(x) <= 0))


def svm_fit(x: np.ndarray, y: np.ndarray, c: float | None = None) -> SVMFit:
    """Linear SVM min (1/2)|w|^2 + C sum_i max(0, 1 - y_i (w.x_i + b)); hard margin for c=None.

    Solved as the dual QP max sum(a) - (1/2) a^T Q a, Q_ij = y_i y_j x_i.x_j, subject to
    0 <= a_i <= C and sum_i a_i y_i = 0 (Cortes and Vapnik 1995); then w = sum_i a_i y_i x_i
    and b from the margin support vectors (0 < a_i < C), where y_i (w.x_i + b) = 1. Labels are
    +1 and -1; the hard margin needs separable data.
    """
    from scipy.optimize import minimize

    y = np.asarray(y, dtype=float)
    yx = y[:, None] * x
    q = yx @ yx.T
    n = len(y)
    res = minimize(
        lambda a: 0.5 * a @ q @ a - a.sum(),
        np.zeros(n),
        jac=lambda a: q @ a - 1.0,
        bounds=[(0.0, c)] * n,
        constraints=[{"type": "eq", "fun": lambda a: a @ y, "jac": lambda a: y}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 5000},
    )
    alpha = np.clip(res.x, 0.0, c)
    tol = 1e-6 * max(alpha.max(), 1e-12)
    support = alpha > tol
    w = yx.T @ alpha
    margin_sv = support & ((alpha < c - tol) if c is not None else True)
    f = x @ w
    if margin_sv.any():
        b = float(np.mean(y[margin_sv] - f[margin_sv]))
    else:  # every support vector at the bound: b anywhere in the interval the KKT conditions allow
        lower = np.concatenate([(1 - f)[(y > 0) & ~support], (-1 - f)[(y < 0) & support]])
        upper = np.concatenate([(-1 - f)[(y < 0) & ~support], (1 - f)[(y > 0) & support]])
        b = float((lower.max(initial=-np.inf) + upper.min(initial=np.inf)) / 2)
    return SVMFit(w=w, b=b, alpha=alpha, support=support)


def best_threshold_error(x: np.ndarray, y: np.ndarray) -> float:
    """Smallest training error of the one-dimensional classifiers sign(s (x - t)), s = +-1, t real."""
    order = np.argsort(x)
    xs, ys = x[order], y[order]
    # Cutting after the i-th sorted point (i = 0..n): points left get -s, points right +s.
    pos_right = np.concatenate([[0], np.cumsum(ys[::-1] > 0)])[::-1]  # positives at index >= i
    neg_left = np.concatenate([[0], np.cumsum(ys < 0)])  # negatives at index < i
    n_pos, n_neg = int((ys > 0).sum()), int((ys < 0).sum())
    # s = +1: errors = positives left + negatives right; s = -1: the complement.
    err_plus = (n_pos - pos_right) + (n_neg - neg_left)
    err_minus = len(ys) - err_plus
    # Only cuts between distinct values are thresholds.
    valid = np.concatenate([[True], xs[1:] > xs[:-1], [True]])
    return float(min(err_plus[valid].min(), err_minus[valid].min()) / len(ys))


def feature_map(x: np.ndarray) -> np.ndarray:
    """The lecture's map x -> (x, x^2): (n,) -> (n, 2)."""
    return np.stack([x, x**2], axis=1)


# ----------------------------------------------------------------------------- data


def sparse_beta(p: int, k: int) -> np.ndarray:
    """beta*: the first k coefficients 2, -2 (k-1)/k, ..., +-2/k; the others zero."""
    beta = np.zeros(p)
    k = min(k, p)
    beta[:k] = [(-1) ** j * 2 * (k - j) / k for j in range(k)]
    return beta


def separable_set(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian clouds around +-(1, 1), kept at distance >= 0.25 from the line x1 + x2 = 0."""
    y = np.where(np.arange(n) < n // 2, 1.0, -1.0)
    x = np.empty((n, 2))
    for i in range(n):
        while True:
            point = y[i] * np.array([1.0, 1.0]) + 0.7 * rng.standard_normal(2)
            if y[i] * point.sum() / math.sqrt(2) >= 0.25:
                x[i] = point
                break
    return x, y


def overlapping_set(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Two unit Gaussian clouds around +-(0.6, 0.6): not linearly separable (almost surely)."""
    y = np.where(np.arange(n) < n // 2, 1.0, -1.0)
    return y[:, None] * 0.6 + rng.standard_normal((n, 2)), y


def red_blue_set(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Red (+1) uniform on (-1, 1); blue (-1) in 1.5 < |x| < 2.5, half on each side."""
    n_red = n // 2
    n_blue = n - n_red
    red = rng.uniform(-1, 1, n_red)
    sides = np.where(np.arange(n_blue) < n_blue // 2, -1.0, 1.0)
    blue = sides * rng.uniform(1.5, 2.5, n_blue)
    return np.concatenate([red, blue]), np.concatenate([np.ones(n_red), -np.ones(n_blue)])


def lambda_grid(params) -> np.ndarray:
    return np.geomspace(params["lambda_min"], params["lambda_max"], params["n_lambdas"])


# ----------------------------------------------------------------------------- compute


def _poly_rows(rng, params) -> list[tuple]:
    n, sigma, max_deg = params["poly_points"], params["poly_noise"], params["poly_max_degree"]
    x = np.linspace(-1, 1, n)
    y = elephant(x) + sigma * rng.standard_normal(n)
    x_test = rng.uniform(-1, 1, params["poly_test_points"])
    y_test = elephant(x_test) + sigma * rng.standard_normal(len(x_test))
    rows = [(i, "train", "poly_x", v) for i, v in enumerate(x)]
    rows += [(i, "train", "poly_y", v) for i, v in enumerate(y)]
    for deg in range(max_deg + 1):
        coef = legendre_fit(x, y, deg)
        rows += [
            (deg, "train", "poly_mse", np.mean((legendre.legval(x, coef) - y) ** 2)),
            (deg, "test", "poly_mse", np.mean((legendre.legval(x_test, coef) - y_test) ** 2)),
            (deg, "loo", "poly_mse", loo_mse(x, y, deg)),
        ]
        rows += [(j, "fit", f"poly_coef_{deg:02d}", c) for j, c in enumerate(coef)]
    return rows


def _paths_rows(rng, params) -> list[tuple]:
    n, p, sigma = params["paths_train"], params["paths_features"], params["paths_noise"]
    beta_star = sparse_beta(p, params["paths_nonzero"])
    x = rng.standard_normal((n, p))
    y = x @ beta_star + sigma * rng.standard_normal(n)
    x_test = rng.standard_normal((params["paths_test"], p))
    y_test = x_test @ beta_star + sigma * rng.standard_normal(len(x_test))
    lambdas = lambda_grid(params)
    rows = [(j, "truth", "beta", b) for j, b in enumerate(beta_star)]
    rows += [(i, "path", "lambda", lam) for i, lam in enumerate(lambdas)]
    for method, path in (("ridge", ridge_path(x, y, lambdas)), ("lasso", lasso_path(x, y, lambdas))):
        for i, beta in enumerate(path):
            rows += [
                (i, "train", f"{method}_mse", np.mean((x @ beta - y) ** 2)),
                (i, "test", f"{method}_mse", np.mean((x_test @ beta - y_test) ** 2)),
                (i, "path", f"{method}_nonzero", np.count_nonzero(beta)),
            ]
            rows += [(i, "path", f"{method}_coef_{j:02d}", b) for j, b in enumerate(beta)]
    # Least squares (lambda = 0) as the reference line of the paths.
    ls = ridge_path(x, y, np.array([0.0]))[0]
    rows.append((0, "test", "least_squares_mse", np.mean((x_test @ ls - y_test) ** 2)))
    return rows


def _svm_rows(rng, params) -> list[tuple]:
    n = params["svm_points"]
    sets = {
        "separable": (*separable_set(rng, n), None),
        "overlapping": (*overlapping_set(rng, n), params["svm_c"]),
    }
    x1d, y1d = red_blue_set(rng, params["featuremap_points"])
    sets["featuremap"] = (feature_map(x1d), y1d, None)
    rows = [(0, "fit", "featuremap_threshold_error", best_threshold_error(x1d, y1d))]
    for name, (x, y, c) in sets.items():
        fit = svm_fit(x, y, c)
        rows += [
            (0, "fit", f"svm_{name}_w1", fit.w[0]),
            (0, "fit", f"svm_{name}_w2", fit.w[1]),
            (0, "fit", f"svm_{name}_b", fit.b),
            (0, "fit", f"svm_{name}_margin", fit.margin),
            (0, "fit", f"svm_{name}_train_error", fit.train_error(x, y)),
            (0, "fit", f"svm_{name}_support_vectors", int(fit.support.sum())),
        ]
        for coord, values in (("x1", x[:, 0]), ("x2", x[:, 1]), ("y", y), ("alpha", fit.alpha)):
            rows += [(i, "data", f"svm_{name}_{coord}", v) for i, v in enumerate(values)]
    return rows


def networks(group) -> list:
    """No network: the job computes with NumPy on the host (and asks for no GPU)."""
    return []


def compute(group, data, device):
    """All three parts for every seed of the group (one group: the study has no sweep)."""
    from mathdl.engine import TrainResult
    from mathdl.studies import host_device

    start = time.perf_counter()
    used = host_device(device)
    params = group.runs[0].params
    if params["poly_max_degree"] > params["poly_points"] - 1:
        raise ValueError(
            f"params.poly_max_degree ({params['poly_max_degree']}) must be at most poly_points - 1 "
            f"({params['poly_points'] - 1}): degree poly_points - 1 already interpolates"
        )
    if params["lambda_min"] >= params["lambda_max"]:
        raise ValueError("params.lambda_min must be smaller than params.lambda_max")
    frames, runs = [], []
    for run in group.runs:
        rows = []
        for part, make_rows in (("poly", _poly_rows), ("paths", _paths_rows), ("svm", _svm_rows)):
            rows += make_rows(np.random.default_rng([run.seed, _STREAMS[part]]), run.params)
        df = pd.DataFrame(rows, columns=["epoch", "split", "metric", "value"])
        df.insert(0, "run_id", run.run_id)
        frames.append(df)
        runs.append({"run_id": run.run_id, "seed": run.seed, "diverged": False, "diverged_epoch": -1})
    metrics = pd.concat(frames, ignore_index=True)
    metrics["epoch"] = metrics["epoch"].astype(int)
    metrics["value"] = metrics["value"].astype(float)
    return TrainResult(metrics=metrics, runs=pd.DataFrame(runs), device=used,
                       wall_time_s=time.perf_counter() - start)


# ----------------------------------------------------------------------------- analyze





def _curve(m: pd.DataFrame, metric: str, split: str) -> pd.DataFrame:
    """One column per run, one row per epoch: the values of one metric on one split."""
    sel = m[(m["metric"] == metric) & (m["split"] == split)]
    return sel.pivot_table(index="epoch", columns="run_id", values="value", dropna=False).sort_index()


def _argmin_mean(curve: pd.DataFrame) -> int | None:
    mean = curve.mean(axis=1, skipna=False)
    mean = mean[np.isfinite(mean)]
    return int(mean.idxmin()) if len(mean) else None


def analyze(tables, experiment) -> dict:
    """The U curve and its minimiser, the best lambda of ridge and LASSO, the SVM numbers."""
    m = tables.metrics
    p = experiment.params
    summary: dict[str, Any] = {"confidence": CI_LEVEL, "n_seeds": int(tables.runs["seed"].nunique())}

    # (a) polynomials
    curves = {s: _curve(m, "poly_mse", s) for s in ("train", "test", "loo")}
    degrees = [int(d) for d in curves["test"].index]
    best = _argmin_mean(curves["test"])
    summary.update({
        "degrees": degrees,
        "noise_variance": p["poly_noise"] ** 2,
        "poly_points": p["poly_points"],
        **{f"poly_{s}_mse": [mean_ci_dict(curves[s].loc[d]) for d in degrees] for s in curves},
        "best_degree": best,
        "best_degree_test_mse": mean_ci_dict(curves["test"].loc[best]),
        "best_degree_loo": _argmin_mean(curves["loo"]),
        "max_degree": degrees[-1],
        "train_mse_at_max_degree": mean_ci_dict(curves["train"].loc[degrees[-1]]),
        "test_mse_at_max_degree": mean_ci_dict(curves["test"].loc[degrees[-1]]),
        "interpolates": degrees[-1] == p["poly_points"] - 1,
    })

    # (b) ridge and LASSO paths
    lambdas = _curve(m, "lambda", "path").iloc[:, 0].to_numpy()
    summary["lambdas"] = [float(v) for v in lambdas]
    for method in ("ridge", "lasso"):
        test = _curve(m, f"{method}_mse", "test")
        i = _argmin_mean(test)
        summary[f"{method}_test_mse"] = [mean_ci_dict(test.loc[k]) for k in test.index]
        summary[f"best_lambda_{method}"] = float(lambdas[i])
        summary[f"{method}_test_mse_at_best"] = mean_ci_dict(test.loc[i])
        summary[f"{method}_nonzero_at_best"] = mean_ci_dict(_curve(m, f"{method}_nonzero", "path").loc[i])
    summary["least_squares_test_mse"] = mean_ci_dict(_curve(m, "least_squares_mse", "test").loc[0])
    for method in ("ridge", "lasso"):  # mean non-zero coefficients at the ends of the grid
        nonzero = _curve(m, f"{method}_nonzero", "path")
        summary[f"{method}_nonzero_at_lambda_min"] = float(nonzero.iloc[0].mean())
        summary[f"{method}_nonzero_at_lambda_max"] = float(nonzero.iloc[-1].mean())
    summary["true_nonzero"] = int(np.count_nonzero(_curve(m, "beta", "truth").iloc[:, 0]))
    summary["paths_features"] = p["paths_features"]
    summary["paths_train"] = p["paths_train"]

    # (c) support vector machines and the feature map
    fits = m[m["split"] == "fit"].pivot_table(index="run_id", columns="metric", values="value")
    for name in SVM_SETS:
        for key in ("margin", "train_error", "support_vectors"):
            summary[f"svm_{name}_{key}"] = mean_ci_dict(fits[f"svm_{name}_{key}"])
        summary[f"svm_{name}_train_error_max"] = float(fits[f"svm_{name}_train_error"].max())
    summary["svm_c"] = p["svm_c"]
    summary["svm_points"] = p["svm_points"]
    summary["featuremap_threshold_error"] = mean_ci_dict(fits["featuremap_threshold_error"])
    summary["featuremap_threshold_error_min"] = float(fits["featuremap_threshold_error"].min())
    summary["featuremap_separable_after_map"] = bool(fits["svm_featuremap_train_error"].max() == 0)
    return summary


# ----------------------------------------------------------------------------- figures


def _first_run(tables) -> str:
    return tables.runs.sort_values("seed")["run_id"].iloc[0]


def _series(m: pd.DataFrame, run_id: str, split: str, metric: str) -> np.ndarray:
    sel = m[(m["run_id"] == run_id) & (m["split"] == split) & (m["metric"] == metric)].sort_values("epoch")
    return sel["value"].to_numpy()


def figures(tables, summary, experiment, plot, outdir: Path) -> list[str]:
    """The U curve, fitted polynomials, ridge/LASSO paths, SVM margins, the feature map."""
    import seaborn as sns

    from mathdl import plots

    plots.setup(plot)
    m = tables.metrics
    errorbar = ("ci", round(100 * plot.confidence))
    first = _first_run(tables)
    colors = sns.color_palette(plot.palette)
    names = []

    # U curve: train, leave-one-out and test error against the degree.
    fig, (ax,) = plots.new_figure(plot)
    _draw_u_curve(ax, m, summary, errorbar)
    names.append(plots.save(fig, outdir, "u_curve", plot))

    # Fitted polynomials of a few degrees over the points of the first seed.
    x, y = _series(m, first, "train", "poly_x"), _series(m, first, "train", "poly_y")
    grid = np.linspace(-1, 1, 400)
    fig, (ax,) = plots.new_figure(plot)
    ax.plot(grid, elephant(grid), color="black", lw=1.5, ls="--", label="f")
    shown = sorted({1, summary["best_degree"], summary["max_degree"]} & set(summary["degrees"]))
    for color, deg in zip(colors, shown):
        coef = _series(m, first, "fit", f"poly_coef_{deg:02d}")
        ax.plot(grid, legendre.legval(grid, coef), color=color, lw=1.2, label=f"degree {deg}")
    ax.scatter(x, y, color="black", s=14, zorder=3, label="data")
    spread = np.ptp(y)
    ax.set_ylim(y.min() - 0.6 * spread, y.max() + 0.6 * spread)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(fontsize="small", ncols=2)
    names.append(plots.save(fig, outdir, "poly_fits", plot))

    # Ridge and LASSO coefficients of the first seed against lambda.
    lambdas = np.array(summary["lambdas"])
    beta_star = _series(m, first, "truth", "beta")
    fig, axes = plots.new_figure(plot, ncols=2)
    fig.set_size_inches(WIDE * plot.width, plot.height)  # two panels across the text width
    for ax, method in zip(axes, ("ridge", "lasso")):
        for j, b in enumerate(beta_star):
            coef = _series(m, first, "path", f"{method}_coef_{j:02d}")
            ax.plot(lambdas, coef, color=colors[j % len(colors)] if b != 0 else "gray",
                    lw=1.4 if b != 0 else 0.7, alpha=1 if b != 0 else 0.6)
        ax.axvline(summary[f"best_lambda_{method}"], color="black", ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel(r"$\lambda$")
        ax.set_ylabel("coefficient")
        ax.set_title("ridge" if method == "ridge" else "LASSO")
    names.append(plots.save(fig, outdir, "regularization_paths", plot))

    # Mean test error of ridge and the LASSO against lambda.
    fig, (ax,) = plots.new_figure(plot)
    _draw_regularization_error(ax, m, summary, errorbar)
    names.append(plots.save(fig, outdir, "regularization_error", plot))

    # SVM decision boundaries and margins.
    fig, axes = plots.new_figure(plot, ncols=2)
    fig.set_size_inches(WIDE * plot.width, 1.1 * plot.height)
    for ax, name in zip(axes, ("separable", "overlapping")):
        _draw_svm(ax, m, first, name, colors)
        c = "hard margin" if name == "separable" else f"C = {summary['svm_c']:g}"
        ax.set_title(f"{name} ({c})")
    names.append(plots.save(fig, outdir, "svm_margins", plot))

    # The one-dimensional red/blue points before and after x -> (x, x^2).
    fig, axes = plots.new_figure(plot, ncols=2)
    fig.set_size_inches(WIDE * plot.width, plot.height)
    x1 = _series(m, first, "data", "svm_featuremap_x1")
    lab = _series(m, first, "data", "svm_featuremap_y")
    red, blue = "tab:red", "tab:blue"
    axes[0].scatter(x1[lab > 0], np.zeros((lab > 0).sum()), color=red, s=18, label="red")
    axes[0].scatter(x1[lab < 0], np.zeros((lab < 0).sum()), color=blue, s=18, label="blue")
    axes[0].set_yticks([])
    axes[0].set_xlabel("x")
    axes[0].set_title("on the line")  # whether a threshold separates them is the text's, from the numbers
    axes[0].legend(fontsize=LEGEND_PT)
    _draw_svm(axes[1], m, first, "featuremap", [red, blue], labels=("red", "blue"))
    axes[1].set_xlabel("x")
    axes[1].set_ylabel(r"$x^2$")
    axes[1].set_title(r"after $x \mapsto (x, x^2)$")
    names.append(plots.save(fig, outdir, "feature_map", plot))

    # For the slides, at the size a 16:9 frame shows them: the two error curves; the three classifiers.
    fig, axes = plots.new_figure(plot, ncols=2)
    fig.set_size_inches(*SLIDE_FIGSIZE)
    _draw_u_curve(axes[0], m, summary, errorbar)
    _draw_regularization_error(axes[1], m, summary, errorbar)
    names.append(plots.save(fig, outdir, "slide_errors", plot))
    fig, axes = plots.new_figure(plot, ncols=3)
    fig.set_size_inches(*SLIDE_FIGSIZE)
    for ax, (name, title) in zip(axes, (("separable", "hard margin"), ("overlapping", f"$C = {summary['svm_c']:g}$"),
                                        ("featuremap", "after $x\\mapsto(x,x^2)$"))):
        _draw_svm(ax, m, first, name, [red, blue] if name == "featuremap" else colors, legend=False)
        ax.set_title(title, fontsize=LEGEND_PT + 1)
    names.append(plots.save(fig, outdir, "slide_margins", plot))
    return names


def _draw_u_curve(ax, m: pd.DataFrame, summary, errorbar) -> None:
    """Train, leave-one-out and test error against the degree (log scale), the noise level and the best degree."""
    import seaborn as sns

    poly = m[m["metric"] == "poly_mse"].rename(columns={"epoch": "degree", "value": "mean squared error"})
    poly["split"] = poly["split"].replace({"loo": "leave-one-out"})
    sns.lineplot(data=poly.dropna(), x="degree", y="mean squared error", hue="split",
                 hue_order=["train", "leave-one-out", "test"], marker="o", errorbar=errorbar, ax=ax)
    ax.set_yscale("log")
    noise = summary["noise_variance"]
    ax.axhline(noise, color="gray", ls=":", lw=1, label=r"noise $\sigma^2$")
    ax.axvline(summary["best_degree"], color="gray", ls="--", lw=1)
    # The interpolating fit's training error (about 1e-28) would flatten the rest of the curve.
    if noise > 0:
        floor = 10 ** math.floor(math.log10(noise / 1000))
        ax.set_ylim(bottom=floor)
        if summary["interpolates"]:
            ax.annotate("train error 0", xy=(summary["max_degree"], floor), xytext=(-4, 12),
                        textcoords="offset points", ha="right", fontsize=LEGEND_PT,
                        arrowprops={"arrowstyle": "->", "lw": 0.8})
    ax.legend(fontsize=LEGEND_PT)


def _draw_regularization_error(ax, m: pd.DataFrame, summary, errorbar) -> None:
    """Mean test error of ridge and the LASSO against lambda, with least squares for reference."""
    import seaborn as sns

    lambdas = np.array(summary["lambdas"])
    errs = m[m["metric"].isin(["ridge_mse", "lasso_mse"]) & (m["split"] == "test")].copy()
    errs["lambda"] = lambdas[errs["epoch"].to_numpy()]
    errs["method"] = errs["metric"].str.removesuffix("_mse").replace({"lasso": "LASSO"})
    sns.lineplot(data=errs, x="lambda", y="value", hue="method", errorbar=errorbar, ax=ax)
    ax.axhline(summary["least_squares_test_mse"]["mean"], color="gray", ls=":", lw=1, label="least squares")
    ax.set_xscale("log")
    ax.set_xlabel(r"$\lambda$")
    ax.set_ylabel("test mean squared error")
    ax.legend(fontsize=LEGEND_PT)


def _draw_svm(ax, m, run_id, name, colors, labels=("+1", "-1"), legend: bool = True) -> None:
    """Points by class, support vectors ringed, the line w.x + b = 0 and the margins w.x + b = +-1."""
    x1, x2 = _series(m, run_id, "data", f"svm_{name}_x1"), _series(m, run_id, "data", f"svm_{name}_x2")
    y, alpha = _series(m, run_id, "data", f"svm_{name}_y"), _series(m, run_id, "data", f"svm_{name}_alpha")
    w1, w2, b = (float(_series(m, run_id, "fit", f"svm_{name}_{k}")[0]) for k in ("w1", "w2", "b"))
    ax.scatter(x1[y > 0], x2[y > 0], color=colors[0], s=14, label=labels[0])
    ax.scatter(x1[y < 0], x2[y < 0], color=colors[1], s=14, label=labels[1])
    sv = alpha > 1e-6 * alpha.max()
    ax.scatter(x1[sv], x2[sv], facecolors="none", edgecolors="black", s=60, lw=0.8, label="support vectors")
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    gx, gy = np.meshgrid(np.linspace(*xlim, 200), np.linspace(*ylim, 200))
    ax.contour(gx, gy, w1 * gx + w2 * gy + b, levels=[-1, 0, 1], colors="black",
               linestyles=["--", "-", "--"], linewidths=[0.8, 1.2, 0.8])
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    if legend:
        ax.legend(fontsize=LEGEND_PT, loc="best")
