"""The plan: validation with one-line errors naming the key, defaults, sweep expansion."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from mathdl import config as cfg
from mathdl.config import ConfigError, load_plan
from mathdl.tasks import real


def test_defaults_are_filled_and_study_defaults_apply(tiny_config):
    plan = load_plan(tiny_config)
    exp = plan.experiment("exp")
    assert plan.project.course == "Mathematics of Deep Learning"
    assert exp.task.label_noise == 0.2  # from the sweep study's defaults
    assert exp.task.input_dim == 3  # the config wins over the study
    assert exp.title == "exp"
    assert plan.plot.style == "whitegrid"


def test_sweep_is_cartesian_product_times_seeds(tiny_config):
    exp = load_plan(tiny_config).experiment("exp")
    assert len(exp.runs) == 2 * 2 * 2
    points = {(r.model.width, r.train.lr, r.seed) for r in exp.runs}
    assert len(points) == 8


def test_groups_share_shape_and_vary_only_per_run_keys(tiny_config):
    exp = load_plan(tiny_config).experiment("exp")
    # lr is a per-run hyperparameter: the two lrs of one width train in one group
    assert len(exp.groups) == 2
    for group in exp.groups:
        assert len({r.model for r in group.runs}) == 1
        assert {r.train.lr for r in group.runs} == {0.1, 0.01}


def test_run_ids_are_stable_and_distinct(tiny_config):
    a = load_plan(tiny_config).experiment("exp")
    b = load_plan(tiny_config).experiment("exp")
    assert [r.run_id for r in a.runs] == [r.run_id for r in b.runs]
    assert len({r.run_id for r in a.runs}) == len(a.runs)


def test_changing_one_sweep_value_keeps_other_groups(tiny_config):
    before = {g.group_id for g in load_plan(tiny_config).experiment("exp").groups}
    tiny_config["experiments"]["exp"]["sweep"]["model.width"] = [2, 8]
    after = {g.group_id for g in load_plan(tiny_config).experiment("exp").groups}
    assert len(before & after) == 1


def test_group_spec_round_trips_through_a_dict(tiny_config):
    group = load_plan(tiny_config).experiment("exp").groups[0]
    assert cfg.GroupSpec.from_dict(group.to_dict()) == group


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda c: c["experiments"]["exp"].update(model={"widht": 3}), "experiments.exp.model: unknown key 'widht' (did you mean 'width'?)"),
        (lambda c: c.update(devcie="cpu"), "(top level): unknown key 'devcie' (did you mean 'device'?)"),
        (lambda c: c["experiments"]["exp"].update(model={"width": -4}), "experiments.exp.model.width: -4 is less than the minimum of 1"),
        (lambda c: c["experiments"]["exp"]["sweep"].update({"model.width": []}), "experiments.exp.sweep.model.width: must not be empty"),
        (lambda c: c["experiments"]["exp"]["sweep"].update({"model.width": [2, -1]}), "experiments.exp.sweep.model.width[1]: -1 is less than the minimum of 1"),
        (lambda c: c["experiments"]["exp"]["sweep"].update({"model.widht": [2]}), "'model.widht' is not a key of model (did you mean model.width?)"),
        (lambda c: c["experiments"]["exp"]["train"].update(lr="fast"), "experiments.exp.train.lr: 'fast' is not of type number"),
        (lambda c: c["experiments"]["exp"].update(study="nope"), "experiments.exp.study: unknown study 'nope'"),
        (lambda c: c.update(device="tpu"), "device: 'tpu' is not one of 'auto', 'cpu', 'cuda'"),
        (lambda c: c.update(experiments={}), "experiments: must hold at least one entry"),
        (lambda c: c["experiments"]["exp"].update(seeds=[]), "experiments.exp.seeds: must not be empty"),
        (lambda c: c["experiments"]["exp"].update(plot={"x": "model.depth"}), "experiments.exp.plot.x: 'model.depth' is not a varied key"),
        (lambda c: c["experiments"].update({"bad/name": {"study": "sweep"}}), "experiments: 'bad/name' is not a valid name"),
    ],
)
def test_bad_config_gives_one_line_naming_the_key(tiny_config, mutate, expected):
    mutate(tiny_config)
    with pytest.raises(ConfigError) as info:
        load_plan(tiny_config)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_yaml_file_errors_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_plan(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiments: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_plan(bad)


def test_shipped_configs_are_valid(root, tmp_path, monkeypatch):
    paths = sorted((root / "config").glob("*.yaml")) + sorted((root / "config" / "examples").glob("*.yaml"))
    assert len(paths) >= 6  # the four plans and at least two examples
    # A plan on CIFAR-10 is checked as it loads where the data set's files are (data/cifar10 of
    # the working directory; empty files: loading a plan checks that they exist, not what they hold).
    (tmp_path / "data" / "cifar10").mkdir(parents=True)
    for name in [*real.CIFAR_TRAIN, real.CIFAR_TEST]:
        (tmp_path / "data" / "cifar10" / name).touch()
    monkeypatch.chdir(tmp_path)
    for path in paths:
        plan = load_plan(path)
        assert plan.experiments, path


def test_the_cifar10_plan_is_nakkirans_sweep_and_is_refused_without_its_files(root, tmp_path, monkeypatch):
    path = root / "config" / "examples" / "cifar10_deep_double_descent.yaml"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"task.path: cifar10 needs data_batch_1, .*, test_batch in data/cifar10/"):
        load_plan(path)
    (tmp_path / "data" / "cifar10").mkdir(parents=True)
    for name in [*real.CIFAR_TRAIN, real.CIFAR_TEST]:
        (tmp_path / "data" / "cifar10" / name).touch()
    (exp,) = load_plan(path).experiments
    assert dict(exp.sweep) == {"model.width": (1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 56, 64),
                               "task.label_noise": (0.0, 0.1, 0.2)}
    run = exp.groups[0].runs[0]
    assert (run.task.name, run.task.n_train, run.task.n_test, run.model.arch) == ("cifar10", 50000, 10000, "cnn")
    assert (run.train.optimizer, run.train.lr, run.train.batch_size, run.train.epochs) == ("adam", 1e-4, 128, 4000)
    assert (run.train.augment_crop, run.train.augment_flip) == (4, True)
    assert len(exp.groups) == 48 and all(len(g.runs) == 3 for g in exp.groups)  # the comment's counts


def test_schema_documents_every_key_with_a_default(root):
    schema = yaml.safe_load((root / "workflow" / "schemas" / "config.schema.yaml").read_text())

    def walk(node, where):
        for key, sub in node.get("properties", {}).items():
            if "$ref" in sub:  # described where it is defined, under $defs
                continue
            assert "description" in sub, f"{where}.{key} has no description"
            if key not in node.get("required", []):
                assert "default" in sub, f"{where}.{key} has no default"
            walk(sub, f"{where}.{key}")

    walk(schema, "")
    for name, sub in schema["$defs"].items():
        walk(sub, f"$defs.{name}")


def test_dataclasses_match_schema_sections():
    schema = cfg.load_schema()
    pairs = {"task": cfg.TaskConfig, "model": cfg.ModelConfig, "train": cfg.TrainConfig}
    for section, cls in pairs.items():
        assert {f.name for f in dataclasses.fields(cls)} == set(schema["$defs"][section]["properties"]), section
    assert {f.name for f in dataclasses.fields(cfg.PlotConfig)} == set(schema["properties"]["plot"]["properties"])


def test_schema_study_names_match_the_registry():
    from mathdl.studies import STUDIES

    assert set(cfg.load_schema()["$defs"]["experiment"]["properties"]["study"]["enum"]) == set(STUDIES)


def test_config_readme_documents_every_key(root):
    text = (root / "config" / "README.md").read_text()
    schema = cfg.load_schema()
    keys = set(schema["properties"]) | set(schema["properties"]["plot"]["properties"])
    for section in ("experiment", "task", "model", "train"):
        keys |= set(schema["$defs"][section]["properties"])
    missing = sorted(k for k in keys if f"`{k}`" not in text)
    assert not missing, f"config/README.md does not document {missing}"


def test_study_params_are_validated_filled_and_sweepable(monkeypatch, tiny_config):
    from mathdl.studies import STUDIES, Study, sweep

    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"kappa": {"description": "condition number", "type": "number", "minimum": 1, "default": 10}},
    }
    monkeypatch.setitem(STUDIES, "toy", Study("toy", {}, sweep.analyze, sweep.figures, params_schema=schema))
    study_enum = cfg.load_schema()["$defs"]["experiment"]["properties"]["study"]
    monkeypatch.setitem(study_enum, "enum", [*study_enum["enum"], "toy"])

    tiny_config["experiments"]["exp"] = {"study": "toy", "seeds": [0], "sweep": {"params.kappa": [1, 100]}}
    exp = load_plan(tiny_config).experiment("exp")
    assert sorted(r.params["kappa"] for r in exp.runs) == [1, 100]
    assert len(exp.groups) == 2 and exp.params == {"kappa": 10}
    group = exp.groups[0]
    assert cfg.GroupSpec.from_dict(group.to_dict()) == group

    tiny_config["experiments"]["exp"] = {"study": "toy", "params": {"kapa": 3}}
    with pytest.raises(ConfigError, match=r"experiments.exp.params: unknown key 'kapa' \(did you mean 'kappa'\?\)"):
        load_plan(tiny_config)
    tiny_config["experiments"]["exp"] = {"study": "toy", "params": {"kappa": 0.5}}
    with pytest.raises(ConfigError, match="experiments.exp.params.kappa: 0.5 is less than the minimum of 1"):
        load_plan(tiny_config)
    tiny_config["experiments"]["exp"] = {"study": "toy", "sweep": {"params.kappa": [0]}}
    with pytest.raises(ConfigError, match=r"experiments.exp.sweep.params.kappa\[0\]: 0 is less than the minimum of 1"):
        load_plan(tiny_config)
    tiny_config["experiments"]["exp"] = {"study": "sweep", "params": {"kappa": 3}}
    with pytest.raises(ConfigError, match="experiments.exp.params: unknown key 'kappa'"):
        load_plan(tiny_config)


def test_loading_a_plan_does_not_import_torch():
    """Every Snakemake parse loads the plan (all study modules); torch would cost ~1 s each time."""
    import subprocess
    import sys

    code = "import sys, mathdl.config as c; c.load_plan('config/config.yaml'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False"


def test_study_enum_of_the_schema_is_the_study_folders():
    """Adding a study is adding a folder: the schema's enum (documented) lists exactly the folders."""
    from mathdl.studies import STUDIES

    raw = yaml.safe_load(cfg.schema_path().read_text())
    assert sorted(raw["$defs"]["experiment"]["properties"]["study"]["enum"]) == sorted(STUDIES)


def test_two_experiment_names_with_one_slug_are_refused(tiny_config):
    exp = tiny_config["experiments"]["exp"]
    tiny_config["experiments"] = {"a_b": exp, "a-b": exp}
    with pytest.raises(ConfigError, match="'a_b' and 'a-b' differ only in punctuation"):
        load_plan(tiny_config)


def test_report_section_places_experiments(tiny_config):
    exp = tiny_config["experiments"]["exp"]
    tiny_config["experiments"] = {"a": exp, "b": exp, "c": exp}
    assert load_plan(tiny_config).report.main == ("a", "b", "c")
    tiny_config["report"] = {"appendix": ["b"]}
    plan = load_plan(tiny_config)
    assert plan.report.main == ("a", "c") and plan.report.appendix == ("b",)
    tiny_config["report"] = {"main": ["c"], "appendix": ["a"]}
    plan = load_plan(tiny_config)
    assert plan.report.main == ("c",) and plan.report.appendix == ("a",)
    for bad, message in [({"main": ["zz"]}, r"report.main\[0\]: no experiment 'zz'"),
                         ({"main": ["a"], "appendix": ["a"]}, "listed in both"),
                         ({"appendix": ["a", "a"]}, "listed twice")]:
        tiny_config["report"] = bad
        with pytest.raises(ConfigError, match=message):
            load_plan(tiny_config)


def test_readme_study_table_lists_the_study_folders(root):
    """README's table of studies is checked against the folders (adding a study is adding a folder)."""
    import re

    from mathdl.studies import STUDIES

    text = (root / "README.md").read_text()
    table = text[text.index("| study | what it shows |"):].split("\n\n", 1)[0]
    listed = re.findall(r"^\| `([a-z_]+)` \|", table, re.M)
    assert sorted(listed) == sorted(STUDIES)
