"""Snakemake script of rule report_pieces: LaTeX macros, sections and slides from the summaries."""
from mathdl.io import log_to
from mathdl.pipeline import write_report_pieces

with log_to(snakemake.log[0]):
    write_report_pieces(
        snakemake.params.project,
        snakemake.params.experiments,
        snakemake.input.summaries,
        snakemake.output.metadata.rsplit("/", 1)[0],
    )
