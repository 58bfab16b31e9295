"""Designs beyond the grid: zip, cases and model.param_budget expand to the right runs, bad
designs are refused at load with one line naming the key, and plot channels name varied keys."""

from __future__ import annotations

import copy

import pytest

from mathdl import config as cfg
from mathdl.config import ConfigError, load_plan

DIGITS = {"name": "digits", "n_train": 60, "n_val": 30, "n_test": 60}


def _plan(exp: dict, seeds=(0, 1)) -> cfg.Experiment:
    base = {"study": "sweep", "seeds": list(seeds), "task": {"input_dim": 3, "n_train": 32, "n_test": 32},
            "train": {"epochs": 2, "batch_size": 8}}
    return load_plan({"device": "cpu", "experiments": {"e": {**base, **exp}}}).experiment("e")


def _points(exp: cfg.Experiment) -> list[dict]:
    """Each distinct point once, in the order of the runs."""
    seen = []
    for r in exp.runs:
        if dict(r.point) not in seen:
            seen.append(dict(r.point))
    return seen


# ----------------------------------------------------------------------------- expansion


def test_zip_varies_its_lists_together_crossed_with_the_sweep():
    exp = _plan({"sweep": {"task.label_noise": [0.0, 0.2]},
                 "zip": {"model.depth": [1, 2, 3], "model.width": [12, 8, 4]}})
    assert len(exp.runs) == 2 * 3 * 2
    assert _points(exp) == [{"task.label_noise": n, "model.depth": d, "model.width": w}
                            for n in (0.0, 0.2) for d, w in ((1, 12), (2, 8), (3, 4))]
    for r in exp.runs:  # the point is what the run is
        p = dict(r.point)
        assert (r.task.label_noise, r.model.depth, r.model.width) == (
            p["task.label_noise"], p["model.depth"], p["model.width"])
    assert exp.sweep == (("task.label_noise", (0.0, 0.2)), ("model.depth", (1, 2, 3)), ("model.width", (12, 8, 4)))
    assert exp.plot.x == "task.label_noise"
    assert {r.seed for r in exp.runs} == {0, 1}


def test_cases_are_explicit_points_filled_with_the_experiments_values():
    exp = _plan({"model": {"depth": 2, "width": 16},
                 "cases": [{"model.depth": 1, "model.width": 32}, {"model.depth": 3}, {"train.lr": 0.01}]})
    assert len(exp.runs) == 3 * 2
    # A key a case leaves out takes the experiment's value (depth 2, width 16, the study's lr 0.1).
    assert _points(exp) == [{"model.depth": 1, "model.width": 32, "train.lr": 0.1},
                            {"model.depth": 3, "model.width": 16, "train.lr": 0.1},
                            {"model.depth": 2, "model.width": 16, "train.lr": 0.01}]
    assert [(r.model.depth, r.model.width, r.train.lr) for r in exp.runs[::2]] == [(1, 32, 0.1), (3, 16, 0.1), (2, 16, 0.01)]
    assert exp.sweep == (("model.depth", (1, 3, 2)), ("model.width", (32, 16)), ("train.lr", (0.1, 0.01)))


def test_sweep_zip_and_cases_cross():
    exp = _plan({"sweep": {"task.label_noise": [0.0, 0.1]}, "zip": {"model.depth": [1, 2, 3]},
                 "cases": [{"train.optimizer": "sgd"}, {"train.optimizer": "adam"}]}, seeds=[0])
    assert len(exp.runs) == 2 * 3 * 2
    assert len({tuple(sorted(dict(r.point).items())) for r in exp.runs}) == 12
    assert all(len(r.point) == 3 for r in exp.runs)
    assert [k for k, _ in exp.sweep] == ["task.label_noise", "model.depth", "train.optimizer"]


def test_a_design_only_chooses_points_not_identities():
    """The same point has the same run id whether a sweep, a zip or a case makes it."""
    grid = _plan({"sweep": {"model.width": [2, 4]}})
    zipped = _plan({"zip": {"model.width": [2, 4]}})
    cases = _plan({"cases": [{"model.width": 2}, {"model.width": 4}]})
    ids = [r.run_id for r in grid.runs]
    assert ids == [r.run_id for r in zipped.runs] == [r.run_id for r in cases.runs]
    assert [g.group_id for g in grid.groups] == [g.group_id for g in cases.groups]


def test_sweep_only_plans_keep_their_ids(tiny_config):
    """Ids as they were before designs and budgets existed: results of earlier runs are reused."""
    exp = load_plan(tiny_config).experiment("exp")
    assert exp.groups[0].group_id == "c0309b5de3" and exp.runs[0].run_id == "61797abb88"


def test_a_zip_or_cases_replace_the_studys_default_sweep():
    """The sweep study's default design sweeps model.width; a plan's own design replaces it whole."""
    exp = _plan({"zip": {"model.depth": [1, 2]}})
    assert [k for k, _ in exp.sweep] == ["model.depth"] and len(exp.runs) == 2 * 2


# ----------------------------------------------------------------------------- budgets


def _count(depth: int, width: int, d: int, k: int) -> int:
    """Weights and biases of an MLP d -> width (x depth) -> k, written out."""
    return (d + 1) * width + (depth - 1) * (width + 1) * width + (width + 1) * k


def test_a_budget_chooses_the_width_nearest_it_at_every_depth():
    exp = _plan({"task": DIGITS, "model": {"param_budget": 5000}, "sweep": {"model.depth": [1, 2, 4, 8]}})
    assert len(exp.runs) == 4 * 2
    for r in exp.runs:
        assert r.model.param_budget == 5000
        best = min(range(1, 200), key=lambda w: (abs(_count(r.model.depth, w, 64, 10) - 5000), w))
        assert r.model.width == best, r.model.depth
    widths = {r.model.depth: r.model.width for r in exp.runs}
    assert widths == {1: 67, 2: 42, 4: 30, 8: 21}  # the numbers config/README.md quotes for 1, 2, 4
    assert [k for k, _ in exp.sweep] == ["model.depth"]  # the chosen width is not a design key


def test_budget_ties_go_to_the_smaller_width_and_residual_counts_its_blocks():
    model = cfg.ModelConfig(depth=1, width=64, activation="relu", residual=False, residual_scale=1.0,
                            init="pytorch", output_scale=1.0, param_budget=23)
    # P(w) = 6w + 2 with 3 inputs and 2 outputs: P(3) = 20 and P(4) = 26 are both 3 away from 23.
    assert cfg.width_for_budget(model, 3, 2, 23) == 3
    assert cfg.width_for_budget(model, 3, 2, 24) == 4
    assert cfg.width_for_budget(model, 3, 2, 7) is None  # P(1) = 8
    residual = cfg.ModelConfig(**{**vars(model), "residual": True, "depth": 2})
    # embedding (3+1)w, two blocks of two w x w layers, read-out (w+1) 2: 4 w^2 + 10 w + 2
    w = cfg.width_for_budget(residual, 3, 2, 1000)
    assert w == min(range(1, 100), key=lambda v: (abs(4 * v * v + 10 * v + 2 - 1000), v))


def test_a_varied_budget_is_a_design_key_and_the_achieved_count_is_in_the_runs_table(tmp_path):
    from mathdl import io, models
    from mathdl.pipeline import make_data, train_group
    from mathdl.resources import parameter_count

    exp = _plan({"task": DIGITS, "train": {"epochs": 1, "batch_size": 30},
                 "zip": {"model.param_budget": [1000, 3000], "model.depth": [1, 3]}}, seeds=[0])
    assert [k for k, _ in exp.sweep] == ["model.param_budget", "model.depth"]
    for group in exp.groups:
        budget, depth = group.model.param_budget, group.model.depth
        assert group.model.width == min(range(1, 100), key=lambda w: (abs(_count(depth, w, 64, 10) - budget), w))
        torch_count = models.parameter_count(group.model, 64, 10)
        assert parameter_count(group, 64, 10) == torch_count == _count(depth, group.model.width, 64, 10)

    group = exp.groups[1]
    data = tmp_path / "data.npz"
    make_data(vars(group.task), data)
    train_group(group.to_dict(), data, tmp_path / "m.parquet", tmp_path / "r.parquet", tmp_path / "p.json",
                device="cpu")
    runs = io.read_table(tmp_path / "r.parquet")
    assert runs["model.width"].tolist() == [group.model.width]
    assert runs["model.param_budget"].tolist() == [3000]
    assert runs["n_params"].tolist() == [_count(3, group.model.width, 64, 10)]


# ----------------------------------------------------------------------------- budgets of image networks


def _built_count(arch: str, k: int, shape=(1, 8, 8), n_classes: int = 10) -> int:
    """Parameters of the module convnets.build makes for width k: torch's count, not the closed form."""
    import torch

    from mathdl import convnets

    with torch.random.fork_rng(devices=[]):
        net = convnets.build(convnets.Network(arch, k), shape, n_classes)
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("arch, ks", [("cnn", [7, 14, 29]), ("resnet18", [3, 5, 11])])  # as config/README.md quotes
def test_a_budget_chooses_the_k_of_an_image_network_whose_built_module_is_nearest(arch, ks):
    budgets = [20000, 80000, 320000]
    exp = _plan({"task": DIGITS, "model": {"arch": arch}, "sweep": {"model.param_budget": budgets}}, seeds=[0])
    chosen = {g.model.param_budget: g.model.width for g in exp.groups}
    assert list(chosen) == budgets and list(chosen.values()) == ks
    for budget, k in chosen.items():
        near = abs(_built_count(arch, k) - budget)
        assert k == 1 or abs(_built_count(arch, k - 1) - budget) > near  # a tie would have gone to k - 1
        assert abs(_built_count(arch, k + 1) - budget) >= near
    assert [k for k, _ in exp.sweep] == ["model.param_budget"]  # the chosen k is not a design key


def test_the_usual_resnet18_s_count_chooses_k_64_on_cifar10_images():
    model = cfg.ModelConfig(1, 1, "relu", False, 1.0, "pytorch", 1.0, arch="resnet18")
    assert cfg.width_for_budget(model, 3 * 32 * 32, 10, 11_171_146) == 64  # the published ResNet-18
    assert cfg.width_for_budget(model, 3 * 32 * 32, 10, _built_count("resnet18", 1, (3, 32, 32)) - 1) is None


def test_an_image_network_s_budget_midway_between_two_ks_goes_to_the_smaller():
    k = next(k for k in range(1, 20) if (_built_count("cnn", k) + _built_count("cnn", k + 1)) % 2 == 0)
    midway = (_built_count("cnn", k) + _built_count("cnn", k + 1)) // 2
    for budget, expected in ((midway, k), (midway + 1, k + 1)):
        exp = _plan({"task": DIGITS, "model": {"arch": "cnn", "param_budget": budget}, "sweep": {"train.lr": [0.1]}},
                    seeds=[0])
        assert exp.groups[0].model.width == expected, budget


# ----------------------------------------------------------------------------- refusals


def _refused(exp: dict, match: str) -> str:
    with pytest.raises(ConfigError, match=match) as info:
        _plan(exp)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message
    return message


@pytest.mark.parametrize(
    "exp, match",
    [
        ({"zip": {"model.depth": [1, 2, 3], "model.width": [8, 4]}},
         r"^experiments.e.zip.model.width: 2 values, but zip.model.depth has 3; .* equal lengths"),
        ({"zip": {"model.depth": []}}, r"^experiments.e.zip.model.depth: must not be empty"),
        ({"zip": {}}, r"^experiments.e.zip: must hold at least one key"),
        ({"cases": []}, r"^experiments.e.cases: must not be empty"),
        ({"cases": [{}]}, r"^experiments.e.cases\[0\]: must hold at least one entry"),
        ({"zip": {"model.dpth": [1]}}, r"^experiments.e.zip: 'model.dpth' is not a key of model \(did you mean model.depth\?\)"),
        ({"cases": [{"model.depth": 2}, {"train.lrr": 0.1}]}, r"^experiments.e.cases\[1\]: 'train.lrr' is not a key of train"),
        ({"zip": {"model.depth": [1, 0]}}, r"^experiments.e.zip.model.depth\[1\]: 0 is less than the minimum of 1"),
        ({"cases": [{"train.optimizer": "lbfgs"}]}, r"^experiments.e.cases\[0\].train.optimizer: 'lbfgs' is not one of"),
        ({"sweep": {"model.depth": [1]}, "zip": {"model.depth": [2, 3]}},
         r"^experiments.e.zip.model.depth: model.depth is also varied by sweep; .* only one of sweep, zip and cases"),
        ({"zip": {"model.width": [2, 3]}, "cases": [{"model.width": 5}]},
         r"^experiments.e.cases\[0\].model.width: model.width is also varied by zip"),
        ({"zip": {"model.depth": [1, 2, 1], "model.width": [4, 4, 4]}},
         r"^experiments.e.zip: point 2 is the same as point 0 \(model.depth=1, model.width=4\)"),
        ({"model": {"width": 16}, "cases": [{"model.width": 16, "model.depth": 2}, {"model.depth": 2}]},
         r"^experiments.e.cases\[1\]: the same point as cases\[0\]"),
        ({"study": "residual", "cases": [{"model.width": 8}]},
         r"^experiments.e.cases: study residual sweeps only model.depth, model.residual, train.lr, not model.width"),
        ({"study": "residual", "zip": {"model.depth": [2, 4], "train.dropout": [0.0, 0.1]}},
         r"^experiments.e.zip: study residual sweeps only .* not train.dropout"),
    ],
)
def test_bad_designs_are_one_line_errors_naming_the_key(exp, match):
    _refused(exp, match)


@pytest.mark.parametrize(
    "exp, match",
    [
        ({"task": DIGITS, "model": {"param_budget": 50}, "sweep": {"model.depth": [1, 2]}},
         r"^experiments.e.model.param_budget: a budget of 50 parameters is below the smallest network's 85 "
         r"\(width 1, depth 1, 64 inputs, 10 outputs\) \(at point model.depth=1\)"),
        ({"task": DIGITS, "sweep": {"model.param_budget": [1000, 80], "model.depth": [1, 2]}},
         r"^experiments.e.sweep.model.param_budget: a budget of 80 parameters .* \(at point model.param_budget=80, model.depth=1\)"),
        ({"model": {"param_budget": 500}, "sweep": {"model.width": [4, 8]}},
         r"^experiments.e.sweep.model.width: the width is chosen by model.param_budget"),
        ({"zip": {"model.param_budget": [0, 500], "model.width": [4, 8]}},
         r"^experiments.e.zip.model.width: the width is chosen by model.param_budget"),
        ({"model": {"param_budget": 500, "width": 8}},
         r"^experiments.e.model.width: not used when model.param_budget is set"),
        ({"study": "residual", "model": {"param_budget": 5000}},
         r"^experiments.e.model.param_budget: study residual computes its runs itself"),
        ({"model": {"param_budget": -1}}, r"^experiments.e.model.param_budget: -1 is less than the minimum of 0"),
    ],
)
def test_impossible_budgets_are_one_line_errors(exp, match):
    _refused(exp, match)


def test_budget_off_is_a_plain_width():
    """param_budget 0 beside a swept width is no budget: nothing is refused, the widths stay."""
    exp = _plan({"zip": {"model.param_budget": [0, 0], "model.width": [4, 8]}})
    assert [r.model.width for r in exp.runs[::2]] == [4, 8]


# ----------------------------------------------------------------------------- plot channels


def test_plot_channels_name_distinct_varied_keys():
    design = {"sweep": {"model.width": [2, 4]}, "zip": {"model.depth": [1, 2]},
              "cases": [{"task.label_noise": 0.0}, {"task.label_noise": 0.1}]}
    exp = _plan({**design, "plot": {"hue": "model.depth", "col": "task.label_noise"}})
    assert (exp.plot.x, exp.plot.hue, exp.plot.style, exp.plot.col, exp.plot.row) == (
        "model.width", "model.depth", "", "task.label_noise", "")
    bad = [
        ({"hue": "model.width"}, r"^experiments.e.plot.hue: 'model.width' is already plot.x \(the first varied key"),
        ({"x": "model.depth", "style": "model.depth"}, r"^experiments.e.plot.style: 'model.depth' is already plot.x;"),
        ({"hue": "model.depth", "row": "model.depth"}, r"^experiments.e.plot.row: 'model.depth' is already plot.hue"),
        ({"col": "train.lr"}, r"^experiments.e.plot.col: 'train.lr' is not a varied key \(varied keys: model.width, "
                              r"model.depth, task.label_noise\)"),
        ({"x": "train.lr"}, r"^experiments.e.plot.x: 'train.lr' is not a varied key"),
        ({"hue": 3}, r"^experiments.e.plot.hue: 3 is not of type string"),
    ]
    for plot, match in bad:
        _refused({**copy.deepcopy(design), "plot": plot}, match)


def test_mathdl_plan_prints_the_width_a_budget_chose_and_its_count(root, capsys):
    from mathdl import cli, resources

    path = root / "config" / "examples" / "depth_at_fixed_budget.yaml"
    assert cli.main(["plan", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    exp = load_plan(path).experiments[0]
    for group in exp.groups:
        (line,) = [x for x in lines if group.group_id in x]
        width, count = group.runs[0].model.width, resources.parameter_count(group)
        assert line.endswith(f"; width {width} ({count:,} parameters)")
