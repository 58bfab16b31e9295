"""Nothing bad gets in: impossible plans are refused at load with one line naming the key.

Also a seeded fuzz test (mutations of a small valid plan, its designs included: each accepted
and valid, or refused with a one-line ConfigError, never another exception), the safe CIFAR-10 reader, file modes and
strict JSON of the results.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import random
import stat

import numpy as np
import pytest

from mathdl import io
from mathdl.config import ConfigError, load_plan, read_config_file


def _refused(config, match: str) -> str:
    with pytest.raises(ConfigError, match=match) as info:
        load_plan(config)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400
    return message


@pytest.mark.parametrize(
    "section, key, value, match",
    [
        ("train", "lr", float("nan"), r"experiments.exp.train.lr: nan is not a finite number"),
        ("train", "lr", float("inf"), r"experiments.exp.train.lr: inf is not a finite number"),
        ("task", "label_noise", 1.5, r"task.label_noise: 1.5 is a fraction of the labels, at most 1"),
        ("task", "n_classes", 1, r"task.n_classes: a classification task needs at least 2 classes"),
        ("train", "early_stopping", True, r"train.early_stopping: it selects on the validation split; set task.n_val > 0"),
        ("task", "n_train", 10**12, r"experiments.exp: one training job .* needs at least [\d,]+ MB"),
        ("model", "width", 10**5, r"experiments.exp: one training job .* needs at least [\d,]+ MB"),
    ],
)
def test_impossible_values_are_refused_at_load(tiny_config, section, key, value, match):
    tiny_config["experiments"]["exp"].setdefault(section, {})[key] = value
    if key == "width":
        tiny_config["experiments"]["exp"]["model"]["depth"] = 3
        tiny_config["experiments"]["exp"]["sweep"] = {"train.lr": [0.1]}
    _refused(tiny_config, match)


def test_a_loss_for_classes_on_a_regression_task_is_refused(tiny_config):
    tiny_config["experiments"]["exp"]["task"]["kind"] = "regression"
    tiny_config["experiments"]["exp"]["train"]["loss"] = "hinge"
    _refused(tiny_config, r"train.loss: hinge needs a classification task; task.kind is regression")


def test_integers_written_as_floats_are_refused_with_the_integer_to_write(tiny_config):
    # JSON Schema counts 4.0 as an integer: a width of 4.0 failed inside the parameter count, and a
    # sweep over [2, 2.0] trained the same network twice under two ids.
    tiny_config["experiments"]["exp"]["model"] = {"width": 4.0}
    _refused(tiny_config, r"^experiments.exp.model.width: 4.0 is not an integer \(write 4\)$")
    tiny_config["experiments"]["exp"]["model"] = {}
    tiny_config["experiments"]["exp"]["sweep"] = {"model.width": [2, 2.0]}
    _refused(tiny_config, r"^experiments.exp.sweep.model.width\[1\]: 2.0 is not an integer \(write 2\)$")


def test_a_refused_sweep_value_names_its_point(tiny_config):
    tiny_config["experiments"]["exp"]["sweep"] = {"task.label_noise": [0.1, 2.0]}
    _refused(tiny_config, r"label_noise: 2.0 is a fraction .* \(at sweep point task.label_noise=2.0\)")


def test_huge_seeds_and_unknown_palettes_are_refused(tiny_config):
    tiny_config["experiments"]["exp"]["seeds"] = [2**70]
    _refused(tiny_config, r"seeds\[0\]")
    tiny_config["experiments"]["exp"]["seeds"] = [0]
    tiny_config["plot"] = {"palette": "no_such_palette"}
    _refused(tiny_config, r"plot.palette: unknown palette 'no_such_palette'")
    tiny_config["plot"] = {"palette": "rocket"}
    load_plan(tiny_config)


@pytest.mark.parametrize(
    "name, match",
    [
        ("x" * 300, "longer than 64 characters"),
        ("evil\n", "is not a valid name"),
        ("-dash", "is not a valid name"),
    ],
)
def test_bad_experiment_names_are_refused(tiny_config, name, match):
    tiny_config["experiments"] = {name: tiny_config["experiments"]["exp"]}
    message = _refused(tiny_config, match)
    assert "x" * 60 not in message  # a long value is quoted by a short prefix only


def test_a_title_with_a_blank_line_is_refused(tiny_config):
    tiny_config["project"] = {"title": "A\n\nB"}
    _refused(tiny_config, r"project.title: must be one line")


def _write(tmp_path, text: str | bytes):
    path = tmp_path / "plan.yaml"
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return path


PLAN = """experiments:
  exp:
    study: sweep
    seeds: [0]
    task: {input_dim: 3, n_train: 16, n_test: 16}
    train: {epochs: 2, lr: 1e-3}
    sweep: {model.width: [2]}
"""


def test_yaml_as_a_plan_author_means_it(tmp_path):
    assert read_config_file(_write(tmp_path, PLAN))["experiments"]["exp"]["train"]["lr"] == 1e-3
    assert load_plan(_write(tmp_path, PLAN)).experiment("exp").train.lr == 1e-3
    with pytest.raises(ConfigError, match=r"line 8: duplicate key 'train' \(first on line 6\)"):
        read_config_file(_write(tmp_path, PLAN + "    train: {lr: 100}\n"))
    with pytest.raises(ConfigError, match=r"line 6: duplicate key 'lr'"):
        read_config_file(_write(tmp_path, PLAN.replace("lr: 1e-3", "lr: 1e-3, lr: 100")))
    with pytest.raises(ConfigError, match="the plan is empty"):
        read_config_file(_write(tmp_path, "# nothing\n"))
    with pytest.raises(ConfigError, match="not a text file"):
        read_config_file(_write(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe"))
    with pytest.raises(ConfigError, match=r"key 123 is not a name; quote it"):
        load_plan(_write(tmp_path, PLAN.replace("  exp:", "  123:")))


def test_duplicate_experiments_are_refused(tmp_path):
    text = PLAN + PLAN.split("\n", 1)[1]
    with pytest.raises(ConfigError, match=r"line 8: duplicate key 'exp' \(first on line 2\)"):
        read_config_file(_write(tmp_path, text))


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    with pytest.raises(ConfigError, match="YAML aliases") as info:
        read_config_file(_write(tmp_path, "\n".join(lines) + "\n"))
    assert len(str(info.value)) < 200


# ----------------------------------------------------------------------------- fuzz

_BAD_VALUES = [None, -1, 0, 0.5, 1.5, 10**9, 2**70, float("nan"), float("inf"), "", "x" * 200, "1e-3", [], [1, "a"],
               {}, {"a": 1}, True, "relu", "evil\nname", "cnn", "module", "os:path"]
_KEYS = {
    "task": ["name", "kind", "input_dim", "n_classes", "n_train", "n_val", "n_test", "label_noise", "seed", "bogus"],
    "model": ["depth", "width", "activation", "residual", "init", "output_scale", "param_budget", "widht",
              "arch", "module", "kwargs"],
    "train": ["loss", "optimizer", "lr", "momentum", "weight_decay", "dropout", "batch_size", "epochs",
              "early_stopping", "patience", "eval_points", "lr_schedule", "lrr", "augment_crop", "augment_flip"],
}


def _mutations(base: dict, n: int, seed: int = 0):
    rng = random.Random(seed)
    for _ in range(n):
        config = copy.deepcopy(base)
        exp = config["experiments"]["exp"]
        kind = rng.randrange(8)
        if kind <= 2:  # a value of a section
            section = rng.choice(list(_KEYS))
            exp.setdefault(section, {})[rng.choice(_KEYS[section])] = rng.choice(_BAD_VALUES)
        elif kind == 3:  # a sweep
            key = f"{rng.choice(list(_KEYS))}.{rng.choice(_KEYS['model'] + _KEYS['train'])}"
            exp["sweep"] = {key: rng.choice([[rng.choice(_BAD_VALUES)], [1, 1], [], "x"])}
        elif kind == 6:  # a zip: lists of maybe unequal lengths, maybe a key also swept
            if rng.random() < 0.5:
                del exp["sweep"]
            keys = rng.sample(["model.depth", "model.width", "model.param_budget", "train.lr", "task.bogus"], 2)
            exp["zip"] = {k: rng.choice([[1, 2], [2, 3, 4], [rng.choice(_BAD_VALUES)], [], [1, 1]]) for k in keys}
        elif kind == 7:  # cases: points, maybe empty, repeated, or with bad values
            if rng.random() < 0.5:
                del exp["sweep"]
            key = rng.choice(["model.depth", "model.width", "model.param_budget", "train.lr", "train.bogus"])
            exp["cases"] = rng.choice([[], [{}], [{key: 2}, {key: 2}], [{key: 3}, {key: rng.choice(_BAD_VALUES)}],
                                       [{key: 1000}, {"model.depth": 2}], "x"])
        elif kind == 4:  # a name
            name = rng.choice(["a b", "", "x" * 80, "ok_name", "a%b", "é", "a\n", 7, "a-b"])
            config["experiments"] = {name: exp}
        else:  # top level
            config[rng.choice(["device", "threads", "plot", "project", "report", "max_mem_mb", "bogus"])] = rng.choice(_BAD_VALUES)
        yield config


def test_fuzzed_plans_are_valid_or_refused_with_one_line(tiny_config):
    tiny_config["experiments"]["exp"]["train"]["epochs"] = 2
    accepted = refused = 0
    for config in _mutations(tiny_config, 250):
        try:
            plan = load_plan(config)
        except ConfigError as err:
            message = str(err)
            assert message and "\n" not in message and len(message) < 600, message
            refused += 1
        else:
            assert plan.experiments and all(e.runs for e in plan.experiments)
            accepted += 1
    assert refused > 50 and accepted > 5, (accepted, refused)


# ----------------------------------------------------------------------------- files


def test_a_crafted_cifar_batch_runs_nothing(tmp_path):
    from mathdl.tasks.real import read_cifar_batch

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(tmp_path / "data_batch_1", "wb") as fh:
        pickle.dump({b"data": Evil(), b"labels": [1]}, fh)
    with pytest.raises(ConfigError, match=r"not a CIFAR-10 Python batch \(it names posix.system"):
        read_cifar_batch(tmp_path / "data_batch_1")
    assert not marker.exists()
    with open(tmp_path / "ok", "wb") as fh:  # NumPy arrays, as the real batches hold them
        pickle.dump({b"data": np.arange(6, dtype=np.uint8).reshape(2, 3), b"labels": [3, 4]}, fh, protocol=5)
    x, y = read_cifar_batch(tmp_path / "ok")
    assert x.tolist() == [[0, 1, 2], [3, 4, 5]] and y.tolist() == [3, 4]


def test_results_follow_the_umask_and_json_is_strict(tmp_path):
    old = os.umask(0o022)
    try:
        io.write_json({"a": float("nan"), "b": [np.float32(0.5), float("-inf")], "c": np.array([1, 2])}, tmp_path / "s.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "s.json").stat().st_mode) == 0o644
    text = (tmp_path / "s.json").read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}")) == {
        "a": None, "b": [0.5, None], "c": [1, 2]}
