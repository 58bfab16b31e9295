"""Image networks in plans: model.arch cnn, resnet18 and module validate and expand; bad
combinations are one line naming the key; a parameter budget chooses a CNN's or ResNet's k (not
an own module's); a CNN width sweep on the digits trains through pipeline.train_group (the module
engine, on the digits reshaped to 1x8x8) into a runs table whose n_params is torch's count; the
sweep's words name the CNN and its width parameter k, never hidden layers; the closed-form
costs of resources.py equal convnets.forward_costs; plans without the new keys keep their ids."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from mathdl import convnets, io, resources
from mathdl.config import ConfigError, load_plan
from mathdl.pipeline import TRAINERS
from mathdl.spec import GroupSpec, ModelConfig
from mathdl.studies import STUDIES
from helpers import train_groups, words


def _plan(model: dict | None = None, train: dict | None = None, task: dict | None = None, study: str = "sweep",
          sweep: dict | None = None):
    exp = {
        "study": study, "seeds": [0, 1],
        "task": {"name": "digits", "n_train": 64, "n_test": 64, **(task or {})},
        "model": {"arch": "cnn", **(model or {})},
        "train": {"epochs": 2, "batch_size": 32, "eval_points": 2, **(train or {})},
        "sweep": sweep or {"model.width": [1, 2]},
    }
    return {"device": "cpu", "experiments": {"exp": exp}}


def _refused(config, match: str) -> str:
    with pytest.raises(ConfigError, match=match) as info:
        load_plan(config)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message
    return message


# ----------------------------------------------------------------------------- plans


@pytest.mark.parametrize("arch", ["cnn", "resnet18"])
def test_image_architectures_validate_and_expand_one_group_per_width(arch):
    plan = load_plan(_plan({"arch": arch}, {"augment_crop": 1, "augment_flip": True}))
    exp = plan.experiment("exp")
    assert [g.model.width for g in exp.groups] == [1, 2]
    assert all(g.model.arch == arch and len(g.runs) == 2 for g in exp.groups)
    assert exp.groups[0].train.augment_crop == 1 and exp.groups[0].train.augment_flip is True
    # A group file (JSON) gives back the same spec.
    group = exp.groups[0]
    assert GroupSpec.from_dict(json.loads(json.dumps(group.to_dict()))) == group


def test_the_architecture_and_augmentation_are_part_of_the_ids():
    ids = {}
    for name, model, train in [("cnn", {"arch": "cnn"}, {}), ("resnet", {"arch": "resnet18"}, {}),
                               ("crop", {"arch": "cnn"}, {"augment_crop": 2}),
                               ("flip", {"arch": "cnn"}, {"augment_flip": True})]:
        exp = load_plan(_plan(model, train)).experiment("exp")
        ids[name] = ({g.group_id for g in exp.groups}, {r.run_id for r in exp.runs})
    groups = [v[0] for v in ids.values()]
    runs = [v[1] for v in ids.values()]
    assert all(a.isdisjoint(b) for i, a in enumerate(groups) for b in groups[i + 1:])
    assert all(a.isdisjoint(b) for i, a in enumerate(runs) for b in runs[i + 1:])


def test_keys_at_their_defaults_leave_the_ids_of_a_plan_unchanged(tiny_config):
    before = load_plan(tiny_config).experiment("exp")
    exp = tiny_config["experiments"]["exp"]
    exp["model"] = {"arch": "mlp", "module": "", "kwargs": {}}
    exp["train"].update(augment_crop=0, augment_flip=False)
    after = load_plan(tiny_config).experiment("exp")
    assert [g.group_id for g in after.groups] == [g.group_id for g in before.groups]
    assert [r.run_id for r in after.runs] == [r.run_id for r in before.runs]


def test_resmlp_is_the_residual_mlp_with_its_runs():
    base = {"device": "cpu", "experiments": {"exp": {"study": "sweep", "seeds": [0], "task": {"n_train": 16},
                                                     "train": {"epochs": 1}, "sweep": {"model.width": [4]}}}}
    residual = json.loads(json.dumps(base))
    residual["experiments"]["exp"]["model"] = {"residual": True}
    alias = json.loads(json.dumps(base))
    alias["experiments"]["exp"]["model"] = {"arch": "resmlp"}
    a, b = (load_plan(c).experiment("exp") for c in (residual, alias))
    assert b.groups[0].model.arch == "mlp" and b.groups[0].model.residual is True
    assert [r.run_id for r in a.runs] == [r.run_id for r in b.runs]


@pytest.mark.parametrize(
    "model, train, task, study, match",
    [
        ({"depth": 2}, {}, {}, "sweep", r"experiments.exp.model.depth: cnn does not use it .* leave it at 1, not 2"),
        ({"activation": "tanh"}, {}, {}, "sweep", r"model.activation: cnn does not use it"),
        ({"residual": True}, {}, {}, "sweep", r"model.residual: cnn does not use it"),
        ({"init": "he"}, {}, {}, "sweep", r"model.init: cnn does not use it"),
        ({"output_scale": 2.0}, {}, {}, "sweep", r"model.output_scale: cnn does not use it"),
        ({"arch": "resnet18", "module": "x:Y"}, {}, {}, "sweep", r"model.module: only for model.arch module \(arch is resnet18\)"),
        ({"kwargs": {"a": 1}}, {}, {}, "sweep", r"model.kwargs: only for model.arch module"),
        ({"arch": "mlp"}, {"augment_crop": 2}, {}, "sweep", r"train.augment_crop: augmentation is for image networks"),
        ({"arch": "mlp"}, {"augment_flip": True}, {}, "sweep", r"train.augment_flip: augmentation is for image networks"),
        ({"arch": "mlp"}, {"mixed_precision": True}, {}, "sweep", r"^experiments.exp.train.mixed_precision: bfloat16 "
         r"autocast is for image networks \(model.arch cnn, resnet18 or module\); mlp trains in its dtype \(float32\) "
         r"\(at sweep point model.width=1\)$"),
        ({}, {"mixed_precision": True, "dtype": "float64"}, {}, "sweep", r"^experiments.exp.train.mixed_precision: it "
         r"keeps float32 parameters under bfloat16 autocast; set train.dtype to float32, not float64 \(at sweep point "
         r"model.width=1\)$"),
        ({}, {}, {"name": "teacher"}, "sweep", r"model.arch: cnn needs an image data set .* not teacher"),
        ({}, {}, {}, "overfitting", r"model.arch: study overfitting trains mlp networks, not cnn \(cnn trains in "
                                    r"deep_double_descent, sweep\)"),
        ({"arch": "module"}, {}, {}, "sweep", r"model.module: arch module needs the class to train"),
        ({"arch": "cnn2"}, {}, {}, "sweep", r"model.arch: 'cnn2' is not one of 'mlp', 'resmlp', 'cnn'"),
    ],
)
def test_bad_architecture_plans_are_one_line_naming_the_key(model, train, task, study, match):
    sweep = {"model.width": [1, 2]} if study == "sweep" else None
    config = _plan(model, train, task, study, sweep)
    if sweep is None:
        del config["experiments"]["exp"]["sweep"]
    _refused(config, match)


def test_a_budget_of_an_image_network_on_a_task_without_images_names_the_data_set():
    _refused(_plan({"param_budget": 5000}, task={"name": "teacher"}, sweep={"train.lr": [0.1]}),
             r"^experiments.exp.model.arch: cnn needs an image data set .* not teacher")


def test_a_budget_below_the_smallest_image_network_is_refused():
    # cnn at k = 1 on 1x8x8 digits: convolutions 1->1->2->4->8 with biases (10, 20, 76, 296), their
    # batch norms (2, 4, 8, 16) and the read-out 8 -> 10 (90): 522 parameters.
    assert _refused(_plan({"param_budget": 521}, sweep={"train.lr": [0.1]}), "^experiments") == (
        "experiments.exp.model.param_budget: a budget of 521 parameters is below the smallest network's 522 "
        "(k = 1, 1x8x8 images, 10 outputs) (at point train.lr=0.1)")
    load_plan(_plan({"param_budget": 522}, sweep={"train.lr": [0.1]}))


def test_a_budget_of_an_own_module_is_refused_word_for_word(own_module):
    model = {"arch": "module", "module": f"{own_module}:Net"}
    assert _refused(_plan({**model, "param_budget": 5000}, sweep={"train.lr": [0.1]}), "^experiments") == (
        "experiments.exp.model.param_budget: arch module has no width for a budget to choose (its class and kwargs "
        "set its size); set param_budget to 0 (at point train.lr=0.1)")
    assert _refused(_plan(model, sweep={"model.param_budget": [0, 100]}), "^experiments") == (
        "experiments.exp.sweep.model.param_budget: arch module has no width for a budget to choose (its class and "
        "kwargs set its size); set param_budget to 0 (at point model.param_budget=100)")


def test_a_budget_chosen_k_trains_and_its_count_is_in_the_runs_table(tmp_path):
    exp = load_plan(_plan({"param_budget": 5000}, sweep={"train.lr": [0.1]})).experiment("exp")
    (group,) = exp.groups
    k = group.model.width
    with torch.random.fork_rng(devices=[]):
        count = sum(p.numel() for p in convnets.build(convnets.Network("cnn", k), (1, 8, 8), 10).parameters())
    assert k == 3 and count == 3814  # P(2) = 1,790 and P(4) = 6,594 are farther from 5,000
    (paths,) = train_groups([group], tmp_path)
    runs = io.read_table(paths[1])
    assert runs["n_params"].tolist() == [count, count]
    assert runs["model.width"].tolist() == [k, k] and runs["model.param_budget"].tolist() == [5000, 5000]


def test_mathdl_plan_prints_the_k_a_budget_chose_and_its_count(tmp_path, capsys):
    import yaml

    from mathdl import cli

    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(_plan({"arch": "resnet18"}, sweep={"model.param_budget": [3000, 20000]})))
    assert cli.main(["plan", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    for group in load_plan(path).experiment("exp").groups:
        (line,) = [x for x in lines if group.group_id in x]
        k = group.model.width
        with torch.random.fork_rng(devices=[]):
            net = convnets.build(convnets.Network("resnet18", k), (1, 8, 8), 10)
        assert line.endswith(f"; width parameter k {k} ({sum(p.numel() for p in net.parameters()):,} parameters)")


def test_a_swept_architecture_key_is_refused_at_its_point():
    _refused(_plan(sweep={"model.depth": [1, 3]}), r"model.depth: cnn does not use it .* \(at sweep point model.depth=3\)")


def test_only_sweep_and_deep_double_descent_train_image_networks():
    assert STUDIES["sweep"].model_archs == ("mlp", "cnn", "resnet18", "module")
    assert STUDIES["deep_double_descent"].model_archs == ("cnn", "resnet18")
    others = [s for name, s in STUDIES.items() if name not in ("sweep", "deep_double_descent")]
    assert others and all(s.model_archs == ("mlp",) for s in others)


# ----------------------------------------------------------------------------- the group's own module
# (the own_module fixture: conftest.py)


def test_a_group_s_own_module_is_built_at_load_without_touching_the_random_state(own_module):
    torch.manual_seed(3)
    state = torch.random.get_rng_state()
    plan = load_plan(_plan({"arch": "module", "module": f"{own_module}:Net", "kwargs": {"hidden": 5}},
                           sweep={"train.lr": [0.1]}))
    assert torch.equal(torch.random.get_rng_state(), state)
    group = plan.experiment("exp").groups[0]
    assert group.model.kwargs == (("hidden", 5),)


@pytest.mark.parametrize(
    "target, kwargs, match",
    [
        ("no_such_package.nets:Net", {}, r"experiments.exp.model.module: cannot import 'no_such_package.nets'"),
        ("{m}:Missing", {}, r"experiments.exp.model.module: module 'own_nets' has no 'Missing'"),
        ("{m}:NotAModule", {}, r"experiments.exp.model.module: own_nets:NotAModule is not a torch.nn.Module subclass"),
        ("{m}", {}, r"experiments.exp.model.module: 'own_nets' is not of the form 'package.module:Class'"),
        ("{m}:Net", {"widht": 3}, r"experiments.exp.model.kwargs: own_nets:Net\(widht=3\) failed: TypeError"),
        ("{m}:Fails", {}, r"experiments.exp.model.kwargs: own_nets:Fails\(\) failed: RuntimeError: no"),
        ("{m}:WrongOut", {}, r"experiments.exp.model.module: own_nets:WrongOut maps images \(2, 1, 8, 8\) to \(2, 64\)"),
    ],
)
def test_a_bad_own_module_is_one_line_at_load(own_module, target, kwargs, match):
    _refused(_plan({"arch": "module", "module": target.format(m=own_module), "kwargs": kwargs},
                   sweep={"train.lr": [0.1]}), match)


def test_an_own_module_with_train_dropout_is_refused(own_module):
    _refused(_plan({"arch": "module", "module": f"{own_module}:Net"}, {"dropout": 0.1}, sweep={"train.lr": [0.1]}),
             r"experiments.exp.train.dropout: a group's own module places its own dropout layers")


# ----------------------------------------------------------------------------- resources


@pytest.mark.parametrize("arch", ["cnn", "resnet18"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("k", [1, 3, 16])
def test_closed_form_costs_equal_the_counts_of_the_built_network(arch, shape, k):
    model = ModelConfig(1, k, "relu", False, 1.0, "pytorch", 1.0, arch=arch)
    with torch.random.fork_rng(devices=[]):
        counted = convnets.forward_costs(convnets.build(convnets.Network(arch, k), shape, 10), shape)
    closed = resources.image_network_costs(model, shape, 10)
    assert (closed.parameters, closed.activations, closed.macs) == (counted.parameters, counted.activations, counted.macs)


def test_resnet18_at_64_has_its_published_size_and_a_module_is_sized_as_it():
    model = ModelConfig(1, 64, "relu", False, 1.0, "pytorch", 1.0, arch="resnet18")
    assert resources.image_network_costs(model, (3, 32, 32), 10).parameters == 11_171_146
    own = dataclasses.replace(model, arch="module", width=1, module="x:Y")
    assert resources.image_network_costs(own, (3, 32, 32), 10).parameters == 11_171_146


def test_job_resources_of_image_networks_grow_with_the_width():
    small, large = (load_plan(_plan({"arch": "resnet18"}, task={"n_train": 1000}, sweep={"model.width": [w]}))
                    .experiment("exp").groups[0] for w in (2, 32))
    assert resources.Networks.of_group(small).image_shape == (1, 8, 8)
    assert resources.parameter_count(large) > 100 * resources.parameter_count(small)
    assert resources.runtime_minutes(large, "cpu") > resources.runtime_minutes(small, "cpu")
    assert resources.mem_mb(large, "cpu") > resources.mem_mb(small, "cpu")


# ----------------------------------------------------------------------------- training


def test_dispatch_sends_image_networks_to_the_module_engine():
    assert TRAINERS["mlp"] is not TRAINERS["cnn"]
    assert TRAINERS["cnn"] is TRAINERS["resnet18"] is TRAINERS["module"]


@pytest.fixture(scope="module")
def trained_cnn_sweep(tmp_path_factory):
    """A tiny CNN width sweep on the digits, trained group by group as the workflow's jobs do."""
    exp = load_plan(_plan(train={"augment_flip": True})).experiment("exp")
    return exp, list(zip(exp.groups, train_groups(exp.groups, tmp_path_factory.mktemp("cnn_sweep"))))


def test_a_cnn_sweep_trains_through_train_group_with_torch_s_parameter_count(trained_cnn_sweep):
    exp, outputs = trained_cnn_sweep
    for group, (metrics_path, runs_path, _) in outputs:
        runs = io.read_table(runs_path)
        with torch.random.fork_rng(devices=[]):
            net = convnets.build(convnets.Network("cnn", group.model.width), (1, 8, 8), 10)
        assert set(runs["n_params"]) == {sum(p.numel() for p in net.parameters())}
        assert set(runs["model.arch"]) == {"cnn"} and set(runs["train.augment_flip"]) == {True}
        assert set(runs["run_id"]) == {r.run_id for r in group.runs}
        metrics = io.read_table(metrics_path)
        test_error = metrics[(metrics["split"] == "test") & (metrics["metric"] == "error")]
        assert test_error["value"].between(0, 1).all() and test_error["epoch"].max() == 2


def test_the_sweep_s_words_name_the_cnn_and_no_hidden_layers(trained_cnn_sweep):
    from mathdl.pipeline import collect
    from mathdl.studies import sweep

    exp, outputs = trained_cnn_sweep
    tables = collect([paths[0] for _, paths in outputs], [paths[1] for _, paths in outputs])
    summary = json.loads(json.dumps(sweep.analyze(tables, exp), allow_nan=False))
    section, _ = words(exp, summary, flat=True)
    assert r"of the standard convolutional family of \citet{nakkiran2020deep}" in section
    assert "hidden layer" not in section and "ReLU activations" not in section
    assert r"sweeping width parameter $k$ over \num{1} and \num{2}" in section


def test_mixed_precision_is_part_of_a_runs_identity_only_when_on():
    plain, off, on = (load_plan(_plan(train=t)).experiment("exp") for t in
                      ({}, {"mixed_precision": False}, {"mixed_precision": True}))
    assert [r.run_id for r in plain.runs] == [r.run_id for r in off.runs]  # plans of before keep their ids
    assert not {r.run_id for r in on.runs} & {r.run_id for r in plain.runs}
    assert not {g.group_id for g in on.groups} & {g.group_id for g in plain.groups}  # trained as a group of its own
    assert all(r.train.mixed_precision for r in on.runs)
