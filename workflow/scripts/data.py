"""Snakemake script of rule data: generate one data set (mathdl.pipeline.make_data)."""
from mathdl.io import log_to
from mathdl.pipeline import make_data

with log_to(snakemake.log[0]):
    make_data(snakemake.params.task, snakemake.output[0])
