"""Snakemake script of rule evaluate: gather an experiment's tables and analyse them."""
from mathdl.io import log_to
from mathdl.pipeline import evaluate

with log_to(snakemake.log[0]):
    evaluate(
        snakemake.wildcards.experiment,
        snakemake.params.experiment,
        snakemake.input.metrics,
        snakemake.input.runs,
        snakemake.output.metrics,
        snakemake.output.runs,
        snakemake.output.summary,
    )
