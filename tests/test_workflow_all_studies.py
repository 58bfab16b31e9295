"""Every study end to end: config/smoke.yaml (every study at tiny sizes) through real Snakemake
and latexmk to the PDFs, in private copies of the project.

Checked: the generated words are the studies' templates rendered with these summary.json files;
every number they print is a value of the summary or the plan as ``mathdl.report.fmt`` prints it;
``\\result`` and the macros print exactly their summary values; no placeholder (``--``, ``??``,
``nan``) stands where a value exists; two clean runs give the same tables; a run with part of its
results deleted resumes to the same tables; a finished run has nothing to do.

Values that legitimately differ between two runs on the same machine: wall-clock times. Only
sgd_linear records them, on purpose (its loss against seconds): the ``seconds`` rows of its
metrics table, the ``seconds`` column of its runs table and every summary value whose key path
names seconds (``fastest_in_seconds`` is the batch size that is fastest by the clock). Nothing
else is dropped; ``device`` stays, as the plan pins it to the CPU. Tables are compared exactly:
the same seeds on the same machine give the same bits.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import SMOKE, copy_project, jobs_to_run, report_dir, snakemake
from pandas.testing import assert_frame_equal

from mathdl import templating
from mathdl.config import load_plan
from mathdl.report import escape, fmt, slug

pytestmark = [
    pytest.mark.workflow,
    pytest.mark.skipif(shutil.which("latexmk") is None or shutil.which("pdftotext") is None,
                       reason="needs latexmk and pdftotext"),
]

SMOKE_TIMEOUT = 1800  # stops a hung run only; on a busy 2-core machine a run takes minutes
DIGITS = (2, 3, 4)  # the digits the words may pass to fmt()
WALL_TIME = "seconds"  # sgd_linear's metric, runs column and summary keys of measured wall time
NUMBER = re.compile(r"\\num\{[^}]*\}")
DASH = re.compile(r"(?:^|(?<=[\s&{(\[]))--(?=[\s&})\],.;\\]|$)")  # "--" standing alone, as fmt(None) prints it

# Table rows that print "--" by design: how many cells of a row may, given the summary.
DASH_ROWS = {
    # AdaGrad's momentum cell: it has none.
    "optimizers": lambda line, s: int("AdaGrad" in line and all(
        e["methods"]["adagrad"]["momentum"] is None for e in s["landscapes"] if "adagrad" in e["methods"])),
    # The full-batch row (B = n): no plateau, and its "minibatch" gradient is the full gradient.
    "sgd_linear": lambda line, s: 2 * int(line.lstrip().startswith("$n$") and any(
        b["full_batch"] and b["plateau_gap"] is None for b in s["batch_sizes"])),
}


# ----------------------------------------------------------------------------- helpers


def _experiments() -> dict[str, str]:
    """Experiment name -> study, in the plan's order."""
    plan = yaml.safe_load((Path(__file__).resolve().parents[1] / SMOKE).read_text())
    return {name: exp["study"] for name, exp in plan["experiments"].items()}


@functools.lru_cache
def _plan(work: Path):
    """The plan as the workflow loads it (study defaults filled in)."""
    return load_plan(yaml.safe_load((work / SMOKE).read_text()))


def _summary(work: Path, name: str) -> dict:
    return json.loads((work / "results" / "tables" / name / "summary.json").read_text())


def _generated(work: Path, kind: str, name: str) -> str:
    """An experiment's generated section or slides."""
    return (report_dir(work, SMOKE) / "generated" / kind / f"{slug(name)}.tex").read_text()


def _leaves(obj, path: str = "") -> dict[str, object]:
    """A JSON value's leaves by dotted path: {"a": {"b": [7]}} -> {"a.b.0": 7}."""
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, list):
        items = enumerate(obj)
    else:
        return {path: obj}
    out: dict[str, object] = {}
    for key, value in items:
        out.update(_leaves(value, f"{path}.{key}" if path else str(key)))
    return out


def _numbers(obj) -> set[float]:
    """The finite numbers of a JSON value, as percentages too, and the lengths of its lists."""
    out: set[float] = set()
    for value in _leaves(obj).values():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out |= {value, 100 * value}

    def lengths(o):
        if isinstance(o, (dict, list)):
            if isinstance(o, list):
                out.add(len(o))
            for v in (o.values() if isinstance(o, dict) else o):
                lengths(v)

    lengths(obj)
    return out


@functools.lru_cache
def _printable(work: Path, name: str) -> dict[str, set[float]]:
    r"""Every \num{} an experiment's summary and resolved config can print, with the values behind it."""
    values = _numbers(_summary(work, name)) | _numbers(_plan(work).resolved["experiments"][name])
    out: dict[str, set[float]] = {}
    for v, d in itertools.product(values, DIGITS):
        out.setdefault(fmt(v, d), set()).add(v)
    return out


def _unexplained_numbers(work: Path, name: str, text: str) -> list[str]:
    r"""The \num{} of ``text`` that are neither a summary or plan value nor the ratio of two printed ones."""
    printable = _printable(work, name)
    numbers = NUMBER.findall(text)
    unknown = sorted({n for n in numbers if n not in printable})
    if unknown:  # "x times smaller": the words may divide two values they print
        shown = {v for n in numbers for v in printable.get(n, ()) if v}
        ratios = {fmt(a / b, d) for a, b in itertools.permutations(shown, 2) for d in DIGITS}
        unknown = [n for n in unknown if n not in ratios]
    return unknown


def _pdf_text(pdf: Path) -> str:
    out = subprocess.run(["pdftotext", "-layout", pdf, "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(out.split())


def _reproducible_tables(work: Path, name: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """An experiment's metrics, runs and summary without the wall-clock values (module docstring)."""
    tables = work / "results" / "tables" / name
    metrics = pd.read_parquet(tables / "metrics.parquet")
    metrics.loc[metrics["metric"] == WALL_TIME, "value"] = float("nan")
    runs = pd.read_parquet(tables / "runs.parquet").drop(columns=[WALL_TIME], errors="ignore")
    summary = {k: v for k, v in _leaves(_summary(work, name)).items() if WALL_TIME not in k}
    return metrics, runs, summary


def _assert_same_tables(work: Path, reference: Path) -> None:
    for name in _experiments():
        got, want = _reproducible_tables(work, name), _reproducible_tables(reference, name)
        for kind, a, b in zip(("metrics", "runs"), got, want):
            try:
                assert_frame_equal(a, b, check_exact=True)
            except AssertionError as err:
                raise AssertionError(f"{name}/{kind}.parquet differs: {err}") from None
        differing = sorted(k for k in got[2].keys() | want[2].keys() if got[2].get(k, "?") != want[2].get(k, "?"))
        assert not differing, f"{name}/summary.json differs at {differing[:10]}"


def _assert_words_are_the_summaries(work: Path) -> None:
    """Each experiment's section and slides are its words rendered with its summary.json (none stale)."""
    for experiment in _plan(work).experiments:
        piece = templating.render_experiment(experiment, _summary(work, experiment.name), work / "report")
        assert _generated(work, "sections", experiment.name) == piece.section, experiment.name
        assert _generated(work, "slides", experiment.name) == piece.slides, experiment.name


def _assert_results_and_macros_are_the_summaries(work: Path) -> None:
    r"""results.tex: \result{slug}{key.path} prints that summary value; metadata.tex: the counts."""
    generated = report_dir(work, SMOKE) / "generated"
    text = (generated / "results.tex").read_text()
    defined = re.findall(r"^\\expandafter\\def\\csname mathdl@r@([^@]+)@(.+?)\\endcsname\{(.*)\}$", text, re.M)
    by_slug = {slug(n): n for n in _experiments()}
    assert {s for s, _, _ in defined} == set(by_slug)
    for s, key, value in defined:
        leaves = _leaves(_summary(work, by_slug[s]))
        assert key in leaves, f"\\result{{{s}}}{{{key}}}: no such summary value"
        assert value == (escape(leaves[key]) if isinstance(leaves[key], str) else fmt(leaves[key])), (s, key, value)
    for name in _experiments():  # every number of every summary can be cited
        keys = {k for s, k, _ in defined if s == slug(name)}
        missing = [k for k, v in _leaves(_summary(work, name)).items()
                   if isinstance(v, (int, float)) and re.fullmatch(r"[A-Za-z0-9_.:+-]+", k) and k not in keys]
        assert not missing, f"{name}: no \\result for {missing[:5]}"

    macros = dict(re.findall(r"^\\newcommand\{\\(mathdlNum[A-Za-z]+)\}\{(.*)\}$",
                             (generated / "metadata.tex").read_text(), re.M))
    n_runs = sum(len(pd.read_parquet(work / "results" / "tables" / n / "runs.parquet")) for n in _experiments())
    assert macros == {"mathdlNumExperiments": str(len(_experiments())), "mathdlNumRuns": str(n_runs)}


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def second_clean_run(tmp_path_factory) -> Path:
    """A second clean run in its own copy, to the tables (figures and documents derive from them)."""
    work = copy_project(tmp_path_factory.mktemp("smoke_again"))
    targets = [f"results/tables/{name}/summary.json" for name in _experiments()]
    result = snakemake(work, *targets, "--configfile", SMOKE, timeout=SMOKE_TIMEOUT)
    assert result.returncode == 0, result.stderr[-4000:]
    return work


# ----------------------------------------------------------------------------- tests


def test_every_study_reaches_both_documents(finished_smoke):
    from mathdl.studies import STUDIES

    assert set(_experiments().values()) == set(STUDIES), "the smoke plan must run every study"
    docs = report_dir(finished_smoke, SMOKE)
    for doc in ("paper", "slides"):
        assert (docs / f"{doc}.pdf").stat().st_size > 10_000
    paper = _pdf_text(docs / "paper.pdf")
    for name in _experiments():  # its subsection, under its title (the name: the plan gives none)
        assert rf"\subsection{{{escape(name)}}}" in _generated(finished_smoke, "sections", name)
        assert name in paper, name
        assert any((finished_smoke / "results" / "figures" / name).glob("*.pdf")), name


def test_the_words_are_rendered_from_these_summaries(finished_smoke):
    _assert_words_are_the_summaries(finished_smoke)


def test_every_number_in_the_words_is_a_summary_or_plan_value(finished_smoke):
    r"""Each \num{} of every generated section and slide, as fmt prints it at 2 to 4 digits."""
    problems = [f"{kind}/{slug(name)}.tex: {n}" for name in _experiments() for kind in ("sections", "slides")
                for n in _unexplained_numbers(finished_smoke, name, _generated(finished_smoke, kind, name))]
    assert not problems, "\n".join(problems)


def test_result_values_and_macros_are_the_summaries(finished_smoke):
    _assert_results_and_macros_are_the_summaries(finished_smoke)


def test_no_placeholder_where_a_value_exists(finished_smoke):
    """No ?? (a missing reference or \\result), no nan; every "--" an empty value by design.

    A dash is checked where it is written, in the generated LaTeX: in the PDF, pdftotext cannot
    tell a missing value's en dash from one of the prose or the bibliography.
    """
    docs = report_dir(finished_smoke, SMOKE)
    for doc in ("paper", "slides"):
        text = _pdf_text(docs / f"{doc}.pdf")
        for bad in ("??", "(?)", "[?]"):  # an undefined reference, \result or citation
            at = text.find(bad)
            assert at < 0, f"{doc}.pdf prints {bad!r}: {text[max(0, at - 200):at + 50]}"
        assert not re.search(r"\bnan\b", text, re.I), doc
    problems = []
    for name, study in _experiments().items():
        summary = _summary(finished_smoke, name)
        for kind in ("sections", "slides"):
            for line in _generated(finished_smoke, kind, name).splitlines():
                if re.search(r"(?<![\\A-Za-z])(nan|inf)(?![A-Za-z])", line, re.I):
                    problems.append(f"{kind}/{slug(name)}.tex prints nan or inf: {line.strip()[:160]}")
                allowed = DASH_ROWS[study](line, summary) if study in DASH_ROWS else 0
                if len(DASH.findall(line)) > allowed:
                    problems.append(f"{kind}/{slug(name)}.tex prints -- : {line.strip()[:160]}")
    assert not problems, "\n".join(problems)


def test_two_clean_runs_give_the_same_tables(finished_smoke, second_clean_run):
    _assert_same_tables(second_clean_run, finished_smoke)


def test_a_run_with_deleted_results_resumes_to_the_same_tables(finished_smoke, tmp_path):
    work = tmp_path / "resumed"
    shutil.copytree(finished_smoke, work, symlinks=True)  # keeps modification times
    group = sorted((work / "results" / "runs" / "residual").iterdir())[0]
    shutil.rmtree(group)  # one training job's outputs
    shutil.rmtree(work / "results" / "tables" / "curse")  # one experiment's tables
    kept = {p: p.stat().st_mtime_ns for p in (work / "results" / "runs").rglob("*") if p.is_file()}
    documents = {doc: (report_dir(work, SMOKE) / f"{doc}.pdf").stat().st_mtime_ns for doc in ("paper", "slides")}
    dry = snakemake(work, "-n", "--configfile", SMOKE, timeout=300)
    assert jobs_to_run(dry) == {"train": 1, "evaluate": 2, "figures": 2, "report_pieces": 1,
                                "compile_document": 2, "html_report_pieces": 1, "all": 1}, dry.stdout[-3000:]
    result = snakemake(work, "--configfile", SMOKE, timeout=SMOKE_TIMEOUT)
    assert result.returncode == 0, result.stderr[-4000:]
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # the other groups were not retrained
    _assert_same_tables(work, finished_smoke)
    _assert_words_are_the_summaries(work)
    _assert_results_and_macros_are_the_summaries(work)
    for doc, stamp in documents.items():  # rebuilt from the new tables
        assert (report_dir(work, SMOKE) / f"{doc}.pdf").stat().st_mtime_ns > stamp, doc


def test_a_finished_run_has_nothing_to_do(finished_smoke):
    def snapshot():  # every file's modification time and content
        return {str(p): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
                for p in sorted((finished_smoke / "results").rglob("*")) if p.is_file()}

    before = snapshot()
    dry = snakemake(finished_smoke, "-n", "--configfile", SMOKE, timeout=300)
    assert dry.returncode == 0 and jobs_to_run(dry) == {}, dry.stdout[-3000:]
    assert "Nothing to be done" in dry.stdout + dry.stderr
    again = snakemake(finished_smoke, "--configfile", SMOKE, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert snapshot() == before  # no table, figure or document was rewritten
