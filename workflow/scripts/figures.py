"""Snakemake script of rule figures: draw an experiment's figures from its tables."""
from mathdl.io import log_to
from mathdl.pipeline import make_figures

with log_to(snakemake.log[0]):
    make_figures(
        snakemake.wildcards.experiment,
        {**snakemake.params.experiment, "plot": snakemake.params.experiment_plot},
        snakemake.params.plot,
        snakemake.input.metrics,
        snakemake.input.runs,
        snakemake.input.summary,
        snakemake.output[0],
    )
