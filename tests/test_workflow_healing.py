"""Nothing broken stays: after a result is truncated or deleted, the next run rebuilds exactly
what is needed and ends with the tables of a clean run (real Snakemake on the tiny plan)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from helpers import TINY, TINY_EXPERIMENT, report_dir, snakemake

pytestmark = [
    pytest.mark.workflow,
    pytest.mark.skipif(shutil.which("latexmk") is None, reason="needs latexmk"),
]


@pytest.fixture
def work(finished_tiny, tmp_path) -> Path:
    dest = tmp_path / "work"
    shutil.copytree(finished_tiny, dest, symlinks=True)
    return dest


def _tables(root: Path) -> dict[str, pd.DataFrame]:
    folder = root / "results" / "tables" / TINY_EXPERIMENT
    return {name: pd.read_parquet(folder / f"{name}.parquet").drop(columns=["device"], errors="ignore")
            for name in ("metrics", "runs")}


def test_damaged_and_deleted_results_are_rebuilt_to_the_clean_tables(work, finished_tiny):
    group = sorted((work / "results" / "runs" / TINY_EXPERIMENT).iterdir())[0]
    metrics = group / "metrics.parquet"
    metrics.write_bytes(metrics.read_bytes()[:100])  # a truncated group table
    figure = work / "results" / "figures" / TINY_EXPERIMENT / "error_vs_x.pdf"
    figure.unlink()  # a deleted figure
    summary = work / "results" / "tables" / "representation" / "summary.json"
    summary.unlink()  # a deleted summary
    data = next((work / "results" / "data" / "random_labels").glob("*.npz"))
    data.write_bytes(data.read_bytes()[:50])  # a truncated data set

    result = snakemake(work, "--configfile", TINY)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "removed a damaged result" in result.stderr
    assert figure.is_file() and summary.is_file()
    clean = _tables(finished_tiny)
    for name, table in _tables(work).items():
        pd.testing.assert_frame_equal(table, clean[name])
    assert (report_dir(work, TINY) / "paper.pdf").stat().st_size > 10_000
    again = snakemake(work, "--configfile", TINY, "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
