"""Studies: what an experiment computes, analyses, draws and writes. One module each.

A study provides ``defaults`` (merged under the experiment's config), ``analyze(tables,
experiment) -> summary``, ``figures(tables, summary, experiment, plot, outdir) -> names``
and ``report(experiment, summary, figures, macro_prefix) -> ReportPiece``. ``compute`` is
``None`` for studies that train networks with the engine; closed-form studies give their own.
Adding a study is adding a module and a line in ``STUDIES`` (and its name in the schema).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from mathdl.studies import sweep


@dataclass(frozen=True)
class Study:
    name: str
    defaults: Mapping[str, Any]
    analyze: Callable
    figures: Callable
    report: Callable
    compute: Callable | None = None


STUDIES: dict[str, Study] = {
    "sweep": Study("sweep", sweep.DEFAULTS, sweep.analyze, sweep.figures, sweep.report),
}


def get_study(name: str) -> Study:
    try:
        return STUDIES[name]
    except KeyError:
        raise ValueError(f"unknown study {name!r}; valid: {', '.join(sorted(STUDIES))}") from None
