"""The overfitting study: interpolation, leave-one-out, ridge, LASSO (KKT), SVMs and the feature map."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

import mathdl.config as cfg
from mathdl.studies import overfitting as of
from conftest import draw_figures
from helpers import edited as _edited, words as _words


# ----------------------------------------------------------------------------- polynomials


def test_degree_n_minus_one_interpolates_n_points():
    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(-1, 1, 12))
    y = rng.standard_normal(12)
    coef = of.legendre_fit(x, y, 11)
    np.testing.assert_allclose(np.polynomial.legendre.legval(x, coef), y, atol=1e-8)
    assert math.isnan(of.loo_mse(x, y, 11))  # every point has leverage one


def test_training_error_falls_with_the_degree():
    x = np.linspace(-1, 1, 10)
    y = of.elephant(x) + 0.3 * np.random.default_rng(1).standard_normal(10)
    errs = [np.mean((np.polynomial.legendre.legval(x, of.legendre_fit(x, y, d)) - y) ** 2) for d in range(10)]
    assert all(b <= a + 1e-12 for a, b in zip(errs, errs[1:]))  # nested models
    assert errs[-1] < 1e-20


def test_closed_form_leave_one_out_equals_refitting():
    rng = np.random.default_rng(2)
    x = np.linspace(-1, 1, 15)
    y = of.elephant(x) + 0.3 * rng.standard_normal(15)
    for degree in (0, 3, 8):
        brute = []
        for i in range(len(x)):
            keep = np.arange(len(x)) != i
            coef = of.legendre_fit(x[keep], y[keep], degree)
            brute.append((np.polynomial.legendre.legval(x[i], coef) - y[i]) ** 2)
        assert of.loo_mse(x, y, degree) == pytest.approx(np.mean(brute), rel=1e-8)


# ----------------------------------------------------------------------------- ridge and LASSO


@pytest.fixture
def sparse_problem():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 20))
    y = x @ of.sparse_beta(20, 4) + rng.standard_normal(50)
    return x, y


def test_ridge_at_lambda_zero_is_least_squares(sparse_problem):
    x, y = sparse_problem
    np.testing.assert_allclose(of.ridge_path(x, y, [0.0])[0], np.linalg.lstsq(x, y, rcond=None)[0], atol=1e-10)
    # More features than points: lambda = 0 gives the minimum-norm interpolant, like lstsq.
    wide = x[:10]
    np.testing.assert_allclose(of.ridge_path(wide, y[:10], [0.0])[0],
                               np.linalg.lstsq(wide, y[:10], rcond=None)[0], atol=1e-10)


def test_ridge_solves_its_normal_equations_and_shrinks(sparse_problem):
    x, y = sparse_problem
    n, p = x.shape
    lambdas = np.array([0.01, 0.1, 1.0, 10.0])
    path = of.ridge_path(x, y, lambdas)
    for lam, beta in zip(lambdas, path):
        np.testing.assert_allclose((x.T @ x + n * lam * np.eye(p)) @ beta, x.T @ y, rtol=1e-9, atol=1e-9)
    norms = np.linalg.norm(path, axis=1)
    assert np.all(np.diff(norms) < 0)


def test_lasso_satisfies_the_kkt_conditions(sparse_problem):
    x, y = sparse_problem
    lambdas = np.geomspace(1e-3, 10, 25)
    path = of.lasso_path(x, y, lambdas)
    for lam, beta in zip(lambdas, path):
        assert of.lasso_kkt_violation(x, y, beta, lam) < 1e-8 * max(1.0, lam)
    # A point that is not the minimiser violates them.
    assert of.lasso_kkt_violation(x, y, path[5] + 0.01, lambdas[5]) > 1e-3


def test_lasso_is_zero_from_lambda_max_on(sparse_problem):
    x, y = sparse_problem
    lam_max = np.abs(x.T @ y).max() / len(y)
    above, below = of.lasso_path(x, y, [lam_max * 1.0001, lam_max * 0.99])
    assert np.all(above == 0)
    assert np.count_nonzero(below) == 1


def test_lasso_with_orthonormal_design_is_the_soft_threshold():
    rng = np.random.default_rng(4)
    n, p = 40, 8
    q, _ = np.linalg.qr(rng.standard_normal((n, p)))
    x = q * math.sqrt(n)  # X^T X / n = I
    y = rng.standard_normal(n) + x[:, 0]
    z = x.T @ y / n
    for lam in (0.05, 0.3, 1.0):
        expected = np.sign(z) * np.maximum(np.abs(z) - lam, 0)
        np.testing.assert_allclose(of.lasso_path(x, y, [lam])[0], expected, atol=1e-10)


# ----------------------------------------------------------------------------- SVMs and the feature map


def _brute_force_margin(x, y, n_angles=200_000):
    """max over unit u of (min_{y=+1} u.x - max_{y=-1} u.x) / 2, the hard margin in the plane."""
    t = np.linspace(0, 2 * np.pi, n_angles, endpoint=False)
    u = np.stack([np.cos(t), np.sin(t)])  # (2, A)
    proj = x @ u
    return float(((proj[y > 0].min(axis=0) - proj[y < 0].max(axis=0)) / 2).max())


def test_hard_margin_svm_of_two_points():
    fit = of.svm_fit(np.array([[1.0, 0.0], [-1.0, 0.0]]), np.array([1.0, -1.0]))
    np.testing.assert_allclose(fit.w, [1.0, 0.0], atol=1e-6)
    assert fit.b == pytest.approx(0.0, abs=1e-6)
    assert fit.margin == pytest.approx(1.0, rel=1e-6)


def test_hard_margin_svm_has_the_largest_margin():
    x, y = of.separable_set(np.random.default_rng(5), 40)
    fit = of.svm_fit(x, y)
    f = y * fit.decision(x)
    assert f.min() >= 1 - 1e-6  # every point outside the margin
    np.testing.assert_allclose(f[fit.support], 1, atol=1e-5)  # support vectors on it
    assert fit.margin == pytest.approx(_brute_force_margin(x, y), rel=1e-4)
    assert fit.train_error(x, y) == 0


def test_soft_margin_svm_satisfies_the_kkt_conditions():
    c = 1.0
    x, y = of.overlapping_set(np.random.default_rng(6), 40)
    fit = of.svm_fit(x, y, c)
    f = y * fit.decision(x)
    tol = 1e-4
    zero, at_c = fit.alpha < tol * c, fit.alpha > c * (1 - tol)
    free = ~zero & ~at_c
    assert np.all(f[zero] >= 1 - tol)
    assert np.all(np.abs(f[free] - 1) <= tol)
    assert np.all(f[at_c] <= 1 + tol)
    assert abs(fit.alpha @ y) < 1e-8
    assert 0 < fit.train_error(x, y) < 0.5


def test_no_threshold_separates_the_red_blue_points_but_a_line_does_after_the_map():
    x, y = of.red_blue_set(np.random.default_rng(7), 24)
    # Brute force over every cut and orientation agrees with the scan.
    cuts = np.concatenate([[-np.inf], np.sort(x) + 1e-9])
    brute = min(np.mean(np.where(s * (x - t) > 0, 1, -1) != y) for t in cuts for s in (1, -1))
    assert of.best_threshold_error(x, y) == pytest.approx(brute)
    assert of.best_threshold_error(x, y) == pytest.approx(6 / 24)  # the smaller group of blues
    fit = of.svm_fit(of.feature_map(x), y)
    assert fit.train_error(of.feature_map(x), y) == 0.0
    assert fit.margin == pytest.approx(_brute_force_margin(of.feature_map(x), y), rel=1e-4)  # the widest line


def test_threshold_error_is_zero_on_separable_points():
    x = np.array([-2.0, -1.0, 0.5, 3.0])
    assert of.best_threshold_error(x, np.array([-1.0, -1.0, 1.0, 1.0])) == 0.0
    assert of.best_threshold_error(x, np.array([1.0, 1.0, -1.0, -1.0])) == 0.0
    assert of.best_threshold_error(x, np.array([1.0, -1.0, 1.0, -1.0])) == pytest.approx(0.25)


# ----------------------------------------------------------------------------- the study end to end


@pytest.fixture
def registered(monkeypatch):
    from mathdl.studies import STUDIES, Study

    study = Study("overfitting", of.DEFAULTS, of.analyze, of.figures, compute=of.compute,
                  params_schema=of.PARAMS_SCHEMA, sweepable=of.SWEEPABLE)
    monkeypatch.setitem(STUDIES, "overfitting", study)
    enum = cfg.load_schema()["$defs"]["experiment"]["properties"]["study"]
    monkeypatch.setitem(enum, "enum", [*enum["enum"], "overfitting"])


TINY = {
    "poly_points": 8, "poly_max_degree": 7, "poly_test_points": 200, "paths_train": 30,
    "paths_features": 10, "paths_test": 200, "n_lambdas": 9, "svm_points": 16, "featuremap_points": 10,
}


TINY_CONFIG = {"device": "cpu", "experiments": {"of": {"study": "overfitting", "seeds": [0, 1], "params": TINY}}}


@pytest.fixture(scope="module")
def tiny_run():
    """The TINY configuration over seeds 0 and 1: plan, experiment, tables and the summary (as JSON)."""
    import json

    plan, exp, tables = _run(TINY_CONFIG)
    return plan, exp, tables, json.loads(json.dumps(of.analyze(tables, exp), allow_nan=False))


@pytest.fixture(scope="module")
def figured(tiny_run, tmp_path_factory):
    """The tiny run's figures, drawn and saved once: names, figures by name, their folder."""
    plan, exp, tables, summary = tiny_run
    outdir = tmp_path_factory.mktemp("figures")
    return (*draw_figures(of.figures, tables, summary, exp, plan.plot, outdir), outdir)


def _run(config):
    from mathdl.pipeline import run_parameters
    from mathdl.tables import Tables
    from mathdl.tasks import make_dataset

    plan = cfg.load_plan(config)
    exp = plan.experiment("of")
    metrics, runs = [], []
    for group in exp.groups:
        result = of.compute(group, make_dataset(group.task), device="cpu")
        metrics.append(result.metrics)
        runs.append(result.runs.merge(run_parameters(group), on=["run_id", "seed"]))
    return plan, exp, Tables(pd.concat(metrics, ignore_index=True), pd.concat(runs, ignore_index=True))


def _smooth(x):
    return np.sin(2 * x) + 0.5 * np.cos(5 * x)  # the study's f, written out again


def _independent_poly_errors(seeds, p) -> tuple[np.ndarray, np.ndarray]:
    """(seed, degree) test and brute-force leave-one-out errors, redrawn from the study's random
    stream [seed, 0] and fitted with numpy's Polynomial.fit (not the study's Legendre solver)."""
    from numpy.polynomial import Polynomial

    n, sigma, top = p["poly_points"], p["poly_noise"], p["poly_max_degree"]
    test, loo = [], []
    for seed in seeds:
        rng = np.random.default_rng([seed, 0])
        x = np.linspace(-1, 1, n)
        y = _smooth(x) + sigma * rng.standard_normal(n)
        x_test = rng.uniform(-1, 1, p["poly_test_points"])
        y_test = _smooth(x_test) + sigma * rng.standard_normal(len(x_test))
        test.append([np.mean((Polynomial.fit(x, y, d)(x_test) - y_test) ** 2) for d in range(top + 1)])
        out = np.arange(n)[:, None] != np.arange(n)  # row i: every point but i
        loo.append([np.mean([(Polynomial.fit(x[k], y[k], d)(x[i]) - y[i]) ** 2 for i, k in enumerate(out)])
                    if d < n - 1 else np.nan for d in range(top + 1)])  # degree n - 1: undefined
    return np.array(test), np.array(loo)


def _independent_paths(seeds, p):
    """Per seed: the ridge (normal equations) and LASSO (proximal gradient, not coordinate descent)
    coefficients on the lambda grid, and their test errors, from the study's stream [seed, 1]."""
    n, k = p["paths_train"], p["paths_nonzero"]
    beta_star = np.zeros(p["paths_features"])
    beta_star[:k] = [(-1) ** j * 2 * (k - j) / k for j in range(k)]
    lambdas = np.geomspace(p["lambda_min"], p["lambda_max"], p["n_lambdas"])
    out = []
    for seed in seeds:
        rng = np.random.default_rng([seed, 1])
        x = rng.standard_normal((n, len(beta_star)))
        y = x @ beta_star + p["paths_noise"] * rng.standard_normal(n)
        x_test = rng.standard_normal((p["paths_test"], len(beta_star)))
        y_test = x_test @ beta_star + p["paths_noise"] * rng.standard_normal(len(x_test))
        ridge = np.array([np.linalg.solve(x.T @ x + n * lam * np.eye(len(beta_star)), x.T @ y) for lam in lambdas])
        step = n / np.linalg.norm(x, 2) ** 2  # 1 / Lipschitz constant of the gradient of |y - X b|^2 / 2n
        lasso = []
        for lam in lambdas:
            b = np.zeros(len(beta_star))
            for _ in range(5000):  # linear convergence: X^T X / n is well conditioned for n = 3p
                z = b - step * x.T @ (x @ b - y) / n
                b = np.sign(z) * np.maximum(np.abs(z) - step * lam, 0)
            lasso.append(b)
        out.append({"ridge": ridge, "lasso": np.array(lasso),
                    "ridge_mse": np.mean((ridge @ x_test.T - y_test) ** 2, axis=1),
                    "lasso_mse": np.mean((np.array(lasso) @ x_test.T - y_test) ** 2, axis=1)})
    return lambdas, out


def _vertical_lines(ax) -> list[float]:
    return [float(line.get_xdata()[0]) for line in ax.get_lines()
            if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1]]


def test_compute_analyze_figures_report(registered, tiny_run, figured, root):
    from mathdl.report import fmt
    from mathdl.templating import render_experiment

    plan, exp, tables, summary = tiny_run  # the summary as JSON, NaN refused
    assert list(tables.metrics.columns) == ["run_id", "epoch", "split", "metric", "value"]
    assert len(tables.runs) == 2 and not tables.runs["diverged"].any()
    again = _run(TINY_CONFIG)[2]
    pd.testing.assert_frame_equal(tables.metrics, again.metrics)  # deterministic given the seeds

    assert summary["degrees"] == list(range(8))
    # The U curve and its minimiser against the same seeds' data refitted independently: degree 4
    # (test error 0.110, next best 0.139 at degree 6); leave-one-out picks 1 (0.27, next 0.51).
    test, loo = _independent_poly_errors([0, 1], exp.params)
    np.testing.assert_allclose([e["mean"] for e in summary["poly_test_mse"]], test.mean(axis=0), rtol=1e-8)
    assert summary["best_degree"] == int(np.argmin(test.mean(axis=0))) == 4
    assert summary["best_degree_test_mse"]["mean"] == pytest.approx(test.mean(axis=0).min(), rel=1e-8)
    assert summary["best_degree_loo"] == int(np.nanargmin(loo.mean(axis=0))) == 1
    np.testing.assert_allclose([e["mean"] for e in summary["poly_loo_mse"][:-1]], loo.mean(axis=0)[:-1], rtol=1e-8)
    assert summary["train_mse_at_max_degree"]["mean"] < 1e-16  # degree n - 1 interpolates
    assert summary["poly_loo_mse"][-1]["mean"] is None  # and has no leave-one-out error
    # Ridge and LASSO against solvers of their own; both are best at lambda = 0.075, the 4th of 9.
    lambdas, paths = _independent_paths([0, 1], exp.params)
    np.testing.assert_allclose(summary["lambdas"], lambdas, rtol=1e-12)
    for method in ("ridge", "lasso"):
        mean = np.mean([seed[f"{method}_mse"] for seed in paths], axis=0)
        np.testing.assert_allclose([e["mean"] for e in summary[f"{method}_test_mse"]], mean, rtol=1e-7)
        assert summary[f"best_lambda_{method}"] == pytest.approx(lambdas[np.argmin(mean)], rel=1e-12)
        assert summary[f"best_lambda_{method}"] == pytest.approx(lambdas[3], rel=1e-12), method
        assert summary[f"{method}_test_mse_at_best"]["mean"] == pytest.approx(mean.min(), rel=1e-7)
    assert summary["svm_separable_train_error_max"] == 0
    assert summary["featuremap_separable_after_map"] is True
    # Two of the five blues lie left of the reds, three right: every threshold misses at least two.
    assert summary["featuremap_threshold_error_min"] == summary["featuremap_threshold_error"]["mean"] == 0.2

    names, drawn, outdir = figured
    assert names == list(of.FIGURES) == list(drawn)
    for name in names:
        assert (outdir / f"{name}.pdf").stat().st_size > 0 and (outdir / f"{name}.png").exists()
    (ax,) = drawn["u_curve"].axes
    train, leave_one_out, test_line = [line for line in ax.get_lines() if len(line.get_xdata()) > 2]
    np.testing.assert_allclose(test_line.get_ydata(), test.mean(axis=0), rtol=1e-8)  # seaborn's mean over seeds
    assert _vertical_lines(ax) == [4] and ax.get_xlabel() == "degree"
    (ax,) = drawn["poly_fits"].axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["f", "degree 1", "degree 4", "degree 7", "data"]
    ridge_ax, lasso_ax = drawn["regularization_paths"].axes
    assert (ridge_ax.get_title(), lasso_ax.get_title()) == ("ridge", "LASSO")
    for ax, method in ((ridge_ax, "ridge"), (lasso_ax, "lasso")):
        coefs = [line.get_ydata() for line in ax.get_lines() if len(line.get_xdata()) == len(lambdas)]
        np.testing.assert_allclose(np.array(coefs).T, paths[0][method], atol=1e-7)  # the first seed's path
        assert _vertical_lines(ax) == [pytest.approx(lambdas[3])]
    (ax,) = drawn["regularization_error"].axes
    curves = [line.get_ydata() for line in ax.get_lines() if len(line.get_xdata()) == len(lambdas)]
    np.testing.assert_allclose(curves, [np.mean([s[f"{m}_mse"] for s in paths], axis=0) for m in ("ridge", "lasso")],
                               rtol=1e-7)
    assert [ax.get_title() for ax in drawn["svm_margins"].axes] == ["separable (hard margin)", "overlapping (C = 1)"]
    assert [len(ax.get_legend().get_texts()) for ax in drawn["feature_map"].axes] == [2, 3]

    piece = render_experiment(exp, summary)
    assert r"is smallest at degree \num{4}" in piece.section
    assert r"The mean leave-one-out error, which uses the training points only, is smallest at degree \num{1}, not \num{4}." \
        in piece.section
    best = fmt(float(lambdas[3]))
    assert f"The best $\\lambda$ is {best} for ridge" in piece.section and f"and {best} for the LASSO" in piece.section
    assert r"(at least \num{0.2} in every seed: no threshold separates them)" in piece.section
    for name in names:
        assert f"figures/of/{name}.pdf" in piece.section + piece.slides
    bib = (root / "report" / "references.bib").read_text()
    for keys in re.findall(r"\\cite[tp](?:\[[^\]]*\])?\{([^}]*)\}", piece.section):
        for key in keys.split(","):
            assert f"{{{key.strip()},\n" in bib, key
    assert "\\cite" not in piece.slides and piece.slides.count("\\begin{frame}") == 2


def test_a_sweep_or_a_degree_past_interpolation_is_refused(registered):
    config = {"device": "cpu", "experiments": {"of": {"study": "overfitting", "seeds": [0], "params": TINY,
                                                      "sweep": {"params.poly_noise": [0.1, 0.2]}}}}
    with pytest.raises(ValueError, match=r"sweeps nothing \(it computes its grids from params\), not params.poly_noise"):
        _run(config)
    config["experiments"]["of"] = {"study": "overfitting", "seeds": [0], "params": {**TINY, "poly_max_degree": 8}}
    with pytest.raises(ValueError, match="poly_max_degree"):
        _run(config)
    config["experiments"]["of"] = {"study": "overfitting", "params": {"poly_pionts": 8}}
    with pytest.raises(cfg.ConfigError, match="did you mean 'poly_points'"):
        cfg.load_plan(config)


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


def test_words_of_a_tiny_run(tiny_run):
    _, exp, _, summary = tiny_run
    section, slides = _words(exp, summary)
    for text in (section, slides):
        assert "(s)" not in text and "left out of the means" not in text and "\\VAR" not in text
    assert section.lstrip().startswith(r"\subsection{of}")
    # the U: degree 4 of 0..7, the test error rising again to degree 7 (which interpolates the 8 points)
    assert (summary["best_degree"], summary["max_degree"], summary["interpolates"]) == (4, 7, True)
    assert summary["test_mse_at_max_degree"]["mean"] > summary["best_degree_test_mse"]["mean"]
    assert "inside the grid" in section and "rises again to" in section and ", a U." in section
    assert r"At degree \num{7} the polynomial interpolates the \num{8}~points" in section
    # ridge keeps its 10 coefficients at lambda = 100, the LASSO drops all of them
    assert (summary["ridge_nonzero_at_lambda_max"], summary["lasso_nonzero_at_lambda_max"]) == (10, 0)
    assert "all \\num{10} coefficients non-zero even at the largest $\\lambda$" in section
    assert "the LASSO has \\num{10} at the smallest $\\lambda$ and \\num{0} at the largest" in section
    assert "end of the grid" not in section  # both best lambdas are the 4th of 9
    assert "separates the training points in every seed" in section
    assert "a line separates them in every seed" in section
    assert "For each of \\num{2}~seeds" in section and "\\num{16}~points" in section
    frames = slides.split(r"\begin{frame}")[1:]
    assert [len(re.findall(r"\\includegraphics", f)) for f in frames] == [1, 1]
    assert "figures/of/slide_errors.pdf" in slides and "figures/of/slide_margins.pdf" in slides
    assert "(no threshold separates)" in slides and "(a line separates)" in slides


def test_words_for_other_outcomes(tiny_run):
    _, exp, _, summary = tiny_run
    lambdas = summary["lambdas"]
    # the minimum at an end of the degree grid: no U
    section, slides = _words(exp, _edited(summary, best_degree=0))
    assert "the constant fit" in section and ", a U." not in section and "(the constant)" in slides
    section, slides = _words(exp, _edited(summary, best_degree=7))
    assert "the largest degree of the grid" in section and ", a U." not in section
    assert "(the largest degree: no U)" in slides
    section, _ = _words(exp, _edited(summary, interpolates=False))
    assert "the polynomial interpolates" not in section and r"At degree \num{7} the training error" in section
    # leave-one-out agreeing, or undefined
    section, _ = _words(exp, _edited(summary, best_degree_loo=4))
    assert "is smallest at the same degree" in section and "not \\num{4}" not in section
    section, _ = _words(exp, _edited(summary, best_degree_loo=None))
    assert "Leave-one-out cross-validation is undefined" in section
    # a best lambda at the end of its grid
    section, _ = _words(exp, _edited(summary, best_lambda_ridge=lambdas[0]))
    assert "ridge's lies at an end of the grid" in section
    section, _ = _words(exp, _edited(summary, best_lambda_ridge=lambdas[-1], best_lambda_lasso=lambdas[-1]))
    assert "both lie at an end of the grid" in section
    section, _ = _words(exp, _edited(summary, ridge_nonzero_at_lambda_max=7.5))
    assert "sets none to zero" not in section and "\\num{7.5} non-zero coefficients on average" in section
    # classifiers that do not separate
    section, slides = _words(exp, _edited(summary, featuremap_threshold_error_min=0.0, featuremap_separable_after_map=False,
                                          svm_featuremap_train_error_max=0.1, svm_separable_train_error_max=0.05))
    assert "no threshold separates" not in section + slides and "(none in some seed" in section
    assert "a line separates" not in section + slides
    assert "the hard-margin classifier leaves a training error of up to \\num{0.1}" in section
    assert "separates the training points in every seed" not in section


def test_figures_print_readably(tiny_run, figured):
    _, exp, _, summary = tiny_run
    names, drawn, _ = figured
    assert names == list(of.FIGURES) == list(drawn)
    section, _ = _words(exp, summary)
    widths = {name: w for w, name in re.findall(r"includegraphics\[width=([0-9.]*)\\linewidth\]\{figures/of/(\w+)\.pdf\}",
                                                section)}
    shown = {name: (float(widths[name] or 1) * PAPER_TEXT_WIDTH_IN,) for name in of.FIGURES if name in widths}
    assert set(shown) == {n for n in of.FIGURES if not n.startswith("slide_")}
    # the slides: the frame's width and at most 0.62 of its height
    shown.update({name: (SLIDE_TEXT_WIDTH_IN, 0.62 * SLIDE_TEXT_HEIGHT_IN) for name in ("slide_errors", "slide_margins")})
    for name, box in shown.items():
        assert _printed_min_pt(drawn[name], *box) >= MIN_PRINTED_PT, (name, _printed_min_pt(drawn[name], *box))
