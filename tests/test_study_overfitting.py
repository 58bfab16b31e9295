"""The overfitting study: interpolation, leave-one-out, ridge, LASSO (KKT), SVMs and the feature map."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

import mathdl.config as cfg
from mathdl.studies import overfitting as of


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
    assert fit.margin > 0


def test_threshold_error_is_zero_on_separable_points():
    x = np.array([-2.0, -1.0, 0.5, 3.0])
    assert of.best_threshold_error(x, np.array([-1.0, -1.0, 1.0, 1.0])) == 0.0
    assert of.best_threshold_error(x, np.array([1.0, 1.0, -1.0, -1.0])) == 0.0
    assert of.best_threshold_error(x, np.array([1.0, -1.0, 1.0, -1.0])) == pytest.approx(0.25)


# ----------------------------------------------------------------------------- the study end to end


@pytest.fixture
def registered(monkeypatch):
    from mathdl.studies import STUDIES, Study

    study = Study("overfitting", of.DEFAULTS, of.analyze, of.figures, of.report, of.compute, of.PARAMS_SCHEMA, of.SWEEPABLE)
    monkeypatch.setitem(STUDIES, "overfitting", study)
    enum = cfg.load_schema()["$defs"]["experiment"]["properties"]["study"]
    monkeypatch.setitem(enum, "enum", [*enum["enum"], "overfitting"])


TINY = {
    "poly_points": 8, "poly_max_degree": 7, "poly_test_points": 200, "paths_train": 30,
    "paths_features": 10, "paths_test": 200, "n_lambdas": 9, "svm_points": 16, "featuremap_points": 10,
}


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


def test_compute_analyze_figures_report(registered, tmp_path, root):
    import json

    config = {"device": "cpu", "experiments": {"of": {"study": "overfitting", "seeds": [0, 1], "params": TINY}}}
    plan, exp, tables = _run(config)
    assert list(tables.metrics.columns) == ["run_id", "epoch", "split", "metric", "value"]
    assert len(tables.runs) == 2 and not tables.runs["diverged"].any()
    again = _run(config)[2]
    pd.testing.assert_frame_equal(tables.metrics, again.metrics)  # deterministic given the seeds

    summary = json.loads(json.dumps(of.analyze(tables, exp), allow_nan=False))
    assert summary["degrees"] == list(range(8))
    assert 0 <= summary["best_degree"] <= 7
    assert summary["train_mse_at_max_degree"]["mean"] < 1e-16  # degree n - 1 interpolates
    assert summary["poly_loo_mse"][-1]["mean"] is None  # and has no leave-one-out error
    assert summary["best_lambda_ridge"] in summary["lambdas"]
    assert summary["best_lambda_lasso"] in summary["lambdas"]
    assert summary["svm_separable_train_error_max"] == 0
    assert summary["featuremap_separable_after_map"] is True
    assert summary["featuremap_threshold_error_min"] > 0

    names = of.figures(tables, summary, exp, plan.plot, tmp_path)
    assert names == list(of.FIGURES)
    for name in names:
        assert (tmp_path / f"{name}.pdf").stat().st_size > 0 and (tmp_path / f"{name}.png").exists()

    piece = of.report(exp, summary, "figures/of", "Of")
    assert all(re.fullmatch(r"Of[A-Za-z]+", k) for k in piece.macros)
    used = set(re.findall(r"\\(Of[A-Za-z]+)", piece.section + piece.slides))
    assert used <= set(piece.macros)
    for name in names:
        assert f"figures/of/{name}.pdf" in piece.section
    bib = (root / "report" / "references.bib").read_text()
    for keys in re.findall(r"\\cite[tp](?:\[[^\]]*\])?\{([^}]*)\}", piece.section):
        for key in keys.split(","):
            assert f"{{{key.strip()},\n" in bib, key
    assert "\\cite" not in piece.slides and 1 <= piece.slides.count("\\begin{frame}") <= 2


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
