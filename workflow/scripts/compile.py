"""Snakemake script of rule compile_document: compile the paper or the slides with latexmk."""
from pathlib import Path

from mathdl.io import log_to
from mathdl.pipeline import compile_document

with log_to(snakemake.log[0]):
    doc = snakemake.wildcards.doc
    compile_document(
        main=f"{doc}.tex",
        sources="report",
        generated=snakemake.input.pieces[0],
        figures=dict(zip(snakemake.params.experiments, snakemake.input.figures)),
        workdir=Path(snakemake.output[0]).parent / "build" / doc,
        output=snakemake.output[0],
    )
