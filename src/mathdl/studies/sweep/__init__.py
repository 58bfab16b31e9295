"""The generic sweep: train networks over a grid and compare final train and test error.

Its default is the classic width sweep: one-hidden-layer ReLU networks of growing width
on a noisy teacher task (label noise 20%), three seeds. Over-parametrized networks fit
the noisy labels (train error to zero) while their test error first rises near the
interpolation threshold and then falls again (Belkin et al. 2019; Nakkiran et al. 2019).
Any other sweep (depth, learning rate, label noise, ...) works the same way.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


DEFAULTS: dict[str, Any] = {
    "description": "How do the final train and test errors of the networks change along the sweep?",
    "task": {
        "name": "teacher",
        "kind": "classification",
        "input_dim": 5,
        "n_classes": 2,
        "teacher_width": 8,
        "n_train": 500,
        "n_test": 2000,
        "label_noise": 0.2,
    },
    "model": {"depth": 1, "activation": "relu"},
    "train": {"loss": "cross_entropy", "optimizer": "sgd", "lr": 0.1, "batch_size": 32, "epochs": 200},
    "sweep": {"model.width": [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]},
    "seeds": [0, 1, 2],
}

FIGURES = ("error_vs_x", "learning_curves")


def _error_name(experiment) -> str:
    return "error rate" if experiment.task.kind == "classification" else "mean squared error"


def analyze(tables, experiment) -> dict:
    """Mean final errors per sweep point with confidence intervals over seeds; the best point."""
    from mathdl.tables import CI_LEVEL, mean_ci

    # With early stopping the selection on the validation split is the point: report the
    # errors at each run's selected epoch; without it, at the last epoch.
    early = bool(experiment.train.early_stopping)
    final = tables.selected() if early else tables.final()
    keys = [k for k, _ in experiment.sweep]
    points = []
    grouped = final.groupby(keys, sort=True) if keys else [((), final)]
    for values, df in grouped:
        values = values if isinstance(values, tuple) else (values,)
        entry = {"point": {k: _plain(v) for k, v in zip(keys, values)}, "n_runs": int(len(df)),
                 "n_diverged": int(df["diverged"].sum())}
        df = df[~df["diverged"].astype(bool)]  # diverged runs are left out of the means
        for split in ("train", "test"):
            mean, lo, hi = mean_ci(df[f"{split}_error"], CI_LEVEL)
            entry[f"{split}_error"] = {"mean": mean, "ci_low": lo, "ci_high": hi}
        entry["gap"] = entry["test_error"]["mean"] - entry["train_error"]["mean"]
        points.append(entry)
    finite = [p for p in points if math.isfinite(p["test_error"]["mean"])]
    best = min(finite, key=lambda p: p["test_error"]["mean"]) if finite else None
    x = experiment.plot.x
    summary: dict[str, Any] = {
        "x": x,
        "error_name": _error_name(experiment),
        "confidence": CI_LEVEL,
        "n_runs": int(len(final)),
        "n_seeds": len(experiment.seeds),
        "n_diverged": int(final["diverged"].sum()),
        "final_epoch": int(tables.metrics["epoch"].max()),
        "early_stopping": int(early),
        "points": points,
        "best": best,
    }
    if x and best is not None:
        last = points[-1] if len(keys) == 1 else max(points, key=lambda p: _sortable(p["point"][x]))
        summary["best_x"] = best["point"][x]
        summary["largest_x"] = last["point"][x]
        first = points[0] if len(keys) == 1 else min(points, key=lambda p: _sortable(p["point"][x]))
        summary["smallest_x"] = first["point"][x]
        summary["train_error_at_largest_x"] = last["train_error"]["mean"]
        summary["test_error_at_largest_x"] = last["test_error"]["mean"]
    if best is not None:
        summary["best_test_error"] = best["test_error"]["mean"]
    return summary


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def _sortable(v):
    return (0, v) if isinstance(v, (int, float)) else (1, str(v))


def figures(tables, summary, experiment, plot, outdir: Path) -> list[str]:
    """error_vs_x: final train/test error against the swept key; learning_curves: test error by epoch."""
    import pandas as pd

    from mathdl import plots
    from mathdl.report import key_name

    plots.setup(plot)
    x = experiment.plot.x
    final = tables.selected() if summary.get("early_stopping") else tables.final()
    long = final.melt(
        id_vars=[c for c in final.columns if not c.endswith("_error") and not c.endswith("_loss")],
        value_vars=["train_error", "test_error"],
        var_name="split",
        value_name="error",
    )
    long["split"] = long["split"].str.removesuffix("_error")
    errorbar = ("ci", round(100 * plot.confidence))
    fig, (ax,) = plots.new_figure(plot)
    if x:
        import seaborn as sns

        sns.lineplot(data=long, x=x, y="error", hue="split", marker="o", errorbar=errorbar, ax=ax)
        ax.set_xlabel(key_name(x))
        if experiment.plot.logx and (long[x] > 0).all():
            ax.set_xscale("log")
    else:
        import seaborn as sns

        sns.pointplot(data=long, x="split", y="error", errorbar=errorbar, ax=ax)
    if experiment.plot.logy:
        ax.set_yscale("log")
    ax.set_ylabel(summary["error_name"])
    names = [plots.save(fig, outdir, "error_vs_x", plot)]

    curves = tables.with_params()
    curves = curves[(curves["split"] == "test") & (curves["metric"] == "error")]
    # The schedule's epochs only: an early-stopped run adds a row at its selected epoch, and a
    # mean over the few runs that hold such a row would spike.
    n_runs = curves.groupby("epoch")["run_id"].nunique()
    curves = curves[curves["epoch"].isin(n_runs.index[n_runs == n_runs.max()])]
    fig, (ax,) = plots.new_figure(plot)
    import seaborn as sns

    hue = x if x else None
    if hue:  # a few values, evenly spaced on the palette: ten shades of one colour cannot be told apart
        shown = curve_values(summary)
        curves = curves[curves[hue].isin(shown)].assign(**{hue: lambda df: df[hue].astype(str)})
    sns.lineplot(
        data=curves,
        x="epoch",
        y="value",
        hue=hue,
        hue_order=[str(v) for v in shown] if hue else None,
        palette=sns.color_palette("viridis", len(shown)) if hue else None,
        errorbar=None,
        ax=ax,
        legend="full" if hue else False,
    )
    if hue and ax.get_legend() is not None:
        ax.get_legend().set_title(key_name(x))
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(left=0)  # epochs are never negative: no empty half of the axis
    ax.set_ylabel(f"test {summary['error_name']}")
    if experiment.plot.logy:
        ax.set_yscale("log")
    names.append(plots.save(fig, outdir, "learning_curves", plot))
    del pd
    return names


MAX_CURVES = 5  # learning curves drawn: the smallest, the largest and evenly spaced ones between


def curve_values(summary) -> list:
    """The values of the swept key whose learning curves are drawn (at most MAX_CURVES)."""
    x = summary["x"]
    values = sorted({p["point"][x] for p in summary["points"]}, key=_sortable) if x else []
    if len(values) <= MAX_CURVES:
        return values
    picks = sorted({round(i * (len(values) - 1) / (MAX_CURVES - 1)) for i in range(MAX_CURVES)})
    return [values[i] for i in picks]


def context(experiment, summary) -> dict:
    """What the templates need beyond the summary: the swept keys' names, the table's cells."""
    from mathdl.report import escape, fmt, key_name
    from mathdl.templating import english_list

    keys = [k for k, _ in experiment.sweep]
    err = summary["error_name"]
    level = round(100 * summary["confidence"])

    def cell(v):
        return fmt(v) if isinstance(v, (int, float)) else escape(v)

    header = [key_name(k) for k in keys] or ["point"]
    header += [f"train {err}", f"test {err}", f"{level}\\% CI (test)"]
    rows = []
    for p in summary["points"]:
        te = p["test_error"]
        rows.append([cell(v) for v in p["point"].values()] or ["--"])
        rows[-1] += [fmt(p["train_error"]["mean"]), fmt(te["mean"]), f"[{fmt(te['ci_low'])}, {fmt(te['ci_high'])}]"]
    best = summary.get("best")
    best_point = ", ".join(f"{key_name(k)} $=$ {cell(v)}" for k, v in best["point"].items()) if best else ""
    shown = curve_values(summary)
    n_values = len({p["point"][summary["x"]] for p in summary["points"]}) if summary["x"] else 0
    return {"keys": keys, "key_names": [key_name(k) for k in keys], "header": header, "rows": rows,
            "best_point": best_point, "curve_values": english_list([cell(v) for v in shown]),
            "all_curves": len(shown) == n_values}
