"""Random labels: a network fits any labelling, and generalizes only when the labels have structure.

Zhang et al. (2017) replaced a fraction p of the training labels of CIFAR-10 and ImageNet by
uniformly random labels and found that the same networks, with the same optimizer, still reach
zero training error at every p, only more slowly, while their test accuracy falls from that of
the clean labels to chance at p = 1. A capacity measure of the hypothesis class alone (VC
dimension, Rademacher complexity) cannot tell the two situations apart.

Here: scikit-learn's digits (8x8 images, K = 10 classes; task ``digits``), a fraction
p = ``task.label_noise`` of the training labels redrawn uniformly from the K classes (a redrawn
label keeps its value with probability 1/K, as in Zhang et al.; test labels stay clean), one
native sweep over p, every p one group of runs (seeds = initializations) trained by the engine
until the training set is fitted. Per run: the final train and test accuracy (last epoch, no
model selection), and the epochs to fit, the first recorded epoch at which no training point
is misclassified (NaN if never; the engine records the epochs of ``train.eval_points``, every
epoch when eval_points >= epochs ln(epochs) + 2, and the summary states the resolution).

Beside the networks, the data-dependent complexity of Arora, Du, Hu, Li and Wang (2019,
Theorem 5.1): for a two-layer ReLU network f(x) = m^{-1/2} sum_r a_r relu(w_r . x) with the first
layer trained by gradient descent from a small random initialization, on unit-norm inputs,

    H^inf_ij = E_{w ~ N(0, I)} [x_i . x_j 1{w . x_i >= 0, w . x_j >= 0}]
             = x_i . x_j (pi - arccos(x_i . x_j)) / (2 pi),

and the population loss (a 1-Lipschitz loss in [0, 1]) is at most sqrt(2 y^T (H^inf)^{-1} y / n)
plus O(sqrt(log(n / (lambda_0 delta)) / n)), lambda_0 = lambda_min(H^inf). Since
y^T H^{-1} y = sum_i (v_i . y)^2 / lambda_i over the eigenpairs of H, labels aligned with the top
eigenvectors (smooth in the input) give a small value; random labels spread over all of them,
including the small eigenvalues, and give a large one. The same projections set the speed of
gradient descent (their Theorem 4.1: ||y - u(k)||^2 ~ sum_i (1 - eta lambda_i)^{2k} (v_i . y)^2),
which is why random labels also take longer to fit.

Convention here: the inputs are the task's (standardized) features, each scaled to unit norm;
the K output columns are treated as K independent scalar problems (with a_r fixed and
independent across outputs the multi-output kernel is H^inf (x) I_K), with centred one-hot
targets Y_c = Y - 1/K, so the complexity is tr(Y_c^T H^-1 Y_c) = sum_k y_c,k^T H^-1 y_c,k, in
float64 through a Cholesky factorization (no explicit inverse). For K = 2 it is half of Arora
et al.'s y^T H^-1 y with y = +-1. The one-hot value tr(Y^T H^-1 Y) = tr(Y_c^T H^-1 Y_c) +
1^T H^-1 1 / K (the cross term vanishes since Y_c 1_K = 0) differs by a label-independent
constant; it is recorded too, with lambda_min(H^inf). The summary gives y^T H^-1 y / n per p and
its ratio at p = 1 over p = 0 (``arora_ratio``).

Replicates are the seeds (initializations and minibatch orders). Sweeping ``task.seed`` as well
repeats everything on other draws of the images and of the random labels; the intervals of the
ratios then cover the data draw too (with one draw, the Arora quantities have no interval).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mathdl.tables import CI_LEVEL, interval_side, json_number, mean_ci_dict

NOISE_KEY = "task.label_noise"
# Sweep keys this study understands: the label-noise level, and the data draw as a replicate.
SWEEPABLE = (NOISE_KEY, "task.seed")

DEFAULTS: dict[str, Any] = {
    "description": (
        "Can a network that generalizes on the real digit labels also fit labels that are partly or wholly "
        "random, how much longer does it take, what happens to its test accuracy, and does a data-dependent "
        "complexity tell the two apart?"
    ),
    "seeds": [0, 1, 2],
    # 500 training and 500 test digits of the 1,797; no validation split (nothing is selected).
    "task": {"name": "digits", "n_train": 500, "n_val": 0, "n_test": 500, "seed": 0, "standardize": True},
    "model": {"depth": 1, "width": 512, "activation": "relu", "init": "pytorch"},
    # Adam fits even p = 1 in about 50 epochs at these sizes; 100 epochs leave a margin.
    # eval_points >= epochs ln(epochs) + 2 records every epoch, the resolution of epochs-to-fit.
    "train": {"loss": "cross_entropy", "optimizer": "adam", "lr": 0.001, "batch_size": 32, "epochs": 100,
              "eval_points": 1000},
    "sweep": {NOISE_KEY: [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]},
    "plot": {"logx": False},
}

FIGURES = ("accuracy_vs_corruption", "train_error_curves", "fit_time_and_complexity")
SELECTION = "final epoch (no model selection; the validation split is not used)"
DATA_METRICS = ("arora_complexity", "arora_complexity_onehot", "gram_min_eigenvalue", "n_classes")



# ----------------------------------------------------------------------------- the mathematics


def arora_gram(x: np.ndarray) -> np.ndarray:
    """H^inf of Arora et al. (2019) on the rows of x, each first scaled to unit norm:
    H_ij = g_ij (pi - arccos g_ij) / (2 pi), g_ij = x_i . x_j / (|x_i| |x_j|); float64 (n, n)."""
    x = np.asarray(x, dtype=np.float64)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    g = np.clip(u @ u.T, -1.0, 1.0)  # rounding can leave |g| a hair above 1
    # arccos has slope -1/sqrt(1 - g^2): a rounding error of 1e-16 in g_ii = 1 would cost 1e-8 in H_ii = 1/2.
    np.fill_diagonal(g, 1.0)
    return g * (math.pi - np.arccos(g)) / (2 * math.pi)


def arora_complexity(x: np.ndarray, labels: np.ndarray, n_classes: int) -> dict[str, float]:
    """tr(Y_c^T H^-1 Y_c) with centred one-hot targets Y_c = onehot(labels) - 1/K (``complexity``),
    tr(Y^T H^-1 Y) with one-hot targets (``complexity_onehot``), and lambda_min(H) (``min_eigenvalue``),
    H = ``arora_gram(x)``. Both complexities are NaN when H is singular up to rounding (two parallel inputs)."""
    import scipy.linalg

    h = arora_gram(x)
    y = np.eye(n_classes)[np.asarray(labels, dtype=np.int64)]  # (n, K)
    y_centred = y - 1.0 / n_classes
    eigenvalues = scipy.linalg.eigvalsh(h)  # ascending
    min_eigenvalue = float(eigenvalues[0])
    singular = {"complexity": math.nan, "complexity_onehot": math.nan, "min_eigenvalue": min_eigenvalue}
    # numpy.linalg.matrix_rank's tolerance: below it H is singular up to rounding.
    if min_eigenvalue <= len(h) * np.finfo(np.float64).eps * eigenvalues[-1]:
        return singular
    try:
        factor = scipy.linalg.cho_factor(h, lower=True)
    except np.linalg.LinAlgError:
        return singular
    return {
        "complexity": float(np.sum(y_centred * scipy.linalg.cho_solve(factor, y_centred))),
        "complexity_onehot": float(np.sum(y * scipy.linalg.cho_solve(factor, y))),
        "min_eigenvalue": min_eigenvalue,
    }


def epochs_to_fit(epochs, errors, n_train: int) -> tuple[float, float]:
    """The first recorded epoch at which no training point is misclassified (error < 1/(2n)), and the
    recorded epoch before it (the fit happened in between); (NaN, NaN) if the run never fits."""
    epochs, errors = np.asarray(epochs, dtype=float), np.asarray(errors, dtype=float)
    order = np.argsort(epochs, kind="stable")
    epochs, errors = epochs[order], errors[order]
    hits = np.flatnonzero(errors < 0.5 / n_train)  # NaN (a diverged run) never counts
    if len(hits) == 0:
        return math.nan, math.nan
    i = hits[0]
    return float(epochs[i]), float(epochs[i - 1] if i > 0 else epochs[i])


# ----------------------------------------------------------------------------- compute


def compute(group, data, device):
    """Train the group's runs (one label-noise level, all seeds batched) with the engine, and add the
    Arora et al. complexity of this group's training set to every run (split train, epoch 0)."""
    from mathdl import engine

    start = time.perf_counter()
    if data.kind != "classification":
        raise ValueError("study random_labels needs a classification task (random labels), e.g. task.name: digits")
    result = engine.train(group, data, device)
    arora = arora_complexity(*data.rows("train"), data.n_outputs)
    values = {"arora_complexity": arora["complexity"], "arora_complexity_onehot": arora["complexity_onehot"],
              "gram_min_eigenvalue": arora["min_eigenvalue"], "n_classes": float(data.n_outputs)}
    extra = pd.DataFrame([(r.run_id, 0, "train", k, v) for r in group.runs for k, v in values.items()],
                         columns=["run_id", "epoch", "split", "metric", "value"])
    metrics = pd.concat([result.metrics, extra.astype(result.metrics.dtypes.to_dict())], ignore_index=True)
    return engine.TrainResult(metrics, result.runs, result.device, time.perf_counter() - start, result.params)


# ----------------------------------------------------------------------------- analyze



def _or_nan(value) -> float:
    return math.nan if value is None else float(value)


def run_table(tables) -> pd.DataFrame:
    """One row per run: label noise p, seed, data seed, final train and test accuracy, epochs to fit
    (and the recorded epoch before), and the Arora quantities of its training set."""
    m, runs = tables.metrics, tables.runs.set_index("run_id")
    rows = []
    for run_id, df in m.groupby("run_id", sort=False):
        run = runs.loc[run_id]
        n_train = int(run["task.n_train"])
        last = df[df["epoch"] == df["epoch"].max()]
        final = {(s, k): v for s, k, v in zip(last["split"], last["metric"], last["value"])}
        data = df[df["metric"].isin(DATA_METRICS)].set_index("metric")["value"]
        err = df[(df["split"] == "train") & (df["metric"] == "error")]
        fit, before = epochs_to_fit(err["epoch"], err["value"], n_train)
        # A run that diverged (at any epoch, the last recorded one too) or whose final training loss is
        # not finite failed: its accuracies enter no mean, and it counts as one that did not fit.
        failed = bool(run["diverged"]) or not np.isfinite(final.get(("train", "loss"), math.nan))
        if failed:
            fit = before = math.nan
        rows.append({
            "run_id": run_id,
            "label_noise": float(run.get(NOISE_KEY, 0.0)),
            "seed": int(run["seed"]),
            "data_seed": int(run.get("task.seed", 0)),
            "diverged": failed,
            "n_train": n_train,
            "train_accuracy": math.nan if failed else 1.0 - final.get(("train", "error"), math.nan),
            "test_accuracy": math.nan if failed else 1.0 - final.get(("test", "error"), math.nan),
            "epochs_to_fit": fit,
            "fit_gap": fit - before,
            "arora_complexity": float(data.get("arora_complexity", math.nan)),
            "arora_complexity_onehot": float(data.get("arora_complexity_onehot", math.nan)),
            "gram_min_eigenvalue": float(data.get("gram_min_eigenvalue", math.nan)),
            "n_classes": float(data.get("n_classes", math.nan)),
        })
    return pd.DataFrame(rows).sort_values(["label_noise", "data_seed", "seed"], kind="stable").reset_index(drop=True)


def _spearman(x, y) -> float:
    from scipy import stats

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return math.nan
    return float(stats.spearmanr(x[ok], y[ok])[0])


def _per_replicate(r: pd.DataFrame, column: str) -> pd.DataFrame:
    """column as a (replicate = (data seed, seed)) x label-noise table."""
    return r.pivot_table(index=["data_seed", "seed"], columns="label_noise", values=column, dropna=False)


def _data_draws(r: pd.DataFrame) -> pd.DataFrame:
    """The data-dependent quantities, once per (label noise, data seed): identical for all runs of a group."""
    cols = ["arora_complexity", "arora_complexity_onehot", "gram_min_eigenvalue", "n_train"]
    return r.groupby(["label_noise", "data_seed"], sort=True)[cols].first().reset_index()


def analyze(tables, experiment) -> dict:
    """Per p: final accuracies, epochs to fit and Arora's complexity / n; the issue's headline numbers."""
    r = run_table(tables)
    noise = sorted(r["label_noise"].unique())
    draws = _data_draws(r)
    draws["complexity_per_n"] = draws["arora_complexity"] / draws["n_train"]
    draws["bound"] = np.sqrt(2 * draws["complexity_per_n"])
    points = []
    for p in noise:
        rp, dp = r[r["label_noise"] == p], draws[draws["label_noise"] == p]
        points.append({
            "label_noise": float(p),
            "n_runs": int(len(rp)),
            "n_diverged": int(rp["diverged"].sum()),
            "train_accuracy": mean_ci_dict(rp["train_accuracy"]),
            "test_accuracy": mean_ci_dict(rp["test_accuracy"]),
            "epochs_to_fit": mean_ci_dict(rp["epochs_to_fit"]),  # over the runs that fitted
            "fitted_fraction": float(np.isfinite(rp["epochs_to_fit"]).mean()),
            "arora_complexity_per_n": mean_ci_dict(dp["complexity_per_n"]),
            "arora_complexity_onehot_per_n": mean_ci_dict(dp["arora_complexity_onehot"] / dp["n_train"]),
            "arora_bound": mean_ci_dict(dp["bound"]),
            "gram_min_eigenvalue": mean_ci_dict(dp["gram_min_eigenvalue"]),
        })
    by_p = {pt["label_noise"]: pt for pt in points}
    clean, full = by_p.get(0.0), by_p.get(1.0)

    test = _per_replicate(r, "test_accuracy")
    fit = _per_replicate(r, "epochs_to_fit")
    fit_ratio = fit[1.0] / fit[0.0] if clean and full else pd.Series(dtype=float)
    arora = draws.pivot_table(index="data_seed", columns="label_noise", values="complexity_per_n", dropna=False)
    arora_ratio = arora[1.0] / arora[0.0] if clean and full else pd.Series(dtype=float)
    train_means = [pt["train_accuracy"]["mean"] for pt in points if pt["train_accuracy"]["mean"] is not None]
    # The slowest fit: the level with the most runs that never fitted, then the most epochs to fit.
    def fit_slowness(pt):
        mean = pt["epochs_to_fit"]["mean"]
        return -pt["fitted_fraction"], -math.inf if mean is None else mean

    slowest = max(points, key=fit_slowness) if points else None
    gaps = r["fit_gap"][np.isfinite(r["fit_gap"])]
    n_classes = r["n_classes"].dropna()
    chance = 1.0 / n_classes.iloc[0] if len(n_classes) else None
    bounds = [pt["arora_bound"]["mean"] for pt in points if pt["arora_bound"]["mean"] is not None]
    test_means = [pt["test_accuracy"]["mean"] for pt in points if pt["test_accuracy"]["mean"] is not None]
    fit_ratio_ci, arora_ratio_ci = mean_ci_dict(fit_ratio), mean_ci_dict(arora_ratio)
    train, model, task = experiment.train, experiment.model, experiment.task
    return {
        "confidence": CI_LEVEL,
        "selection": SELECTION,
        "n_runs": int(len(r)),
        "n_seeds": int(r["seed"].nunique()),
        "n_data_draws": int(r["data_seed"].nunique()),
        "n_diverged": int(r["diverged"].sum()),
        "label_noise": [float(p) for p in noise],
        "n_train": int(task.n_train),
        "n_test": int(task.n_test),
        "task": task.name,
        "standardize": bool(task.standardize),
        "n_classes": int(n_classes.iloc[0]) if len(n_classes) else None,
        "chance_accuracy": chance,
        "depth": model.depth,
        "width": model.width,
        "activation": model.activation,
        "optimizer": train.optimizer,
        "loss": train.loss,
        "lr": train.lr,
        "batch_size": train.batch_size,
        "epochs": train.epochs,
        # epochs to fit lie in (recorded epoch before, recorded epoch]: the widest such gap.
        "fit_epoch_resolution": int(gaps.max()) if len(gaps) else None,
        "points": points,
        # The keys.
        "train_accuracy_min": json_number(min(train_means)) if train_means else None,
        "test_accuracy_full_corruption": full["test_accuracy"] if full else None,
        # At p = 1 against chance: 1 (the interval lies above it), -1 (below), 0 (it holds chance).
        "test_accuracy_full_corruption_vs_chance": interval_side(full["test_accuracy"], chance) if full else None,
        "spearman_test_accuracy_vs_corruption": json_number(
            _spearman(noise, [_or_nan(pt["test_accuracy"]["mean"]) for pt in points])),
        # 1 where the mean test accuracy falls at every step of p (over the levels with a finite mean).
        "test_accuracy_falls_at_every_step": int(len(test_means) > 1 and bool(np.all(np.diff(test_means) < 0))),
        "fit_time_ratio": fit_ratio_ci,
        "arora_ratio": arora_ratio_ci,
        # Each ratio against 1: 1 (its interval lies above), -1 (below), 0 (it holds 1); the mean without one.
        "fit_time_ratio_vs_one": interval_side(fit_ratio_ci, 1.0),
        "arora_ratio_vs_one": interval_side(arora_ratio_ci, 1.0),
        # Beside them.
        "train_accuracy_min_run": json_number(r["train_accuracy"].min()),
        # 1 where every run, at every p, ends with no misclassified training point (a diverged run does not).
        "every_run_fits_at_final_epoch": int(bool(len(r)) and bool((r["train_accuracy"] == 1.0).all())),
        "fitted_fraction_min": min(pt["fitted_fraction"] for pt in points),
        "test_accuracy_clean": clean["test_accuracy"] if clean else None,
        "spearman_per_replicate": mean_ci_dict([_spearman(list(test.columns), row) for _, row in test.iterrows()]),
        "epochs_to_fit_clean": clean["epochs_to_fit"] if clean else None,
        "epochs_to_fit_full_corruption": full["epochs_to_fit"] if full else None,
        "slowest_fit_label_noise": slowest["label_noise"] if slowest else None,
        "slowest_fit_epochs": slowest["epochs_to_fit"]["mean"] if slowest else None,
        "slowest_fit_fitted_fraction": slowest["fitted_fraction"] if slowest else None,
        "arora_complexity_per_n_clean": clean["arora_complexity_per_n"] if clean else None,
        "arora_complexity_per_n_full_corruption": full["arora_complexity_per_n"] if full else None,
        # Arora et al.'s leading term sqrt(2 y^T H^-1 y / n) at its smallest over p (of no use for a
        # loss in [0, 1] where it is at least 1).
        "arora_bound_min": json_number(min(bounds)) if bounds else None,
        "spearman_arora_vs_test_accuracy": json_number(_spearman(
            [_or_nan(pt["arora_complexity_per_n"]["mean"]) for pt in points],
            [_or_nan(pt["test_accuracy"]["mean"]) for pt in points])),
    }


# ----------------------------------------------------------------------------- figures


def figures(tables, summary, experiment, plot, outdir: Path) -> list[str]:
    """accuracy_vs_corruption: final train and test accuracy against p, with chance;
    train_error_curves: training error against epochs, one curve per p;
    fit_time_and_complexity: epochs to fit and y^T H^-1 y / n against p."""
    import seaborn as sns

    from mathdl import plots

    plots.setup(plot)
    errorbar = ("ci", round(100 * plot.confidence))
    r = run_table(tables)

    acc = r.melt(id_vars=["run_id", "label_noise"], value_vars=["train_accuracy", "test_accuracy"],
                 var_name="split", value_name="accuracy")
    acc["split"] = acc["split"].str.removesuffix("_accuracy")
    fig, (ax,) = plots.new_figure(plot)
    sns.lineplot(data=acc, x="label_noise", y="accuracy", hue="split", marker="o", errorbar=errorbar, ax=ax)
    if summary["chance_accuracy"] is not None:
        ax.axhline(summary["chance_accuracy"], color="k", ls="--", lw=1, label="chance")
    ax.set(xlabel="fraction $p$ of random training labels", ylabel="accuracy (final epoch)", ylim=(0, 1.03))
    ax.legend(fontsize="small")
    names = [plots.save(fig, outdir, "accuracy_vs_corruption", plot)]

    noise_of = r.set_index("run_id")["label_noise"]
    m = tables.metrics
    curves = m[(m["split"] == "train") & (m["metric"] == "error")].copy()
    curves["p"] = curves["run_id"].map(noise_of)
    fig, (ax,) = plots.new_figure(plot)
    sns.lineplot(data=curves, x="epoch", y="value", hue="p", palette="viridis", errorbar=None, ax=ax,
                 legend="full" if curves["p"].nunique() <= 10 else "auto")
    ax.set(xlabel="epoch", ylabel="training error (on the training labels)")
    ax.legend(title="$p$", fontsize="small")
    names.append(plots.save(fig, outdir, "train_error_curves", plot))

    fig, (ax1, ax2) = plots.new_figure(plot, ncols=2)
    sns.lineplot(data=r, x="label_noise", y="epochs_to_fit", marker="o", errorbar=errorbar, ax=ax1)
    ax1.set(xlabel="fraction $p$ of random labels", ylabel="epochs to fit (train error 0)")
    draws = _data_draws(r)
    draws["complexity_per_n"] = draws["arora_complexity"] / draws["n_train"]
    sns.lineplot(data=draws, x="label_noise", y="complexity_per_n", marker="o", errorbar=errorbar, ax=ax2)
    ax2.set(xlabel="fraction $p$ of random labels", ylabel=r"$y^\top (H^\infty)^{-1} y / n$")
    names.append(plots.save(fig, outdir, "fit_time_and_complexity", plot))
    return names


# ----------------------------------------------------------------------------- words (templates/)


def context(experiment, summary) -> dict:
    """The table of the templates: one row per fraction p of random labels."""
    from mathdl.report import fmt

    rows = [[fmt(pt["label_noise"]), fmt(pt["train_accuracy"]["mean"]), fmt(pt["test_accuracy"]["mean"]),
             fmt(pt["epochs_to_fit"]["mean"]), fmt(pt["fitted_fraction"]), fmt(pt["arora_complexity_per_n"]["mean"])]
            for pt in summary["points"]]
    return {"header": ["$p$", "train acc.", "test acc.", "epochs to fit", "fitted", "$y^\\top H^{-1}y/n$"],
            "rows": rows}
