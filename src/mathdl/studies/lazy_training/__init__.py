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

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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
GAPS_COINCIDE = 0.05  # the two RMS gaps differ by less than this fraction at every width: drawn as one curve


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


def _dataset(data: dict):
    """The engine's Dataset of the shared data (NumPy, on the host); no validation split."""
    from mathdl.tasks import Dataset

    x, y, xt, yt = (data[k].cpu().numpy() for k in ("x_train", "y_train", "x_test", "y_test"))
    empty = np.zeros((0, x.shape[1]))
    return Dataset("regression", 1, x, y[:, None], empty, np.zeros((0, 1)), xt, yt[:, None])


def _width_rows(run_seeds, width: int, data: dict, params: dict, device: str) -> tuple[list[tuple], str]:
    """Train all seeds at one width with the engine on ``device`` (data: tensors on that device);
    the NTK quantities per seed (NaN for a seed that diverged), and the device used."""
    from mathdl import engine, ntk
    from mathdl.studies._divergence import failed_runs

    x, y, xt, yt = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
    dataset = _dataset(data)
    group = engine.make_group(
        run_seeds, task={"name": "none"},
        model={"depth": 1, "width": width, "activation": "relu", "init": "ntk"},
        train={"optimizer": "gd", "loss": "mse", "lr": params["lr"], "epochs": params["epochs"],
               "dtype": "float64", "eval_points": 3},  # epochs 0, 1 and T
    )
    result = engine.train(group, dataset, device=device, progress=False)
    engine_change = result.metrics.query("metric == 'rel_dist_init' and split == 'train'")
    engine_change = engine_change[engine_change["epoch"] == engine_change["epoch"].max()]
    failed = failed_runs(result)
    rows = []
    for i, seed in enumerate(run_seeds):
        if group.runs[i].run_id in failed:  # even at the last step: no value of it enters a mean
            rows += [(seed, width, "width", k, float("nan")) for k in WIDTH_METRICS]
            continue
        p0 = tuple(p.to(x.device) for p in ntk.init_params(width, x.shape[1], seed))
        p_t = tuple(p.to(x.device) for p in ntk.from_stacked(result.params, i))
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
    return rows, result.device


def _deep_rows(run_seeds, width: int, data: dict, params: dict, device: str) -> list[tuple]:
    """Train all seeds of a deep network at one width on ``device``; the engine's per-layer
    relative change at T (NaN for a seed that diverged)."""
    from mathdl import engine
    from mathdl.studies._divergence import failed_runs

    dataset = _dataset(data)
    group = engine.make_group(
        run_seeds, task={"name": "none"},
        model={"depth": params["deep_depth"], "width": width, "activation": "relu", "init": "ntk"},
        train={"optimizer": "gd", "loss": "mse", "lr": params["lr"], "epochs": params["deep_epochs"],
               "dtype": "float32", "eval_points": 2},  # epochs 0 and T
    )
    result = engine.train(group, dataset, device=device, progress=False)
    m = result.metrics
    m = m[(m["split"] == "train") & (m["epoch"] == params["deep_epochs"])]
    seed_of = result.runs.set_index("run_id")["seed"]
    failed = failed_runs(result)
    wanted = [f"rel_dist_init_layer{l}" for l in range(1, params["deep_depth"] + 2)] + ["loss"]
    rows = []
    for _, r in m[m["metric"].isin(wanted)].iterrows():
        metric = "train_loss" if r["metric"] == "loss" else r["metric"]
        value = float("nan") if r["run_id"] in failed else float(r["value"])
        rows.append((int(seed_of[r["run_id"]]), width, "deep", metric, value))
    return rows


def _alpha_rows(seed: int, data: dict, params: dict) -> list[tuple]:
    """The output-scale sweep at one width: GD on the centred, alpha-scaled model."""
    from mathdl import ntk

    x, y, xt, yt = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
    m = params["alpha_width"]
    p0 = tuple(p.to(x.device) for p in ntk.init_params(m, x.shape[1], seed))
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


def networks(group) -> list:
    """What the group's job trains (mathdl.resources sizes the job from it): the width sweep (float64
    full-batch GD) and the deep sweep, all seeds batched, one width after another (the kernels and
    the output-scale sweep at one width are small beside them)."""
    from mathdl.resources import Networks

    p = group.runs[0].params
    shared = dict(n_models=len(group.runs), input_dim=p["input_dim"], n_outputs=1, n_train=p["n_train"],
                  n_eval=p["n_test"], batch_size=0, optimizer="gd", early_stopping=False)
    wide = [Networks.of_group(group, model=dataclasses.replace(group.model, depth=1, width=w, residual=False),
                              epochs=p["epochs"], eval_points=3, dtype="float64", **shared) for w in p["widths"]]
    deep = [Networks.of_group(group, model=dataclasses.replace(group.model, depth=p["deep_depth"], width=w,
                                                               residual=False),
                              epochs=p["deep_epochs"], eval_points=2, dtype="float32", **shared)
            for w in p["deep_widths"]]
    return wide + deep


def compute(group, data, device):
    """The width sweep (engine, batched over seeds), the output-scale sweep and the deep sweep, all
    on ``device`` (the kernels and linearizations too). A seed that diverges at a width, or whose
    value is not finite, is a diverged run; its values are NaN and enter no mean."""
    from mathdl.engine import TrainResult, resolve_device

    start = time.perf_counter()
    params = group.runs[0].params
    dev = resolve_device(device)
    xy = {k: v.to(dev) for k, v in make_data(params).items()}
    seeds = [r.seed for r in group.runs]
    rows, used = [], str(dev)
    for width in sorted(params["widths"]):
        width_rows, used = _width_rows(seeds, width, xy, params, device)
        rows += width_rows
    for seed in seeds:
        rows += _alpha_rows(seed, xy, params)
    for width in sorted(params["deep_widths"]):
        rows += _deep_rows(seeds, width, xy, params, device)
    ids = {r.seed: r.run_id for r in group.runs}
    metrics = pd.DataFrame(rows, columns=["seed", "epoch", "split", "metric", "value"])
    metrics.insert(0, "run_id", metrics.pop("seed").map(ids))
    metrics["epoch"] = metrics["epoch"].astype(int)
    metrics["value"] = metrics["value"].astype(float)
    runs = pd.DataFrame([{"run_id": r.run_id, "seed": r.seed, "diverged": False, "diverged_epoch": -1}
                         for r in group.runs])
    bad = metrics[~np.isfinite(metrics["value"])]["run_id"].unique()
    runs["diverged"] = runs["run_id"].isin(bad)
    return TrainResult(metrics=metrics, runs=runs, device=used, wall_time_s=time.perf_counter() - start)


# ----------------------------------------------------------------------------- analyze





def _table(m: pd.DataFrame, split: str, metric: str) -> pd.DataFrame:
    """Rows: epoch (width or alpha index); columns: run_id."""
    sel = m[(m["split"] == split) & (m["metric"] == metric)]
    return sel.pivot_table(index="epoch", columns="run_id", values="value").sort_index()


def _finite_max(t: pd.DataFrame) -> float | None:
    """The largest finite value (diverged runs are NaN and left out); None if there is none."""
    v = t.to_numpy(dtype=float)
    return float(v[np.isfinite(v)].max()) if np.isfinite(v).any() else None


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
    summary["max_train_mse"] = _finite_max(_table(m, "width", "train_mse"))
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
    summary.update(_readings(tables, summary, experiment.params))
    return summary


def _readings(tables, summary: dict, params: dict) -> dict:
    """The numbers the words branch on. The test mse of predicting the training mean (and Var y_test):
    a model generalizes only if it beats it. At how many widths the network and NTK kernel regression
    beat it. How far apart the two RMS gaps are (relative to the linearization gap): they coincide when
    the linearized model after T steps has converged to kernel regression, its T = infinity limit."""
    data = make_data(params)
    y_train, y_test = data["y_train"].numpy(), data["y_test"].numpy()
    baseline = float(np.mean((y_test - y_train.mean()) ** 2))

    def below(key: str) -> int:
        return sum(e["mean"] is not None and e["mean"] < baseline for e in summary[key])

    lin = np.array([np.nan if e["mean"] is None else e["mean"] for e in summary["linearization_gap"]], float)
    kernel = np.array([np.nan if e["mean"] is None else e["mean"] for e in summary["kernel_gap"]], float)
    gaps = np.abs(kernel - lin) / lin
    return {
        "n_runs": int(len(tables.runs)),
        "n_diverged": int(tables.runs["diverged"].sum()),
        "test_variance": float(np.var(y_test)),
        "test_mse_of_train_mean": baseline,
        "n_widths_net_below_train_mean": below("test_mse"),
        "n_widths_kernel_below_train_mean": below("test_mse_kernel"),
        "gaps_max_relative_difference": float(np.nanmax(gaps)) if np.isfinite(gaps).any() else None,
        "gaps_coincide_below": GAPS_COINCIDE,
    }


def _gaps_coincide(summary: dict) -> bool:
    diff = summary.get("gaps_max_relative_difference")
    return diff is not None and diff < summary["gaps_coincide_below"]


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
    out["deep_max_train_loss"] = _finite_max(_table(m, "deep", "train_loss"))
    return out


# ----------------------------------------------------------------------------- figures

LABELS = {"weight_change": r"$\|\theta_T-\theta_0\|/\|\theta_0\|$",
          "ntk_change": r"$\|\Theta_T-\Theta_0\|_F/\|\Theta_0\|_F$",
          "linearization_gap": r"RMS $f_T - f^{\mathrm{lin}}_T$ (test)",
          "kernel_gap": r"RMS $f_T - f^{\mathrm{NTK}}_\infty$ (test)"}


def _grid_ticks(ax, values) -> None:
    """Label the log x axis at the grid's own values (matplotlib would label minor ticks on top of
    each other when the grid spans under two decades)."""
    from matplotlib import ticker

    ax.xaxis.set_major_locator(ticker.FixedLocator([float(v) for v in values]))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())


def figures(tables, summary, experiment, plot, outdir: Path) -> list[str]:
    """changes_vs_width: the three changes and the kernel gap, log-log, with a m^{-1/2} guide;
    alpha_sweep: relative weight and kernel change and train mse against alpha."""
    import seaborn as sns

    from mathdl import plots

    plots.setup(plot)
    errorbar = ("ci", round(100 * plot.confidence))
    m = tables.metrics
    w = m[(m["split"] == "width") & m["metric"].isin(list(LABELS))].copy()
    labels = dict(LABELS)
    if _gaps_coincide(summary):  # one curve for both gaps (the caption says so), not two drawn on top of each other
        w = w[w["metric"] != "kernel_gap"]
        labels["linearization_gap"] = r"RMS $f_T - f^{\mathrm{lin}}_T$ $\approx$ RMS $f_T - f^{\mathrm{NTK}}_\infty$ (test)"
        del labels["kernel_gap"]
    w["quantity"] = w["metric"].map(labels)
    fig, (ax,) = plots.new_figure(plot)
    order = list(labels.values())
    sns.lineplot(data=w, x="epoch", y="value", hue="quantity", hue_order=order, style="quantity", style_order=order,
                 markers=dict(zip(order, ("o", "s", "^", "D"))), dashes=dict(zip(order, ("", (4, 2), "", (1, 1.5)))),
                 errorbar=errorbar, ax=ax)
    widths = np.array(summary["widths"], float)
    first = w[(w["epoch"] == widths[0]) & (w["metric"] == "weight_change")]["value"].mean()
    ax.plot(widths, first * (widths / widths[0]) ** THEORY_SLOPE, "k--", lw=1, label=r"$\propto m^{-1/2}$")
    ax.set(xscale="log", yscale="log", xlabel="width $m$", ylabel="relative change / gap")
    _grid_ticks(ax, summary["widths"])
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
    _grid_ticks(ax, summary["alphas"])
    ax.legend(fontsize="small")
    names.append(plots.save(fig, outdir, "alpha_sweep", plot))

    d = m[(m["split"] == "deep") & m["metric"].str.startswith("rel_dist_init_layer")].copy()
    d["layer"] = "layer " + d["metric"].str.removeprefix("rel_dist_init_layer")
    fig, (ax,) = plots.new_figure(plot)
    layers = [f"layer {l}" for l in summary["deep_layers"]]  # hidden-to-hidden layers nearly coincide: own markers
    sns.lineplot(data=d, x="epoch", y="value", hue="layer", hue_order=layers, style="layer", style_order=layers,
                 markers=True, errorbar=errorbar, ax=ax)
    widths = np.array(summary["deep_widths"], float)
    first = d[d["epoch"] == widths[0]]["value"].max()
    ax.plot(widths, first * (widths / widths[0]) ** THEORY_SLOPE, "k--", lw=1, label=r"$\propto m^{-1/2}$")
    ax.set(xscale="log", yscale="log", xlabel="width $m$",
           ylabel=r"$\|W_l(T)-W_l(0)\|/\|W_l(0)\|$")
    _grid_ticks(ax, summary["deep_widths"])
    ax.legend(fontsize="small")
    names.append(plots.save(fig, outdir, "deep_layer_change", plot))
    return names


# ----------------------------------------------------------------------------- words


def context(experiment, summary) -> dict:
    """What the templates need beyond the summary: the table's cells, per deep layer its change at
    the smallest and largest width and its slope, and the layers whose change does not shrink."""
    from mathdl.report import fmt

    rows = [[fmt(w)] + [fmt(summary[k][i]["mean"]) for k in
                        ("weight_change", "ntk_change", "linearization_gap", "test_mse", "test_mse_kernel")]
            for i, w in enumerate(summary["widths"])]
    small, large = str(summary["deep_widths"][0]), str(summary["deep_widths"][-1])
    layers = [{"layer": l, "slope": summary["deep_layer_change_slopes"][str(l)],
               "smallest": summary["deep_layer_change"][small][str(l)]["mean"],
               "largest": summary["deep_layer_change"][large][str(l)]["mean"]} for l in summary["deep_layers"]]
    growing = [d["layer"] for d in layers
               if d["smallest"] is None or d["largest"] is None or d["largest"] >= d["smallest"]]
    names = {"weight_change_slope": "relative weight change", "ntk_change_slope": "relative kernel change",
             "linearization_gap_slope": "linearization gap"}
    shallower = [n for k, n in names.items() if summary[k]["ci_low"] is not None and summary[k]["ci_low"] > THEORY_SLOPE]
    no_interval = [n for k, n in names.items() if summary[k]["ci_low"] is None]
    return {"rows": rows, "deep": layers, "deep_not_shrinking": growing, "gaps_coincide": _gaps_coincide(summary),
            "slopes_shallower": shallower, "slopes_without_interval": no_interval}
