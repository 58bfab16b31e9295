"""The lazy-training study end to end on tiny sizes, and its slope fit."""

from __future__ import annotations

import copy
import json
import math
import re

import numpy as np
import pandas as pd
import pytest

import mathdl.config as cfg
from mathdl.tables import loglog_slope
from mathdl.studies import lazy_training as lt
from helpers import words


@pytest.fixture
def registered(monkeypatch):
    from mathdl.studies import STUDIES, Study

    study = Study("lazy_training", lt.DEFAULTS, lt.analyze, lt.figures, context=lt.context, compute=lt.compute,
                  params_schema=lt.PARAMS_SCHEMA, sweepable=lt.SWEEPABLE)
    monkeypatch.setitem(STUDIES, "lazy_training", study)
    enum = cfg.load_schema()["$defs"]["experiment"]["properties"]["study"]
    monkeypatch.setitem(enum, "enum", [*enum["enum"], "lazy_training"])


TINY = {"widths": [16, 64, 256], "n_train": 8, "n_test": 16, "input_dim": 3, "epochs": 100, "lr": 0.2,
        "alphas": [0.1, 1.0, 10.0], "alpha_width": 32, "alpha_steps": 60,
        "deep_depth": 2, "deep_widths": [16, 64, 256], "deep_epochs": 60}


def _run(config):
    from mathdl.pipeline import run_parameters
    from mathdl.tables import Tables
    from mathdl.tasks import make_dataset

    plan = cfg.load_plan(config)
    exp = plan.experiment("lt")
    metrics, runs = [], []
    for group in exp.groups:
        result = lt.compute(group, make_dataset(group.task), device="cpu")
        metrics.append(result.metrics)
        runs.append(result.runs.merge(run_parameters(group), on=["run_id", "seed"]))
    return plan, exp, Tables(pd.concat(metrics, ignore_index=True), pd.concat(runs, ignore_index=True))


TINY_CONFIG = {"device": "cpu", "experiments": {"lt": {"study": "lazy_training", "seeds": [0, 1], "params": TINY}}}


@pytest.fixture(scope="module")
def tiny_run():
    """The TINY configuration over seeds 0 and 1, computed once for the file: plan, experiment,
    tables and the summary (as JSON)."""
    plan, exp, tables = _run(TINY_CONFIG)
    return plan, exp, tables, json.loads(json.dumps(lt.analyze(tables, exp), allow_nan=False))


def test_slope_fit_recovers_a_power_law():
    x = np.array([64, 256, 1024, 4096])
    slope, intercept = loglog_slope(x, 3.0 * x**-0.5)
    assert slope == pytest.approx(-0.5, abs=1e-12) and math.exp(intercept) == pytest.approx(3.0, rel=1e-10)


def _has_line(ax, y) -> bool:
    return any(len(line.get_ydata()) == len(y) and np.allclose(line.get_ydata(), y, rtol=1e-9)
               for line in ax.get_lines())


def test_compute_analyze_figures_report(registered, tiny_run, tmp_path, root, drawn):
    plan, exp, tables, summary = tiny_run  # the summary as JSON, NaN refused
    assert list(tables.metrics.columns) == ["run_id", "epoch", "split", "metric", "value"]
    assert len(tables.runs) == 2 and not tables.runs["diverged"].any()
    pd.testing.assert_frame_equal(tables.metrics, _run(TINY_CONFIG)[2].metrics)  # deterministic given the seeds

    assert summary["widths"] == [16, 64, 256]
    # Per seed, a least squares line through (log m, log value) of the raw rows: about -1/2 for the
    # weight change (-0.42 and -0.45), steeper and more scattered for the kernel and the output.
    m = tables.metrics

    def rows(split, metric):  # (epoch: width or alpha index, run)
        return m[(m["split"] == split) & (m["metric"] == metric)].pivot(index="epoch", columns="run_id", values="value")

    for metric in ("weight_change", "ntk_change", "linearization_gap"):
        t = rows("width", metric)
        slopes = [np.polyfit(np.log(t.index), np.log(t[run]), 1)[0] for run in t]
        assert summary[f"{metric}_slope"]["per_seed"] == pytest.approx(slopes, rel=1e-9), metric
        assert summary[f"{metric}_slope"]["mean"] == pytest.approx(np.mean(slopes), rel=1e-9) and max(slopes) < 0
    assert summary["weight_change_slope"]["mean"] == pytest.approx(-0.5, abs=0.1)
    alpha = rows("alpha", "weight_change")  # alphas 0.1, 1, 10: the slope over alpha >= 1
    assert summary["alpha_weight_change_slope"]["mean"] == pytest.approx(
        np.mean([np.polyfit(np.log([1.0, 10.0]), np.log(alpha[run].iloc[1:]), 1)[0] for run in alpha]), rel=1e-9)
    data = lt.make_data(exp.params)
    baseline = float(((data["y_test"] - data["y_train"].mean()) ** 2).mean())
    assert summary["test_mse_of_train_mean"] == pytest.approx(baseline, rel=1e-12)
    assert summary["n_widths_net_below_train_mean"] == int((rows("width", "test_mse").mean(axis=1) < baseline).sum())
    # Our own ||theta_T - theta_0|| / ||theta_0|| (init redrawn from the seed) is the engine's.
    for mine, engine in zip(summary["weight_change"], summary["rel_dist_init_engine"]):
        assert mine["mean"] == pytest.approx(engine["mean"], rel=1e-9)
    changes = [c["mean"] for c in summary["alpha_weight_change"]]
    assert changes[0] > changes[1] > changes[2]  # lazier with the output scale

    names = lt.figures(tables, summary, exp, plan.plot, tmp_path)
    assert names == list(lt.FIGURES) == list(drawn)
    for name in names:
        assert (tmp_path / f"{name}.pdf").stat().st_size > 0 and (tmp_path / f"{name}.png").exists()
    (ax,) = drawn["changes_vs_width"].axes
    for metric in ("weight_change", "ntk_change", "linearization_gap"):
        assert _has_line(ax, rows("width", metric).mean(axis=1)), metric
    first = rows("width", "weight_change").mean(axis=1).iloc[0]
    assert _has_line(ax, first * np.sqrt(16 / np.array([16, 64, 256])))  # the reference m^(-1/2)
    (ax,) = drawn["alpha_sweep"].axes
    for metric in ("weight_change", "ntk_change", "train_mse"):
        assert _has_line(ax, rows("alpha", metric).mean(axis=1)), metric
    (ax,) = drawn["deep_layer_change"].axes
    for layer in (1, 2, 3):
        assert _has_line(ax, rows("deep", f"rel_dist_init_layer{layer}").mean(axis=1)), layer

    from mathdl.templating import render_experiment

    piece = render_experiment(exp, summary)
    for name in names:
        assert f"figures/lt/{name}.pdf" in piece.section
    bib = (root / "report" / "references.bib").read_text()
    for keys in re.findall(r"\\cite[tp](?:\[[^\]]*\])?\{([^}]*)\}", piece.section):
        for key in keys.split(","):
            assert f"{{{key.strip()},\n" in bib, key
    assert "\\cite" not in piece.slides and 1 <= piece.slides.count("\\begin{frame}") <= 2


def test_deep_per_layer_changes_shrink_with_width(tiny_run):
    _, exp, tables, summary = tiny_run
    layers = [str(l) for l in range(1, TINY["deep_depth"] + 2)]  # hidden layers and the output layer
    assert summary["deep_widths"] == TINY["deep_widths"] and summary["deep_layers"] == [int(l) for l in layers]
    change = summary["deep_layer_change"]
    assert sorted(change) == sorted(str(w) for w in TINY["deep_widths"])
    small, large = change[str(TINY["deep_widths"][0])], change[str(TINY["deep_widths"][-1])]
    for layer in layers:
        assert set(small[layer]) == {"mean", "ci_low", "ci_high"}
        assert 0 < large[layer]["mean"] < small[layer]["mean"], layer
        assert summary["deep_layer_change_slopes"][layer]["mean"] < 0, layer
    assert sorted(summary["deep_layer_change_slopes"]) == layers
    # They are the engine's per-layer relative distances, one per run, width and layer.
    deep = tables.metrics[tables.metrics["split"] == "deep"]
    assert len(deep) == 2 * len(TINY["deep_widths"]) * (len(layers) + 1)


def test_a_sweep_is_refused(registered):
    config = {"device": "cpu", "experiments": {"lt": {"study": "lazy_training", "seeds": [0], "params": TINY,
                                                      "sweep": {"params.lr": [0.1, 0.2]}}}}
    with pytest.raises(ValueError, match=r"sweeps nothing \(it computes its grids from params\), not params.lr"):
        _run(config)


# ----------------------------------------------------------------------------- the words


@pytest.fixture(scope="module")
def tiny(tiny_run):
    """(experiment, summary) of the real tiny run."""
    return tiny_run[1], tiny_run[3]


def _words(exp, summary) -> tuple[str, str]:
    return words(exp, summary, flat=True)


def _versus(ci, exponent=-0.5, name="-1/2") -> str:
    if ci["ci_low"] is None:
        return "one seed, no interval"
    if ci["ci_low"] <= exponent <= ci["ci_high"]:
        return f"consistent with ${name}$"
    return f"steeper than ${name}$" if ci["ci_high"] < exponent else f"shallower than ${name}$"


def test_the_baseline_is_the_test_mse_of_predicting_the_training_mean(tiny):
    exp, summary = tiny
    data = lt.make_data(exp.params)
    y_train, y_test = data["y_train"].numpy(), data["y_test"].numpy()
    assert summary["test_mse_of_train_mean"] == pytest.approx(((y_test - y_train.mean()) ** 2).mean(), rel=1e-12)
    assert summary["test_variance"] == pytest.approx(y_test.var(), rel=1e-12)
    counts = sum(e["mean"] < summary["test_mse_of_train_mean"] for e in summary["test_mse"])
    assert summary["n_widths_net_below_train_mean"] == counts


def test_words_of_a_real_tiny_run(tiny):
    from mathdl.report import fmt

    exp, summary = tiny
    text, slides = _words(exp, summary)
    for key, name in (("weight_change_slope", "relative weight change"), ("ntk_change_slope", "relative kernel change"),
                      ("linearization_gap_slope", "linearization gap")):
        ci = summary[key]
        assert f"{name} {fmt(ci['mean'])} [{fmt(ci['ci_low'])}, {fmt(ci['ci_high'])}] ({_versus(ci)})" in text
    base, net, kernel = (summary["test_mse_of_train_mean"], summary["test_mse"][-1]["mean"],
                         summary["test_mse_kernel"][-1]["mean"])
    assert f"Predicting the mean of the training labels has test mean squared error {fmt(base)}" in text
    assert ("Neither the network nor kernel regression does better" in text) == (net >= base and kernel >= base)
    assert ("Both do better" in text) == (net < base and kernel < base)
    coincide = summary["gaps_max_relative_difference"] < summary["gaps_coincide_below"]
    assert ("the figure draws them as one curve" in text) == coincide
    assert ("has not reached its limit" in text) == (not coincide)
    for layer in summary["deep_layers"]:
        ci = summary["deep_layer_change_slopes"][str(layer)]
        assert f"slope {fmt(ci['mean'])} [{fmt(ci['ci_low'])}, {fmt(ci['ci_high'])}] ({_versus(ci)})" in text
    assert "No run diverged." in text and r"\num{2}~hidden layers" in text
    assert "(s)" not in text + slides and "--" not in text + slides


def test_words_follow_generalization_gaps_and_slopes(tiny):
    exp, base = tiny
    s = copy.deepcopy(base)
    s["test_mse_of_train_mean"] = 1.0
    s["test_mse"][-1]["mean"], s["test_mse_kernel"][-1]["mean"] = 0.5, 1.5
    text, slides = _words(exp, s)
    assert "The network does better than that constant, kernel regression does not." in text
    assert "neither generalizes" not in text + slides
    s["test_mse"][-1]["mean"], s["test_mse_kernel"][-1]["mean"] = 1.2, 1.5
    text, slides = _words(exp, s)
    assert "Neither the network nor kernel regression does better than that constant" in text
    assert "neither generalizes" in slides

    s["gaps_max_relative_difference"] = 0.2
    text, _ = _words(exp, s)
    assert r"differs from the gap to the linearized model after \num{100}~steps by up to \num{20}\,\%" in text
    assert "one curve" not in text
    s["gaps_max_relative_difference"] = 0.01
    text, _ = _words(exp, s)
    assert "the figure draws them as one curve" in text and "(one curve: they differ by at most" in text

    s["ntk_change_slope"] = {"mean": -0.2, "ci_low": -0.3, "ci_high": -0.1}
    text, _ = _words(exp, s)
    assert r"relative kernel change \num{-0.2} [\num{-0.3}, \num{-0.1}] (shallower than $-1/2$)" in text
    assert "Over these widths the relative kernel change falls more slowly than the rate of the bounds" in text
    assert "No interval lies above" not in text

    s["alpha_weight_change_slope"] = None
    text, _ = _words(exp, s)
    assert r"too few scales $\alpha\ge1$ to fit a slope" in text


def test_words_on_deep_layers_and_divergence(tiny):
    exp, base = tiny
    s = copy.deepcopy(base)
    small, large = str(s["deep_widths"][0]), str(s["deep_widths"][-1])
    s["deep_layer_change"][large]["2"]["mean"] = 2 * s["deep_layer_change"][small]["2"]["mean"]
    text, _ = _words(exp, s)
    assert "The change of layer 2 does not shrink from the smallest to the largest width" in text
    assert "Every layer's change shrinks" not in text
    s["n_diverged"] = 1
    text, _ = _words(exp, s)
    assert r"\num{1} of the \num{2}~runs diverged or produced a non-finite value" in text
    assert "No run diverged" not in text
