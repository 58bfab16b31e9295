"""config: what mutation testing found unpinned by the other config tests (see tests/README.md).

Each refusal's exact one-line text (the key it names, the value it quotes, the point it was at),
the limits at their boundaries (plan bytes, YAML aliases, values once aliases are expanded,
name length, label noise, seeds, memory), the YAML reader's number syntax, and the expansion's
defaults (title, plot.x, the varied keys' values in order of first occurrence).
"""

from __future__ import annotations

import copy
import re

import pytest

from mathdl import config as cfg
from mathdl import resources
from mathdl.config import ConfigError, load_plan, read_config_file

STUDY_NAMES = ("approximation, curse, deep_double_descent, depth_separation, double_descent, lazy_training, "
               "optimizers, overfitting, random_labels, regularization, representation, residual, sgd_linear, sweep")
AT_FIRST_POINT = " (at sweep point model.width=2, train.lr=0.1)"


def _message(config) -> str:
    with pytest.raises(ConfigError) as info:
        load_plan(config)
    return str(info.value)


def _file_message(path) -> str:
    with pytest.raises(ConfigError) as info:
        read_config_file(path)
    return str(info.value)


def _exp(tiny_config) -> dict:
    return tiny_config["experiments"]["exp"]


# ----------------------------------------------------------------------------- _short


def test_short_keeps_a_repr_of_40_characters_and_cuts_a_longer_one():
    assert cfg._short("x" * 38) == repr("x" * 38)  # 40 characters with its quotes
    assert cfg._short("x" * 39) == "'" + "x" * 39 + "...'"  # 41: the first 40, then ...'
    assert cfg._short(12) == "12"
    assert cfg._short("abc", limit=4) == "'abc...'"


# ----------------------------------------------------------------------------- the YAML file


def _write(tmp_path, text: str | bytes, name: str = "plan.yaml"):
    path = tmp_path / name
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return path


def test_a_duplicate_key_names_both_lines(tmp_path):
    path = _write(tmp_path, "a: 1\nb:\n  c: 2\n  d: 3\n  c: 4\n")
    assert _file_message(path) == (
        f"{path} line 5: duplicate key 'c' (first on line 3); a YAML mapping keeps only the last, "
        f"so one of them would be silently ignored"
    )


def test_a_key_that_is_a_list_is_left_to_the_yaml_reader(tmp_path):
    """A list as a key is skipped by the duplicate check (it cannot be hashed), and the duplicate
    after it is still found."""
    path = _write(tmp_path, "? [a, b]\n: 1\nc: 2\nc: 3\n")
    assert _file_message(path) == (
        f"{path} line 4: duplicate key 'c' (first on line 3); a YAML mapping keeps only the last, "
        f"so one of them would be silently ignored"
    )
    message = _file_message(_write(tmp_path, "? [a, b]\n: 1\n", "list_key.yaml"))
    assert message.startswith(f"{tmp_path / 'list_key.yaml'} line 1: not valid YAML (found unhashable key")


def _aliases(n: int) -> str:
    return "a: &a 1\nb: [" + ", ".join(["*a"] * n) + "]\n"


def test_the_alias_limit_is_100(tmp_path):
    assert read_config_file(_write(tmp_path, _aliases(100)))["b"] == [1] * 100
    path = _write(tmp_path, _aliases(101))
    assert _file_message(path) == f"{path} line 2: more than 100 YAML aliases (*name); write the values out"


def _nodes_plan(n: int) -> str:
    """A plan of exactly ``n`` values once its aliases are expanded (n >= 198,004)."""
    # top mapping 1 + a (1 + 1999) + b (1 + 98 * 2000) + c (1 + k)
    k = n - 1 - 2000 - 1 - 98 * 2000 - 1
    zeros = "[" + ", ".join(["0"] * 1999) + "]"
    return f"a: &a {zeros}\nb: [{', '.join(['*a'] * 98)}]\nc: [{', '.join(['0'] * k)}]\n"


def test_the_value_limit_is_200_000_once_aliases_are_expanded(tmp_path):
    plan = read_config_file(_write(tmp_path, _nodes_plan(200_000)))
    assert cfg._count_nodes(plan, 10**9) == 200_000
    path = _write(tmp_path, _nodes_plan(200_001))
    assert _file_message(path) == f"{path}: more than 200,000 values once its YAML aliases are expanded"


def test_count_nodes_counts_every_value_and_stops_just_past_the_limit():
    plan = {"a": [1, 2, {"b": 3}], "c": {}}
    assert cfg._count_nodes(plan, 100) == 7  # the plan, a, 1, 2, {b}, 3, c
    assert cfg._count_nodes(plan, 3) == 4  # one past the limit is enough to refuse
    assert cfg._count_nodes([[1], [2]], 100) == 5


def test_the_byte_limit_is_a_million(tmp_path):
    def plan(size: int) -> str:
        head = "a: '"
        return head + "x" * (size - len(head) - 2) + "'\n"

    assert len(read_config_file(_write(tmp_path, plan(1_000_000)))["a"]) == 1_000_000 - 6
    path = _write(tmp_path, plan(1_000_001))
    assert _file_message(path) == f"{path}: 1,000,001 bytes is not a plan (a plan is a page of YAML)"


def test_each_unreadable_file_has_its_own_line(tmp_path):
    missing = tmp_path / "missing.yaml"
    assert _file_message(missing) == f"{missing}: no such config file"
    assert _file_message(tmp_path) == f"{tmp_path}: no such config file"  # a folder is not a file
    path = _write(tmp_path, b"a: \xff\xfe\n")
    assert _file_message(path) == f"{path}: not a text file (a plan is YAML in UTF-8)"
    path = _write(tmp_path, "a: 1\x00\n")
    assert _file_message(path) == f"{path}: not a text file (it holds NUL bytes)"
    path = _write(tmp_path, "# nothing\n")
    assert _file_message(path) == (f"{path}: the plan is empty; it needs at least an experiments section "
                                   f"(see config/README.md)")
    path = _write(tmp_path, "- a\n- b\n")
    assert _file_message(path) == f"{path}: the config must be a mapping of keys to values"
    path = _write(tmp_path, "a: [1, 2\nb: 3\n")
    assert re.fullmatch(re.escape(f"{path} line 2: not valid YAML (") + r"[^\n]+\)", _file_message(path))
    # a reader error has no problem and no mark: the first line of its text, no line number
    path = _write(tmp_path, "a: \x07\n")
    assert _file_message(path) == (f"{path}: not valid YAML (unacceptable character #x0007: special characters "
                                   f"are not allowed)")


@pytest.mark.parametrize("text", ["1e3", "+1e3", "-1e3", "1.5E-2", ".5e1", "1_0e2", "2.e+1"])
def test_numbers_with_an_exponent_are_numbers(tmp_path, text):
    value = read_config_file(_write(tmp_path, f"a: {text}\n"))["a"]
    assert isinstance(value, float) and value == float(text.replace("_", ""))


@pytest.mark.parametrize("text", ["e3", "1e", "1e3x", "x1e3", "1e3.5"])
def test_words_that_look_like_exponents_stay_words(tmp_path, text):
    assert read_config_file(_write(tmp_path, f"a: {text}\n"))["a"] == text


# ----------------------------------------------------------------------------- plain keys and values


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda c: c.update({1: 2}), '(top level): key 1 is not a name; quote it ("1") if it is meant as one'),
        (lambda c: _exp(c)["task"].update({5: 2}),
         'experiments.exp.task: key 5 is not a name; quote it ("5") if it is meant as one'),
        (lambda c: _exp(c).update(seeds=[0, float("-inf")]), "experiments.exp.seeds[1]: -inf is not a finite number"),
        (lambda c: _exp(c).update(sweep={"train.lr": [[0.1, float("nan")]]}),
         "experiments.exp.sweep.train.lr[0][1]: nan is not a finite number"),
        (lambda c: _exp(c).update(cases=[{"train.lr": 0.1}, {"train.lr": float("inf")}]),
         "experiments.exp.cases[1].train.lr: inf is not a finite number"),
    ],
)
def test_plain_key_and_value_refusals_name_the_place(tiny_config, mutate, expected):
    mutate(tiny_config)
    assert _message(tiny_config) == expected


# ----------------------------------------------------------------------------- names


def _rename(tiny_config, name: str) -> dict:
    tiny_config["experiments"] = {name: _exp(tiny_config)}
    return tiny_config


def test_names_of_64_characters_pass_and_65_are_refused(tiny_config):
    assert load_plan(_rename(copy.deepcopy(tiny_config), "a" * 64)).experiments[0].name == "a" * 64
    assert _message(_rename(tiny_config, "a" * 65)) == (
        "experiments: the name 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' is longer than 64 characters")


@pytest.mark.parametrize("name", ["a_b&c%d+e.f,g=h-9", "7", "Z"])
def test_names_of_every_allowed_character_pass(tiny_config, name):
    assert load_plan(_rename(tiny_config, name)).experiments[0].name == name


@pytest.mark.parametrize("name", ["_a", "a b", "a/b", "é", ".a", "a\n"])
def test_a_bad_name_is_refused_with_the_rule(tiny_config, name):
    assert _message(_rename(tiny_config, name)) == (
        f"experiments: {name!r} is not a valid name (letters, digits and _ & % + . , = -, "
        f"starting with a letter or digit, on one line)")


def test_names_are_checked_only_in_an_experiments_mapping(tiny_config):
    tiny_config["experiments"] = ["exp"]
    assert _message(tiny_config) == "experiments: ['exp'] is not of type object"


# ----------------------------------------------------------------------------- palettes


@pytest.mark.parametrize(
    "palette",
    ["deep", "deep6", "muted", "pastel6", "bright", "dark6", "colorblind", "colorblind6", "husl", "hls", "rocket",
     "mako_r", "flare", "crest_r", "vlag", "icefire_r", "ch:s=.25,rot=-.25", "light:#5A9", "dark:salmon_r",
     "blend:#7AB,#EDA", "viridis", "viridis_r", "Blues"],
)
def test_seaborn_palettes_and_colormaps_are_palettes(tiny_config, palette):
    tiny_config["plot"] = {"palette": palette}
    assert load_plan(tiny_config).plot.palette == palette


def test_an_unknown_palette_is_one_line_with_a_hint_when_one_is_close(tiny_config):
    rest = "; use a seaborn palette (colorblind, deep, muted, ...) or a matplotlib colormap (viridis, rocket, ...)"
    tiny_config["plot"] = {"palette": "virdis"}
    assert _message(tiny_config) == "plot.palette: unknown palette 'virdis' (did you mean 'viridis'?)" + rest
    tiny_config["plot"] = {"palette": "colorblindd"}
    assert _message(tiny_config) == "plot.palette: unknown palette 'colorblindd' (did you mean 'colorblind'?)" + rest
    tiny_config["plot"] = {"palette": "qqqqqqqqqq"}
    assert _message(tiny_config) == "plot.palette: unknown palette 'qqqqqqqqqq'" + rest


# ----------------------------------------------------------------------------- what no single key can say


def test_label_noise_of_exactly_1_is_allowed_and_just_above_is_refused(tiny_config):
    _exp(tiny_config)["task"]["label_noise"] = 1.0
    assert load_plan(copy.deepcopy(tiny_config)).experiments[0].task.label_noise == 1.0
    _exp(tiny_config)["task"]["label_noise"] = 1.0000001
    assert _message(tiny_config) == (
        "experiments.exp.task.label_noise: 1.0000001 is a fraction of the labels, at most 1" + AT_FIRST_POINT)


def test_label_noise_above_1_is_a_regression_tasks_own_business(tiny_config):
    """For regression label_noise is a relative standard deviation: 2 is allowed."""
    _exp(tiny_config)["task"].update(kind="regression", label_noise=2.0)
    _exp(tiny_config)["train"]["loss"] = "mse"
    assert load_plan(tiny_config).experiments[0].task.label_noise == 2.0


def test_seeds_up_to_2_to_the_32_minus_1(tiny_config):
    _exp(tiny_config)["seeds"] = [2**32 - 1]
    assert load_plan(copy.deepcopy(tiny_config)).experiments[0].seeds == (2**32 - 1,)
    _exp(tiny_config)["seeds"] = [2**32]
    assert _message(tiny_config) == "experiments.exp.seeds[0]: 4294967296 is greater than the maximum of 4294967295"


def test_classes_at_least_2(tiny_config):
    _exp(tiny_config)["task"]["n_classes"] = 2
    assert load_plan(copy.deepcopy(tiny_config)).experiments[0].task.n_classes == 2
    _exp(tiny_config)["task"]["n_classes"] = 1
    assert _message(tiny_config) == (
        "experiments.exp.task.n_classes: a classification task needs at least 2 classes" + AT_FIRST_POINT)


def test_a_regression_teacher_needs_mse(tiny_config):
    _exp(tiny_config)["task"]["kind"] = "regression"
    _exp(tiny_config)["train"]["loss"] = "mse"
    assert load_plan(copy.deepcopy(tiny_config)).experiments[0].train.loss == "mse"
    _exp(tiny_config)["train"]["loss"] = "cross_entropy"
    assert _message(tiny_config) == ("experiments.exp.train.loss: cross_entropy needs a classification task; "
                                     "task.kind is regression (use mse)" + AT_FIRST_POINT)


def test_early_stopping_needs_a_validation_split(tiny_config):
    _exp(tiny_config)["train"]["early_stopping"] = True
    assert _message(copy.deepcopy(tiny_config)) == (
        "experiments.exp.train.early_stopping: it selects on the validation split; set task.n_val > 0" + AT_FIRST_POINT)
    _exp(tiny_config)["task"]["n_val"] = 8
    assert load_plan(tiny_config).experiments[0].train.early_stopping is True


def test_a_run_without_a_point_names_none(tiny_config):
    _exp(tiny_config)["sweep"] = {}  # an explicitly empty design: one point, no varied key
    _exp(tiny_config)["task"]["n_classes"] = 1
    assert _message(tiny_config) == "experiments.exp.task.n_classes: a classification task needs at least 2 classes"


def test_a_real_data_sets_classes_are_its_own():
    """n_classes is the teacher's: a real data set's is fixed by the data (digits: 10), so 1 is
    not refused there; its checks name the experiment."""
    digits = {"name": "digits", "n_train": 60, "n_val": 30, "n_test": 60}
    assert _plan({"task": {**digits, "n_classes": 1}}).experiments[0].task.name == "digits"
    assert _design_message({"task": {**digits, "kind": "regression"}}) == (
        "experiments.e.task.kind: digits is a classification data set, not regression")


def test_a_point_without_a_sweep_is_not_quoted(tiny_config):
    del _exp(tiny_config)["sweep"]
    _exp(tiny_config)["zip"] = {"model.width": [2]}
    _exp(tiny_config)["task"]["n_classes"] = 1
    assert _message(copy.deepcopy(tiny_config)).endswith(" (at sweep point model.width=2)")
    del _exp(tiny_config)["zip"]
    _exp(tiny_config)["cases"] = [{"model.width": 2}]
    assert _message(tiny_config).endswith(" (at sweep point model.width=2)")


def test_studies_without_a_task_are_not_checked_as_classification():
    """approximation's task is none: its (unused) task keys may hold anything the schema allows."""
    exp = {"study": "approximation", "seeds": [0], "task": {"n_classes": 1, "label_noise": 1.5}}
    assert load_plan({"device": "cpu", "experiments": {"a": exp}}).experiments[0].task.name == "none"
    exp["train"] = {"early_stopping": True}
    exp["task"]["n_val"] = 0
    assert load_plan({"device": "cpu", "experiments": {"a": exp}}).experiments[0].train.early_stopping


def test_the_memory_limit_is_max_mem_mb_exactly(tiny_config):
    _exp(tiny_config)["task"]["n_train"] = 2_000_000
    _exp(tiny_config)["sweep"] = {"model.width": [2]}
    plan = load_plan(copy.deepcopy(tiny_config))
    need = resources.min_mem_mb(plan.experiments[0].groups[0])
    assert need > 10
    tiny_config["max_mem_mb"] = need
    load_plan(copy.deepcopy(tiny_config))
    tiny_config["max_mem_mb"] = need - 1
    assert _message(tiny_config) == (
        f"experiments.exp: one training job (at sweep point model.width=2) needs at least {need:,} MB (parameters, "
        f"gradients and data of 2 runs), more than the {need - 1:,} MB available (max_mem_mb); make it smaller or "
        f"set max_mem_mb to the cluster's memory per job")


# ----------------------------------------------------------------------------- study defaults


def test_a_missing_or_unknown_study_lists_the_studies(tiny_config):
    del _exp(tiny_config)["study"]
    assert _message(copy.deepcopy(tiny_config)) == f"experiments.exp: missing key 'study' (one of {STUDY_NAMES})"
    _exp(tiny_config)["study"] = "nope"
    assert _message(tiny_config) == f"experiments.exp.study: unknown study 'nope' (valid: {STUDY_NAMES})"


def test_an_experiment_that_is_not_a_mapping_is_left_to_the_schema(tiny_config):
    tiny_config["experiments"]["other"] = 3
    assert _message(tiny_config) == "experiments.other: 3 is not of type object"


def test_a_width_beside_a_budget(tiny_config):
    _exp(tiny_config)["sweep"] = {"train.lr": [0.1]}
    _exp(tiny_config)["model"] = {"width": 8, "param_budget": 0}
    assert load_plan(copy.deepcopy(tiny_config)).experiments[0].model.width == 8
    _exp(tiny_config)["model"] = {"width": 8, "param_budget": 100}
    assert _message(tiny_config) == ("experiments.exp.model.width: not used when model.param_budget is set (the "
                                     "budget chooses the width); remove one of them")


def test_study_defaults_merge_section_by_section_and_a_design_replaces_the_whole_design():
    """sweep's defaults: label_noise 0.2 and a default sweep; the experiment's task keys merge into
    the study's task, and its cases replace the study's sweep (no sweep keys are crossed in)."""
    exp = load_plan({"device": "cpu", "experiments": {"e": {
        "study": "sweep", "seeds": [0], "task": {"input_dim": 3, "n_train": 16, "n_test": 16},
        "train": {"epochs": 1}, "cases": [{"model.width": 3}]}}}).experiments[0]
    assert exp.task.label_noise == 0.2 and exp.task.input_dim == 3
    assert [dict(r.point) for r in exp.runs] == [{"model.width": 3}]
    merged = cfg._deep_merge({"a": {"b": 1, "c": 2}, "sweep": {"x": [1]}, "d": 1},
                             {"a": {"c": 3}, "sweep": {"y": [2]}, "d": {"e": 1}})
    assert merged == {"a": {"b": 1, "c": 3}, "sweep": {"y": [2]}, "d": {"e": 1}}


# ----------------------------------------------------------------------------- schema messages


def test_key_paths_read_as_the_plan_writes_them():
    assert cfg._key_path([]) == "(top level)"
    assert cfg._key_path(["experiments", "e", "seeds", 2]) == "experiments.e.seeds[2]"
    assert cfg._key_path(["a", 0, 1, "b"]) == "a[0][1].b"


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda c: _exp(c).update(model={"widht": 3, "dpth": 2, "qqqq": 1}),
         "experiments.exp.model: unknown key 'dpth' (did you mean 'depth'?), 'qqqq', 'widht' (did you mean 'width'?); "
         f"valid keys: {', '.join(sorted(cfg.load_schema()['$defs']['model']['properties']))}"),
        (lambda c: c.update(report={"name": "a b"}), "report.name: 'a b' does not match '^([A-Za-z0-9][A-Za-z0-9_-]*)?$'"),
        (lambda c: c.update(device="tpu"), "device: 'tpu' is not one of 'auto', 'cpu', 'cuda'"),
        (lambda c: c.update(device="t" * 60), f"device: {'t' * 39!r}"[:-1] + "...' is not one of 'auto', 'cpu', 'cuda'"),
        (lambda c: _exp(c).update(seeds=[]), "experiments.exp.seeds: must not be empty"),
        (lambda c: c.update(experiments={}), "experiments: must hold at least one entry"),
        (lambda c: _exp(c)["train"].update(lr="f" * 60), f"experiments.exp.train.lr: {'f' * 39!r}"[:-1]
         + "...' is not of type number"),
        (lambda c: _exp(c).update(sweep={"model.Width": [2]}),
         "experiments.exp.sweep: 'model.Width' is not a valid name (it must match ^(task|model|train|params)\\.[a-z_0-9]+$)"),
        (lambda c: c.update(project={"title": "a\nb"}), "project.title: must be one line (no line breaks)"),
        (lambda c: _exp(c).update(seeds=[1, 1]), "experiments.exp.seeds: [1, 1] has non-unique elements"),
    ],
)
def test_schema_errors_in_the_words_of_a_plan_author(tiny_config, mutate, expected):
    mutate(tiny_config)
    message = _message(tiny_config)
    assert message == expected


def _seeds_with_message_of(length: int) -> list[int]:
    """Repeated seeds whose schema message ('[...] has non-unique elements') is ``length`` long."""
    for n in range(40):
        for last in (10**k for k in range(10)):
            seeds = [0, 0] + list(range(1000, 1000 + n)) + [last]
            if len(f"{seeds!r} has non-unique elements") == length:
                return seeds
    raise AssertionError(length)


def test_a_long_schema_message_is_cut_after_160_characters(tiny_config):
    prefix = "experiments.exp.seeds: "
    _exp(tiny_config)["seeds"] = seeds = _seeds_with_message_of(160)
    assert _message(copy.deepcopy(tiny_config)) == f"{prefix}{seeds!r} has non-unique elements"  # whole
    _exp(tiny_config)["seeds"] = seeds = _seeds_with_message_of(161)
    assert _message(tiny_config) == prefix + f"{seeds!r} has non-unique elements"[:160] + "..."


def test_the_deepest_error_is_reported_first_and_ties_in_document_order(tiny_config):
    _exp(tiny_config)["model"] = {"width": -1}
    _exp(tiny_config)["seeds"] = [-1]  # as deep as model.width; seeds comes first in the path order
    tiny_config["device"] = "tpu"  # shallower
    assert _message(tiny_config) == "experiments.exp.model.width: -1 is less than the minimum of 1"
    validator = cfg.jsonschema.Draft202012Validator({"type": "object", "properties": {
        "b": {"type": "integer"}, "a": {"type": "integer"}, "c": {"type": "object", "properties": {
            "d": {"type": "integer"}}}}})
    assert list(cfg._first_error(validator, {"b": "x", "a": "y"}).absolute_path) == ["a"]
    assert list(cfg._first_error(validator, {"a": "y", "c": {"d": "z"}}).absolute_path) == ["c", "d"]
    assert cfg._first_error(validator, {"a": 1}) is None


def test_study_parameter_errors_name_the_parameter(tiny_config):
    exp = {"study": "approximation", "seeds": [0], "params": {"bogus": 1}}
    message = _message({"device": "cpu", "experiments": {"a": exp}})
    assert message.startswith("experiments.a.params: unknown key 'bogus'; valid keys: ")
    exp["params"] = {"n_train": "many"}
    assert _message({"device": "cpu", "experiments": {"a": exp}}) == \
        "experiments.a.params.n_train: 'many' is not of type integer"


# ----------------------------------------------------------------------------- designs


def _plan(exp: dict, top: dict | None = None):
    base = {"study": "sweep", "seeds": [0], "task": {"input_dim": 3, "n_train": 32, "n_test": 32},
            "train": {"epochs": 2, "batch_size": 8}}
    return load_plan({"device": "cpu", **(top or {}), "experiments": {"e": {**base, **exp}}})


def _design_message(exp: dict, top: dict | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        _plan(exp, top)
    return str(info.value)


MODEL_KEYS = "arch, module, kwargs, depth, width, activation, residual, residual_scale, init, output_scale, param_budget"


@pytest.mark.parametrize(
    "exp, expected",
    [
        ({"sweep": {"model.widht": [2]}},
         f"experiments.e.sweep: 'model.widht' is not a key of model (did you mean model.width?); valid keys of model: {MODEL_KEYS}"),
        ({"sweep": {"model.qqqqq": [2]}}, f"experiments.e.sweep: 'model.qqqqq' is not a key of model; valid keys of model: {MODEL_KEYS}"),
        ({"sweep": {"params.zzz": [2]}}, "experiments.e.sweep: 'params.zzz' is not a key of params; valid keys of params: "),
        ({"sweep": {"model.width": [2, 2]}}, "experiments.e.sweep.model.width: values repeat"),
        ({"sweep": {"model.width": [2, 0]}}, "experiments.e.sweep.model.width[1]: 0 is less than the minimum of 1"),
        ({"cases": [{"model.width": 2}, {"model.width": 0}]},
         "experiments.e.cases[1].model.width: 0 is less than the minimum of 1"),
        ({"zip": {}}, "experiments.e.zip: must hold at least one key (leave zip out for no zipped keys)"),
        ({"cases": []}, "experiments.e.cases: must not be empty (leave cases out for no cases)"),
        ({"zip": {"model.depth": [1, 2, 3], "model.width": [8, 4]}},
         "experiments.e.zip.model.width: 2 values, but zip.model.depth has 3; zipped lists vary together (one point "
         "per index), so they need equal lengths"),
        ({"zip": {"model.depth": [1, 2], "model.width": [8, 4], "train.lr": [0.1]}},
         "experiments.e.zip.train.lr: 1 values, but zip.model.depth has 2; zipped lists vary together (one point "
         "per index), so they need equal lengths"),
        ({"zip": {"model.depth": [1, 2, 1, 2], "model.width": [4, 5, 4, 5]}},
         "experiments.e.zip: point 2 is the same as point 0 (model.depth=1, model.width=4)"),
        ({"model": {"width": 16}, "cases": [{"model.depth": 3}, {"model.width": 16, "model.depth": 2},
                                            {"model.depth": 2}]},
         "experiments.e.cases[2]: the same point as cases[1] (a key that a case leaves out takes the experiment's "
         "value)"),
        ({"sweep": {"model.depth": [1]}, "cases": [{"model.depth": 2}]},
         "experiments.e.cases[0].model.depth: model.depth is also varied by sweep; a key may appear in only one of "
         "sweep, zip and cases"),
        ({"study": "lazy_training", "sweep": {"model.width": [2, 4]}},
         "experiments.e.sweep: study lazy_training sweeps nothing (it computes its grids from params), not "
         "model.width; set a single value in the experiment, or run other values as separate experiments"),
        ({"study": "residual", "sweep": {"model.depth": [2]}, "cases": [{"model.width": 8}, {"train.dropout": 0.1}]},
         "experiments.e.cases: study residual sweeps only model.depth, model.residual, train.lr, not model.width, "
         "train.dropout; set a single value in the experiment, or run other values as separate experiments"),
        ({"study": "residual", "sweep": {"model.depth": [2]}, "model": {"param_budget": 100}},
         "experiments.e.model.param_budget: study residual computes its runs itself, so no width chosen for a budget "
         "would be used; param_budget works with studies that train with the engine (sweep)"),
        ({"study": "residual", "sweep": {"model.depth": [2]}, "cases": [{"model.param_budget": 0},
                                                                       {"model.param_budget": 100}]},
         "experiments.e.cases: study residual sweeps only model.depth, model.residual, train.lr, not "
         "model.param_budget; set a single value in the experiment, or run other values as separate experiments"),
        ({"cases": [{"model.param_budget": 0, "model.width": 4}, {"model.param_budget": 100}]},
         "experiments.e.cases.model.width: the width is chosen by model.param_budget; vary the budget instead, or "
         "set param_budget to 0"),
    ],
)
def test_design_refusals_word_for_word(exp, expected):
    assert _design_message(exp) == expected


def test_a_budget_of_zero_everywhere_is_no_budget():
    exp = _plan({"cases": [{"model.param_budget": 0, "model.width": 4}, {"model.width": 5}]}).experiments[0]
    assert [r.model.width for r in exp.runs] == [4, 5]


def test_a_budget_below_the_smallest_network_word_for_word():
    assert _design_message({"model": {"param_budget": 5}, "sweep": {"model.depth": [1]}}) == (
        "experiments.e.model.param_budget: a budget of 5 parameters is below the smallest network's 8 (width 1, "
        "depth 1, 3 inputs, 2 outputs) (at point model.depth=1)")
    assert _design_message({"zip": {"model.param_budget": [1_000, 5_000_000_000, 5]}}).startswith(
        "experiments.e.zip.model.param_budget: a budget of 5 parameters is below the smallest network's 8 ")
    # no point to quote: a budget without a design
    exp = {"model": {"param_budget": 5}, "sweep": {"model.depth": [1]}}
    tiny = {"study": "sweep", "seeds": [0], "task": {"input_dim": 3, "n_train": 32, "n_test": 32}, **exp}
    point = cfg._design_points({**tiny, "sweep": {}, "zip": {}, "cases": []})
    assert point == [{}]


def test_width_for_budget_at_its_edges():
    model = _plan({"model": {"depth": 1}, "sweep": {"train.lr": [0.1]}}).experiments[0].model
    assert not model.residual  # P(w) = (d + 1) w + (w + 1) k: 3 inputs, 1 output: 5w + 1
    assert cfg.width_for_budget(model, 3, 1, 5) is None
    assert cfg.width_for_budget(model, 3, 1, 6) == 1
    assert cfg.width_for_budget(model, 3, 1, 8) == 1  # 6 and 11: 8 is nearer 6
    assert cfg.width_for_budget(model, 3, 1, 9) == 2  # 11 is nearer
    assert cfg.width_for_budget(model, 3, 1, 101) == 20
    assert cfg.width_for_budget(model, 3, 1, 103) == 20  # 101 and 106: ties go down, 103 is nearer 101
    assert cfg.width_for_budget(model, 3, 1, 104) == 21


# ----------------------------------------------------------------------------- plot channels, names, report


def test_plot_channels_word_for_word():
    design = {"sweep": {"model.width": [2, 4]}, "zip": {"model.depth": [1, 2]}}
    assert _design_message({**design, "plot": {"x": "model.width", "hue": "model.width"}}) == (
        "experiments.e.plot.hue: 'model.width' is already plot.x; each varied key goes on one channel")
    assert _design_message({**design, "plot": {"hue": "model.width"}}) == (
        "experiments.e.plot.hue: 'model.width' is already plot.x (the first varied key, plot.x's default); each "
        "varied key goes on one channel")
    assert _design_message({**design, "plot": {"row": "train.lr"}}) == (
        "experiments.e.plot.row: 'train.lr' is not a varied key (varied keys: model.width, model.depth)")
    assert _design_message({"study": "lazy_training", "plot": {"x": "train.lr"}}) == (
        "experiments.e.plot.x: 'train.lr' is not a varied key (varied keys: none)")
    exp = _plan({**design, "plot": {"x": "model.depth", "hue": "model.width"}}).experiments[0]
    assert (exp.plot.x, exp.plot.hue) == ("model.depth", "model.width")
    exp = _plan({**design, "plot": {"style": "model.depth", "col": ""}}).experiments[0]
    assert (exp.plot.x, exp.plot.style, exp.plot.col) == ("model.width", "model.depth", "")


def test_two_names_with_one_slug_word_for_word(tiny_config):
    tiny_config["experiments"]["a_b"] = copy.deepcopy(_exp(tiny_config))
    tiny_config["experiments"]["a-b"] = copy.deepcopy(_exp(tiny_config))
    assert _message(tiny_config) == ("experiments: 'a_b' and 'a-b' differ only in punctuation (both read as 'a-b' "
                                     "in the report); rename one")


def test_report_refusals_word_for_word():
    assert _design_message({}, {"report": {"main": ["e", "x"]}}) == (
        "report.main[1]: no experiment 'x' in this plan (experiments: e)")
    assert _design_message({}, {"report": {"appendix": ["x"]}}) == (
        "report.appendix[0]: no experiment 'x' in this plan (experiments: e)")
    assert _design_message({}, {"report": {"appendix": ["e", "e"]}}) == "report.appendix: an experiment is listed twice"
    assert _design_message({}, {"report": {"main": ["e", "e"]}}) == "report.main: an experiment is listed twice"
    assert _design_message({}, {"report": {"main": ["e"], "appendix": ["e"]}}) == (
        "report: e listed in both main and appendix")


def test_the_report_places_every_experiment_not_in_the_appendix_in_main(tiny_config):
    for name in ("b", "c"):
        tiny_config["experiments"][name] = copy.deepcopy(_exp(tiny_config))
    tiny_config["report"] = {"appendix": ["b"], "name": "paper2", "survey": False}
    report = load_plan(tiny_config).report
    assert (report.main, report.appendix, report.name, report.survey) == (("exp", "c"), ("b",), "paper2", False)


# ----------------------------------------------------------------------------- expansion


def test_the_experiment_keeps_its_title_description_and_resolved_sections():
    exp = _plan({"title": "T", "description": "D", "seeds": [3, 1], "sweep": {"train.lr": [0.1]},
                 "model": {"width": 7}}).experiments[0]
    assert (exp.title, exp.description, exp.seeds, exp.model.width, exp.train.lr) == ("T", "D", (3, 1), 7, 0.1)
    assert exp.task.input_dim == 3 and exp.study == "sweep"


def test_the_varied_keys_list_each_value_once_in_order_of_first_occurrence():
    exp = _plan({"sweep": {"model.width": [4, 2]},
                 "cases": [{"model.depth": 3}, {"model.depth": 1, "train.lr": 0.5}, {"train.lr": 0.25}]}).experiments[0]
    base_lr = exp.train.lr
    assert exp.model.depth == 1  # the third case's depth: the same as the second's, listed once
    assert exp.sweep == (("model.width", (4, 2)), ("model.depth", (3, 1)),
                         ("train.lr", (base_lr, 0.5, 0.25)))
    assert exp.plot.x == "model.width"
    assert [dict(r.point) for r in exp.runs[:3]] == [
        {"model.width": 4, "model.depth": 3, "train.lr": base_lr},
        {"model.width": 4, "model.depth": 1, "train.lr": 0.5},
        {"model.width": 4, "model.depth": exp.model.depth, "train.lr": 0.25}]


def test_study_parameters_shape_groups_and_identities():
    """Two values of a study parameter: two groups; runs carry the parameters."""
    exp = _plan({"study": "double_descent", "task": {"name": "teacher", "input_dim": 3, "n_train": 32, "n_test": 32},
                 "sweep": {"task.label_noise": [0.0, 0.1]}}).experiments[0]
    assert len(exp.groups) == 2
    assert all(r.params == exp.params for r in exp.runs) and exp.params
    assert len({r.run_id for r in exp.runs}) == len(exp.runs)


def test_a_group_holds_every_seed_of_its_point_in_order():
    exp = _plan({"seeds": [5, 2, 9], "sweep": {"model.width": [2, 3]}}).experiments[0]
    assert [[r.seed for r in g.runs] for g in exp.groups] == [[5, 2, 9], [5, 2, 9]]
    assert [g.study for g in exp.groups] == ["sweep", "sweep"] and [g.experiment for g in exp.groups] == ["e", "e"]
    assert exp.groups[0].data_id == exp.groups[1].data_id  # the same data set: only the width differs


def test_a_study_parameter_is_part_of_the_group_and_run_identities():
    """Two values of a swept study parameter and nothing else: two groups, four distinct runs, and
    the ids they had when they were recorded (result files are named by them; a resumed plan finds
    its results by them), on one data set (data_id hashes the task alone)."""
    exp = _plan({"study": "double_descent", "seeds": [0, 1],
                 "task": {"name": "teacher", "input_dim": 3, "n_train": 32, "n_test": 32},
                 "sweep": {"params.method": ["random_features", "network"]}}).experiments[0]
    assert [g.group_id for g in exp.groups] == ["196ee358d7", "6c1247ee72"]
    assert [[r.run_id for r in g.runs] for g in exp.groups] == [["793f69ee54", "108dedda2b"],
                                                                 ["3c9e72b385", "ef36528315"]]
    assert [r.params["method"] for r in exp.runs] == ["random_features"] * 2 + ["network"] * 2


def test_a_groups_data_id_is_the_hash_of_its_task():
    import dataclasses

    exp = _plan({"sweep": {"task.label_noise": [0.0, 0.1], "model.width": [2, 3]}}).experiments[0]
    ids = [g.data_id for g in exp.groups]
    for group in exp.groups:
        assert group.data_id == cfg.stable_hash(dataclasses.asdict(group.runs[0].task))
    assert ids[0] == ids[1] != ids[2] == ids[3]  # widths share a data set; label noises do not


def test_a_budget_without_a_point_names_none():
    assert _design_message({"sweep": {}, "model": {"param_budget": 5}}) == (
        "experiments.e.model.param_budget: a budget of 5 parameters is below the smallest network's 8 (width 1, "
        "depth 1, 3 inputs, 2 outputs)")


# ----------------------------------------------------------------------------- second pass


def test_the_plan_keeps_its_top_level_settings_and_the_resolved_config():
    from mathdl.studies import STUDIES

    defaults = copy.deepcopy(STUDIES["sweep"].defaults)
    plan = load_plan({"device": "cpu", "threads": 3, "gpus_for_auto": True, "experiments": {"a": {
        "study": "sweep", "seeds": [0], "task": {"input_dim": 3, "n_train": 32, "n_test": 32}, "train": {"epochs": 1}}}})
    assert (plan.device, plan.threads, plan.gpus_for_auto) == ("cpu", 3, True)
    resolved = plan.resolved["experiments"]["a"]
    assert resolved["task"]["n_val"] == 0 and resolved["task"]["label_noise"] == 0.2  # schema and study defaults
    # no design given: the study's default sweep, and the study's defaults themselves left as they were
    assert resolved["sweep"] == defaults["sweep"] and dict(plan.experiments[0].sweep) == {
        k: tuple(v) for k, v in defaults["sweep"].items()}
    assert STUDIES["sweep"].defaults == defaults


def test_merging_leaves_the_studys_defaults_untouched():
    """The merged experiment is a copy: filling in schema defaults and budgets does not write into
    the study's defaults (which every later plan starts from)."""
    from mathdl.studies import STUDIES

    before = copy.deepcopy(STUDIES["residual"].defaults)
    load_plan({"device": "cpu", "experiments": {"r": {"study": "residual", "seeds": [0]}}})
    assert STUDIES["residual"].defaults == before


def test_an_experiment_that_is_not_a_mapping_does_not_stop_the_others_checks():
    message = _message({"device": "cpu", "experiments": {"a": 3, "b": {"seeds": [0]}}})
    assert message == f"experiments.b: missing key 'study' (one of {STUDY_NAMES})"


def test_a_value_whose_text_holds_a_colon_is_quoted_whole():
    assert _design_message({"sweep": {"train.lr": [{"a": 1}]}}) == (
        "experiments.e.sweep.train.lr[0]: {'a': 1} is not of type number")


def test_a_swept_budget_in_a_study_that_computes_its_runs_names_the_sweep():
    assert _design_message({"study": "approximation", "sweep": {"model.param_budget": [0, 100]}}) == (
        "experiments.e.sweep.model.param_budget: study approximation computes its runs itself, so no width chosen "
        "for a budget would be used; param_budget works with studies that train with the engine (sweep)")


@pytest.mark.parametrize("budget", [{"model": {"param_budget": 1}}, {"cases": [{"model.param_budget": 1}]}])
def test_a_budget_of_1_is_a_budget(budget):
    assert _design_message({**budget, "sweep": {"model.width": [2, 3]}}) == (
        "experiments.e.sweep.model.width: the width is chosen by model.param_budget; vary the budget instead, or "
        "set param_budget to 0")


def test_report_lists_are_joined_with_commas(tiny_config):
    tiny_config["experiments"] = {"a": _exp(tiny_config), "b": copy.deepcopy(_exp(tiny_config))}
    tiny_config["report"] = {"main": ["x"]}
    assert _message(copy.deepcopy(tiny_config)) == "report.main[0]: no experiment 'x' in this plan (experiments: a, b)"
    tiny_config["report"] = {"main": ["a", "b"], "appendix": ["b", "a"]}
    assert _message(tiny_config) == "report: a, b listed in both main and appendix"


def test_a_study_training_two_architectures_names_both():
    exp = {"study": "deep_double_descent", "seeds": [0], "model": {"arch": "mlp"},
           "task": {"name": "digits", "n_train": 64, "n_test": 64}}
    assert _message({"device": "cpu", "experiments": {"e": exp}}).startswith(
        "experiments.e.model.arch: study deep_double_descent trains cnn and resnet18 networks, not mlp (mlp trains in ")


def _own(own_module, design: dict) -> dict:
    return {"task": {"name": "digits", "n_train": 64, "n_test": 64},
            "model": {"arch": "module", "module": f"{own_module}:Net"}, **design}


def test_every_distinct_own_module_of_a_plan_is_built(own_module):
    """Groups differing in their module or its kwargs are each built (a bad one in a later group is
    found); one message names the key and the point."""
    assert _design_message(_own(own_module, {"sweep": {"model.kwargs": [{"hidden": 3}, {"hidden": -4}]}})) == (
        "experiments.e.model.kwargs: own_nets:Net(hidden=-4) failed: RuntimeError: Trying to create tensor with "
        "negative dimension -4: [-4, 64] (at sweep point model.kwargs={'hidden': -4})")
    assert _design_message(_own(own_module, {"cases": [{"model.kwargs": {"hidden": 3}},
                                                     {"model.module": f"{own_module}:WrongOut", "model.kwargs": {}}]})) == (
        "experiments.e.model.module: own_nets:WrongOut maps images (2, 1, 8, 8) to (2, 64); the task needs (2, 10) "
        "(at sweep point model.kwargs={}, model.module=own_nets:WrongOut)")
    exp = _own(own_module, {"sweep": {}})
    exp["model"]["module"] = f"{own_module}:WrongOut"
    assert _design_message(exp) == ("experiments.e.model.module: own_nets:WrongOut maps images (2, 1, 8, 8) to "
                                    "(2, 64); the task needs (2, 10)")


@pytest.mark.parametrize("design, at", [({"sweep": {}}, ""), ({"sweep": {"train.lr": [0.1]}}, " (at point train.lr=0.1)")])
def test_a_budget_of_an_image_network_names_its_point_if_any(design, at):
    exp = {"task": {"name": "digits", "n_train": 64, "n_test": 64}, "model": {"arch": "cnn", "param_budget": 100},
           **design}
    assert _design_message(exp) == ("experiments.e.model.param_budget: a budget of 100 parameters is below the "
                                    "smallest network's 522 (k = 1, 1x8x8 images, 10 outputs)" + at)
