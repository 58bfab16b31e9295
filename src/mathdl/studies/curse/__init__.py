"""The curse of dimensionality at a fixed sample size (Bellman 1961; Hastie et al. 2009, Sec. 2.5).

For each dimension d (the sweep ``params.dim``) and seed, ``n`` training and ``n_test`` test
points are drawn uniformly from the cube [0, 1]^d, and two local methods are run:

* **Histogram density estimation** with bins of side ``eps = 1/m`` per axis (``m`` =
  ``bins_per_axis``), ``m^d`` bins in all. The density is the uniform one, p = 1, and bins
  align with the cube, so the L1 error has a closed form from the bin counts c_b:
  ``L1 = sum_b |c_b/n - q| = sum_{occupied} |c_b/n - q| + (1 - N_occ q)``, ``q = eps^d``.
  Its expectation is ``m^d E|C/n - q|``, ``C ~ Bin(n, q)``, which de Moivre's formula for the
  mean absolute deviation of a binomial, ``E|C - nq| = 2 v binom(n, v) q^v (1-q)^(n-v+1)``
  with ``v = floor(nq) + 1`` (Diaconis and Zabell 1991), turns into the theory curve. Once
  ``n q <= 1`` every occupied bin holds at least its expected count, so L1 is exactly twice
  the share of empty bins and its expectation is ``2 (1 - q)^n``, which tends to 2, the
  largest L1 distance between densities.
* **k-nearest-neighbour regression** of ``f(x) = sum_i sin(2 pi x_i) / sqrt(d)``, whose
  variance (1/2) and Lipschitz constant (at most 2 pi) do not depend on d. The relative error
  is ``E (f_hat - f)^2 / Var f`` on the test points: 0 is a perfect fit and 1 is the error of
  predicting the mean. Beside it, the ratio of the nearest to the farthest training point's
  distance from a test point, which tends to 1 as d grows (Beyer et al. 1999).

``crossover_dimension`` is the smallest d of the sweep at which the mean relative kNN error
exceeds ``CROSSOVER_LEVEL`` = 1/2, halfway between a perfect fit and the mean;
``histogram_crossover_dimension`` is the same for the histogram's total variation error
``L1 / 2`` (0: exact, 1: disjoint from the truth). Either is None when the grid never crosses.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mathdl.tables import CI_LEVEL, json_number as _num, mean_ci_dict

DEFAULTS: dict[str, Any] = {
    "description": (
        "At a fixed sample size, how fast do a histogram density estimate and a nearest-neighbour "
        "regression degrade as the dimension grows?"
    ),
    "seeds": [0, 1, 2, 3, 4],
    "task": {"name": "none"},
    "sweep": {"params.dim": [1, 2, 3, 5, 10, 20, 50, 100]},
}

PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "dim": {
            "description": "Dimension d of the cube [0, 1]^d (swept by default).",
            "type": "integer", "minimum": 1, "maximum": 1000, "default": 1,
        },
        "n_train": {
            "description": "Sample size n, the same at every dimension.",
            "type": "integer", "minimum": 1, "default": 1000,
        },
        "n_test": {
            "description": "Test points of the kNN regression and the distance ratio.",
            "type": "integer", "minimum": 1, "default": 500,
        },
        "bins_per_axis": {
            "description": "Histogram bins per axis m, bin side eps = 1/m: m^d bins in all.",
            "type": "integer", "minimum": 1, "maximum": 1000, "default": 10,
        },
        "k": {
            "description": "Neighbours averaged by the kNN regression (at most n_train).",
            "type": "integer", "minimum": 1, "default": 10,
        },
        "noise": {
            "description": "Standard deviation of Gaussian noise on the kNN training targets (0: exact values).",
            "type": "number", "minimum": 0, "default": 0.0,
        },
    },
}

CROSSOVER_LEVEL = 0.5  # relative kNN error (and histogram TV error) that defines the crossover
TARGET_VARIANCE = 0.5  # Var f(X) of the sum of sines for X uniform on the cube, at every d
FIGURES = ("error_vs_dim", "distance_ratio", "slide_error_vs_dim")
LEGEND_PT = 8  # legend font size (pt); the paper shows the figures at about their drawn width
SLIDE_FIGSIZE = (3.6, 2.6)  # inches: a 0.6-text-width column of a 16:9 frame (6.0 x 3.4 in), shown at scale ~1


# ----------------------------------------------------------------------------- the mathematics


def sum_of_sines(x: np.ndarray) -> np.ndarray:
    """f(x) = sum_i sin(2 pi x_i) / sqrt(d): (n, d) -> (n,); variance 1/2 under the uniform law."""
    return np.sin(2 * np.pi * x).sum(axis=1) / math.sqrt(x.shape[1])


def bin_index(x: np.ndarray, bins_per_axis: int) -> np.ndarray:
    """The bin of each point of [0, 1]^d: integer coordinates in 0..m-1, shape (n, d)."""
    return np.minimum((x * bins_per_axis).astype(np.int64), bins_per_axis - 1)


def bin_counts(x: np.ndarray, bins_per_axis: int) -> np.ndarray:
    """Counts of the occupied bins (empty bins are not listed): shape (N_occ,)."""
    _, counts = np.unique(bin_index(x, bins_per_axis), axis=0, return_counts=True)
    return counts


def histogram_density(x_train: np.ndarray, bins_per_axis: int, x: np.ndarray) -> np.ndarray:
    """The histogram estimate p_hat(x) = c_b(x) / (n eps^d), eps = 1/m, at the points ``x``."""
    n, d = x_train.shape
    bins, counts = np.unique(bin_index(x_train, bins_per_axis), axis=0, return_counts=True)
    table = {b.tobytes(): c for b, c in zip(bins, counts)}
    found = np.array([table.get(b.tobytes(), 0) for b in bin_index(x, bins_per_axis)], dtype=float)
    return found * float(bins_per_axis) ** d / n


def uniform_l1_error(counts: np.ndarray, n: int, dim: int, bins_per_axis: int) -> float:
    """Exact L1 distance between the histogram and the uniform density on [0, 1]^d.

    sum_b |c_b/n - q| over all m^d bins, q = m^-d: the occupied bins plus q per empty bin.
    """
    q = math.exp(-dim * math.log(bins_per_axis))
    occupied = float(np.abs(counts / n - q).sum())
    return occupied + empty_share(len(counts), dim, bins_per_axis)


def empty_share(occupied: int, dim: int, bins_per_axis: int) -> float:
    """(m^d - N_occ) / m^d, in exact integer arithmetic (1 - N_occ q would leave round-off)."""
    total = bins_per_axis**dim
    return (total - occupied) / total


def expected_uniform_l1(n: int, dim: int, bins_per_axis: int) -> float:
    """E L1 of the histogram of n uniform points: m^d E|C/n - q|, C ~ Bin(n, q), by de Moivre."""
    from scipy.special import gammaln

    log_bins = dim * math.log(bins_per_axis)
    q = math.exp(-log_bins)
    v = math.floor(n * q) + 1
    if v > n:  # q = 1 (one bin): the estimate is exact
        return 0.0
    log_mad = (math.log(2 * v) + gammaln(n + 1) - gammaln(v + 1) - gammaln(n - v + 1)
               - v * log_bins + (n - v + 1) * math.log1p(-q))
    return float(math.exp(log_bins - math.log(n) + log_mad))


def expected_empty_share(n: int, dim: int, bins_per_axis: int) -> float:
    """Expected share of the m^d bins that none of n uniform points falls in: (1 - q)^n."""
    return float(math.exp(n * math.log1p(-math.exp(-dim * math.log(bins_per_axis)))))


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a_i - b_j|^2: (n_a, d), (n_b, d) -> (n_a, n_b)."""
    d2 = (a**2).sum(axis=1)[:, None] + (b**2).sum(axis=1)[None, :] - 2 * a @ b.T
    return np.maximum(d2, 0.0)


def knn_predict(x_train: np.ndarray, y_train: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    """The mean of the targets of the k training points nearest to each point of ``x``."""
    d2 = squared_distances(x, x_train)
    nearest = np.argpartition(d2, k - 1, axis=1)[:, :k]  # (n, k)
    return y_train[nearest].mean(axis=1)


def distance_ratio(x_train: np.ndarray, x: np.ndarray) -> np.ndarray:
    """min_j |x_i - x_j| / max_j |x_i - x_j| over the training points, for each point of ``x``."""
    d2 = squared_distances(x, x_train)
    return np.sqrt(d2.min(axis=1) / d2.max(axis=1))


# ----------------------------------------------------------------------------- compute


def _run_rows(seed: int, p) -> list[tuple]:
    d, n, m, k = p["dim"], p["n_train"], p["bins_per_axis"], p["k"]
    rng = np.random.default_rng([seed, d])
    x_train = rng.uniform(size=(n, d))
    x_test = rng.uniform(size=(p["n_test"], d))
    counts = bin_counts(x_train, m)
    l1 = uniform_l1_error(counts, n, d, m)
    y_train = sum_of_sines(x_train) + p["noise"] * rng.standard_normal(n)
    mse = float(np.mean((knn_predict(x_train, y_train, x_test, k) - sum_of_sines(x_test)) ** 2))
    ratio = distance_ratio(x_train, x_test)
    return [
        (0, "train", "occupied_bins", len(counts)),
        (0, "train", "empty_share", empty_share(len(counts), d, m)),
        (0, "test", "hist_l1", l1),
        (0, "test", "hist_tv", l1 / 2),
        (0, "test", "knn_mse", mse),
        (0, "test", "knn_relative_mse", mse / TARGET_VARIANCE),
        (0, "test", "distance_ratio", float(ratio.mean())),
    ]


def networks(group) -> list:
    """No network: the job computes with NumPy on the host (and asks for no GPU)."""
    return []


def compute(group, data, device):
    """Histogram and kNN errors for every seed of one dimension (one group per swept value)."""
    from mathdl.engine import TrainResult
    from mathdl.studies import host_device

    start = time.perf_counter()
    used = host_device(device)
    frames, runs = [], []
    for run in group.runs:
        if run.params["k"] > run.params["n_train"]:
            raise ValueError(f"params.k ({run.params['k']}) must be at most params.n_train ({run.params['n_train']})")
        df = pd.DataFrame(_run_rows(run.seed, run.params), columns=["epoch", "split", "metric", "value"])
        df.insert(0, "run_id", run.run_id)
        frames.append(df)
        runs.append({"run_id": run.run_id, "seed": run.seed, "diverged": False, "diverged_epoch": -1})
    metrics = pd.concat(frames, ignore_index=True)
    metrics["value"] = metrics["value"].astype(float)
    return TrainResult(metrics=metrics, runs=pd.DataFrame(runs), device=used,
                       wall_time_s=time.perf_counter() - start)


# ----------------------------------------------------------------------------- analyze





def _crossover(per_dim: list[dict], key: str) -> int | None:
    for entry in per_dim:
        mean = entry[key]["mean"]
        if mean is not None and mean > CROSSOVER_LEVEL:
            return entry["dim"]
    return None


def analyze(tables, experiment) -> dict:
    """Per dimension: errors with confidence intervals, theory, bins needed; the crossovers."""
    final = tables.final()
    p = experiment.params
    per_dim = []
    for dim, df in final.groupby("params.dim", sort=True):
        dim = int(dim)
        n, m = int(df["params.n_train"].iloc[0]), int(df["params.bins_per_axis"].iloc[0])
        log10_bins = dim * math.log10(m)
        per_dim.append({
            "dim": dim,
            "n_runs": int(len(df)),
            "bins_needed": _num(10.0**log10_bins) if log10_bins < 308 else None,
            "log10_bins_needed": log10_bins,
            "points_per_bin": n * 10.0 ** (-log10_bins),
            "hist_l1": mean_ci_dict(df["test_hist_l1"]),
            "hist_tv": mean_ci_dict(df["test_hist_tv"]),
            "hist_l1_theory": expected_uniform_l1(n, dim, m),
            "hist_tv_theory": expected_uniform_l1(n, dim, m) / 2,
            "empty_share": mean_ci_dict(df["train_empty_share"]),
            "empty_share_theory": expected_empty_share(n, dim, m),
            "knn_relative_mse": mean_ci_dict(df["test_knn_relative_mse"]),
            "distance_ratio": mean_ci_dict(df["test_distance_ratio"]),
        })
    dims = [e["dim"] for e in per_dim]
    return {
        "confidence": CI_LEVEL,
        "crossover_level": CROSSOVER_LEVEL,
        "n_seeds": int(final["seed"].nunique()),
        "n_train": p["n_train"] if "params.n_train" not in dict(experiment.sweep) else None,
        "n_test": p["n_test"],
        "bins_per_axis": p["bins_per_axis"],
        "eps": 1 / p["bins_per_axis"],
        "k": p["k"],
        "noise": p["noise"],
        # the relative error of averaging k training targets drawn at random, wherever they lie:
        # E(f_hat - f)^2 / Var f = 1 + (Var f + noise^2) / (k Var f)
        "random_average_relative_mse": 1 + (TARGET_VARIANCE + p["noise"] ** 2) / (p["k"] * TARGET_VARIANCE),
        "dims": dims,
        "per_dim": per_dim,
        "crossover_dimension": _crossover(per_dim, "knn_relative_mse"),
        "histogram_crossover_dimension": _crossover(per_dim, "hist_tv"),
        "hist_l1_by_dim": {str(e["dim"]): e["hist_l1"]["mean"] for e in per_dim},
        "knn_relative_mse_by_dim": {str(e["dim"]): e["knn_relative_mse"]["mean"] for e in per_dim},
        "distance_ratio_by_dim": {str(e["dim"]): e["distance_ratio"]["mean"] for e in per_dim},
        "bins_needed_by_dim": {str(e["dim"]): e["bins_needed"] for e in per_dim},
        "max_hist_l1_theory_error": max(
            (abs(e["hist_l1"]["mean"] - e["hist_l1_theory"]) for e in per_dim), default=None),
    }


# ----------------------------------------------------------------------------- figures


def figures(tables, summary, experiment, plot, outdir: Path) -> list[str]:
    """error_vs_dim: both relative errors and (1/eps)^d; distance_ratio: nearest/farthest;
    slide_error_vs_dim: the first, drawn at the size a slide shows it."""
    import dataclasses

    import seaborn as sns
    from matplotlib.ticker import StrMethodFormatter

    from mathdl import plots

    plots.setup(plot)
    errorbar = ("ci", round(100 * plot.confidence))
    final = tables.final()

    fig, (ax,) = plots.new_figure(plot)
    _draw_errors(ax, final, summary, sns.color_palette(plot.palette), errorbar)
    names = [plots.save(fig, outdir, "error_vs_dim", plot)]

    fig, (ax,) = plots.new_figure(plot)
    sns.lineplot(data=final, x="params.dim", y="test_distance_ratio", marker="o", errorbar=errorbar, ax=ax)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
    ax.set_ylim(0, 1)
    ax.set_xlabel("dimension d")
    ax.set_ylabel("nearest / farthest distance")
    names.append(plots.save(fig, outdir, "distance_ratio", plot))

    slide = dataclasses.replace(plot, width=SLIDE_FIGSIZE[0], height=SLIDE_FIGSIZE[1])
    fig, (ax,) = plots.new_figure(slide)
    _draw_errors(ax, final, summary, sns.color_palette(plot.palette), errorbar)
    names.append(plots.save(fig, outdir, "slide_error_vs_dim", plot))
    return names


def _draw_errors(ax, final: pd.DataFrame, summary, colors, errorbar) -> None:
    """Both relative errors against d (log axis), the histogram's expected error, the crossover
    level, and on a second axis the number of bins (1/eps)^d; one legend below."""
    import seaborn as sns
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    dims = np.array(summary["dims"], dtype=float)
    long = final.melt(id_vars=["run_id", "params.dim"], value_vars=["test_hist_tv", "test_knn_relative_mse"],
                      var_name="method", value_name="error")
    long["method"] = long["method"].replace({
        "test_hist_tv": "histogram: L1/2",
        "test_knn_relative_mse": f"{summary['k']}-NN: MSE / Var f",
    })
    sns.lineplot(data=long, x="params.dim", y="error", hue="method", marker="o", errorbar=errorbar,
                 palette=colors[:2], ax=ax)
    theory = [e["hist_tv_theory"] for e in summary["per_dim"]]
    ax.plot(dims, theory, color=colors[0], ls="--", lw=1, label="histogram, theory")
    ax.axhline(summary["crossover_level"], color="gray", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("dimension d")
    ax.set_ylabel("relative error")
    twin = ax.twinx()
    twin.plot(dims, [10.0 ** e["log10_bins_needed"] for e in summary["per_dim"]], color="gray",
              ls="-.", lw=1, marker="s", ms=3, label=r"bins $(1/\varepsilon)^d$")
    twin.set_yscale("log")
    top = max(e["log10_bins_needed"] for e in summary["per_dim"])
    twin.set_yticks(10.0 ** MaxNLocator(nbins=5, integer=True).tick_values(0, max(top, 1)))
    twin.set_ylabel(r"bins $(1/\varepsilon)^d$", color="gray")
    twin.tick_params(axis="y", colors="gray")
    twin.grid(False)
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
    handles, labels = ax.get_legend_handles_labels()
    h2, l2 = twin.get_legend_handles_labels()
    ax.legend(handles + h2, labels + l2, fontsize=LEGEND_PT, ncols=2, loc="upper center",
              bbox_to_anchor=(0.5, -0.22))
