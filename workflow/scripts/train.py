"""Snakemake script of rule train: train one group as a batched ensemble (mathdl.pipeline.train_group)."""
from mathdl.threads import configure_openmp

configure_openmp()  # before torch loads: idle OpenMP threads soon give their core back (mathdl.threads)

from mathdl.io import log_to  # noqa: E402
from mathdl.pipeline import train_group  # noqa: E402

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
