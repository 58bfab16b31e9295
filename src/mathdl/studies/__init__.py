"""Studies: what an experiment computes, analyses, draws and writes. One module each.

A study provides ``defaults`` (merged under the experiment's config), ``analyze(tables,
experiment) -> summary``, ``figures(tables, summary, experiment, plot, outdir) -> names``
and ``report(experiment, summary, figure_dir, macro_prefix) -> ReportPiece``.

``compute`` is ``None`` for studies that train networks with the engine. Studies that
compute in closed form or without networks give ``compute(group, data, device) ->
TrainResult`` (the same tidy tables as the engine), and usually ``params_schema``: a JSON
schema of their own parameters (``experiments.<name>.params``; sweepable as ``params.<key>``).
Adding a study is adding a module and a line in ``STUDIES`` (and its name in the schema).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from mathdl.studies import (
    approximation,
    curse,
    depth_separation,
    lazy_training,
    optimizers,
    overfitting,
    representation,
    sgd_linear,
    sweep,
)


@dataclass(frozen=True)
class Study:
    name: str
    defaults: Mapping[str, Any]
    analyze: Callable
    figures: Callable
    report: Callable
    compute: Callable | None = None
    params_schema: Mapping[str, Any] = field(default_factory=lambda: dict(NO_PARAMS))


# The parameters of a study without parameters of its own: none may be given.
NO_PARAMS: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": {}}


STUDIES: dict[str, Study] = {
    "sweep": Study("sweep", sweep.DEFAULTS, sweep.analyze, sweep.figures, sweep.report),
    "optimizers": Study(
        "optimizers", optimizers.DEFAULTS, optimizers.analyze, optimizers.figures, optimizers.report,
        optimizers.compute, optimizers.PARAMS_SCHEMA,
    ),
    "sgd_linear": Study(
        "sgd_linear", sgd_linear.DEFAULTS, sgd_linear.analyze, sgd_linear.figures, sgd_linear.report,
        sgd_linear.compute, sgd_linear.PARAMS_SCHEMA,
    ),
    "overfitting": Study(
        "overfitting", overfitting.DEFAULTS, overfitting.analyze, overfitting.figures, overfitting.report,
        overfitting.compute, overfitting.PARAMS_SCHEMA,
    ),
    "curse": Study("curse", curse.DEFAULTS, curse.analyze, curse.figures, curse.report, curse.compute, curse.PARAMS_SCHEMA),
    "approximation": Study(
        "approximation", approximation.DEFAULTS, approximation.analyze, approximation.figures,
        approximation.report, approximation.compute, approximation.PARAMS_SCHEMA,
    ),
    "depth_separation": Study(
        "depth_separation", depth_separation.DEFAULTS, depth_separation.analyze, depth_separation.figures,
        depth_separation.report, depth_separation.compute, depth_separation.PARAMS_SCHEMA,
    ),
    "lazy_training": Study(
        "lazy_training", lazy_training.DEFAULTS, lazy_training.analyze, lazy_training.figures,
        lazy_training.report, lazy_training.compute, lazy_training.PARAMS_SCHEMA,
    ),
    "representation": Study(
        "representation", representation.DEFAULTS, representation.analyze, representation.figures,
        representation.report, representation.compute, representation.PARAMS_SCHEMA,
    ),
}


def get_study(name: str) -> Study:
    try:
        return STUDIES[name]
    except KeyError:
        raise ValueError(f"unknown study {name!r}; valid: {', '.join(sorted(STUDIES))}") from None
