"""Shared figure plumbing: the seaborn theme from the config, figures of panels, saving as PDF
and PNG; and helpers for honest axes and legends (sequential palettes for ordered values, log
axes that hold a zero without an empty negative half, epoch axes from 0, titled legend sections)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on a cluster node

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from mathdl.spec import PlotConfig  # noqa: E402


def setup(plot: PlotConfig) -> None:
    sns.set_theme(style=plot.style, context=plot.context, palette=plot.palette)


def new_figure(plot: PlotConfig, ncols: int = 1, nrows: int = 1, scale: float = 1.0, **share):
    """A figure of ``nrows`` x ``ncols`` panels, each of the plot's size times ``scale``; the axes in
    one flat array. ``share``: ``sharex``/``sharey`` as for ``plt.subplots``."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(plot.width * ncols * scale, plot.height * nrows * scale),
                             squeeze=False, layout="constrained", **share)
    return fig, axes.ravel()


def save(fig, outdir: Path, name: str, plot: PlotConfig) -> str:
    """Write ``name.pdf`` (for the paper) and ``name.png`` (for a quick look); return ``name``."""
    outdir.mkdir(parents=True, exist_ok=True)
    fig.savefig(outdir / f"{name}.pdf")
    fig.savefig(outdir / f"{name}.png", dpi=plot.dpi)
    plt.close(fig)
    return name


def sequential_palette(n: int) -> list:
    """``n`` colours in order along viridis, stopping short of its pale yellow end (unreadable on
    white): for the ordered values of a numeric key."""
    cmap = sns.color_palette("viridis", as_cmap=True)
    return [cmap(0.85 * i / max(n - 1, 1)) for i in range(n)]


def log_axis(ax, values, axis: str = "x") -> str:
    """A logarithmic axis for positive ``values``; with a zero among them (weight decay 0, 1e-4,
    1e-3), a symmetric-log axis that is linear up to the smallest positive value and starts at
    0 (no empty negative half); with negative values, a linear one. Returns the scale chosen.

    Up to eight distinct values get ticks at the values themselves."""
    import numpy as np

    v = np.unique(np.asarray([float(a) for a in values], dtype=float))
    v = v[np.isfinite(v)]
    if len(v) == 0 or v.min() < 0:
        return "linear"
    set_scale, set_lim = (ax.set_xscale, ax.set_xlim) if axis == "x" else (ax.set_yscale, ax.set_ylim)
    if v.min() > 0:
        set_scale("log")
        scale = "log"
    elif len(v) > 1:
        set_scale("symlog", linthresh=float(v[v > 0].min()), linscale=0.5)
        set_lim(0, None)  # the values are never negative: no empty half of the axis
        scale = "symlog"
    else:
        return "linear"  # only zero
    if len(v) <= 8:
        _ticks_at(ax, axis, v)
    return scale


def epoch_axis(ax, last_epoch: int) -> None:
    """Epochs on a symmetric-log axis from 0: linear up to epoch 1, logarithmic after, ticks at
    0, 1, 10, 100, ... and the last epoch (no negative ticks, no empty negative half)."""
    import numpy as np

    ax.set_xscale("symlog", linthresh=1, linscale=0.5)
    ticks = [0] + [10**k for k in range(int(np.log10(max(last_epoch, 1))) + 1)]
    if last_epoch >= 2 * ticks[-1]:  # the last epoch too, unless it crowds the last power of ten
        ticks.append(last_epoch)
    _ticks_at(ax, "x", ticks)
    ax.set_xlim(0, max(last_epoch, 1))


def _ticks_at(ax, axis: str, values) -> None:
    """Major ticks at ``values`` printed plainly (4, 0.001, 1e+04), no minor ticks."""
    from matplotlib import ticker

    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(ticker.FixedLocator([float(v) for v in values]))
    target.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_locator(ticker.NullLocator())


def legend_entries(title: str, entries) -> tuple[list, list[str]]:
    """Handles and labels of one section of a figure legend: a title row, then ``entries`` given
    as (label, matplotlib Line2D keyword arguments)."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], linestyle="none")]
    labels = [title]
    for label, style in entries:
        handles.append(Line2D([], [], **style))
        labels.append(label)
    return handles, labels
