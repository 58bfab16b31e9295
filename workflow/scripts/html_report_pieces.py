"""Snakemake script of rule html_report_pieces: the figures' captions and the tables of the paper, for the HTML report."""
from pathlib import Path

from mathdl.html_report import write_html_report_pieces
from mathdl.io import log_to

with log_to(snakemake.log[0]):
    write_html_report_pieces(
        snakemake.params.experiments,
        Path(snakemake.input.pieces) / "sections",
        snakemake.input.figures,
        snakemake.input.preamble,
        snakemake.output[0],
    )
