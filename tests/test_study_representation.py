"""The representation study: step networks written down by hand represent their sets exactly."""

from __future__ import annotations

import copy
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mathdl.config as cfg
from mathdl.config import ConfigError, load_plan
from mathdl.studies import representation as rep
from helpers import words

ROOT = Path(__file__).resolve().parents[1]
CONSTRUCTIONS = {c.name: c for c in rep.CONSTRUCTIONS}


@pytest.fixture
def registered(monkeypatch):
    """The study in the registry and the schema's study enum, whether or not the lead registered it."""
    from mathdl.studies import STUDIES, Study

    study = Study("representation", rep.DEFAULTS, rep.analyze, rep.figures, context=rep.context, compute=rep.compute,
                  params_schema=rep.PARAMS_SCHEMA)
    monkeypatch.setitem(STUDIES, "representation", study)
    enum = cfg.load_schema()["$defs"]["experiment"]["properties"]["study"]
    if "representation" not in enum["enum"]:
        monkeypatch.setitem(enum, "enum", [*enum["enum"], "representation"])
    return study


def _plan(params=None, **extra):
    exp = {"study": "representation", "title": "What networks can represent", "params": params or {}, **extra}
    return load_plan({"device": "cpu", "experiments": {"rep": exp}})


# ----------------------------------------------------------------------------- the mathematics


@pytest.mark.parametrize("name", list(CONSTRUCTIONS))
def test_step_networks_classify_their_regions_exactly(name):
    """0 misclassified points of a fine grid, leaving out only points within 1e-9 of the boundary."""
    pts = rep.grid_points(601, 2.0)
    result = rep.check_construction(CONSTRUCTIONS[name], pts, margin=1e-9)
    assert result["misclassified"] == 0
    assert result["evaluated_points"] + result["excluded_points"] == len(pts)
    assert result["excluded_points"] < 0.01 * len(pts)  # only points on the boundary lines are left out


@pytest.mark.parametrize("name", list(CONSTRUCTIONS))
def test_step_networks_agree_off_the_grid(name):
    """Random points too, off any grid alignment, and a margin of 0 where none lies on a boundary."""
    pts = np.random.default_rng(0).uniform(-2, 2, size=(200_000, 2))
    c = CONSTRUCTIONS[name]
    assert np.array_equal(c.network(pts).astype(bool), c.shape.contains(pts))
    assert 0.05 < c.shape.contains(pts).mean() < 0.95  # the set is a real part of the square


def test_the_exact_indicators_on_hand_picked_points():
    """The geometric side alone: ray casting and the cross product on points whose answer is known."""
    cases = {
        "halfspace": [((1, 1), True), ((0, 0), False), ((2, -0.4), True)],  # x1 + 2 x2 >= 1
        "triangle": [((0, 0), True), ((0, 1.4), True), ((1, 1), False), ((0, -1.6), False)],
        "square": [((0, 0), True), ((0.7, 0.7), True), ((1, 1), False), ((-1.4, 0.2), False)],
        "two_polygons": [((-1, 0), True), ((1, 0), True), ((0, 0), False), ((1, 1), False)],
        "l_shape": [((-1, 1), True), ((1, -1), True), ((0.5, 0.5), False), ((-1, -1), True), ((-0.4, 0), False)],
    }
    for name, points in cases.items():
        pts = np.array([p for p, _ in points], dtype=float)
        expected = [inside for _, inside in points]
        assert list(CONSTRUCTIONS[name].shape.contains(pts)) == expected, name
        assert list(CONSTRUCTIONS[name].network(pts).astype(bool)) == expected, name


def test_boundary_distance():
    tri = CONSTRUCTIONS["triangle"].shape
    d = tri.boundary_distance(np.array([[0.0, -1.5], [0.0, -2.0], [0.0, 0.0], [3.0, -1.5]]))
    np.testing.assert_allclose(d[:2], [0.0, 0.5])
    assert 0 < d[2] < 1.5 and d[3] == pytest.approx(1.5)
    half = CONSTRUCTIONS["halfspace"].shape
    np.testing.assert_allclose(half.boundary_distance(np.array([[1.0, 0.0], [0.0, 0.0]])), [0, 1 / np.sqrt(5)])


@pytest.mark.parametrize("k", [1, 2, 3, 4, 6])
def test_and_and_or_neurons_on_every_input(k):
    """H(sum h - k + 1/2) = min h and H(sum h - 1/2) = max h for h in {0, 1}^k."""
    h = np.array(list(itertools.product([0.0, 1.0], repeat=k)))
    and_net = rep.StepNetwork((np.ones((1, k)),), (np.array([-(k - 0.5)]),))
    or_net = rep.StepNetwork((np.ones((1, k)),), (np.array([-0.5]),))
    np.testing.assert_array_equal(and_net(h), h.min(axis=1))
    np.testing.assert_array_equal(or_net(h), h.max(axis=1))


def test_the_check_catches_a_wrong_network():
    """A bias moved by 0.1 misclassifies a strip of points: the comparison has power."""
    c = CONSTRUCTIONS["l_shape"]
    biases = list(c.network.biases)
    biases[0] = biases[0] + np.array([0.0, 0.0, 0.0, 0.1, 0.0, 0.0])  # foot's top edge to x2 <= -0.4
    wrong = rep.Construction(c.name, c.kind, c.label, rep.StepNetwork(c.network.weights, tuple(biases)), c.shape)
    result = rep.check_construction(wrong, rep.grid_points(401, 2.0), 1e-9)
    assert result["misclassified"] > 100


def test_architectures():
    assert {c.name: c.network.architecture for c in rep.CONSTRUCTIONS} == {
        "halfspace": "2-1", "triangle": "2-3-1", "square": "2-4-1", "two_polygons": "2-7-2-1", "l_shape": "2-6-2-1",
    }


# ----------------------------------------------------------------------------- the config


def test_params_are_validated_and_filled(registered):
    exp = _plan().experiment("rep")
    assert exp.params["grid_size"] == 801 and exp.params["dtype"] == "float64"
    assert exp.task.name == "none" and len(exp.groups) == 1
    with pytest.raises(ConfigError, match=r"experiments.rep.params: unknown key 'grid_sise' \(did you mean 'grid_size'\?\)"):
        _plan({"grid_sise": 10})
    with pytest.raises(ConfigError, match="experiments.rep.params.activations.*'step' is not one of"):
        _plan({"activations": ["step"]})
    sweep = _plan(sweep={"params.dtype": ["float64", "float32"]}).experiment("rep")
    assert len(sweep.groups) == 2


# ----------------------------------------------------------------------------- end to end


TINY = {
    "grid_size": 101, "plot_grid_size": 41, "depths": [1, 3], "widths": [2, 5], "networks_per_config": 1,
    "activation_points": 101,
}


@pytest.fixture(scope="module")
def tiny_run():
    """A real tiny run over seeds 0 and 1, computed once for the file: plan, experiment, the group's
    result, its tables and the summary (through JSON, as summary.json holds it)."""
    from mathdl.pipeline import run_parameters
    from mathdl.tables import Tables

    plan = _plan(TINY, seeds=[0, 1])
    exp = plan.experiment("rep")
    (group,) = exp.groups
    result = rep.compute(group, None, "cpu")
    tables = Tables(result.metrics, result.runs.merge(run_parameters(group), on=["run_id", "seed"]))
    return plan, exp, result, tables, json.loads(json.dumps(rep.analyze(tables, exp)))


def test_compute_analyze_figures_report(registered, tiny_run, tmp_path, drawn):
    from mathdl.config import PlotConfig
    from mathdl.templating import render_experiment

    plan, exp, result, tables, summary = tiny_run  # the summary through JSON
    (group,) = exp.groups
    assert list(result.metrics.columns) == ["run_id", "epoch", "split", "metric", "value"]
    assert set(result.runs.columns) >= {"run_id", "seed", "diverged", "diverged_epoch"}
    assert not result.metrics.duplicated(["run_id", "epoch", "split", "metric"]).any()
    again = rep.compute(group, None, "cpu")
    pd.testing.assert_frame_equal(result.metrics, again.metrics)  # deterministic given the seeds

    assert summary["halfspace_errors"] == summary["intersection_errors"] == summary["union_errors"] == 0
    assert summary["all_exact"]
    assert summary["n_networks_checked"] == 2 * 2 * 2 * len(rep.backprop.DIFFERENTIABLE)
    assert summary["backprop_max_relative_error"] < 1e-12
    assert summary["activation_derivative_max_error"] < 1e-8
    assert [e["name"] for e in summary["constructions"]] == list(CONSTRUCTIONS)

    # The backpropagation errors are the raw rows' largest, per activation and over all.
    raw = result.metrics[result.metrics["metric"] == "relative_error"].groupby("split")["value"].max()
    assert {a: e["max_relative_error"] for a, e in summary["backprop_by_activation"].items()} == raw.to_dict()
    assert summary["backprop_max_relative_error"] == raw.max()

    plot = PlotConfig(**plan.resolved["plot"])
    names = rep.figures(tables, summary, exp, plot, tmp_path / "fig")
    assert names == list(rep.FIGURES) == list(drawn)
    for name in names:
        assert (tmp_path / "fig" / f"{name}.pdf").stat().st_size > 0
    panels = drawn["decision_regions"].axes
    assert [ax.get_title().split("\n")[1:] for ax in panels] == [[c.network.architecture, "0 wrong"]
                                                                  for c in rep.CONSTRUCTIONS]
    # The activations and their derivatives as drawn, against the formulas written out.
    values, derivatives = drawn["activations"].axes
    z = values.get_lines()[0].get_xdata()
    logistic = 1 / (1 + np.exp(-z))
    formulas = {  # step, logistic, tanh, relu, softplus, identity: (sigma, sigma')
        "step": (z >= 0, 0 * z), "logistic": (logistic, logistic * (1 - logistic)),
        "tanh": (np.tanh(z), 1 - np.tanh(z) ** 2), "relu": (np.maximum(z, 0), z > 0),
        "softplus": (np.log1p(np.exp(z)), logistic), "identity": (z, 1 + 0 * z),
    }
    for i, (name, (value, derivative)) in enumerate(formulas.items()):
        np.testing.assert_allclose(values.get_lines()[i].get_ydata(), value, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(derivatives.get_lines()[i].get_ydata(), derivative, atol=1e-12, err_msg=name)

    piece = render_experiment(exp, summary)
    bib = (ROOT / "report" / "references.bib").read_text()
    keys = set(re.findall(r"\\cite[tp]?(?:\[[^\]]*\])*\{([^}]+)\}", piece.section))
    assert {"cybenko1989approximation", "rumelhart1986learning", "goodfellow2016deep"} <= keys
    for key in keys:
        assert f"{{{key}," in bib, key
    for name in names:
        assert f"figures/rep/{name}.pdf" in piece.section
    assert "\\cite" not in piece.slides and "\\cref" not in piece.slides


# ----------------------------------------------------------------------------- the words


@pytest.fixture(scope="module")
def tiny(tiny_run):
    """(experiment, summary) of the real tiny run."""
    return tiny_run[1], tiny_run[4]


def _words(exp, summary) -> tuple[str, str]:
    return words(exp, summary, flat=True)


def test_words_of_a_real_tiny_run(tiny):
    from mathdl.report import fmt

    exp, summary = tiny
    text, slides = _words(exp, summary)
    assert summary["all_exact"] and "No counted grid point is misclassified" in text
    assert r"Misclassified points: \num{0} for the half-plane, \num{0} for the intersections and \num{0} for the unions." in text
    assert r"a grid of \num{101}$\times$\num{101} points of $[-\num{2},\num{2}]^2$" in text
    # The backward pass against autograd, in units of the roundoff, parameters and input alike.
    worst = max(summary["backprop_max_error_in_roundoff"], summary["backprop_max_input_error_in_roundoff"])
    assert summary["backprop_within_roundoff"] == (worst <= rep.BACKPROP_ROUNDOFF_LIMIT) is True
    assert (f"is {fmt(summary['backprop_max_relative_error'], 2)} (median "
            f"{fmt(summary['backprop_median_relative_error'], 2)}), {fmt(summary['backprop_max_error_in_roundoff'], 2)} "
            "times the unit roundoff") in text
    assert r"Both are below \num{1000} times the unit roundoff, which rounding explains" in text
    assert (r"on \num{40}~random networks with 1 and 3 hidden layers of widths 2 and 5 and logistic, tanh, ReLU, "
            r"soft-plus and linear activations, in \texttt{float64} arithmetic") in text
    # The finite differences against their own error estimate h^2/3 + 4u(R+1)/h.
    h, r = summary["fd_step"], exp.params["activation_range"]
    assert summary["fd_error_estimate"] == pytest.approx(h**2 / 3 + 4 * rep.UNIT_ROUNDOFF["float64"] * (r + 1) / h)
    assert summary["activation_derivative_max_error"] <= summary["fd_error_estimate"]
    assert f"They agree to {fmt(summary['activation_derivative_max_error'], 2)} at worst, within that estimate." in text
    assert "within their own error" in slides and "is wrong" not in text + slides
    # References into the survey only when the survey is in the document.
    for ref in (r"\eqref{eq:activations}", r"\cref{thm:cybenko}", r"\cref{prop:backprop}"):
        before = text.split(ref)[0]
        assert before.rfind(r"\ifmathdlsurvey{}") > before.rfind(r"\fi"), ref
    assert "(s)" not in text + slides and "--" not in text + slides and slides.count(r"\begin{frame}") == 2


def test_words_follow_the_checks(tiny):
    exp, base = tiny
    s = copy.deepcopy(base)
    s["constructions"][-1]["misclassified"] = 7
    s.update(union_errors=7, total_errors=7, all_exact=False)
    text, slides = _words(exp, s)
    assert "Counted grid points are misclassified for the L-shape: that construction is wrong" in text
    assert "No counted grid point" not in text and "a construction is wrong" in slides
    s["constructions"][1]["misclassified"] = 2
    text, _ = _words(exp, s)
    assert "misclassified for the triangle and L-shape: those constructions are wrong" in text

    s = copy.deepcopy(base)
    s.update(backprop_within_roundoff=False, activation_derivatives_within_estimate=False)
    text, slides = _words(exp, s)
    assert "more than rounding explains: the hand-written backward pass disagrees with automatic differentiation" in text
    assert "which rounding explains" not in text and "the backward pass is wrong" in slides
    assert "They differ by up to" in text and "at worst, within that estimate" not in text
    assert "more than their own error" in slides


def test_words_in_the_singular(tiny):
    exp, base = tiny
    s = copy.deepcopy(base)
    s.update(depths=[1], widths=[4], activations=["logistic"], n_networks_checked=1)
    text, slides = _words(exp, s)
    assert r"on \num{1}~random network with one hidden layer of width 4 and logistic activation, in" in text
    assert r"\num{1}~random network:" in slides
