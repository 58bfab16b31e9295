"""Shared fixtures (the project root, small plans, the figures a study saves); one thread per test
process; the Snakemake tests kept out of pytest-xdist's workers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from threadpoolctl import threadpool_limits

# One thread: the tests train tiny networks, for which a second thread only adds overhead
# (50-100x slower on a busy 2-core machine). Workflow jobs set their own threads.
torch.set_num_threads(1)
# NumPy's BLAS too: OpenBLAS starts a thread per core. Beside two busy processes a closed-form
# study test ran 4x slower on two threads than on one, and 20x under `pytest -n 2`.
threadpool_limits(limits=1, user_api="blas")

ROOT = Path(__file__).resolve().parents[1]


@pytest.hookimpl(tryfirst=True)  # before the fixtures: no Snakemake run starts
def pytest_runtest_setup(item):
    """pytest-xdist (`-n 2`) runs the fast suite, never the Snakemake tests: each of those runs
    Snakemake on several cores, and they share the session's finished plans (tiny, smoke), which
    every worker would build again. Keeping them on one worker needs `--dist loadgroup`, whose
    groups pytest 9.2 silently ignores (pytest-dev/pytest-xdist#1386). So under `-n` they fail,
    saying how to run them."""
    if hasattr(item.config, "workerinput") and (item.get_closest_marker("workflow") or item.get_closest_marker("slurm")):
        pytest.fail('the workflow and Slurm tests run without -n: pytest -m "workflow or slurm" runs them, and '
                    'pytest -n 2 -m "not workflow and not slurm" the rest in parallel', pytrace=False)


# A group's own torch.nn.Module file (model.arch module): one that works, one whose outputs have
# the wrong size, a class that is not a module, one whose constructor fails.
OWN_NETS = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, hidden=4):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def forward(self, x):
        return self.body(x)


class WrongOut(nn.Module):
    def forward(self, x):
        return x.flatten(1)


class NotAModule:
    pass


class Fails(nn.Module):
    def __init__(self):
        raise RuntimeError("no")
'''


@pytest.fixture
def own_module(tmp_path, monkeypatch):
    """The name of an importable module ``own_nets`` holding OWN_NETS's classes (forgotten after the test)."""
    import sys

    (tmp_path / "own_nets.py").write_text(OWN_NETS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "own_nets"
    sys.modules.pop("own_nets", None)


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def tiny_config() -> dict:
    """A small valid plan as a mapping (each test gets its own copy)."""
    return {
        "device": "cpu",
        "experiments": {
            "exp": {
                "study": "sweep",
                "seeds": [0, 1],
                "task": {"input_dim": 3, "n_train": 32, "n_test": 64},
                "train": {"epochs": 3, "batch_size": 8},
                "sweep": {"model.width": [2, 4], "train.lr": [0.1, 0.01]},
            }
        },
    }


@pytest.fixture(scope="session")
def finished_tiny(tmp_path_factory) -> Path:
    """The tiny plan run once, locally, to the PDFs (shared by the workflow and Slurm tests)."""
    import shutil

    from helpers import TINY, copy_project, snakemake

    if shutil.which("latexmk") is None:
        pytest.skip("needs latexmk")
    work = copy_project(tmp_path_factory.mktemp("local"))
    result = snakemake(work, "--configfile", TINY)
    assert result.returncode == 0, result.stderr[-4000:]
    return work


@pytest.fixture(scope="session")
def finished_smoke(tmp_path_factory) -> Path:
    """Every study (config/smoke.yaml) run once, locally, to the PDFs (shared by the all-studies tests)."""
    import shutil

    from helpers import SMOKE, copy_project, snakemake

    if shutil.which("latexmk") is None:
        pytest.skip("needs latexmk")
    work = copy_project(tmp_path_factory.mktemp("smoke"))
    # The time limit only stops a hung run; on a shared 2-core machine the run takes minutes.
    result = snakemake(work, "--configfile", SMOKE, timeout=1800)
    assert result.returncode == 0, result.stderr[-4000:]
    return work


def _keeping(figs: dict):
    """plots.save that also keeps each figure in ``figs``, by name."""
    from mathdl import plots

    save = plots.save

    def keep(fig, outdir, name, plot):
        figs[name] = fig
        return save(fig, outdir, name, plot)

    return keep


@pytest.fixture
def drawn(monkeypatch):
    """The figures the study saves, by name: still inspectable after plots.save has closed them."""
    from mathdl import plots

    figs = {}
    monkeypatch.setattr(plots, "save", _keeping(figs))
    return figs


def draw_figures(figures, *args) -> tuple[list[str], dict]:
    """A study's ``figures(*args)``: the names it returns and the figures it saved, by name. For a
    module-scoped fixture, so that the tests reading one set of figures draw and save it once."""
    from mathdl import plots

    figs = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plots, "save", _keeping(figs))
        return figures(*args), figs
