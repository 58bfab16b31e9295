"""Helpers of the workflow tests: a private copy of the project, Snakemake under a time limit."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = "config/tiny.yaml"
TINY_EXPERIMENT = "wide_nets_&_50%"
SMOKE = "config/smoke.yaml"  # every study at tiny sizes


def report_dir(work: Path, plan: str) -> Path:
    """Where a run of ``plan`` in ``work`` puts its documents: paper.pdf, slides.pdf and generated/.

    The one place the workflow tests know this layout: results/report/<name>/, the name being
    the plan's report.name or else its file's stem (config/tiny.yaml -> tiny).
    """
    config = yaml.safe_load((work / plan).read_text()) or {}
    name = (config.get("report") or {}).get("name") or Path(plan).stem
    return work / "results" / "report" / name


def copy_project(dest: Path) -> Path:
    """workflow/, report/, config/ and environment.yml in ``dest``: runs never touch the repository."""
    for folder in ("workflow", "report", "config"):
        shutil.copytree(ROOT / folder, dest / folder, symlinks=True)
    shutil.copy(ROOT / "environment.yml", dest)  # rules name it as their conda environment
    # The schema is a link into the package; keep it resolvable from the copy.
    (dest / "src" / "mathdl").mkdir(parents=True)
    shutil.copy(ROOT / "src" / "mathdl" / "config.schema.yaml", dest / "src" / "mathdl")
    return dest


def snakemake(workdir: Path, *args: str, timeout: int = 600, cores: int = 2) -> subprocess.CompletedProcess:
    """Run Snakemake in ``workdir``; `timeout -k` makes sure a lost job can never hang the tests."""
    cmd = ["timeout", "-k", "10", str(timeout), sys.executable, "-m", "snakemake", "--cores", str(cores), *args]
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout + 30)


def jobs_to_run(result: subprocess.CompletedProcess) -> dict[str, int]:
    """The job counts of a dry run's 'Job stats' table."""
    counts: dict[str, int] = {}
    in_table = False
    for line in result.stdout.splitlines():
        if line.startswith("job "):
            in_table = True
            continue
        if in_table:
            m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
            if m and m.group(1) != "total":
                counts[m.group(1)] = int(m.group(2))
            elif line.strip() == "" and counts:
                break
    return counts


def words(experiment, summary, flat: bool = False) -> tuple[str, str]:
    """An experiment's rendered section and slides (with ``flat``, whitespace runs as one space)."""
    from mathdl.templating import render_experiment

    piece = render_experiment(experiment, summary)
    if flat:
        return " ".join(piece.section.split()), " ".join(piece.slides.split())
    return piece.section, piece.slides


def edited(summary: dict, **changes) -> dict:
    """A deep copy of a summary with top-level keys changed (an edge case for the words)."""
    import json

    out = json.loads(json.dumps(summary))
    out.update(changes)
    return out


def train_groups(groups, folder: Path, device: str = "cpu") -> list[list[Path]]:
    """Each group trained as the workflow's jobs train it: its data set made once per data id, its
    spec read back from JSON as the group file holds it, ``pipeline.train_group`` on the device.
    Returns per group its metrics, runs and provenance files."""
    import dataclasses
    import json

    from mathdl.pipeline import make_data, train_group

    outputs = []
    for group in groups:
        data = folder / f"{group.data_id}.npz"
        if not data.exists():
            make_data(dataclasses.asdict(group.task), data)
        paths = [folder / f"{group.group_id}.{n}" for n in ("metrics.parquet", "runs.parquet", "provenance.json")]
        train_group(json.loads(json.dumps(group.to_dict())), data, *paths, device=device)
        outputs.append(paths)
    return outputs
