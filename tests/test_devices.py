"""Every study computes on the device the plan asks for and records the one it used.

Each study's first groups of the smoke plan (config/smoke.yaml, tiny sizes) go through the train
stage (``pipeline.train_group``: the study's compute, or the engine) with a device request; the
provenance and the runs table must name the device asked for. A study that trains no network
(``Study.networks(group) == []``) computes on the host and records the CPU whatever the request,
after checking the request like the engine: ``cuda`` where torch sees no CUDA device is an error,
never a silent CPU run.
"""

from __future__ import annotations

import pytest
import torch

from mathdl import io, pipeline, resources
from mathdl.config import load_plan
from mathdl.studies import STUDIES, get_study

from helpers import SMOKE


def _groups() -> dict[str, list]:
    """Per study, one group of each kind it has in the smoke plan (with and without networks)."""
    plan = load_plan(SMOKE)
    out: dict[str, list] = {}
    for experiment in plan.experiments:
        kinds = {}
        for group in experiment.groups:
            kinds.setdefault(bool(resources.networks(group)), group)
        out[experiment.study] = list(kinds.values())
    return out


GROUPS = _groups()
CASES = [pytest.param(g, id=f"{study}-{'networks' if resources.networks(g) else 'host'}")
         for study, groups in GROUPS.items() for g in groups]


def test_the_smoke_plan_holds_every_study():
    assert set(GROUPS) == set(STUDIES)


def _train(group, device: str, tmp_path) -> tuple[str, set[str]]:
    """The train stage on ``device``: the device in the provenance and in the runs table."""
    data = tmp_path / "data.npz"
    pipeline.make_data(dict(vars(group.task)), data)
    out = {name: tmp_path / name for name in ("metrics.parquet", "runs.parquet", "provenance.json")}
    pipeline.train_group(group.to_dict(), data, out["metrics.parquet"], out["runs.parquet"], out["provenance.json"],
                         device=device, threads=1)
    return io.read_json(out["provenance.json"])["device"], set(io.read_table(out["runs.parquet"])["device"])


def _expected(group, device: str) -> str:
    """The device a group must report: the one asked for (auto resolved) where it trains networks."""
    if not resources.networks(group):
        return "cpu"
    return "cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu"


@pytest.mark.parametrize("group", CASES)
def test_cpu_asked_is_cpu_recorded(group, tmp_path):
    device, in_runs = _train(group, "cpu", tmp_path)
    assert device == "cpu" and in_runs == {"cpu"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where torch sees no CUDA device")
@pytest.mark.parametrize("group", CASES)
def test_cuda_asked_without_cuda_is_an_error(group, tmp_path):
    from mathdl.engine import train
    from mathdl.tasks import make_dataset

    compute = get_study(group.study).compute or train
    with pytest.raises(RuntimeError, match="device: cuda was asked for"):
        compute(group, make_dataset(group.task), device="cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="auto means cuda where there is one")
def test_auto_without_cuda_is_the_cpu(tmp_path):
    group = next(g for g in GROUPS["approximation"] if resources.networks(g))
    assert _train(group, "auto", tmp_path) == ("cpu", {"cpu"})


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("device", ["cuda", "auto"])
@pytest.mark.parametrize("group", CASES)
def test_cuda_asked_is_cuda_recorded(group, device, tmp_path):
    expected = _expected(group, device)
    assert _train(group, device, tmp_path) == (expected, {expected})
