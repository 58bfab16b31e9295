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

from mathdl.report import (
    OPTIMIZER_NAMES, ReportPiece, booktabs_table, data_set_name, escape, figure_tex, fmt, named,
    slug,
)
from mathdl.tables import CI_LEVEL, json_number, mean_ci_dict

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
    arora = arora_complexity(data.x_train, data.y_train, data.n_outputs)
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
        rows.append({
            "run_id": run_id,
            "label_noise": float(run.get(NOISE_KEY, 0.0)),
            "seed": int(run["seed"]),
            "data_seed": int(run.get("task.seed", 0)),
            "diverged": bool(run["diverged"]),
            "n_train": n_train,
            "train_accuracy": 1.0 - final.get(("train", "error"), math.nan),
            "test_accuracy": 1.0 - final.get(("test", "error"), math.nan),
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
        "chance_accuracy": 1.0 / n_classes.iloc[0] if len(n_classes) else None,
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
        "spearman_test_accuracy_vs_corruption": json_number(
            _spearman(noise, [_or_nan(pt["test_accuracy"]["mean"]) for pt in points])),
        "fit_time_ratio": mean_ci_dict(fit_ratio),
        "arora_ratio": mean_ci_dict(arora_ratio),
        # Beside them.
        "train_accuracy_min_run": json_number(r["train_accuracy"].min()),
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


# ----------------------------------------------------------------------------- report


def _mean(entry: dict | None):
    return None if entry is None else entry["mean"]


def report(experiment, summary, figure_dir: str, prefix: str) -> ReportPiece:
    """The subsection (question, setup, theory, figures, table) and one slide; numbers as macros."""
    s, p = slug(experiment.name), prefix
    level = round(100 * summary["confidence"])
    macros = {
        f"{p}NumSeeds": fmt(summary["n_seeds"]),
        f"{p}NumTrain": fmt(summary["n_train"]),
        f"{p}NumTest": fmt(summary["n_test"]),
        f"{p}Width": fmt(summary["width"]),
        f"{p}Depth": fmt(summary["depth"]),
        f"{p}Epochs": fmt(summary["epochs"]),
        f"{p}BatchSize": fmt(summary["batch_size"]),
        f"{p}LearningRate": fmt(summary["lr"]),
        f"{p}NumDiverged": fmt(summary["n_diverged"]),
        f"{p}FitResolution": fmt(summary["fit_epoch_resolution"]),
        f"{p}Chance": fmt(summary["chance_accuracy"]),
        f"{p}TrainAccuracyMin": fmt(summary["train_accuracy_min"]),
        f"{p}FittedFractionMin": fmt(summary["fitted_fraction_min"]),
        f"{p}TestAccuracyClean": fmt(_mean(summary["test_accuracy_clean"])),
        f"{p}TestAccuracyFull": fmt(_mean(summary["test_accuracy_full_corruption"])),
        f"{p}Spearman": fmt(summary["spearman_test_accuracy_vs_corruption"]),
        f"{p}FitEpochsClean": fmt(_mean(summary["epochs_to_fit_clean"])),
        f"{p}FitEpochsFull": fmt(_mean(summary["epochs_to_fit_full_corruption"])),
        f"{p}FitTimeRatio": fmt(summary["fit_time_ratio"]["mean"]),
        f"{p}FitTimeRatioLow": fmt(summary["fit_time_ratio"]["ci_low"]),
        f"{p}FitTimeRatioHigh": fmt(summary["fit_time_ratio"]["ci_high"]),
        f"{p}SlowestFitNoise": fmt(summary["slowest_fit_label_noise"]),
        f"{p}SlowestFitEpochs": fmt(summary["slowest_fit_epochs"]),
        f"{p}AroraClean": fmt(_mean(summary["arora_complexity_per_n_clean"])),
        f"{p}AroraFull": fmt(_mean(summary["arora_complexity_per_n_full_corruption"])),
        f"{p}AroraRatio": fmt(summary["arora_ratio"]["mean"]),
        f"{p}AroraTestSpearman": fmt(summary["spearman_arora_vs_test_accuracy"]),
    }
    bounds = [pt["arora_bound"]["mean"] for pt in summary["points"] if pt["arora_bound"]["mean"] is not None]
    macros[f"{p}AroraBoundMin"] = fmt(min(bounds) if bounds else None)
    full = summary["test_accuracy_full_corruption"]
    macros[f"{p}TestAccuracyFullLow"] = fmt(full["ci_low"] if full else None)
    macros[f"{p}TestAccuracyFullHigh"] = fmt(full["ci_high"] if full else None)

    rows = []
    for pt in summary["points"]:
        rows.append([fmt(pt["label_noise"]), fmt(pt["train_accuracy"]["mean"]), fmt(pt["test_accuracy"]["mean"]),
                     fmt(pt["epochs_to_fit"]["mean"]), fmt(pt["fitted_fraction"]),
                     fmt(pt["arora_complexity_per_n"]["mean"])])
    table = booktabs_table(
        ["$p$", "train acc.", "test acc.", "epochs to fit", "fitted", "$y^\\top H^{-1}y/n$"], rows,
        caption=f"Random labels on {escape(summary['task'].replace('_', '-'))}: final-epoch accuracies (no model "
                f"selection), epochs to fit (over the runs that fitted) and the fraction of runs that fitted, means "
                f"over \\{p}NumSeeds{{}} seeds; Arora et al.'s complexity of each training set.",
        label=f"tab:{s}")
    words = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    depth = words[summary["depth"]] if summary["depth"] < len(words) else str(summary["depth"])
    activation = "ReLU" if summary["activation"] == "relu" else escape(summary["activation"])
    arch = f"{depth} hidden {activation} layer{'s' if summary['depth'] > 1 else ''} of width \\{p}Width{{}}"
    data_text = data_set_name(summary["task"])
    bound_text = (
        f"The bound itself, $\\sqrt{{2y^\\top(H^\\infty)^{{-1}}y/n}}$, is \\{p}AroraBoundMin{{}} at its smallest "
        f"over $p$" + (r", above 1 and so empty for a loss in $[0,1]$ at this sample size: the ordering, not the "
                       r"value, is what it explains." if bounds and min(bounds) >= 1 else ".")
    )
    section = "\n".join([
        f"\\subsection{{{escape(experiment.title)}}}",
        f"\\label{{sec:{s}}}",
        escape(experiment.description),
        "",
        r"\citet{zhang2017understanding} showed that standard networks fit training labels that are partly "
        r"or wholly random to zero training error, with the same architecture and optimizer, in a small "
        r"constant factor more time, while their test accuracy falls to chance: the hypothesis class alone "
        r"cannot explain why the same networks generalize on real labels. \citet{arora2019fine} gave a "
        r"data-dependent answer for two-layer ReLU networks whose first layer is trained by gradient descent "
        r"from a small initialization: with unit-norm inputs and "
        r"$H^\infty_{ij}=x_i^\top x_j\,(\pi-\arccos x_i^\top x_j)/(2\pi)$, the population loss is at most "
        r"$\sqrt{2y^\top(H^\infty)^{-1}y/n}$ plus lower-order terms. As "
        r"$y^\top H^{-1}y=\sum_i(v_i^\top y)^2/\lambda_i$ over the eigenpairs of $H^\infty$, labels aligned "
        r"with its top eigenvectors make it small and random labels make it large; the same projections set "
        r"how fast gradient descent fits the labels.",
        "",
        f"We drew \\{p}NumTrain{{}} training and \\{p}NumTest{{}} test images of {data_text}, "
        f"in $K={fmt(summary['n_classes'])}$ classes{' (standardized features)' if summary['standardize'] else ''}, "
        r"and replaced a fraction $p$ of the training labels by uniformly random ones (a redrawn label keeps its "
        r"value with probability $1/K$; test labels stay clean). Networks with "
        f"{arch} were trained by {named(OPTIMIZER_NAMES, summary['optimizer'])} "
        f"(step \\{p}LearningRate, batch \\{p}BatchSize) on the {escape(summary['loss'].replace('_', ' '))} loss "
        f"for \\{p}Epochs{{}} epochs, \\{p}NumSeeds{{}} initializations per $p$; accuracies are those of the final "
        f"epoch (no model selection), and the epochs to fit are the first recorded epoch with no misclassified "
        f"training point (resolution \\{p}FitResolution{{}} epoch(s)). \\{p}NumDiverged{{}} runs diverged. "
        r"For Arora et al.'s complexity we scale each input to unit norm and sum $y_k^\top(H^\infty)^{-1}y_k$ "
        r"over the $K$ columns of the centred one-hot targets $y_k=\mathbf{1}[\text{label}=k]-1/K$.",
        "",
        f"The lowest mean final training accuracy over $p$ is \\{p}TrainAccuracyMin{{}} (fraction of runs that "
        f"fitted their labels, at worst \\{p}FittedFractionMin; Figure~\\ref{{fig:{s}-accuracy}}, "
        f"Table~\\ref{{tab:{s}}}). The mean test accuracy is \\{p}TestAccuracyClean{{}} at $p=0$ and "
        f"\\{p}TestAccuracyFull{{}} [\\{p}TestAccuracyFullLow, \\{p}TestAccuracyFullHigh] ({level}\\% interval) "
        f"at $p=1$, against chance \\{p}Chance; Spearman's rank correlation of the mean test accuracy with $p$ "
        f"is \\{p}Spearman. Fitting takes \\{p}FitEpochsClean{{}} epochs on clean labels and "
        f"\\{p}FitEpochsFull{{}} on random ones, a ratio of \\{p}FitTimeRatio{{}} [\\{p}FitTimeRatioLow, "
        f"\\{p}FitTimeRatioHigh]; the slowest fit is at $p=\\{p}SlowestFitNoise$ (\\{p}SlowestFitEpochs{{}} "
        f"epochs; Figures~\\ref{{fig:{s}-curves}} and~\\ref{{fig:{s}-fit}}). Arora et al.'s "
        f"$y^\\top(H^\\infty)^{{-1}}y/n$ is \\{p}AroraClean{{}} on clean labels and \\{p}AroraFull{{}} on "
        f"random ones, a ratio of \\{p}AroraRatio; over $p$ its Spearman correlation with the mean test accuracy "
        f"is \\{p}AroraTestSpearman. {bound_text}",
        "",
        figure_tex(
            figure_dir, "accuracy_vs_corruption",
            f"Final train and test accuracy against the fraction $p$ of random training labels (mean "
            f"and {level}\\% band over seeds); dashed: chance.",
            f"fig:{s}-accuracy", width=r"0.8\linewidth"),
        "",
        figure_tex(
            figure_dir, "train_error_curves",
            r"Training error on the (partly random) training labels during training, mean over seeds, "
            r"one curve per $p$.",
            f"fig:{s}-curves", width=r"0.8\linewidth"),
        "",
        figure_tex(
            figure_dir, "fit_time_and_complexity",
            f"Left: epochs until the training labels are fitted ({level}\\% band over seeds). Right: "
            r"Arora et al.'s complexity $y^\top(H^\infty)^{-1}y/n$ of the training set.",
            f"fig:{s}-fit"),
        "",
        table,
        "",
    ])
    slides = "\n".join([
        f"\\begin{{frame}}{{{escape(experiment.title)}}}",
        r"  \begin{columns}",
        r"    \begin{column}{0.55\textwidth}",
        f"      \\includegraphics[width=\\linewidth]{{{figure_dir}/accuracy_vs_corruption.pdf}}",
        r"    \end{column}",
        r"    \begin{column}{0.43\textwidth}\small",
        r"      \begin{itemize}",
        f"        \\item digits, $n=\\{p}NumTrain$, fraction $p$ of labels random",
        f"        \\item train accuracy $\\ge$ \\{p}TrainAccuracyMin{{}} at every $p$",
        f"        \\item test accuracy \\{p}TestAccuracyClean{{}} $\\to$ \\{p}TestAccuracyFull{{}} "
        f"(chance \\{p}Chance)",
        f"        \\item epochs to fit: $\\times$\\{p}FitTimeRatio{{}} at $p=1$",
        f"        \\item $y^\\top H^{{-1}}y/n$: \\{p}AroraClean{{}} $\\to$ \\{p}AroraFull",
        r"      \end{itemize}",
        r"    \end{column}",
        r"  \end{columns}",
        r"\end{frame}",
        "",
    ])
    return ReportPiece(macros=macros, section=section, slides=slides)
