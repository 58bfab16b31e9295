"""Studies: what an experiment computes, analyses, draws and writes. One folder each.

A study provides ``defaults`` (merged under the experiment's config), ``analyze(tables,
experiment) -> summary``, ``figures(tables, summary, experiment, plot, outdir) -> names``
and its words: ``templates/section.tex`` and ``templates/slides.tex`` beside its code,
rendered from the summary (see :mod:`mathdl.templating`), with an optional
``context(experiment, summary) -> dict`` of values only the words need.

``SWEEPABLE`` (optional) lists the sweep keys a study's analysis can tell apart; the plan
refuses any other (an empty tuple: a study that computes its whole grid in one group).

``compute`` is ``None`` for studies that train networks with the engine. Studies that
compute in closed form or without networks give ``compute(group, data, device) ->
TrainResult`` (the same tidy tables as the engine), and usually ``params_schema``: a JSON
schema of their own parameters (``experiments.<name>.params``; sweepable as ``params.<key>``).
``networks(group) -> [mathdl.resources.Networks]`` (optional) lists the batches of networks a
group's job trains, one after another (a study that trains a grid of shapes inside one job, or
none: ``[]`` for a study that computes on the host); the cluster resources are sized from it
(memory: the largest batch; run time: the sum), and a job without networks asks for no GPU.
Without it a job trains the group's model once per run. ``MODEL_ARCHS`` (optional) lists
the ``model.arch`` values a study trains (default: mlp only; the plan refuses others). A compute trains on the device it is
given and reports the device it used; host-only computations check the request with
:func:`host_device`.
Adding a study is adding a folder ``studies/<name>/`` (a package: ``__init__.py`` with the
functions above, ``templates/`` with its words); it is found by its folder.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class Study:
    name: str
    defaults: Mapping[str, Any]
    analyze: Callable
    figures: Callable
    context: Callable | None = None  # (experiment, summary) -> extra values for its templates
    compute: Callable | None = None
    params_schema: Mapping[str, Any] = field(default_factory=lambda: dict(NO_PARAMS))
    sweepable: tuple[str, ...] | None = None  # the sweep keys it accepts; None: any
    networks: Callable | None = None  # group -> [resources.Networks] its job trains; None: the group's model
    model_archs: tuple[str, ...] = ("mlp",)  # the model.arch values it trains (MODEL_ARCHS)


# The parameters of a study without parameters of its own: none may be given.
NO_PARAMS: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": {}}


def _from_module(module) -> Study:
    """A study module's DEFAULTS, analyze, figures, and its context, compute, PARAMS_SCHEMA, SWEEPABLE and
    networks if any."""
    return Study(
        name=module.__name__.rsplit(".", 1)[1],
        defaults=module.DEFAULTS,
        analyze=module.analyze,
        figures=module.figures,
        context=getattr(module, "context", None),
        compute=getattr(module, "compute", None),
        params_schema=getattr(module, "PARAMS_SCHEMA", NO_PARAMS),
        sweepable=getattr(module, "SWEEPABLE", None),
        networks=getattr(module, "networks", None),
        model_archs=tuple(getattr(module, "MODEL_ARCHS", ("mlp",))),
    )


def _discover() -> dict[str, Study]:
    """Every sub-package of this folder is a study, named after its folder (sorted by name)."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg and not m.name.startswith("_"))
    return {name: _from_module(importlib.import_module(f"{__name__}.{name}")) for name in names}


STUDIES: dict[str, Study] = _discover()


def source_hash(name: str) -> str:
    """A short hash of a study's folder (code and templates) and the shared templates.

    The workflow passes it to the analysis, figure and report rules, so that changing a study's
    code or words reruns those (cheap) stages; training is rerun only by a changed config.
    """
    import hashlib
    from pathlib import Path

    digest = hashlib.sha256()
    folders = [Path(__file__).parent / name, Path(__file__).parent / "_templates"]
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in (".py", ".tex", ".yaml", ".json"):
                digest.update(path.relative_to(folder.parent).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def host_device(device: str) -> str:
    """The device of a computation that runs on the host (NumPy, closed forms): ``"cpu"``, after
    checking the request as the engine does, so that ``cuda`` asked where torch sees no CUDA device
    (or an unknown device) is an error here too, never a silent CPU run."""
    from mathdl.engine import resolve_device

    resolve_device(device)
    return "cpu"


def get_study(name: str) -> Study:
    try:
        return STUDIES[name]
    except KeyError:
        raise ValueError(f"unknown study {name!r}; valid: {', '.join(sorted(STUDIES))}") from None
