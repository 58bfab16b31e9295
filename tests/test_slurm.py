"""The same workflow through a real Slurm cluster (scripts/local-slurm.sh start --fake-gpu).

Skipped when no cluster answers, unless MATHDL_REQUIRE_SLURM=1 (CI sets it): then a missing
cluster is a failure, never a silent skip; so is a cluster without the GPU that the GPU test
needs. Every Snakemake call runs under `timeout -k`.
"""

from __future__ import annotations

import json
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


def _missing(message: str) -> None:
    if os.environ.get("MATHDL_REQUIRE_SLURM") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module", autouse=True)
def cluster():
    if not _cluster_answers():
        _missing("no Slurm cluster answers; start the local one with: bash scripts/local-slurm.sh start --fake-gpu")


@pytest.fixture
def gpu_node():
    """The cluster's node advertises a GPU (a real one, or the fake of local-slurm.sh --fake-gpu)."""
    gres = subprocess.run(["sinfo", "-h", "-N", "-o", "%G"], capture_output=True, text=True, timeout=30).stdout
    if "gpu" not in gres:
        _missing(f"the Slurm node advertises no GPU (sinfo %G: {gres.strip()!r}); "
                 "restart the local cluster with: bash scripts/local-slurm.sh start --fake-gpu")


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


def _submissions(output: str) -> dict[str, list[str]]:
    """Slurm job ids of a Snakemake run by log folder (rule_data, group_train_train, ...), read
    from its "submitted with SLURM jobid N (log: .../slurm_logs/<folder>/...)" lines."""
    found: dict[str, list[str]] = {}
    for jobid, folder in re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*?/slurm_logs/([^/\s]+)/", output):
        found.setdefault(folder, []).append(jobid)
    return found


def _slurm_record(jobid: str) -> dict[str, str]:
    """Slurm's own record of a job (scontrol show job: it keeps a finished job for MinJobAge s)."""
    out = subprocess.run(["scontrol", "show", "job", "-d", "-o", jobid],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


def _minutes(limit: str) -> int:
    """A Slurm time limit ([days-]hours:minutes:seconds) in minutes."""
    days, _, hms = limit.rpartition("-")
    h, m, sec = (int(x) for x in hms.split(":"))
    return int(days or 0) * 24 * 60 + h * 60 + m + (sec > 0)


def test_a_device_auto_training_submission_asks_for_and_gets_one_gpu(tmp_path, gpu_node):
    import torch

    from mathdl.config import load_plan

    work = copy_project(tmp_path)
    plan = {
        "device": "auto",
        "experiments": {
            "gpu": {
                "study": "sweep",
                "seeds": [0, 1],
                "task": {"input_dim": 4, "n_train": 64, "n_test": 128},
                "model": {"width": 8},
                "train": {"batch_size": 16, "epochs": 5, "eval_points": 4},
                "sweep": {"model.width": [4, 16]},  # two groups, bundled into one submission
            }
        },
    }
    (work / "config" / "gpu.yaml").write_text(yaml.safe_dump(plan))
    groups = load_plan(work / "config" / "gpu.yaml").experiment("gpu").groups
    assert len(groups) == 2
    targets = [f"results/runs/gpu/{g.group_id}/provenance.json" for g in groups]
    result = snakemake(work, *targets, *SLURM, "--configfile", "config/gpu.yaml", timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]

    jobs = _submissions(output)
    assert set(jobs) == {"rule_data", "group_train_train"}, jobs
    (train_job,) = jobs["group_train_train"]  # both training jobs in one submission
    train = _slurm_record(train_job)
    assert train["JobState"] == "COMPLETED", train
    # Asked for one GPU (never one per bundled job: the node has one) and was allocated it.
    assert train["TresPerJob"] == "gres:gpu:1", train
    assert train["JOB_GRES"] == "gpu:1", train
    # The bundled jobs run one after another: the submission asks for what one of them needs
    # and the sum of their run times (the resources Snakemake printed for each job).
    asked = [dict(re.findall(r"(\w+)=([^,\s]+)", line))
             for line in re.findall(r"rule train:.*?\n\s*resources: ([^\n]*)", output, flags=re.S)]
    assert len(asked) == 2 and all(a["gpu"] == "1" for a in asked), asked
    assert _minutes(train["TimeLimit"]) == sum(int(a["runtime"]) for a in asked), (train["TimeLimit"], asked)
    assert train["MinMemoryNode"] == f"{max(int(a['mem_mb']) for a in asked)}M", (train["MinMemoryNode"], asked)
    # The data job asks for no GPU.
    (data_job,) = jobs["rule_data"]
    assert "gpu" not in _slurm_record(data_job).get("TresPerJob", ""), _slurm_record(data_job)

    # Each run records the device it really trained on: the GPU's allocation does not make
    # torch see one (here /dev/null stands for it), so device auto fell back to the CPU.
    really = "cuda" if torch.cuda.is_available() else "cpu"
    for g in groups:
        run_dir = work / "results" / "runs" / "gpu" / g.group_id
        assert json.loads((run_dir / "provenance.json").read_text())["device"] == really
        assert set(pd.read_parquet(run_dir / "runs.parquet")["device"]) == {really}
        log = (work / "results" / "logs" / "train" / "gpu" / f"{g.group_id}.log").read_text()
        assert f"on {really}" in log, log
