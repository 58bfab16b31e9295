"""What depth buys: Telgarsky's sawtooth and a trained radial separation.

(a) **Sawtooth** (Telgarsky 2016). The tent map ``t(x) = 2 relu(x) - 4 relu(x - 1/2)`` sends
[0, 1] onto itself; composed k times it is the sawtooth ``s_k(x) = 2 dist(2^(k-1) x, Z)`` with
2^(k-1) teeth and 2^k linear pieces. It is a ReLU network of depth k and width 2 (weights in
``sawtooth_params``; 6k + 1 parameters). We evaluate that network with the project's forward
pass (``mathdl.models.forward``, float64) on the dyadic grid ``j / 2^(k + refine)``, compare it
with the closed form, and count its linear pieces on the grid.

A one-hidden-layer ReLU network of width W is affine between its at most W breakpoints, so
on [0, 1] it has at most W + 1 pieces. Of the 2^k triangles of s_k at least 2^k - W contain
no breakpoint, and on such a triangle (width 2^-k) the best affine L2 fit of a tent is its mean
(the tent is symmetric, x - 1/2 is not), leaving 2^-k Var(tent) = 2^-k / 12. Hence for every
width-W network f
    int_0^1 (f - s_k)^2 dx >= (1 - W / 2^k)_+ / 12,
which stays bounded below until W reaches 2^k. We fit width-W networks with a fixed first
layer (breakpoints at the first W dyadic points j / 2^k, ``shallow_knots``, which nearly
attains the bound; evenly spaced breakpoints j / W do worse, e.g. 1/12 at W = 2^(k-1), where
they all fall on zeros of s_k) and the output layer by least squares on the grid and the
breakpoints: from W = 2^k on the fit is exact.
Their L2 error is integrated exactly (the error is piecewise linear between the merged grid
and breakpoints).

(b) **Radial target** (Eldan and Shamir 2016; Safran and Shamir 2017). x ~ N(0, I_d), target
``y = sin(2 pi f (|x| - sqrt(d)))``, oscillating in the radius. A three-layer network (two
hidden layers of width ``deep_width``) can compute |x|^2 as a sum of one-dimensional functions
and then the profile; a two-layer network of (about) the same parameter count (width chosen to
match) must tile the sphere's shells with ridge functions. Both are trained with the engine
(adam, mse, the same schedule, one network per seed); we report the test MSE at the last epoch.
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
        "Can a shallow network do what a deep one does with the same number of parameters? "
        "Telgarsky's sawtooth and a radial target in ten dimensions."
    ),
    "seeds": [0, 1, 2],
    "task": {"name": "none"},
    "sweep": {},
}

PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "k_max": {
            "description": "Largest number of tent-map compositions k of the sawtooth; k = 1..k_max.",
            "type": "integer", "minimum": 1, "maximum": 16, "default": 6,
        },
        "grid_refine": {
            "description": "The sawtooth of depth k is evaluated on 2^(k + grid_refine) + 1 dyadic points.",
            "type": "integer", "minimum": 1, "maximum": 10, "default": 4,
        },
        "shallow_widths": {
            "description": "Widths W of the one-hidden-layer networks fitted to each sawtooth.",
            "type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1,
            "default": [1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64],
        },
        "dim": {
            "description": "Input dimension d of the radial target.",
            "type": "integer", "minimum": 2, "maximum": 1000, "default": 10,
        },
        "frequency": {
            "description": "Frequency f of the radial profile sin(2 pi f (|x| - sqrt d)).",
            "type": "number", "exclusiveMinimum": 0, "default": 0.4,
        },
        "n_train": {
            "description": "Training points of the radial target (shared by all seeds).",
            "type": "integer", "minimum": 1, "default": 8000,
        },
        "n_test": {
            "description": "Test points of the radial target.",
            "type": "integer", "minimum": 1, "default": 4000,
        },
        "deep_width": {
            "description": "Width of both hidden layers of the three-layer network; the two-layer "
                           "network's width is chosen to match its parameter count.",
            "type": "integer", "minimum": 1, "default": 32,
        },
        "epochs": {"description": "Training epochs of both networks.", "type": "integer", "minimum": 1,
                   "default": 80},
        "lr": {"description": "Adam learning rate of both networks.", "type": "number",
               "exclusiveMinimum": 0, "default": 0.005},
        "batch_size": {"description": "Minibatch size of both networks.", "type": "integer", "minimum": 1,
                       "default": 256},
        "data_seed": {"description": "Seed of the radial data set (the run seeds vary the networks).",
                      "type": "integer", "minimum": 0, "default": 0},
    },
}

EXACT_TOL = 1e-10  # an L2 error below this counts as an exact fit
FIGURES = ("sawtooth", "shallow_fit", "radial")
ARCHS = ("shallow", "deep")  # two-layer (one hidden layer) and three-layer (two hidden layers)


# ----------------------------------------------------------------------------- the sawtooth


def sawtooth(x: np.ndarray, k: int) -> np.ndarray:
    """The k-fold tent map in closed form: s_k(x) = 2 dist(2^(k-1) x, Z) on [0, 1]."""
    y = np.ldexp(np.asarray(x, dtype=np.float64), k - 1)
    return 2.0 * np.abs(y - np.round(y))


def sawtooth_architecture(k: int):
    from mathdl.models import Architecture

    return Architecture(input_dim=1, output_dim=1, depth=k, width=2, activation="relu", residual=False,
                        residual_scale=1.0, init="pytorch", output_scale=1.0)


def sawtooth_params(k: int) -> list:
    """The weights of t∘...∘t (k times) as a width-2 ReLU network, stacked for M = 1 model.

    Hidden layer 1: (relu(x), relu(x - 1/2)); the read-out of each tent is 2 h_1 - 4 h_2, so
    hidden layer l > 1 applies both units to that combination: W_l = [[2, -4], [2, -4]],
    b_l = (0, -1/2); the output is 2 h_1 - 4 h_2. Tensors of shape (1, out, in) and (1, out, 1).
    """
    import torch

    f64 = torch.float64
    first_w, bias = torch.tensor([[1.0], [1.0]], dtype=f64), torch.tensor([[0.0], [-0.5]], dtype=f64)
    inner_w, out_w = torch.tensor([[2.0, -4.0], [2.0, -4.0]], dtype=f64), torch.tensor([[2.0, -4.0]], dtype=f64)
    params = [first_w[None], bias[None]]
    for _ in range(k - 1):
        params += [inner_w[None], bias[None]]
    return params + [out_w[None], torch.zeros(1, 1, 1, dtype=f64)]


def deep_sawtooth(x: np.ndarray, k: int) -> np.ndarray:
    """The depth-k width-2 network evaluated by the engine's forward pass, in float64."""
    import torch

    from mathdl.models import forward

    xt = torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(1, 1, -1)  # (M, in, B)
    return forward(sawtooth_params(k), xt, sawtooth_architecture(k)).reshape(-1).numpy()


def dyadic_grid(k: int, refine: int) -> np.ndarray:
    """j / 2^(k + refine), j = 0..2^(k + refine): every breakpoint of s_k is a grid point."""
    n = 2 ** (k + refine)
    return np.arange(n + 1, dtype=np.float64) / n


def count_pieces(x: np.ndarray, y: np.ndarray, tol: float = 1e-8) -> int:
    """Linear pieces of the piecewise linear interpolant of (x, y): 1 + changes of slope.

    Exact for a continuous piecewise linear function whose breakpoints are all in ``x``.
    """
    slopes = np.diff(y) / np.diff(x)
    jumps = np.abs(np.diff(slopes)) > tol * np.maximum(1.0, np.abs(slopes[:-1]))
    return 1 + int(jumps.sum())


# ----------------------------------------------------------------------------- shallow fits


def shallow_knots(width: int, k: int) -> np.ndarray:
    """The W breakpoints of the shallow fit to s_k: the first min(W, 2^k) dyadic points j/2^k
    (j = 0, 1, ...), so the fit follows s_k exactly on [0, (W-1)/2^k] and is one line after it;
    from W = 2^k on all of them (an exact fit) and the rest spread over (0, 1)."""
    n = 2**k
    extra = max(width - n, 0)
    return np.concatenate([np.arange(min(width, n)) / n, (np.arange(extra) + 0.5) / max(extra, 1)])


def shallow_features(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """relu(x - t_j) for the W knots t_j, and a constant (the output bias): (n, W + 1)."""
    return np.concatenate([np.maximum(x[:, None] - knots[None, :], 0.0), np.ones((len(x), 1))], axis=1)


def fit_shallow(x: np.ndarray, y: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Output-layer coefficients of the one-hidden-layer network with these breakpoints, least
    squares on (x, y) (the minimum-norm solution where knots repeat)."""
    coef, *_ = np.linalg.lstsq(shallow_features(x, knots), y, rcond=None)
    return coef


def shallow_eval(x: np.ndarray, knots: np.ndarray, coef: np.ndarray) -> np.ndarray:
    return shallow_features(x, knots) @ coef


def shallow_network_pieces(x: np.ndarray, w: np.ndarray, b: np.ndarray, a: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate f(x) = c + sum_i a_i relu(w_i x + b_i) on ``x`` merged with its breakpoints in (0, 1).

    Returns (points, values), ready for ``count_pieces``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        kinks = -b / w
    kinks = kinks[np.isfinite(kinks) & (kinks > x.min()) & (kinks < x.max())]
    pts = np.unique(np.concatenate([x, kinks]))
    return pts, c + np.maximum(np.outer(pts, w) + b, 0.0) @ a


def exact_l2_error(knots: np.ndarray, coef: np.ndarray, k: int, refine: int) -> float:
    """int_0^1 (f - s_k)^2 dx exactly: the error is linear between the merged grid and breakpoints."""
    pts = np.union1d(dyadic_grid(k, refine), knots)
    e = shallow_eval(pts, knots, coef) - sawtooth(pts, k)
    h = np.diff(pts)
    return float(np.sum(h * (e[:-1] ** 2 + e[:-1] * e[1:] + e[1:] ** 2) / 3.0))


def shallow_lower_bound(width: int, k: int) -> float:
    """(1 - W / 2^k)_+ / 12: no width-W one-hidden-layer ReLU network gets closer to s_k in L2^2."""
    return max(0.0, 1.0 - width / 2**k) / 12.0


def sawtooth_rows(k_max: int, refine: int, widths) -> list[tuple]:
    """(epoch, split, metric, value) rows of part (a); epoch is k for the sawtooth, W for the fits."""
    rows = []
    for k in range(1, k_max + 1):
        x = dyadic_grid(k, refine)
        target, deep = sawtooth(x, k), deep_sawtooth(x, k)
        rows += [
            (k, "sawtooth", "max_error", float(np.max(np.abs(deep - target)))),
            (k, "sawtooth", "pieces", count_pieces(x, deep)),
            (k, "sawtooth", "deep_params", sawtooth_architecture(k).parameter_count()),
        ]
        for width in widths:
            knots = shallow_knots(width, k)
            pts = np.union1d(x, knots)  # fit on the knots too: the fit is linear between these points
            coef = fit_shallow(pts, sawtooth(pts, k), knots)
            fitted = shallow_eval(pts, knots, coef)
            split = f"shallow_k{k}"
            rows += [
                (width, split, "l2_error", exact_l2_error(knots, coef, k, refine)),
                (width, split, "max_error", float(np.max(np.abs(fitted - sawtooth(pts, k))))),
                (width, split, "pieces", count_pieces(pts, fitted)),
                (width, split, "lower_bound", shallow_lower_bound(width, k)),
            ]
    return rows


# ----------------------------------------------------------------------------- the radial target


def radial_profile(r: np.ndarray, dim: int, frequency: float) -> np.ndarray:
    """g(r) = sin(2 pi f (r - sqrt d)): oscillates across the shell where |x| concentrates."""
    return np.sin(2 * np.pi * frequency * (r - math.sqrt(dim)))


def radial_data(p: dict):
    """x ~ N(0, I_d) and y = g(|x|), float32; no validation split (nothing is selected)."""
    from mathdl.tasks import Dataset

    rng = np.random.default_rng([p["data_seed"], p["dim"]])

    def sample(n):
        x = rng.standard_normal((n, p["dim"]))
        y = radial_profile(np.linalg.norm(x, axis=1), p["dim"], p["frequency"])
        return x.astype(np.float32), y[:, None].astype(np.float32)

    x_train, y_train = sample(p["n_train"])
    x_test, y_test = sample(p["n_test"])
    return Dataset("regression", 1, x_train, y_train, x_train[:0], y_train[:0], x_test, y_test)


def matched_widths(dim: int, deep_width: int) -> tuple[int, int, int]:
    """(shallow width, shallow params, deep params): the one-hidden-layer width whose parameter
    count (d + 2) W + 1 is nearest to that of two hidden layers of width ``deep_width``."""
    w = deep_width
    deep = (dim + 1) * w + (w + 1) * w + w + 1
    shallow_w = max(1, round((deep - 1) / (dim + 2)))
    return shallow_w, (dim + 2) * shallow_w + 1, deep


def train_radial(group, p: dict, device: str):
    """Train both architectures on the radial data, all seeds batched; rows and per-run status."""
    from mathdl import engine

    data = radial_data(p)
    shallow_w, _, _ = matched_widths(p["dim"], p["deep_width"])
    train = {"loss": "mse", "optimizer": "adam", "lr": p["lr"], "batch_size": p["batch_size"],
             "epochs": p["epochs"], "eval_points": 12}
    seeds = [r.seed for r in group.runs]
    by_seed = {r.seed: r.run_id for r in group.runs}
    frames, diverged = [], {r.run_id: -1 for r in group.runs}
    var_y = float(np.var(data.y_test))
    for arch, (depth, width) in zip(ARCHS, [(1, shallow_w), (2, p["deep_width"])]):
        spec = engine.make_group(seeds, model={"depth": depth, "width": width, "activation": "relu"},
                                 train=train, experiment=group.experiment)
        result = engine.train(spec, data, device=device, progress=False)
        seed_of = {r.run_id: r.seed for r in spec.runs}
        m = result.metrics[(result.metrics["metric"] == "loss") & result.metrics["split"].isin(["train", "test"])]
        m = m.assign(run_id=m["run_id"].map(seed_of).map(by_seed), metric=f"{arch}_mse")
        rel = m.assign(metric=f"{arch}_relative_mse", value=m["value"] / var_y)
        frames += [m, rel]
        for _, row in result.runs.iterrows():
            rid = by_seed[seed_of[row["run_id"]]]
            if row["diverged"]:
                e = int(row["diverged_epoch"])
                diverged[rid] = e if diverged[rid] < 0 else min(diverged[rid], e)
    return pd.concat(frames, ignore_index=True)[["run_id", "epoch", "split", "metric", "value"]], diverged


# ----------------------------------------------------------------------------- compute


def compute(group, data, device):
    """Part (a) in closed form (the same rows for every seed), part (b) trained with the engine."""
    from mathdl.engine import TrainResult

    start = time.perf_counter()
    p = dict(group.runs[0].params)
    saw = pd.DataFrame(sawtooth_rows(p["k_max"], p["grid_refine"], p["shallow_widths"]),
                       columns=["epoch", "split", "metric", "value"])
    radial, diverged = train_radial(group, p, device if device != "auto" else "cpu")
    frames, runs = [], []
    shallow_w, shallow_params, deep_params = matched_widths(p["dim"], p["deep_width"])
    for run in group.runs:
        frames.append(saw.assign(run_id=run.run_id)[["run_id", "epoch", "split", "metric", "value"]])
        runs.append({"run_id": run.run_id, "seed": run.seed, "diverged": diverged[run.run_id] >= 0,
                     "diverged_epoch": diverged[run.run_id], "shallow_width": shallow_w,
                     "shallow_params": shallow_params, "deep_width": p["deep_width"], "deep_params": deep_params})
    metrics = pd.concat(frames + [radial], ignore_index=True)
    metrics["value"] = metrics["value"].astype(float)
    metrics["epoch"] = metrics["epoch"].astype(int)
    return TrainResult(metrics=metrics, runs=pd.DataFrame(runs), device=device,
                       wall_time_s=time.perf_counter() - start)


# ----------------------------------------------------------------------------- analyze





def _sawtooth_summary(metrics: pd.DataFrame) -> dict:
    """Part (a) from one run (its rows are the same for every run)."""
    one = metrics[metrics["run_id"] == metrics["run_id"].iloc[0]]
    saw = one[one["split"] == "sawtooth"].pivot_table(index="epoch", columns="metric", values="value")
    ks = [int(k) for k in saw.index]
    fits: dict[str, dict] = {name: {} for name in ("l2_error", "max_error", "pieces", "lower_bound")}
    exact_width = {}
    for k in ks:
        df = one[one["split"] == f"shallow_k{k}"].pivot_table(index="epoch", columns="metric", values="value")
        for name in fits:
            fits[name][str(k)] = {str(int(w)): (int(v) if name == "pieces" else float(v)) for w, v in df[name].items()}
        exact = [int(w) for w, v in df["l2_error"].items() if v < EXACT_TOL]
        exact_width[str(k)] = min(exact) if exact else None
    below = [fits["l2_error"][str(k)][w] / fits["lower_bound"][str(k)][w]
             for k in ks for w in fits["l2_error"][str(k)] if fits["lower_bound"][str(k)][w] > 0]
    return {
        "ks": ks,
        "sawtooth_max_error": float(saw["max_error"].max()),
        "sawtooth_pieces": {str(k): int(saw.loc[k, "pieces"]) for k in ks},
        "sawtooth_expected_pieces": {str(k): 2**k for k in ks},
        "sawtooth_deep_params": {str(k): int(saw.loc[k, "deep_params"]) for k in ks},
        "shallow_fit_l2_error": fits["l2_error"],
        "shallow_fit_max_error": fits["max_error"],
        "shallow_fit_pieces": fits["pieces"],
        "shallow_lower_bound": fits["lower_bound"],
        "shallow_exact_width": exact_width,
        "shallow_min_error_over_bound": min(below) if below else None,
        "shallow_max_error_over_bound": max(below) if below else None,
    }


def _radial_summary(final: pd.DataFrame) -> dict:
    shallow, deep = final["test_shallow_mse"].to_numpy(), final["test_deep_mse"].to_numpy()
    row = final.iloc[0]
    return {
        "dim": int(row["params.dim"]),
        "frequency": float(row["params.frequency"]),
        "n_train": int(row["params.n_train"]),
        "epochs": int(row["params.epochs"]),
        "shallow_width": int(row["shallow_width"]),
        "deep_width": int(row["deep_width"]),
        "shallow_params": int(row["shallow_params"]),
        "deep_params": int(row["deep_params"]),
        "n_seeds": int(len(final)),
        "n_diverged": int(final["diverged"].sum()),
        "test_mse": {"shallow": mean_ci_dict(shallow), "deep": mean_ci_dict(deep)},
        "train_mse": {"shallow": mean_ci_dict(final["train_shallow_mse"]), "deep": mean_ci_dict(final["train_deep_mse"])},
        "test_relative_mse": {"shallow": mean_ci_dict(final["test_shallow_relative_mse"]),
                              "deep": mean_ci_dict(final["test_deep_relative_mse"])},
        # The headline: the ratio of the seed means; beside it the mean of the per-seed ratios.
        "mse_ratio_shallow_over_deep": _num(np.nanmean(shallow) / np.nanmean(deep)),
        "mse_ratio_per_seed_mean": _num(np.nanmean(shallow / deep)),
    }


def analyze(tables, experiment) -> dict:
    """Part (a): errors, pieces, shallow fits against the bound; part (b): test MSEs and their ratio.

    With a sweep, part (b) is summarized per sweep point under ``points`` and the headline keys
    are those of the first point.
    """
    final = tables.final()
    keys = [k for k, _ in experiment.sweep]
    points = []
    grouped = final.groupby(keys, sort=True) if keys else [((), final)]
    for values, df in grouped:
        values = values if isinstance(values, tuple) else (values,)
        points.append({"point": {k: (v.item() if hasattr(v, "item") else v) for k, v in zip(keys, values)},
                       **_radial_summary(df)})
    # The sawtooth part from the run with the largest k_max.
    best = final.sort_values("params.k_max").iloc[-1]
    metrics = tables.metrics[tables.metrics["run_id"] == best["run_id"]]
    head = {k: v for k, v in points[0].items() if k != "point"}
    return {"confidence": CI_LEVEL, "exact_tol": EXACT_TOL, **_sawtooth_summary(metrics), **head,
            "points": points if keys else []}


# ----------------------------------------------------------------------------- figures


def figures(tables, summary, experiment, plot, outdir: Path) -> list[str]:
    """sawtooth: the deep network for small k and its pieces; shallow_fit: L2 error against W;
    radial: test MSE during training of both architectures."""
    import seaborn as sns

    from mathdl import plots

    plots.setup(plot)
    colors = sns.color_palette(plot.palette)

    # The sawtooth curves are re-evaluated (a closed-form function, no training) for the drawing.
    fig, (ax, bx) = plots.new_figure(plot, ncols=2)
    x = dyadic_grid(max(summary["ks"][:3]), 4)
    for i, k in enumerate(summary["ks"][:3]):
        ax.plot(x, deep_sawtooth(x, k), color=colors[i], lw=1.2, label=f"k = {k}")
    ax.set_xlabel("x")
    ax.set_ylabel("deep network output")
    ax.legend(fontsize="small", loc="lower right")
    ks = np.array(summary["ks"])
    bx.plot(ks, [summary["sawtooth_pieces"][str(k)] for k in ks], "o", color=colors[0], label="counted pieces")
    bx.plot(ks, 2.0**ks, "--", color="gray", lw=1, label="$2^k$")
    bx.plot(ks, [summary["sawtooth_deep_params"][str(k)] for k in ks], "s-", color=colors[1], ms=3,
            label="parameters (6k+1)")
    bx.set_yscale("log", base=2)
    bx.set_xlabel("depth k")
    bx.legend(fontsize="small")
    names = [plots.save(fig, outdir, "sawtooth", plot)]

    fig, (ax,) = plots.new_figure(plot)
    floor = 1e-12
    palette = sns.color_palette("viridis", len(ks))
    for i, k in enumerate(ks):
        err = summary["shallow_fit_l2_error"][str(k)]
        bound = summary["shallow_lower_bound"][str(k)]
        ws = np.array(sorted(int(w) for w in err))
        ax.plot(ws, np.maximum([err[str(w)] for w in ws], floor), "o-", ms=3, color=palette[i], label=f"k = {k}")
        wb = np.arange(1, 2**k + 1)
        ax.plot(wb, [bound[str(w)] if str(w) in bound else max(0.0, 1 - w / 2**k) / 12 for w in wb],
                ":", color=palette[i], lw=1)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_ylim(floor / 3, 0.3)
    ax.set_xlabel("width W of the one-hidden-layer network")
    ax.set_ylabel(r"$\int_0^1 (f - s_k)^2\,dx$")
    ax.legend(fontsize="small", ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    names.append(plots.save(fig, outdir, "shallow_fit", plot))

    curves = tables.metrics[(tables.metrics["split"] == "test")
                            & tables.metrics["metric"].isin(["shallow_relative_mse", "deep_relative_mse"])].copy()
    labels = {"shallow_relative_mse": f"2 layers, width {summary['shallow_width']} ({summary['shallow_params']} params)",
              "deep_relative_mse": f"3 layers, width {summary['deep_width']} ({summary['deep_params']} params)"}
    curves["network"] = curves["metric"].map(labels)
    fig, (ax,) = plots.new_figure(plot)
    sns.lineplot(data=curves, x="epoch", y="value", hue="network", marker="o", ms=4,
                 errorbar=("ci", round(100 * plot.confidence)), ax=ax)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(left=0)
    ax.set_yscale("log")
    ax.set_ylabel("test MSE / Var y")
    ax.legend(fontsize="small")
    names.append(plots.save(fig, outdir, "radial", plot))
    return names


# ----------------------------------------------------------------------------- report


def report(experiment, summary, figure_dir: str, prefix: str) -> ReportPiece:
    """The subsection (theory, setup, results, figures, a table) and one slide."""
    s = slug(experiment.name)
    P = prefix
    ks = summary["ks"]
    kmax = str(ks[-1])
    widths = sorted(int(w) for w in summary["shallow_fit_l2_error"][kmax])
    half = [w for w in widths if w <= 2 ** ks[-1] // 2]
    w_half = half[-1] if half else widths[0]
    below = [w for w in widths if w < 2 ** ks[-1]]
    w_below = below[-1] if below else widths[0]
    mse = summary["test_mse"]
    macros = {
        f"{P}KMax": fmt(ks[-1]),
        f"{P}PiecesAtKMax": fmt(summary["sawtooth_pieces"][kmax]),
        f"{P}DeepParamsAtKMax": fmt(summary["sawtooth_deep_params"][kmax]),
        f"{P}MaxError": fmt(summary["sawtooth_max_error"]),
        f"{P}ExactWidth": fmt(summary["shallow_exact_width"][kmax]),
        f"{P}WHalf": fmt(w_half),
        f"{P}ErrAtWHalf": fmt(summary["shallow_fit_l2_error"][kmax][str(w_half)]),
        f"{P}BoundAtWHalf": fmt(summary["shallow_lower_bound"][kmax][str(w_half)]),
        f"{P}WBelow": fmt(w_below),
        f"{P}ErrAtWBelow": fmt(summary["shallow_fit_l2_error"][kmax][str(w_below)]),
        f"{P}MinOverBound": fmt(summary["shallow_min_error_over_bound"]),
        f"{P}MaxOverBound": fmt(summary["shallow_max_error_over_bound"]),
        f"{P}Dim": fmt(summary["dim"]),
        f"{P}Freq": fmt(summary["frequency"]),
        f"{P}NTrain": fmt(summary["n_train"]),
        f"{P}Epochs": fmt(summary["epochs"]),
        f"{P}NumSeeds": fmt(summary["n_seeds"]),
        f"{P}NumDiverged": fmt(summary["n_diverged"]),
        f"{P}ShallowWidth": fmt(summary["shallow_width"]),
        f"{P}DeepWidth": fmt(summary["deep_width"]),
        f"{P}ShallowParams": fmt(summary["shallow_params"]),
        f"{P}DeepParams": fmt(summary["deep_params"]),
        f"{P}ShallowMse": fmt(mse["shallow"]["mean"]),
        f"{P}ShallowMseLow": fmt(mse["shallow"]["ci_low"]),
        f"{P}ShallowMseHigh": fmt(mse["shallow"]["ci_high"]),
        f"{P}DeepMse": fmt(mse["deep"]["mean"]),
        f"{P}DeepMseLow": fmt(mse["deep"]["ci_low"]),
        f"{P}DeepMseHigh": fmt(mse["deep"]["ci_high"]),
        f"{P}ShallowRel": fmt(summary["test_relative_mse"]["shallow"]["mean"]),
        f"{P}DeepRel": fmt(summary["test_relative_mse"]["deep"]["mean"]),
        f"{P}Ratio": fmt(summary["mse_ratio_shallow_over_deep"]),
    }
    m = {k[len(P):]: f"\\{k}{{}}" for k in macros}
    level = round(100 * summary["confidence"])
    rows = [[fmt(k), fmt(summary["sawtooth_deep_params"][str(k)]), fmt(summary["sawtooth_pieces"][str(k)]),
             fmt(2**k), fmt(summary["shallow_exact_width"][str(k)])] for k in ks]
    table = booktabs_table(
        ["$k$", "parameters (deep)", "pieces counted", "$2^k$", "smallest exact $W$"], rows,
        caption="The sawtooth $s_k$ as a width-2 network of depth $k$: its parameters, its linear pieces"
        " counted on the dyadic grid, and the smallest width among those fitted at which the"
        " one-hidden-layer fit is exact (L2 error below"
        f" {fmt(summary['exact_tol'])}).",
        label=f"tab:{s}",
    )
    ratio_text = (
        f"the two-layer network's test error is \\emph{{{m['Ratio']} times}} that of the three-layer network"
    )
    section = "\n".join([
        f"\\subsection{{{escape(experiment.title)}}}",
        f"\\label{{sec:{s}}}",
        escape(experiment.description),
        "",
        r"\paragraph{Theory.}",
        r"The tent map $t(x) = 2\relu(x) - 4\relu(x - \tfrac12)$ maps $[0,1]$ onto itself, and its"
        r" $k$-fold composition is the sawtooth $s_k(x) = 2\operatorname{dist}(2^{k-1}x, \mathbb{Z})$"
        r" with $2^k$ linear pieces. As a network it has depth $k$, width 2 and $6k+1$ parameters:"
        r" hidden layer 1 is $(\relu(x), \relu(x-\tfrac12))$, every later hidden layer has weights"
        r" $\left(\begin{smallmatrix}2&-4\\2&-4\end{smallmatrix}\right)$ and biases $(0,-\tfrac12)$,"
        r" and the read-out is $2h_1 - 4h_2$. A one-hidden-layer ReLU network of width $W$ has at most"
        r" $W$ breakpoints, hence at most $W+1$ pieces, and \citet{telgarsky2016benefits} shows that"
        r" networks with few pieces cannot follow many oscillations. Here the argument is short: at"
        r" least $2^k - W$ of the $2^k$ triangles of $s_k$ contain no breakpoint, the best affine L2"
        r" fit of a tent is its mean, and the tent's variance is $1/12$, so every width-$W$ network $f$ has"
        r" \[ \int_0^1 (f - s_k)^2\,dx \;\ge\; \frac{1}{12}\Bigl(1 - \frac{W}{2^k}\Bigr)_{+}: \]"
        r" depth $k$ with $O(k)$ parameters needs width about $2^k$ at depth two."
        r" In higher dimension \citet{eldan2016power} construct a radial function that a three-layer"
        r" network of polynomial width approximates but no two-layer network of subexponential width"
        r" does, and \citet{safran2017depth} show such separations for simple targets like the"
        r" indicator of a ball, and observe them in training.",
        "",
        r"\paragraph{Setup.}",
        f"(a) For $k = 1, \\dots, {m['KMax']}$ we evaluate the width-2 network with the project's forward"
        f" pass in double precision on the dyadic grid $j/2^{{k+4}}$, compare it with the closed form and"
        f" count its pieces (changes of slope on the grid, which holds every breakpoint). We then fit"
        f" one-hidden-layer networks of width $W$ with breakpoints fixed at the dyadic points $j/2^k$,"
        f" $j = 0, \\dots, \\min(W, 2^k) - 1$ (and any further ones spread over $(0,1)$), so that"
        f" they follow $s_k$ on $[0, (W-1)/2^k]$ and are one line after it, by least squares on the"
        f" output layer, and integrate their squared error exactly."
        f" (b) Inputs $x \\sim \\mathcal N(0, I_d)$ with $d = {m['Dim']}$ and the radial target"
        f" $y = \\sin(2\\pi f(\\norm{{x}} - \\sqrt d))$, $f = {m['Freq']}$, which oscillates across the"
        f" shell where $\\norm{{x}}$ concentrates; $n = {m['NTrain']}$ training points. A two-layer"
        f" network (one hidden layer of width {m['ShallowWidth']}, {m['ShallowParams']} parameters) and a"
        f" three-layer network (two hidden layers of width {m['DeepWidth']}, {m['DeepParams']} parameters)"
        f" are trained the same way (Adam, squared loss, {m['Epochs']} epochs, {m['NumSeeds']} seeds);"
        f" we report the test MSE at the last epoch (nothing is selected on the test set).",
        "",
        r"\paragraph{Results.}",
        f"The largest difference between the deep network and the closed form on the grids is"
        f" {m['MaxError']}, and the network has exactly $2^k$ pieces for every $k$ (Table~\\ref{{tab:{s}}}, Figure~\\ref{{fig:{s}-saw}}): at"
        f" $k = {m['KMax']}$, {m['PiecesAtKMax']} pieces from {m['DeepParamsAtKMax']} parameters."
        f" The shallow fits (Figure~\\ref{{fig:{s}-fit}}) stay above the bound, as they must: at $k = {m['KMax']}$, width"
        f" {m['WHalf']} leaves a squared error of {m['ErrAtWHalf']} (bound {m['BoundAtWHalf']}) and width"
        f" {m['WBelow']} still {m['ErrAtWBelow']}, while width {m['ExactWidth']} fits exactly; over all"
        f" fits with $W < 2^k$ the error is between {m['MinOverBound']} and {m['MaxOverBound']} times the"
        f" bound: the bound is tight up to that factor."
        f" On the radial target (Figure~\\ref{{fig:{s}-radial}}) the two-layer network reaches a test MSE"
        f" of {m['ShallowMse']} ({level}\\% CI [{m['ShallowMseLow']}, {m['ShallowMseHigh']}], relative to"
        f" $\\Var y$: {m['ShallowRel']}) and the three-layer network {m['DeepMse']} ([{m['DeepMseLow']},"
        f" {m['DeepMseHigh']}], relative {m['DeepRel']}): at equal parameter counts {ratio_text}."
        f" \\{P}NumDiverged{{}} runs diverged. This is one target, one training budget and one"
        f" width; it illustrates, and does not prove, the separation.",
        "",
        figure_tex(
            figure_dir, "sawtooth",
            r"Left: the depth-$k$ width-2 ReLU network for small $k$. Right: its linear pieces"
            r" counted on the grid (dots), $2^k$ (dashed) and its $6k+1$ parameters.",
            f"fig:{s}-saw"),
        "",
        figure_tex(
            figure_dir, "shallow_fit",
            r"Exact squared L2 error of one-hidden-layer networks of width $W$ (breakpoints at"
            " the first $W$ dyadic points $j/2^k$; output layer by least squares)"
            " fitted to $s_k$; dotted: the lower bound"
            " $(1 - W/2^k)_+/12$ that holds for every width-$W$ network. Exact fits are drawn at"
            " $10^{-12}$.",
            f"fig:{s}-fit", width=r"0.8\linewidth"),
        "",
        figure_tex(
            figure_dir, "radial",
            f"Test MSE over $\\Var y$ during training on the radial target ($d = {m['Dim']}$)"
            f" of a two-layer and a three-layer network with about the same number of parameters; mean over"
            f" {m['NumSeeds']} seeds with a {level}\\% band.",
            f"fig:{s}-radial", width=r"0.8\linewidth"),
        "",
        table,
        "",
    ])
    slides = "\n".join([
        f"\\begin{{frame}}{{{escape(experiment.title)}}}",
        r"  \begin{columns}",
        r"    \begin{column}{0.55\textwidth}",
        f"      \\includegraphics[width=\\linewidth]{{{figure_dir}/shallow_fit.pdf}}",
        r"    \end{column}",
        r"    \begin{column}{0.43\textwidth}\small",
        r"      \begin{itemize}",
        f"        \\item sawtooth $s_k$: depth $k$, width 2, $6k+1$ parameters, $2^k$ pieces"
        f" (counted: {m['PiecesAtKMax']} at $k={m['KMax']}$)",
        r"        \item width $W$, one hidden layer: $\le W+1$ pieces, error $\ge (1-W/2^k)_+/12$",
        f"        \\item radial target, $d={m['Dim']}$: test MSE {m['ShallowMse']} (2 layers) vs"
        f" {m['DeepMse']} (3 layers), ratio {m['Ratio']}",
        r"      \end{itemize}",
        r"    \end{column}",
        r"  \end{columns}",
        r"\end{frame}",
        "",
    ])
    return ReportPiece(macros=macros, section=section, slides=slides)
