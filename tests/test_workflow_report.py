"""The group's own paper through real Snakemake: ejected words rebuild the PDF with live numbers,
and two plans keep their own documents."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import TINY, TINY_EXPERIMENT, report_dir, snakemake

pytestmark = [
    pytest.mark.workflow,
    pytest.mark.skipif(shutil.which("latexmk") is None or shutil.which("pdftotext") is None,
                       reason="needs latexmk and pdftotext"),
]


def _pdf_text(pdf: Path) -> str:
    out = subprocess.run(["pdftotext", "-layout", pdf, "-"], capture_output=True, text=True).stdout
    return " ".join(out.split())


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def work(finished_tiny, tmp_path) -> Path:
    """A private copy of the finished tiny run (the shared one stays as it is)."""
    dest = tmp_path / "work"
    shutil.copytree(finished_tiny, dest, symlinks=True)
    return dest


def test_ejected_words_rebuild_the_paper_with_numbers_from_the_summary(work):
    eject = subprocess.run([sys.executable, "-m", "mathdl.cli", "eject", TINY_EXPERIMENT, "--config", TINY],
                           cwd=work, capture_output=True, text=True)
    assert eject.returncode == 0, eject.stderr
    section = work / "report" / "experiments" / "wide-nets-50" / "section.tex"
    section.write_text(section.read_text().replace(
        r"\VAR{description}", r"Our own sentence: the best test error was \VAR{summary.best_test_error|fmt}."))
    result = snakemake(work, "--configfile", TINY)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "rule train" not in result.stdout + result.stderr  # words only: nothing retrains
    summary = json.loads((work / "results" / "tables" / TINY_EXPERIMENT / "summary.json").read_text())
    text = _pdf_text(report_dir(work, TINY) / "paper.pdf")
    assert f"Our own sentence: the best test error was {summary['best_test_error']:.3g}." in text


def test_a_second_plan_leaves_the_first_plans_documents_intact(work):
    first = report_dir(work, TINY)
    before = {doc: _digest(first / f"{doc}.pdf") for doc in ("paper", "slides")}
    plan = yaml.safe_load((work / TINY).read_text())
    plan["project"]["title"] = "A second plan"
    plan["experiments"] = {"representation": plan["experiments"]["representation"]}
    (work / "config" / "second.yaml").write_text(yaml.safe_dump(plan))
    result = snakemake(work, "--configfile", "config/second.yaml")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "A second plan" in _pdf_text(report_dir(work, "config/second.yaml") / "paper.pdf")
    assert {doc: _digest(first / f"{doc}.pdf") for doc in ("paper", "slides")} == before
    again = snakemake(work, "--configfile", TINY, "-n")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
