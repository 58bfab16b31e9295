"""The same workflow through a real Slurm cluster (scripts/local-slurm.sh start).

Skipped when no cluster answers, unless MATHDL_REQUIRE_SLURM=1 (CI sets it): then a missing
cluster is a failure, never a silent skip. Every Snakemake call runs under `timeout -k`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import TINY, TINY_EXPERIMENT, copy_project, jobs_to_run, report_dir, snakemake

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

# The project's Slurm profile, with status checks started early so that the tests are quick.
SLURM = ["--profile", "workflow/profiles/slurm", "--slurm-init-seconds-before-status-checks", "2", "--latency-wait", "10"]


def _cluster_answers() -> bool:
    if shutil.which("scontrol") is None:
        return False
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    idle = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30)
    return "UP" in ping.stdout and any(s in idle.stdout for s in ("idle", "mix", "alloc"))


@pytest.fixture(scope="module", autouse=True)
def cluster():
    if not _cluster_answers():
        message = "no Slurm cluster answers; start the local one with: bash scripts/local-slurm.sh start"
        if os.environ.get("MATHDL_REQUIRE_SLURM") == "1":
            pytest.fail(message)
        pytest.skip(message)


def _sorted(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return df.sort_values(keys).reset_index(drop=True)


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="needs latexmk")
def test_tiny_plan_through_slurm_matches_the_local_run(tmp_path, finished_tiny):
    work = copy_project(tmp_path)
    result = snakemake(work, *SLURM, "--configfile", TINY, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert (report_dir(work, TINY) / "paper.pdf").stat().st_size > 10_000
    assert (report_dir(work, TINY) / "slides.pdf").stat().st_size > 10_000
    # the data and training jobs really went through sbatch, training bundled in group jobs
    output = result.stdout + result.stderr
    assert "has been submitted with SLURM jobid" in output
    assert "group_train" in output
    tables = Path("results/tables") / TINY_EXPERIMENT
    keys = ["run_id", "epoch", "split", "metric"]
    pd.testing.assert_frame_equal(
        _sorted(pd.read_parquet(work / tables / "metrics.parquet"), keys),
        _sorted(pd.read_parquet(finished_tiny / tables / "metrics.parquet"), keys),
        check_exact=False, rtol=1e-6,
    )
    here, there = (pd.read_parquet(w / tables / "runs.parquet") for w in (work, finished_tiny))
    pd.testing.assert_frame_equal(_sorted(here, ["run_id"]), _sorted(there, ["run_id"]))


def test_a_failing_job_fails_the_run_and_names_its_log(tmp_path):
    from mathdl.config import load_plan

    work = copy_project(tmp_path)
    experiment = load_plan(work / TINY).experiment(TINY_EXPERIMENT)
    # A data file that is a complete archive but not a data set: the workflow's integrity check
    # (which rebuilds truncated or unreadable results) keeps it, and the training jobs fail.
    data = work / "results" / "data" / TINY_EXPERIMENT / f"{experiment.groups[0].data_id}.npz"
    data.parent.mkdir(parents=True)
    with open(data, "wb") as fh:
        np.savez(fh, not_a_data_set=np.zeros(3))
    summary = f"results/tables/{TINY_EXPERIMENT}/summary.json"
    # targets go first: --configfile takes every word after it
    result = snakemake(work, summary, *SLURM, "--configfile", TINY, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Error in rule train" in output
    # Snakemake names each failed job's log; the job that failed first wrote why into its own.
    named = set(re.findall(r"log: (results/logs/train/\S+\.log)", output))
    assert named, output[-3000:]
    reasons = [(work / log).read_text() for log in named if (work / log).exists()]
    assert any("KeyError" in text and "Dataset.load" in text for text in reasons), reasons


def _squeue() -> list[tuple[str, str, str]]:
    out = subprocess.run(["squeue", "-h", "-o", "%i|%T|%k"], capture_output=True, text=True, timeout=30).stdout
    return [tuple(line.split("|", 2)) for line in out.splitlines() if line.strip()]


def test_a_cancelled_job_is_resumed_without_recomputing_finished_work(tmp_path):
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
                # a fast group and a slow one (epochs shape the loop: two groups)
                "sweep": {"train.epochs": [5, 60000]},
            }
        },
    }
    (work / "config" / "resume.yaml").write_text(yaml.safe_dump(plan))
    target = "results/tables/resume/summary.json"
    # One group per submission here, so that the slow job can be cancelled on its own.
    args = [target, *SLURM, "--group-components", "train=1", "--configfile", "config/resume.yaml"]
    cmd = ["timeout", "-k", "10", "600", sys.executable, "-m", "snakemake", "--cores", "2", *args]
    proc = subprocess.Popen(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        fast = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and fast is None:
            # finished as far as Snakemake knows, not merely written
            trained = any("Finished jobid" in ln and "train" in ln for ln in list(lines))
            running = [j for j in _squeue() if j[1] == "RUNNING" and "train" in j[2]]
            done = list((work / "results" / "runs" / "resume").glob("*/provenance.json"))
            if trained and running and done:
                fast = done[0]
                subprocess.run(["scancel", running[0][0]], check=True, timeout=30)
            time.sleep(1)
        assert fast is not None, "never saw the fast group finished while the slow one ran:\n" + "".join(lines)[-3000:]
        proc.wait(timeout=300)
        reader.join(timeout=30)
        output = "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, output[-3000:]
    finished_at = fast.stat().st_mtime_ns
    # Resume: the finished group is kept; only the cancelled one trains again.
    dry = snakemake(work, target, "-n", "--configfile", "config/resume.yaml", timeout=120)
    assert "train" in dry.stdout
    assert jobs_to_run(dry).get("train") == 1, dry.stdout[-3000:]
    result = snakemake(work, target, *SLURM, "--configfile", "config/resume.yaml", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert fast.stat().st_mtime_ns == finished_at
    assert (work / target).exists()
