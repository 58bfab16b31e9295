"""Plain against residual networks of growing depth: the degradation problem on the digits.

Two families of ReLU networks of one width w, trained by the engine on the same digits with the
same optimizer, minibatch size, epochs and learning rates:

- plain, ``depth`` L hidden layers: x -> sigma(W_1 x + b_1) -> ... -> W_{L+1} h + b_{L+1}
  (L + 1 weight layers);
- residual, ``depth`` L blocks: h_0 = W_0 x + b_0, h_k = h_{k-1} + s (W_{k,2} sigma(W_{k,1} h_{k-1} +
  b_{k,1}) + b_{k,2}) for k = 1, ..., L, then the read-out (2L + 2 weight layers).

At equal L the residual network has about twice the weight layers of the plain one, so comparing
them at equal L (as every figure does) is conservative for the residual network.

Measured, for every architecture, depth, learning rate and seed:

- the final training loss (cross-entropy on the whole training split, last epoch) and the final
  test error. He et al. (2016) found the *training* error of plain networks to rise with depth
  beyond some point (the degradation problem: an optimization failure, not overfitting), and
  that of residual networks to keep falling. The learning rate is a per-run key, so every
  (architecture, depth) is one batched job over learning rates and seeds; the analysis reports,
  for each (architecture, depth), the grid's learning rate with the lowest mean final training
  loss over seeds: the question is whether the network can be trained at all, so the training
  loss (the objective itself) selects, never the test split. ``plain_loss_ratio_deep_over_shallow``
  is the plain network's final training loss at depth 32 over that at depth 8 (per seed, then mean
  and confidence interval over seeds); a ratio above 1 is degradation.
- the gradient norm of every linear layer l at initialization, ||grad_{(W_l, b_l)} L(theta_0)||
  (weight and bias together, as the engine's per-layer metrics count a layer) of the mean training
  loss on the whole training split, at exactly the theta_0 the engine trains from
  (``mathdl.models.init_params`` with each run's generator seeded by its seed). A one-step check
  in the tests: full-batch GD with step eta moves layer l by exactly eta times this norm.

Theory. He initialization (W ~ N(0, 2/fan_in), b = 0; He et al. 2015) makes a plain ReLU layer keep
E||h_l||^2, so mean signals and gradients neither vanish nor explode with depth (failure mode 1 of
Hanin and Rolnick 2018); yet the fluctuations of ||h_l||^2 grow like exp(c sum_l 1/n_l) = exp(c L/w)
(their failure mode 2), and the gradients of deep plain networks decorrelate across inputs, like
white noise (shattered gradients, Balduzzi et al. 2017), those of residual networks far more slowly.
In a residual block with He initialization, given h: E||sigma(W_1 h)||^2 = ||h||^2 and
E||W_2 a||^2 = 2 ||a||^2, with a cross term of mean 0, so

    E||h_k||^2 = (1 + 2 s^2) E||h_{k-1}||^2,   E||h_L||^2 = (1 + 2 s^2)^L E||h_0||^2 <= e^{2 s^2 L} E||h_0||^2:

bounded in L only if s^2 L stays bounded (Hanin and Rolnick 2018: the branch scales must be
summable). s = 1 multiplies the squared norm by 3^L; the default s = 0.1 by at most e^{1.28} = 3.6 up
to L = 64, with one s for all depths (a Cartesian sweep). Identity shortcuts give the Jacobian
prod_k (I + s dF_k/dh), which carries the gradient of the loss unattenuated to every block (He et
al. 2016b); the unrolled network is an ensemble of paths, mostly short ones (Veit et al. 2016).
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
from mathdl.tasks import n_outputs

DEFAULTS: dict[str, Any] = {
    "description": (
        "Does the training loss of plain ReLU networks on the digits get worse as they grow deeper "
        "(the degradation problem), does that of residual networks of the same width, optimizer and "
        "budget keep improving, and how large are the gradients of each layer at initialization?"
    ),
    "seeds": [0, 1, 2],
    # All 1,797 digits are split 512 / 1,024 (train / test); no validation split: nothing is selected
    # on held-out data (learning rates are selected on the training loss, see the module docstring).
    "task": {"name": "digits", "n_train": 512, "n_val": 0, "n_test": 1024, "label_noise": 0.0, "seed": 0,
             "standardize": True},
    # Width 32: plain networks of depth 32 to 64 are deep for their width (L/w >= 1). He init is the
    # plain networks' best case (variance-preserving); s = 0.1 keeps residual streams bounded to depth 64.
    "model": {"width": 32, "activation": "relu", "init": "he", "residual_scale": 0.1, "output_scale": 1.0},
    # Heavy-ball SGD as in He et al. (2016); a fixed budget of 30 epochs of 4 minibatches for every network.
    "train": {"loss": "cross_entropy", "optimizer": "momentum", "momentum": 0.9, "batch_size": 128,
              "epochs": 30, "eval_points": 12, "lr_schedule": "constant"},
    "sweep": {
        "model.depth": [2, 4, 8, 16, 32, 64],
        "model.residual": [False, True],
        "train.lr": [0.01, 0.03, 0.1],  # per-run: every (depth, architecture) is one job over lr and seeds
    },
}

FIGURES = ("loss_vs_depth", "grad_norm_init", "training_curves", "lr_sensitivity")
ARCHITECTURES = ("plain", "residual")
# The depths of plain_loss_ratio_deep_over_shallow, fixed by the key's definition in issue 5.
# A module constant rather than a study parameter: parameters shape the group ids, and changing
# an analysis-only number must not retrain anything.
SHALLOW_DEPTH, DEEP_DEPTH = 8, 32
# Bootstrap resamples of the figures' bands: with a handful of seeds there are few distinct
# resamples (10 for 3 seeds), so seaborn's default 1,000 only costs time. Seeded: the same figure twice.
N_BOOT = 200
GRAD_METRIC = "grad_norm_layer"  # + l, l = 1, 2, ... in forward order (the engine's layer numbering)
# The analysis compares runs by (architecture, depth, lr, seed): any other swept key would be mixed in.
SWEEPABLE = ("model.depth", "model.residual", "train.lr")


def weight_layers(depth: int, residual: bool) -> int:
    """Linear layers of a network: L + 1 plain, 2L + 2 residual (embedding, two per block, read-out)."""
    return 2 * depth + 2 if residual else depth + 1


def residual_norm_growth(scale: float, depth: int) -> float:
    """(1 + 2 s^2)^L: E||h_L||^2 / E||h_0||^2 of a residual stream at He initialization."""
    return (1 + 2 * scale**2) ** depth


# ----------------------------------------------------------------------------- compute


def initial_gradient_norms(group, data, device: str = "cpu", memory_bytes: int = 2**28) -> pd.DataFrame:
    """||grad_{(W_l, b_l)} L(theta_0)|| of every run and linear layer l: rows of the metrics table.

    theta_0 is the engine's own start (``engine.initial_params``: one generator per run, seeded
    with the run's seed, ``models.init_params`` in float32, then cast to ``train.dtype``); L is the mean
    training loss of ``train.loss`` on the whole training split, without dropout or regularizers.
    The split is summed in chunks of points (each weighted by its share) whose activations take about
    ``memory_bytes``, so that deep networks fit in memory.
    """
    import torch

    from mathdl import engine, losses, models

    dev = engine.resolve_device(device)
    dtype = engine.DTYPES[group.train.dtype]
    arch = models.architecture(group.model, data.x_train.shape[1], data.n_outputs)
    _, init = engine.initial_params(group.runs, arch, dtype, dev)
    params = [p.requires_grad_() for p in init]
    loss_fn = losses.loss_function(group.train.loss)
    x = torch.as_tensor(data.x_train).to(dev, dtype)
    y = torch.as_tensor(data.y_train).to(dev)
    y = y if y.dtype == torch.int64 else y.to(dtype)
    m, n = len(group.runs), x.shape[0]
    # Backward keeps ~3 activations (pre, post, mask) per layer, model and point.
    elem = torch.finfo(dtype).bits // 8
    chunk = max(1, memory_bytes // (3 * elem * m * max(arch.width, arch.input_dim) * len(arch.layers)))
    for start in range(0, n, chunk):
        xc, yc = x[start : start + chunk], y[start : start + chunk]
        out = models.forward(params, xc.T.unsqueeze(0).expand(m, -1, -1), arch)  # (M, K, c)
        yc = yc.unsqueeze(0).expand(m, *yc.shape) if yc.dim() == 1 else yc.T.unsqueeze(0).expand(m, -1, -1)
        # Each run's loss depends only on its own parameters: the sum's gradient is every run's own.
        (loss_fn(out, yc, data.n_outputs).sum() * (xc.shape[0] / n)).backward()
    rows = []
    for l in range(len(arch.layers)):
        w, b = params[2 * l].grad, params[2 * l + 1].grad
        norm = (w.flatten(1).pow(2).sum(1) + b.flatten(1).pow(2).sum(1)).sqrt().cpu().numpy()  # (M,)
        rows += [(r.run_id, 0, "train", f"{GRAD_METRIC}{l + 1}", float(v)) for r, v in zip(group.runs, norm)]
    return pd.DataFrame(rows, columns=["run_id", "epoch", "split", "metric", "value"])


def compute(group, data, device="cpu"):
    """The engine's training of the group, plus each run's per-layer gradient norms at initialization."""
    from mathdl import engine

    start = time.perf_counter()
    result = engine.train(group, data, device)
    grads = initial_gradient_norms(group, data, device)
    metrics = pd.concat([result.metrics, grads], ignore_index=True)
    return engine.TrainResult(metrics=metrics, runs=result.runs, device=result.device,
                              wall_time_s=time.perf_counter() - start, params=result.params)


# ----------------------------------------------------------------------------- analyze



def _architecture(residual) -> str:
    return ARCHITECTURES[int(bool(residual))]


def per_run(tables) -> pd.DataFrame:
    """One row per run: architecture, depth, lr, seed, diverged and its last-epoch losses and errors."""
    final = tables.final()
    out = pd.DataFrame({
        "run_id": final["run_id"],
        "architecture": [_architecture(v) for v in final["model.residual"]],
        "depth": final["model.depth"].astype(int),
        "lr": final["train.lr"].astype(float),
        "seed": final["seed"].astype(int),
        "diverged": final["diverged"].astype(bool),
    })
    for col in ("train_loss", "train_error", "test_loss", "test_error"):
        out[col] = final[col].astype(float) if col in final else np.nan
    # A non-finite final loss is a failed run whether or not the engine caught it diverging.
    out["failed"] = out["diverged"] | ~np.isfinite(out["train_loss"])
    return out


def best_learning_rates(runs: pd.DataFrame) -> dict[tuple[str, int], float]:
    """Per (architecture, depth): the lr with the fewest failed seeds, then the lowest mean final
    training loss over its finite seeds (training split only; ties go to the smaller lr)."""
    best = {}
    for (arch, depth), df in runs.groupby(["architecture", "depth"]):
        scores = []
        for lr, at in df.groupby("lr"):
            finite = at.loc[~at["failed"], "train_loss"]
            scores.append((int(at["failed"].sum()), float(finite.mean()) if len(finite) else math.inf, lr))
        best[(arch, int(depth))] = float(min(scores)[2])
    return best


def selected_runs(runs: pd.DataFrame, best: dict[tuple[str, int], float]) -> pd.DataFrame:
    """The runs at the selected lr of their (architecture, depth)."""
    keep = [best[(a, d)] == lr for a, d, lr in zip(runs["architecture"], runs["depth"], runs["lr"])]
    return runs[keep]


def gradient_norms(tables) -> pd.DataFrame:
    """Long table of the gradient norms at initialization: architecture, depth, seed, layer, value.

    Runs that differ only in lr start from the same theta_0 (the seed draws it), so each
    (architecture, depth, seed, layer) is kept once.
    """
    m = tables.metrics
    g = m[m["metric"].str.startswith(GRAD_METRIC)]
    g = g.merge(tables.runs[["run_id", "seed", "model.depth", "model.residual"]], on="run_id")
    out = pd.DataFrame({
        "architecture": [_architecture(v) for v in g["model.residual"]],
        "depth": g["model.depth"].astype(int).to_numpy(),
        "seed": g["seed"].astype(int).to_numpy(),
        "layer": g["metric"].str.removeprefix(GRAD_METRIC).astype(int).to_numpy(),
        "value": g["value"].astype(float).to_numpy(),
    })
    return out.drop_duplicates(["architecture", "depth", "seed", "layer"]).reset_index(drop=True)


def geometric_mean_ci(ratios) -> dict:
    """exp of the mean and Student-t interval of log(ratio): the geometric mean of positive ratios,
    with an interval that stays positive (ratios of losses spread over orders of magnitude)."""
    r = np.asarray(ratios, dtype=float)
    r = r[np.isfinite(r) & (r > 0)]
    ci = mean_ci_dict(np.log(r))
    return {k: None if v is None else json_number(np.exp(v)) for k, v in ci.items()}


def _loss_ratio(chosen: pd.DataFrame, arch: str, shallow: int, deep: int) -> dict | None:
    """Per seed: final training loss at depth ``deep`` over that at ``shallow`` (each at its selected lr);
    the geometric mean and its interval over seeds (a seed whose run failed at either depth is left out)."""
    at = chosen[chosen["architecture"] == arch]
    a = at[at["depth"] == shallow].set_index("seed")["train_loss"]
    b = at[at["depth"] == deep].set_index("seed")["train_loss"]
    seeds = sorted(set(a.index) & set(b.index))
    if not seeds:
        return None
    ratios = (b[seeds] / a[seeds]).to_numpy(float)
    return {**geometric_mean_ci(ratios), "mean_kind": "geometric", "per_seed": [json_number(r) for r in ratios],
            "ratio_of_means": json_number(b[seeds].mean() / a[seeds].mean()),
            "shallow_depth": shallow, "deep_depth": deep}


def analyze(tables, experiment) -> dict:
    """Final losses and errors per architecture and depth at the selected lr (mean and CI over seeds),
    the degradation ratio, and the gradient norms at initialization."""
    runs = per_run(tables)
    best = best_learning_rates(runs)
    chosen = selected_runs(runs, best)
    grads = gradient_norms(tables)
    depths = sorted(int(d) for d in runs["depth"].unique())
    archs = [a for a in ARCHITECTURES if a in set(runs["architecture"])]
    model, train, task = experiment.model, experiment.train, experiment.task
    n_classes = n_outputs(task)
    summary: dict[str, Any] = {
        "confidence": CI_LEVEL,
        "selection": ("final epoch; per (architecture, depth) the learning rate with the lowest mean final "
                      "training loss over seeds (training split only; the test split is never used to select)"),
        "n_seeds": int(runs["seed"].nunique()),
        "n_runs": int(len(runs)),
        "n_diverged": int(runs["failed"].sum()),
        "depths": depths,
        "architectures": archs,
        "lrs": sorted(float(v) for v in runs["lr"].unique()),
        "width": model.width,
        "init": model.init,
        "activation": model.activation,
        "residual_scale": model.residual_scale,
        "optimizer": train.optimizer,
        "momentum": train.momentum,
        "batch_size": train.batch_size,
        "epochs": int(tables.metrics["epoch"].max()),
        "loss": train.loss,
        "n_train": task.n_train,
        "n_test": task.n_test,
        "task": task.name,
        "n_classes": n_classes,
        # The cross-entropy of the uniform prediction over K classes: what a network that learnt nothing scores.
        "chance_loss": math.log(n_classes) if train.loss == "cross_entropy" and task.kind == "classification" else None,
    }
    for arch in archs:
        at = chosen[chosen["architecture"] == arch]
        g = grads[grads["architecture"] == arch]
        # n_diverged: over all lrs and seeds of the depth; the rest at the selected lr.
        entry: dict[str, Any] = {"weight_layers": [], "best_lr": [], "n_diverged": [], "train_loss": [],
                                 "train_error": [], "test_error": [], "grad_norm_first_layer": [],
                                 "grad_norm_last_layer": [], "grad_norm_ratio_first_over_last": []}
        for depth in depths:
            d = at[at["depth"] == depth]
            entry["weight_layers"].append(weight_layers(depth, arch == "residual"))
            entry["best_lr"].append(best.get((arch, depth)))
            at_depth = runs[(runs["architecture"] == arch) & (runs["depth"] == depth)]
            entry["n_diverged"].append(int(at_depth["failed"].sum()))
            for col in ("train_loss", "train_error", "test_error"):
                entry[col].append(mean_ci_dict(d[col]) if len(d) else None)
            gd = g[g["depth"] == depth].pivot_table(index="seed", columns="layer", values="value")
            if gd.empty:
                for key in ("grad_norm_first_layer", "grad_norm_last_layer", "grad_norm_ratio_first_over_last"):
                    entry[key].append(None)
                continue
            first, last = gd[gd.columns.min()], gd[gd.columns.max()]
            entry["grad_norm_first_layer"].append(mean_ci_dict(first))
            entry["grad_norm_last_layer"].append(mean_ci_dict(last))
            entry["grad_norm_ratio_first_over_last"].append(mean_ci_dict(first / last))
        summary[arch] = entry

    summary["plain_loss_ratio_deep_over_shallow"] = _loss_ratio(chosen, "plain", SHALLOW_DEPTH, DEEP_DEPTH)
    summary["residual_loss_ratio_deep_over_shallow"] = _loss_ratio(chosen, "residual", SHALLOW_DEPTH, DEEP_DEPTH)
    deepest = max(depths)
    summary["deepest_depth"] = deepest
    for arch in ARCHITECTURES:
        d = chosen[(chosen["architecture"] == arch) & (chosen["depth"] == deepest)]
        summary[f"{arch}_deepest_train_loss"] = mean_ci_dict(d["train_loss"]) if len(d) else None
        summary[f"{arch}_deepest_test_error"] = mean_ci_dict(d["test_error"]) if len(d) else None
    if "plain" in archs:
        means = {dp: c["mean"] for dp, c in zip(depths, summary["plain"]["train_loss"]) if c and c["mean"] is not None}
        summary["plain_best_depth"] = min(means, key=means.get) if means else None
    summary["residual_norm_growth_at_deepest"] = (
        residual_norm_growth(model.residual_scale, deepest) if model.init == "he" else None
    )
    return summary


# ----------------------------------------------------------------------------- figures


def _arch_palette(plot) -> dict[str, Any]:
    import seaborn as sns

    colours = sns.color_palette(plot.palette, 2)
    return dict(zip(ARCHITECTURES, colours))


def figures(tables, summary, experiment, plot, outdir: Path) -> list[str]:
    """loss_vs_depth: final training loss and test error against depth (selected lr, CI band);
    grad_norm_init: gradient norm per layer at initialization of the shallow and the deepest nets;
    training_curves: training loss per epoch, one curve per depth; lr_sensitivity: final training
    loss against the learning rate, one curve per depth."""
    import seaborn as sns

    from mathdl import plots

    plots.setup(plot)
    errorbar = ("ci", round(100 * plot.confidence))
    palette = _arch_palette(plot)
    runs = per_run(tables)
    best = {(a, d): lr for a in summary["architectures"] for d, lr in zip(summary["depths"], summary[a]["best_lr"])}
    chosen = selected_runs(runs, best)
    names = []

    fig, (ax_loss, ax_err) = plots.new_figure(plot, ncols=2)
    for ax, col, label in ((ax_loss, "train_loss", "final training loss"), (ax_err, "test_error", "final test error")):
        sns.lineplot(data=chosen, x="depth", y=col, hue="architecture", palette=palette, marker="o",
                     errorbar=errorbar, n_boot=N_BOOT, seed=0, ax=ax)
        _depth_axis(ax, summary["depths"])
        ax.set(xlabel="depth $L$ (hidden layers / residual blocks)", ylabel=label)
    ax_loss.set_yscale("log")
    if ax_err.get_legend() is not None:
        ax_err.get_legend().remove()
    if summary.get("chance_loss"):
        ax_loss.axhline(summary["chance_loss"], color="grey", ls=":", lw=1,
                        label=f"chance ($\\log {summary['n_classes']}$)")
        ax_loss.legend(fontsize="small")
    names.append(plots.save(fig, outdir, "loss_vs_depth", plot))

    grads = gradient_norms(tables)
    deepest = summary["deepest_depth"]
    shown = sorted({d for d in (SHALLOW_DEPTH, deepest) if d in summary["depths"]})
    g = grads[grads["depth"].isin(shown)].copy()
    g["depth $L$"] = g["depth"].astype(str)
    fig, (ax,) = plots.new_figure(plot)
    sns.lineplot(data=g, x="layer", y="value", hue="architecture", style="depth $L$", palette=palette,
                 errorbar=errorbar, n_boot=N_BOOT, seed=0, ax=ax)
    ax.set(yscale="log", xlabel="linear layer $l$ (input to output)",
           ylabel=r"$\|\nabla_{W_l,b_l}\mathcal{L}(\theta_0)\|$")
    ax.legend(fontsize="small")
    names.append(plots.save(fig, outdir, "grad_norm_init", plot))

    m = tables.metrics
    curves = m[(m["split"] == "train") & (m["metric"] == "loss")].merge(chosen[["run_id", "architecture", "depth"]],
                                                                      on="run_id")
    fig, axes = plots.new_figure(plot, ncols=2)
    _depth_panels(axes, curves, "epoch", "value", summary["depths"], errorbar, marker=None)
    for ax in axes:
        ax.set(xscale="symlog", xlabel="epoch", ylabel="training loss")
        ax.set_xlim(left=0)
    names.append(plots.save(fig, outdir, "training_curves", plot))

    fig, axes = plots.new_figure(plot, ncols=2)
    _depth_panels(axes, runs[~runs["failed"]], "lr", "train_loss", summary["depths"], errorbar, marker="o")
    for ax in axes:
        ax.set(xscale="log", xlabel="learning rate", ylabel="final training loss")
    names.append(plots.save(fig, outdir, "lr_sensitivity", plot))
    return names


def _depth_panels(axes, data: pd.DataFrame, x: str, y: str, depths, errorbar, marker) -> None:
    """Plain on the left, residual on the right: y against x, one curve per depth (log colour scale)."""
    import seaborn as sns

    for ax, arch in zip(axes, ARCHITECTURES):
        ax.set_title(arch)
        part = data[data["architecture"] == arch]
        if part.empty or not np.isfinite(part[y]).any():
            ax.text(0.5, 0.5, "no runs", transform=ax.transAxes, ha="center", va="center")
            continue
        sns.lineplot(data=part, x=x, y=y, hue="depth", palette="viridis", hue_norm=_log_norm(depths),
                     marker=marker, errorbar=errorbar, n_boot=N_BOOT, seed=0, legend="full", ax=ax)
        ax.set_yscale("log")
        ax.legend(title="$L$", fontsize="x-small", ncols=2)


def _depth_axis(ax, depths) -> None:
    """A base-2 logarithmic axis labelled at the depths only."""
    from matplotlib.ticker import NullLocator

    ax.set_xscale("log", base=2)
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.xaxis.set_minor_locator(NullLocator())


def _log_norm(depths):
    """A logarithmic colour scale over the depths (viridis from the shallowest to the deepest)."""
    from matplotlib.colors import LogNorm

    return LogNorm(vmin=min(depths), vmax=max(depths) if max(depths) > min(depths) else min(depths) + 1)


# ----------------------------------------------------------------------------- report


def _mean(entry) -> float | None:
    return None if entry is None else entry["mean"]


INIT_NAMES = {"he": "He", "pytorch": "PyTorch's default", "glorot": "Glorot", "uniform": "uniform",
              "ntk": "NTK-parametrized"}
# A first-layer gradient this many times smaller than the read-out's counts as vanishing.
VANISHING_RATIO = 0.1


def _degrades(ratio: dict) -> bool:
    """Degradation: the deep-over-shallow loss ratio's interval lies above 1 (its mean, with one seed)."""
    low, mean = ratio.get("ci_low"), ratio.get("mean")
    return mean is not None and (low > 1 if low is not None else mean > 1)


def _degradation_words(ratio: dict) -> str:
    if ratio.get("mean") is None:
        return "the ratio's depths were not trained"
    return "degradation" if _degrades(ratio) else "no clear degradation at this budget"


def _residual_words(ratio: dict, p: str) -> str:
    high, mean = ratio.get("ci_high"), ratio.get("mean")
    falls = mean is not None and (high if high is not None else mean) < 1
    return (f"The residual network's loss {'falls' if falls else 'does not clearly fall'} from "
            f"$L=\\{p}ShallowDepth$ to $L=\\{p}DeepDepth$")


def _gradient_words(summary: dict, p: str) -> tuple[str, str]:
    """The finding on the plain network's gradients at initialization at the ratio's deep depth, and a
    conclusion (empty, or a sentence): vanishing towards the input (first layer / read-out below
    VANISHING_RATIO), smaller than at the shallow depth by that factor, or neither."""
    ratio = _mean(_at(summary, "plain", "grad_norm_ratio_first_over_last", DEEP_DEPTH))
    first_deep = _mean(_at(summary, "plain", "grad_norm_first_layer", DEEP_DEPTH))
    first_shallow = _mean(_at(summary, "plain", "grad_norm_first_layer", SHALLOW_DEPTH))
    degraded = _degrades(summary["plain_loss_ratio_deep_over_shallow"] or {})
    at = f"at $L=\\{p}DeepDepth$ "
    if ratio is None or first_deep is None or first_shallow is None:
        return "the gradients behave as follows", ""
    if ratio < VANISHING_RATIO:
        return (at + "the plain network's gradients vanish towards the input",
                " The deep plain network's difficulty is at least partly one of vanishing gradients "
                "\\citep{glorot2010understanding}." if degraded else "")
    if first_deep < VANISHING_RATIO * first_shallow:
        return (at + "the plain network's gradients do not vanish towards the input, but all of them are much "
                f"smaller than at $L=\\{p}ShallowDepth$", "")
    return (at + "the plain network's gradients neither vanish towards the input nor are much smaller than at "
            f"$L=\\{p}ShallowDepth$",
            " As in \\citet{he2016deep}, where batch normalization kept the signals at healthy scales, the deep "
            "plain network's difficulty lies in the geometry of its loss rather than in the size of its gradients "
            "at the start \\citep{balduzzi2017shattered,hanin2018start}." if degraded else "")


def _at(summary: dict, arch: str, key: str, depth: int):
    """summary[arch][key] at ``depth``, or None where the depth or the architecture is missing."""
    if arch not in summary or depth not in summary["depths"]:
        return None
    return summary[arch][key][summary["depths"].index(depth)]


def report(experiment, summary, figure_dir: str, prefix: str) -> ReportPiece:
    s = slug(experiment.name)
    p = prefix
    level = round(100 * summary["confidence"])
    ratio = summary["plain_loss_ratio_deep_over_shallow"] or {}
    res_ratio = summary["residual_loss_ratio_deep_over_shallow"] or {}
    deepest = summary["deepest_depth"]
    macros = {
        f"{p}NumSeeds": fmt(summary["n_seeds"]),
        f"{p}NumRuns": fmt(summary["n_runs"]),
        f"{p}NumDiverged": fmt(summary["n_diverged"]),
        f"{p}Width": fmt(summary["width"]),
        f"{p}Epochs": fmt(summary["epochs"]),
        f"{p}BatchSize": fmt(summary["batch_size"]),
        f"{p}NumTrain": fmt(summary["n_train"]),
        f"{p}NumTest": fmt(summary["n_test"]),
        f"{p}Momentum": fmt(summary["momentum"]),
        f"{p}ResidualScale": fmt(summary["residual_scale"]),
        f"{p}MinDepth": fmt(min(summary["depths"])),
        f"{p}MaxDepth": fmt(deepest),
        f"{p}MinLr": fmt(summary["lrs"][0]),
        f"{p}MaxLr": fmt(summary["lrs"][-1]),
        f"{p}ShallowDepth": fmt(SHALLOW_DEPTH),
        f"{p}DeepDepth": fmt(DEEP_DEPTH),
        f"{p}ChanceLoss": fmt(summary["chance_loss"]),
        f"{p}PlainLossRatio": fmt(ratio.get("mean")),
        f"{p}PlainLossRatioLow": fmt(ratio.get("ci_low")),
        f"{p}PlainLossRatioHigh": fmt(ratio.get("ci_high")),
        f"{p}ResidualLossRatio": fmt(res_ratio.get("mean")),
        f"{p}ResidualLossRatioLow": fmt(res_ratio.get("ci_low")),
        f"{p}ResidualLossRatioHigh": fmt(res_ratio.get("ci_high")),
        f"{p}PlainBestDepth": fmt(summary.get("plain_best_depth")),
        f"{p}NormGrowth": fmt(summary["residual_norm_growth_at_deepest"]),
    }
    for arch, name in (("plain", "Plain"), ("residual", "Residual")):
        for depth, where in ((SHALLOW_DEPTH, "Shallow"), (DEEP_DEPTH, "Deep"), (deepest, "Deepest")):
            macros[f"{p}{name}{where}Loss"] = fmt(_mean(_at(summary, arch, "train_loss", depth)))
            macros[f"{p}{name}{where}TestError"] = fmt(_mean(_at(summary, arch, "test_error", depth)))
        deep = summary.get(f"{arch}_deepest_train_loss") or {}
        macros[f"{p}{name}DeepestLossLow"] = fmt(deep.get("ci_low"))
        macros[f"{p}{name}DeepestLossHigh"] = fmt(deep.get("ci_high"))
        macros[f"{p}{name}DeepestLayers"] = fmt(weight_layers(deepest, arch == "residual"))
        for depth, where in ((SHALLOW_DEPTH, "Shallow"), (DEEP_DEPTH, "Deep"), (deepest, "Deepest")):
            ratio_at = _at(summary, arch, "grad_norm_ratio_first_over_last", depth)
            macros[f"{p}{name}{where}GradRatio"] = fmt(_mean(ratio_at))
            macros[f"{p}{name}{where}GradFirst"] = fmt(_mean(_at(summary, arch, "grad_norm_first_layer", depth)))

    rows = []
    for i, depth in enumerate(summary["depths"]):
        row = [fmt(depth)]
        for arch in ARCHITECTURES:
            if arch not in summary:
                row += ["--"] * 3
                continue
            e = summary[arch]
            row += [fmt(e["best_lr"][i]), fmt(_mean(e["train_loss"][i])), fmt(_mean(e["test_error"][i]))]
        rows.append(row)
    table = booktabs_table(
        ["$L$", "lr (plain)", "train loss", "test error", "lr (res.)", "train loss", "test error"], rows,
        caption=(f"Plain ($L+1$ weight layers) and residual ($2L+2$ weight layers) networks of width "
                 f"\\{p}Width{{}} on the digits: selected learning rate, final training loss and final test error "
                 f"(last epoch; means over \\{p}NumSeeds{{}} seeds)."),
        label=f"tab:{s}")
    init = INIT_NAMES.get(summary["init"], escape(summary["init"]))
    task_text = data_set_name(summary["task"])
    chance = f" (chance level $\\log {summary['n_classes']}=\\{p}ChanceLoss$)" if summary["chance_loss"] else ""
    grad_sentence, grad_conclusion = _gradient_words(summary, p)
    optimizer = named(OPTIMIZER_NAMES, summary["optimizer"])
    if summary["optimizer"] in ("momentum", "nesterov", "adam"):
        optimizer += f" (momentum \\{p}Momentum)"
    section = "\n".join([
        f"\\subsection{{{escape(experiment.title)}}}",
        f"\\label{{sec:{s}}}",
        escape(experiment.description),
        "",
        r"\citet{he2016deep} observed that plain networks beyond some depth reach a higher \emph{training} "
        r"error than shallower ones, although they could copy the shallower network and set their extra "
        r"layers to the identity: the degradation problem (Section~\ref{sec:bg-resnets}). Residual blocks "
        r"$h_k=h_{k-1}+s\,F_k(h_{k-1})$ make the identity the default and carry the loss's gradient "
        r"unattenuated through the Jacobian $\prod_k(I+s\,\partial F_k/\partial h)$ \citep{he2016identity}. "
        r"He initialization \citep{he2015delving} keeps the mean squared activations of a plain ReLU network "
        r"constant in depth, so neither signals nor gradients vanish or explode on average; "
        r"\citet{hanin2018start} showed that their fluctuations still grow like $\exp(cL/w)$ in the ratio of "
        r"depth $L$ to width $w$, and \citet{balduzzi2017shattered} that the gradients of deep plain networks "
        r"decorrelate across inputs with depth, those of residual networks far more slowly. For a residual block at He "
        r"initialization $\mathbb{E}\|h_k\|^2=(1+2s^2)\,\mathbb{E}\|h_{k-1}\|^2$, so the branch scale $s$ "
        r"must shrink like $L^{-1/2}$ for the stream to stay bounded \citep{hanin2018start}.",
        "",
        f"We trained plain ReLU networks with $L$ hidden layers and residual networks with $L$ blocks "
        f"(a linear embedding, $L$ blocks of two layers with branch scale $s=\\{p}ResidualScale$, a read-out), "
        f"$L=\\{p}MinDepth$ to \\{p}MaxDepth, all of width \\{p}Width{{}} with {init} initialization, on "
        f"{task_text}, \\{p}NumTrain{{}} training and \\{p}NumTest{{}} test images, with the same budget: "
        f"{optimizer} on the {escape(summary['loss'].replace('_', ' '))} "
        f"loss, minibatches of \\{p}BatchSize, \\{p}Epochs{{}} epochs, learning rates \\{p}MinLr{{}} to "
        f"\\{p}MaxLr, \\{p}NumSeeds{{}} seeds each (\\{p}NumRuns{{}} networks, \\{p}NumDiverged{{}} diverged). "
        r"We compare at equal $L$: the residual network then has $2L+2$ weight layers against $L+1$, which "
        r"favours the plain network. For each architecture and depth we report the learning rate with the "
        r"lowest mean final training loss; the question is whether a network can be trained at all, so the "
        r"training loss selects, and the test error is read at those runs (last epoch, never selected on test). "
        + (f"At He initialization the residual stream's expected squared norm grows by "
           f"$(1+2s^2)^L=\\{p}NormGrowth$ up to $L=\\{p}MaxDepth$." if summary["init"] == "he" else ""),
        "",
        f"Figure~\\ref{{fig:{s}-depth}} and Table~\\ref{{tab:{s}}} show the results. The plain network trains best at "
        f"$L=\\{p}PlainBestDepth$; its final training loss is \\{p}PlainShallowLoss{{}} at $L=\\{p}ShallowDepth$ and "
        f"\\{p}PlainDeepLoss{{}} at $L=\\{p}DeepDepth$, a ratio of \\{p}PlainLossRatio{{}} "
        f"[\\{p}PlainLossRatioLow, \\{p}PlainLossRatioHigh] (geometric mean of the per-seed ratios, {level}\\% "
        f"interval), "
        f"and \\{p}PlainDeepestLoss{{}} at $L=\\{p}MaxDepth${chance}: {_degradation_words(ratio)}. "
        f"{_residual_words(res_ratio, p)}: \\{p}ResidualShallowLoss{{}} at $L=\\{p}ShallowDepth$, "
        f"\\{p}ResidualDeepLoss{{}} at $L=\\{p}DeepDepth$ (ratio \\{p}ResidualLossRatio{{}} "
        f"[\\{p}ResidualLossRatioLow, \\{p}ResidualLossRatioHigh]) and \\{p}ResidualDeepestLoss{{}} "
        f"[\\{p}ResidualDeepestLossLow, \\{p}ResidualDeepestLossHigh] at $L=\\{p}MaxDepth$ "
        f"(\\{p}ResidualDeepestLayers{{}} weight layers). Test errors at $L=\\{p}MaxDepth$: plain "
        f"\\{p}PlainDeepestTestError, residual \\{p}ResidualDeepestTestError. "
        f"Figure~\\ref{{fig:{s}-lr}} shows the final training loss at every learning rate of the grid, and "
        f"Figure~\\ref{{fig:{s}-curves}} the training loss during training.",
        "",
        f"At initialization (Figure~\\ref{{fig:{s}-grad}}) {grad_sentence}: the ratio of the first layer's "
        f"gradient norm to the read-out's is \\{p}PlainShallowGradRatio, \\{p}PlainDeepGradRatio{{}} and "
        f"\\{p}PlainDeepestGradRatio{{}} at $L=\\{p}ShallowDepth$, \\{p}DeepDepth{{}} and \\{p}MaxDepth{{}} "
        f"(residual: \\{p}ResidualShallowGradRatio, \\{p}ResidualDeepGradRatio{{}} and "
        f"\\{p}ResidualDeepestGradRatio), and the first layer's gradient norm is \\{p}PlainShallowGradFirst, "
        f"\\{p}PlainDeepGradFirst{{}} and \\{p}PlainDeepestGradFirst{{}} (residual: "
        f"\\{p}ResidualShallowGradFirst, \\{p}ResidualDeepGradFirst{{}} and \\{p}ResidualDeepestGradFirst)."
        f"{grad_conclusion} "
        r"The unrolled residual network is an ensemble of paths, mostly short ones \citep{veit2016residual}.",
        "",
        figure_tex(
            figure_dir, "loss_vs_depth",
            f"Final training loss (left, log scale) and test error (right) against depth $L$ for plain "
            f"and residual networks of width \\{p}Width, at each one's selected learning rate (mean and {level}\\% "
            r"band over seeds; dotted: the loss of the uniform prediction).",
            f"fig:{s}-depth"),
        "",
        figure_tex(
            figure_dir, "grad_norm_init",
            r"Norm of the gradient of the training loss with respect to each linear layer's weight and bias "
            f"at initialization, from the input ($l=1$) to the read-out, for depth \\{p}ShallowDepth{{}} and "
            f"\\{p}MaxDepth{{}} (mean and {level}\\% band over seeds; a residual network of depth $L$ has $2L+2$ "
            r"layers, a plain one $L+1$).",
            f"fig:{s}-grad", width=r"0.8\linewidth"),
        "",
        figure_tex(
            figure_dir, "training_curves",
            r"Training loss during training at each depth's selected learning rate, plain (left) and "
            f"residual (right); mean and {level}\\% band over seeds.",
            f"fig:{s}-curves"),
        "",
        figure_tex(
            figure_dir, "lr_sensitivity",
            r"Final training loss against the learning rate, one curve per depth, plain (left) and residual "
            f"(right); diverged runs are left out (mean and {level}\\% band over seeds).",
            f"fig:{s}-lr"),
        "",
        table,
        "",
    ])
    slides = "\n".join([
        f"\\begin{{frame}}{{{escape(experiment.title)}}}",
        f"  \\includegraphics[width=\\linewidth]{{{figure_dir}/loss_vs_depth.pdf}}",
        r"  \small",
        r"  \begin{itemize}",
        f"    \\item width \\{p}Width, depth \\{p}MinDepth--\\{p}MaxDepth, same optimizer and \\{p}Epochs{{}} epochs; "
        f"residual branch scale \\{p}ResidualScale",
        f"    \\item plain training loss, depth \\{p}DeepDepth{{}} over \\{p}ShallowDepth: \\{p}PlainLossRatio{{}} "
        f"[\\{p}PlainLossRatioLow, \\{p}PlainLossRatioHigh]: {_degradation_words(ratio)}",
        f"    \\item residual at depth \\{p}MaxDepth: training loss \\{p}ResidualDeepestLoss{{}} "
        f"(plain \\{p}PlainDeepestLoss)",
        r"  \end{itemize}",
        r"\end{frame}",
        "",
    ])
    return ReportPiece(macros=macros, section=section, slides=slides)
