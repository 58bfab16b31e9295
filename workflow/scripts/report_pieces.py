"""Snakemake script of rule report_pieces: each experiment's words and the \\result values, from the summaries."""
from mathdl.io import log_to
from mathdl.pipeline import write_report_pieces

with log_to(snakemake.log[0]):
    write_report_pieces(
        snakemake.params.project,
        snakemake.params.report,
        snakemake.params.experiments,
        snakemake.input.summaries,
        "report",
        snakemake.output[0],
    )
