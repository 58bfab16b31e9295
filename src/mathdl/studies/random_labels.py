"""Placeholder while the random_labels study is being written (issue 5); replaced as a whole."""

from __future__ import annotations

from typing import Any

DEFAULTS: dict[str, Any] = {"task": {"name": "digits"}}


def analyze(tables, experiment) -> dict:
    raise NotImplementedError("study random_labels is being written")


def figures(tables, summary, experiment, plot, outdir) -> list[str]:
    raise NotImplementedError("study random_labels is being written")


def report(experiment, summary, figure_dir: str, prefix: str):
    raise NotImplementedError("study random_labels is being written")
