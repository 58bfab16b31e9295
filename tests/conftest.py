"""Shared fixtures: the project root and small plans."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

# One thread: the tests train tiny networks, for which a second thread only adds overhead
# (50-100x slower on a busy 2-core machine). Workflow jobs set their own threads.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]


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


@pytest.fixture
def drawn(monkeypatch):
    """The figures the study saves, by name: still inspectable after plots.save has closed them."""
    from mathdl import plots

    figs, save = {}, plots.save

    def keep(fig, outdir, name, plot):
        figs[name] = fig
        return save(fig, outdir, name, plot)

    monkeypatch.setattr(plots, "save", keep)
    return figs
