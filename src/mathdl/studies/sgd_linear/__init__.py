"""SGD on linear regression: full-batch gradient descent against minibatch SGD (the lecture's example).

Data: n points x_i ~ N(x_mean, x_std^2), y_i = beta0 + beta1 x_i + noise_i with noise_i ~ N(0, sigma^2),
drawn from the run's seed (the same data for every batch size). With xt_i = (1, x_i) the
empirical risk is

    L(beta) = 1/(2n) sum_i (xt_i^T beta - y_i)^2 = L* + 1/2 (beta - beta_hat)^T H (beta - beta_hat),

H = X^T X / n, with the least-squares solution beta_hat = H^{-1} X^T y / n and L* = L(beta_hat) in
closed form. Full-batch gradient descent takes one step per pass over the data,
beta <- beta - lr grad L(beta), and contracts the error by max |1 - lr lambda| per step over the
eigenvalues lambda of H. Minibatch SGD (Robbins and Monro 1951) replaces grad L by the mean
g_B(beta) = 1/B sum_{i in I} xt_i (xt_i^T beta - y_i) over a batch I of B indices drawn uniformly
(``sampling: with_replacement``: independently; ``reshuffle``: consecutive slices of a fresh
permutation each pass), and takes n/B steps per pass.

* Unbiasedness: E g_B(beta) = grad L(beta) for every beta, because each index is uniform. The check
  averages K independent minibatch gradients at a fixed point and compares the average with the
  full gradient. Its Monte-Carlo error has covariance C_B / K, with C_B = S / B (with replacement)
  or S / B (n - B)/(n - 1) (without replacement within a batch), S the covariance of the per-sample
  gradients; the expected size of the relative error is sqrt(tr C_B / K) / ||grad L||, and
  K d^T C_B^{-1} d is about chi^2 with 2 degrees of freedom.
* With a constant step SGD does not converge: it reaches a stationary spread around beta_hat
  (Bottou, Curtis and Nocedal 2018, Theorem 4.6). For sampling with replacement the error
  delta = beta - beta_hat obeys delta' = (I - lr H_B) delta + lr xi_B, with the batch Hessian H_B
  and xi_B = mean of xt_i e_i (e the least-squares residuals, sum_i xt_i e_i = 0). Its stationary
  second moment P solves exactly

      lr (H P + P H) - lr^2 [H P H + (M(P) - H P H) / B] = lr^2 S* / B,

  with M(P) = 1/n sum_i xt_i xt_i^T P xt_i xt_i^T and S* = 1/n sum_i e_i^2 xt_i xt_i^T; the predicted
  plateau of the loss is L* + tr(H P)/2, about L* + lr sigma^2 tr(H) / (4 B) for a small step.
  For reshuffling it is an approximation (with the finite-population factor).
* Cost: a pass of SGD takes n/B steps; one NumPy implementation serves every batch size, so the
  wall time shows what a step costs, whatever B. Wall time counts the sampling and the steps,
  not the evaluations of the loss (which use the closed form above); it is measured, so it is the
  one output that is not deterministic.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mathdl.tables import CI_LEVEL, json_number as _num

SAMPLINGS = ("with_replacement", "reshuffle")

DEFAULTS: dict[str, Any] = {
    "description": (
        "On a linear regression with a hundred thousand points, how do full-batch gradient descent and "
        "minibatch SGD of several batch sizes compare per pass over the data and per second, and is the "
        "stochastic gradient unbiased?"
    ),
    "seeds": [0, 1, 2],
    "task": {"name": "none"},
    "params": {},  # filled from PARAMS_SCHEMA
    "sweep": {"params.batch_size": [1, 10, 100, 1000, 0]},
}

PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "n": {"description": "Number of data points.", "type": "integer", "minimum": 10, "maximum": 10000000,
              "default": 100000},
        "beta0": {"description": "True intercept.", "type": "number", "default": 1.0},
        "beta1": {"description": "True slope.", "type": "number", "default": 2.0},
        "x_mean": {"description": "Mean of the inputs x ~ N(x_mean, x_std^2).", "type": "number", "default": 1.0},
        "x_std": {"description": "Standard deviation of the inputs.", "type": "number", "exclusiveMinimum": 0,
                  "default": 1.0},
        "noise": {"description": "Standard deviation sigma of the noise on y.", "type": "number", "minimum": 0,
                  "default": 1.0},
        "batch_size": {
            "description": "Minibatch size B; 0 (or B >= n): full-batch gradient descent.",
            "type": "integer", "minimum": 0, "default": 0,
        },
        "lr": {"description": "Constant step size of every method.", "type": "number", "exclusiveMinimum": 0,
               "default": 0.05},
        "epochs": {"description": "Passes over the data of minibatch SGD.", "type": "integer", "minimum": 1,
                   "default": 2},
        "full_batch_epochs": {
            "description": "Passes (= steps) of full-batch gradient descent.",
            "type": "integer", "minimum": 1, "default": 300,
        },
        "init": {
            "description": "Starting point [beta0, beta1]; also the point of the unbiasedness check.",
            "type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2, "default": [0.0, 0.0],
        },
        "sampling": {
            "description": "with_replacement: independent uniform indices; reshuffle: a fresh permutation every pass.",
            "enum": list(SAMPLINGS), "default": "with_replacement",
        },
        "evals_per_epoch": {
            "description": "Loss evaluations per pass, evenly spaced (plus log-spaced ones in the first pass).",
            "type": "integer", "minimum": 1, "maximum": 10000, "default": 500,
        },
        "log_evals": {
            "description": "Log-spaced loss evaluations over the first pass (steps 1 to n/B).",
            "type": "integer", "minimum": 0, "maximum": 1000, "default": 40,
        },
        "check_batches": {
            "description": "Independent minibatch gradients K averaged in the unbiasedness check.",
            "type": "integer", "minimum": 2, "maximum": 10000000, "default": 5000,
        },
        "target_gap": {
            "description": "Relative excess loss (L - L*)/L* that counts as reaching the optimum.",
            "type": "number", "exclusiveMinimum": 0, "default": 0.01,
        },
    },
}

FIGURES = ("loss_vs_passes", "loss_vs_seconds", "gradient_check", "slide_loss_vs_passes")
CHECK_CHUNK = 2**20  # indices per chunk of the unbiasedness check (memory)
LEGEND_PT = 8  # legend font size (pt); the paper shows the figures at about their drawn width
SLIDE_FIGSIZE = (3.6, 2.6)  # inches: a 0.6-text-width column of a 16:9 frame (6.0 x 3.4 in), shown at scale ~1
UNBIASED_TEST_LEVEL = 0.01  # family-wise level of the unbiasedness checks (Bonferroni over the runs)


# ----------------------------------------------------------------------------- the problem


def make_data(params, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """X (n, 2) with a column of ones, and y (n,)."""
    rng = np.random.default_rng([seed, 0])
    n = params["n"]
    x = params["x_mean"] + params["x_std"] * rng.standard_normal(n)
    y = params["beta0"] + params["beta1"] * x + params["noise"] * rng.standard_normal(n)
    return np.column_stack([np.ones(n), x]), y


def least_squares(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """beta_hat, L* = L(beta_hat) and H = X^T X / n."""
    n = len(y)
    beta_hat = np.linalg.lstsq(X, y, rcond=None)[0]
    resid = y - X @ beta_hat
    return beta_hat, float(0.5 * np.mean(resid**2)), X.T @ X / n


def loss_gap(beta: np.ndarray, beta_hat: np.ndarray, H: np.ndarray) -> float:
    """L(beta) - L* = (beta - beta_hat)^T H (beta - beta_hat) / 2 (exact for least squares)."""
    d = beta - beta_hat
    return float(0.5 * d @ H @ d)


def full_gradient(X: np.ndarray, y: np.ndarray, beta: np.ndarray) -> np.ndarray:
    return X.T @ (X @ beta - y) / len(y)


def effective_batch(params) -> int:
    b, n = params["batch_size"], params["n"]
    return n if b == 0 or b >= n else b


# ----------------------------------------------------------------------------- unbiasedness


def gradient_check(X: np.ndarray, y: np.ndarray, beta: np.ndarray, batch: int, batches: int, sampling: str,
                   rng: np.random.Generator) -> dict[str, float]:
    """Average ``batches`` independent minibatch gradients at ``beta``; compare with the full gradient."""
    n = len(y)
    per_sample = X * (X @ beta - y)[:, None]  # (n, 2): xt_i (xt_i^T beta - y_i)
    full = per_sample.mean(axis=0)
    if batch >= n:  # full batch: the gradient is not random
        err = float(np.linalg.norm(full_gradient(X, y, beta) - full) / np.linalg.norm(full))
        return {"relative_error": err, "expected_relative_error": 0.0, "chi2": 0.0, "p_value": 1.0,
                "batches": 1.0, "full_gradient_norm": float(np.linalg.norm(full))}
    centred = per_sample - full
    S = centred.T @ centred / n
    cov = S / batch * ((n - batch) / (n - 1) if sampling == "reshuffle" else 1.0)
    total = np.zeros(2)
    rows = max(1, CHECK_CHUNK // batch)
    done = 0
    while done < batches:
        k = min(rows, batches - done)
        if sampling == "with_replacement":
            idx = rng.integers(0, n, size=(k, batch))
        else:  # B distinct indices per batch, independent batches
            idx = np.stack([rng.choice(n, size=batch, replace=False) for _ in range(k)])
        total += per_sample[idx].mean(axis=1).sum(axis=0)
        done += k
    d = total / batches - full
    chi2 = float(batches * d @ np.linalg.solve(cov, d))
    return {
        "relative_error": float(np.linalg.norm(d) / np.linalg.norm(full)),
        "expected_relative_error": float(math.sqrt(np.trace(cov) / batches) / np.linalg.norm(full)),
        "chi2": chi2,
        "p_value": float(math.exp(-chi2 / 2)),  # chi^2 with 2 degrees of freedom
        "batches": float(batches),
        "full_gradient_norm": float(np.linalg.norm(full)),
    }


# ----------------------------------------------------------------------------- theory


def predicted_plateau(X: np.ndarray, y: np.ndarray, lr: float, batch: int, sampling: str) -> float:
    """Stationary mean of L - L* for constant-step SGD (exact with replacement; see the module doc).

    NaN when the second-moment recursion is unstable (no stationary spread); 0 for full batch.
    """
    n = len(y)
    if batch >= n:
        return 0.0
    beta_hat = np.linalg.lstsq(X, y, rcond=None)[0]
    e = y - X @ beta_hat
    H = X.T @ X / n
    s_star = (X * (e**2)[:, None]).T @ X / n
    fpc = (n - batch) / (n - 1) if sampling == "reshuffle" else 1.0
    # Linear maps on vec(P), P symmetric 2x2 (row-major vec): A P B -> kron(A, B^T) vec(P).
    eye = np.eye(2)
    outer = np.einsum("ni,nj->nij", X, X)  # (n, 2, 2): xt xt^T
    m_map = np.einsum("nij,nkl->ikjl", outer, outer).reshape(4, 4) / n  # vec(M(P)) = m_map vec(P)
    hph = np.kron(H, H.T)
    lhs = lr * (np.kron(H, eye) + np.kron(eye, H.T)) - lr**2 * (hph + fpc * (m_map - hph) / batch)
    rhs = lr**2 * fpc * s_star.reshape(4) / batch
    P = np.linalg.solve(lhs, rhs).reshape(2, 2)
    # Unstable when the iteration's second-moment map has spectral radius >= 1.
    step_map = np.eye(4) - lhs
    if np.max(np.abs(np.linalg.eigvals(step_map))) >= 1 or np.min(np.linalg.eigvalsh((P + P.T) / 2)) < 0:
        return float("nan")
    return float(0.5 * np.trace(H @ P))


# ----------------------------------------------------------------------------- training


def eval_steps(steps_per_epoch: int, epochs: int, evals_per_epoch: int, log_evals: int) -> np.ndarray:
    """Step counts at which the loss is evaluated: log-spaced in the first pass, even after; 0 and the end."""
    total = steps_per_epoch * epochs
    even = np.round(np.linspace(0, total, epochs * evals_per_epoch + 1)).astype(int)
    logs = np.round(np.geomspace(1, steps_per_epoch, log_evals)).astype(int) if log_evals else np.zeros(0, int)
    return np.unique(np.concatenate([even, logs, [0, total]]))


def train(X: np.ndarray, y: np.ndarray, params, rng: np.random.Generator, beta_hat: np.ndarray, H: np.ndarray,
          l_star: float) -> tuple[pd.DataFrame, dict]:
    """Constant-step minibatch SGD (full batch: GD); the loss at the evaluation steps, and the clock."""
    n = len(y)
    batch = effective_batch(params)
    full = batch >= n
    epochs = params["full_batch_epochs"] if full else params["epochs"]
    steps_per_epoch = math.ceil(n / batch)
    evals = eval_steps(steps_per_epoch, epochs, params["evals_per_epoch"], params["log_evals"])
    lr = params["lr"]
    beta = np.array(params["init"], dtype=float)
    records = []

    def record(step: int, seconds: float) -> None:
        epoch, within = divmod(step, steps_per_epoch)
        samples = epoch * n + min(within * batch, n)
        gap = loss_gap(beta, beta_hat, H)
        records.append((step, samples / n, seconds, l_star + gap, gap, beta[0], beta[1]))

    record(0, 0.0)
    nxt = 1  # index into evals of the next evaluation
    step, elapsed, diverged_step = 0, 0.0, -1
    tick = time.perf_counter()
    for _ in range(epochs):
        if full:
            xe, ye = X, y
        elif params["sampling"] == "with_replacement":
            idx = rng.integers(0, n, size=n)
            xe, ye = X[idx], y[idx]
        else:
            perm = rng.permutation(n)
            xe, ye = X[perm], y[perm]
        for k in range(steps_per_epoch):
            xb, yb = xe[k * batch:(k + 1) * batch], ye[k * batch:(k + 1) * batch]
            beta = beta - lr * (xb.T @ (xb @ beta - yb)) / len(yb)
            step += 1
            if step == evals[nxt]:
                elapsed += time.perf_counter() - tick
                record(step, elapsed)
                nxt += 1
                if not np.all(np.isfinite(beta)):
                    diverged_step = step
                    break
                tick = time.perf_counter()
        if diverged_step >= 0:
            break
    table = pd.DataFrame(records, columns=["step", "passes", "seconds", "loss", "loss_gap", "beta0", "beta1"])
    info = {"batch": batch, "steps_per_epoch": steps_per_epoch, "epochs_run": epochs, "seconds": elapsed,
            "diverged": diverged_step >= 0, "diverged_epoch": diverged_step, "final_beta0": float(beta[0]),
            "final_beta1": float(beta[1])}
    return table, info


# ----------------------------------------------------------------------------- compute


def _scalar_rows(run_id: str, split: str, values: dict) -> list[tuple]:
    return [(run_id, 0, split, k, float(v)) for k, v in values.items()]


def compute_run(run_id: str, seed: int, params) -> tuple[pd.DataFrame, dict]:
    X, y = make_data(params, seed)
    beta_hat, l_star, H = least_squares(X, y)
    lams = np.linalg.eigvalsh(H)
    batch = effective_batch(params)
    table, info = train(X, y, params, np.random.default_rng([seed, 1]), beta_hat, H, l_star)
    check = gradient_check(X, y, np.array(params["init"], dtype=float), batch, params["check_batches"],
                           params["sampling"], np.random.default_rng([seed, 2]))
    plateau = predicted_plateau(X, y, params["lr"], batch, params["sampling"])
    long = table.melt(id_vars="step", var_name="metric", value_name="value").rename(columns={"step": "epoch"})
    long.insert(0, "run_id", run_id)
    long.insert(2, "split", "train")
    scalars = (
        _scalar_rows(run_id, "ols", {"loss": l_star, "beta0": beta_hat[0], "beta1": beta_hat[1],
                                     "hessian_min_eig": lams[0], "hessian_max_eig": lams[1]})
        + _scalar_rows(run_id, "check", check)
        + _scalar_rows(run_id, "theory", {"plateau_gap": plateau, "gd_rate": float(np.max(np.abs(1 - params["lr"] * lams))),
                                          "batch": batch, "steps_per_epoch": info["steps_per_epoch"]})
    )
    metrics = pd.concat([long[["run_id", "epoch", "split", "metric", "value"]],
                         pd.DataFrame(scalars, columns=["run_id", "epoch", "split", "metric", "value"])],
                        ignore_index=True)
    metrics["epoch"] = metrics["epoch"].astype(int)
    run = {"diverged": info["diverged"], "diverged_epoch": int(info["diverged_epoch"]), "batch": batch,
           "seconds": info["seconds"], "final_beta0": info["final_beta0"], "final_beta1": info["final_beta1"]}
    return metrics, run


def networks(group) -> list:
    """No network: the job computes with NumPy on the host (and asks for no GPU)."""
    return []


def compute(group, data, device: str = "cpu"):
    """Every seed of one batch size: data, least squares, training with the clock, the gradient check."""
    from mathdl.engine import TrainResult
    from mathdl.studies import host_device

    del data  # the data come from the seed; NumPy on the CPU
    used = host_device(device)
    start = time.perf_counter()
    metrics, runs = [], []
    for run in group.runs:
        table, info = compute_run(run.run_id, run.seed, dict(run.params))
        metrics.append(table)
        runs.append({"run_id": run.run_id, "seed": run.seed, **info})
    return TrainResult(metrics=pd.concat(metrics, ignore_index=True), runs=pd.DataFrame(runs), device=used,
                       wall_time_s=time.perf_counter() - start)


# ----------------------------------------------------------------------------- analyze




def batch_label(batch: int, n: int) -> str:
    return f"full ({n})" if batch >= n else str(batch)


def _stays_within(curve: pd.DataFrame, target: float) -> dict[str, float | None]:
    """Passes and seconds from which the excess loss stays at or below the target to the end (None: never)."""
    above = np.flatnonzero(curve["loss_gap"].to_numpy() > target)
    if len(above) and above[-1] == len(curve) - 1:
        return {"passes_to_stay": None, "seconds_to_stay": None}
    first = above[-1] + 1 if len(above) else 0
    return {"passes_to_stay": float(curve["passes"].iloc[first]), "seconds_to_stay": float(curve["seconds"].iloc[first])}


def _mean(values) -> float | None:
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    return float(np.mean(v)) if v else None


# What a run's training measured: NaN for a diverged run (the gradient check and L* stay).
TRAINING_MEASURES = ("final_loss", "final_gap", "final_beta_error", "plateau_gap", "passes_to_target",
                     "seconds_to_target", "passes_to_stay", "seconds_to_stay", "seconds", "passes")


def analyze(tables, experiment) -> dict:
    """Per batch size (mean over seeds): final and plateau losses, passes and seconds to the target, the check."""
    m = tables.metrics
    runs = tables.runs.copy()
    curves = m[m["split"] == "train"].pivot_table(index=["run_id", "epoch"], columns="metric", values="value")
    curves = curves.reset_index().sort_values(["run_id", "epoch"])
    scal = m[m["split"] != "train"].assign(key=lambda d: d["split"] + "." + d["metric"])
    scal = scal.pivot_table(index="run_id", columns="key", values="value")
    per_run = []
    for _, r in runs.iterrows():
        rid = r["run_id"]
        c = curves[curves["run_id"] == rid]
        s = scal.loc[rid]
        l_star = float(s["ols.loss"])
        target = float(r["params.target_gap"]) * l_star
        hit = c[c["loss_gap"] <= target]
        second_half = c[c["passes"] >= c["passes"].max() / 2]
        batch = int(r["batch"])
        plateau = _num(s["theory.plateau_gap"])
        # The transient of the mean, gap_0 (1 - lr mu)^(2k), must be small before the plateau is read.
        k_half = int(second_half["epoch"].min())
        transient = float(c["loss_gap"].iloc[0]) * float(s["theory.gd_rate"]) ** (2 * k_half)
        per_run.append({
            "run_id": rid, "seed": int(r["seed"]), "batch": batch, "n": int(r["params.n"]), "l_star": l_star,
            "beta_hat": [float(s["ols.beta0"]), float(s["ols.beta1"])],
            "final_loss": float(c["loss"].iloc[-1]), "final_gap": float(c["loss_gap"].iloc[-1]),
            "final_beta_error": float(np.hypot(c["beta0"].iloc[-1] - s["ols.beta0"], c["beta1"].iloc[-1] - s["ols.beta1"])
                                      / np.hypot(s["ols.beta0"], s["ols.beta1"])),
            "plateau_gap": float(second_half["loss_gap"].mean()) if batch < int(r["params.n"]) else None,
            "predicted_plateau_gap": plateau,
            "plateau_reached": plateau is not None and plateau > 0 and transient < 0.1 * plateau,
            "passes_to_target": float(hit["passes"].iloc[0]) if len(hit) else None,
            "seconds_to_target": float(hit["seconds"].iloc[0]) if len(hit) else None,
            **_stays_within(c, target),
            "seconds": float(c["seconds"].iloc[-1]), "passes": float(c["passes"].iloc[-1]),
            "steps_per_pass": int(s["theory.steps_per_epoch"]),
            "check_relative_error": float(s["check.relative_error"]),
            "check_expected_relative_error": float(s["check.expected_relative_error"]),
            "check_p_value": float(s["check.p_value"]),
            "check_batches": int(s["check.batches"]),
            "diverged": bool(r["diverged"]),
        })
        if per_run[-1]["diverged"] or not math.isfinite(per_run[-1]["final_loss"]):
            # A diverged run (its last recorded step too) enters no mean of what training measured.
            per_run[-1].update({k: math.nan for k in TRAINING_MEASURES}, diverged=True)
    df = pd.DataFrame(per_run)
    batches = []
    for batch, g in df.groupby("batch", sort=True):
        n = int(g["n"].iloc[0])
        reached = g["passes_to_target"].notna()
        entry = {
            "batch_size": int(batch), "label": batch_label(int(batch), n), "full_batch": bool(batch >= n),
            "n_seeds": int(len(g)), "steps_per_pass": int(g["steps_per_pass"].iloc[0]),
            "final_loss": _mean(g["final_loss"]), "final_gap": _mean(g["final_gap"]),
            "final_relative_gap": _mean(g["final_gap"] / g["l_star"]),
            "plateau_gap": _mean(g["plateau_gap"]), "predicted_plateau_gap": _mean(g["predicted_plateau_gap"]),
            "plateau_reached": bool(g["plateau_reached"].all()),
            "passes_to_target": _mean(g.loc[reached, "passes_to_target"]),
            "seconds_to_target": _mean(g.loc[reached, "seconds_to_target"]),
            "passes_to_stay": _mean(g["passes_to_stay"]) if g["passes_to_stay"].notna().all() else None,
            "seconds_to_stay": _mean(g["seconds_to_stay"]) if g["seconds_to_stay"].notna().all() else None,
            "seeds_staying": int(g["passes_to_stay"].notna().sum()),
            "seeds_reaching_target": int(reached.sum()),
            "passes": _mean(g["passes"]), "seconds": _mean(g["seconds"]),
            "seconds_per_pass": _mean(g["seconds"] / g["passes"]),
            "final_beta_error": _mean(g["final_beta_error"]),
            "unbiased_relative_error": float(g["check_relative_error"].max()),
            "unbiased_expected_relative_error": _mean(g["check_expected_relative_error"]),
            "unbiased_min_p_value": float(g["check_p_value"].min()),
            "unbiased_max_error_ratio": (float((g["check_relative_error"] / g["check_expected_relative_error"]).max())
                                         if batch < n else None),
            "check_batches": int(g["check_batches"].iloc[0]),
            "n_diverged": int(g["diverged"].sum()),
        }
        if entry["plateau_reached"] and entry["predicted_plateau_gap"]:
            from mathdl.tables import mean_ci

            ratio, lo, hi = mean_ci(g["plateau_gap"] / g["predicted_plateau_gap"], CI_LEVEL)
            if math.isfinite(ratio):  # not where every seed diverged
                entry["plateau_ratio"] = ratio
                entry["plateau_ratio_ci"] = [_num(lo), _num(hi)]
        batches.append(entry)
    stochastic = [b for b in batches if not b["full_batch"]]
    largest = max(stochastic, key=lambda b: b["unbiased_relative_error"], default=None)
    full = next((b for b in batches if b["full_batch"]), None)
    ratios = [b["plateau_ratio"] for b in batches if "plateau_ratio" in b]
    first_hit = min((b for b in batches if b["passes_to_target"] is not None), key=lambda b: b["passes_to_target"],
                    default=None)
    staying = [b for b in batches if b["passes_to_stay"] is not None]
    fastest_passes = min(staying, key=lambda b: b["passes_to_stay"], default=None)
    fastest_seconds = min(staying, key=lambda b: b["seconds_to_stay"], default=None)
    summary: dict[str, Any] = {
        "n": int(df["n"].iloc[0]),
        "lr": float(runs["params.lr"].iloc[0]),
        "sampling": str(runs["params.sampling"].iloc[0]),
        "target_gap": float(runs["params.target_gap"].iloc[0]),
        "n_seeds": int(df["seed"].nunique()),
        "n_runs": int(len(df)),
        "n_diverged": int(df["diverged"].sum()),
        "ols_loss": _mean(df.groupby("seed")["l_star"].first()),
        "ols_beta": [float(np.mean([b[i] for b in df.groupby("seed")["beta_hat"].first()])) for i in range(2)],
        "true_beta": [float(runs["params.beta0"].iloc[0]), float(runs["params.beta1"].iloc[0])],
        "batch_sizes": batches,
        "final_loss": {b["label"]: b["final_loss"] for b in batches},
        "passes_to_target": {b["label"]: b["passes_to_target"] for b in batches},
        "seconds_to_target": {b["label"]: b["seconds_to_target"] for b in batches},
        "passes_to_stay": {b["label"]: b["passes_to_stay"] for b in batches},
        "seconds_to_stay": {b["label"]: b["seconds_to_stay"] for b in batches},
        "first_hit": first_hit["label"] if first_hit else None,
        "first_hit_passes": first_hit["passes_to_target"] if first_hit else None,
        "first_hit_batch_size": first_hit["batch_size"] if first_hit else None,
        "first_hit_stays": first_hit is not None and first_hit["passes_to_stay"] is not None,
        "staying_batch_sizes": [b["batch_size"] for b in staying],
        # the largest relative error of the stochastic gradient check over batch sizes and seeds,
        # and the expected Monte-Carlo size of the error at that batch size
        "unbiased_relative_error": largest["unbiased_relative_error"] if largest else None,
        "unbiased_expected_relative_error": largest["unbiased_expected_relative_error"] if largest else None,
        "unbiased_worst_batch_size": largest["batch_size"] if largest else None,
        "unbiased_max_error_ratio": (max(b["unbiased_max_error_ratio"] for b in stochastic) if stochastic else None),
        "unbiased_min_p_value": min((b["unbiased_min_p_value"] for b in stochastic), default=None),
        # one check per stochastic run: the smallest p-value, Bonferroni-adjusted for their number,
        # against the test level decides whether a bias is detected
        "unbiased_n_checks": sum(b["n_seeds"] for b in stochastic),
        "unbiased_test_level": UNBIASED_TEST_LEVEL,
        "fastest_in_passes": fastest_passes["label"] if fastest_passes else None,
        "fastest_in_passes_passes": fastest_passes["passes_to_stay"] if fastest_passes else None,
        "fastest_in_seconds": fastest_seconds["label"] if fastest_seconds else None,
        "fastest_in_seconds_seconds": fastest_seconds["seconds_to_stay"] if fastest_seconds else None,
        "plateau_batch_sizes": [b["batch_size"] for b in batches if "plateau_ratio" in b],
        "gd_final_beta_error": full["final_beta_error"] if full else None,
        "gd_final_relative_gap": full["final_relative_gap"] if full else None,
        "gd_passes_to_target": full["passes_to_target"] if full else None,
        "plateau_ratio_min": min(ratios) if ratios else None,
        "plateau_ratio_max": max(ratios) if ratios else None,
    }
    adjusted = (min(1.0, summary["unbiased_min_p_value"] * summary["unbiased_n_checks"])
                if summary["unbiased_min_p_value"] is not None else None)
    summary["unbiased_adjusted_p_value"] = adjusted
    summary["unbiased_bias_detected"] = adjusted is not None and adjusted < UNBIASED_TEST_LEVEL
    return summary


# ----------------------------------------------------------------------------- figures


def _curves(tables) -> pd.DataFrame:
    m = tables.metrics
    c = m[m["split"] == "train"].pivot_table(index=["run_id", "epoch"], columns="metric", values="value").reset_index()
    runs = tables.runs[["run_id", "seed", "batch", "params.n"]]
    c = c.merge(runs, on="run_id")
    c["batch size"] = [batch_label(int(b), int(n)) for b, n in zip(c["batch"], c["params.n"])]
    return c


def figures(tables, summary, experiment, plot, outdir: Path) -> list[str]:
    """Loss minus optimum against passes and against seconds (log-log); the gradient check; and
    slide_loss_vs_passes, the first redrawn at the size a slide shows it."""
    import dataclasses

    import seaborn as sns

    from mathdl import plots

    plots.setup(plot)
    c = _curves(tables)
    order = [b["label"] for b in summary["batch_sizes"]]
    colours = dict(zip(order, sns.color_palette(plot.palette, len(order))))
    names = []
    for x, name in (("passes", "loss_vs_passes"), ("seconds", "loss_vs_seconds")):
        names.append(plots.save(_loss_figure(c, summary, x, plot, colours), outdir, name, plot))

    # the unbiasedness check: measured relative error and its Monte-Carlo size, per batch size
    m = tables.metrics
    chk = m[m["split"] == "check"].pivot_table(index="run_id", columns="metric", values="value").reset_index()
    chk = chk.merge(tables.runs[["run_id", "seed", "batch", "params.n"]], on="run_id")
    chk = chk[chk["batch"] < chk["params.n"]]
    fig, (ax,) = plots.new_figure(plot)
    if len(chk):
        ax.plot(chk["batch"], chk["relative_error"], "o", color=colours[order[0]], alpha=0.8,
                label="measured (one per seed)")
        exp = chk.groupby("batch")["expected_relative_error"].mean()
        ax.plot(exp.index, exp.values, "k--", linewidth=1, label="expected Monte-Carlo size")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend(fontsize=LEGEND_PT)
    ax.set_xlabel("batch size $B$")
    ax.set_ylabel(r"$\|\bar g-\nabla L\|/\|\nabla L\|$")
    names.append(plots.save(fig, outdir, "gradient_check", plot))

    slide = dataclasses.replace(plot, width=SLIDE_FIGSIZE[0], height=SLIDE_FIGSIZE[1])
    names.append(plots.save(_loss_figure(c, summary, "passes", slide, colours), outdir, "slide_loss_vs_passes", plot))
    return names


def _loss_figure(c: pd.DataFrame, summary, x: str, plot, colours):
    """L - L* against passes (mean over seeds, with the predicted plateaus) or seconds (one line per seed)."""
    from mathdl import plots

    order = [b["label"] for b in summary["batch_sizes"]]
    fig, (ax,) = plots.new_figure(plot)
    shown = c[(c[x] > 0) & (c["loss_gap"] > 0)]
    if x == "passes":  # the same evaluation grid for every seed: the mean over seeds
        mean = shown.groupby(["batch size", "epoch"], sort=False)[["passes", "loss_gap"]].mean().reset_index()
        for label in order:
            d = mean[mean["batch size"] == label]
            ax.plot(d["passes"], d["loss_gap"], color=colours[label], linewidth=1.2, label=label)
        for b in summary["batch_sizes"]:
            if b["predicted_plateau_gap"]:
                ax.axhline(b["predicted_plateau_gap"], color=colours[b["label"]], linestyle="--", linewidth=0.8)
    else:  # clocks differ between seeds: one line each
        for label in order:
            for i, (_, d) in enumerate(shown[shown["batch size"] == label].groupby("seed")):
                ax.plot(d["seconds"], d["loss_gap"], color=colours[label], linewidth=1.0, alpha=0.8,
                        label=label if i == 0 else None)
    ax.axhline(summary["target_gap"] * summary["ols_loss"], color="black", linestyle=":", linewidth=1,
               label=f"{summary['target_gap']:.0%} of $L^\\star$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("passes over the data" if x == "passes" else "wall time (s)")
    ax.set_ylabel(r"$L(\beta)-L^\star$")
    ax.legend(title="batch size", fontsize=LEGEND_PT, title_fontsize=LEGEND_PT, ncols=2)
    return fig
