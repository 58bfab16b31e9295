"""Universal approximation and Barron's rate (Cybenko 1989; Hornik 1991; Barron 1993).

Targets with a finite Barron constant, on inputs uniform in the cube [-1, 1]^d:

* ``teacher``: a wide ReLU network f(x) = sum_i a_i relu(w_i . x + b_i) with N units
  (``teacher_width``). Its directions w_i cluster around ``teacher_directions`` random unit
  vectors whose clusters carry alternating signs, so f is a signed sum of smooth ridge-like
  bumps rather than a nearly radial average. Its path norm ||a||_1 bounds its Barron constant.
* ``bump``: the Gaussian exp(-||x||^2), whose Fourier transform is again Gaussian.

Both are scaled so that E f(X)^2 = 1 (exactly for the bump, on a reference sample for the
teacher); relative errors ||f_hat - f||^2 / ||f||^2 (on the test points) do not depend on it.

Barron's proof made concrete (Maurey's empirical method, Pisier 1981): draw m units of the
teacher i.i.d. with probability p_i = |a_i| / ||a||_1 and give each the output weight
sign(a_i) ||a||_1 / m. The sampled network f_m is unbiased, E f_m(x) = f(x), and its
expected squared error is exactly (||a||_1^2 E_p ||phi_J||^2 - ||f||^2) / m, phi_i the i-th
unit: an O(1/m) constructive upper bound on the best width-m approximation. Beside it,
one-hidden-layer networks of width m trained with the engine (full batch, mse) on n_train
noiseless samples, with logistic, ReLU and soft-plus activations.

Seeds vary the networks' initialization and Maurey's draw; the teacher and the data are
fixed by ``data_seed``, so that every seed approximates the same function from the same sample.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mathdl.report import (
    OPTIMIZER_NAMES, ReportPiece, booktabs_table, escape, figure_tex, fmt, named, slug,
)
from mathdl.tables import CI_LEVEL, loglog_slope, mean_ci_dict

ACTIVATIONS = ("relu", "logistic", "softplus")
TARGETS = ("teacher", "bump")

DEFAULTS: dict[str, Any] = {
    "description": (
        "How fast does the error of a one-hidden-layer network fall with its width, for targets "
        "with a finite Barron constant, and how do trained networks compare with Maurey's "
        "randomly sampled ones?"
    ),
    "seeds": [0, 1, 2],
    "task": {"name": "none"},
    # The training loop of every width and activation (the model section's depth, width and
    # activation are overridden per fit). Full-batch Adam with a cosine decay to converge.
    "model": {"depth": 1, "init": "pytorch"},
    "train": {
        "loss": "mse", "optimizer": "adam", "lr": 0.01, "batch_size": 0, "epochs": 500,
        "lr_schedule": "cosine", "eval_points": 3,
    },
    "sweep": {"params.target": list(TARGETS)},
}

PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "target": {
            "description": "The function to approximate: the wide ReLU teacher or the Gaussian bump exp(-|x|^2).",
            "enum": list(TARGETS), "default": "teacher",
        },
        "dim": {
            "description": "Input dimension d; inputs are uniform in [-1, 1]^d.",
            "type": "integer", "minimum": 1, "maximum": 1000, "default": 8,
        },
        "widths": {
            "description": "Hidden widths m of the trained and the Maurey-sampled networks.",
            "type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2,
            "default": [4, 8, 16, 32, 64, 128],
        },
        "activations": {
            "description": "Activations of the trained networks (the teacher is always ReLU).",
            "type": "array", "items": {"enum": list(ACTIVATIONS)}, "minItems": 1, "uniqueItems": True,
            "default": list(ACTIVATIONS),
        },
        "teacher_width": {
            "description": "Units N of the teacher network.",
            "type": "integer", "minimum": 1, "default": 20000,
        },
        "teacher_directions": {
            "description": "Clusters of teacher directions; their output weights alternate in sign.",
            "type": "integer", "minimum": 1, "default": 5,
        },
        "maurey_draws": {
            "description": "Independent Maurey networks per seed and width; their mean relative error is recorded.",
            "type": "integer", "minimum": 1, "default": 20,
        },
        "n_train": {
            "description": "Noiseless training samples of the target (shared by all seeds).",
            "type": "integer", "minimum": 1, "default": 500,
        },
        "n_test": {
            "description": "Test points on which relative errors are measured.",
            "type": "integer", "minimum": 1, "default": 2000,
        },
        "data_seed": {
            "description": "Seed of the teacher and of the training and test inputs.",
            "type": "integer", "minimum": 0, "default": 0,
        },
    },
}

FIGURES = ("error_vs_width",)
UNIT_CHUNK = 4096  # teacher units evaluated at once: (n, chunk) float64 blocks stay small
LABELS = {"maurey": "Maurey (sampled)", "relu": "trained ReLU", "logistic": "trained logistic",
          "softplus": "trained soft-plus"}


# ----------------------------------------------------------------------------- the mathematics


def relu_network(x: np.ndarray, w: np.ndarray, b: np.ndarray, a: np.ndarray) -> np.ndarray:
    """sum_i a_i relu(w_i . x + b_i): x (n, d), w (N, d), b (N,), a (N,) -> (n,), in unit chunks."""
    out = np.zeros(x.shape[0])
    for s in range(0, len(a), UNIT_CHUNK):
        pre = x @ w[s : s + UNIT_CHUNK].T + b[s : s + UNIT_CHUNK]  # (n, chunk)
        out += np.maximum(pre, 0.0) @ a[s : s + UNIT_CHUNK]
    return out


def teacher_network(dim: int, width: int, directions: int, rng: np.random.Generator):
    """(w, b, a) of the teacher, scaled so that E f(X)^2 = 1 on 4096 reference points.

    w_i = normalize(c_k + xi_i / 2), xi_i ~ N(0, I/d), around K random unit vectors c_k;
    b_i ~ U[-1, 1]; a_i = s_k u_i / N with u_i ~ U[1/2, 3/2] and cluster signs s_k = (-1)^k.
    """
    centres = rng.standard_normal((directions, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    cluster = rng.integers(directions, size=width)
    w = centres[cluster] + 0.5 * rng.standard_normal((width, dim)) / math.sqrt(dim)
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    b = rng.uniform(-1.0, 1.0, size=width)
    a = (-1.0) ** cluster * rng.uniform(0.5, 1.5, size=width) / width
    reference = rng.uniform(-1.0, 1.0, size=(4096, dim))
    a /= math.sqrt(np.mean(relu_network(reference, w, b, a) ** 2))
    return w, b, a


def bump(x: np.ndarray) -> np.ndarray:
    """exp(-||x||^2) / sqrt(E exp(-2||X||^2)), X uniform in [-1, 1]^d: E f(X)^2 = 1 exactly."""
    # E exp(-2 t^2) for t ~ U[-1, 1] is sqrt(pi / 2) erf(sqrt 2) / 2, and coordinates are independent.
    per_axis = math.sqrt(math.pi / 2) * math.erf(math.sqrt(2)) / 2
    return np.exp(-(x**2).sum(axis=1)) / math.sqrt(per_axis ** x.shape[1])


def maurey_network(w: np.ndarray, b: np.ndarray, a: np.ndarray, m: int, rng: np.random.Generator):
    """Maurey's empirical method: m units drawn i.i.d. with p_i = |a_i| / ||a||_1, each with
    output weight sign(a_i) ||a||_1 / m; an unbiased estimate of the teacher."""
    norm1 = np.abs(a).sum()
    idx = rng.choice(len(a), size=m, p=np.abs(a) / norm1)
    return w[idx], b[idx], np.sign(a[idx]) * norm1 / m


def maurey_error_constant(w: np.ndarray, b: np.ndarray, a: np.ndarray, x: np.ndarray) -> float:
    """C with E ||f_m - f||^2 = C / m on the points x (empirical norm):
    C = ||a||_1 sum_i |a_i| mean_x phi_i(x)^2 - mean_x f(x)^2, phi_i the i-th unit."""
    second = 0.0
    for s in range(0, len(a), UNIT_CHUNK):
        phi = np.maximum(x @ w[s : s + UNIT_CHUNK].T + b[s : s + UNIT_CHUNK], 0.0)  # (n, chunk)
        second += float((phi**2).mean(axis=0) @ np.abs(a[s : s + UNIT_CHUNK]))
    return float(np.abs(a).sum() * second - np.mean(relu_network(x, w, b, a) ** 2))


# ----------------------------------------------------------------------------- compute


def _data(p):
    """Teacher (or None), training and test inputs and targets, all from ``data_seed``."""
    rng = np.random.default_rng([p["data_seed"], p["dim"]])
    teacher = teacher_network(p["dim"], p["teacher_width"], p["teacher_directions"], rng) if p["target"] == "teacher" else None
    x_train = rng.uniform(-1.0, 1.0, size=(p["n_train"], p["dim"]))
    x_test = rng.uniform(-1.0, 1.0, size=(p["n_test"], p["dim"]))
    f = (lambda x: relu_network(x, *teacher)) if teacher is not None else bump
    return teacher, x_train, f(x_train), x_test, f(x_test)


def _trained_rows(group, p, x_train, y_train, x_test, y_test, norms) -> tuple[list[tuple], dict]:
    """Train every (activation, width) on the shared data, all seeds in one batched engine call."""
    from mathdl import engine
    from mathdl.tasks import Dataset

    f32 = np.float32
    data = Dataset("regression", 1, x_train.astype(f32), y_train[:, None].astype(f32),
                   x_train[:0].astype(f32), y_train[:0, None].astype(f32), x_test.astype(f32), y_test[:, None].astype(f32))
    rows, diverged = [], {r.run_id: 0 for r in group.runs}
    seeds = [r.seed for r in group.runs]
    for act in p["activations"]:
        for m in p["widths"]:
            g = engine.make_group(seeds, model={**vars(group.model), "depth": 1, "width": m, "activation": act},
                                  train=vars(group.train), experiment=group.experiment)
            result = engine.train(g, data, progress=False)
            ids = {ours.run_id: theirs.run_id for ours, theirs in zip(g.runs, group.runs)}
            last = result.metrics["epoch"].max()
            if last != group.train.epochs:  # eval_points < 3 records epochs 0 and 1 only
                raise ValueError(f"train.eval_points must be at least 3 (the last epoch recorded was {last})")
            final = result.metrics[(result.metrics["metric"] == "loss") & (result.metrics["epoch"] == last)]
            for row in final.itertuples():
                rows.append((ids[row.run_id], m, row.split, act, row.value / norms[row.split]))
            for row in result.runs.itertuples():
                diverged[ids[row.run_id]] += bool(row.diverged)
    return rows, diverged


def compute(group, data, device):
    """Maurey-sampled and trained networks of every width for every seed of one target."""
    from mathdl.engine import TrainResult

    start = time.perf_counter()
    p = group.runs[0].params
    teacher, x_train, y_train, x_test, y_test = _data(p)
    norms = {"train": float(np.mean(y_train**2)), "test": float(np.mean(y_test**2))}
    rows, diverged = _trained_rows(group, p, x_train, y_train, x_test, y_test, norms)
    if teacher is not None:
        constant = maurey_error_constant(*teacher, x_test) / norms["test"]
        for run in group.runs:
            rng = np.random.default_rng([run.seed, p["data_seed"], 1])
            for m in p["widths"]:
                errors = [np.mean((relu_network(x_test, *maurey_network(*teacher, m, rng)) - y_test) ** 2)
                          for _ in range(p["maurey_draws"])]
                rows.append((run.run_id, m, "test", "maurey", float(np.mean(errors)) / norms["test"]))
                rows.append((run.run_id, m, "test", "maurey_expected", constant / m))
    metrics = pd.DataFrame(rows, columns=["run_id", "epoch", "split", "metric", "value"])
    metrics["value"] = metrics["value"].astype(float)
    runs = pd.DataFrame([{"run_id": r.run_id, "seed": r.seed, "diverged": diverged[r.run_id] > 0,
                          "diverged_epoch": -1, "diverged_fits": diverged[r.run_id]} for r in group.runs])
    return TrainResult(metrics=metrics, runs=runs, device="cpu", wall_time_s=time.perf_counter() - start)


# ----------------------------------------------------------------------------- analyze





def _test_errors(tables) -> pd.DataFrame:
    """Relative test errors, one row per (target, run, series, width)."""
    df = tables.with_params()
    df = df[df["split"] == "test"].rename(columns={"epoch": "width", "metric": "series", "value": "error"})
    if "params.target" not in df:
        df["params.target"] = "teacher"
    return df


def _series_summary(df: pd.DataFrame) -> dict:
    """Per-seed log-log slopes (mean and t-interval) and per-width mean errors of one series."""
    slopes = [loglog_slope(d["width"], d["error"])[0] for _, d in df.groupby("run_id")
              if (d["error"] > 0).all() and d["width"].nunique() > 1]
    return {
        "slope": mean_ci_dict(slopes),
        "errors": {str(int(m)): mean_ci_dict(d["error"]) for m, d in df.groupby("width", sort=True)},
    }


def analyze(tables, experiment) -> dict:
    """Slopes of the relative error against width, per target and series; trained vs. Maurey."""
    df = _test_errors(tables)
    p = experiment.params
    per_target: dict[str, dict] = {}
    for target, dt in df.groupby("params.target", sort=False):
        per_target[str(target)] = {str(s): _series_summary(ds) for s, ds in dt.groupby("series", sort=False)}
    teacher = per_target.get("teacher", {})
    main = "relu" if "relu" in p["activations"] else p["activations"][0]
    summary: dict[str, Any] = {
        "confidence": CI_LEVEL,
        "n_seeds": int(df["run_id"].nunique() // max(1, df["params.target"].nunique())),
        "widths": [int(m) for m in sorted(df["width"].unique())],
        "activations": list(p["activations"]),
        "main_activation": main,
        "targets": list(per_target),
        "dim": p["dim"],
        "teacher_width": p["teacher_width"],
        "n_train": p["n_train"],
        "n_test": p["n_test"],
        "epochs": int(tables.runs["train.epochs"].iloc[0]) if "train.epochs" in tables.runs else None,
        "n_diverged": int(tables.runs["diverged"].sum()),
        "per_target": per_target,
        "maurey_slope": teacher.get("maurey", {}).get("slope"),
        "maurey_expected_slope": -1.0 if teacher else None,
        "trained_slope": teacher.get(main, {}).get("slope"),
        "trained_below_maurey": None,
        "maurey_constant": None,
        "maurey_draws": p["maurey_draws"],
        "slopes": {t: {s: v["slope"] for s, v in series.items() if s != "maurey_expected"}
                   for t, series in per_target.items()},
    }
    if teacher and "maurey" in teacher and main in teacher:
        maurey, trained = teacher["maurey"]["errors"], teacher[main]["errors"]
        below = [trained[m]["mean"] < maurey[m]["mean"] for m in maurey if m in trained]
        summary["trained_below_maurey"] = float(np.mean(below))
        widths = np.array(summary["widths"], dtype=float)
        expected = np.array([teacher["maurey_expected"]["errors"][str(int(m))]["mean"] for m in widths])
        summary["maurey_constant"] = float(np.mean(expected * widths))
    return summary


# ----------------------------------------------------------------------------- figures


def figures(tables, summary, experiment, plot, outdir: Path) -> list[str]:
    """error_vs_width: relative test error against width, log-log, one panel per target."""
    import seaborn as sns

    from mathdl import plots

    plots.setup(plot)
    df = _test_errors(tables)
    df = df[df["series"] != "maurey_expected"].copy()
    df["method"] = df["series"].map(LABELS)
    order = [LABELS[s] for s in ("maurey", *summary["activations"]) if LABELS[s] in set(df["method"])]
    palette = dict(zip(order, sns.color_palette(plot.palette, len(order))))
    targets = summary["targets"]
    fig, axes = plots.new_figure(plot, ncols=len(targets))
    widths = np.array(summary["widths"], dtype=float)
    errorbar = ("ci", round(100 * plot.confidence))
    for ax, target in zip(axes, targets):
        sub = df[df["params.target"] == target]
        sns.lineplot(data=sub, x="width", y="error", hue="method", hue_order=[o for o in order if o in set(sub["method"])],
                     palette=palette, marker="o", errorbar=errorbar, ax=ax, legend=ax is axes[0])
        if target == "teacher" and summary["maurey_constant"] is not None:
            ax.plot(widths, summary["maurey_constant"] / widths, color="gray", ls="--", lw=1,
                    label=r"Maurey, expected $C/m$")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("width m")
        ax.set_ylabel(r"$\|\hat f - f\|^2 / \|f\|^2$ (test)")
        ax.set_title(target)
    handles, labels = axes[0].get_legend_handles_labels()
    if axes[0].get_legend() is not None:
        axes[0].get_legend().remove()
    for ax in axes[1:]:
        for line in ax.get_lines():
            if line.get_label() == r"Maurey, expected $C/m$":
                handles.append(line)
                labels.append(line.get_label())
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize="small")
    return [plots.save(fig, outdir, "error_vs_width", plot)]


# ----------------------------------------------------------------------------- report


def report(experiment, summary, figure_dir: str, prefix: str) -> ReportPiece:
    """The subsection (Barron's theorem, Maurey's sampling, the fitted slopes) and one slide."""
    s = slug(experiment.name)
    level = round(100 * summary["confidence"])

    def slope_macros(name: str, ci: dict | None) -> dict:
        ci = ci or {}
        return {f"{prefix}{name}": fmt(ci.get("mean")), f"{prefix}{name}Low": fmt(ci.get("ci_low")),
                f"{prefix}{name}High": fmt(ci.get("ci_high"))}

    macros = {
        f"{prefix}NumSeeds": fmt(summary["n_seeds"]),
        f"{prefix}Dim": fmt(summary["dim"]),
        f"{prefix}TeacherWidth": fmt(summary["teacher_width"]),
        f"{prefix}NTrain": fmt(summary["n_train"]),
        f"{prefix}NTest": fmt(summary["n_test"]),
        f"{prefix}Epochs": fmt(summary["epochs"]),
        f"{prefix}WidthMin": fmt(summary["widths"][0]),
        f"{prefix}WidthMax": fmt(summary["widths"][-1]),
        f"{prefix}NumDiverged": fmt(summary["n_diverged"]),
        f"{prefix}BelowMaurey": fmt(None if summary["trained_below_maurey"] is None else 100 * summary["trained_below_maurey"]),
        f"{prefix}MaureyConstant": fmt(summary["maurey_constant"]),
        **slope_macros("MaureySlope", summary["maurey_slope"]),
        **slope_macros("TrainedSlope", summary["trained_slope"]),
    }
    main = LABELS[summary["main_activation"]].removeprefix("trained ")
    rows = []
    for target, series in summary["slopes"].items():
        for name, ci in series.items():
            rows.append([escape(target), escape(LABELS.get(name, name)), fmt(ci["mean"]),
                         f"[{fmt(ci['ci_low'])}, {fmt(ci['ci_high'])}]",
                         fmt(summary["per_target"][target][name]["errors"][str(summary["widths"][-1])]["mean"])])
    table = booktabs_table(
        ["target", "network", "slope", f"{level}\\% CI", f"error at $m = {summary['widths'][-1]}$"],
        rows,
        caption="Log-log slopes of the relative test error against the width (least squares per seed;"
        f" mean and {level}\\% $t$-interval over {summary['n_seeds']} seeds) and the mean relative error"
        " at the largest width.",
        label=f"tab:{s}",
    )
    teacher = summary["maurey_slope"] is not None
    ms = summary["maurey_slope"] or {}
    inside = ms.get("ci_low") is not None and ms["ci_low"] <= -1.0 <= ms["ci_high"]
    agrees = "consistent with" if inside else "to be compared with"
    results = (
        f"On the teacher, the error of Maurey's sampled network falls with slope \\{prefix}MaureySlope{{}}"
        f" ({level}\\% CI [\\{prefix}MaureySlopeLow, \\{prefix}MaureySlopeHigh]), {agrees} the theory's $-1$,"
        f" around its exact expectation $C/m$ with $C = \\{prefix}MaureyConstant$. Trained"
        f" {escape(main)} networks fall with slope \\{prefix}TrainedSlope{{}} ([\\{prefix}TrainedSlopeLow,"
        f" \\{prefix}TrainedSlopeHigh]) and beat the sampled network at \\{prefix}BelowMaurey\\% of the"
        r" widths: Barron's bound is an upper bound from an existence proof, and optimization does"
        r" far better than sampling at every width, though the slope it reaches is set by the"
        r" finite sample and the finite training as much as by the approximation rate."
        if teacher else
        f"Trained {escape(main)} networks reach the slopes in Table~\\ref{{tab:{s}}}."
    )
    section = "\n".join([
        f"\\subsection{{{escape(experiment.title)}}}",
        f"\\label{{sec:{s}}}",
        escape(experiment.description),
        "",
        r"\paragraph{Theory.}",
        r"One-hidden-layer networks with any sigmoidal \citep{cybenko1989approximation} or any"
        r" bounded non-constant \citep{hornik1991approximation} activation are dense in the continuous"
        r" functions on compact sets, but density says nothing about how many units a given accuracy"
        r" needs. \citet{barron1993universal} gave a rate free of the dimension: if"
        r" $C_f = \int \abs{\omega}\,\abs{\hat f(\omega)}\,d\omega < \infty$, then for every $m$ a"
        r" network with $m$ sigmoidal units reaches"
        r" \[ \norm{f_m - f}_{L^2(\mu)}^2 \le \frac{(2 r C_f)^2}{m} \]"
        r" on a ball of radius $r$. The proof is probabilistic, by Maurey's empirical method"
        r" \citep{pisier1981remarques}: write $f = \sum_i a_i \varphi_i$ (here a wide ReLU network),"
        r" draw $m$ units i.i.d.\ with probability $\abs{a_i}/\norm{a}_1$ and give each the weight"
        r" $\mathrm{sign}(a_i)\norm{a}_1/m$. The sampled network is unbiased, and its expected"
        r" squared error is exactly $C/m$, $C = \norm{a}_1 \sum_i \abs{a_i}\norm{\varphi_i}^2 - \norm{f}^2$,"
        r" so some network of width $m$ does at least as well.",
        "",
        r"\paragraph{Setup.}",
        f"Inputs are uniform in $[-1,1]^{{\\{prefix}Dim}}$. The targets are a ReLU teacher of"
        f" \\{prefix}TeacherWidth{{}} units (directions clustered around a few random unit vectors, the"
        r" clusters' output weights alternating in sign) and the Gaussian bump $e^{-\norm{x}^2}$, both"
        r" scaled to $\EE f(X)^2 = 1$. For widths"
        f" $m$ from \\{prefix}WidthMin{{}} to \\{prefix}WidthMax{{}} we sample Maurey's network from the"
        f" teacher ({summary['maurey_draws']} independent draws per seed and width, their errors averaged) and train one-hidden-layer networks ({', '.join(escape(LABELS[a].removeprefix('trained ')) for a in summary['activations'])})"
        f" with {named(OPTIMIZER_NAMES, experiment.train.optimizer)} on the full batch of \\{prefix}NTrain{{}}"
        f" noiseless samples for \\{prefix}Epochs{{}} epochs (mean squared error, learning rate"
        f" {fmt(experiment.train.lr)}, {escape(experiment.train.lr_schedule)} schedule). The relative error"
        f" $\\norm{{\\hat f - f}}^2/\\norm{{f}}^2$ is measured on \\{prefix}NTest{{}} test points; seeds"
        f" (\\{prefix}NumSeeds) vary the initialization and Maurey's draw, not the data. Slopes are"
        r" least-squares fits of $\log$ error against $\log m$, one per seed.",
        "",
        r"\paragraph{Results.}",
        results + f" Figure~\\ref{{fig:{s}-error}} shows the errors, Table~\\ref{{tab:{s}}} all slopes."
        f" \\{prefix}NumDiverged{{}} runs had a diverged fit.",
        "",
        figure_tex(
            figure_dir, "error_vs_width",
            f"Relative test error against the width $m$ (log-log): Maurey's sampled network"
            f" (teacher only; dashed: its exact expectation $C/m$) and trained networks, means over"
            f" \\{prefix}NumSeeds{{}} seeds with {level}\\% bands.",
            f"fig:{s}-error"),
        "",
        table,
        "",
    ])
    slides = "\n".join([
        f"\\begin{{frame}}{{{escape(experiment.title)}}}",
        r"  \begin{columns}",
        r"    \begin{column}{0.6\textwidth}",
        f"      \\includegraphics[width=\\linewidth]{{{figure_dir}/error_vs_width.pdf}}",
        r"    \end{column}",
        r"    \begin{column}{0.38\textwidth}\small",
        r"      \begin{itemize}",
        r"        \item Barron: $\|f_m - f\|^2 \le (2rC_f)^2/m$, any dimension",
        r"        \item Maurey: sample $m$ units with prob.\ $\propto |a_i|$",
        (f"        \\item sampled slope \\{prefix}MaureySlope{{}} (theory $-1$)" if teacher else ""),
        (f"        \\item trained {escape(main)} slope \\{prefix}TrainedSlope; below Maurey at \\{prefix}BelowMaurey\\% of widths"
         if teacher else ""),
        r"      \end{itemize}",
        r"    \end{column}",
        r"  \end{columns}",
        r"\end{frame}",
        "",
    ])
    return ReportPiece(macros=macros, section=section, slides=slides)
