"""End to end: real Snakemake on the tiny plan, to a real PDF compiled by latexmk.

The project's workflow, report and config are copied into a temporary folder, so the
repository's own results/ is never touched. Every Snakemake call runs under a time limit.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import ROOT, TINY, copy_project, jobs_to_run, report_dir, snakemake

pytestmark = pytest.mark.workflow

needs_tex = pytest.mark.skipif(
    shutil.which("latexmk") is None or shutil.which("pdftotext") is None, reason="needs latexmk and pdftotext"
)


@pytest.fixture
def finished(finished_tiny):
    return finished_tiny


@needs_tex
def test_tiny_plan_produces_pdfs_with_generated_numbers(finished):
    for doc in ("paper", "slides"):
        pdf = report_dir(finished, TINY) / f"{doc}.pdf"
        assert pdf.stat().st_size > 10_000
        pages = int(re.search(r"Pages:\s+(\d+)", subprocess.run(["pdfinfo", pdf], capture_output=True, text=True).stdout).group(1))
        assert pages >= (3 if doc == "paper" else 2)
    text = subprocess.run(["pdftotext", "-layout", report_dir(finished, TINY) / "paper.pdf", "-"], capture_output=True, text=True).stdout
    flat = " ".join(text.split())
    # the figure caption, with the experiment's special characters printed as themselves
    assert "Final train and test error rate against width for Wide nets & 50% of #labels" in flat
    # a number that the analysis produced, as the text prints it (3 significant digits)
    summary = json.loads((finished / "results/tables/wide_nets_&_50%/summary.json").read_text())
    best = f"{summary['best_test_error']:.3g}"
    assert best in flat
    assert "Tiny test plan: 100% of {special} chars & more_underscores" in flat


@needs_tex
def test_results_are_tidy_tables_with_provenance(finished):
    import pandas as pd

    tables = finished / "results" / "tables" / "wide_nets_&_50%"
    metrics = pd.read_parquet(tables / "metrics.parquet")
    runs = pd.read_parquet(tables / "runs.parquet")
    assert list(metrics.columns) == ["run_id", "epoch", "split", "metric", "value"]
    assert set(metrics["split"]) == {"train", "test"}
    assert len(runs) == 4 and set(runs["model.width"]) == {4, 16}
    assert set(metrics["run_id"]) == set(runs["run_id"])
    provenance = [json.loads(p.read_text()) for p in (finished / "results/runs/wide_nets_&_50%").rglob("provenance.json")]
    assert len(provenance) == 2
    assert all(p["device"] == "cpu" and p["wall_time_s"] > 0 and "torch" in p for p in provenance)
    for ext in ("pdf", "png"):
        assert (finished / "results" / "figures" / "wide_nets_&_50%" / f"error_vs_x.{ext}").exists()


@needs_tex
def test_second_run_has_nothing_to_do(finished):
    result = snakemake(finished, "--configfile", TINY, "-n")
    assert result.returncode == 0
    assert jobs_to_run(result) == {}, result.stdout[-3000:]
    assert "Nothing to be done" in result.stdout + result.stderr


def _variant(finished: Path, name: str, change) -> str:
    config = yaml.safe_load((finished / "config" / "tiny.yaml").read_text())
    change(config)
    path = finished / "config" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path.relative_to(finished))


@needs_tex
def test_plot_option_reruns_only_figures_and_report(finished):
    cfg = _variant(finished, "plot_change", lambda c: c.setdefault("plot", {}).update(palette="deep"))
    jobs = jobs_to_run(snakemake(finished, "--configfile", cfg, "-n"))
    assert set(jobs) == {"figures", "report_pieces", "compile_document", "html_report_pieces", "all"}, jobs


@needs_tex
def test_sweep_change_retrains_only_the_touched_group(finished):
    def widen(c):
        c["experiments"]["wide_nets_&_50%"]["sweep"]["model.width"] = [4, 32]

    jobs = jobs_to_run(snakemake(finished, "--configfile", _variant(finished, "sweep_change", widen), "-n"))
    assert jobs.get("train") == 1 and "data" not in jobs, jobs


def test_typo_in_a_key_fails_at_once_with_one_line(tmp_path):
    work = copy_project(tmp_path)
    config = yaml.safe_load((work / "config" / "tiny.yaml").read_text())
    config["experiments"]["wide_nets_&_50%"]["model"]["widht"] = 8
    (work / "config" / "typo.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(work, "--configfile", "config/typo.yaml", timeout=120)
    assert result.returncode != 0
    errors = [ln for ln in result.stderr.splitlines() if "mathdl" in ln]
    assert len(errors) == 1
    assert errors[0].startswith(
        "mathdl: invalid config: experiments.wide_nets_&_50%.model: unknown key 'widht' (did you mean 'width'?)"
    )
    assert "Traceback" not in result.stderr + result.stdout
    assert not (work / "results").exists()


def test_lint_is_clean():
    result = snakemake(ROOT, "--lint", "--configfile", "config/tiny.yaml", timeout=120)
    assert result.returncode == 0
    assert "Lints for" not in result.stdout + result.stderr, result.stdout[-3000:]


def test_workflow_is_snakefmt_formatted():
    result = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "workflow"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_a_killed_run_resumes_and_keeps_finished_groups(tmp_path):
    import os
    import signal
    import time

    work = copy_project(tmp_path)
    plan = {
        "device": "cpu",
        "experiments": {
            "resume": {
                "study": "sweep",
                "seeds": [0],
                "task": {"input_dim": 4, "n_train": 64, "n_test": 128},
                "model": {"width": 8},
                "train": {"batch_size": 16, "eval_points": 4},
                "sweep": {"train.epochs": [5, 20000]},  # a fast group and a slow one
            }
        },
    }
    (work / "config" / "resume.yaml").write_text(yaml.safe_dump(plan))
    target = "results/tables/resume/summary.json"
    cmd = [sys.executable, "-m", "snakemake", target, "--cores", "2", "--configfile", "config/resume.yaml"]
    log = (work / "snakemake.out").open("w")
    proc = subprocess.Popen(cmd, cwd=work, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    runs = work / "results" / "runs" / "resume"
    try:
        deadline = time.monotonic() + 120
        # finished as far as Snakemake knows (it has recorded the job), not merely written
        while time.monotonic() < deadline and "(Rule: train)" not in (work / "snakemake.out").read_text():
            time.sleep(0.2)
        finished = list(runs.glob("*/provenance.json"))
        assert len(finished) == 1, "the fast group did not finish in time"
        os.killpg(proc.pid, signal.SIGKILL)  # no clean-up at all, as in a power cut
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    fast_group = finished[0].parent
    stamps = {p.name: p.stat().st_mtime_ns for p in fast_group.iterdir()}
    # A killed Snakemake leaves its lock; Snakemake itself says to unlock, as the README does.
    assert snakemake(work, "--unlock", "--configfile", "config/resume.yaml", timeout=120).returncode == 0
    dry = snakemake(work, target, "-n", "--configfile", "config/resume.yaml", timeout=120)
    assert jobs_to_run(dry).get("train") == 1, dry.stdout[-3000:]
    result = snakemake(work, target, "--configfile", "config/resume.yaml", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {p.name: p.stat().st_mtime_ns for p in fast_group.iterdir()} == stamps
    assert not list(runs.rglob("*.tmp"))  # no half-written file was left behind
