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

from mathdl.report import ReportPiece, booktabs_table, escape, figure_tex, fmt, slug
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
FIGURES = ("error_vs_dim", "distance_ratio")


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


def compute(group, data, device):
    """Histogram and kNN errors for every seed of one dimension (one group per swept value)."""
    from mathdl.engine import TrainResult

    start = time.perf_counter()
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
    return TrainResult(metrics=metrics, runs=pd.DataFrame(runs), device="cpu",
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
    """error_vs_dim: both relative errors and (1/eps)^d; distance_ratio: nearest/farthest."""
    import seaborn as sns
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    from mathdl import plots

    plots.setup(plot)
    errorbar = ("ci", round(100 * plot.confidence))
    final = tables.final()
    dims = np.array(summary["dims"], dtype=float)
    colors = sns.color_palette(plot.palette)

    long = final.melt(id_vars=["run_id", "params.dim"], value_vars=["test_hist_tv", "test_knn_relative_mse"],
                      var_name="method", value_name="error")
    long["method"] = long["method"].replace({
        "test_hist_tv": "histogram: L1/2",
        "test_knn_relative_mse": f"{summary['k']}-NN: MSE / Var f",
    })
    fig, (ax,) = plots.new_figure(plot)
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
    ax.legend(handles + h2, labels + l2, fontsize="small", ncols=2, loc="upper center",
              bbox_to_anchor=(0.5, -0.22))
    names = [plots.save(fig, outdir, "error_vs_dim", plot)]

    fig, (ax,) = plots.new_figure(plot)
    sns.lineplot(data=final, x="params.dim", y="test_distance_ratio", marker="o", errorbar=errorbar, ax=ax)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
    ax.set_ylim(0, 1)
    ax.set_xlabel("dimension d")
    ax.set_ylabel("nearest / farthest distance")
    names.append(plots.save(fig, outdir, "distance_ratio", plot))
    return names


# ----------------------------------------------------------------------------- report


def report(experiment, summary, figure_dir: str, prefix: str) -> ReportPiece:
    """The subsection (theory, setup, figures, a table, numbers as macros) and one slide."""
    s = slug(experiment.name)
    P = prefix
    per = summary["per_dim"]
    lo, hi = per[0], per[-1]
    level = round(100 * summary["confidence"])
    crossing = summary["crossover_dimension"]
    hist_crossing = summary["histogram_crossover_dimension"]
    macros = {
        f"{P}NumSeeds": fmt(summary["n_seeds"]),
        f"{P}NTrain": fmt(summary["n_train"]),
        f"{P}NTest": fmt(summary["n_test"]),
        f"{P}BinsPerAxis": fmt(summary["bins_per_axis"]),
        f"{P}Eps": fmt(summary["eps"]),
        f"{P}K": fmt(summary["k"]),
        f"{P}DimMin": fmt(lo["dim"]),
        f"{P}DimMax": fmt(hi["dim"]),
        f"{P}CrossoverLevel": fmt(summary["crossover_level"]),
        f"{P}CrossoverDim": fmt(crossing),
        f"{P}HistCrossoverDim": fmt(hist_crossing),
        f"{P}HistTVAtMin": fmt(lo["hist_tv"]["mean"]),
        f"{P}HistTVAtMax": fmt(hi["hist_tv"]["mean"]),
        f"{P}EmptyShareAtMax": fmt(hi["empty_share"]["mean"]),
        f"{P}KnnAtMin": fmt(lo["knn_relative_mse"]["mean"]),
        f"{P}KnnAtMax": fmt(hi["knn_relative_mse"]["mean"]),
        f"{P}KnnAtMaxLow": fmt(hi["knn_relative_mse"]["ci_low"]),
        f"{P}KnnAtMaxHigh": fmt(hi["knn_relative_mse"]["ci_high"]),
        f"{P}RatioAtMin": fmt(lo["distance_ratio"]["mean"]),
        f"{P}RatioAtMax": fmt(hi["distance_ratio"]["mean"]),
        f"{P}LogBinsAtMax": fmt(hi["log10_bins_needed"]),
        f"{P}TheoryGap": fmt(summary["max_hist_l1_theory_error"]),
    }
    m = {k[len(P):]: f"\\{k}{{}}" for k in macros}
    n_text = m["NTrain"] if summary["n_train"] is not None else "$n$"
    knn_crossing = (
        f"The relative kNN error first exceeds {m['CrossoverLevel']} at $d = {m['CrossoverDim']}$"
        if crossing is not None
        else f"The relative kNN error stays below {m['CrossoverLevel']} up to $d = {m['DimMax']}$"
    )
    hist_crossing_text = (
        f"the histogram's total variation error at $d = {m['HistCrossoverDim']}$"
        if hist_crossing is not None
        else f"the histogram's total variation error never does up to $d = {m['DimMax']}$"
    )
    rows = [
        [
            fmt(e["dim"]),
            f"$10^{{{fmt(e['log10_bins_needed'])}}}$",
            fmt(e["empty_share"]["mean"]),
            fmt(e["hist_tv"]["mean"]),
            fmt(e["hist_tv_theory"]),
            fmt(e["knn_relative_mse"]["mean"]),
            fmt(e["distance_ratio"]["mean"]),
        ]
        for e in per
    ]
    table = booktabs_table(
        ["$d$", r"bins $(1/\varepsilon)^d$", "empty share", "TV", "TV theory", "kNN MSE$/\\Var f$",
         "nearest/farthest"],
        rows,
        caption=f"The curse of dimensionality at $n = {n_text}$: per dimension, the bins a histogram"
        f" with $\\varepsilon = {m['Eps']}$ needs, the share of them left empty, its total variation"
        f" error (simulated and expected), the relative error of {m['K']}-nearest-neighbour regression"
        f" and the nearest-to-farthest distance ratio; means over {m['NumSeeds']} seeds.",
        label=f"tab:{s}",
    )
    section = "\n".join([
        f"\\subsection{{{escape(experiment.title)}}}",
        f"\\label{{sec:{s}}}",
        escape(experiment.description),
        "",
        r"\paragraph{Theory.}",
        r"Local methods average the data in a neighbourhood of the query point, and in high"
        r" dimension neighbourhoods that hold data are no longer local \citep{bellman1961adaptive}"
        r" \citep[Sec.~2.5]{hastie2009elements}. A histogram on $[0,1]^d$ with bins of side"
        r" $\varepsilon$ has $(1/\varepsilon)^d$ bins and, for $n$ uniform points, $n\varepsilon^d$"
        r" points per bin on average. With the uniform density $p = 1$ and bin counts $c_b$ its L1"
        r" error is $\sum_b \abs{c_b/n - \varepsilon^d}$, whose expectation follows from de"
        r" Moivre's mean absolute deviation of the binomial \citep{diaconis1991closed}. Once"
        r" $n\varepsilon^d \le 1$ every occupied bin holds at least its expected count, the error"
        r" is exactly twice the share of empty bins, and"
        r" \[ \EE \norm{\hat p - p}_{1} = 2\,(1-\varepsilon^d)^n \to 2, \]"
        r" the largest L1 distance between two densities."
        r" For regression of a Lipschitz function, the minimax rate of the squared error is"
        r" $n^{-2/(2+d)}$ \citep{stone1982optimal}: a fixed accuracy needs a sample size"
        r" exponential in $d$. And distances concentrate: for i.i.d.\ coordinates the ratio of the"
        r" nearest to the farthest neighbour's distance tends to one \citep{beyer1999nearest},"
        r" so the nearest neighbours are hardly nearer than any other point.",
        "",
        r"\paragraph{Setup.}",
        f"For each $d$ from {m['DimMin']} to {m['DimMax']} and each of {m['NumSeeds']} seeds we draw"
        f" $n = {n_text}$ training points uniformly from $[0,1]^d$, estimate the density with"
        f" {m['BinsPerAxis']} bins per axis ($\\varepsilon = {m['Eps']}$) and compute its exact L1"
        f" error, and regress $f(x) = \\sum_{{i=1}}^d \\sin(2\\pi x_i)/\\sqrt d$ (variance $1/2$ and"
        f" Lipschitz constant at most $2\\pi$ at every $d$) by {m['K']}-nearest-neighbour averaging,"
        f" measured on {m['NTest']} test points as $\\EE(\\hat f - f)^2/\\Var f$ (1: the error of"
        f" predicting the mean). The crossover dimension is the smallest $d$ of the grid at which"
        f" the mean relative error exceeds {m['CrossoverLevel']}.",
        "",
        r"\paragraph{Results.}",
        f"{knn_crossing}, {hist_crossing_text} (Figure~\\ref{{fig:{s}-error}}, Table~\\ref{{tab:{s}}})."
        f" From $d = {m['DimMin']}$ to $d = {m['DimMax']}$ the histogram's total variation error"
        f" $\\tfrac12\\norm{{\\hat p - p}}_1$ grows from {m['HistTVAtMin']} to {m['HistTVAtMax']}"
        f" (at the largest $d$, the share of empty bins among the $10^{{{m['LogBinsAtMax']}}}$ is"
        f" {m['EmptyShareAtMax']}), and the simulated L1 error stays within {m['TheoryGap']} of de Moivre's"
        f" expectation; the relative kNN error grows from {m['KnnAtMin']} to {m['KnnAtMax']}"
        f" ({level}\\% CI [{m['KnnAtMaxLow']}, {m['KnnAtMaxHigh']}]); averaging {m['K']} random"
        f" training points would give $1 + 1/{m['K']}$. The nearest-to-farthest distance ratio"
        f" rises from {m['RatioAtMin']} to {m['RatioAtMax']} (Figure~\\ref{{fig:{s}-ratio}}).",
        "",
        figure_tex(
            figure_dir, "error_vs_dim",
            f"Relative errors against the dimension at $n = {n_text}$: the histogram's"
            f" total variation error (dashed: de Moivre's expectation) and the {m['K']}-nearest-neighbour"
            f" test error over $\\Var f$, means over {m['NumSeeds']} seeds with {level}\\% bands; dotted:"
            f" the crossover level; grey, right axis: the number of bins $(1/\\varepsilon)^d$.",
            f"fig:{s}-error", width=r"0.8\linewidth"),
        "",
        figure_tex(
            figure_dir, "distance_ratio",
            f"Concentration of distances: the mean over test points of the ratio of the"
            f" nearest to the farthest training point's distance, with a {level}\\% band over seeds.",
            f"fig:{s}-ratio", width=r"0.7\linewidth"),
        "",
        table,
        "",
    ])
    slides = "\n".join([
        f"\\begin{{frame}}{{{escape(experiment.title)}}}",
        r"  \begin{columns}",
        r"    \begin{column}{0.56\textwidth}",
        f"      \\includegraphics[width=\\linewidth]{{{figure_dir}/error_vs_dim.pdf}}",
        r"    \end{column}",
        r"    \begin{column}{0.42\textwidth}\small",
        r"      \begin{itemize}",
        f"        \\item $n = {n_text}$ uniform points in $[0,1]^d$, $d = {m['DimMin']}$--{m['DimMax']}",
        f"        \\item histogram, $\\varepsilon = {m['Eps']}$: $(1/\\varepsilon)^d$ bins; TV error"
        f" {m['HistTVAtMin']} $\\to$ {m['HistTVAtMax']}",
        f"        \\item {m['K']}-NN: MSE$/\\mathrm{{Var}}\\,f$ {m['KnnAtMin']} $\\to$ {m['KnnAtMax']}"
        + (f"; crosses {m['CrossoverLevel']} at $d = {m['CrossoverDim']}$" if crossing is not None else ""),
        f"        \\item nearest/farthest distance {m['RatioAtMin']} $\\to$ {m['RatioAtMax']}",
        r"      \end{itemize}",
        r"    \end{column}",
        r"  \end{columns}",
        r"\end{frame}",
        "",
    ])
    return ReportPiece(macros=macros, section=section, slides=slides)
