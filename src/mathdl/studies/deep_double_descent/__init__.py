"""Deep double descent: the test error of convolutional networks against their width k and against
the epochs of training, for several levels of label noise (Nakkiran et al. 2020, "Deep double
descent: where bigger models and more data hurt", ICLR; model-wise: their Figure 1, epoch-wise:
Figure 2, the width x epochs heat map: their Figure 2 left).

Each run trains Nakkiran et al.'s standard CNN (or a pre-activation ResNet-18) of width k on a
training set whose labels are partly replaced by random ones; test labels are clean. Errors are
means over seeds with t-intervals (``mathdl.tables.mean_ci_dict``).

A curve has a *peak* at an inner point only where the intervals say so: the interval of its mean
lies entirely above the interval of some point before it and of some point after it (a rise and
a fall, each beyond the spread over seeds). Where several inner points qualify, the peak is the
one of largest mean. Without intervals (one seed) no peak is claimed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DEFAULTS: dict[str, Any] = {
    "description": "Does the test error of convolutional networks peak at an intermediate width or epoch, "
                   "and how does label noise change that?",
    "task": {"name": "digits", "n_train": 300, "n_val": 0, "n_test": 1000, "label_noise": 0.2},
    "model": {"arch": "cnn"},
    "train": {"loss": "cross_entropy", "optimizer": "adam", "lr": 0.001, "batch_size": 64, "epochs": 30,
              "eval_points": 10},
    "sweep": {"model.width": [1, 2, 4, 8], "task.label_noise": [0.0, 0.2]},
    "seeds": [0, 1, 2],
}
SWEEPABLE = ("model.width", "task.label_noise")
MODEL_ARCHS = ("cnn", "resnet18")
FIGURES = ("model_wise", "epoch_wise", "heatmap")
WIDTH, NOISE = "model.width", "task.label_noise"


# ----------------------------------------------------------------------------- analysis


def ci_peak(xs: list, cis: list[dict]) -> dict | None:
    """The peak of a curve of means with intervals, or None (see the module docstring).

    xs: the curve's positions in order; cis: a ``mean_ci_dict`` at each. Returns {x, error: the
    interval at the peak, rise_from: the x before it whose interval lies below, fall_to: the x after
    it whose interval lies below} (the lowest such points)."""
    best = None
    for i in range(1, len(xs) - 1):
        low = cis[i]["ci_low"]
        if low is None or cis[i]["mean"] is None:
            continue

        def below(j):
            return cis[j]["ci_high"] is not None and cis[j]["ci_high"] < low

        before = [j for j in range(i) if below(j)]
        after = [j for j in range(i + 1, len(xs)) if below(j)]
        if before and after and (best is None or cis[i]["mean"] > best[1]["mean"]):
            lowest = lambda js: min(js, key=lambda j: cis[j]["mean"])  # noqa: E731
            best = (i, cis[i], xs[lowest(before)], xs[lowest(after)])
    if best is None:
        return None
    i, ci, rise, fall = best
    return {"x": xs[i], "error": ci, "rise_from": rise, "fall_to": fall}


def _curve(df, x: str, column: str) -> tuple[list, list[dict]]:
    from mathdl.tables import CI_LEVEL, mean_ci_dict

    xs, cis = [], []
    for value, rows in df.groupby(x, sort=True):
        xs.append(_plain(value))
        cis.append(mean_ci_dict(rows[column].dropna(), CI_LEVEL))
    return xs, cis


def epoch_test_errors(tables):
    """One row per (run, epoch): the test error with the run's width and label noise."""
    m = tables.metrics
    m = m[(m["split"] == "test") & (m["metric"] == "error")]
    return m.merge(tables.runs[["run_id", WIDTH, NOISE]], on="run_id")[["run_id", "epoch", WIDTH, NOISE, "value"]]


def analyze(tables, experiment) -> dict:
    """Per label noise: the final train and test errors against the width with the model-wise peak;
    per label noise and width: the test error against the epochs with the epoch-wise peak."""
    from mathdl.tables import CI_LEVEL

    final = tables.final()
    final = final[~final["diverged"].astype(bool)]
    by_epoch = epoch_test_errors(tables)
    model_wise, epoch_wise = [], []
    for noise, rows in final.groupby(NOISE, sort=True):
        widths, test = _curve(rows, WIDTH, "test_error")
        _, train = _curve(rows, WIDTH, "train_error")
        finite = [i for i, c in enumerate(test) if c["mean"] is not None]
        best = min(finite, key=lambda i: test[i]["mean"]) if finite else None
        model_wise.append({
            "label_noise": _plain(noise), "widths": widths, "test_error": test, "train_error": train,
            "peak": ci_peak(widths, test),
            "best_width": widths[best] if best is not None else None,
            "best_test_error": test[best]["mean"] if best is not None else None,
            # the largest width with a run that did not diverge at this noise (not the sweep's largest
            # where all of its runs diverged, or where a design never paired it with this noise)
            "largest_width": widths[-1],
            "largest_width_test_error": test[-1]["mean"], "largest_width_train_error": train[-1]["mean"],
        })
        for width in widths:
            curve = by_epoch[(by_epoch[NOISE] == noise) & (by_epoch[WIDTH] == width)]
            epochs, errors = _curve(curve, "epoch", "value")
            epoch_wise.append({"label_noise": _plain(noise), "width": width, "epochs": epochs, "test_error": errors,
                               "peak": ci_peak(epochs, errors)})
    widths = sorted({_plain(w) for w in tables.runs[WIDTH]})
    return {
        "confidence": CI_LEVEL,
        "arch": experiment.model.arch,
        "n_runs": int(len(tables.runs)),
        "n_seeds": len(experiment.seeds),
        "n_diverged": int(tables.runs["diverged"].astype(bool).sum()),
        "n_train": experiment.task.n_train,
        "final_epoch": int(tables.metrics["epoch"].max()),
        "widths": widths,
        "noise_levels": [m["label_noise"] for m in model_wise],
        "model_wise": model_wise,
        "epoch_wise": epoch_wise,
        "n_model_wise_peaks": sum(m["peak"] is not None for m in model_wise),
        "n_epoch_wise_peaks_at_largest_width": sum(
            e["peak"] is not None for e in epoch_wise if e["width"] == widths[-1]),
    }


def _plain(v):
    return v.item() if hasattr(v, "item") else v


# ----------------------------------------------------------------------------- figures


def figures(tables, summary, experiment, plot, outdir: Path) -> list[str]:
    """model_wise: final train (dashed) and test (solid) error against k, one colour per label noise,
    with the summary's intervals; epoch_wise: test error against epochs, one colour per k, a panel
    per label noise; heatmap: mean test error over k x epochs, a panel per label noise."""
    import numpy as np
    import seaborn as sns

    from mathdl import plots

    plots.setup(plot)
    noises = summary["noise_levels"]
    colours = plots.sequential_palette(len(noises))

    fig, (ax,) = plots.new_figure(plot)
    for colour, block in zip(colours, summary["model_wise"]):
        for split, dash in (("test", "-"), ("train", "--")):
            cis = block[f"{split}_error"]
            mean = [np.nan if c["mean"] is None else c["mean"] for c in cis]
            ax.plot(block["widths"], mean, dash, marker="o", color=colour,
                    label=f"noise {block['label_noise']:g}" if split == "test" else None)
            if split == "test":
                lo = [np.nan if c["ci_low"] is None else c["ci_low"] for c in cis]
                hi = [np.nan if c["ci_high"] is None else c["ci_high"] for c in cis]
                ax.fill_between(block["widths"], lo, hi, color=colour, alpha=0.2, linewidth=0)
        if block["peak"] is not None:
            ax.axvline(block["peak"]["x"], color=colour, linestyle=":", linewidth=1)
    plots.log_axis(ax, summary["widths"])
    ax.set(xlabel="width k", ylabel="error rate")
    ax.legend(title="label noise (test solid, train dashed)", fontsize="small")
    names = [plots.save(fig, outdir, "model_wise", plot)]

    widths = summary["widths"]
    fig, axes = plots.new_figure(plot, ncols=len(noises), scale=0.8 if len(noises) > 1 else 1.0, sharey=True)
    width_colours = dict(zip(widths, plots.sequential_palette(len(widths))))
    for ax, noise in zip(axes, noises):
        for block in (b for b in summary["epoch_wise"] if b["label_noise"] == noise):
            mean = [np.nan if c["mean"] is None else c["mean"] for c in block["test_error"]]
            ax.plot(block["epochs"], mean, marker=".", color=width_colours[block["width"]], label=f"k = {block['width']}")
        plots.epoch_axis(ax, summary["final_epoch"])
        ax.set(title=f"label noise {noise:g}", xlabel="epoch", ylabel="test error rate")
    axes[-1].legend(title="width", fontsize="small")
    names.append(plots.save(fig, outdir, "epoch_wise", plot))

    fig, axes = plots.new_figure(plot, ncols=len(noises), scale=0.8 if len(noises) > 1 else 1.0)
    errors = epoch_test_errors(tables)
    for ax, noise in zip(axes, noises):
        grid = errors[errors[NOISE] == noise].pivot_table(index="epoch", columns=WIDTH, values="value", aggfunc="mean")
        sns.heatmap(grid.sort_index(ascending=False), ax=ax, cmap="rocket_r", vmin=0,
                    vmax=max(1e-9, float(errors["value"].max())), cbar_kws={"label": "mean test error rate"})
        ax.set(title=f"label noise {noise:g}", xlabel="width k", ylabel="epoch")
    names.append(plots.save(fig, outdir, "heatmap", plot))
    return names


# ----------------------------------------------------------------------------- words


def context(experiment, summary) -> dict:
    """The blocks the words need: per label noise its model-wise block and the epoch-wise block of
    the largest width."""
    largest = summary["widths"][-1] if summary["widths"] else None
    at_largest = {e["label_noise"]: e for e in summary["epoch_wise"] if e["width"] == largest}
    return {
        "blocks": [{"model": m, "epochs": at_largest.get(m["label_noise"])} for m in summary["model_wise"]],
        "largest_width": largest,
        "other_epoch_peaks": [e for e in summary["epoch_wise"] if e["width"] != largest and e["peak"] is not None],
    }
