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

STUDY_NAMES = ("approximation, curse, depth_separation, double_descent, lazy_training, optimizers, overfitting, "
               "random_labels, regularization, representation, residual, sgd_linear, sweep")
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
         "valid keys: "),
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
    assert message.startswith(expected) if expected.endswith("valid keys: ") else message == expected, message


def test_a_long_schema_message_is_cut_at_160_characters(tiny_config):
    _exp(tiny_config)["seeds"] = list(range(60)) + [0]
    message = _message(tiny_config)
    assert message.startswith("experiments.exp.seeds: [0, 1, 2, ")
    assert message.endswith("...") and len(message) == len("experiments.exp.seeds: ") + 163


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
