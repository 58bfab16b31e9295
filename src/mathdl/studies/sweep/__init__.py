"""The generic sweep: train networks over the plan's varied keys and compare train and test error.

Its default is the classic width sweep: one-hidden-layer ReLU networks of growing width
on a noisy teacher task (label noise 20%), three seeds. Over-parametrized networks fit
the noisy labels (train error to zero) while their test error first rises near the
interpolation threshold and then falls again (Belkin et al. 2019; Nakkiran et al. 2019).
Any other sweep (depth, learning rate, label noise, ...) works the same way, over any number
of keys: the figures draw every varied key on the axis, a colour, markers or facets
(:mod:`.layout`, :mod:`.plotting`), the words name every one (templates/). With early stopping
every number is taken at each run's epoch selected on the validation split. The networks may
be fully connected (model.arch mlp) or image networks (cnn, resnet18, a group's own module),
for example a width sweep of Nakkiran et al.'s CNN on the digits.
"""

from __future__ import annotations

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
# Fully connected networks and the image networks of mathdl.convnets (model.arch); the words
# name each (templates/section.tex).
MODEL_ARCHS = ("mlp", "cnn", "resnet18", "module")

# The settings the setup sentence names: each printed where it has one value over the runs;
# one that varies without being swept (a width chosen per point) gets a sentence of its own.
SETUP_KEYS = ("model.arch", "model.module", "model.depth", "model.width", "model.activation", "train.optimizer",
              "train.lr", "train.loss", "train.epochs", "task.name", "task.kind", "task.n_train", "task.label_noise")


def architecture(experiment) -> str:
    """The one model.arch of the experiment's networks, or "" where they have several: it decides
    what the words call model.width (a width, or an image network's width parameter k)."""
    archs = {r.model.arch for r in experiment.runs} or {experiment.model.arch}
    return archs.pop() if len(archs) == 1 else ""


def _error_name(experiment) -> str:
    return "error rate" if experiment.task.kind == "classification" else "mean squared error"


def analyze(tables, experiment) -> dict:
    """Mean errors per full sweep point (over seeds only) with confidence intervals; the best
    point; the points at the smallest and largest value of plot.x.

    With early stopping the selection on the validation split is the point: the errors are those
    at each run's selected epoch, and each point keeps the last epoch's errors beside them."""
    from mathdl.tables import CI_LEVEL, mean_ci_dict

    early = bool(experiment.train.early_stopping)
    final = tables.final().set_index("run_id")
    at = tables.selected() if early else tables.final()
    keys = [k for k, _ in experiment.sweep]
    derived = [k for k in SETUP_KEYS if k in tables.runs and k not in keys and tables.runs[k].nunique() > 1]
    points = []
    for values, df in by_point(at, keys):
        entry = {"point": values, "n_runs": int(len(df)), "n_diverged": int(df["diverged"].sum())}
        if derived:  # settings chosen per point (a width from a parameter budget): one value each
            entry["also"] = {k: _plain(df[k].iloc[0]) if df[k].nunique() == 1 else None for k in derived}
        df = df[~df["diverged"].astype(bool)]  # diverged runs are left out of the means
        for split in ("train", "test"):
            entry[f"{split}_error"] = mean_ci_dict(df[f"{split}_error"], CI_LEVEL)
        entry["gap"] = _difference(entry["test_error"]["mean"], entry["train_error"]["mean"])
        if early:
            for split in ("train", "test"):
                entry[f"final_{split}_error"] = mean_ci_dict(final.loc[df["run_id"], f"{split}_error"], CI_LEVEL)
            entry["selected_epoch"] = float(df["selected_epoch"].mean()) if len(df) else None
        if "n_params" in df:
            entry["n_params"] = int(round(df["n_params"].mean())) if len(df) else None
        points.append(entry)
    finite = [p for p in points if p["test_error"]["mean"] is not None]
    best = min(finite, key=lambda p: p["test_error"]["mean"]) if finite else None
    x = experiment.plot.x if keys else ""
    runs = tables.runs
    summary: dict[str, Any] = {
        "x": x,
        "keys": keys,
        "values": {k: sorted({_plain(v) for v in runs[k]}, key=_sortable) for k in keys},
        "error_name": _error_name(experiment),
        "confidence": CI_LEVEL,
        "n_runs": int(len(at)),
        "n_seeds": len(experiment.seeds),
        "n_points": len(points),
        "n_diverged": int(at["diverged"].sum()),
        "final_epoch": int(tables.metrics["epoch"].max()),
        "early_stopping": int(early),
        "points": points,
        "best": best,
        "setup": _setup(runs, experiment),
    }
    summary["derived"] = {k: summary["setup"].pop(k) for k in list(summary["setup"])
                          if isinstance(summary["setup"][k], list) and k not in keys}
    if early:
        kept = at[~at["diverged"].astype(bool)]
        summary["mean_selected_epoch"] = float(kept["selected_epoch"].mean()) if len(kept) else None
    if best is not None:
        summary["best_test_error"] = best["test_error"]["mean"]
        if early:
            summary["final_test_error_at_best"] = best["final_test_error"]["mean"]
    if x and best is not None:
        summary["best_x"] = best["point"][x]
        for end, pick in (("smallest", min), ("largest", max)):
            value = pick((p["point"][x] for p in points), key=_sortable)
            summary[f"{end}_x"] = value
            here = [p for p in finite if p["point"][x] == value]
            if here:
                summary[f"at_{end}_x"] = {
                    "n_points": len(here),
                    "best": min(here, key=lambda p: p["test_error"]["mean"]),
                    "worst": max(here, key=lambda p: p["test_error"]["mean"]),
                }
        at_largest = summary.get("at_largest_x")
        if at_largest and at_largest["n_points"] == 1:  # one point: its errors are the errors 'at the largest x'
            summary["train_error_at_largest_x"] = at_largest["best"]["train_error"]["mean"]
            summary["test_error_at_largest_x"] = at_largest["best"]["test_error"]["mean"]
    return summary


def by_point(df, keys):
    """(the point's key values, its rows) for each full sweep point in ``df``, in sorted order:
    the one grouping behind every mean of the summary and the figures (over seeds only)."""
    if not keys:
        yield {}, df
        return
    for values, rows in df.groupby(keys, sort=True, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        yield {k: _plain(v) for k, v in zip(keys, values)}, rows


def _setup(runs, experiment) -> dict:
    """Each setup key's single value over the runs, or its sorted distinct values where it varies."""
    out = {}
    for key in SETUP_KEYS:
        section, name = key.split(".", 1)
        values = sorted({_plain(v) for v in runs[key]}, key=_sortable) if key in runs else [getattr(getattr(experiment, section), name)]
        out[key] = values[0] if len(values) == 1 else values
    return out


def _difference(a, b):
    return None if a is None or b is None else a - b


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def _sortable(v):
    return (0, v) if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, str(v))


def figures(tables, summary, experiment, plot, outdir: Path) -> list[str]:
    """error_vs_x: train and test error against plot.x, every other varied key on colour,
    markers or facets (means over seeds only); learning_curves: test error by epoch."""
    from mathdl import plots
    from mathdl.report import key_name
    from mathdl.studies.sweep import plotting

    plots.setup(plot)
    err = summary["error_name"]
    arch = architecture(experiment)
    data, layout = plotting.error_data(tables, summary, experiment)
    if summary["x"]:
        xlabel = key_name(summary["x"], arch) + (
            f" ({plotting.channel_title(layout.along_x, arch)})" if layout.along_x else "")
        fig = plotting.draw(data, layout, plot, x=summary["x"], xlabel=xlabel, ylabel=err, splits=True,
                            logx=experiment.plot.logx, logy=experiment.plot.logy, arch=arch)
    else:
        fig = plotting.draw(data.assign(where=data["split"]), layout, plot, x="where", xlabel="split",
                            ylabel=err, splits=False, logx=False, logy=experiment.plot.logy, arch=arch)
    names = [plots.save(fig, outdir, "error_vs_x", plot)]

    curves, curve_layout = plotting.curve_data(tables, summary, experiment)
    marks = plotting.selected_marks(tables, experiment, curves, curve_layout) if summary["early_stopping"] else None
    fig = plotting.draw(curves, curve_layout, plot, x="epoch", xlabel="epoch", ylabel=f"test {err}", splits=False,
                        logx=False, logy=experiment.plot.logy, epochs=summary["final_epoch"], band=False, marks=marks,
                        arch=arch)
    names.append(plots.save(fig, outdir, "learning_curves", plot))
    return names


def context(experiment, summary) -> dict:
    """What the templates need beyond the summary, all in sweep order: the swept keys and their
    values in words, which key is on which channel of the figures, the table's cells, and the
    points the extreme-value sentences name (every key of each). Keys are named for the
    experiment's architecture (an image network's width is its width parameter $k$)."""
    import functools

    import pandas as pd

    from mathdl import report
    from mathdl.report import ACTIVATION_NAMES, LOSS_NAMES, OPTIMIZER_NAMES, escape, fmt, named
    from mathdl.studies.sweep import layout as layouts
    from mathdl.studies.sweep import plotting
    from mathdl.templating import english_list

    key_name = functools.partial(report.key_name, arch=architecture(experiment))

    keys = summary.get("keys") or [k for k, _ in experiment.sweep if all(k in p["point"] for p in summary["points"])]
    x = summary["x"]
    err = summary["error_name"]
    early = bool(summary["early_stopping"])
    points = pd.DataFrame([p["point"] for p in summary["points"]], columns=keys)
    # A summary written by hand (or before these keys existed) lacks what the points or the
    # experiment give as well.
    values = summary.get("values") or {k: sorted(set(points[k]), key=_sortable) for k in keys}
    setup = summary.get("setup") or _setup(pd.DataFrame(), experiment)
    derived = summary.get("derived", {})

    names = {"model.activation": ACTIVATION_NAMES, "train.optimizer": OPTIMIZER_NAMES, "train.loss": LOSS_NAMES}

    def cell(v, key=""):
        if v is None:
            return "--"
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return fmt(v)
        return named(names[key], v) if key in names else escape(v)

    def named_point(point, leave_out=()):
        return ", ".join(f"{key_name(k)} $=$ {cell(point[k], k)}" for k in keys if k not in leave_out)

    # The sweep in words: each block of keys that vary together, with its values.
    moving = layouts.varied(points, keys)
    phrases = []
    for block in layouts.blocks(points, moving):
        if len(block) == 1:
            phrases.append(f"{key_name(block[0])} over {english_list(cell(v, block[0]) for v in values[block[0]])}")
        else:
            combos = points[list(block)].drop_duplicates().sort_values(list(block), key=plotting._sort_key)
            phrases.append(f"{english_list(key_name(k) for k in block)} together over "
                           + english_list("(" + ", ".join(cell(v, k) for k, v in zip(block, row)) + ")"
                                        for row in combos.itertuples(index=False)))
    n_grid = 1
    for block in layouts.blocks(points, moving):
        n_grid *= len(points[list(block)].drop_duplicates())
    fixed = [k for k in keys if k not in moving]

    # Which key is where in the figures.
    layout = layouts.choose(points, keys, x, plotting.configured_channels(experiment)) if keys else layouts.Layout(x="")
    words = {"hue": "colour", "style": "marker", "col": "panel columns", "row": "panel rows"}
    channels = [f"{words[c]}: {english_list(key_name(k) for k in ks)}" for c, ks in layout.channels().items()]
    curve_layout = layouts.for_curves(layout)
    curve_channels = [f"{words[c]}: {english_list(key_name(k) for k in ks)}" for c, ks in curve_layout.channels().items()]
    x_values = values.get(x, []) if x else []
    shown = plotting.evenly_spaced(x_values)

    # The table: every varied key (and settings chosen per point), then the errors.
    also = list(derived)
    show_params = len({p.get("n_params") for p in summary["points"]}) > 1
    level = round(100 * summary["confidence"])
    header = [key_name(k) for k in moving] + [key_name(k) for k in also] + (["parameters"] if show_params else [])
    header = header or ["point"]
    header += [f"train {err}", f"test {err}", f"{level}\\% CI (test)"]
    if early:
        header += ["selected epoch", f"last-epoch test {err}"]
    rows = []
    for p in summary["points"]:
        te = p["test_error"]
        row = [cell(p["point"][k], k) for k in moving] + [cell(p.get("also", {}).get(k), k) for k in also]
        row += [fmt(p.get("n_params"))] if show_params else []
        row = row or ["--"]
        row += [fmt(p["train_error"]["mean"]), fmt(te["mean"]), f"[{fmt(te['ci_low'])}, {fmt(te['ci_high'])}]"]
        if early:
            row += [fmt(p["selected_epoch"], 2), fmt(p["final_test_error"]["mean"])]
        rows.append(row)

    best = summary.get("best")
    ends = {}
    for end in ("smallest", "largest"):
        here = summary.get(f"at_{end}_x")
        if here:
            ends[end] = {"n_points": here["n_points"],
                         "best": named_point(here["best"]["point"], (x,)), "worst": named_point(here["worst"]["point"], (x,)),
                         "best_error": here["best"]["test_error"]["mean"], "worst_error": here["worst"]["test_error"]["mean"],
                         "best_train": here["best"]["train_error"]["mean"]}
    return {
        "keys": keys, "key_names": [key_name(k) for k in keys], "x_name": key_name(x) if x else "", "varied_keys": moving,
        "varied_names": [key_name(k) for k in moving], "x_only": bool(x) and moving in ([x], []),
        "sweep_words": english_list(phrases), "n_grid": n_grid, "n_points": len(points), "fixed_words": english_list(
            f"{key_name(k)} {cell(values[k][0], k)}" for k in fixed),
        "derived_words": english_list(
            f"{key_name(k)} from {cell(v[0], k)} to {cell(v[-1], k)}" for k, v in derived.items()),
        "setup": setup, "varies": [k for k, v in setup.items() if isinstance(v, list)] + list(derived),
        "channels": "; ".join(channels), "curve_channels": "; ".join(curve_channels),
        "along_x": english_list(key_name(k) for k in layout.along_x),
        "header": header, "rows": rows,
        "best_point": named_point(best["point"]) if best else "",
        "ends": ends,
        "curve_values": english_list(cell(v, x) for v in shown), "all_curves": len(shown) == len(x_values),
    }
