"""Snakemake script of rule train: train one group as a batched ensemble (mathdl.pipeline.train_group)."""
from mathdl.io import log_to
from mathdl.pipeline import train_group

with log_to(snakemake.log[0]):
    train_group(
        snakemake.params.spec,
        snakemake.input.data,
        snakemake.output.metrics,
        snakemake.output.runs,
        snakemake.output.provenance,
        device=snakemake.params.device,
        threads=snakemake.threads,
    )
