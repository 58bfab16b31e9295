"""Double descent: the test error against model size, through the interpolation threshold.

Classical learning theory expects a U-shaped test error in the model size. Belkin, Hsu, Ma and
Mandal (2019) found a second descent past the *interpolation threshold*, where a model first
fits its n training points exactly: the test error peaks there and then falls again, often
below the best under-parametrized model, for random features and fully connected networks
alike. Nakkiran et al. (2019/2020) found it in deep networks trained by SGD or Adam as a
function of width, with the peak where the training procedure can just fit n samples, and
most pronounced with label noise. Both halves of this study use the same data (``task``: by
default scikit-learn's digits, d = 64 features standardized on the training split, K = 10
classes, a fraction ``task.label_noise`` of the training labels random; the test labels clean).

**Random features** (``params.method: random_features``, closed form, float64). The features
are phi(x) = relu(W x / sqrt(d)) in R^N, with W in R^{N x d} of i.i.d. N(0, 1) entries (Rahimi
and Recht 2007): a two-layer ReLU network whose first layer stays at its random initialization,
so that only the N K output weights B in R^{N x K} are fitted. With Phi = phi(X) in R^{n x N}
and one-hot targets Y in R^{n x K}, the fit is the minimum-norm least-squares solution

    B = Phi^+ Y = V S^+ U^T Y    (thin SVD Phi = U S V^T),

the least-squares solution of least Frobenius norm; singular values below eps max(n, N) s_max
count as zero, as in ``numpy.linalg.lstsq``. For N >= n, Phi has rank n almost surely, so
Phi B = Y: B interpolates. At N = n, Phi is square and its smallest singular value is near
zero, so ||B||_F, which is at least the norm of Y divided by that singular value along Y's
direction, blows up, and the test error with it; with more features the minimum-norm
interpolant spreads over more directions and both fall again. In parameters the threshold
N = n is N K = n K, the count at which the network threshold sits below. The ridge fits
B_lambda = V diag(s / (s^2 + n lambda)) U^T Y, minimizers of (1/n)||Phi B - Y||_F^2 +
lambda ||B||_F^2 (``rf_ridges``), show that regularization removes the peak (Nakkiran et al.
2021; for linear models Hastie et al. 2022 give the limiting risk). Each seed draws one
sequence of features; the model with N features uses its first N (nested models).

**Networks** (``params.method: network``, trained by the engine). One hidden layer of width w
has p = w (d + 1) + K (w + 1) parameters; for every ratio in ``nn_ratios`` the width whose p
is closest to ratio n K is trained with the experiment's ``model`` and ``train`` sections,
all seeds in one batched engine job per width; the seeds draw the initializations and the
minibatch orders. With the squared loss on one-hot targets, fitting n points is n K equations,
so p = n K is the threshold that counting parameters gives (Belkin et al. 2019, Fig. 3);
Nakkiran et al.'s effective model complexity puts the peak where training just reaches zero
training loss, which depends on how long and how well the networks are trained.

Recorded, per seed and size: train and test squared error (``loss``, the mean over points and
outputs as ``torch.nn.MSELoss``) and ``error`` (the classification error rate; the loss for a
regression task); for random features the norm ||B||_F (``weight_norm``); for networks every
engine metric at its evaluation epochs (learning curves). Numbers in the summary are final
(closed-form fits; networks after their last epoch); nothing is selected, and the test split
never chooses anything. With the test error E(r) on the grid of r = (trainable parameters) /
(n K) (= N / n for random features), per seed: the classical optimum E_below = min_{r < 1} E(r)
at r_below, the peak location r* = argmax_{r >= r_below} E(r) (the largest error after the first
descent, so that the underfitting of the smallest models does not count as the peak),
``peak_over_best_below`` = E(r*) / E_below and ``largest_over_best_below`` = E(r_max) / E_below
(below 1: the second descent beats the classical optimum; a peak ratio of 1 means no peak); the
same for the test squared error (``mse_``) and for random features the norm ||B||_F (``norm_``),
whose ratios span orders of magnitude between seeds and are summarized by geometric means.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from mathdl.linalg import ridge_fit
from mathdl.tables import CI_LEVEL, json_number, mean_ci_dict

METHODS = ("random_features", "network")

DEFAULTS: dict[str, Any] = {
    "description": (
        "Does the test error of random-features regression and of fully connected networks on real digits "
        "peak where the model can first fit its training data exactly, and fall again beyond it, "
        "with and without label noise?"
    ),
    "seeds": [0, 1, 2, 3, 4],
    # Small n keeps the threshold cheap (n K = 2,000 parameters); the data and its noisy labels are
    # fixed by task.seed, the runs' seeds draw random features and initializations.
    "task": {"name": "digits", "n_train": 200, "n_val": 0, "n_test": 1000, "seed": 0},
    "model": {"depth": 1, "activation": "relu", "init": "pytorch"},
    # Networks: full-batch Adam on the squared error with a cosine decay fits every training label
    # from p = n K on in 1,000 steps (train mse 4e-3 at p = n K, 1e-7 at 5 n K). Minibatch SGD
    # (momentum) or Adam at a similar cost interpolated only from p = 1.25 to 3 n K, and their
    # test-error peak moved out with it.
    "train": {
        "loss": "mse", "optimizer": "adam", "lr": 0.003, "lr_schedule": "cosine", "batch_size": 0,
        "epochs": 1000, "eval_points": 12,
    },
    "params": {},  # filled from PARAMS_SCHEMA
    "sweep": {"task.label_noise": [0.0, 0.2], "params.method": list(METHODS)},
}

PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "method": {
            "description": "random_features: minimum-norm least squares on random ReLU features (closed form); "
                           "network: networks of the experiment's model section trained by the engine.",
            "enum": list(METHODS), "default": "random_features",
        },
        "rf_ratios": {
            "description": "Numbers of random features N as multiples of n_train (N = round(ratio n)); "
                           "must contain 1 (the threshold N = n).",
            "type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 2,
            "uniqueItems": True, "contains": {"const": 1.0},
            "default": [0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0,
                        10.0, 20.0],
        },
        "rf_ridges": {
            "description": "Ridge penalties lambda > 0 of extra random-features fits beside the minimum-norm one, "
                           "min (1/n)||Phi B - Y||^2 + lambda ||B||^2 (empty: none).",
            "type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "uniqueItems": True,
            "default": [0.001, 0.1],
        },
        "nn_ratios": {
            "description": "Parameter counts p of the networks as multiples of n_train times the outputs K "
                           "(the width with p closest is trained); must contain 1 (p = n K).",
            "type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 2,
            "uniqueItems": True, "contains": {"const": 1.0},
            "default": [0.1, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.5, 5.0],
        },
    },
}

SWEEPABLE = ("params.method", "task.label_noise")
COORDINATES = ("width", "n_params", "ratio", "ridge")  # columns added to the metrics table
FIGURES = {
    "random_features": ("rf_double_descent", "rf_norm_and_ridge"),
    "network": ("nn_double_descent", "nn_learning_curves"),
}
PEAK_MARGIN = 0.1  # a peak: the mean curve rises more than 10% above both its classical optimum and its last size
INTERPOLATION_MSE = 1e-6  # random features "interpolate" where the training mse (one-hot targets) is below this


# ----------------------------------------------------------------------------- the mathematics


def relu_features(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """phi(x) = relu(W x / sqrt(d)) for the rows of x: (n, d) and W (N, d) -> (n, N)."""
    return np.maximum(x @ w.T / math.sqrt(x.shape[1]), 0.0)


def least_squares_fits(phi: np.ndarray, y: np.ndarray, ridges) -> list[np.ndarray]:
    """Output weights B_lambda (N, K) for every lambda in ``ridges``, from one thin SVD
    (``linalg.ridge_fit``): lambda = 0, the minimum-norm least-squares solution; lambda > 0, the
    minimizer of (1/n)||phi B - Y||^2 + lambda ||B||^2, that is ridge_fit's penalty n lambda."""
    return list(ridge_fit(phi, y, phi.shape[0] * np.asarray(ridges, dtype=float))[0])


def width_for_params(target: float, model, input_dim: int, n_outputs: int) -> int:
    """The hidden width whose parameter count is closest to ``target`` (the smaller one on a tie)."""
    from mathdl.resources import network_parameter_count  # torch-free: the workflow sizes jobs with it

    def count(w: int) -> int:
        return network_parameter_count(dataclasses.replace(model, width=w), input_dim, n_outputs)

    hi = 1
    while count(hi) < target:
        hi *= 2
    lo = max(1, hi // 2)
    while lo < hi:  # the smallest width with count >= target
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if count(mid) < target else (lo, mid)
    return min({max(1, lo - 1), lo}, key=lambda w: (abs(count(w) - target), w))


def peak_statistics(ratios, errors) -> tuple[float, float, float]:
    """(r*, E(r*) / E_below, E(r_max) / E_below) of one curve E on the grid r, with E_below =
    min_{r < 1} E(r), the classical optimum at r_below, and r* = argmax_{r >= r_below} E(r), the
    peak after the first descent: the smallest models' underfitting is not the peak. Non-finite
    values are skipped; NaN where a part is missing (r* is then the argmax over all r)."""
    r, e = np.asarray(ratios, float), np.asarray(errors, float)
    ok = np.isfinite(e)
    if not ok.any():
        return (math.nan,) * 3
    r, e = r[ok], e[ok]
    order = np.argsort(r)
    r, e = r[order], e[order]
    below = np.flatnonzero(r < 1)
    if len(below) == 0:
        return float(r[np.argmax(e)]), math.nan, math.nan
    best = below[np.argmin(e[below])]
    peak = best + int(np.argmax(e[best:]))
    ratio = (lambda v: float(v / e[best]) if e[best] > 0 else math.nan)
    return float(r[peak]), ratio(e[peak]), ratio(e[-1])


def peak_decision(ratios, errors, margin: float | None = None) -> dict:
    """Whether a curve has a double-descent peak: its peak after the first descent, E(r*) (see
    ``peak_statistics``), exceeds both the classical optimum E_below and the error at the largest size
    E(r_max) by more than the fraction ``margin`` (``PEAK_MARGIN``). A curve that only falls (r* =
    r_below) or still rises at its end (r* = r_max) has none. ``has_peak`` is None where the grid has no
    size below the threshold or no finite value (nothing to decide)."""
    margin = PEAK_MARGIN if margin is None else margin
    _, over_best, largest_over_best = peak_statistics(ratios, errors)
    over_largest = over_best / largest_over_best if largest_over_best > 0 else math.nan
    decided = math.isfinite(over_best) and math.isfinite(over_largest)
    return {
        "peak_over_best_below": json_number(over_best),
        "largest_over_best_below": json_number(largest_over_best),
        "peak_over_largest": json_number(over_largest),
        "has_peak": bool(over_best > 1 + margin and over_largest > 1 + margin) if decided else None,
    }


# ----------------------------------------------------------------------------- compute


def _targets(y: np.ndarray, n_outputs: int) -> np.ndarray:
    """One-hot rows for labels, the values themselves for a regression; float64 (n, K)."""
    return np.eye(n_outputs)[y] if y.ndim == 1 else y.astype(float)


def _split_scores(out: np.ndarray, y: np.ndarray, n_outputs: int) -> dict[str, float]:
    """loss: mean over points and outputs of the squared error; error: the error rate (or the loss)."""
    loss = float(((out - _targets(y, n_outputs)) ** 2).mean())
    error = float((out.argmax(axis=1) != y).mean()) if y.ndim == 1 else loss
    return {"loss": loss, "error": error}


def _random_features_rows(group, data, params) -> tuple[list[tuple], dict[str, int]]:
    """Minimum-norm (and ridge) fits on N = round(ratio n) nested random features, every seed.
    (The workflow limits NumPy's BLAS threads to the job's share: pipeline.train_group.)"""
    x = {s: data.rows(s)[0].astype(np.float64) for s in ("train", "val", "test")}
    y = {s: data.split(s)[1] for s in ("train", "val", "test")}
    splits = [s for s in ("train", "val", "test") if len(y[s]) > 0]
    n, d, k = x["train"].shape[0], x["train"].shape[1], data.n_outputs
    sizes = sorted({max(1, round(r * n)) for r in params["rf_ratios"]})
    ridges = [0.0, *sorted(params["rf_ridges"])]
    target = _targets(y["train"], k)
    rows, failed = [], {}
    for run in group.runs:
        w = np.random.default_rng([run.seed, d]).standard_normal((sizes[-1], d))
        phi = {s: relu_features(x[s], w) for s in splits}  # (n_s, N_max): model N uses the first N
        failed[run.run_id] = 0
        for size in sizes:
            fits = least_squares_fits(phi["train"][:, :size], target, ridges)
            for lam, b in zip(ridges, fits):
                coords = (size, size * k, size / n, lam)
                for s in splits:
                    for metric, value in _split_scores(phi[s][:, :size] @ b, y[s], k).items():
                        rows.append((run.run_id, 0, s, metric, value, *coords))
                norm = float(np.linalg.norm(b))
                rows.append((run.run_id, 0, "train", "weight_norm", norm, *coords))
                failed[run.run_id] += not np.isfinite(b).all()
    return rows, failed


def _network_rows(group, data, params, device) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Every width of ``nn_ratios`` trained by the engine on ``device``, all seeds of the group batched."""
    from mathdl import engine, models
    from mathdl.studies._divergence import blank_failed, failed_runs

    n, d, k = data.x_train.shape[0], data.input_dim, data.n_outputs
    widths = sorted({width_for_params(r * n * k, group.model, d, k) for r in params["nn_ratios"]})
    run_of_seed = {r.seed: r.run_id for r in group.runs}
    parts, status, used = [], [], "cpu"
    for width in widths:
        model = dataclasses.replace(group.model, width=width)
        p = models.parameter_count(model, d, k)
        g = engine.make_group([r.seed for r in group.runs], task=vars(group.task), model=vars(model),
                              train=vars(group.train), experiment=group.experiment)
        result = engine.train(g, data, device=device, progress=False)
        ours = result.runs.set_index("run_id")["seed"].map(run_of_seed)
        # A network that failed, even at the last epoch, is NaN from then on: out of every mean.
        failed = failed_runs(result)
        m = blank_failed(result).assign(run_id=result.metrics["run_id"].map(ours), width=width, n_params=p,
                                  ratio=p / (n * k), ridge=math.nan)
        parts.append(m)
        status.append(result.runs.assign(diverged=result.runs["run_id"].isin(failed),
                                         run_id=result.runs["run_id"].map(ours)))
        used = result.device
    return pd.concat(parts, ignore_index=True), pd.concat(status, ignore_index=True), used


def networks(group) -> list:
    """What the group's job trains (mathdl.resources sizes the job from it). Networks: every width of
    ``nn_ratios``, all seeds batched, one width after another. Random features: per seed, a
    one-hidden-layer network of N_max units fitted in closed form (float64: the features of every
    point and the solver's copies of them)."""
    from mathdl.resources import Networks

    params = group.runs[0].params
    base = Networks.of_group(group)
    n, d, k = base.n_train, base.input_dim, base.n_outputs
    if params["method"] == "network":
        widths = sorted({width_for_params(r * n * k, group.model, d, k) for r in params["nn_ratios"]})
        return [dataclasses.replace(base, model=dataclasses.replace(group.model, width=w)) for w in widths]
    features = dataclasses.replace(group.model, depth=1, width=max(1, round(max(params["rf_ratios"]) * n)),
                                   residual=False)
    fit = dataclasses.replace(base, model=features, n_models=1, batch_size=0, epochs=1, optimizer="gd",
                              dtype="float64", early_stopping=False)
    return [fit] * len(group.runs)


def compute(group, data, device):
    """One method at one label noise: the whole size grid, every seed of the group."""
    from mathdl.engine import TrainResult

    start = time.perf_counter()
    params = group.runs[0].params
    compute_method: Callable = _METHODS[params["method"]]
    metrics, runs, used = compute_method(group, data, params, device)
    runs = runs.assign(n_train=data.x_train.shape[0], input_dim=data.input_dim, n_outputs=data.n_outputs)
    return TrainResult(metrics=metrics, runs=runs, device=used, wall_time_s=time.perf_counter() - start)


def _compute_random_features(group, data, params, device):
    from mathdl.studies import host_device

    rows, failed = _random_features_rows(group, data, params)
    metrics = pd.DataFrame(rows, columns=["run_id", "epoch", "split", "metric", "value", *COORDINATES])
    metrics = metrics.astype({"epoch": np.int64, "value": float, "width": np.int64, "n_params": np.int64})
    bad = set(metrics.loc[~np.isfinite(metrics["value"]), "run_id"]) | {r for r, f in failed.items() if f}
    runs = pd.DataFrame([{"run_id": r.run_id, "seed": r.seed, "diverged": r.run_id in bad, "diverged_epoch": -1,
                          "diverged_sizes": failed[r.run_id]} for r in group.runs])
    return metrics, runs, host_device(device)  # NumPy on the host


def _compute_network(group, data, params, device):
    metrics, status, used = _network_rows(group, data, params, device)
    rows = []
    for r in group.runs:
        mine = status[status["run_id"] == r.run_id]
        epochs = mine.loc[mine["diverged"] & (mine["diverged_epoch"] >= 0), "diverged_epoch"]
        rows.append({"run_id": r.run_id, "seed": r.seed, "diverged": bool(mine["diverged"].any()),
                     "diverged_epoch": int(epochs.min()) if len(epochs) else -1,
                     "diverged_sizes": int(mine["diverged"].sum())})
    return metrics, pd.DataFrame(rows), used


_METHODS: dict[str, Callable] = {"random_features": _compute_random_features, "network": _compute_network}


# ----------------------------------------------------------------------------- analyze



def _final_rows(tables) -> pd.DataFrame:
    """Metrics of each run's last epoch at each size, with seed, method and label noise; NaN for a
    diverged network (the compute blanks it) or a non-finite fit."""
    runs = tables.runs[["run_id", "seed", "params.method", "task.label_noise"]].rename(
        columns={"params.method": "method", "task.label_noise": "label_noise"})
    m = tables.metrics.merge(runs, on="run_id", how="left")
    last = m.groupby(["run_id", "width"])["epoch"].transform("max")
    m = m[m["epoch"] == last].copy()
    m.loc[~np.isfinite(m["value"].to_numpy(dtype=float)), "value"] = np.nan  # out of every mean
    return m


def _curve(m: pd.DataFrame, split: str, metric: str, ridge: float | None = 0.0) -> pd.DataFrame:
    """Rows: ratio; columns: seed; NaN where a run diverged."""
    sel = m[(m["split"] == split) & (m["metric"] == metric)]
    if ridge is not None:
        sel = sel[np.isclose(sel["ridge"], ridge)]
    return sel.pivot_table(index="ratio", columns="seed", values="value", aggfunc="mean", dropna=False).sort_index()


def _geometric_ci(values) -> dict:
    """Geometric mean and interval over seeds (the t interval of the logs, mapped back): for ratios
    that span orders of magnitude between seeds, such as the squared error at N = n."""
    v = np.asarray(values, float)
    logs = np.log(v[np.isfinite(v) & (v > 0)])
    return {k: (None if x is None else math.exp(x)) for k, x in mean_ci_dict(logs).items()}


def _peaks(curve: pd.DataFrame, prefix: str = "", geometric: bool = False) -> dict:
    """Per-seed peak statistics (mean and CI over seeds; geometric for the ratios if asked) and the
    peak of the mean curve."""
    stats = np.array([peak_statistics(curve.index, curve[c]) for c in curve.columns]).reshape(-1, 3)
    mean_curve = curve.mean(axis=1, skipna=True)
    ratio_ci = _geometric_ci if geometric else mean_ci_dict
    return {
        f"{prefix}peak_location": {**mean_ci_dict(stats[:, 0]), "per_seed": [json_number(v) for v in stats[:, 0]]},
        f"{prefix}peak_over_best_below": ratio_ci(stats[:, 1]),
        f"{prefix}largest_over_best_below": ratio_ci(stats[:, 2]),
        f"{prefix}mean_curve_peak_location": json_number(peak_statistics(mean_curve.index, mean_curve)[0]),
        **{f"{prefix}mean_curve_{k}": v for k, v in peak_decision(mean_curve.index, mean_curve).items()},
    }


def _largest(values) -> float | None:
    """The largest finite value, None if there is none (every run diverged)."""
    v = np.asarray(values, float).ravel()
    v = v[np.isfinite(v)]
    return json_number(v.max()) if len(v) else None


def _best(curve: pd.DataFrame) -> dict:
    """The lowest mean (over seeds) of a curve and its ratio; None where every run diverged."""
    mean = curve.mean(axis=1, skipna=True)
    if not mean.notna().any():
        return {"best_test_error": None, "best_test_error_ratio": None}
    return {"best_test_error": json_number(mean.min()), "best_test_error_ratio": json_number(mean.idxmin())}


def _curves_summary(m: pd.DataFrame, keys, ridge: float | None) -> dict:
    """{split_metric: [mean and CI over seeds at each ratio]}."""
    out = {}
    for split, metric in keys:
        curve = _curve(m, split, metric, ridge)
        out[f"{split}_{metric}"] = [mean_ci_dict(curve.loc[r]) for r in curve.index]
    return out


def _random_features_summary(m: pd.DataFrame, ridges) -> dict:
    test = _curve(m, "test", "error")
    out: dict[str, Any] = {"ratios": [float(r) for r in test.index],
                           "n_features": sorted(int(v) for v in m["width"].unique())}
    out.update(_curves_summary(m, [("train", "loss"), ("train", "error"), ("test", "loss"), ("test", "error"),
                                   ("train", "weight_norm")], ridge=0.0))
    out.update(_peaks(test))
    out.update(_peaks(_curve(m, "test", "loss"), prefix="mse_", geometric=True))
    out.update(_peaks(_curve(m, "train", "weight_norm"), prefix="norm_", geometric=True))
    above = _curve(m, "train", "loss")
    above = above[above.index >= 1]
    out["max_train_loss_interpolating"] = _largest(above.to_numpy())
    out["interpolates"] = (None if out["max_train_loss_interpolating"] is None
                           else out["max_train_loss_interpolating"] < INTERPOLATION_MSE)
    out.update(_best(test))
    out["test_error_at_threshold"] = mean_ci_dict(test.loc[1.0]) if 1.0 in test.index else None
    out["ridge"] = {}
    for lam in ridges:
        curve = _curve(m, "test", "error", ridge=lam)
        out["ridge"][f"{lam:g}"] = {
            "lambda": lam, "test_error": [mean_ci_dict(curve.loc[r]) for r in curve.index],
            "test_error_at_threshold": mean_ci_dict(curve.loc[1.0]) if 1.0 in curve.index else None,
            **{k: v for k, v in _peaks(curve).items() if k in ("peak_over_best_below", "largest_over_best_below")},
        }
    return out


def _network_summary(m: pd.DataFrame) -> dict:
    test = _curve(m, "test", "error", ridge=None)
    sizes = m.drop_duplicates("ratio").sort_values("ratio")
    out: dict[str, Any] = {"ratios": [float(r) for r in test.index], "widths": [int(w) for w in sizes["width"]],
                           "n_params": [int(p) for p in sizes["n_params"]], "final_epoch": int(m["epoch"].max())}
    out.update(_curves_summary(m, [("train", "loss"), ("train", "error"), ("test", "loss"), ("test", "error")],
                               ridge=None))
    out.update(_peaks(test))
    out.update(_peaks(_curve(m, "test", "loss", ridge=None), prefix="mse_", geometric=True))
    train_error = _curve(m, "train", "error", ridge=None)
    fits_all = (train_error == 0).all(axis=1).to_numpy()
    # The smallest size from which on every network of every seed fits every training label.
    tail = np.flatnonzero(~fits_all)
    first = 0 if len(tail) == 0 else tail[-1] + 1
    out["interpolation_ratio"] = json_number(train_error.index[first]) if first < len(fits_all) else None
    train_loss = _curve(m, "train", "loss", ridge=None)
    above = train_loss[train_loss.index >= 1]
    out["max_train_loss_above_threshold"] = _largest(above.to_numpy())
    out.update(_best(test))
    return out


def analyze(tables, experiment) -> dict:
    """Curves (mean and CI over seeds) and peak statistics per method and label noise."""
    m = _final_rows(tables)
    runs = tables.runs
    summary: dict[str, Any] = {
        "confidence": CI_LEVEL,
        "n_seeds": int(runs["seed"].nunique()),
        "n_train": int(runs["n_train"].iloc[0]),
        "input_dim": int(runs["input_dim"].iloc[0]),
        "n_outputs": int(runs["n_outputs"].iloc[0]),
        "n_test": experiment.task.n_test,
        "task": experiment.task.name,
        "n_diverged": int(runs["diverged"].sum()),
        "n_runs": int(len(runs)),
        "peak_margin": PEAK_MARGIN,
        "numbers": "final: closed-form fits and networks after their last epoch; no model selection",
        "test_error": "error rate on the clean test split" if experiment.task.kind == "classification"
        else "squared error on the test split",
    }
    summarize = {"random_features": lambda sub: _random_features_summary(sub, experiment.params["rf_ridges"]),
                 "network": _network_summary}
    for method in METHODS:
        sub = m[m["method"] == method]
        noises = sorted(float(v) for v in sub["label_noise"].unique())
        summary[method] = {f"{v:g}": {"label_noise": v, **summarize[method](sub[sub["label_noise"] == v])}
                           for v in noises}
    noises = sorted({float(v) for v in m["label_noise"].unique()})
    head = f"{noises[-1]:g}"
    summary["label_noises"] = noises
    summary["headline_label_noise"] = noises[-1]
    rf, nn = summary["random_features"].get(head), summary["network"].get(head)
    # The keys of the issue, at the largest label noise (per noise in the method sections).
    summary["peak_location_ratio"] = rf["peak_location"] if rf else None
    summary["peak_over_best_below"] = rf["peak_over_best_below"] if rf else None
    summary["nn_peak_params_over_nK"] = nn["peak_location"] if nn else None
    summary["nn_peak_over_best_below"] = nn["peak_over_best_below"] if nn else None
    summary["nn_mse_peak_params_over_nK"] = nn["mse_peak_location"] if nn else None
    summary["nn_mse_peak_over_best_below"] = nn["mse_peak_over_best_below"] if nn else None
    if nn:
        summary["nn_epochs"] = nn["final_epoch"]
    summary["model"] = {k: getattr(experiment.model, k) for k in ("depth", "activation", "residual", "init")}
    summary["train"] = {k: getattr(experiment.train, k) for k in ("loss", "optimizer", "lr", "lr_schedule",
                                                                 "batch_size", "epochs")}
    return summary


# ----------------------------------------------------------------------------- figures


def _labelled(tables) -> pd.DataFrame:
    """Final rows with a categorical label-noise column for the legends."""
    m = _final_rows(tables).copy()
    m["label noise"] = m["label_noise"].map(lambda v: f"{v:g}")
    return m


def _threshold(ax) -> None:
    """The dotted threshold at ratio 1, and plain labels on the log ratio axis: 0.1, 0.3, 1, 3, ...
    (matplotlib would label the minor ticks of a range under two decades, on top of each other)."""
    from matplotlib import ticker

    ax.axvline(1.0, color="0.4", ls=":", lw=1)
    lo, hi = ax.get_xlim()
    ticks = [t for t in (10.0**k * f for k in range(-3, 4) for f in (1, 3)) if lo <= t <= hi]
    ax.xaxis.set_major_locator(ticker.FixedLocator(ticks))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())


def _threshold_palette(ratios) -> list:
    """One colour per size, readable for about ten sizes: the size nearest the threshold p = nK in black,
    smaller ones in blue-greens, larger ones in oranges, each side from light (far) to dark (near)."""
    import seaborn as sns

    ratios = list(ratios)
    nearest = min(range(len(ratios)), key=lambda i: abs(math.log(ratios[i])))
    below = sns.color_palette("crest", nearest) if nearest else []  # light to dark: towards the threshold
    n_above = len(ratios) - nearest - 1
    above = sns.color_palette("flare", n_above)[::-1] if n_above else []  # dark to light: away from it
    return [*below, (0.0, 0.0, 0.0), *above]


def figures(tables, summary, experiment, plot, outdir: Path) -> list[str]:
    """rf_double_descent: error rate and test mse against N/n; rf_norm_and_ridge: ||B||_F and the ridge
    fits; nn_double_descent: error and loss against p/(nK); nn_learning_curves: test error against epoch.
    Bands: confidence intervals over seeds. Only the figures of the methods that ran."""
    import seaborn as sns

    from mathdl import plots

    plots.setup(plot)
    errorbar = ("ci", round(100 * plot.confidence))
    m = _labelled(tables)
    head = f"{summary['headline_label_noise']:g}"
    names = []
    rf = m[(m["method"] == "random_features")]
    if len(rf):
        base = rf[rf["ridge"] == 0]
        fig, (ax1, ax2) = plots.new_figure(plot, ncols=2)
        err = base[base["metric"] == "error"]
        sns.lineplot(data=err, x="ratio", y="value", hue="label noise", style="split", style_order=["test", "train"],
                     marker="o", errorbar=errorbar, ax=ax1)
        ax1.set(xscale="log", xlabel="features / samples  $N/n$", ylabel="error rate")
        loss = base[(base["metric"] == "loss") & (base["split"] == "test")]
        sns.lineplot(data=loss, x="ratio", y="value", hue="label noise", marker="o", errorbar=errorbar, ax=ax2)
        ax2.set(xscale="log", yscale="log", xlabel="$N/n$", ylabel="test mean squared error")
        for ax in (ax1, ax2):
            _threshold(ax)
        names.append(plots.save(fig, outdir, "rf_double_descent", plot))

        fig, (ax1, ax2) = plots.new_figure(plot, ncols=2)
        norm = base[base["metric"] == "weight_norm"]
        sns.lineplot(data=norm, x="ratio", y="value", hue="label noise", marker="o", errorbar=errorbar, ax=ax1)
        ax1.set(xscale="log", yscale="log", xlabel="$N/n$", ylabel=r"$\|B\|_F$ (minimum norm)")
        ridge = rf[(rf["metric"] == "error") & (rf["split"] == "test") & (rf["label noise"] == head)].copy()
        ridge["fit"] = ridge["ridge"].map(lambda v: "minimum norm" if v == 0 else rf"ridge $\lambda$={v:g}")
        sns.lineplot(data=ridge, x="ratio", y="value", hue="fit", marker="o", errorbar=errorbar, ax=ax2)
        ax2.set(xscale="log", xlabel="$N/n$", ylabel=f"test error rate (label noise {head})")
        for ax in (ax1, ax2):
            _threshold(ax)
        names.append(plots.save(fig, outdir, "rf_norm_and_ridge", plot))

    nn = m[(m["method"] == "network")]
    if len(nn):
        fig, (ax1, ax2) = plots.new_figure(plot, ncols=2)
        err = nn[nn["metric"] == "error"]
        sns.lineplot(data=err, x="ratio", y="value", hue="label noise", style="split", style_order=["test", "train"],
                     marker="o", errorbar=errorbar, ax=ax1)
        ax1.set(xscale="log", xlabel="parameters / $nK$", ylabel="error rate")
        # The training loss falls over ten decades past the threshold: beside it the test peak would vanish.
        loss = nn[(nn["metric"] == "loss") & (nn["split"] == "test")]
        sns.lineplot(data=loss, x="ratio", y="value", hue="label noise", marker="o", errorbar=errorbar, ax=ax2)
        ax2.set(xscale="log", xlabel="parameters / $nK$", ylabel="test mean squared error")
        for ax in (ax1, ax2):
            _threshold(ax)
        names.append(plots.save(fig, outdir, "nn_double_descent", plot))

        # All epochs (not only the last) of the headline noise: the learning curves of every size.
        runs = tables.runs[["run_id", "params.method", "task.label_noise"]]
        curves = tables.metrics.merge(runs, on="run_id")
        curves = curves[(curves["params.method"] == "network") & (curves["task.label_noise"].map(lambda v: f"{v:g}") == head)
                        & (curves["split"] == "test") & (curves["metric"] == "error") & (curves["epoch"] > 0)].copy()
        curves["p / nK"] = curves["ratio"].map(lambda v: f"{v:.3g}")
        ratios = sorted(curves["ratio"].unique())
        order = [f"{v:.3g}" for v in ratios]
        fig, (ax,) = plots.new_figure(plot)
        sns.lineplot(data=curves, x="epoch", y="value", hue="p / nK", hue_order=order,
                     palette=_threshold_palette(ratios), style="p / nK", style_order=order,
                     dashes=[(3, 1.5) if r < 1 else "" for r in ratios], errorbar=None, ax=ax)
        ax.set(xscale="log", xlabel="epoch", ylabel=f"test error rate (label noise {head})")
        ax.legend(title="$p/(nK)$", fontsize="x-small", ncols=2)
        names.append(plots.save(fig, outdir, "nn_learning_curves", plot))
    return names


# ----------------------------------------------------------------------------- words


def context(experiment, summary) -> dict:
    """What the templates need beyond the summary: per method the blocks of the largest (headline)
    and the smallest label noise, the ridge fits' errors at the threshold, and the table's cells."""
    from mathdl.report import fmt

    def blocks(method: str):
        ordered = sorted(summary[method].values(), key=lambda b: b["label_noise"])
        return (ordered[-1] if ordered else None), (ordered[0] if len(ordered) > 1 else None)

    rf, rf_low = blocks("random_features")
    nn, nn_low = blocks("network")
    ridges = []
    if rf is not None:
        for fit in sorted(rf["ridge"].values(), key=lambda b: b["lambda"]):
            at = fit["test_error_at_threshold"]
            ridges.append({"lambda": fit["lambda"], "error": at["mean"] if at else None})
    threshold = (rf or {}).get("test_error_at_threshold") or {}
    ridge_lower = [r["lambda"] for r in ridges if None not in (r["error"], threshold.get("mean"))
                   and r["error"] < threshold["mean"]]
    model = summary["model"]
    if model["residual"]:
        net_name = f"residual networks of {model['depth']} blocks"
    else:
        net_name = "networks with one hidden layer" if model["depth"] == 1 else f"networks with {model['depth']} hidden layers"

    rows = []
    for method in ("random_features", "network"):
        name = "random features" if method == "random_features" else net_name
        for b in sorted(summary[method].values(), key=lambda b: b["label_noise"]):
            peak = (fmt(b["mean_curve_peak_location"]) if b["mean_curve_has_peak"]
                    else "none" if b["mean_curve_has_peak"] is False else "--")
            rows.append([name, fmt(b["label_noise"]), peak, fmt(b["mean_curve_peak_over_best_below"]),
                         fmt(b["mean_curve_largest_over_best_below"]), fmt(b["best_test_error"]),
                         fmt(b["best_test_error_ratio"])])
    return {"rf": rf, "rf_low": rf_low, "nn": nn, "nn_low": nn_low, "ridges": ridges, "ridge_lower": ridge_lower,
            "net_name": net_name, "rows": rows}
