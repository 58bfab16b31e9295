"""Snakemake's HTML report of the finished tiny plan: every figure with its caption in the paper,
grouped by experiment, the paper's tables, the PDFs and the workflow's description."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest
from helpers import TINY, report_dir, snakemake

from mathdl import html_report
from mathdl.report import slug

pytestmark = pytest.mark.workflow


def script_json(html: str, name: str):
    """The value of ``var <name> = ...;`` in the page's script of that id (workflow_desc: workflow-desc)."""
    m = re.search(rf'<script id="{name.replace("_", "-")}">\s*var {name} = (.*?);\s*</script>', html, re.S)
    assert m, f"no {name} in the report"
    return json.loads(m.group(1))


def words(html_or_tex: str) -> str:
    """Plain words only: tags, commands, math and punctuation dropped, whitespace collapsed."""
    text = re.sub(r"<[^>]+>|\$[^$]*\$|\\[A-Za-z]+|&[a-z]+;", " ", html_or_tex)
    return " ".join(re.findall(r"[A-Za-z]{3,}", text))


@pytest.fixture(scope="module")
def tiny_report(finished_tiny: Path) -> dict:
    result = snakemake(finished_tiny, "--configfile", TINY, "--report", "report.zip")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WARNING" not in result.stderr and "ERROR" not in result.stderr, result.stderr[-3000:]
    with zipfile.ZipFile(finished_tiny / "report.zip") as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    html = files["report/report.html"].decode()
    return {"files": files, "html": html, "results": script_json(html, "results"),
            "categories": script_json(html, "categories"), "workflow_desc": script_json(html, "workflow_desc")}


def test_every_figure_is_in_the_report_under_its_experiment_with_its_paper_caption(finished_tiny, tiny_report):
    docs = report_dir(finished_tiny, TINY)
    figures = sorted((finished_tiny / "results" / "figures").glob("*/*.png"))
    assert len(figures) >= 6  # three experiments, two or three figures each
    archived = {Path(name).name: data for name, data in tiny_report["files"].items()}
    for png in figures:
        experiment, key = png.parent.name, png.relative_to(finished_tiny).as_posix()
        assert archived.get(png.name) == png.read_bytes(), f"{key} is not in the archive"
        assert key in tiny_report["categories"][experiment]["Figures"]
        # the caption is the paper's: the same words as in the experiment's generated section
        section = (docs / "generated" / "sections" / f"{slug(experiment)}.tex").read_text()
        paper_caption = html_report.figure_captions(section)[(slug(experiment), png.stem)]
        caption = tiny_report["results"][key]["caption"]
        assert words(paper_caption) and words(paper_caption) == words(caption), key
        assert "system-message" not in caption


def test_the_papers_tables_and_documents_are_in_the_report(finished_tiny, tiny_report):
    docs = report_dir(finished_tiny, TINY)
    archived = {Path(name).name: data for name, data in tiny_report["files"].items()}
    for doc in ("paper.pdf", "slides.pdf"):
        assert archived[doc] == (docs / doc).read_bytes()
        assert (docs / doc).relative_to(finished_tiny).as_posix() in tiny_report["categories"]["Paper and slides"]["PDF"]
    # each table of each section, with its caption and every cell of its body
    for experiment in ("wide_nets_&_50%", "representation", "random_labels"):
        section = (docs / "generated" / "sections" / f"{slug(experiment)}.tex").read_text()
        (table,) = html_report.tables(section)
        (key,) = tiny_report["categories"][experiment]["Tables"]
        page_file = finished_tiny / key
        inside = page_file.relative_to(docs / "html").as_posix()  # tables/<experiment>/<label>.html
        assert any(n.endswith("/" + inside) and data == page_file.read_bytes() for n, data in tiny_report["files"].items())
        page = page_file.read_text()
        assert words(table.caption) == words(re.search(r"<caption>(.*?)</caption>", page, re.S).group(1))
        assert page.count("<tr>") == len(table.header) + len(table.rows)
        for row in table.rows:
            for cell in row:
                number = re.fullmatch(r"\\num\{([^{}]*)\}", cell)
                if number:
                    assert f"<td><p>{number.group(1)}</p></td>" in page


def test_the_report_describes_the_workflow_and_the_plan(tiny_report):
    desc = tiny_report["workflow_desc"]
    assert "mathdl: from a plan of experiments to a paper" in desc
    for experiment in ("wide_nets_&amp;_50%", "representation", "random_labels"):
        assert experiment in desc
    assert "The plan has 3 experiments" in desc
