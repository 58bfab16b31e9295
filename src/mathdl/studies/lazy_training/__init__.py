"""Lazy training: wide networks stay close to their linearization and their kernel barely moves.

One-hidden-layer ReLU networks in the NTK parametrization (``model.init: ntk``), trained by the
engine with full-batch gradient descent on the mse to near-zero loss on a small regression set
(n points in dimension d, y = sin(2 <u, x>) with u = (1, ..., 1)/sqrt(d), x ~ N(0, I_d)).
For every width and seed: the relative weight change ||theta_T - theta_0|| / ||theta_0||, the
relative change of the empirical NTK ||Theta_T - Theta_0||_F / ||Theta_0||_F on the training
points (torch.func, :mod:`mathdl.ntk`), and the RMS gap on test points between the trained
network and its linearization around the same theta_0 after the same T steps of GD (in closed
form through Theta_0), and the test error of NTK kernel regression (T = infinity) beside the
network's. Jacot, Gabriel and Hongler (2018) and Lee et al. (2019) give all three changes
O(m^{-1/2}) in the width m.

At a fixed width, an output-scale sweep (Chizat, Oyallon and Bach 2019): GD on
R(alpha h(theta)) / alpha^2 with the centred model h = f(theta) - f(theta_0); large alpha is lazy
(relative weight change ~ 1/alpha), small alpha moves the weights by O(1) (feature learning).
Deeper networks (``deep_depth`` hidden ReLU layers, widths ``deep_widths``, same data, GD on the
mse, NTK parametrization, float32): the relative distance from initialization of every layer,
||W_l(T) - W_l(0)|| / ||W_l(0)|| (weight and bias, the engine's ``rel_dist_init_layer<l>``), and
its log-log slope against width per layer; in the NTK regime every layer's change shrinks with
width, at least like m^{-1/2} (Lee et al. 2019).
The data are shared by all seeds (``data_seed``); the seeds draw the initializations.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mathdl.report import ReportPiece, booktabs_table, escape, figure_tex, fmt, slug
from mathdl.tables import CI_LEVEL, loglog_slope, mean_ci_dict

DEFAULTS: dict[str, Any] = {
    "description": (
        "As one-hidden-layer networks in the NTK parametrization grow wider, how much do their "
        "weights, their tangent kernel and their predictions move away from the linearized model "
        "during training, how much does each layer of a deeper network move, and what does the output "
        "scale change?"
    ),
    "seeds": [0, 1, 2],
    "task": {"name": "none"},
    "params": {},  # filled from PARAMS_SCHEMA
    "sweep": {},
}

PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "widths": {
            "description": "Hidden widths m of the width sweep.",
            "type": "array", "items": {"type": "integer", "minimum": 2, "maximum": 65536},
            "minItems": 2, "uniqueItems": True, "default": [64, 256, 1024, 4096],
        },
        "n_train": {"description": "Training points n.", "type": "integer", "minimum": 2, "default": 32},
        "n_test": {"description": "Test points.", "type": "integer", "minimum": 1, "default": 256},
        "input_dim": {"description": "Input dimension d.", "type": "integer", "minimum": 1, "default": 4},
        "data_seed": {"description": "Seed of the data set (shared by all runs).", "type": "integer",
                      "minimum": 0, "default": 12345},
        "lr": {"description": "Step size of full-batch GD on the mse (stable below n / lambda_max(Theta)).",
               "type": "number", "exclusiveMinimum": 0, "default": 0.5},
        "epochs": {"description": "GD steps T of the width sweep.", "type": "integer", "minimum": 1, "default": 3000},
        "alphas": {
            "description": "Output scales alpha of the lazy/feature-learning sweep.",
            "type": "array", "items": {"type": "number", "exclusiveMinimum": 0},
            "minItems": 1, "uniqueItems": True, "default": [0.03, 0.1, 0.3, 1.0, 3.0, 10.0],
        },
        "alpha_width": {"description": "Width of the output-scale sweep.", "type": "integer",
                        "minimum": 2, "default": 128},
        "alpha_steps": {"description": "GD steps of the output-scale sweep.", "type": "integer",
                        "minimum": 1, "default": 1000},
        "deep_depth": {"description": "Hidden layers of the deep per-layer sweep.", "type": "integer",
                       "minimum": 1, "maximum": 16, "default": 3},
        "deep_widths": {
            "description": "Hidden widths m of the deep per-layer sweep.",
            "type": "array", "items": {"type": "integer", "minimum": 2, "maximum": 16384},
            "minItems": 2, "uniqueItems": True, "default": [64, 256, 1024],
        },
        "deep_epochs": {"description": "GD steps T of the deep per-layer sweep (step size lr).", "type": "integer",
                        "minimum": 1, "default": 200},
    },
}

SWEEPABLE: tuple[str, ...] = ()  # every grid is in params, computed in one group
FIGURES = ("changes_vs_width", "alpha_sweep", "deep_layer_change")
WIDTH_METRICS = ("weight_change", "ntk_change", "linearization_gap", "kernel_gap", "train_mse", "test_mse",
                 "test_mse_linearized", "test_mse_kernel", "rel_dist_init_engine")
SLOPE_KEYS = {"weight_change": "weight_change_slope", "ntk_change": "ntk_change_slope",
              "linearization_gap": "linearization_gap_slope"}
THEORY_SLOPE = -0.5  # Lee et al. (2019): all three are O(m^{-1/2})


def make_data(params: dict) -> dict:
    """x ~ N(0, I_d), y = sin(2 <u, x>), u = (1, ..., 1)/sqrt(d); float64 tensors."""
    import torch

    g = torch.Generator().manual_seed(params["data_seed"])
    d = params["input_dim"]
    u = torch.ones(d, dtype=torch.float64) / math.sqrt(d)
    x = torch.randn(params["n_train"] + params["n_test"], d, generator=g, dtype=torch.float64)
    y = torch.sin(2 * x @ u)
    n = params["n_train"]
    return {"x_train": x[:n], "y_train": y[:n], "x_test": x[n:], "y_test": y[n:]}


def _width_rows(run_seeds, width: int, data: dict, params: dict) -> list[tuple]:
    """Train all seeds at one width with the engine; the NTK quantities per seed."""
    from mathdl import engine, ntk
    from mathdl.tasks import Dataset

    x, y, xt, yt = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
    empty = np.zeros((0, x.shape[1]))
    dataset = Dataset("regression", 1, x.numpy(), y.numpy()[:, None], empty, np.zeros((0, 1)),
                      xt.numpy(), yt.numpy()[:, None])
    group = engine.make_group(
        run_seeds, task={"name": "none"},
        model={"depth": 1, "width": width, "activation": "relu", "init": "ntk"},
        train={"optimizer": "gd", "loss": "mse", "lr": params["lr"], "epochs": params["epochs"],
               "dtype": "float64", "eval_points": 3},  # epochs 0, 1 and T
    )
    result = engine.train(group, dataset, progress=False)
    engine_change = result.metrics.query("metric == 'rel_dist_init' and split == 'train'")
    engine_change = engine_change[engine_change["epoch"] == engine_change["epoch"].max()]
    rows = []
    for i, seed in enumerate(run_seeds):
        p0 = ntk.init_params(width, x.shape[1], seed)
        p_t = ntk.from_stacked(result.params, i)
        k0, k_t = ntk.ntk(p0, x, x), ntk.ntk(p_t, x, x)
        k0_test = ntk.ntk(p0, xt, x)
        f0, f0_test = ntk.forward(p0, x), ntk.forward(p0, xt)
        _, lin_test = ntk.linearized_gd(k0, k0_test, f0, f0_test, y, params["lr"], params["epochs"])
        _, kernel_test = ntk.linearized_gd(k0, k0_test, f0, f0_test, y, params["lr"], math.inf)
        net_test, net_train = ntk.forward(p_t, xt), ntk.forward(p_t, x)
        rms = lambda a, b: float(((a - b) ** 2).mean().sqrt())  # noqa: E731
        values = {
            "weight_change": ntk.relative_change(p_t, p0),
            "ntk_change": float((k_t - k0).norm() / k0.norm()),
            "linearization_gap": rms(net_test, lin_test),
            "kernel_gap": rms(net_test, kernel_test),
            "train_mse": rms(net_train, y) ** 2,
            "test_mse": rms(net_test, yt) ** 2,
            "test_mse_linearized": rms(lin_test, yt) ** 2,
            "test_mse_kernel": rms(kernel_test, yt) ** 2,
            "rel_dist_init_engine": float(engine_change["value"].iloc[i]),
        }
        rows += [(seed, width, "width", k, v) for k, v in values.items()]
    return rows


def _deep_rows(run_seeds, width: int, data: dict, params: dict) -> list[tuple]:
    """Train all seeds of a deep network at one width; the engine's per-layer relative change at T."""
    from mathdl import engine
    from mathdl.tasks import Dataset

    x, y, xt, yt = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
    empty = np.zeros((0, x.shape[1]))
    dataset = Dataset("regression", 1, x.numpy(), y.numpy()[:, None], empty, np.zeros((0, 1)),
                      xt.numpy(), yt.numpy()[:, None])
    group = engine.make_group(
        run_seeds, task={"name": "none"},
        model={"depth": params["deep_depth"], "width": width, "activation": "relu", "init": "ntk"},
        train={"optimizer": "gd", "loss": "mse", "lr": params["lr"], "epochs": params["deep_epochs"],
               "dtype": "float32", "eval_points": 2},  # epochs 0 and T
    )
    result = engine.train(group, dataset, progress=False)
    m = result.metrics
    m = m[(m["split"] == "train") & (m["epoch"] == params["deep_epochs"])]
    seed_of = result.runs.set_index("run_id")["seed"]
    wanted = [f"rel_dist_init_layer{l}" for l in range(1, params["deep_depth"] + 2)] + ["loss"]
    rows = []
    for _, r in m[m["metric"].isin(wanted)].iterrows():
        metric = "train_loss" if r["metric"] == "loss" else r["metric"]
        rows.append((int(seed_of[r["run_id"]]), width, "deep", metric, float(r["value"])))
    return rows


def _alpha_rows(seed: int, data: dict, params: dict) -> list[tuple]:
    """The output-scale sweep at one width: GD on the centred, alpha-scaled model."""
    from mathdl import ntk

    x, y, xt, yt = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
    m = params["alpha_width"]
    p0 = ntk.init_params(m, x.shape[1], seed)
    k0 = ntk.ntk(p0, x, x)
    f0_test = ntk.forward(p0, xt)
    rows = []
    for i, alpha in enumerate(params["alphas"]):
        # Small alpha sharpens the loss by ~1/(alpha sqrt(m)) near theta_0: shrink the step with it.
        lr = params["lr"] * min(1.0, alpha * math.sqrt(m))
        p_t, train_mse = ntk.gradient_descent(p0, x, y, lr, params["alpha_steps"], alpha=alpha)
        k_t = ntk.ntk(p_t, x, x)
        test = alpha * (ntk.forward(p_t, xt) - f0_test)
        values = {"alpha": alpha, "lr": lr, "weight_change": ntk.relative_change(p_t, p0),
                  "ntk_change": float((k_t - k0).norm() / k0.norm()), "train_mse": train_mse,
                  "test_mse": float(((test - yt) ** 2).mean())}
        rows += [(seed, i, "alpha", k, v) for k, v in values.items()]
    return rows


def compute(group, data, device):
    """The width sweep (engine, batched over seeds) and the output-scale sweep, all on the CPU."""
    from mathdl.engine import TrainResult

    start = time.perf_counter()
    params = group.runs[0].params
    xy = make_data(params)
    seeds = [r.seed for r in group.runs]
    rows = []
    for width in sorted(params["widths"]):
        rows += _width_rows(seeds, width, xy, params)
    for seed in seeds:
        rows += _alpha_rows(seed, xy, params)
    for width in sorted(params["deep_widths"]):
        rows += _deep_rows(seeds, width, xy, params)
    ids = {r.seed: r.run_id for r in group.runs}
    metrics = pd.DataFrame(rows, columns=["seed", "epoch", "split", "metric", "value"])
    metrics.insert(0, "run_id", metrics.pop("seed").map(ids))
    metrics["epoch"] = metrics["epoch"].astype(int)
    metrics["value"] = metrics["value"].astype(float)
    runs = pd.DataFrame([{"run_id": r.run_id, "seed": r.seed, "diverged": False, "diverged_epoch": -1}
                         for r in group.runs])
    bad = metrics[~np.isfinite(metrics["value"])]["run_id"].unique()
    runs["diverged"] = runs["run_id"].isin(bad)
    return TrainResult(metrics=metrics, runs=runs, device="cpu", wall_time_s=time.perf_counter() - start)


# ----------------------------------------------------------------------------- analyze





def _table(m: pd.DataFrame, split: str, metric: str) -> pd.DataFrame:
    """Rows: epoch (width or alpha index); columns: run_id."""
    sel = m[(m["split"] == split) & (m["metric"] == metric)]
    return sel.pivot_table(index="epoch", columns="run_id", values="value").sort_index()


def analyze(tables, experiment) -> dict:
    """Log-log slopes against width per seed (mean and CI over seeds), values per width, the alpha sweep."""
    m = tables.metrics
    summary: dict[str, Any] = {"confidence": CI_LEVEL, "n_seeds": int(tables.runs["seed"].nunique()),
                               "theory_slope": THEORY_SLOPE}
    widths = [int(w) for w in _table(m, "width", "weight_change").index]
    summary["widths"] = widths
    for metric in WIDTH_METRICS:
        t = _table(m, "width", metric)
        summary[metric] = [mean_ci_dict(t.loc[w]) for w in widths]
    for metric, key in SLOPE_KEYS.items():
        t = _table(m, "width", metric)
        slopes = [loglog_slope(widths, t[c].to_numpy())[0] for c in t.columns]
        summary[key] = mean_ci_dict(slopes)
        summary[key]["per_seed"] = [float(s) for s in slopes]
    ratio = _table(m, "width", "test_mse").to_numpy() / _table(m, "width", "test_mse_kernel").to_numpy()
    summary["test_mse_ratio_net_over_kernel"] = [mean_ci_dict(r) for r in ratio]
    summary["max_train_mse"] = float(_table(m, "width", "train_mse").to_numpy().max())
    alphas = _table(m, "alpha", "alpha").iloc[:, 0].to_numpy()
    summary["alpha_width"] = experiment.params["alpha_width"]
    summary["alphas"] = [float(a) for a in alphas]
    for metric in ("weight_change", "ntk_change", "train_mse", "test_mse"):
        t = _table(m, "alpha", metric)
        summary[f"alpha_{metric}"] = [mean_ci_dict(t.loc[i]) for i in t.index]
    large = alphas >= 1
    t = _table(m, "alpha", "weight_change")
    summary["alpha_weight_change_slope"] = (
        mean_ci_dict([loglog_slope(alphas[large], t[c].to_numpy()[large])[0] for c in t.columns])
        if large.sum() >= 2 else None
    )
    summary.update(_deep_summary(m, experiment.params))
    summary["epochs"] = experiment.params["epochs"]
    summary["lr"] = experiment.params["lr"]
    summary["n_train"] = experiment.params["n_train"]
    summary["input_dim"] = experiment.params["input_dim"]
    return summary


def _deep_summary(m: pd.DataFrame, params: dict) -> dict:
    """Per width and layer the relative change (mean, CI over seeds); per layer the log-log slope."""
    layers = list(range(1, params["deep_depth"] + 2))
    tables = {l: _table(m, "deep", f"rel_dist_init_layer{l}") for l in layers}
    widths = [int(w) for w in tables[1].index]
    out: dict[str, Any] = {"deep_depth": params["deep_depth"], "deep_epochs": params["deep_epochs"],
                           "deep_widths": widths, "deep_layers": layers}
    out["deep_layer_change"] = {str(w): {str(l): mean_ci_dict(tables[l].loc[w]) for l in layers} for w in widths}
    out["deep_layer_change_slopes"] = {}
    for l in layers:
        t = tables[l]
        slopes = [loglog_slope(widths, t[c].to_numpy())[0] for c in t.columns]
        out["deep_layer_change_slopes"][str(l)] = {**mean_ci_dict(slopes), "per_seed": [float(v) for v in slopes]}
    out["deep_max_train_loss"] = float(_table(m, "deep", "train_loss").to_numpy().max())
    return out


# ----------------------------------------------------------------------------- figures

LABELS = {"weight_change": r"$\|\theta_T-\theta_0\|/\|\theta_0\|$",
          "ntk_change": r"$\|\Theta_T-\Theta_0\|_F/\|\Theta_0\|_F$",
          "linearization_gap": r"RMS $f_T - f^{\mathrm{lin}}_T$ (test)",
          "kernel_gap": r"RMS $f_T - f^{\mathrm{NTK}}_\infty$ (test)"}


def figures(tables, summary, experiment, plot, outdir: Path) -> list[str]:
    """changes_vs_width: the three changes and the kernel gap, log-log, with a m^{-1/2} guide;
    alpha_sweep: relative weight and kernel change and train mse against alpha."""
    import seaborn as sns

    from mathdl import plots

    plots.setup(plot)
    errorbar = ("ci", round(100 * plot.confidence))
    m = tables.metrics
    w = m[(m["split"] == "width") & m["metric"].isin(list(LABELS))].copy()
    w["quantity"] = w["metric"].map(LABELS)
    fig, (ax,) = plots.new_figure(plot)
    sns.lineplot(data=w, x="epoch", y="value", hue="quantity", marker="o", errorbar=errorbar, ax=ax)
    widths = np.array(summary["widths"], float)
    first = w[(w["epoch"] == widths[0]) & (w["metric"] == "weight_change")]["value"].mean()
    ax.plot(widths, first * (widths / widths[0]) ** THEORY_SLOPE, "k--", lw=1, label=r"$\propto m^{-1/2}$")
    ax.set(xscale="log", yscale="log", xlabel="width $m$", ylabel="relative change / gap")
    ax.legend(fontsize="small")
    names = [plots.save(fig, outdir, "changes_vs_width", plot)]

    a = m[m["split"] == "alpha"]
    alpha_of = a[a["metric"] == "alpha"].set_index(["run_id", "epoch"])["value"]
    a = a[a["metric"].isin(["weight_change", "ntk_change", "train_mse"])].copy()
    a["alpha"] = [alpha_of[(r, e)] for r, e in zip(a["run_id"], a["epoch"])]
    a["quantity"] = a["metric"].map({**LABELS, "train_mse": "final train mse"})
    fig, (ax,) = plots.new_figure(plot)
    sns.lineplot(data=a, x="alpha", y="value", hue="quantity", marker="o", errorbar=errorbar, ax=ax)
    ax.set(xscale="log", yscale="log", xlabel=r"output scale $\alpha$", ylabel="value")
    ax.legend(fontsize="small")
    names.append(plots.save(fig, outdir, "alpha_sweep", plot))

    d = m[(m["split"] == "deep") & m["metric"].str.startswith("rel_dist_init_layer")].copy()
    d["layer"] = "layer " + d["metric"].str.removeprefix("rel_dist_init_layer")
    fig, (ax,) = plots.new_figure(plot)
    sns.lineplot(data=d, x="epoch", y="value", hue="layer", marker="o", errorbar=errorbar, ax=ax)
    widths = np.array(summary["deep_widths"], float)
    first = d[d["epoch"] == widths[0]]["value"].max()
    ax.plot(widths, first * (widths / widths[0]) ** THEORY_SLOPE, "k--", lw=1, label=r"$\propto m^{-1/2}$")
    ax.set(xscale="log", yscale="log", xlabel="width $m$",
           ylabel=r"$\|W_l(T)-W_l(0)\|/\|W_l(0)\|$")
    ax.legend(fontsize="small")
    names.append(plots.save(fig, outdir, "deep_layer_change", plot))
    return names


# ----------------------------------------------------------------------------- report


def _slope_text(s: dict | None) -> str:
    return "--" if s is None else fmt(s["mean"])


_DIGITS = ("Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine")


def _word(n: int) -> str:
    """A macro-safe name of a number: 12 -> OneTwo."""
    return "".join(_DIGITS[int(c)] for c in str(n))


def report(experiment, summary, figure_dir: str, prefix: str) -> ReportPiece:
    s = slug(experiment.name)
    level = round(100 * summary["confidence"])
    macros = {
        f"{prefix}NumSeeds": fmt(summary["n_seeds"]),
        f"{prefix}MinWidth": fmt(summary["widths"][0]),
        f"{prefix}MaxWidth": fmt(summary["widths"][-1]),
        f"{prefix}Epochs": fmt(summary["epochs"]),
        f"{prefix}MaxTrainMse": fmt(summary["max_train_mse"]),
        f"{prefix}AlphaWidth": fmt(summary["alpha_width"]),
    }
    names = {"weight_change_slope": "WeightSlope", "ntk_change_slope": "KernelSlope",
             "linearization_gap_slope": "GapSlope"}
    for key, name in names.items():
        macros[f"{prefix}{name}"] = fmt(summary[key]["mean"])
        macros[f"{prefix}{name}Low"] = fmt(summary[key]["ci_low"])
        macros[f"{prefix}{name}High"] = fmt(summary[key]["ci_high"])
    macros[f"{prefix}AlphaSlope"] = _slope_text(summary["alpha_weight_change_slope"])
    macros[f"{prefix}WeightChangeSmallAlpha"] = fmt(summary["alpha_weight_change"][0]["mean"])
    macros[f"{prefix}WeightChangeLargeAlpha"] = fmt(summary["alpha_weight_change"][-1]["mean"])
    macros[f"{prefix}SmallAlpha"] = fmt(summary["alphas"][0])
    macros[f"{prefix}LargeAlpha"] = fmt(summary["alphas"][-1])
    macros[f"{prefix}KernelGapMaxWidth"] = fmt(summary["kernel_gap"][-1]["mean"])
    macros[f"{prefix}TestMseMaxWidth"] = fmt(summary["test_mse"][-1]["mean"])
    macros[f"{prefix}TestMseKernelMaxWidth"] = fmt(summary["test_mse_kernel"][-1]["mean"])
    macros[f"{prefix}DeepDepth"] = fmt(summary["deep_depth"])
    macros[f"{prefix}DeepEpochs"] = fmt(summary["deep_epochs"])
    macros[f"{prefix}DeepMinWidth"] = fmt(summary["deep_widths"][0])
    macros[f"{prefix}DeepMaxWidth"] = fmt(summary["deep_widths"][-1])
    macros[f"{prefix}DeepMaxTrainLoss"] = fmt(summary["deep_max_train_loss"])
    lo_w, hi_w = str(summary["deep_widths"][0]), str(summary["deep_widths"][-1])
    deep_parts = []
    for layer in summary["deep_layers"]:
        name = f"{prefix}DeepLayer{_word(layer)}"
        slope = summary["deep_layer_change_slopes"][str(layer)]
        macros[f"{name}Slope"] = fmt(slope["mean"])
        macros[f"{name}SlopeLow"] = fmt(slope["ci_low"])
        macros[f"{name}SlopeHigh"] = fmt(slope["ci_high"])
        macros[f"{name}MinWidth"] = fmt(summary["deep_layer_change"][lo_w][str(layer)]["mean"])
        macros[f"{name}MaxWidth"] = fmt(summary["deep_layer_change"][hi_w][str(layer)]["mean"])
        deep_parts.append(f"layer~{layer}: \\{name}MinWidth{{}} to \\{name}MaxWidth, slope \\{name}Slope{{}} "
                          f"[\\{name}SlopeLow, \\{name}SlopeHigh]")
    deep_text = "; ".join(deep_parts)

    rows = []
    for i, w in enumerate(summary["widths"]):
        rows.append([fmt(w)] + [fmt(summary[k][i]["mean"]) for k in
                                ("weight_change", "ntk_change", "linearization_gap", "test_mse", "test_mse_kernel")])
    table = booktabs_table(
        ["$m$", "weight change", "kernel change", "lin.\\ gap", "test mse (net)", "test mse (NTK)"], rows,
        caption=f"Lazy training against width, means over \\{prefix}NumSeeds{{}} seeds.", label=f"tab:{s}")
    p = prefix
    section = "\n".join([
        f"\\subsection{{{escape(experiment.title)}}}",
        f"\\label{{sec:{s}}}",
        escape(experiment.description),
        "",
        r"In the NTK parametrization a network of width $m$ is $f(\theta,x)=m^{-1/2}\sum_j a_j\sigma(w_j^\top x/\sqrt d+b_j)+b$.",
        r"\citet{jacot2018neural} showed that as $m\to\infty$ its tangent kernel "
        r"$\Theta_\theta(x,x')=\langle\nabla_\theta f(\theta,x),\nabla_\theta f(\theta,x')\rangle$ "
        r"becomes deterministic at initialization and constant during gradient flow, so training is kernel "
        r"gradient descent; \citet{du2019gradient} proved that gradient descent then reaches zero training loss. "
        r"\citet{lee2019wide} showed that the trained network stays within $O(m^{-1/2})$ of its linearization "
        r"$f^{\mathrm{lin}}(\theta,x)=f(\theta_0,x)+J_0(x)(\theta-\theta_0)$, with relative weight and kernel "
        r"changes $O(m^{-1/2})$: the rate $-1/2$ is the slope we compare with. "
        r"\citet{chizat2019lazy} explained this laziness as a matter of scale: training $\alpha h(\theta)$ on the "
        r"loss $R(\alpha h)/\alpha^2$ moves the weights by $O(1/\alpha)$, so large $\alpha$ is lazy and "
        r"small $\alpha$ learns features.",
        "",
        f"We trained one-hidden-layer ReLU networks of widths \\{p}MinWidth{{}} to \\{p}MaxWidth{{}} "
        f"(\\{p}NumSeeds{{}} initializations each) by full-batch gradient descent with step {fmt(summary['lr'])} "
        f"for \\{p}Epochs{{}} steps on the mean squared error, on $n={summary['n_train']}$ points "
        f"$x\\sim N(0,I_{{{summary['input_dim']}}})$ with $y=\\sin(2\\langle u,x\\rangle)$ "
        f"(largest final training error \\{p}MaxTrainMse). The empirical NTK is $J J^\\top$ with $J$ from "
        r"\texttt{vmap(jacrev(f))}, and the linearized model after the same steps is solved in closed form "
        r"through $\Theta_0$.",
        f"Figure~\\ref{{fig:{s}-width}} and Table~\\ref{{tab:{s}}} show the results. Fitted log-log slopes "
        f"against width (mean over seeds, {level}\\% interval): relative weight change \\{p}WeightSlope{{}} "
        f"[\\{p}WeightSlopeLow, \\{p}WeightSlopeHigh], relative kernel change \\{p}KernelSlope{{}} "
        f"[\\{p}KernelSlopeLow, \\{p}KernelSlopeHigh], linearization gap \\{p}GapSlope{{}} "
        f"[\\{p}GapSlopeLow, \\{p}GapSlopeHigh], against the theoretical $-1/2$ "
        r"(an upper bound for the gap; a slope steeper than $-1/2$ is consistent with it). "
        f"At the largest width the network's test error is \\{p}TestMseMaxWidth{{}} and that of kernel "
        f"regression with its NTK at initialization \\{p}TestMseKernelMaxWidth{{}} "
        f"(RMS difference of the predictions \\{p}KernelGapMaxWidth; it includes the unfinished "
        r"directions of small eigenvalues, which gradient descent has not fitted after finitely many steps).",
        f"Figure~\\ref{{fig:{s}-alpha}} sweeps the output scale at width \\{p}AlphaWidth{{}} with the centred "
        f"model: the relative weight change goes from \\{p}WeightChangeSmallAlpha{{}} at $\\alpha=\\{p}SmallAlpha$ "
        f"to \\{p}WeightChangeLargeAlpha{{}} at $\\alpha=\\{p}LargeAlpha$, with slope \\{p}AlphaSlope{{}} "
        r"for $\alpha\ge1$ (theory: $-1$).",
        "",
        f"Deeper networks: we trained ReLU networks with \\{p}DeepDepth{{}} hidden layers of widths "
        f"\\{p}DeepMinWidth{{}} to \\{p}DeepMaxWidth{{}} in the NTK parametrization on the same data, by "
        f"full-batch gradient descent on the mean squared error with the same step for \\{p}DeepEpochs{{}} steps "
        f"(largest final training loss \\{p}DeepMaxTrainLoss), and recorded for every layer $l$ (weight and "
        r"bias) the relative distance from initialization $\|W_l(T)-W_l(0)\|/\|W_l(0)\|$. "
        r"In the NTK regime theory predicts every layer's change to shrink with width, like $m^{-1/2}$ "
        r"\citep{jacot2018neural,lee2019wide} (an upper rate: the $m\times m$ hidden-to-hidden matrices, "
        r"whose initial norm grows like $m$, may shrink faster). "
        f"Figure~\\ref{{fig:{s}-deep}}: relative change from the smallest to the largest width and fitted "
        f"log-log slope (mean over seeds, {level}\\% interval), {deep_text}.",
        "",
        figure_tex(
            figure_dir, "changes_vs_width",
            f"Relative weight and kernel change, and RMS gaps of the trained network to its "
            f"linearization and to NTK kernel regression, against width (mean and {level}\\% band over seeds); "
            r"dashed: slope $-1/2$.",
            f"fig:{s}-width", width=r"0.8\linewidth"),
        "",
        figure_tex(
            figure_dir, "alpha_sweep",
            f"Output-scale sweep at width \\{p}AlphaWidth: relative weight and kernel change and the "
            r"final training error against $\alpha$.",
            f"fig:{s}-alpha", width=r"0.8\linewidth"),
        "",
        figure_tex(
            figure_dir, "deep_layer_change",
            f"Networks with \\{p}DeepDepth{{}} hidden layers: relative distance from initialization "
            f"of each layer after \\{p}DeepEpochs{{}} GD steps against width (mean and {level}\\% band over "
            r"seeds); dashed: slope $-1/2$.",
            f"fig:{s}-deep", width=r"0.8\linewidth"),
        "",
        table,
        "",
    ])
    slides = "\n".join([
        f"\\begin{{frame}}{{{escape(experiment.title)}}}",
        r"  \begin{columns}",
        r"    \begin{column}{0.55\textwidth}",
        f"      \\includegraphics[width=\\linewidth]{{{figure_dir}/changes_vs_width.pdf}}",
        r"    \end{column}",
        r"    \begin{column}{0.43\textwidth}\small",
        r"      \begin{itemize}",
        f"        \\item widths \\{p}MinWidth--\\{p}MaxWidth, NTK parametrization, GD",
        f"        \\item slopes vs width: weights \\{p}WeightSlope, kernel \\{p}KernelSlope, "
        f"linearization gap \\{p}GapSlope{{}} (theory $-1/2$)",
        f"        \\item output scale: weight change \\{p}WeightChangeSmallAlpha{{}} at "
        f"$\\alpha=\\{p}SmallAlpha$, \\{p}WeightChangeLargeAlpha{{}} at $\\alpha=\\{p}LargeAlpha$",
        r"      \end{itemize}",
        r"    \end{column}",
        r"  \end{columns}",
        r"\end{frame}",
        "",
    ])
    return ReportPiece(macros=macros, section=section, slides=slides)
