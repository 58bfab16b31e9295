"""Regularization against double descent: optimal ridge in the isotropic linear model, and
weight decay, dropout and early stopping on networks of growing width.

Part ``ridge`` (closed form, float64, its own synthetic data; the experiment's data set is not
used). x ~ N(0, I_d), y = <x, beta*> + eps with eps ~ N(0, sigma^2) and beta* uniform on the
sphere of radius r. On n samples (X of shape n x d) the ridge estimator, in the normalization
of Nakkiran et al. (2021) (a sum, not a mean, of squares), is

    b_lambda = argmin_b ||X b - y||^2 + lambda ||b||^2 = (X^T X + lambda I)^{-1} X^T y,

and its limit lambda -> 0 is b_0 = X^+ y, minimum-norm least squares (Hoerl and Kennard 1970).
For isotropic x the test risk is exactly R(b) = E (y - <x, b>)^2 = ||b - beta*||^2 + sigma^2, so
no test sample is needed. Given X, with s_1, ..., s_d the eigenvalues of X^T X (zeros included
when n < d), the expectation over beta* (E beta* beta*^T = (r^2/d) I) and the noise is

    R_lambda(X) = sigma^2 + sum_i (lambda^2 r^2/d + sigma^2 s_i) / (s_i + lambda)^2       (1)

(bias plus variance; a null direction contributes r^2/d whatever lambda). Term i has derivative
2 s_i (lambda r^2/d - sigma^2) / (s_i + lambda)^3, so for every design X, every n and every d,
R_lambda(X) decreases up to and increases after

    lambda* = d sigma^2 / r^2,

the optimum of Nakkiran et al. (2021). (It is the posterior mean for beta* ~ N(0, (r^2/d) I),
whose risk equals (1) because (1) is linear in ||beta*||^2.) At lambda*, (1) is
sigma^2 (1 + tr (X^T X + lambda* I)^{-1}), which cannot increase when a row is added to X: with
nested designs the optimally regularized risk is monotone in n for every draw, while the
ridgeless risk peaks at n = d, where E tr (X^T X)^{-1} is infinite (Hastie et al. 2022); in finite
samples E R_0 = sigma^2 + r^2 (1 - n/d) + sigma^2 n / (d - n - 1) for n <= d - 2 and
sigma^2 (1 + d / (n - d - 1)) for n >= d + 2. Each seed draws ``ridge_draws`` designs of
n_max rows (each n uses the first n rows), a beta* and a noise vector per design, and records
for every n and lambda on the grid (multiples of lambda*, with 0 and 1) the risk (1) averaged
over the designs (``risk``: the exact expectation over beta* and noise, so only the design is
sampled) and, as a check, the plain Monte Carlo risk ||b_lambda - beta*||^2 + sigma^2 of the
fitted estimators (``risk_simulated``). Both have the same expectation.

Part ``networks`` (the engine, on the experiment's data set: digits with label noise and a
validation split). For every width m of a grid, one engine group of one-hidden-layer networks,
batched over the seeds and over regularizers: every weight decay of a grid (which contains 0)
without dropout, and every dropout rate of a grid without weight decay. With
``early_stopping`` and ``patience`` 0 every network trains to the last epoch and the engine also
records the epoch of least validation loss and its metrics (early stopping, Yao et al. 2007).
Unregularized networks show a test-error peak near the interpolation threshold, where the
parameter count p(m) reaches the number of fitted targets n K (Belkin et al. 2019; Nakkiran et al.
2020); Nakkiran et al. (2021) found that tuned weight decay (Krogh and Hertz 1992) removes it.
Compared per width: the unregularized network at the final epoch; the same network at its
validation-selected epoch; and the weight decay, respectively the dropout rate (Srivastava et
al. 2014), of least final validation error, chosen per seed and width on the validation split
only. The test split is never used to select anything.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mathdl.linalg import ridge_fit
from mathdl.tables import CI_LEVEL, interval_side, json_number, mean_ci_dict

PARTS = ("ridge", "networks")

DEFAULTS: dict[str, Any] = {
    "description": (
        "Does the right amount of regularization remove double descent? Ridge regression in the "
        "isotropic linear model as the sample size passes the dimension, and weight decay, dropout "
        "and early stopping on networks of growing width on the digits with noisy labels."
    ),
    "seeds": [0, 1, 2],
    # Digits: 500 + 300 + 997 = all 1,797 images; a fifth of the train and validation labels random.
    "task": {"name": "digits", "n_train": 500, "n_val": 300, "n_test": 997, "label_noise": 0.2, "seed": 0,
             "standardize": True},
    "model": {"depth": 1, "activation": "relu", "init": "pytorch"},
    # The squared loss on one-hot targets, as in the linear theory: its interpolation threshold is
    # p(m) = n K, which full-batch Adam reaches in a few hundred epochs.
    "train": {"loss": "mse", "optimizer": "adam", "lr": 0.01, "batch_size": 0, "epochs": 300,
              "eval_points": 12, "early_stopping": True, "patience": 0, "selection_metric": "loss"},
    "params": {},  # filled from PARAMS_SCHEMA
    "sweep": {"params.part": list(PARTS)},
}

PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "part": {
            "description": "What this group computes: ridge (closed form) or networks (the engine, on the data set).",
            "enum": list(PARTS), "default": "ridge",
        },
        "ridge_dim": {
            "description": "Dimension d of the isotropic linear model.",
            "type": "integer", "minimum": 2, "maximum": 5000, "default": 50,
        },
        "ridge_n_over_d": {
            "description": "Sample sizes n as multiples of d (rounded; must contain 1, the interpolation "
                           "threshold n = d).",
            "type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 2, "uniqueItems": True,
            "allOf": [{"contains": {"const": 1}}],
            "default": [round(0.1 * k, 1) for k in range(1, 31)],
        },
        "ridge_lambda_ratios": {
            "description": "Ridge penalties lambda as multiples of lambda* = d sigma^2 / r^2 (must contain 0, "
                           "minimum-norm least squares, and 1).",
            "type": "array", "items": {"type": "number", "minimum": 0}, "minItems": 2, "uniqueItems": True,
            "allOf": [{"contains": {"const": 0}}, {"contains": {"const": 1}}],
            "default": [0, 0.1, 0.3, 1, 3, 10],
        },
        "ridge_noise": {
            "description": "Noise standard deviation sigma of y = <x, beta*> + eps.",
            "type": "number", "exclusiveMinimum": 0, "default": 0.5,
        },
        "ridge_signal_norm": {
            "description": "Norm r of beta* (drawn uniformly on the sphere of radius r).",
            "type": "number", "exclusiveMinimum": 0, "default": 1.0,
        },
        "ridge_draws": {
            "description": "Designs X (each with its own beta* and noise) averaged per seed.",
            "type": "integer", "minimum": 1, "default": 50,
        },
        "widths": {
            "description": "Hidden widths m of the networks (through the interpolation threshold p(m) = n K).",
            "type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 65536}, "minItems": 2,
            "uniqueItems": True, "default": [4, 8, 16, 32, 64, 128, 256],
        },
        "weight_decays": {
            "description": "Weight decays (L2, train.weight_decay) trained at every width, without dropout "
                           "(must contain 0).",
            "type": "array", "items": {"type": "number", "minimum": 0}, "minItems": 2, "uniqueItems": True,
            "allOf": [{"contains": {"const": 0}}],
            "default": [0, 0.001, 0.01, 0.03],
        },
        "dropouts": {
            "description": "Dropout rates trained at every width, without weight decay (the rate 0 is the "
                           "unregularized network).",
            "type": "array", "items": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "minItems": 1, "uniqueItems": True, "default": [0.25, 0.5],
        },
        "interpolation_train_error": {
            "description": "Final training error (on the noisy labels) at or below which an unregularized "
                           "network interpolates.",
            "type": "number", "minimum": 0, "default": 0.01,
        },
    },
}

SWEEPABLE = ("params.part",)  # each part computes its grids from params
FIGURES = ("ridge_risk", "nn_test_error", "nn_gap_heatmaps")
CURVES = ("none", "early_stopping", "best_weight_decay", "best_dropout")
CURVE_LABELS = {
    "none": "no regularization (final epoch)",
    "early_stopping": "early stopping (val.-selected epoch)",
    "best_weight_decay": "best weight decay (val.-selected)",
    "best_dropout": "best dropout (val.-selected)",
}
# What each network number in summary.json is: the final epoch or selected on the validation split.
SELECTION = {
    "none": "final epoch, no regularization",
    "early_stopping": "no regularization, epoch of least validation loss (train.selection_metric)",
    "best_weight_decay": "final epoch, weight decay of least final validation error per seed and width",
    "best_dropout": "final epoch, dropout rate of least final validation error per seed and width",
    "gap": "final epoch: test error minus training error (on the noisy training labels)",
}
# summary.json keys of the test error at the peak width without regularization over that with it.
REDUCTION_KEYS = {"early_stopping": "nn_peak_reduction_early_stopping",
                  "best_weight_decay": "nn_peak_reduction_weight_decay",
                  "best_dropout": "nn_peak_reduction_dropout"}
MONOTONE_RTOL = 1e-9  # round-off allowed when checking that a risk curve never increases


# ----------------------------------------------------------------------------- ridge: the mathematics


def theory_lambda(dim: int, noise: float, signal_norm: float) -> float:
    """lambda* = d sigma^2 / r^2, optimal for argmin ||X b - y||^2 + lambda ||b||^2 (Nakkiran et al. 2021)."""
    return dim * noise**2 / signal_norm**2


def conditional_risk(eigenvalues: np.ndarray, dim: int, lambdas: np.ndarray, noise: float,
                     signal_norm: float) -> np.ndarray:
    """E[R(b_lambda) | X], equation (1), for each lambda: sigma^2 + (d - k) r^2/d +
    sum_{i <= k} (lambda^2 r^2/d + sigma^2 s_i) / (s_i + lambda)^2 over the k positive eigenvalues
    s_i of X^T X; lambda = 0 is minimum-norm least squares. eigenvalues (k,), lambdas (L,) -> (L,)."""
    s = np.asarray(eigenvalues, dtype=float)
    lam = np.asarray(lambdas, dtype=float)[:, None]  # (L, 1)
    a = signal_norm**2 / dim  # E beta*_i^2
    terms = (lam**2 * a + noise**2 * s[None, :]) / (s[None, :] + lam) ** 2  # (L, k)
    return noise**2 + (dim - len(s)) * a + terms.sum(axis=1)


def ridgeless_expected_risk(n: int, dim: int, noise: float, signal_norm: float) -> float:
    """E R(X^+ y) over Gaussian designs: sigma^2 + r^2 (1 - n/d) + sigma^2 n/(d - n - 1) for n <= d - 2,
    sigma^2 (1 + d/(n - d - 1)) for n >= d + 2, infinite in between (inverse-Wishart means)."""
    if n <= dim - 2:
        return noise**2 + signal_norm**2 * (1 - n / dim) + noise**2 * n / (dim - n - 1)
    if n >= dim + 2:
        return noise**2 * (1 + dim / (n - dim - 1))
    return math.inf


def ridge_risks(sample_sizes, lambdas, dim: int, noise: float, signal_norm: float, draws: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Mean over ``draws`` nested designs of the conditional risk (1) and of the simulated risk
    ||b_lambda - beta*||^2 + sigma^2, each of shape (len(sample_sizes), len(lambdas))."""
    sizes = [int(n) for n in sample_sizes]
    lambdas = np.asarray(lambdas, dtype=float)
    exact = np.zeros((len(sizes), len(lambdas)))
    simulated = np.zeros_like(exact)
    for _ in range(draws):
        x = rng.standard_normal((max(sizes), dim))
        g = rng.standard_normal(dim)
        beta = signal_norm * g / np.linalg.norm(g)  # uniform on the sphere of radius r
        y = x @ beta + noise * rng.standard_normal(max(sizes))
        for i, n in enumerate(sizes):  # the first n rows: one design grows with n
            b, eigenvalues = ridge_fit(x[:n], y[:n], lambdas)
            exact[i] += conditional_risk(eigenvalues, dim, lambdas, noise, signal_norm)
            simulated[i] += ((b - beta[None, :]) ** 2).sum(axis=1) + noise**2
    return exact / draws, simulated / draws


def sample_sizes(params: dict) -> list[int]:
    """n = round(ratio d) for the ratios of ``ridge_n_over_d``, distinct and increasing."""
    return sorted({max(1, int(round(q * params["ridge_dim"]))) for q in params["ridge_n_over_d"]})


# ----------------------------------------------------------------------------- compute


def _ridge(group, data, device) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The ridge risks of every seed on the (n, lambda) grid; no data set, no engine."""
    from mathdl.studies import host_device

    p = group.runs[0].params
    d, sigma, r = p["ridge_dim"], p["ridge_noise"], p["ridge_signal_norm"]
    lam_star = theory_lambda(d, sigma, r)
    ratios = np.array(sorted(p["ridge_lambda_ratios"]), dtype=float)
    sizes = sample_sizes(p)
    rows = []
    for run in group.runs:
        rng = np.random.default_rng([run.seed, d])
        exact, simulated = ridge_risks(sizes, ratios * lam_star, d, sigma, r, p["ridge_draws"], rng)
        for i, n in enumerate(sizes):
            for j, ratio in enumerate(ratios):
                for metric, value in (("risk", exact[i, j]), ("risk_simulated", simulated[i, j])):
                    rows.append((run.run_id, 0, "test", metric, float(value), n, float(ratio), float(ratio * lam_star)))
    metrics = pd.DataFrame(rows, columns=["run_id", "epoch", "split", "metric", "value", "n_samples",
                                          "lambda_ratio", "lambda"])
    bad = set(metrics.loc[~np.isfinite(metrics["value"]), "run_id"])
    runs = pd.DataFrame([{"run_id": r.run_id, "seed": r.seed, "diverged": r.run_id in bad, "diverged_epoch": -1}
                         for r in group.runs])
    return metrics, runs, host_device(device)  # NumPy on the host


def regularizer_variants(params: dict) -> list[dict]:
    """The per-run train keys of one width: each weight decay without dropout, then each dropout
    rate without weight decay (the unregularized network once)."""
    variants = [{"weight_decay": float(w), "dropout": 0.0} for w in sorted(params["weight_decays"])]
    variants += [{"weight_decay": 0.0, "dropout": float(q)} for q in sorted(params["dropouts"]) if q > 0]
    return variants


def _networks(group, data, device) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Every width: one engine group on ``device``, batched over seeds and regularizers; final and
    selected epochs."""
    from mathdl import engine, models
    from mathdl.studies._divergence import blank_failed, failed_runs

    cfg = group.train
    if not cfg.early_stopping or cfg.patience != 0:
        raise ValueError("study regularization records the final and the validation-selected epoch of every "
                         "network: set train.early_stopping: true and train.patience: 0")
    if data.x_val.shape[0] == 0:
        raise ValueError("study regularization selects on the validation split: set task.n_val > 0")
    p = group.runs[0].params
    outer = {r.seed: r.run_id for r in group.runs}
    n_targets = data.x_train.shape[0] * data.n_outputs  # equations fitted at interpolation: n K
    frames, status, dev = [], [], "cpu"
    for width in sorted(p["widths"]):
        model = {**vars(group.model), "width": width}
        g = engine.make_group([r.seed for r in group.runs], task=vars(group.task), model=model, train=vars(cfg),
                              per_run=regularizer_variants(p), experiment=group.experiment)
        result = engine.train(g, data, device=device, progress=False)
        dev = result.device
        failed = failed_runs(result)  # even at the last epoch: NaN from then on, out of every mean
        nets = pd.DataFrame([{"net": r.run_id, "run_id": outer[r.seed], "width": width,
                              "weight_decay": r.train.weight_decay, "dropout": r.train.dropout} for r in g.runs])
        nets = nets.merge(result.runs.assign(diverged=result.runs["run_id"].isin(failed))
                          .rename(columns={"run_id": "net"}), on="net")
        status.append(nets)
        m = blank_failed(result).rename(columns={"run_id": "net"}).merge(
            nets[["net", "run_id", "width", "weight_decay", "dropout", "selected_epoch"]], on="net")
        frames.append(m.drop(columns="net"))
        arch = models.architecture(dataclasses.replace(group.model, width=width), data.input_dim,
                                   data.n_outputs)
        frames.append(pd.DataFrame([
            {"run_id": r.run_id, "epoch": 0, "split": "model", "metric": metric, "value": float(value),
             "width": width, "weight_decay": 0.0, "dropout": 0.0, "selected_epoch": 0}
            for r in group.runs for metric, value in (("n_parameters", arch.parameter_count()),
                                                      ("n_targets", n_targets))
        ]))
    metrics = pd.concat(frames, ignore_index=True)
    metrics = metrics[["run_id", "epoch", "split", "metric", "value", "width", "weight_decay", "dropout",
                       "selected_epoch"]]
    nets = pd.concat(status, ignore_index=True)
    runs = []
    for r in group.runs:
        mine = nets[nets["run_id"] == r.run_id]
        bad = mine[mine["diverged"]]
        runs.append({"run_id": r.run_id, "seed": r.seed, "diverged": len(bad) > 0,
                     "diverged_epoch": _first_caught(bad["diverged_epoch"]),
                     "diverged_networks": int(len(bad)), "networks": int(len(mine))})
    return metrics, pd.DataFrame(runs), dev


def _first_caught(epochs: pd.Series) -> int:
    """The first epoch at which a network was caught diverging; -1 if none was."""
    caught = epochs[epochs >= 0]
    return int(caught.min()) if len(caught) else -1


COMPUTE_PARTS = {"ridge": _ridge, "networks": _networks}


def networks(group) -> list:
    """What the group's job trains (mathdl.resources sizes the job from it): part networks, every
    width with all seeds and regularizers batched, one width after another; part ridge, none."""
    from mathdl.resources import Networks

    p = group.runs[0].params
    if p["part"] != "networks":
        return []
    n_models = len(group.runs) * len(regularizer_variants(p))
    return [Networks.of_group(group, model=dataclasses.replace(group.model, width=w), n_models=n_models)
            for w in sorted(p["widths"])]


def compute(group, data, device):
    """One part for every seed of the group: the ridge risks, or the networks of every width."""
    from mathdl.engine import TrainResult

    start = time.perf_counter()
    part = group.runs[0].params["part"]
    try:
        compute_part = COMPUTE_PARTS[part]
    except KeyError:
        raise ValueError(f"unknown part {part!r}; valid: {', '.join(COMPUTE_PARTS)}") from None
    metrics, runs, dev = compute_part(group, data, device)
    metrics.insert(5, "part", part)
    metrics["epoch"] = metrics["epoch"].astype(np.int64)
    metrics["value"] = metrics["value"].astype(float)
    return TrainResult(metrics=metrics, runs=runs, device=dev, wall_time_s=time.perf_counter() - start)


# ----------------------------------------------------------------------------- analyze



def _mean(ci: dict | None) -> float:
    return math.nan if ci is None or ci["mean"] is None else ci["mean"]


def _ratio_key(ratio: float) -> str:
    return f"{float(ratio):g}"


def _is_monotone(curve) -> bool:
    """True where the curve never increases (up to round-off)."""
    c = np.asarray(curve, dtype=float)
    return bool(np.all(np.isfinite(c)) and np.all(np.diff(c) <= MONOTONE_RTOL * np.abs(c[:-1])))


def _max_rise(curve) -> float:
    """The largest relative increase between neighbours of a curve (0 where it never increases)."""
    c = np.asarray(curve, dtype=float)
    rises = np.diff(c) / np.abs(c[:-1])
    return float(max(0.0, np.nanmax(rises))) if np.isfinite(rises).any() else math.nan


def panel_sizes(sizes, dim: int) -> list[int]:
    """The sample sizes of the ridge figure's right panel: those of the grid nearest d/2, d and 2d."""
    sizes = np.asarray(sizes)
    return sorted({int(sizes[np.argmin(np.abs(sizes - t))]) for t in (dim / 2, dim, 2 * dim)})


def _ridge_cube(m: pd.DataFrame, metric: str) -> tuple[np.ndarray, list, list, list]:
    """Risks as an array (seed run, n, lambda ratio) with the run ids, the n and the ratios."""
    sel = m[m["metric"] == metric]
    cube = sel.pivot_table(index=["run_id", "n_samples"], columns="lambda_ratio", values="value", dropna=False)
    runs = list(cube.index.get_level_values(0).unique())
    sizes = sorted(cube.index.get_level_values(1).unique())
    ratios = sorted(cube.columns)
    values = cube.reindex(pd.MultiIndex.from_product([runs, sizes])).reindex(columns=ratios).to_numpy()
    return values.reshape(len(runs), len(sizes), len(ratios)), runs, [int(n) for n in sizes], [float(q) for q in ratios]


def _best_ratio(cube: np.ndarray, ratios: list) -> tuple[float | None, list]:
    """The grid ratio of least risk averaged over n: for the mean over seeds, and per seed."""
    def best(risk_by_n_and_ratio):
        mean = np.nanmean(risk_by_n_and_ratio, axis=0)
        return float(ratios[int(np.nanargmin(mean))]) if np.isfinite(mean).any() else None

    return best(np.nanmean(cube, axis=0)), [best(seed) for seed in cube]


def _ridge_summary(m: pd.DataFrame, params: dict) -> dict:
    d, sigma, r = params["ridge_dim"], params["ridge_noise"], params["ridge_signal_norm"]
    exact, runs, sizes, ratios = _ridge_cube(m, "risk")
    simulated, _, _, _ = _ridge_cube(m, "risk_simulated")
    one, zero = ratios.index(1.0), ratios.index(0.0)
    best, best_per_seed = _best_ratio(exact, ratios)
    best_sim, best_sim_per_seed = _best_ratio(simulated, ratios)
    mean_exact = np.nanmean(exact, axis=0)  # (n, ratio)
    peak = int(np.nanargmax(mean_exact[:, zero]))
    positive = [j for j, q in enumerate(ratios) if q > 0]
    rel = np.abs(np.nanmean(simulated, axis=0) - mean_exact)[:, positive] / mean_exact[:, positive]
    return {
        "ridge_dim": d, "ridge_noise": sigma, "ridge_signal_norm": r, "ridge_draws": params["ridge_draws"],
        "ridge_n_seeds": len(runs),
        "lambda_theory": theory_lambda(d, sigma, r),
        "ridge_n": sizes,
        "ridge_lambda_ratios": ratios,
        "ridge_risk": {_ratio_key(q): [mean_ci_dict(exact[:, i, j]) for i in range(len(sizes))] for j, q in enumerate(ratios)},
        "ridge_risk_simulated": {_ratio_key(q): [mean_ci_dict(simulated[:, i, j]) for i in range(len(sizes))]
                                 for j, q in enumerate(ratios)},
        "ridgeless_theory": [json_number(ridgeless_expected_risk(n, d, sigma, r)) for n in sizes],
        "best_lambda_over_theory": best,
        "best_lambda_over_theory_per_seed": best_per_seed,
        "best_lambda_over_theory_simulated": best_sim,
        "best_lambda_over_theory_simulated_per_seed": best_sim_per_seed,
        # The conditional risk is least at lambda* by construction; the Monte Carlo risk is the check.
        "best_lambda_simulated_at_theory_seeds": int(sum(q == 1.0 for q in best_sim_per_seed)),
        "optimal_risk_simulated_max_rise": json_number(_max_rise(np.nanmean(simulated, axis=0)[:, one])),
        "ridge_panel_sizes": panel_sizes(sizes, d),
        "optimal_risk_monotone": int(_is_monotone(mean_exact[:, one])),
        "optimal_risk_monotone_seeds": int(sum(_is_monotone(seed[:, one]) for seed in exact)),
        "optimal_risk_monotone_simulated": int(_is_monotone(np.nanmean(simulated, axis=0)[:, one])),
        "ridgeless_monotone": int(_is_monotone(mean_exact[:, zero])),
        "ridgeless_peak_n": sizes[peak],
        "ridgeless_peak_risk": mean_ci_dict(exact[:, peak, zero]),
        "optimal_risk_at_ridgeless_peak": mean_ci_dict(exact[:, peak, one]),
        "ridge_peak_reduction": json_number(mean_exact[peak, zero] / mean_exact[peak, one]),
        "ridge_simulated_max_rel_diff": json_number(np.nanmax(rel)) if rel.size else None,
        "ridge_risk_estimate": "exact expectation over beta* and noise given each design, averaged over designs",
    }


def network_table(m: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per network (seed run, width, weight decay, dropout): final train/val/test error,
    test error at the validation-selected epoch, the selected epoch, and the final gap."""
    keys = ["run_id", "width", "weight_decay", "dropout"]
    err = m[(m["metric"] == "error") & (m["split"].isin(["train", "val", "test"]))]
    last = int(err["epoch"].max())
    final = err[err["epoch"] == last].set_index([*keys, "split"])["value"].unstack("split").add_prefix("final_")
    chosen = err[(err["epoch"] == err["selected_epoch"]) & (err["split"] == "test")]
    selected = chosen.set_index(keys)["value"].rename("selected_test")
    epochs = err.groupby(keys)["selected_epoch"].first()
    table = final.join(selected).join(epochs).reset_index()
    # A diverged network (NaN at its final epoch) is left out of every curve, early stopping's too.
    table.loc[table["final_test"].isna(), "selected_test"] = np.nan
    table["gap"] = table["final_test"] - table["final_train"]
    return table.merge(runs[["run_id", "seed"]], on="run_id", how="left")


def _select_on_validation(table: pd.DataFrame, key: str) -> pd.DataFrame:
    """Per seed run and width, the row of least final validation error among the values of ``key``
    (the other regularizer off); ties go to the weaker regularization."""
    other = "dropout" if key == "weight_decay" else "weight_decay"
    rows = table[table[other] == 0].dropna(subset=["final_val"]).sort_values(["run_id", "width", key])
    return rows.loc[rows.groupby(["run_id", "width"])["final_val"].idxmin()]


def _curves(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per curve: rows (run_id, seed, width, test), the test error of each seed run and width."""
    none = table[(table["weight_decay"] == 0) & (table["dropout"] == 0)]
    decay, dropout = _select_on_validation(table, "weight_decay"), _select_on_validation(table, "dropout")
    out = {
        "none": none.assign(test=none["final_test"]),
        "early_stopping": none.assign(test=none["selected_test"]),
        "best_weight_decay": decay.assign(test=decay["final_test"]),
        "best_dropout": dropout.assign(test=dropout["final_test"]),
    }
    return {k: v[["run_id", "seed", "width", "weight_decay", "dropout", "test"]] for k, v in out.items()}


def find_peak(curve) -> tuple[int, int | None, bool]:
    """(peak index, dip index, bump found) of a test-error curve over increasing widths: the dip is
    the first local minimum, the peak the largest value after it; without a rise after a local
    minimum there is no bump and the peak is the global maximum."""
    c = np.asarray(curve, dtype=float)
    if not np.isfinite(c).any():  # every network diverged
        return 0, None, False
    dip = next((i for i in range(len(c) - 1) if c[i] <= c[i + 1]), None)
    if dip is None:
        return int(np.nanargmax(c)), None, False
    peak = dip + 1 + int(np.nanargmax(c[dip + 1 :]))
    return peak, dip, bool(c[peak] > c[dip])


def _per_width(df: pd.DataFrame, widths: list, column: str = "test") -> list[dict]:
    return [mean_ci_dict(df.loc[df["width"] == w, column]) for w in widths]


def _at_width(test: pd.Series, width: int) -> pd.Series:
    """The test errors of one width, by run id (empty where every network of the width was dropped)."""
    return test[test.index.get_level_values("width") == width].droplevel("width")


def _mode(values: list) -> float | None:
    """The value chosen most often (ties: the smallest, the weaker regularization); None for none."""
    vals = [v for v in values if v is not None]
    return max(set(vals), key=lambda v: (vals.count(v), -v)) if vals else None


def _networks_summary(m: pd.DataFrame, runs: pd.DataFrame, params: dict, experiment) -> dict:
    table = network_table(m, runs)
    widths = sorted(int(w) for w in table["width"].unique())
    curves = _curves(table)
    by_seed = {k: v.set_index(["run_id", "width"])["test"] for k, v in curves.items()}
    summary: dict[str, Any] = {
        "nn_widths": widths,
        "nn_weight_decays": sorted(float(w) for w in params["weight_decays"]),
        "nn_dropouts": [0.0] + sorted(float(q) for q in params["dropouts"]),
        "nn_n_train": experiment.task.n_train, "nn_n_val": experiment.task.n_val,
        "nn_n_test": experiment.task.n_test, "nn_label_noise": experiment.task.label_noise,
        "nn_epochs": experiment.train.epochs,
        "nn_selection": dict(SELECTION),
        "nn_test_error": {k: _per_width(v, widths) for k, v in curves.items()},
        "nn_train_error_none": _per_width(
            table[(table["weight_decay"] == 0) & (table["dropout"] == 0)], widths, "final_train"),
        "nn_selected_epoch_none": _per_width(
            table[(table["weight_decay"] == 0) & (table["dropout"] == 0)], widths, "selected_epoch"),
        "nn_selected_weight_decay": [
            [json_number(v) for v in curves["best_weight_decay"].loc[curves["best_weight_decay"]["width"] == w,
                                                                     "weight_decay"]] for w in widths],
        "nn_selected_dropout": [
            [json_number(v) for v in curves["best_dropout"].loc[curves["best_dropout"]["width"] == w, "dropout"]]
            for w in widths],
    }
    for key, grid in (("weight_decay", summary["nn_weight_decays"]), ("dropout", summary["nn_dropouts"])):
        other = "dropout" if key == "weight_decay" else "weight_decay"
        rows = table[table[other] == 0]
        for name, column in (("gap", "gap"), ("test_error", "final_test")):
            summary[f"nn_{name}_{key}"] = {
                _ratio_key(v): [json_number(rows.loc[(rows[key] == v) & (rows["width"] == w), column].mean())
                                for w in widths] for v in grid}
    none = np.array([_mean(c) for c in summary["nn_test_error"]["none"]])
    peak, dip, found = find_peak(none)
    w_peak = widths[peak]
    summary.update({
        "nn_bump_found": int(found),
        "nn_peak_width": w_peak,
        "nn_dip_width": widths[dip] if dip is not None else None,
        "nn_bump_height": json_number(none[peak] - none[dip]) if found else None,
    })
    for k in CURVES:
        summary[f"nn_peak_test_error_{k}"] = summary["nn_test_error"][k][peak]
    for k, key in REDUCTION_KEYS.items():
        ratios = (_at_width(by_seed["none"], w_peak) / _at_width(by_seed[k], w_peak)).dropna()
        mean_k = _mean(summary["nn_test_error"][k][peak])
        summary[key] = json_number(none[peak] / mean_k) if mean_k > 0 else None
        summary[f"{key}_per_seed"] = mean_ci_dict(ratios.to_numpy())
        # 1: the per-seed ratio's interval lies above 1 (regularized is better), -1: below, 0: it holds 1.
        summary[f"{key}_vs_one"] = interval_side(summary[f"{key}_per_seed"], 1.0)
    train = np.array([_mean(c) for c in summary["nn_train_error_none"]])
    fits = [w for w, e in zip(widths, train) if e <= params["interpolation_train_error"]]
    summary["nn_interpolation_width"] = fits[0] if fits else None
    summary["nn_interpolating_widths"] = fits
    model = m[m["split"] == "model"]
    n_params = model[model["metric"] == "n_parameters"].groupby("width")["value"].first().reindex(widths)
    n_targets = float(model.loc[model["metric"] == "n_targets", "value"].iloc[0])
    summary["nn_parameters"] = [int(v) for v in n_params]
    summary["nn_targets"] = int(n_targets)
    inside = n_params.iloc[0] <= n_targets <= n_params.iloc[-1]
    summary["nn_threshold_width_params"] = (
        json_number(np.interp(n_targets, n_params.to_numpy(), np.array(widths, dtype=float))) if inside else None)
    summary["nn_n_diverged"] = int(table["final_test"].isna().sum())
    summary["nn_n_networks"] = int(len(table))
    gaps = table["gap"][np.isfinite(table["gap"])]
    summary["nn_gap_min"] = json_number(gaps.min()) if len(gaps) else None
    # The regularization strengths chosen most often at the peak width (ties: the weaker).
    summary["nn_peak_selected_weight_decay"] = _mode(summary["nn_selected_weight_decay"][peak])
    summary["nn_peak_selected_dropout"] = _mode(summary["nn_selected_dropout"][peak])
    return summary


def analyze(tables, experiment) -> dict:
    """Ridge: the grid's best lambda over lambda*, monotonicity at lambda*, the ridgeless peak.
    Networks: test error against width per regularization, gaps, and the peak reduction."""
    m = tables.metrics
    parts = [p for p in PARTS if "part" in m and (m["part"] == p).any()]
    params = experiment.params
    summary: dict[str, Any] = {
        "confidence": CI_LEVEL, "n_seeds": len(experiment.seeds), "parts": parts,
        "best_lambda_over_theory": None, "optimal_risk_monotone": None, "nn_peak_reduction_weight_decay": None,
    }
    if "ridge" in parts:
        summary.update(_ridge_summary(m[m["part"] == "ridge"], params))
    if "networks" in parts:
        summary.update(_networks_summary(m[m["part"] == "networks"], tables.runs, params, experiment))
    return summary


# ----------------------------------------------------------------------------- figures


def _ridge_long(tables) -> pd.DataFrame:
    m = tables.metrics
    return m[(m["part"] == "ridge") & (m["metric"] == "risk")].copy()


def _ratio_label(q: float) -> str:
    return {0: "0 (min-norm)", 1: r"$\lambda^*$"}.get(q, rf"{q:g} $\lambda^*$")


def _ridge_figure(tables, summary, plot, outdir: Path) -> str:
    import seaborn as sns

    from mathdl import plots

    df = _ridge_long(tables)
    df["penalty"] = df["lambda_ratio"].map(_ratio_label)
    ratios = summary["ridge_lambda_ratios"]
    order = [_ratio_label(q) for q in ratios]
    palette = dict(zip(order, sns.color_palette("viridis", len(order))))
    palette[_ratio_label(1.0)] = "black"
    errorbar = ("ci", round(100 * plot.confidence))
    fig, (left, right) = plots.new_figure(plot, ncols=2)
    sns.lineplot(data=df, x="n_samples", y="value", hue="penalty", hue_order=order, palette=palette,
                 errorbar=errorbar, ax=left)
    d = summary["ridge_dim"]
    sizes = np.array(summary["ridge_n"])
    theory = np.array([np.nan if v is None else v for v in summary["ridgeless_theory"]])
    left.plot(sizes, theory, color="gray", ls="--", lw=1, label="min-norm, theory")
    left.axvline(d, color="gray", ls=":", lw=1)
    left.set_yscale("log")
    left.set_xlabel("samples n")
    left.set_ylabel(r"test risk $\|\hat\beta-\beta^*\|^2+\sigma^2$")
    left.set_title(f"d = {d}")
    left.legend(fontsize="x-small", title=None)
    picks = panel_sizes(sizes, d)
    sub = df[(df["lambda_ratio"] > 0) & (df["n_samples"].isin(picks))].copy()
    sub["n"] = sub["n_samples"].astype(int).astype(str)
    sns.lineplot(data=sub, x="lambda_ratio", y="value", hue="n", hue_order=[str(n) for n in picks],
                 palette="colorblind", marker="o", errorbar=errorbar, ax=right)
    right.axvline(1.0, color="black", ls=":", lw=1)
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel(r"$\lambda/\lambda^*$")
    right.set_ylabel("test risk")
    right.legend(title="n", fontsize="x-small")
    return plots.save(fig, outdir, "ridge_risk", plot)


def _curves_long(tables) -> pd.DataFrame:
    m = tables.metrics
    table = network_table(m[m["part"] == "networks"], tables.runs)
    curves = _curves(table)
    return pd.concat([v.assign(curve=CURVE_LABELS[k]) for k, v in curves.items()], ignore_index=True), table


def _networks_figures(tables, summary, plot, outdir: Path) -> list[str]:
    import seaborn as sns

    from mathdl import plots

    long, table = _curves_long(tables)
    errorbar = ("ci", round(100 * plot.confidence))
    fig, (ax,) = plots.new_figure(plot)
    order = [CURVE_LABELS[k] for k in CURVES]
    sns.lineplot(data=long, x="width", y="test", hue="curve", hue_order=order, marker="o", errorbar=errorbar, ax=ax)
    none = table[(table["weight_decay"] == 0) & (table["dropout"] == 0)]
    sns.lineplot(data=none, x="width", y="final_train", color="gray", ls="--", errorbar=None, ax=ax,
                 label="training error, no regularization")
    if summary.get("nn_threshold_width_params") is not None:
        ax.axvline(summary["nn_threshold_width_params"], color="gray", ls=":", lw=1)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("hidden width m")
    ax.set_ylabel("test error rate")
    ax.legend(fontsize="x-small")
    names = [plots.save(fig, outdir, "nn_test_error", plot)]

    # One above the other at the plot's width: side by side, the paper would shrink the cell
    # numbers to about 4 pt.
    fig, axes = plots.new_figure(plot, nrows=2)
    widths = summary["nn_widths"]
    grids = (("weight_decay", "weight decay", summary["nn_gap_weight_decay"]),
             ("dropout", "dropout rate", summary["nn_gap_dropout"]))
    values = [v for _, _, g in grids for row in g.values() for v in row if v is not None]
    vmin, vmax = (min(values), max(values)) if values else (0.0, 1.0)
    for ax, (_, label, grid) in zip(axes, grids):
        frame = pd.DataFrame({k: [np.nan if v is None else v for v in row] for k, row in grid.items()},
                             index=widths).T
        sns.heatmap(frame, annot=True, fmt=".2f", cmap="rocket_r", vmin=vmin, vmax=vmax, ax=ax,
                    cbar=ax is axes[-1], annot_kws={"fontsize": 8})
        ax.set_xlabel("hidden width m")
        ax.set_ylabel(label)
        ax.set_title("test minus train error (final epoch)", fontsize="small")
    names.append(plots.save(fig, outdir, "nn_gap_heatmaps", plot))
    return names


def figures(tables, summary, experiment, plot, outdir: Path) -> list[str]:
    """ridge_risk: risk against n per lambda and against lambda per n; nn_test_error: test error
    against width per regularization; nn_gap_heatmaps: the final gap over width x regularizer."""
    from mathdl import plots

    plots.setup(plot)
    names = []
    if "ridge" in summary["parts"]:
        names.append(_ridge_figure(tables, summary, plot, Path(outdir)))
    if "networks" in summary["parts"]:
        names += _networks_figures(tables, summary, plot, Path(outdir))
    return names


# ----------------------------------------------------------------------------- words (templates/)


def context(experiment, summary) -> dict:
    """The networks' table of the templates: one row per width (where the plan computed the networks)."""
    from mathdl.report import fmt

    if "networks" not in summary["parts"]:
        return {"net_header": [], "net_rows": []}
    rows = [[fmt(w), fmt(summary["nn_parameters"][i]), fmt(summary["nn_train_error_none"][i]["mean"])]
            + [fmt(summary["nn_test_error"][k][i]["mean"]) for k in CURVES]
            + [fmt(_mode(summary["nn_selected_weight_decay"][i]))]
            for i, w in enumerate(summary["nn_widths"])]
    header = ["$m$", "parameters", "train (none)", "test (none)", "early stop", "best w.d.", "best dropout", "w.d."]
    return {"net_header": header, "net_rows": rows}
