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
import dataclasses
import difflib
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import yaml

# Training hyperparameters that may differ between the runs of one group: the engine
# holds them as tensors of shape (M, 1, 1). Every other key defines the group's shape.
PER_RUN_TRAIN_KEYS = ("lr", "momentum", "beta2", "eps", "weight_decay", "l1", "dropout")


class ConfigError(ValueError):
    """A config that cannot run; the message is one line naming the key."""


# ----------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class ProjectConfig:
    title: str
    authors: tuple[str, ...]
    course: str
    date: str


@dataclass(frozen=True)
class PlotConfig:
    style: str
    context: str
    palette: str
    width: float
    height: float
    dpi: int
    confidence: float


@dataclass(frozen=True)
class TaskConfig:
    name: str  # teacher | digits | mnist | fashion_mnist | cifar10 | none
    path: str  # folder of a real data set's files ("" = data/<name>)
    standardize: bool  # real data: features to mean 0, sd 1 on the training split
    kind: str  # regression | classification
    input_dim: int
    n_classes: int  # classes, or outputs of a regression
    teacher_width: int
    n_train: int
    n_val: int
    n_test: int
    label_noise: float
    seed: int


@dataclass(frozen=True)
class ModelConfig:
    depth: int  # hidden layers (residual: blocks)
    width: int
    activation: str  # relu | logistic | tanh | softplus | identity | step (step: forward only)
    residual: bool  # blocks h <- h + s (W2 sigma(W1 h + b1) + b2) after a linear embedding
    residual_scale: float  # s, the scale of each residual branch
    init: str  # pytorch | uniform | he | glorot | ntk
    output_scale: float  # alpha: the network computes alpha * (last layer)


@dataclass(frozen=True)
class TrainConfig:
    loss: str  # mse | cross_entropy | hinge
    optimizer: str  # gd | sgd | momentum | nesterov | adagrad | adam
    lr: float
    momentum: float  # mu of momentum and nesterov; Adam's b1
    beta2: float  # Adam's b2
    eps: float  # AdaGrad's and Adam's epsilon
    weight_decay: float  # L2: adds weight_decay * theta to the gradient
    l1: float  # adds l1 * sign(theta) to the gradient
    dropout: float  # drop probability of every hidden unit while training
    lr_schedule: str  # constant | step | cosine, per epoch
    lr_step_epochs: int  # step: multiply lr by lr_gamma every this many epochs
    lr_gamma: float
    batch_size: int  # 0: full batch
    epochs: int
    eval_points: int
    early_stopping: bool  # select the epoch of best validation metric (never test)
    patience: int  # stop a run after this many epochs without improvement; 0: never stop
    selection_metric: str  # loss | error, on the validation split
    dtype: str  # float32 | float64


@dataclass(frozen=True)
class ExperimentPlot:
    x: str
    logx: bool
    logy: bool


@dataclass(frozen=True)
class RunSpec:
    """One network: the resolved parameters of one sweep point and one seed."""

    run_id: str
    seed: int
    point: tuple[tuple[str, Any], ...]  # the swept (key, value) pairs of this run
    task: TaskConfig
    model: ModelConfig
    train: TrainConfig
    params: Mapping[str, Any] = field(default_factory=dict)  # the study's own parameters


@dataclass(frozen=True)
class GroupSpec:
    """Runs that train together: same task, architecture and training loop."""

    group_id: str
    experiment: str
    study: str
    data_id: str
    runs: tuple[RunSpec, ...]

    @property
    def task(self) -> TaskConfig:
        return self.runs[0].task

    @property
    def model(self) -> ModelConfig:
        return self.runs[0].model

    @property
    def train(self) -> TrainConfig:
        return self.runs[0].train

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "GroupSpec":
        runs = tuple(
            RunSpec(
                run_id=r["run_id"],
                seed=r["seed"],
                point=tuple((k, v) for k, v in r["point"]),
                task=TaskConfig(**r["task"]),
                model=ModelConfig(**r["model"]),
                train=TrainConfig(**r["train"]),
                params=dict(r.get("params", {})),
            )
            for r in d["runs"]
        )
        return cls(d["group_id"], d["experiment"], d["study"], d["data_id"], runs)


@dataclass(frozen=True)
class Experiment:
    name: str
    study: str
    title: str
    description: str
    seeds: tuple[int, ...]
    task: TaskConfig
    model: ModelConfig
    train: TrainConfig
    params: Mapping[str, Any]  # the study's own parameters (see its PARAMS_SCHEMA)
    sweep: tuple[tuple[str, tuple], ...]  # (key, values) in config order
    plot: ExperimentPlot
    groups: tuple[GroupSpec, ...] = field(repr=False)

    @property
    def runs(self) -> tuple[RunSpec, ...]:
        return tuple(r for g in self.groups for r in g.runs)

    def group(self, group_id: str) -> GroupSpec:
        for g in self.groups:
            if g.group_id == group_id:
                return g
        raise KeyError(f"experiment {self.name!r} has no group {group_id!r}")

    def tasks(self) -> dict[str, TaskConfig]:
        """The distinct data sets of this experiment, by data id."""
        return {g.data_id: g.task for g in self.groups}


@dataclass(frozen=True)
class Plan:
    project: ProjectConfig
    device: str
    threads: int
    gpus_for_auto: bool
    plot: PlotConfig
    experiments: tuple[Experiment, ...]
    resolved: Mapping = field(repr=False, compare=False)  # the validated config, defaults filled

    def experiment(self, name: str) -> Experiment:
        for e in self.experiments:
            if e.name == name:
                return e
        raise KeyError(f"no experiment {name!r}; the plan has {[e.name for e in self.experiments]}")


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


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def stable_hash(obj: Any, length: int = 10) -> str:
    """A short hash of the canonical JSON of ``obj``: the same parameters, the same id."""
    return hashlib.sha256(_canonical(obj).encode()).hexdigest()[:length]


_SECTIONS = {"task": TaskConfig, "model": ModelConfig, "train": TrainConfig}


def _build_plan(raw: dict, schema: dict) -> Plan:
    experiments = tuple(_build_experiment(name, exp) for name, exp in raw["experiments"].items())
    return Plan(
        project=ProjectConfig(**{**raw["project"], "authors": tuple(raw["project"]["authors"])}),
        device=raw["device"],
        threads=raw["threads"],
        gpus_for_auto=raw["gpus_for_auto"],
        plot=PlotConfig(**raw["plot"]),
        experiments=experiments,
        resolved=raw,
    )


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
