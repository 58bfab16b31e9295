"""The experiment plan: load a config, validate it, expand its sweeps into runs and groups.

The config is a nested mapping (YAML). It is checked against ``config.schema.yaml``
(defaults filled in), each experiment on top of its study's defaults, and turned into
frozen dataclasses. Any problem raises :class:`ConfigError` with one line that names the
key and what is wrong.

A *run* is one network: one point of an experiment's sweep and one seed. A *group* is the
set of runs of one experiment that share everything but their seed and their per-run
hyperparameters (``PER_RUN_TRAIN_KEYS``): they train together as one batched ensemble.
"""

from __future__ import annotations

import copy
import difflib
import itertools
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Mapping

import jsonschema
import yaml

from mathdl.spec import (  # noqa: F401  (re-exported: the plan's types)
    PER_RUN_TRAIN_KEYS,
    ConfigError,
    Experiment,
    ExperimentPlot,
    GroupSpec,
    ModelConfig,
    Plan,
    PlotConfig,
    ProjectConfig,
    ReportConfig,
    RunSpec,
    TaskConfig,
    TrainConfig,
    _canonical,
    stable_hash,
)


# ----------------------------------------------------------------------------- loading


def schema_path() -> Path:
    return Path(str(resources.files("mathdl") / "config.schema.yaml"))


@lru_cache(maxsize=1)
def load_schema() -> dict:
    return yaml.safe_load(schema_path().read_text())


def read_config_file(path: str | Path) -> dict:
    """Read a YAML config; a missing or unparsable file is a ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{path}{where}: not valid YAML ({problem})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping of keys to values")
    return data


def load_plan(config: Mapping | str | Path) -> Plan:
    """Validate a config (mapping or YAML path) and expand it into a Plan."""
    raw = read_config_file(config) if isinstance(config, (str, Path)) else copy.deepcopy(dict(config))
    schema = load_schema()
    _merge_study_defaults(raw, schema)
    _validate(raw, schema)
    plan = _build_plan(raw, schema)
    _check_data(plan)
    return plan


def _check_data(plan: "Plan") -> None:
    """Real data sets: their files must be in place and hold enough images for the splits."""
    from mathdl.tasks.real import check_task

    for exp in plan.experiments:
        for task in exp.tasks().values():
            check_task(task, f"experiments.{exp.name}")


def _merge_study_defaults(raw: dict, schema: dict) -> None:
    """Put each experiment on top of its study's defaults (the user's sweep replaces the study's)."""
    from mathdl.studies import STUDIES

    experiments = raw.get("experiments")
    if not isinstance(experiments, dict):
        return  # the schema check reports it
    for name, exp in experiments.items():
        if not isinstance(exp, dict):
            continue
        study = exp.get("study")
        if study is None:
            raise ConfigError(f"experiments.{name}: missing key 'study' (one of {', '.join(sorted(STUDIES))})")
        if study not in STUDIES:
            raise ConfigError(
                f"experiments.{name}.study: unknown study {study!r} (valid: {', '.join(sorted(STUDIES))})"
            )
        experiments[name] = _deep_merge(STUDIES[study].defaults, exp)


def _deep_merge(base: Mapping, override: Mapping) -> dict:
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if key != "sweep" and isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _extend_with_defaults(validator_class):
    """A validator that fills in ``default`` values of missing properties while it validates."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, subschema in properties.items():
                if "default" in subschema and prop not in instance:
                    instance[prop] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_DefaultFillingValidator = _extend_with_defaults(jsonschema.Draft202012Validator)


def _key_path(parts) -> str:
    return ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in parts).replace(".[", "[") or "(top level)"


def _describe(error: jsonschema.ValidationError) -> str:
    """One line: where, and what is wrong, in the words a config author uses."""
    where = _key_path(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        hints = []
        for key in extra:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        return f"{where}: unknown key {', '.join(hints)}; valid keys: {', '.join(allowed)}"
    if error.validator == "enum":
        return f"{where}: {error.instance!r} is not one of {', '.join(map(repr, error.validator_value))}"
    if error.validator == "minItems" and error.validator_value == 1:
        return f"{where}: must not be empty"
    if error.validator == "minProperties" and error.validator_value == 1:
        return f"{where}: must hold at least one entry"
    if error.validator == "type":
        return f"{where}: {error.instance!r} is not of type {error.validator_value}"
    if error.validator == "pattern" and "propertyNames" in error.schema_path:
        return f"{where}: {error.instance!r} is not a valid name (it must match {error.validator_value})"
    return f"{where}: {error.message}"


def _first_error(validator, instance) -> jsonschema.ValidationError | None:
    errors = list(validator.iter_errors(instance))
    if not errors:
        return None
    # Deepest first: it is the most specific; ties in document order.
    return sorted(errors, key=lambda e: (-len(e.absolute_path), [str(p) for p in e.absolute_path]))[0]


def _validate(raw: dict, schema: dict) -> None:
    validator = _DefaultFillingValidator(schema)
    error = _first_error(validator, raw)
    if error is not None:
        raise ConfigError(_describe(error))
    # Each study checks its own parameters; sweep values must be valid values of their key.
    from mathdl.studies import STUDIES

    defs = schema["$defs"]
    _check_slugs(list(raw["experiments"]))
    for name, exp in raw["experiments"].items():
        params_schema = STUDIES[exp["study"]].params_schema
        error = _first_error(_DefaultFillingValidator(params_schema), exp["params"])
        if error is not None:
            where, what = _describe(error).split(": ", 1)
            where = "" if where == "(top level)" else "." + where
            raise ConfigError(f"experiments.{name}.params{where}: {what}")
        for key, values in exp["sweep"].items():
            section, sub = key.split(".", 1)
            props = params_schema["properties"] if section == "params" else defs[section]["properties"]
            if sub not in props:
                close = difflib.get_close_matches(sub, list(props), n=1)
                hint = f" (did you mean {section}.{close[0]}?)" if close else ""
                raise ConfigError(
                    f"experiments.{name}.sweep: {key!r} is not a key of {section}{hint}; "
                    f"valid: {', '.join(f'{section}.{p}' for p in props)}"
                )
            sub_validator = jsonschema.Draft202012Validator(props[sub])
            for i, value in enumerate(values):
                err = _first_error(sub_validator, value)
                if err is not None:
                    raise ConfigError(f"experiments.{name}.sweep.{key}[{i}]: {_describe(err).split(': ', 1)[1]}")
            if len(set(map(_canonical, values))) != len(values):
                raise ConfigError(f"experiments.{name}.sweep.{key}: values repeat")
        _check_sweepable(name, exp)
        x = exp["plot"]["x"]
        if x and x not in exp["sweep"]:
            raise ConfigError(
                f"experiments.{name}.plot.x: {x!r} is not a sweep key (sweep keys: {', '.join(exp['sweep']) or 'none'})"
            )


def _check_slugs(names: list[str]) -> None:
    """Two experiment names that LaTeX would read as one (a_b, a-b) would share figures and results."""
    import re

    seen: dict[str, str] = {}
    for name in names:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")
        if slug in seen:
            raise ConfigError(
                f"experiments: {seen[slug]!r} and {name!r} differ only in punctuation (both read as {slug!r} "
                f"in the report); rename one"
            )
        seen[slug] = name


def _check_sweepable(name: str, exp: dict) -> None:
    """A study that declares SWEEPABLE accepts only those sweep keys: its analysis could not tell
    runs apart by any other (they would be mixed into one curve)."""
    from mathdl.studies import STUDIES

    allowed = STUDIES[exp["study"]].sweepable
    extra = [key for key in exp["sweep"] if allowed is not None and key not in allowed]
    if extra:
        what = f"only {', '.join(allowed)}" if allowed else "nothing (it computes its grids from params)"
        raise ConfigError(
            f"experiments.{name}.sweep: study {exp['study']} sweeps {what}, not {', '.join(extra)}; "
            f"set a single value in the experiment, or run other values as separate experiments"
        )


# ----------------------------------------------------------------------------- expansion


_SECTIONS = {"task": TaskConfig, "model": ModelConfig, "train": TrainConfig}


def _build_plan(raw: dict, schema: dict) -> Plan:
    experiments = tuple(_build_experiment(name, exp) for name, exp in raw["experiments"].items())
    return Plan(
        project=ProjectConfig(**{**raw["project"], "authors": tuple(raw["project"]["authors"])}),
        device=raw["device"],
        threads=raw["threads"],
        gpus_for_auto=raw["gpus_for_auto"],
        plot=PlotConfig(**raw["plot"]),
        report=_build_report(raw["report"], [e.name for e in experiments]),
        experiments=experiments,
        resolved=raw,
    )


def _build_report(report: dict, names: list[str]) -> ReportConfig:
    """Which experiments the paper shows where: main defaults to every one not in the appendix."""
    for part in ("main", "appendix"):
        for i, name in enumerate(report[part]):
            if name not in names:
                raise ConfigError(f"report.{part}[{i}]: no experiment {name!r} in this plan (experiments: {', '.join(names)})")
        if len(set(report[part])) != len(report[part]):
            raise ConfigError(f"report.{part}: an experiment is listed twice")
    both = set(report["main"]) & set(report["appendix"])
    if both:
        raise ConfigError(f"report: {', '.join(sorted(both))} listed in both main and appendix")
    main = report["main"] or [n for n in names if n not in report["appendix"]]
    return ReportConfig(name=report["name"], main=tuple(main), appendix=tuple(report["appendix"]),
                        survey=report["survey"])


def _build_experiment(name: str, exp: dict) -> Experiment:
    sweep = tuple((k, tuple(v)) for k, v in exp["sweep"].items())
    keys = [k for k, _ in sweep]
    runs_by_group: dict[str, list[RunSpec]] = {}
    group_data: dict[str, str] = {}
    for values in itertools.product(*(v for _, v in sweep)):
        point = dict(zip(keys, values))
        sections = {s: dict(exp[s]) for s in _SECTIONS}
        params = dict(exp["params"])
        for key, value in point.items():
            section, sub = key.split(".", 1)
            (params if section == "params" else sections[section])[sub] = value
        task, model, train = (_SECTIONS[s](**sections[s]) for s in ("task", "model", "train"))
        shared_train = {k: v for k, v in sections["train"].items() if k not in PER_RUN_TRAIN_KEYS}
        data_id = stable_hash(sections["task"])
        shape = {"task": sections["task"], "model": sections["model"], "train": shared_train}
        if params:  # every study parameter shapes the group; omitted when empty (stable ids)
            shape["params"] = params
        group_id = stable_hash(shape)
        group_data[group_id] = data_id
        for seed in exp["seeds"]:
            identity = {**sections, "seed": seed, **({"params": params} if params else {})}
            runs_by_group.setdefault(group_id, []).append(
                RunSpec(stable_hash(identity), seed, tuple(point.items()), task, model, train, params)
            )
    groups = tuple(
        GroupSpec(gid, name, exp["study"], group_data[gid], tuple(runs)) for gid, runs in runs_by_group.items()
    )
    plot = dict(exp["plot"])
    if not plot["x"] and keys:
        plot["x"] = keys[0]
    return Experiment(
        name=name,
        study=exp["study"],
        title=exp["title"] or name,
        description=exp["description"],
        seeds=tuple(exp["seeds"]),
        task=TaskConfig(**exp["task"]),
        model=ModelConfig(**exp["model"]),
        train=TrainConfig(**exp["train"]),
        params=dict(exp["params"]),
        sweep=sweep,
        plot=ExperimentPlot(**plot),
        groups=groups,
    )
