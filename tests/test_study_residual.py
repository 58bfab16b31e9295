"""The residual study: gradient norms at the engine's initialization, the residual stream's growth at
He initialization, degradation in the small, the analysis' selection, and compute -> analyze ->
figures -> report on tiny sizes."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import torch

import mathdl.config as cfg
from mathdl import engine, models
from mathdl.studies import residual as rs
from mathdl.tables import Tables
from mathdl.templating import render_experiment
from mathdl.tasks import make_dataset

torch.set_num_threads(1)

DIGITS = {"name": "digits", "n_train": 128, "n_test": 64}


def _final_train_loss(result) -> np.ndarray:
    m = result.metrics
    sel = m[(m["split"] == "train") & (m["metric"] == "loss") & (m["epoch"] == m["epoch"].max())]
    return sel["value"].to_numpy()


def _rows(metrics: pd.DataFrame, metric: str, epoch: int | None = None) -> pd.Series:
    sel = metrics[(metrics["split"] == "train") & (metrics["metric"] == metric)]
    if epoch is not None:
        sel = sel[sel["epoch"] == epoch]
    return sel.set_index("run_id")["value"]


@pytest.mark.parametrize("residual", [False, True])
def test_gradient_norms_at_init_are_the_engines_first_gd_step(residual):
    """Full-batch GD with step eta moves layer l by eta ||grad_l L(theta_0)||: the engine's
    rel_dist_init_layer<l> at epoch 1 times weight_norm_layer<l> at epoch 0, over eta, is our
    gradient norm, so it is taken at the engine's own theta_0 and on the whole training loss."""
    lr = 0.05
    group = engine.make_group(
        [0, 1], task=DIGITS,
        model={"depth": 3, "width": 8, "residual": residual, "residual_scale": 0.5, "init": "he"},
        train={"optimizer": "gd", "lr": lr, "epochs": 1, "eval_points": 2, "dtype": "float64"},
    )
    result = rs.compute(group, make_dataset(group.task), "cpu")
    m = result.metrics
    assert list(m.columns) == ["run_id", "epoch", "split", "metric", "value"]
    assert list(result.runs["run_id"]) == [r.run_id for r in group.runs]
    n_layers = rs.weight_layers(3, residual)
    grads = m[m["metric"].str.startswith(rs.GRAD_METRIC)]
    assert len(grads) == 2 * n_layers and set(grads["epoch"]) == {0} and set(grads["split"]) == {"train"}
    for l in range(1, n_layers + 1):
        grad = _rows(m, f"{rs.GRAD_METRIC}{l}")
        step = _rows(m, f"rel_dist_init_layer{l}", epoch=1) * _rows(m, f"weight_norm_layer{l}", epoch=0) / lr
        np.testing.assert_allclose(grad[step.index].to_numpy(), step.to_numpy(), rtol=1e-9)
        assert (grad > 0).all()


def test_gradient_norms_do_not_depend_on_the_chunking():
    group = engine.make_group([0, 1, 2], task=DIGITS, model={"depth": 2, "width": 8, "residual": True, "init": "he"},
                              train={"dtype": "float64"})
    data = make_dataset(group.task)
    whole = rs.initial_gradient_norms(group, data)
    pointwise = rs.initial_gradient_norms(group, data, memory_bytes=1)  # one point per chunk
    pd.testing.assert_frame_equal(whole, pointwise, rtol=1e-12)


def test_pytorch_init_gradients_vanish_in_plain_networks_only():
    """With nn.Linear's default init (weight variance 1/(3 fan_in)) each plain ReLU layer shrinks the
    backward signal; the residual shortcut carries it past the blocks."""
    data = make_dataset(cfg.TaskConfig(**{**_task_defaults(), **DIGITS}))
    ratios = {}
    for residual in (False, True):
        group = engine.make_group([0, 1], task=DIGITS, model={"depth": 16, "width": 16, "residual": residual,
                                                              "init": "pytorch"})
        g = rs.initial_gradient_norms(group, data)
        per_layer = g.pivot_table(index="run_id", columns="metric", values="value")
        first, last = per_layer[f"{rs.GRAD_METRIC}1"], per_layer[f"{rs.GRAD_METRIC}{rs.weight_layers(16, residual)}"]
        ratios[residual] = (first / last).to_numpy()
    assert (ratios[False] < 1e-4).all()
    assert (ratios[True] > 1e-1).all()


def _task_defaults() -> dict:
    return {k: v["default"] for k, v in cfg.load_schema()["$defs"]["task"]["properties"].items()}


def test_he_init_output_second_moment_matches_theory():
    """At He initialization, E||f(x)||^2 = 4K/d (1 + 2s^2)^L ||x||^2 for the residual network and
    2K/d ||x||^2 at every depth for the plain one (module docstring); Monte Carlo over 2,000 models."""
    d, k, width, depth, s, n_models = 8, 10, 32, 6, 0.5, 2000
    x = torch.randn(d, 16, generator=torch.Generator().manual_seed(0))  # (d, B)
    sq_x = x.pow(2).sum(0)  # (B,)
    generators = [torch.Generator().manual_seed(i) for i in range(n_models)]
    measured = {}
    for residual in (False, True):
        mc = cfg.ModelConfig(depth=depth, width=width, activation="relu", residual=residual, residual_scale=s,
                             init="he", output_scale=1.0)
        arch = models.architecture(mc, d, k)
        with torch.no_grad():
            out = models.forward(models.init_params(arch, generators), x.unsqueeze(0).expand(n_models, -1, -1), arch)
        measured[residual] = float((out.pow(2).sum(1) / sq_x).mean())
    assert measured[True] == pytest.approx(4 * k / d * rs.residual_norm_growth(s, depth), rel=0.1)
    assert measured[False] == pytest.approx(2 * k / d, rel=0.1)


def test_deep_plain_networks_degrade_and_residual_ones_do_not():
    """The degradation problem in the small: same width, optimizer and budget on the digits."""
    task = {"name": "digits", "n_train": 256, "n_test": 64}
    data = None
    loss = {}
    for residual in (False, True):
        for depth in (4, 24):
            group = engine.make_group(
                [0, 1], task=task,
                model={"depth": depth, "width": 16, "residual": residual, "residual_scale": 0.1, "init": "he"},
                train={"optimizer": "momentum", "lr": 0.03, "batch_size": 64, "epochs": 12, "eval_points": 2},
            )
            data = data or make_dataset(group.task)
            loss[residual, depth] = _final_train_loss(engine.train(group, data, progress=False))
    assert (loss[False, 24] > 3 * loss[False, 4]).all()  # deeper plain: worse training loss
    assert (loss[True, 24] < loss[True, 4]).all()  # deeper residual: better
    assert (loss[True, 24] < 0.1 * loss[False, 24]).all()


# ----------------------------------------------------------------------------- analysis on made-up tables


def _synthetic_tables(experiment) -> Tables:
    """Final losses chosen by hand: plain depth 8 and 32 at two lrs, residual at depth 32; one plain
    depth-8 run at lr 0.1 diverged (NaN), although its other seed has the lowest loss of all."""
    final = {  # (residual, depth, lr): train loss per seed 0, 1
        (False, 8, 0.01): (0.01, 0.02), (False, 8, 0.1): (np.nan, 1e-6),
        (False, 32, 0.01): (1.0, 2.0), (False, 32, 0.1): (2.3, 2.3),
        (True, 8, 0.01): (0.05, 0.05), (True, 8, 0.1): (0.02, 0.04),
        (True, 32, 0.01): (0.03, 0.01), (True, 32, 0.1): (0.004, 0.006),
    }
    metrics, runs = [], []
    for (residual, depth, lr), losses in final.items():
        for seed, value in enumerate(losses):
            run_id = f"r{int(residual)}d{depth}lr{lr}s{seed}"
            runs.append({"run_id": run_id, "seed": seed, "diverged": bool(np.isnan(value)), "model.depth": depth,
                         "model.residual": residual, "train.lr": lr})
            for split, metric, v in (("train", "loss", value), ("train", "error", value / 10),
                                     ("test", "loss", value), ("test", "error", 0.1 + value / 10)):
                metrics.append((run_id, 5, split, metric, v))
            metrics.append((run_id, 0, "train", "loss", 2.3))
            for layer in (1, 2):  # the same init for both lrs of a seed
                metrics.append((run_id, 0, "train", f"{rs.GRAD_METRIC}{layer}", (1 + seed) * layer))
    return Tables(pd.DataFrame(metrics, columns=["run_id", "epoch", "split", "metric", "value"]), pd.DataFrame(runs))


def _default_experiment(**overrides):
    exp = {"study": "residual", **overrides}
    return cfg.load_plan({"device": "cpu", "experiments": {"res": exp}})


def test_analysis_selects_on_training_loss_and_survives_divergence():
    plan = _default_experiment()
    summary = json.loads(json.dumps(rs.analyze(_synthetic_tables(plan.experiment("res")), plan.experiment("res")),
                                    allow_nan=False))
    assert summary["depths"] == [8, 32] and summary["lrs"] == [0.01, 0.1]
    assert summary["n_diverged"] == 1 and summary["plain"]["n_diverged"] == [1, 0]
    # A diverged seed disqualifies its lr; then the lowest mean training loss wins.
    assert summary["plain"]["best_lr"] == [0.01, 0.01] and summary["residual"]["best_lr"] == [0.1, 0.1]
    ratio = summary["plain_loss_ratio_deep_over_shallow"]
    assert ratio["per_seed"] == pytest.approx([100.0, 100.0])
    assert ratio["mean"] == pytest.approx(100.0) and ratio["mean_kind"] == "geometric"
    assert ratio["ratio_of_means"] == pytest.approx(1.5 / 0.015)
    assert summary["residual_loss_ratio_deep_over_shallow"]["per_seed"] == pytest.approx([0.2, 0.15])
    assert summary["residual_deepest_train_loss"]["mean"] == pytest.approx(0.005)
    assert summary["plain_deepest_test_error"]["mean"] == pytest.approx(0.1 + 1.5 / 10)
    assert summary["plain_best_depth"] == 8 and summary["deepest_depth"] == 32
    assert summary["plain"]["weight_layers"] == [9, 33] and summary["residual"]["weight_layers"] == [18, 66]
    # Gradient norms once per seed (not per lr): first layer 1 and 2, last layer 2 and 4.
    assert summary["plain"]["grad_norm_first_layer"][0]["mean"] == pytest.approx(1.5)
    assert summary["plain"]["grad_norm_ratio_first_over_last"][1]["mean"] == pytest.approx(0.5)
    assert summary["plain"]["grad_norm_ratio_first_over_last"][1]["ci_low"] == pytest.approx(0.5)
    assert summary["residual_norm_growth_at_deepest"] == pytest.approx(1.02**32)
    assert summary["chance_loss"] == pytest.approx(math.log(10))


def test_geometric_mean_interval_stays_positive():
    ci = rs.geometric_mean_ci([10.0, 1000.0, np.nan])
    assert ci["mean"] == pytest.approx(100.0) and 0 < ci["ci_low"] < 100 < ci["ci_high"]
    assert rs.geometric_mean_ci([4.0])["mean"] == pytest.approx(4.0) and rs.geometric_mean_ci([4.0])["ci_low"] is None


# ----------------------------------------------------------------------------- end to end


TINY = {
    "study": "residual", "seeds": [0, 1],
    "task": {"name": "digits", "n_train": 64, "n_test": 64},
    "model": {"width": 8},
    "train": {"epochs": 2, "batch_size": 32, "eval_points": 3},
    # lr 1e4 diverges: analysis, figures and report must go on without those runs.
    "sweep": {"model.depth": [2, 8, 32], "model.residual": [False, True], "train.lr": [0.03, 1.0e4]},
}


def _run(config):
    from mathdl.pipeline import run_parameters

    plan = cfg.load_plan(config)
    exp = plan.experiment("res")
    metrics, runs = [], []
    for group in exp.groups:
        result = rs.compute(group, make_dataset(group.task), device="cpu")
        assert len(result.runs) == len(group.runs)
        metrics.append(result.metrics)
        runs.append(result.runs.merge(run_parameters(group), on=["run_id", "seed"]))
    return plan, exp, Tables(pd.concat(metrics, ignore_index=True), pd.concat(runs, ignore_index=True))


def test_compute_analyze_figures_report(tmp_path, root, drawn):
    config = {"device": "cpu", "experiments": {"res": TINY}}
    plan, exp, tables = _run(config)
    assert len(exp.groups) == 6  # depth x architecture; lr and seed are batched inside each job
    assert tables.runs["diverged"].any() and not tables.runs.loc[tables.runs["train.lr"] == 0.03, "diverged"].any()
    pd.testing.assert_frame_equal(tables.metrics, _run(config)[2].metrics)  # deterministic given the seeds

    summary = json.loads(json.dumps(rs.analyze(tables, exp), allow_nan=False))
    assert summary["plain"]["best_lr"] == [0.03] * 3 and summary["residual"]["best_lr"] == [0.03] * 3
    assert summary["n_diverged"] == int(tables.runs["diverged"].sum())
    # The numbers against the raw metrics: last-epoch training losses at lr 0.03, by architecture, depth, seed.
    m = tables.metrics
    last = m[(m["split"] == "train") & (m["metric"] == "loss") & (m["epoch"] == m["epoch"].max())]
    loss = last.merge(tables.runs, on="run_id").query("`train.lr` == 0.03").set_index(
        ["model.residual", "model.depth", "seed"])["value"].sort_index()
    per_seed = loss[False, 32] / loss[False, 8]
    ratio = summary["plain_loss_ratio_deep_over_shallow"]
    assert ratio["per_seed"] == pytest.approx(per_seed.tolist(), rel=1e-12)
    assert ratio["mean"] == pytest.approx(math.exp(np.log(per_seed).mean()), rel=1e-12)  # geometric
    assert summary["residual_deepest_train_loss"]["mean"] == pytest.approx(loss[True, 32].mean(), rel=1e-12)
    for arch, residual in (("plain", False), ("residual", True)):
        assert [c["mean"] for c in summary[arch]["train_loss"]] == pytest.approx(
            [loss[residual, d].mean() for d in (2, 8, 32)], rel=1e-12)

    names = rs.figures(tables, summary, exp, plan.plot, tmp_path)
    assert names == list(rs.FIGURES) == list(drawn)
    for name in names:
        assert (tmp_path / f"{name}.pdf").stat().st_size > 0 and (tmp_path / f"{name}.png").exists()
    train_panel, test_panel = drawn["loss_vs_depth"].axes
    curves = [line for line in train_panel.get_lines() if len(line.get_xdata()) == 3]  # plain, then residual
    for line, residual in zip(curves, (False, True), strict=True):
        assert list(line.get_xdata()) == [2, 8, 32]
        np.testing.assert_allclose(line.get_ydata(), [loss[residual, d].mean() for d in (2, 8, 32)], rtol=1e-6)
    (ax,) = drawn["grad_norm_init"].axes  # one curve per architecture and depth 8, 32: a point per layer
    assert sorted(len(line.get_xdata()) for line in ax.get_lines() if len(line.get_xdata())) == sorted(
        rs.weight_layers(d, r) for r in (False, True) for d in (8, 32))
    assert [ax.get_title() for ax in drawn["training_curves"].axes] == ["plain", "residual"]

    # The words of the real tiny run: lr 0.03 is the smallest of its grid and is selected everywhere;
    # the diverged runs (lr 1e4) are none of the selected ones.
    assert summary["n_lr_at_grid_edge"] == 6 and summary["n_diverged_at_selected_lr"] == 0
    piece = render_experiment(exp, summary)
    text = _words(piece.section)
    for name in names:
        assert f"figures/res/{name}.pdf" in piece.section
    for arch in ("plain", "residual"):
        assert f"the {arch} network at $H=2$, $H=8$ and $H=32$ (the smallest rate)" in text
    assert "(the largest rate)" not in text and "inside the grid" not in text
    assert f"{summary['n_diverged']} of the 24 networks diverged." in text
    assert "None of them is at a selected learning rate" in text
    assert "learning rate of $\\{0.03, 1e+04\\}$" in text and "2 epochs" in text and "(s)" not in text
    assert "at $H=8$ and $H=32$ (mean and" in text  # the gradient figure's depths
    bib = (root / "report" / "references.bib").read_text()
    for keys in re.findall(r"\\cite[tp](?:\[[^\]]*\])?\{([^}]*)\}", piece.section):
        for key in keys.split(","):
            assert f"{{{key.strip()},\n" in bib, key
    assert "\\cite" not in piece.slides and piece.slides.count("\\begin{frame}") == 1


def test_report_without_the_ratio_depths():
    """A sweep that misses depth 8 or 32 leaves the ratio undefined; the text says so and compares no gradients."""
    config = {"device": "cpu", "experiments": {"res": {**TINY, "sweep": {"model.depth": [2], "model.residual": [False],
                                                                          "train.lr": [0.03]}}}}
    _, exp, tables = _run(config)
    summary = json.loads(json.dumps(rs.analyze(tables, exp), allow_nan=False))
    assert summary["plain_loss_ratio_deep_over_shallow"] is None and summary["residual_deepest_train_loss"] is None
    text = _words(render_experiment(exp, summary).section)
    assert "does not hold both $H=8$ and $H=32$, so their loss ratio is not defined" in text
    assert "With a single learning rate nothing was tuned" in text and "edge of the grid" not in text
    assert "At initialization" not in text and "residual network's mean" not in text


# ----------------------------------------------------------------------------- the words against edited summaries


def _words(latex: str) -> str:
    """Rendered LaTeX with numbers as printed (\\num{0.5} -> 0.5) and lines joined: the text to assert on."""
    return re.sub(r"\s+", " ", re.sub(r"\\num\{([^}]*)\}", r"\1", latex).replace("~", " ").replace("%\n", ""))


@pytest.fixture
def made_up():
    """The experiment and summary of the made-up tables: plain 8 and 32 at lr 0.01 (the grid's smallest),
    residual at 0.1 (its largest); the plain loss ratio 32 / 8 is 100; one run diverged."""
    plan = _default_experiment()
    exp = plan.experiment("res")
    return exp, json.loads(json.dumps(rs.analyze(_synthetic_tables(exp), exp), allow_nan=False))


def test_analysis_reports_selections_at_the_grid_edge_and_the_gradient_comparison(made_up):
    _, summary = made_up
    assert summary["lr_at_grid_edge"] == {"plain": {"smallest": [8, 32], "largest": []},
                                          "residual": {"smallest": [], "largest": [8, 32]}}
    assert summary["n_lr_at_grid_edge"] == 4 and summary["plain"]["best_lr_at_edge"] == [1, 1]
    assert summary["n_diverged_at_selected_lr"] == 0  # the diverged run is at plain 8, lr 0.1: not selected
    assert summary["plain_loss_ratio_deep_over_shallow"]["above_one"] == 1
    res = summary["residual_loss_ratio_deep_over_shallow"]  # per seed 0.2, 0.15: the interval holds 1
    assert res["ci_high"] > 1 and res["above_one"] == res["below_one"] == 0
    assert summary["grad_depths"] == [8, 32] and summary["vanishing_ratio"] == rs.VANISHING_RATIO
    assert summary["plain_grad_first_layer_deepest_over_shallow"] == pytest.approx(1.0)
    assert summary["plain_grad_vanishes_at_deepest"] == 0  # first / last = 0.5


def _render(exp, summary, **changes) -> tuple[str, str]:
    piece = render_experiment(exp, {**summary, **changes})
    return _words(piece.section), _words(piece.slides)


def test_words_of_the_made_up_summary(made_up):
    exp, summary = made_up
    text, slides = _render(exp, summary)
    assert "the plain network at $H=8$ and $H=32$ (the smallest rate)" in text
    assert "the residual network at $H=8$ and $H=32$ (the largest rate)" in text
    assert "may be a tuning artefact" in text and "unless a learning rate beyond the grid closes the gap" in text
    assert "is 100 [100, 100] (95\\% interval over seeds): the deeper plain network trains worse" in text
    assert "One of the 16 networks diverged. None of them is at a selected learning rate" in text
    assert "left out of the means" not in text
    # Gradients: ratio first / last 0.5 at both depths, first-layer norm 1.5 at both.
    assert "do not vanish towards the input" in text and "the same in both" in text
    assert "1.5 at $H=8$ and 1.5 at $H=32$" in text
    assert "degradation" in slides and "in 4 of the 4 (architecture, $H$) pairs the selected learning rate is at an edge" in slides


def test_words_when_every_rate_is_inside_its_grid(made_up):
    exp, summary = made_up
    inside = {a: {**summary[a], "best_lr_at_edge": [0, 0]} for a in ("plain", "residual")}
    text, slides = _render(exp, summary, **inside, n_lr_at_grid_edge=0,
                           lr_at_grid_edge={a: {"smallest": [], "largest": []} for a in ("plain", "residual")})
    assert "Every architecture and $H$ selects a learning rate inside the grid" in text
    assert "edge of the grid" not in text and "tuning artefact" not in text and "closes the gap" not in text
    assert "dagger" not in text and "at an edge of its grid" not in slides


@pytest.mark.parametrize("above, below, words, not_words", [
    (1, 0, "the deeper plain network trains worse", ("trains better", "no clear difference")),
    (0, 1, "the deeper plain network trains better, so there is no degradation", ("network trains worse", "no clear difference")),
    (0, 0, "no clear difference, so no clear degradation", ("deeper plain network trains",)),
])
def test_degradation_words_follow_the_interval(made_up, above, below, words, not_words):
    exp, summary = made_up
    ratio = {**summary["plain_loss_ratio_deep_over_shallow"], "above_one": above, "below_one": below}
    text, _ = _render(exp, summary, plain_loss_ratio_deep_over_shallow=ratio)
    assert words in text
    assert not any(w in text for w in not_words)


def test_gradient_words_follow_their_numbers(made_up):
    exp, summary = made_up
    plain = {**summary["plain"], "grad_norm_first_layer": [{"mean": 0.742}, {"mean": 0.086}],
             "grad_norm_ratio_first_over_last": [{"mean": 0.5}, {"mean": 0.03}]}
    text, _ = _render(exp, summary, plain=plain, plain_grad_first_layer_deepest_over_shallow=0.086 / 0.742,
                      plain_grad_vanishes_at_deepest=1)
    assert "0.742 at $H=8$ and 0.086 at $H=32$, 8.63 times smaller in the deeper plain network" in text
    assert "the plain network's gradients vanish towards the input" in text and "do not vanish" not in text
    assert "may be partly one of vanishing gradients" in text and "geometry of the loss" not in text
    # Smaller but not vanishing: neither explanation is claimed.
    text, _ = _render(exp, summary, plain=plain, plain_grad_first_layer_deepest_over_shallow=0.086 / 0.742,
                      plain_grad_vanishes_at_deepest=0)
    assert "do not vanish towards the input" in text and "this experiment does not tell" in text
    assert "neither vanishing towards the input nor smaller" not in text
    # No degradation between the figure's depths: no explanation at all.
    calm = {**summary["plain_loss_ratio_deepest_over_shallow"], "above_one": 0}
    text, _ = _render(exp, summary, plain_loss_ratio_deepest_over_shallow=calm)
    assert "trains worse than the one with" not in text


@pytest.mark.parametrize("n_diverged, at_selected, words", [
    (0, 0, "No network diverged."),
    (16, 16, "All 16 networks diverged."),
    (3, 2, "3 of the 16 networks diverged. 2 of them are at a selected learning rate and left out of the means."),
])
def test_divergence_words(made_up, n_diverged, at_selected, words):
    exp, summary = made_up
    text, slides = _render(exp, summary, n_diverged=n_diverged, n_diverged_at_selected_lr=at_selected)
    assert words in text
    assert ("diverged" in slides) == (n_diverged > 0)


def test_a_sweep_over_other_keys_is_refused():
    config = {"device": "cpu", "experiments": {"res": {**TINY, "sweep": {**TINY["sweep"], "model.width": [4, 8]}}}}
    with pytest.raises(ValueError, match="study residual sweeps only model.depth, model.residual, train.lr, not model.width"):
        _run(config)
