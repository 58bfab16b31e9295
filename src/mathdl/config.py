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
import re
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
    model_identity,
    stable_hash,
    train_identity,
)


# ----------------------------------------------------------------------------- loading


def schema_path() -> Path:
    return Path(str(resources.files("mathdl") / "config.schema.yaml"))


@lru_cache(maxsize=1)
def load_schema() -> dict:
    return yaml.safe_load(schema_path().read_text())


MAX_PLAN_BYTES = 1_000_000  # a plan is a page of YAML; anything near this is a mistake
MAX_ALIASES = 100  # YAML aliases (*name) per plan: enough to reuse sections, not for an alias bomb
MAX_NODES = 200_000  # values in the plan once aliases are expanded
MAX_NAME_LENGTH = 64
SINGLE_LINE = "^[^\\n\\r]*$"  # the schema's pattern for titles and names printed on the title page
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_&%+.,=-]*")


def _short(value, limit: int = 40) -> str:
    """A value for an error message: its repr, cut to a short prefix."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...'"


class _PlanLoader(yaml.SafeLoader):
    """YAML as a plan author means it: 1e-3 is a number, a duplicate key is an error, and
    aliases are limited (an 'alias bomb' would otherwise expand to gigabytes)."""

    aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.events.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise ConfigError(f"line {mark.line + 1}: more than {MAX_ALIASES} YAML aliases (*name); write the values out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):
                continue  # the plan's checks report a key that is not a name
            if key in seen:
                raise ConfigError(
                    f"line {key_node.start_mark.line + 1}: duplicate key {_short(key)} (first on line {seen[key] + 1}); "
                    f"a YAML mapping keeps only the last, so one of them would be silently ignored"
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 reads 1e-3 as a string (it wants 1.0e-3); a plan author means a number.
_PlanLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _count_nodes(obj, limit: int) -> int:
    """Values in a loaded plan, counting shared (aliased) ones each time; stops past ``limit``."""
    count, stack = 0, [obj]
    while stack and count <= limit:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def read_config_file(path: str | Path) -> dict:
    """Read a YAML plan; a missing, empty, binary, oversized or unparsable file is a ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    data = path.read_bytes()
    if len(data) > MAX_PLAN_BYTES:
        raise ConfigError(f"{path}: {len(data):,} bytes is not a plan (a plan is a page of YAML)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (a plan is YAML in UTF-8)") from None
    if "\x00" in text:
        raise ConfigError(f"{path}: not a text file (it holds NUL bytes)")
    try:
        loaded = yaml.load(text, Loader=_PlanLoader)
    except ConfigError as err:
        raise ConfigError(f"{path} {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{path}{where}: not valid YAML ({problem})") from None
    if loaded is None:
        raise ConfigError(f"{path}: the plan is empty; it needs at least an experiments section (see config/README.md)")
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the config must be a mapping of keys to values")
    if _count_nodes(loaded, MAX_NODES) > MAX_NODES:
        raise ConfigError(f"{path}: more than {MAX_NODES:,} values once its YAML aliases are expanded")
    return loaded


def _check_plain(raw, where: str = "") -> None:
    """Keys are strings and numbers are finite, everywhere in the plan (before the schema)."""
    import math

    if isinstance(raw, dict):
        for key, value in raw.items():
            if not isinstance(key, str):
                raise ConfigError(
                    f"{where or '(top level)'}: key {_short(key)} is not a name; quote it (\"{key}\") if it is meant as one"
                )
            _check_plain(value, f"{where}.{key}" if where else key)
    elif isinstance(raw, list):
        for i, value in enumerate(raw):
            _check_plain(value, f"{where}[{i}]")
    elif isinstance(raw, float) and not math.isfinite(raw):
        raise ConfigError(f"{where}: {raw} is not a finite number")


def _check_names(raw: dict) -> None:
    experiments = raw.get("experiments")
    if not isinstance(experiments, dict):
        return
    for name in experiments:
        if len(name) > MAX_NAME_LENGTH:
            raise ConfigError(f"experiments: the name {_short(name)} is longer than {MAX_NAME_LENGTH} characters")
        if not NAME_RE.fullmatch(name):
            raise ConfigError(
                f"experiments: {_short(name)} is not a valid name (letters, digits and _ & % + . , = -, "
                f"starting with a letter or digit, on one line)"
            )


def load_plan(config: Mapping | str | Path) -> Plan:
    """Validate a config (mapping or YAML path) and expand it into a Plan."""
    raw = read_config_file(config) if isinstance(config, (str, Path)) else copy.deepcopy(dict(config))
    _check_plain(raw)
    _check_names(raw)
    schema = load_schema()
    _merge_study_defaults(raw, schema)
    _validate(raw, schema)
    plan = _build_plan(raw, schema)
    _check_runs(plan)
    _check_data(plan)
    return plan


# seaborn's own palettes; any matplotlib colormap name (and its _r) is a palette too.
_SEABORN_PALETTES = {f"{n}{v}" for n in ("deep", "muted", "pastel", "bright", "dark", "colorblind") for v in ("", "6")}
_SEABORN_PALETTES |= {"husl", "hls"} | {f"{n}{r}" for n in ("rocket", "mako", "flare", "crest", "vlag", "icefire")
                                         for r in ("", "_r")}


def _check_palette(name: str, where: str) -> None:
    if name in _SEABORN_PALETTES or name.startswith(("ch:", "light:", "dark:", "blend:")):
        return
    from matplotlib import colormaps  # only for a name that is not one of seaborn's

    if name not in colormaps:
        close = difflib.get_close_matches(name, sorted(_SEABORN_PALETTES | set(colormaps)), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{where}: unknown palette {_short(name)}{hint}; use a seaborn palette (colorblind, deep, "
                          f"muted, ...) or a matplotlib colormap (viridis, rocket, ...)")


def _check_runs(plan: "Plan") -> None:
    """What no single key can say: combinations that cannot train, and jobs that cannot fit in memory."""
    from mathdl import resources

    _check_palette(plan.plot.palette, "plot.palette")
    limit_mb = plan.max_mem_mb or resources.machine_mem_mb()
    built: set = set()  # the group's own modules built so far (each once per plan load)
    for exp in plan.experiments:
        where = f"experiments.{exp.name}"
        for group in exp.groups:
            task, train = group.task, group.train
            point = dict(group.runs[0].point)
            at = f" (at sweep point {', '.join(f'{k}={v}' for k, v in point.items())})" if point else ""
            real = task.name not in ("teacher", "none")
            if task.name != "none" and task.kind == "classification":
                if task.label_noise > 1:
                    raise ConfigError(f"{where}.task.label_noise: {task.label_noise} is a fraction of the labels, at most 1{at}")
                if not real and task.n_classes < 2:
                    raise ConfigError(f"{where}.task.n_classes: a classification task needs at least 2 classes{at}")
            if task.name == "teacher" and task.kind == "regression" and train.loss != "mse":
                raise ConfigError(f"{where}.train.loss: {train.loss} needs a classification task; "
                                  f"task.kind is regression (use mse){at}")
            if train.early_stopping and task.n_val == 0 and task.name != "none":
                raise ConfigError(f"{where}.train.early_stopping: it selects on the validation split; set task.n_val > 0{at}")
            _check_architecture(exp.study, group, where, at, built)
            need = resources.min_mem_mb(group)
            if need > limit_mb:
                raise ConfigError(
                    f"{where}: one training job{at} needs at least {need:,} MB (parameters, gradients and data of "
                    f"{len(group.runs)} runs), more than the {limit_mb:,} MB available (max_mem_mb); "
                    f"make it smaller or set max_mem_mb to the cluster's memory per job"
                )


IMAGE_ARCHITECTURES = ("cnn", "resnet18", "module")  # model.arch values that train on images
# Model keys an image network does not read, with the one value it accepts (it is built with
# ReLU and PyTorch's initialization; its size is the width k, which a param_budget may choose).
IMAGE_FIXED_KEYS = {"depth": 1, "activation": "relu", "residual": False, "init": "pytorch", "output_scale": 1.0}


def _check_architecture(study: str, group: GroupSpec, where: str, at: str, built: set) -> None:
    """model.arch with its keys: a module and kwargs only with arch module, augmentation and the
    image architectures only on images and in studies that train them, an image network's unused
    MLP keys at their defaults, and the group's own module importable and buildable."""
    from mathdl.studies import STUDIES
    from mathdl.tasks import image_shape

    model, train, task = group.model, group.train, group.task
    arch = model.arch
    allowed = STUDIES[study].model_archs
    if arch not in allowed:
        others = [name for name, s in STUDIES.items() if arch in s.model_archs]
        raise ConfigError(f"{where}.model.arch: study {study} trains {' and '.join(allowed)} networks, not {arch} "
                          f"({arch} trains in {', '.join(others)}){at}")
    if arch != "module":
        for key, value in (("module", model.module), ("kwargs", model.kwargs)):
            if value:
                raise ConfigError(f"{where}.model.{key}: only for model.arch module (arch is {arch}){at}")
    if arch not in IMAGE_ARCHITECTURES:
        for key in ("augment_crop", "augment_flip"):
            if getattr(train, key):
                raise ConfigError(f"{where}.train.{key}: augmentation is for image networks (model.arch cnn, resnet18 "
                                  f"or module); a fully connected network trains on flat rows{at}")
        if train.mixed_precision:
            raise ConfigError(f"{where}.train.mixed_precision: bfloat16 autocast is for image networks (model.arch "
                              f"cnn, resnet18 or module); {arch} trains in its dtype ({train.dtype}){at}")
        return
    if train.mixed_precision and train.dtype != "float32":
        raise ConfigError(f"{where}.train.mixed_precision: it keeps float32 parameters under bfloat16 autocast; "
                          f"set train.dtype to float32, not {train.dtype}{at}")
    if image_shape(task) is None:
        raise ConfigError(f"{where}.model.arch: {arch} needs an image data set (task.name digits, mnist, "
                          f"fashion_mnist or cifar10), not {task.name}{at}")
    for key, value in IMAGE_FIXED_KEYS.items():
        if getattr(model, key) != value:
            raise ConfigError(f"{where}.model.{key}: {arch} does not use it (it is built as it is); leave it at "
                              f"{value!r}, not {getattr(model, key)!r}{at}")
    if arch == "module":
        if not model.module:
            raise ConfigError(f"{where}.model.module: arch module needs the class to train, as 'package.module:Class'{at}")
        key = (model.module, _canonical(model.kwargs), task.name, train.dropout)
        if key not in built:
            _build_own_module(group, where, at)
            built.add(key)


def _build_own_module(group: GroupSpec, where: str, at: str) -> None:
    """Import and build the group's own module once on one image (torch imported only here, and
    the caller's random state left as it was); any problem is one line naming the key."""
    import torch

    from mathdl import convnets
    from mathdl.tasks import image_shape, n_outputs

    net = convnets.Network("module", group.model.width, group.model.module, group.model.kwargs)
    try:
        with torch.random.fork_rng(devices=[]):
            convnets.build(net, image_shape(group.task), n_outputs(group.task), group.train.dropout)
    except ConfigError as err:
        message = str(err).replace("model.module.kwargs:", "model.kwargs:", 1)
        raise ConfigError(f"{where}.{message}{at}") from None


def _check_data(plan: "Plan") -> None:
    """Real data sets: their files must be in place and hold enough images for the splits."""
    from mathdl.tasks.real import check_task

    for exp in plan.experiments:
        for task in exp.tasks().values():
            check_task(task, f"experiments.{exp.name}")


def _merge_study_defaults(raw: dict, schema: dict) -> None:
    """Put each experiment on top of its study's defaults. The design is replaced as a whole: an
    experiment that gives any of sweep, zip and cases does not get the study's default sweep."""
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
        _check_width_and_budget(name, exp)
        defaults = STUDIES[study].defaults
        if any(part in exp for part in DESIGN_PARTS):
            defaults = {k: v for k, v in defaults.items() if k not in DESIGN_PARTS}
        experiments[name] = _deep_merge(defaults, exp)


def _check_width_and_budget(name: str, exp: dict) -> None:
    """A width the plan author wrote beside a budget would be silently replaced by the budget's."""
    model = exp.get("model")
    if isinstance(model, dict) and "width" in model and model.get("param_budget") not in (None, 0):
        raise ConfigError(f"experiments.{name}.model.width: not used when model.param_budget is set (the budget "
                          f"chooses the width); remove one of them")


def _deep_merge(base: Mapping, override: Mapping) -> dict:
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if key not in DESIGN_PARTS and isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
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


# JSON Schema counts 4.0 as an integer; Python does not (a width of 4.0 fails deep in the code, and
# a sweep over [2, 2.0] would train one network twice under two ids): integers must be written so.
_StrictValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)
_DefaultFillingValidator = _extend_with_defaults(_StrictValidator)


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
        return f"{where}: {_short(error.instance)} is not one of {', '.join(map(repr, error.validator_value))}"
    if error.validator == "minItems" and error.validator_value == 1:
        return f"{where}: must not be empty"
    if error.validator == "minProperties" and error.validator_value == 1:
        return f"{where}: must hold at least one entry"
    if error.validator == "type" and error.validator_value == "integer" and isinstance(error.instance, float) \
            and error.instance.is_integer() and abs(error.instance) < 1e18:
        return f"{where}: {_short(error.instance)} is not an integer (write {int(error.instance)})"
    if error.validator == "type":
        return f"{where}: {_short(error.instance)} is not of type {error.validator_value}"
    if error.validator == "pattern" and "propertyNames" in error.schema_path:
        return f"{where}: {_short(error.instance)} is not a valid name (it must match {error.validator_value})"
    if error.validator == "pattern" and error.validator_value == SINGLE_LINE:
        return f"{where}: must be one line (no line breaks)"
    message = error.message if len(error.message) <= 160 else error.message[:160] + "..."
    return f"{where}: {message}"


def _first_error(validator, instance) -> jsonschema.ValidationError | None:
    errors = list(validator.iter_errors(instance))
    if not errors:
        return None
    # Deepest first: it is the most specific; ties in document order.
    return sorted(errors, key=lambda e: (-len(e.absolute_path), [str(p) for p in e.absolute_path]))[0]


def _validate(raw: dict, schema: dict) -> None:
    _check_empty_designs(raw)
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
        varied = _check_design(name, exp, params_schema, defs)
        _check_plot_keys(name, exp["plot"], varied)


DESIGN_PARTS = ("sweep", "zip", "cases")  # the ways an experiment varies keys; crossed with each other


def _check_empty_designs(raw: dict) -> None:
    """An empty zip or cases (before defaults fill them in) is a mistake, not a design."""
    experiments = raw.get("experiments")
    for name, exp in (experiments.items() if isinstance(experiments, dict) else ()):
        if isinstance(exp, dict) and exp.get("zip") == {}:
            raise ConfigError(f"experiments.{name}.zip: must hold at least one key (leave zip out for no zipped keys)")
        if isinstance(exp, dict) and exp.get("cases") == []:
            raise ConfigError(f"experiments.{name}.cases: must not be empty (leave cases out for no cases)")


def _design_entries(exp: dict) -> list[tuple[str, str, str, list, bool]]:
    """Every occurrence of a varied key: (part, where it is, key, values, one value per index?)."""
    entries = [("sweep", "sweep", k, v, True) for k, v in exp["sweep"].items()]
    entries += [("zip", "zip", k, v, True) for k, v in exp["zip"].items()]
    entries += [("cases", f"cases[{i}]", k, [v], False) for i, case in enumerate(exp["cases"]) for k, v in case.items()]
    return entries


def _part_varying(exp: dict, key: str) -> str | None:
    """The part of the design (sweep, zip, cases) that varies ``key``, or None."""
    return next((part for part, _, k, _, _ in _design_entries(exp) if k == key), None)


def _base_value(exp: dict, key: str):
    """The experiment's own value of a section.key (what a case that leaves the key out gets; a
    study parameter without a default has none)."""
    section, sub = key.split(".", 1)
    return exp[section].get(sub)


def _point_text(point: Mapping) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items())


def _check_design(name: str, exp: dict, params_schema: dict, defs: dict) -> list[str]:
    """sweep, zip and cases: known keys, valid values, each key in one part, zip lists of one
    length, no point twice, the study's SWEEPABLE, param_budget's rules. Returns the varied keys."""
    at = f"experiments.{name}"
    part_of: dict[str, str] = {}  # varied key -> the part that varies it, in design order
    for part, where, key, values, indexed in _design_entries(exp):
        section, sub = key.split(".", 1)
        props = params_schema["properties"] if section == "params" else defs[section]["properties"]
        if sub not in props:
            close = difflib.get_close_matches(sub, list(props), n=1)
            hint = f" (did you mean {section}.{close[0]}?)" if close else ""
            raise ConfigError(f"{at}.{where}: {key!r} is not a key of {section}{hint}; "
                              f"valid keys of {section}: {', '.join(props)}")
        sub_validator = _StrictValidator(props[sub])
        for i, value in enumerate(values):
            err = _first_error(sub_validator, value)
            if err is not None:
                raise ConfigError(f"{at}.{where}.{key}{f'[{i}]' if indexed else ''}: {_describe(err).split(': ', 1)[1]}")
        if part == "sweep" and len(set(map(_canonical, values))) != len(values):
            raise ConfigError(f"{at}.sweep.{key}: values repeat")
        if part_of.setdefault(key, part) != part:
            raise ConfigError(f"{at}.{where}.{key}: {key} is also varied by {part_of[key]}; "
                              f"a key may appear in only one of sweep, zip and cases")
    _check_zip(at, exp["zip"])
    _check_cases(at, exp)
    _check_sweepable(name, exp["study"], part_of)
    _check_budget(at, exp, part_of)
    return list(part_of)


def _check_zip(at: str, zipped: dict) -> None:
    lengths = {key: len(values) for key, values in zipped.items()}
    first = next(iter(lengths), None)
    for key, n in lengths.items():
        if n != lengths[first]:
            raise ConfigError(f"{at}.zip.{key}: {n} values, but zip.{first} has {lengths[first]}; zipped lists "
                              f"vary together (one point per index), so they need equal lengths")
    seen: dict[str, int] = {}
    for i, row in enumerate(zip(*zipped.values())):
        j = seen.setdefault(_canonical(row), i)
        if j != i:
            raise ConfigError(f"{at}.zip: point {i} is the same as point {j} ({_point_text(dict(zip(zipped, row)))})")


def _check_cases(at: str, exp: dict) -> None:
    keys = list(dict.fromkeys(k for case in exp["cases"] for k in case))
    seen: dict[str, int] = {}
    for i, case in enumerate(exp["cases"]):
        j = seen.setdefault(_canonical([case.get(k, _base_value(exp, k)) for k in keys]), i)
        if j != i:
            raise ConfigError(f"{at}.cases[{i}]: the same point as cases[{j}] (a key that a case leaves out "
                              f"takes the experiment's value)")


def _check_budget(at: str, exp: dict, part_of: dict[str, str]) -> None:
    """model.param_budget chooses the width: the width may not be varied, and the study must train
    its networks with the engine (a study's own compute would not use the chosen width)."""
    from mathdl.studies import STUDIES

    budget = "model.param_budget"
    where = f"{part_of[budget]}.{budget}" if budget in part_of else budget
    set_somewhere = exp["model"]["param_budget"] > 0 or any(
        v > 0 for _, _, key, values, _ in _design_entries(exp) if key == budget for v in values)
    if not set_somewhere:
        return
    if "model.width" in part_of:
        raise ConfigError(f"{at}.{part_of['model.width']}.model.width: the width is chosen by model.param_budget; "
                          f"vary the budget instead, or set param_budget to 0")
    if STUDIES[exp["study"]].compute is not None:
        raise ConfigError(f"{at}.{where}: study {exp['study']} computes its runs itself, so no width chosen "
                          f"for a budget would be used; param_budget works with studies that train with the engine (sweep)")


def width_for_budget(model: ModelConfig, d: int, k: int, budget: int) -> int | None:
    """The width w >= 1 whose network (d inputs, k outputs) has the parameter count P(w) nearest
    ``budget``, ties to the smaller width; None when even P(1) exceeds the budget. For cnn and
    resnet18, w is the width parameter k (stages of k, 2k, 4k, 8k channels) and d the pixels of
    the data set's images; P is the closed form of resources.image_network_costs.

    P(w) grows strictly with w and P(w) > w, so bisection on [1, budget] finds the largest w with
    P(w) <= budget; the nearest is it or w + 1.
    """
    import dataclasses

    from mathdl.resources import network_parameter_count  # torch-free, as plan loading must be

    def count(w: int) -> int:
        return network_parameter_count(dataclasses.replace(model, width=w), d, k)

    if count(1) > budget:
        return None
    lo, hi = 1, budget  # count(lo) <= budget < count(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid) <= budget else (lo, mid)
    return lo if budget - count(lo) <= count(hi) - budget else hi


PLOT_CHANNELS = ("hue", "style", "col", "row")  # the experiment's plot keys that name a varied key


def _check_plot_keys(name: str, plot: dict, varied: list[str]) -> None:
    """plot.x and each channel set (hue, style, col, row) name a varied key, each a different one."""
    where = f"experiments.{name}.plot"
    known = f"(varied keys: {', '.join(varied) or 'none'})"
    x = plot["x"]
    if x and x not in varied:
        raise ConfigError(f"{where}.x: {x!r} is not a varied key {known}")
    taken = {"x": x or (varied[0] if varied else "")}
    for channel in PLOT_CHANNELS:
        key = plot[channel]
        if not key:
            continue
        if key not in varied:
            raise ConfigError(f"{where}.{channel}: {key!r} is not a varied key {known}")
        for other, other_key in taken.items():
            if key == other_key:
                default = " (the first varied key, plot.x's default)" if other == "x" and not x else ""
                raise ConfigError(f"{where}.{channel}: {key!r} is already plot.{other}{default}; "
                                  f"each varied key goes on one channel")
        taken[channel] = key


def _check_slugs(names: list[str]) -> None:
    """Two experiment names that LaTeX would read as one (a_b, a-b) would share figures and results."""
    from mathdl.report import slug as report_slug

    seen: dict[str, str] = {}
    for name in names:
        slug = report_slug(name)
        if slug in seen:
            raise ConfigError(
                f"experiments: {seen[slug]!r} and {name!r} differ only in punctuation (both read as {slug!r} "
                f"in the report); rename one"
            )
        seen[slug] = name


def _check_sweepable(name: str, study: str, part_of: dict[str, str]) -> None:
    """A study that declares SWEEPABLE accepts only those varied keys (in sweep, zip or cases): its
    analysis could not tell runs apart by any other (they would be mixed into one curve)."""
    from mathdl.studies import STUDIES

    allowed = STUDIES[study].sweepable
    extra = [key for key in part_of if allowed is not None and key not in allowed]
    if extra:
        what = f"only {', '.join(allowed)}" if allowed else "nothing (it computes its grids from params)"
        raise ConfigError(
            f"experiments.{name}.{part_of[extra[0]]}: study {study} sweeps {what}, not {', '.join(extra)}; "
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
        max_mem_mb=raw["max_mem_mb"],
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


def _design_points(exp: dict) -> list[dict]:
    """The points of an experiment's design: the grid of sweep, times the rows of zip, times the
    cases (each case filled with the experiment's value of a varied key it leaves out). Every
    point holds every varied key, in design order: sweep's keys, zip's, then the cases'."""
    sweep, zipped, cases = exp["sweep"], exp["zip"], exp["cases"]
    case_keys = list(dict.fromkeys(k for case in cases for k in case))
    grid = [dict(zip(sweep, values)) for values in itertools.product(*sweep.values())]
    rows = [dict(zip(zipped, values)) for values in zip(*zipped.values())] if zipped else [{}]
    filled = [{k: case.get(k, _base_value(exp, k)) for k in case_keys} for case in cases] or [{}]
    return [{**g, **r, **c} for g in grid for r in rows for c in filled]


def _resolve_budget(name: str, exp: dict, sections: dict, point: dict) -> None:
    """With model.param_budget set, the point's width (an image network's k) is the one nearest
    the budget (in place)."""
    from mathdl.resources import network_parameter_count
    from mathdl.tasks import image_shape, input_dim, n_outputs

    model = sections["model"]
    if not model["param_budget"]:
        return
    part = _part_varying(exp, "model.param_budget")
    key = f"experiments.{name}.{part + '.' if part else ''}model.param_budget"
    at = f" (at point {_point_text(point)})" if point else ""
    if model["arch"] == "module":
        raise ConfigError(f"{key}: arch module has no width for a budget to choose (its class and kwargs set its "
                          f"size); set param_budget to 0{at}")
    task = TaskConfig(**sections["task"])
    if model["arch"] in IMAGE_ARCHITECTURES and image_shape(task) is None:
        return  # no images to count on: _check_architecture names the data set the network needs
    d, k = input_dim(task), n_outputs(task)
    width = width_for_budget(ModelConfig(**model), d, k, model["param_budget"])
    if width is None:
        smallest = network_parameter_count(ModelConfig(**{**model, "width": 1}), d, k)
        network = (f"k = 1, {'x'.join(map(str, image_shape(task)))} images" if model["arch"] in IMAGE_ARCHITECTURES
                   else f"width 1, depth {model['depth']}, {d} inputs")
        raise ConfigError(f"{key}: a budget of {model['param_budget']:,} parameters is below the smallest network's "
                          f"{smallest:,} ({network}, {k} outputs){at}")
    model["width"] = width


def _build_experiment(name: str, exp: dict) -> Experiment:
    runs_by_group: dict[str, list[RunSpec]] = {}
    group_data: dict[str, str] = {}
    points = _design_points(exp)
    keys = list(points[0])
    for point in points:
        sections = {s: dict(exp[s]) for s in _SECTIONS}
        params = dict(exp["params"])
        for key, value in point.items():
            section, sub = key.split(".", 1)
            (params if section == "params" else sections[section])[sub] = value
        if sections["model"]["arch"] == "resmlp":  # an alias: the residual MLP
            sections["model"].update(arch="mlp", residual=True)
        _resolve_budget(name, exp, sections, point)
        task, model, train = (_SECTIONS[s](**sections[s]) for s in ("task", "model", "train"))
        hashed = {**sections, "model": model_identity(sections["model"]), "train": train_identity(sections["train"])}
        shared_train = {k: v for k, v in hashed["train"].items() if k not in PER_RUN_TRAIN_KEYS}
        data_id = stable_hash(sections["task"])
        shape = {"task": hashed["task"], "model": hashed["model"], "train": shared_train}
        if params:  # every study parameter shapes the group; omitted when empty (stable ids)
            shape["params"] = params
        group_id = stable_hash(shape)
        group_data[group_id] = data_id
        for seed in exp["seeds"]:
            identity = {**hashed, "seed": seed, **({"params": params} if params else {})}
            runs_by_group.setdefault(group_id, []).append(
                RunSpec(stable_hash(identity), seed, tuple(point.items()), task, model, train, params)
            )
    groups = tuple(
        GroupSpec(gid, name, exp["study"], group_data[gid], tuple(runs)) for gid, runs in runs_by_group.items()
    )
    # Every varied key with the distinct values that occur, in order of first occurrence (for a
    # sweep alone: its values as the config lists them).
    sweep = tuple((k, tuple({_canonical(p[k]): p[k] for p in points}.values())) for k in keys)
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
