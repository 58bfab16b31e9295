"""Shared figure plumbing: the seaborn theme from the config, and saving as PDF and PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on a cluster node

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from mathdl.spec import PlotConfig  # noqa: E402


def setup(plot: PlotConfig) -> None:
    sns.set_theme(style=plot.style, context=plot.context, palette=plot.palette)


def new_figure(plot: PlotConfig, ncols: int = 1, nrows: int = 1):
    """A figure of ``nrows`` x ``ncols`` panels, each of the plot's size; the axes in one flat array."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(plot.width * ncols, plot.height * nrows), squeeze=False,
                             layout="constrained")
    return fig, axes.ravel()


def save(fig, outdir: Path, name: str, plot: PlotConfig) -> str:
    """Write ``name.pdf`` (for the paper) and ``name.png`` (for a quick look); return ``name``."""
    outdir.mkdir(parents=True, exist_ok=True)
    fig.savefig(outdir / f"{name}.pdf")
    fig.savefig(outdir / f"{name}.png", dpi=plot.dpi)
    plt.close(fig)
    return name
