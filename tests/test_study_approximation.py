"""The approximation study: Maurey's sampled network, its 1/m rate, the slope fit, end to end."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pandas as pd
import pytest

import mathdl.config as cfg
from mathdl.studies import approximation as ap
from mathdl.tables import loglog_slope
from helpers import words


@pytest.fixture(scope="module")
def teacher():
    return ap.teacher_network(dim=4, width=2000, directions=3, rng=np.random.default_rng(0))


def test_teacher_is_scaled_to_unit_second_moment(teacher):
    x = np.random.default_rng(1).uniform(-1, 1, size=(20_000, 4))
    assert np.mean(ap.relu_network(x, *teacher) ** 2) == pytest.approx(1.0, rel=0.05)


def test_bump_has_unit_second_moment():
    x = np.random.default_rng(2).uniform(-1, 1, size=(200_000, 8))
    assert np.mean(ap.bump(x) ** 2) == pytest.approx(1.0, rel=0.02)


def test_maurey_network_is_an_unbiased_estimate_of_the_teacher(teacher):
    w, b, a = teacher
    x = np.random.default_rng(3).uniform(-1, 1, size=(50, 4))
    rng = np.random.default_rng(4)
    draws = 4000
    samples = np.stack([ap.relu_network(x, *ap.maurey_network(w, b, a, 5, rng)) for _ in range(draws)])
    f = ap.relu_network(x, w, b, a)
    se = samples.std(axis=0, ddof=1) / np.sqrt(draws)
    # Each point's mean over draws lies within 4.5 standard errors (a 1e-5 two-sided tail, 50 points).
    assert np.all(np.abs(samples.mean(axis=0) - f) < 4.5 * se)
    # The weights: sign(a_i) ||a||_1 / m, so the sampled path norm equals the teacher's.
    _, _, a_m = ap.maurey_network(w, b, a, 7, rng)
    np.testing.assert_allclose(np.abs(a_m), np.abs(a).sum() / 7)


def test_maurey_error_decays_like_one_over_m(teacher):
    w, b, a = teacher
    x = np.random.default_rng(5).uniform(-1, 1, size=(200, 4))
    f = ap.relu_network(x, w, b, a)
    rng = np.random.default_rng(6)
    widths = [4, 16, 64, 256, 1024]
    errors = [np.mean([np.mean((ap.relu_network(x, *ap.maurey_network(w, b, a, m, rng)) - f) ** 2)
                       for _ in range(1000)]) for m in widths]
    assert loglog_slope(widths, errors)[0] == pytest.approx(-1.0, abs=0.1)
    # ... and around its exact expectation C/m (within 12%: 1000 draws per width, heavy-tailed at small m).
    constant = ap.maurey_error_constant(w, b, a, x)
    np.testing.assert_allclose(np.array(errors) * widths, constant, rtol=0.12)


@pytest.mark.parametrize("exponent", [-1.0, -0.5, 2.0])
def test_slope_fit_recovers_a_known_power_law(exponent):
    x = np.array([2, 4, 8, 16, 32, 64, 128])
    assert loglog_slope(x, 3.0 * x**exponent)[0] == pytest.approx(exponent, abs=1e-12)
    noisy = 3.0 * x**exponent * np.exp(0.05 * np.random.default_rng(7).standard_normal(len(x)))
    assert loglog_slope(x, noisy)[0] == pytest.approx(exponent, abs=0.05)


# ----------------------------------------------------------------------------- the study end to end


@pytest.fixture
def registered(monkeypatch):
    from mathdl.studies import STUDIES, Study

    study = Study("approximation", ap.DEFAULTS, ap.analyze, ap.figures, context=ap.context, compute=ap.compute,
                  params_schema=ap.PARAMS_SCHEMA)
    monkeypatch.setitem(STUDIES, "approximation", study)
    enum = cfg.load_schema()["$defs"]["experiment"]["properties"]["study"]
    monkeypatch.setitem(enum, "enum", [*enum["enum"], "approximation"])


def test_compute_analyze_figures_report(registered, tiny_run, tmp_path, root, drawn):
    plan, exp, tables, summary = tiny_run  # the summary as JSON, NaN refused
    assert len(exp.groups) == 2  # one per target
    assert list(tables.metrics.columns) == ["run_id", "epoch", "split", "metric", "value"]
    assert summary["targets"] == ["teacher", "bump"] and summary["widths"] == [2, 8, 32]
    # Slopes and errors against the raw test rows: per run a least squares line through
    # (log m, log error), and per width the mean over the two seeds.
    rows = tables.metrics[tables.metrics["split"] == "test"].merge(tables.runs[["run_id", "params.target"]])
    slopes, means = {}, {}
    for (target, series), d in rows.groupby(["params.target", "metric"]):
        by_run = d.pivot(index="epoch", columns="run_id", values="value")  # (width, run)
        slopes[target, series] = [np.polyfit(np.log(by_run.index), np.log(by_run[r]), 1)[0] for r in by_run]
        means[target, series] = by_run.mean(axis=1)
    assert set(summary["slopes"]["teacher"]) == {"maurey", "relu", "softplus"}
    assert set(summary["slopes"]["bump"]) == {"relu", "softplus"}
    for target, by_series in summary["slopes"].items():
        for series, slope in by_series.items():
            assert slope["mean"] == pytest.approx(np.mean(slopes[target, series]), rel=1e-9), (target, series)
            errors = summary["per_target"][target][series]["errors"]
            assert [errors[str(m)]["mean"] for m in (2, 8, 32)] == pytest.approx(list(means[target, series]))
    assert summary["maurey_slope"]["mean"] == pytest.approx(np.mean(slopes["teacher", "maurey"]), rel=1e-9)
    assert summary["trained_slope"]["mean"] == pytest.approx(np.mean(slopes["teacher", "relu"]), rel=1e-9)
    assert summary["maurey_slope"]["mean"] < -0.5
    maurey, relu = means["teacher", "maurey"], means["teacher", "relu"]
    assert summary["trained_below_maurey"] == pytest.approx(np.mean(relu < maurey))
    assert summary["maurey_informative_widths"] == [int(m) for m in maurey.index[maurey < 1]] == [32]
    expected = means["teacher", "maurey_expected"]
    assert summary["maurey_constant"] == pytest.approx(expected[2] * 2) == pytest.approx(expected[32] * 32)
    assert relu[32] < relu[2]

    names = ap.figures(tables, summary, exp, plan.plot, tmp_path)
    assert names == list(ap.FIGURES) == list(drawn)
    for name in names:
        assert (tmp_path / f"{name}.pdf").stat().st_size > 0 and (tmp_path / f"{name}.png").exists()
    teacher, bump = drawn["error_vs_width"].axes
    assert (teacher.get_title(), bump.get_title()) == ("teacher", "bump")
    curves = [line.get_ydata() for line in teacher.get_lines() if len(line.get_xdata()) == 3]
    np.testing.assert_allclose(curves, [maurey, relu, means["teacher", "softplus"], expected], rtol=1e-6)
    curves = [line.get_ydata() for line in bump.get_lines() if len(line.get_xdata()) == 3]
    np.testing.assert_allclose(curves[:2], [means["bump", "relu"], means["bump", "softplus"]], rtol=1e-6)

    from mathdl.templating import render_experiment

    piece = render_experiment(exp, summary)
    for name in names:
        assert f"figures/ap/{name}.pdf" in piece.section
    bib = (root / "report" / "references.bib").read_text()
    for keys in re.findall(r"\\cite[tp](?:\[[^\]]*\])?\{([^}]*)\}", piece.section):
        for key in keys.split(","):
            assert f"{{{key.strip()},\n" in bib, key
    assert "\\cite" not in piece.slides and piece.slides.count("\\begin{frame}") == 1


# ----------------------------------------------------------------------------- the words


def test_bump_barron_bound_from_its_fourier_representation():
    # exp(-|x|^2) is the characteristic function of N(0, 2 I): f~ is that density (times the scale s).
    rng = np.random.default_rng(8)
    omega = rng.normal(scale=np.sqrt(2), size=(400_000, 3))
    x = np.array([[0.3, -0.5, 0.8], [1.0, 1.0, -1.0]])
    np.testing.assert_allclose(np.cos(omega @ x.T).mean(axis=0), np.exp(-(x**2).sum(axis=1)), atol=5e-3)
    # On the cube |omega|_B = ||omega||_1, so C_{f,B} = s E||omega||_1 and the bound is (2 C_{f,B})^2.
    s = 1 / np.sqrt(np.mean(np.exp(-2 * (rng.uniform(-1, 1, size=(400_000, 3)) ** 2).sum(axis=1))))
    assert ap.bump(x) == pytest.approx(s * np.exp(-(x**2).sum(axis=1)), rel=5e-3)
    constant = s * np.abs(omega).sum(axis=1).mean()
    assert ap.bump_barron_bound(3) == pytest.approx((2 * constant) ** 2, rel=1e-2)


@pytest.fixture(scope="module")
def tiny_run():
    """A real tiny run, both targets, two activations, two seeds (computed once for the file): plan,
    experiment, tables and the summary (as JSON)."""
    from mathdl.pipeline import run_parameters
    from mathdl.tables import Tables
    from mathdl.tasks import make_dataset

    plan = cfg.load_plan({"device": "cpu", "experiments": {"ap": {
        "study": "approximation", "seeds": [0, 1],
        "params": {"dim": 3, "widths": [2, 8, 32], "activations": ["relu", "softplus"], "teacher_width": 500,
                   "n_train": 100, "n_test": 200, "maurey_draws": 5},
        "train": {"epochs": 100, "lr": 0.02},
    }}})
    exp = plan.experiment("ap")
    metrics, runs = [], []
    for group in exp.groups:
        result = ap.compute(group, make_dataset(group.task), device="cpu")
        metrics.append(result.metrics)
        runs.append(result.runs.merge(run_parameters(group), on=["run_id", "seed"]))
    tables = Tables(pd.concat(metrics, ignore_index=True), pd.concat(runs, ignore_index=True))
    return plan, exp, tables, json.loads(json.dumps(ap.analyze(tables, exp), allow_nan=False))


@pytest.fixture(scope="module")
def tiny(tiny_run):
    """(experiment, summary) of the real tiny run."""
    return tiny_run[1], tiny_run[3]


def _words(exp, summary) -> tuple[str, str]:
    return words(exp, summary, flat=True)


def _versus(ci, exponent=-1.0) -> str:
    if ci["ci_low"] is None or ci["ci_high"] is None:
        return "no interval from one seed"
    if ci["ci_low"] <= exponent <= ci["ci_high"]:
        return "consistent with $-1$"
    return "steeper than $-1$" if ci["ci_high"] < exponent else "shallower than $-1$"


def test_words_of_a_real_tiny_run(tiny):
    from mathdl.report import fmt

    exp, summary = tiny
    text, slides = _words(exp, summary)
    assert r"\citet[Theorem~1]{barron1993universal}" in text and r"\le\frac{(2C)^2}{m}" in text
    ms = summary["maurey_slope"]
    assert f"falls with slope {fmt(ms['mean'])} ([{fmt(ms['ci_low'])}, {fmt(ms['ci_high'])}], {_versus(ms)})" in text
    names = {"relu": "ReLU", "softplus": "soft-plus"}
    for target in ("teacher", "bump"):
        for act, name in names.items():
            s = summary["per_target"][target][act]["slope"]
            assert f"{fmt(s['mean'])} [{fmt(s['ci_low'])}, {fmt(s['ci_high'])}] for {name} ({_versus(s)})" in text
    n_inf = len(summary["maurey_informative_widths"])
    assert ("none of the widths" in text) == (n_inf == 0)
    # The bump's bound 16 d^2 / (pi E e^{-2|X|^2}) / m is far above 1 on this grid: the text says it is vacuous.
    assert summary["bump_barron_bound"] > summary["widths"][-1] and "above 1 at every width of the grid" in text
    assert "No fit diverged." in text and summary["n_diverged"] == 0
    assert "(s)" not in text + slides and "--" not in text + slides and "run(s)" not in text
    assert "trained ReLU" in slides and "\\cite" not in slides


def test_words_follow_maurey_informative_widths(tiny):
    exp, base = tiny
    s = copy.deepcopy(base)
    s.update(maurey_constant=100.0, maurey_informative_widths=[], n_trained_below_maurey_informative=0)
    text, slides = _words(exp, s)
    assert "which holds at no width of the grid" in text
    assert "none of the widths, so the trained networks are not compared with it" in text
    assert "lower error than the sampled" not in text and "no width where the sampled network beats" in slides

    s.update(maurey_constant=10.0, maurey_informative_widths=[32], n_trained_below_maurey_informative=0)
    text, slides = _words(exp, s)
    assert "trained ReLU not below the sampled network at the one width where" in slides
    assert r"below $m\approx\num{10}$ the sampled network is worse than predicting $0$" in text
    assert r"\num{1}~width, $m\in\{\num{32}\}$" in text and "widths," not in text
    assert "do not have a lower error than the sampled one at any width" in text

    s.update(maurey_constant=1.5, maurey_informative_widths=[2, 8, 32], n_trained_below_maurey_informative=3)
    text, _ = _words(exp, s)
    assert "which holds at every width of the grid" in text and "below 1 at every width of the grid" in text
    assert "lower error than the sampled one, at each of these widths" in text

    s.update(maurey_informative_widths=[8, 32], n_trained_below_maurey_informative=1)
    text, _ = _words(exp, s)
    assert r"lower error than the sampled one at \num{1} of these \num{2}~widths" in text


def test_words_follow_the_slopes_against_barrons_rate(tiny):
    exp, base = tiny
    s = copy.deepcopy(base)
    bump = s["per_target"]["bump"]["relu"]
    bump["slope"] = {"mean": -0.45, "ci_low": -0.5, "ci_high": -0.4}
    s["errors_at_largest_width"]["bump"]["relu"] = {"train": 0.01, "test": 0.1}
    text, slides = _words(exp, s)
    assert r"\num{-0.45} [\num{-0.5}, \num{-0.4}] for ReLU (shallower than $-1$)" in text
    assert "does not contradict the bound" in text and "more than half of the test error is the gap" in text
    assert "bump, trained ReLU: slope \\num{-0.45} (shallower than $-1$)" in slides

    s["errors_at_largest_width"]["bump"]["relu"] = {"train": 0.08, "test": 0.1}
    text, _ = _words(exp, s)
    assert "its training error is at least half of its test error" in text and "more than half" not in text

    for slope in ({"mean": -1.0, "ci_low": -1.2, "ci_high": -0.8}, {"mean": -1.5, "ci_low": -1.7, "ci_high": -1.3}):
        bump["slope"] = slope
        s["per_target"]["teacher"]["relu"]["slope"] = slope
        text, _ = _words(exp, s)
        assert "does not contradict" not in text
        assert ("consistent with $-1$" if slope["mean"] == -1.0 else "steeper than $-1$") in text

    bump["slope"] = {"mean": -0.5, "ci_low": None, "ci_high": None}  # one seed: no interval
    text, _ = _words(exp, s)
    assert r"\num{-0.5} [--, --] for ReLU (no interval from one seed)" in text

    s["bump_barron_bound"] = 20.0
    text, _ = _words(exp, s)
    assert r"below 1 from $m>\num{20}$ on" in text and "above 1 at every width" not in text


def test_words_on_diverged_fits(tiny):
    exp, base = tiny
    s = copy.deepcopy(base)
    s["n_diverged"] = 1
    text, _ = _words(exp, s)
    assert r"\num{1} of the \num{4}~runs had at least one diverged fit" in text and "No fit diverged" not in text
