"""Shared fixtures: the project root and small plans."""

from __future__ import annotations

from pathlib import Path

import pytest

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
