"""The optimizers study: linear rates against theory, the methods' definitions, the end-to-end pieces."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from mathdl.studies import optimizers as opt

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

    study = Study("optimizers", opt.DEFAULTS, opt.analyze, opt.figures, opt.report, opt.compute, opt.PARAMS_SCHEMA)
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


def test_compute_analyze_figures_report(registered, tmp_path):
    from mathdl.config import load_plan
    from mathdl.pipeline import run_parameters
    from mathdl.report import macro_prefix
    from mathdl.tables import Tables

    plan = load_plan({"device": "cpu", "experiments": {"opt": {
        "study": "optimizers", "seeds": [0],
        "params": {"iterations": 80},
        "sweep": {"params.landscape": ["quadratic", "lecture"], "params.kappa": [1, 10]},
    }}})
    exp = plan.experiment("opt")
    assert len(exp.groups) == 4
    metrics, runs = [], []
    for group in exp.groups:
        result = opt.compute(group, None, device="cpu")
        assert list(result.metrics.columns) == ["run_id", "epoch", "split", "metric", "value"]
        assert {"run_id", "seed", "diverged", "diverged_epoch"} <= set(result.runs.columns)
        metrics.append(result.metrics)
        runs.append(result.runs.merge(run_parameters(group), on=["run_id", "seed"]))
    tables = Tables(pd.concat(metrics, ignore_index=True), pd.concat(runs, ignore_index=True))
    summary = opt.analyze(tables, exp)
    assert summary["gd_rate_error"] < GD_TOL
    assert 0 <= summary["heavy_ball_rate_excess"] < 0.05  # a short window: a larger excess
    assert summary["kappas"] == [1.0, 10.0]
    assert summary["lecture_f_star"] < 1e-25
    assert len([e for e in summary["landscapes"] if e["landscape"] == "lecture"]) == 1  # kappa ignored there
    json.dumps(summary, allow_nan=False)

    names = opt.figures(tables, summary, exp, plan.plot, tmp_path)
    assert names == list(opt.FIGURES)
    for name in names:
        assert (tmp_path / f"{name}.pdf").is_file() and (tmp_path / f"{name}.png").is_file()

    prefix = macro_prefix("opt")
    piece = opt.report(exp, summary, "figures/opt", prefix)
    assert all(re.fullmatch(r"[A-Za-z]+", k) and k.startswith(prefix) for k in piece.macros)
    used = set(re.findall(r"\\(" + prefix + r"[A-Za-z]+)", piece.section + piece.slides))
    assert used <= set(piece.macros), used - set(piece.macros)
    assert piece.section.startswith(r"\subsection{opt}")
    for name in names:
        assert f"figures/opt/{name}.pdf" in piece.section
    assert r"\begin{frame}" in piece.slides and r"\cite" not in piece.slides
