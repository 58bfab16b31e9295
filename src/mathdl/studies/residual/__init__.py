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
  for each (architecture, depth), the grid's learning rate with the fewest failed seeds, then the
  lowest mean final training loss over seeds: the question is whether the network can be trained
  at all, so the training loss (the objective itself) selects, never the test split. Where the
  selected rate is the grid's smallest or largest (``lr_at_grid_edge``), a rate beyond the grid
  might train better, and the text says so. ``plain_loss_ratio_deep_over_shallow``
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

from mathdl.tables import CI_LEVEL, interval_side, json_number, mean_ci_dict
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
        # Per-run: every (depth, architecture) is one job over lr and seeds. Wide enough that, at these sizes,
        # every depth and architecture selects a rate inside the grid (on [0.01, 0.03, 0.1] the plain networks
        # of 16 and 64 hidden layers took the smallest, the shallow ones the largest); the analysis reports
        # any selection at the grid's edge.
        "train.lr": [0.003, 0.01, 0.03, 0.1, 0.3, 1.0],
    },
}

FIGURES = ("loss_vs_depth", "grad_norm_init", "training_curves", "lr_sensitivity")
ARCHITECTURES = ("plain", "residual")
# The depths of plain_loss_ratio_deep_over_shallow, fixed by the key's definition in issue 5.
# A module constant rather than a study parameter: parameters shape the group ids, and changing
# an analysis-only number must not retrain anything.
SHALLOW_DEPTH, DEEP_DEPTH = 8, 32
# A first-layer gradient norm below this fraction of the read-out's counts as vanishing towards the input.
VANISHING_RATIO = 0.1
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
    arch = models.architecture(group.model, data.input_dim, data.n_outputs)
    _, init = engine.initial_params(group.runs, arch, dtype, dev)
    params = [p.requires_grad_() for p in init]
    loss_fn = losses.loss_function(group.train.loss)
    rows, labels = data.rows("train")
    x = torch.as_tensor(rows).to(dev, dtype)
    y = torch.as_tensor(labels).to(dev)
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
    # A non-finite final loss is a failed run whether or not the engine caught it diverging. A failed
    # run's final numbers are NaN, so that no mean or ratio takes them in (a run that diverged at the
    # last epoch may still have finite ones).
    out["failed"] = out["diverged"] | ~np.isfinite(out["train_loss"])
    out.loc[out["failed"], ["train_loss", "train_error", "test_loss", "test_error"]] = np.nan
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
    ci = geometric_mean_ci(ratios)
    side = interval_side(ci, 1.0)
    return {**ci, "mean_kind": "geometric", "per_seed": [json_number(r) for r in ratios],
            "ratio_of_means": json_number(b[seeds].mean() / a[seeds].mean()),
            "shallow_depth": shallow, "deep_depth": deep,
            # The words' cases: the interval (the mean, with one seed) lies above 1 (the deeper network
            # trains worse), below 1 (better), or contains 1.
            "above_one": int(side == 1), "below_one": int(side == -1)}


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
        "selection": ("final epoch; per (architecture, depth) the learning rate with the fewest failed seeds, "
                      "then the lowest mean final training loss over seeds (training split only; the test split "
                      "is never used to select)"),
        "n_seeds": int(runs["seed"].nunique()),
        "n_runs": int(len(runs)),
        "n_diverged": int(runs["failed"].sum()),
        # Failed runs at a selected lr: the only ones a mean could have included (they are left out).
        "n_diverged_at_selected_lr": int(chosen["failed"].sum()),
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
        entry: dict[str, Any] = {"weight_layers": [], "best_lr": [], "best_lr_at_edge": [], "n_diverged": [],
                                 "train_loss": [],
                                 "train_error": [], "test_error": [], "grad_norm_first_layer": [],
                                 "grad_norm_last_layer": [], "grad_norm_ratio_first_over_last": []}
        for depth in depths:
            d = at[at["depth"] == depth]
            entry["weight_layers"].append(weight_layers(depth, arch == "residual"))
            entry["best_lr"].append(best.get((arch, depth)))
            entry["best_lr_at_edge"].append(int(_at_grid_edge(best.get((arch, depth)), summary["lrs"])))
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

    # A selected lr at the grid's smallest or largest value: a rate beyond the grid might train better there,
    # so a comparison at that depth may be a tuning artefact (the text says so where it happens).
    lrs = summary["lrs"]
    summary["lr_at_grid_edge"] = {
        arch: {side: [d for d, lr, edge in zip(depths, summary[arch]["best_lr"], summary[arch]["best_lr_at_edge"])
                      if edge and lr == value] for side, value in (("smallest", lrs[0]), ("largest", lrs[-1]))}
        for arch in archs}
    summary["n_lr_at_grid_edge"] = sum(sum(summary[arch]["best_lr_at_edge"]) for arch in archs)

    deepest = max(depths)
    summary["shallow_depth"], summary["deep_depth"], summary["deepest_depth"] = SHALLOW_DEPTH, DEEP_DEPTH, deepest
    summary["plain_loss_ratio_deep_over_shallow"] = _loss_ratio(chosen, "plain", SHALLOW_DEPTH, DEEP_DEPTH)
    summary["residual_loss_ratio_deep_over_shallow"] = _loss_ratio(chosen, "residual", SHALLOW_DEPTH, DEEP_DEPTH)
    # The same between the two depths of the gradient figure (the shallow and the deepest).
    for arch in ARCHITECTURES:
        summary[f"{arch}_loss_ratio_deepest_over_shallow"] = (
            _loss_ratio(chosen, arch, SHALLOW_DEPTH, deepest) if deepest != SHALLOW_DEPTH else None)
    summary.update(_gradient_comparison(summary, depths, archs))
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


def _at_grid_edge(lr: float | None, grid: list[float]) -> bool:
    """The selected lr is the smallest or the largest of a grid of at least two rates."""
    return lr is not None and len(grid) > 1 and lr in (grid[0], grid[-1])


def gradient_depths(depths) -> list[int]:
    """The depths of the gradient figure and of the text's gradient comparison: the shallow and the deepest."""
    return sorted({d for d in (SHALLOW_DEPTH, max(depths)) if d in depths})


def _gradient_comparison(summary: dict, depths: list[int], archs: list[str]) -> dict:
    """Per architecture, between the figure's depths: the first layer's gradient norm at the deepest over
    that at the shallow depth (ratio of the means over seeds), and whether the deepest network's gradients
    vanish towards the input (mean first-layer over read-out ratio below VANISHING_RATIO)."""
    shown, deepest = gradient_depths(depths), max(depths)
    out: dict[str, Any] = {"grad_depths": shown, "vanishing_ratio": VANISHING_RATIO}
    for arch in ARCHITECTURES:
        first = _means(summary[arch]["grad_norm_first_layer"], depths) if arch in archs else {}
        ratio = _means(summary[arch]["grad_norm_ratio_first_over_last"], depths) if arch in archs else {}
        shallow_first, deepest_first = first.get(SHALLOW_DEPTH), first.get(deepest)
        out[f"{arch}_grad_first_layer_deepest_over_shallow"] = (
            json_number(deepest_first / shallow_first)
            if len(shown) == 2 and shallow_first and deepest_first is not None else None)
        r = ratio.get(deepest)
        out[f"{arch}_grad_vanishes_at_deepest"] = None if r is None else int(r < VANISHING_RATIO)
    return out


def _means(cis: list, depths: list[int]) -> dict[int, float | None]:
    """{depth: mean} of a per-depth list of confidence intervals (None where missing)."""
    return {d: None if c is None else c["mean"] for d, c in zip(depths, cis)}


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
        ax.set(xlabel="hidden layers / residual blocks $H$", ylabel=label)
    ax_loss.set_yscale("log")
    if ax_err.get_legend() is not None:
        ax_err.get_legend().remove()
    if summary.get("chance_loss"):
        ax_loss.axhline(summary["chance_loss"], color="grey", ls=":", lw=1,
                        label=f"chance ($\\log {summary['n_classes']}$)")
        ax_loss.legend(fontsize="small")
    names.append(plots.save(fig, outdir, "loss_vs_depth", plot))

    grads = gradient_norms(tables)
    g = grads[grads["depth"].isin(gradient_depths(summary["depths"]))].copy()
    g["$H$"] = g["depth"].astype(str)
    fig, (ax,) = plots.new_figure(plot)
    sns.lineplot(data=g, x="layer", y="value", hue="architecture", style="$H$", palette=palette,
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
        ax.legend(title="$H$", fontsize="x-small", ncols=2)


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


# ----------------------------------------------------------------------------- words (templates/)


INIT_NAMES = {"he": "He", "pytorch": "PyTorch's default", "glorot": "Glorot", "uniform": "uniform",
              "ntk": "NTK-parametrized"}
# What the templates cite at one depth, per architecture: summary[arch][key][i] (its mean where an interval).
AT_KEYS = {"train_loss": "train_loss", "test_error": "test_error", "grad_first": "grad_norm_first_layer",
           "grad_ratio": "grad_norm_ratio_first_over_last", "best_lr": "best_lr", "lr_at_edge": "best_lr_at_edge",
           "weight_layers": "weight_layers"}


def context(experiment, summary) -> dict:
    """What the templates need beyond the summary: ``at[H][arch]``, the values the words cite at H hidden
    layers or blocks (None where the sweep lacks the depth or the architecture), the names of the
    initialization and the optimizer, and the table's header and rows."""
    from mathdl.report import OPTIMIZER_NAMES, escape, fmt, named

    depths = summary["depths"]

    def value(arch: str, key: str, depth: int):
        if arch not in summary or depth not in depths:
            return None
        v = summary[arch][AT_KEYS[key]][depths.index(depth)]
        return v["mean"] if isinstance(v, dict) else v

    at = {d: {arch: {k: value(arch, k, d) for k in AT_KEYS} for arch in ARCHITECTURES}
          for d in {*depths, SHALLOW_DEPTH, DEEP_DEPTH}}
    optimizer = named(OPTIMIZER_NAMES, summary["optimizer"])
    if summary["optimizer"] in ("momentum", "nesterov"):
        optimizer += f" (momentum {fmt(summary['momentum'])})"
    elif summary["optimizer"] == "adam":
        optimizer += f" ($\\beta_1={fmt(summary['momentum'])}$)"

    def lr_cell(arch: str, d: int) -> str:
        edge = r"$^\dagger$" if at[d][arch]["lr_at_edge"] else ""
        return fmt(at[d][arch]["best_lr"]) + edge

    rows = [[fmt(d)] + [cell for arch in ARCHITECTURES for cell in
                        (lr_cell(arch, d), fmt(at[d][arch]["train_loss"]), fmt(at[d][arch]["test_error"]))]
            for d in depths]
    return {
        "at": at,
        "init_name": INIT_NAMES.get(summary["init"], escape(summary["init"])),
        "optimizer_name": optimizer,
        "header": ["$H$", "lr (plain)", "train loss", "test error", "lr (res.)", "train loss", "test error"],
        "rows": rows,
    }
