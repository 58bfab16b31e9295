"""The optimizers study: linear rates against theory, the methods' definitions, the end-to-end pieces."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from mathdl.studies import optimizers as opt
from conftest import draw_figures
from helpers import edited as _edited, words as _words

# Tolerances. GD with the best step contracts both eigendirections by exactly (k-1)/(k+1), so
# its fitted rate is exact up to round-off. The tuned heavy ball (and Nesterov) has a double root,
# ||e_t|| ~ C t rho^t, and a log-linear fit over [t1, t2] measures about rho (t2/t1)^(1/(t2-t1)):
# for the window [250, 500] that is rho (1 + 0.0028), an excess below 0.003.
GD_TOL = 1e-9
MOMENTUM_EXCESS_TOL = 0.005


def quad_params(kappa, **over):
    params = {p: s["default"] for p, s in opt.PARAMS_SCHEMA["properties"].items()}
    params.update({"landscape": "quadratic", "kappa": kappa, **over})
    return params


def fitted_rate(params, method):
    land = opt.make_landscape(params)
    hp = opt.hyperparameters(land, params)[method]
    path, _ = opt.run_method(method, land, land.start, hp, params["iterations"])
    err = np.linalg.norm(path, axis=1)  # x* = 0
    return opt.fit_rate(err, opt.error_floor(np.zeros(2)), params["fit_tail"])["rate"]


@pytest.mark.parametrize("kappa", [1, 4, 10, 100])
def test_fitted_gd_and_heavy_ball_rates_match_theory(kappa):
    params = quad_params(kappa)
    theory = opt.theoretical_rates(kappa)
    assert abs(fitted_rate(params, "gd") - theory["gd"]) < GD_TOL
    for method in ("heavy_ball", "nesterov"):
        excess = fitted_rate(params, method) - theory[method]
        assert -1e-9 < excess < MOMENTUM_EXCESS_TOL, (method, excess)


@pytest.mark.parametrize("kappa", [1, 2.5, 10, 100, 1e4])
def test_spectral_radius_of_tuned_methods_is_the_closed_form(kappa):
    mu, L = 1.0, float(kappa)
    hps = opt.tuned_hyperparameters(mu, L)
    closed = opt.theoretical_rates(kappa)
    for method in ("gd", "heavy_ball", "nesterov"):
        # a double root: the computed modulus is exact up to sqrt(round-off)
        assert opt.linear_rate(method, np.diag([mu, L]), hps[method]) == pytest.approx(closed[method], abs=1e-7)


def test_spectral_radius_matches_the_iteration_matrix():
    """The per-eigenvalue roots equal the eigenvalues of the 4x4 iteration on (e_t, e_{t-1})."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.standard_normal((2, 2))
        hess = a @ a.T + 0.1 * np.eye(2)
        lr, mu = rng.uniform(0.01, 1.5 / np.linalg.eigvalsh(hess)[1]), rng.uniform(0, 0.99)
        eye, zero = np.eye(2), np.zeros((2, 2))
        hb = np.block([[(1 + mu) * eye - lr * hess, -mu * eye], [eye, zero]])
        nag = np.block([[(1 + mu) * (eye - lr * hess), -mu * (eye - lr * hess)], [eye, zero]])
        for method, mat in (("heavy_ball", hb), ("nesterov", nag)):
            expected = np.max(np.abs(np.linalg.eigvals(mat)))
            assert opt.linear_rate(method, hess, {"lr": lr, "momentum": mu}) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("landscape", ["quadratic", "lecture"])
def test_momentum_methods_reduce_to_gd_with_zero_momentum(landscape):
    params = quad_params(10, landscape=landscape)
    land = opt.make_landscape(params)
    start = (0.3, -1.2)
    gd = opt.gd_path(land.grad, start, 0.01, 300)
    for nesterov in (False, True):
        path = opt.momentum_path(land.grad, start, 0.01, 0.0, 300, nesterov=nesterov)
        np.testing.assert_array_equal(path, gd)


def test_nesterov_uses_the_look_ahead_gradient():
    land = opt.lecture()
    x0, lr, mu = np.array([0.5, 1.5]), 0.01, 0.9
    path = opt.momentum_path(land.grad, x0, lr, mu, 2, nesterov=True)
    x1 = x0 - lr * land.grad(x0)  # x_{-1} = x_0: the first step is a gradient step
    y1 = x1 + mu * (x1 - x0)
    np.testing.assert_allclose(path[1], x1, rtol=0, atol=1e-15)
    np.testing.assert_allclose(path[2], y1 - lr * land.grad(y1), rtol=0, atol=1e-15)
    heavy = opt.momentum_path(land.grad, x0, lr, mu, 2, nesterov=False)
    np.testing.assert_allclose(heavy[2], x1 - lr * land.grad(x1) + mu * (x1 - x0), rtol=0, atol=1e-15)


def test_adagrad_first_step_equals_its_formula():
    land = opt.lecture()
    x0, lr, eps = np.array([2.0, 0.0]), 0.5, 1e-8
    path, acc = opt.adagrad_path(land.grad, x0, lr, eps, 1)
    g = land.grad(x0)
    np.testing.assert_allclose(path[1], x0 - lr * g / (np.sqrt(g * g) + eps), rtol=1e-15)
    np.testing.assert_allclose(acc, g * g)
    # eps << |g|: every coordinate moves by lr against the sign of its gradient
    np.testing.assert_allclose(path[1] - x0, -lr * np.sign(g), rtol=1e-6)


def test_adagrad_path_does_not_depend_on_the_scaling_of_the_quadratic():
    paths = []
    for a, b in ((0.5, 0.5), (0.5, 50.0), (3.0, 0.01)):
        land = opt.quadratic(a, b)
        path, _ = opt.adagrad_path(land.grad, (-2.0, 1.0), 0.5, 0.0, 200)
        paths.append(path)
    for path in paths[1:]:
        np.testing.assert_allclose(path, paths[0], rtol=1e-12, atol=1e-300)


def test_lecture_minimizers_are_found_numerically():
    land = opt.lecture()
    mins = opt.find_minimizers(land)
    values = land.f(mins)
    assert values.min() < 1e-25  # f* = 0: both squares vanish
    for exact in ((1.0, 2.0), (-1.0, 0.0)):
        assert np.min(np.linalg.norm(mins - np.array(exact), axis=1)) < 1e-12
    for x in mins:
        np.testing.assert_allclose(land.grad(x), 0, atol=1e-12)
        assert np.all(np.linalg.eigvalsh(land.hessian(x)) > 0)


def test_lecture_derivatives_match_finite_differences():
    land = opt.lecture()
    rng = np.random.default_rng(1)
    h = 1e-6
    for x in rng.uniform(-2, 2, size=(10, 2)):
        fd = np.array([(land.f(x + h * e) - land.f(x - h * e)) / (2 * h) for e in np.eye(2)])
        np.testing.assert_allclose(land.grad(x), fd, rtol=1e-6, atol=1e-6)
        fd_h = np.array([(land.grad(x + h * e) - land.grad(x - h * e)) / (2 * h) for e in np.eye(2)])
        np.testing.assert_allclose(land.hessian(x), fd_h, rtol=1e-5, atol=1e-5)


def test_fit_rate_recovers_geometric_sequences_and_finite_termination():
    t = np.arange(200)
    fit = opt.fit_rate(3.0 * 0.9**t, 1e-250, 0.5)
    assert fit["kind"] == "fit" and fit["rate"] == pytest.approx(0.9, rel=1e-12)
    fit = opt.fit_rate(np.array([2.0, 0.0, 0.0, 0.0]), 1e-250, 0.5)
    assert fit["kind"] == "terminated" and fit["rate"] == 0.0
    # below the floor, round-off is not fitted
    errors = np.maximum(0.5**t, 1e-16)
    assert opt.fit_rate(errors, 1e-13, 0.5)["rate"] == pytest.approx(0.5, rel=1e-9)


# ----------------------------------------------------------------------------- end to end


@pytest.fixture
def registered(monkeypatch):
    from mathdl import config as cfg
    from mathdl.studies import STUDIES, Study

    study = Study("optimizers", opt.DEFAULTS, opt.analyze, opt.figures, context=opt.context, compute=opt.compute,
                  params_schema=opt.PARAMS_SCHEMA)
    monkeypatch.setitem(STUDIES, "optimizers", study)
    enum = cfg.load_schema()["$defs"]["experiment"]["properties"]["study"]
    monkeypatch.setitem(enum, "enum", [*enum["enum"], "optimizers"])
    return study


def test_params_are_validated(registered):
    from mathdl.config import ConfigError, load_plan

    with pytest.raises(ConfigError, match=r"experiments.opt.params.kappa: 0.5 is less than the minimum of 1"):
        load_plan({"experiments": {"opt": {"study": "optimizers", "params": {"kappa": 0.5}}}})
    with pytest.raises(ConfigError, match=r"experiments.opt.params.methods\[0\]: 'adam' is not one of"):
        load_plan({"experiments": {"opt": {"study": "optimizers", "params": {"methods": ["adam"]}}}})


def test_compute_analyze_figures_report(registered, tiny_run, figured):
    from mathdl.templating import render_experiment

    plan, exp, tables, summary = tiny_run  # the summary as JSON, NaN refused
    assert len(exp.groups) == 4
    assert list(tables.metrics.columns) == ["run_id", "epoch", "split", "metric", "value"]
    assert {"run_id", "seed", "diverged", "diverged_epoch"} <= set(tables.runs.columns)
    assert summary["gd_rate_error"] < GD_TOL
    assert 0 <= summary["heavy_ball_rate_excess"] < 0.05  # a short window: a larger excess
    assert summary["kappas"] == [1.0, 10.0]
    assert summary["lecture_f_star"] < 1e-25
    assert len([e for e in summary["landscapes"] if e["landscape"] == "lecture"]) == 1  # kappa ignored there
    # The fitted rates against the closed forms (written out here): GD contracts by (k-1)/(k+1) exactly;
    # the tuned heavy ball and Nesterov have a double root, fitted a little above (sqrt k - 1)/(sqrt k + 1)
    # and 1 - 1/sqrt k over 80 iterations; at k = 1 all three reach x* in one step.
    root = np.sqrt(10)
    rates = summary["rates"]
    assert rates["gd"]["10"] == pytest.approx(9 / 11, abs=GD_TOL)
    for method, closed in (("heavy_ball", (root - 1) / (root + 1)), ("nesterov", 1 - 1 / root)):
        assert 0 <= rates[method]["10"] - closed < 0.05, method
    assert [rates[m]["1"] for m in ("gd", "heavy_ball", "nesterov")] == [0.0, 0.0, 0.0]
    assert summary["one_step_kappas"] == [1.0]

    names, drawn, outdir = figured
    assert names == list(opt.FIGURES) == list(drawn)
    for name in names:
        assert (outdir / f"{name}.pdf").is_file() and (outdir / f"{name}.png").is_file()
    # GD from (-2, 1) on the kappa = 10 quadratic with the tuned step: x_t = (-2 r^t, (-r)^t), r = 9/11.
    panel = next(ax for ax in drawn["paths"].axes if ax.get_title() == r"quadratic, $\kappa$ = 10")
    (gd,) = [line for line in panel.get_lines() if line.get_label() == "GD"]
    t = np.arange(81)
    np.testing.assert_allclose(gd.get_xdata(), -2 * (9 / 11) ** t, rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(gd.get_ydata(), (-9 / 11) ** t, rtol=1e-9, atol=1e-300)
    (ax,) = drawn["rates"].axes
    fitted = {line.get_label(): line.get_ydata() for line in ax.get_lines() if not line.get_label().startswith("_")}
    for label, method in (("GD", "gd"), ("heavy ball", "heavy_ball"), ("Nesterov", "nesterov"), ("AdaGrad", "adagrad")):
        np.testing.assert_allclose(fitted[label], [rates[method]["1"], rates[method]["10"]])

    piece = render_experiment(exp, summary)
    assert piece.section.lstrip().startswith(r"\subsection{opt}")
    for name in names:
        assert f"figures/opt/{name}.pdf" in piece.section + piece.slides
    assert r"\begin{frame}" in piece.slides and r"\cite" not in piece.slides


# ----------------------------------------------------------------------------- the words (templates)

# The paper's text width (a4, 2.4 cm margins) and the text area of a beamer 16:9 frame (433 x 244 pt),
# in inches: a figure's fonts print at (their size) x (shown size / drawn size).
PAPER_TEXT_WIDTH_IN = (210 - 2 * 24) / 25.4
SLIDE_TEXT_WIDTH_IN, SLIDE_TEXT_HEIGHT_IN = 433.34 / 72.27, 244.07 / 72.27
MIN_PRINTED_PT = 7


def _printed_min_pt(fig, width_in: float, height_in: float = math.inf) -> float:
    """The smallest font of a figure as printed in a box of width x height (never enlarged)."""
    fig_w, fig_h = fig.get_size_inches()
    scale = min(1.0, width_in / fig_w, height_in / fig_h)
    fig.canvas.draw()
    texts = fig.findobj(lambda o: hasattr(o, "get_fontsize") and hasattr(o, "get_text"))
    return min(t.get_fontsize() for t in texts if t.get_visible() and t.get_text()) * scale


def _tiny(params, sweep):
    """A real run of the study at a small size: plan, experiment, tables and its summary (as JSON)."""
    from mathdl.config import load_plan
    from mathdl.pipeline import run_parameters
    from mathdl.tables import Tables

    plan = load_plan({"device": "cpu", "experiments": {"opt": {
        "study": "optimizers", "seeds": [0], "params": params, "sweep": sweep}}})
    exp = plan.experiment("opt")
    metrics, runs = [], []
    for group in exp.groups:
        result = opt.compute(group, None, device="cpu")
        metrics.append(result.metrics)
        runs.append(result.runs.merge(run_parameters(group), on=["run_id", "seed"]))
    tables = Tables(pd.concat(metrics, ignore_index=True), pd.concat(runs, ignore_index=True))
    return plan, exp, tables, json.loads(json.dumps(opt.analyze(tables, exp), allow_nan=False))


@pytest.fixture(scope="module")
def tiny_run():
    """Quadratics at kappa 1 and 10 and the lecture landscape, 80 iterations: no method reaches a
    minimizer of the lecture landscape yet."""
    return _tiny({"iterations": 80}, {"params.landscape": ["quadratic", "lecture"], "params.kappa": [1, 10]})


@pytest.fixture(scope="module")
def figured(tiny_run, tmp_path_factory):
    """The tiny run's figures, drawn and saved once: names, figures by name, their folder."""
    plan, exp, tables, summary = tiny_run
    outdir = tmp_path_factory.mktemp("figures")
    return (*draw_figures(opt.figures, tables, summary, exp, plan.plot, outdir), outdir)


@pytest.fixture(scope="module")
def lecture_run():
    """The lecture landscape alone at the default 500 iterations: the heavy ball ends at (-1, 0),
    Nesterov and AdaGrad at (1, 2), GD is still on its way to (1, 2)."""
    return _tiny({}, {"params.landscape": ["lecture"]})


def _no_template_slips(text):
    assert "(s)" not in text and "left out of the means" not in text
    assert "\\VAR" not in text and "\\BLOCK" not in text and "%%" not in text


def test_words_of_a_tiny_run(tiny_run):
    from mathdl.report import fmt

    _, exp, _, summary = tiny_run
    section, slides = _words(exp, summary)
    for text in (section, slides):
        _no_template_slips(text)
    assert section.lstrip().startswith(r"\subsection{opt}") and r"\label{sec:opt}" in section
    for name in ("paths", "suboptimality", "rates"):
        assert f"figures/opt/{name}.pdf" in section
    # the numbers the sentences rest on, as the summary has them
    assert f"differs from $(\\kappa-1)/(\\kappa+1)$ by at most {fmt(summary['gd_rate_error'], 2)}" in section
    assert "last half of the iterations" in section  # fit_tail 0.5
    assert r"\num{80}~iterations" in section
    assert summary["one_step_kappas"] == [1.0]
    assert "At $\\kappa=\\num{1}$, GD, the heavy ball and Nesterov's method reach $x^\\star$" in section
    # after 80 iterations no lecture path is within 1% of a minimizer: nothing is said to end anywhere
    assert summary["lecture_n_reached_minimizers"] == 0
    assert "No method reached a minimizer in \\num{80}~iterations." in section
    assert "different minimizers" not in section + slides
    assert "No path diverged." in section
    # slides: one figure per frame, each drawn for the frame
    frames = slides.split(r"\begin{frame}")[1:]
    assert len(frames) == 3
    assert [len(re.findall(r"\\includegraphics", f)) for f in frames] == [1, 1, 1]
    for name in ("slide_quadratic", "slide_lecture", "rates"):
        assert f"figures/opt/{name}.pdf" in slides
    assert r"\cite" not in slides and "no method has reached one" in slides


def test_lecture_words_follow_where_the_paths_end(lecture_run):
    _, exp, _, summary = lecture_run
    methods = summary["lecture_methods"]
    mins = [(round(m["x1"]), round(m["x2"])) for m in summary["lecture_minimizers"]]
    assert mins == [(-1, 0), (1, 2)]
    assert [methods[m]["approached"] for m in ("gd", "heavy_ball", "nesterov", "adagrad")] == [False, True, True, True]
    assert [methods[m]["minimizer"] for m in ("heavy_ball", "nesterov", "adagrad")] == [0, 1, 1]
    assert summary["lecture_reached_minimizers"] == [0, 1]
    # the final iterates are as far apart as the two minimizers (2 sqrt 2)
    assert summary["lecture_final_spread_relative"] == pytest.approx(1.0, abs=0.01)
    section, slides = _words(exp, summary)
    assert "The methods thus end at different minimizers" in section
    assert "the heavy ball reaches $(\\num{-1},\\num{0})$" in section
    assert "Nesterov's method reaches $(\\num{1},\\num{2})$" in section
    assert "GD is still at distance" in section
    assert "the methods end at different minimizers" in slides
    # no quadratic: no rates, no table, no quadratic frame
    assert "rates.pdf" not in section + slides and r"\begin{table}" not in section
    assert "slide_quadratic" not in slides and "slide_lecture" in slides

    # every path at the same minimizer
    same = {m: {**r, "approached": True, "minimizer": 1} for m, r in methods.items()}
    landscapes = [{**summary["landscapes"][0], "methods": same}]
    section, slides = _words(exp, _edited(summary, landscapes=landscapes, lecture_methods=same,
                                          lecture_reached_minimizers=[1], lecture_n_reached_minimizers=1,
                                          lecture_n_approached=4, lecture_final_spread_relative=0.001))
    assert "All methods end at the same minimizer" in section and "different" not in section
    assert "every method reaches the same minimizer, $(\\num{1},\\num{2})$" in slides

    # none there yet
    away = {m: {**r, "approached": False} for m, r in methods.items()}
    landscapes = [{**summary["landscapes"][0], "methods": away}]
    section, slides = _words(exp, _edited(summary, landscapes=landscapes, lecture_methods=away,
                                          lecture_reached_minimizers=[], lecture_n_reached_minimizers=0,
                                          lecture_n_approached=0, lecture_rate_error=None))
    assert "No method reached a minimizer in \\num{500}~iterations." in section
    assert "reaches $(" not in section and "different minimizers" not in section + slides


def test_the_fitted_window_is_the_configured_one(tiny_run):
    _, exp, _, summary = tiny_run
    section, _ = _words(exp, _edited(summary, fit_tails=[0.3]))
    assert section.count(r"over the last \num{30}\,\% of the iterations") == 2  # text and table caption
    assert "half" not in section


def test_rate_words_follow_the_signs_of_the_differences(tiny_run):
    _, exp, _, summary = tiny_run
    assert summary["tuned"] and summary["heavy_ball_rate_excess_min"] >= 0
    section, _ = _words(exp, summary)
    assert "The fitted rate of the heavy ball exceeds $(\\sqrt\\kappa-1)/(\\sqrt\\kappa+1)$ by" in section
    assert "the bias of the double root" in section
    # a fit below the closed form: no "exceeds"
    section, _ = _words(exp, _edited(summary, heavy_ball_rate_excess_min=-0.01))
    assert "heavy ball exceeds" not in section
    assert "The fitted rate of the heavy ball differs from $(\\sqrt\\kappa-1)/(\\sqrt\\kappa+1)$ by at most" in section
    # steps from the configuration: no closed forms, no double roots
    section, slides = _words(exp, _edited(summary, tuned=False))
    assert "double root" not in section + slides and "exceeds" not in section
    assert "differs from its spectral radius" in section and "closed form of" not in section
    # a method that never approached x*
    section, _ = _words(exp, _edited(summary, nesterov_rate_excess=None, nesterov_rate_excess_min=None,
                                     nesterov_rate_error=None))
    assert "Nesterov's method did not approach $x^\\star$ in any run" in section


def test_adagrad_and_divergence_words(tiny_run):
    _, exp, _, summary = tiny_run
    assert summary["adagrad_paths_coincide"]
    section, _ = _words(exp, summary)
    assert "AdaGrad's paths for the different $\\kappa$ coincide" in section
    section, slides = _words(exp, _edited(summary, adagrad_paths_coincide=False, adagrad_kappa_invariance=0.3))
    assert "coincide" not in section.split("AdaGrad's paths")[1].split(".")[0]
    assert "differ by up to \\num{0.3}" in section and "differ by up to \\num{0.3}" in slides
    section, _ = _words(exp, _edited(summary, n_diverged_paths=2))
    assert r"\num{2} of the \num{12} paths diverged." in section
    section, _ = _words(exp, _edited(summary, n_diverged_paths=1))
    assert r"One of the \num{12} paths diverged." in section


def test_figures_tell_the_methods_apart_and_print_readably(figured):
    from matplotlib.colors import to_rgb

    names, drawn, _ = figured
    assert names == list(opt.FIGURES) == list(drawn)
    # one colour and line style per method, the same in every figure; no two colours alike
    styles = {}
    for name in ("paths", "suboptimality", "slide_quadratic", "slide_lecture"):
        for ax in drawn[name].axes:
            for line in ax.get_lines():
                if line.get_label() in opt.METHOD_LABELS.values():
                    style = (to_rgb(line.get_color()), line.get_linestyle())
                    assert styles.setdefault(line.get_label(), style) == style, (name, line.get_label())
    assert len(styles) == 4
    rgb = [np.array(c) for c, _ in styles.values()]
    # RGB distance: the colour-blind palette's two oranges (#DE8F05, #D55E00), which the heavy ball and
    # AdaGrad once had, are 0.19 apart; its blue and green 0.30
    assert min(np.linalg.norm(a - b) for i, a in enumerate(rgb) for b in rgb[i + 1:]) > 0.25
    assert len({ls for _, ls in styles.values()}) == 4
    # every label, tick and legend entry prints at 7 pt or more where the figure is shown
    # as the templates include them: the paper at (a fraction of) the text width, the slides at the frame's
    # width and at most 0.66 of its height
    shown = {"paths": (PAPER_TEXT_WIDTH_IN,), "suboptimality": (PAPER_TEXT_WIDTH_IN,), "rates": (0.8 * PAPER_TEXT_WIDTH_IN,),
             "slide_quadratic": (SLIDE_TEXT_WIDTH_IN, 0.66 * SLIDE_TEXT_HEIGHT_IN),
             "slide_lecture": (SLIDE_TEXT_WIDTH_IN, 0.66 * SLIDE_TEXT_HEIGHT_IN)}
    for name, box in shown.items():
        assert _printed_min_pt(drawn[name], *box) >= MIN_PRINTED_PT, (name, _printed_min_pt(drawn[name], *box))
