"""The sweep's figures: what each one plots (a table of means over seeds at full sweep points,
with the channel of every varied key), and the drawing of such a table as lines and facets.

``error_data`` and ``curve_data`` return exactly what ``error_vs_x`` and ``learning_curves``
draw; a point of a line is the mean over the seeds of one full sweep point, never over
another varied key (see :mod:`.layout`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mathdl.studies.sweep import architecture, by_point
from mathdl.studies.sweep import layout as layouts

MAX_CURVES = 5  # learning curves per panel: the smallest, the largest and evenly spaced values between
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def sweep_keys(experiment) -> list[str]:
    return [k for k, _ in experiment.sweep]


def configured_channels(experiment) -> dict[str, str]:
    """The plan's plot.hue, plot.style, plot.col, plot.row ("" where it lets the figures choose)."""
    return {c: getattr(experiment.plot, c, "") for c in ("hue", "style", "col", "row")}


def reported(tables, early: bool) -> pd.DataFrame:
    """One row per run that did not diverge, with its errors at the selected epoch (early
    stopping) or the last one: what the summary's means are taken over."""
    wide = tables.selected() if early else tables.final()
    return wide[~wide["diverged"].astype(bool)]


def layout_of(runs: pd.DataFrame, experiment) -> layouts.Layout:
    keys = sweep_keys(experiment)
    points = runs[keys].drop_duplicates() if keys else runs.iloc[:0]
    return layouts.choose(points, keys, experiment.plot.x if keys else "", configured_channels(experiment))


def error_data(tables, summary, experiment) -> tuple[pd.DataFrame, layouts.Layout]:
    """error_vs_x's table: per full sweep point and split (train, test), the mean error over
    seeds with its Student-t interval; and the layout of the keys."""
    from mathdl.tables import mean_ci

    runs = reported(tables, bool(summary["early_stopping"]))
    layout = layout_of(tables.runs, experiment)
    keys = sweep_keys(experiment)
    rows = []
    for values, df in by_point(runs, keys):
        for split in ("train", "test"):
            mean, lo, hi = mean_ci(df[f"{split}_error"], summary["confidence"])
            rows.append({**values, "split": split, "mean": mean, "ci_low": lo, "ci_high": hi,
                         "n_seeds": int(df["seed"].nunique()), "runs": tuple(sorted(df["run_id"]))})
    data = pd.DataFrame(rows, columns=[*keys, "split", "mean", "ci_low", "ci_high", "n_seeds", "runs"])
    return _labelled(data, layout, architecture(experiment)), layout


def curve_data(tables, summary, experiment) -> tuple[pd.DataFrame, layouts.Layout]:
    """learning_curves' table: per full sweep point and epoch of the runs' evaluation schedule,
    the mean test error over the seeds (runs that diverged left out), for at most MAX_CURVES
    values of the colour; and the layout."""
    from mathdl.engine import eval_epochs

    layout = layouts.for_curves(layout_of(tables.runs, experiment))
    keys = sweep_keys(experiment)
    ok = tables.runs[~tables.runs["diverged"].astype(bool)]
    # Each run's regular schedule only: an early-stopped run adds a record at its selected epoch,
    # and a mean over the few runs that hold such a record would spike.
    schedules = {(e, p): set(eval_epochs(int(e), int(p)))
                 for e, p in ok[["train.epochs", "train.eval_points"]].drop_duplicates().itertuples(index=False)}
    scheduled = {r: schedules[(e, p)] for r, e, p in ok[["run_id", "train.epochs", "train.eval_points"]].itertuples(index=False)}
    m = tables.metrics
    m = m[(m["split"] == "test") & (m["metric"] == "error") & m["run_id"].isin(scheduled)]
    m = m[np.array([epoch in scheduled[run] for run, epoch in zip(m["run_id"], m["epoch"])], dtype=bool)]
    m = m.merge(ok[["run_id", *keys]], on="run_id")
    rows = []
    for values, df in by_point(m, keys):
        for epoch, at in df.groupby("epoch", sort=True):
            rows.append({**values, "epoch": int(epoch), "split": "test", "mean": float(at["value"].mean()), "ci_low": math.nan,
                         "ci_high": math.nan, "n_seeds": int(at["run_id"].nunique())})
    columns = [*keys, "epoch", "split", "mean", "ci_low", "ci_high", "n_seeds"]
    data = _labelled(pd.DataFrame(rows, columns=columns), layout, architecture(experiment))
    if layout.hue and len(data):
        shown = curve_labels(data)
        data = data[data["hue"].isin(shown)]
    return data, layout


def curve_labels(data: pd.DataFrame) -> list[str]:
    """The colour labels drawn in the learning curves (see :func:`evenly_spaced`)."""
    return evenly_spaced(list(dict.fromkeys(data.sort_values("hue_order")["hue"])))


def evenly_spaced(items: list) -> list:
    """All of ``items``, or MAX_CURVES of them: the first, the last and evenly spaced ones between."""
    if len(items) <= MAX_CURVES:
        return list(items)
    picks = sorted({round(i * (len(items) - 1) / (MAX_CURVES - 1)) for i in range(MAX_CURVES)})
    return [items[i] for i in picks]


def selected_marks(tables, experiment, data: pd.DataFrame, layout: layouts.Layout) -> pd.DataFrame:
    """Each run's selected epoch and its test error there (early stopping), with the labels of
    its keys, for the runs whose curves ``data`` holds."""
    wide = reported(tables, True)
    marks = _labelled(wide[["run_id", "selected_epoch", "test_error", *sweep_keys(experiment)]], layout,
                      architecture(experiment))
    return marks[marks["hue"].isin(set(data["hue"]))] if len(data) else marks.iloc[:0]


# ----------------------------------------------------------------------------- labels


def value_text(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):g}"
    return str(v)


def channel_title(keys, arch: str = "") -> str:
    """The keys' names (for the networks of ``arch``; see report.key_name), for a legend or an axis."""
    from mathdl.report import key_name

    return ", ".join(key_name(k, arch) for k in keys)


def _labelled(data: pd.DataFrame, layout: layouts.Layout, arch: str = "") -> pd.DataFrame:
    """``data`` with, per channel, a label column (the values of its keys; a facet's named for
    the networks of ``arch``) and an order column."""
    from mathdl.report import key_name

    data = data.copy()
    for channel in ("hue", "style", "col", "row"):
        keys = list(getattr(layout, channel))
        if not keys:
            data[channel], data[f"{channel}_order"] = "", 0
            continue
        if channel in ("col", "row"):
            data[channel] = [", ".join(f"{key_name(k, arch)} = {value_text(v)}" for k, v in zip(keys, vals))
                             for vals in data[keys].itertuples(index=False)]
        else:
            data[channel] = [", ".join(value_text(v) for v in vals) for vals in data[keys].itertuples(index=False)]
        order = data[keys].drop_duplicates().sort_values(keys, key=_sort_key).reset_index(drop=True)
        rank = {tuple(map(value_text, r)): i for i, r in enumerate(order.itertuples(index=False))}
        data[f"{channel}_order"] = [rank[tuple(map(value_text, r))] for r in data[keys].itertuples(index=False)]
    return data


def _sort_key(column: pd.Series) -> pd.Series:
    """Numbers by value, anything else by its text."""
    numeric = pd.to_numeric(column, errors="coerce")
    return numeric if numeric.notna().all() and column.map(lambda v: not isinstance(v, (bool, np.bool_))).all() \
        else column.astype(str)


def is_numeric(values) -> bool:
    return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
               for v in values)


# ----------------------------------------------------------------------------- drawing


def draw(data: pd.DataFrame, layout: layouts.Layout, plot, *, x: str, xlabel: str, ylabel: str,
         splits: bool, logx: bool, logy: bool, epochs: int = 0, band: bool = True, marks: pd.DataFrame | None = None,
         arch: str = ""):
    """Lines of ``data['mean']`` against ``data[x]``: one per colour, marker (and split: test solid,
    train dashed) label, in one panel per facet label; a shaded interval where ``band``; a cross
    at each run's selected epoch (``marks``). Returns the figure; its legend names every key (for
    the networks of ``arch``)."""
    import seaborn as sns

    from mathdl import plots

    cols = _ordered(data, "col")
    rows = _ordered(data, "row")
    ncols, nrows = max(len(cols), 1), max(len(rows), 1)
    wrap = not layout.row and ncols > 4  # many columns and no rows: wrap them
    if wrap:
        ncols, nrows = 4, math.ceil(len(cols) / 4)
    n_panels = ncols * nrows
    scale = 1.0 if n_panels == 1 else max(0.55, 1 / math.sqrt(max(ncols, nrows)))
    fig, axes = plots.new_figure(plot, ncols, nrows, scale, sharex=True, sharey=True)
    panels = [(c, r) for r in (rows or [""]) for c in (cols or [""])]
    hues = _ordered(data, "hue")
    numeric_hue = len(layout.hue) >= 1 and is_numeric(data[layout.hue[0]].unique())
    palette = (plots.sequential_palette(len(hues)) if numeric_hue
               else sns.color_palette(plot.palette if len(hues) <= 8 else "husl", max(len(hues), 1)))
    colour = dict(zip(hues or [""], palette))
    markers = {s: MARKERS[i % len(MARKERS)] for i, s in enumerate(_ordered(data, "style"))}
    numeric_x = is_numeric(data[x].unique()) if len(data) else True
    positions = None if numeric_x else {v: i for i, v in enumerate(_x_order(data, x))}
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax, (c, r) in zip(axes, panels):
        here = data[(data["col"] == c) & (data["row"] == r)] if len(data) else data
        for (h, s, split), line in here.groupby(["hue", "style", "split"], sort=False) if len(here) else []:
            line = line.sort_values(x, key=_sort_key)
            xs = line[x].to_numpy() if numeric_x else line[x].map(positions).to_numpy()
            ax.plot(xs, line["mean"], color=colour[h], marker=markers.get(s, "o" if band else None),
                    markersize=4, linestyle="--" if split == "train" else "-", linewidth=1.2 if split == "train" else 1.6)
            if band and len(line) == 1 and line["ci_low"].notna().all():  # a lone point: its interval as a bar
                ax.errorbar(xs, line["mean"], yerr=[line["mean"] - line["ci_low"].clip(lower=0),
                                                    line["ci_high"] - line["mean"]], color=colour[h], capsize=3)
            elif band and line["ci_low"].notna().any():
                # Errors are never negative: a Student-t interval of few seeds may reach below 0.
                ax.fill_between(xs, line["ci_low"].clip(lower=0), line["ci_high"], color=colour[h], alpha=0.15,
                                linewidth=0)
        if marks is not None:
            at = marks[(marks["col"] == c) & (marks["row"] == r)]
            ax.scatter(at["selected_epoch"], at["test_error"], c=[colour[h] for h in at["hue"]], marker="x",
                       s=14, linewidths=0.8, alpha=0.7, zorder=3)
        title = "\n".join(t for t in (r, c) if t)  # one line per key: side-by-side panels keep apart
        if title:
            ax.set_title(title, fontsize="medium")
        if epochs:
            plots.epoch_axis(ax, epochs)
        elif logx and numeric_x and len(data):
            plots.log_axis(ax, data[x].unique(), "x")
        if not numeric_x:
            ax.set_xticks(list(positions.values()), [value_text(v) for v in positions])
        if layout.along_x and len(data):  # the keys that vary with x: under each tick, in brackets
            pairs = data[[x, *layout.along_x]].drop_duplicates().sort_values(x, key=_sort_key)
            ticks = pairs[x].to_numpy(dtype=float) if numeric_x else pairs[x].map(positions).to_numpy()
            ax.set_xticks(ticks, [f"{value_text(v)}\n({', '.join(map(value_text, rest))})"
                                  for v, *rest in pairs.itertuples(index=False)])
            ax.minorticks_off()
        if logy and len(data) and (data["mean"].dropna() > 0).all():
            ax.set_yscale("log")
    for i, ax in enumerate(axes[: len(panels)]):
        ax.set_xlabel(xlabel if i >= len(panels) - ncols else "")
        ax.set_ylabel(ylabel if i % ncols == 0 else "")
    handles, labels = [], []
    if layout.hue:
        h, lab = plots.legend_entries(channel_title(layout.hue, arch), [(v, {"color": colour[v], "linewidth": 2}) for v in hues])
        handles += h
        labels += lab
    if layout.style:
        h, lab = plots.legend_entries(channel_title(layout.style, arch),
                                      [(v, {"color": "0.3", "marker": markers[v], "linestyle": "none"}) for v in markers])
        handles += h
        labels += lab
    if splits:
        h, lab = plots.legend_entries("split", [("test", {"color": "0.3", "linestyle": "-"}),
                                                ("train", {"color": "0.3", "linestyle": "--"})])
        handles += h
        labels += lab
    if marks is not None and len(marks):
        h, lab = plots.legend_entries("early stopping", [("selected epoch", {"color": "0.3", "marker": "x", "linestyle": "none"})])
        handles += h
        labels += lab
    if handles:
        fig.legend(handles, labels, loc="outside right upper", fontsize="small", frameon=False)
    return fig


def _ordered(data: pd.DataFrame, channel: str) -> list[str]:
    if not len(data) or not data[channel].astype(bool).any():
        return []
    return list(dict.fromkeys(data.sort_values(f"{channel}_order")[channel]))


def _x_order(data: pd.DataFrame, x: str) -> list:
    return list(data[x].drop_duplicates().sort_values(key=_sort_key))
