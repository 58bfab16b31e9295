"""The depth-separation study: the sawtooth network, piece counts, the shallow bound, end to end."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pandas as pd
import pytest

import mathdl.config as cfg
from mathdl.studies import depth_separation as ds
from helpers import words

# ----------------------------------------------------------------------------- the sawtooth


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
def test_deep_network_is_the_sawtooth_exactly_with_two_to_the_k_pieces(k):
    x = ds.dyadic_grid(k, 4)
    deep = ds.deep_sawtooth(x, k)
    assert np.max(np.abs(deep - ds.sawtooth(x, k))) == 0.0  # dyadic arithmetic is exact in float64
    assert ds.count_pieces(x, deep) == 2**k
    assert ds.sawtooth_architecture(k).parameter_count() == 6 * k + 1


def test_deep_network_is_the_composed_tent_map_off_the_grid():
    def tent(x):
        return 2 * np.maximum(x, 0) - 4 * np.maximum(x - 0.5, 0)

    x = np.random.default_rng(0).uniform(size=500)
    y = x.copy()
    for _ in range(4):
        y = tent(y)
    np.testing.assert_allclose(ds.deep_sawtooth(x, 4), y, atol=1e-12)
    np.testing.assert_allclose(ds.sawtooth(x, 4), y, atol=1e-12)


def test_count_pieces_of_known_functions():
    x = np.linspace(-1, 1, 201)
    assert ds.count_pieces(x, 3 * x + 1) == 1
    assert ds.count_pieces(x, np.abs(x)) == 2
    assert ds.count_pieces(x, np.maximum(np.abs(x) - 0.5, 0)) == 3


@pytest.mark.parametrize("width", [1, 2, 5, 12])
def test_a_width_w_shallow_network_has_at_most_w_plus_one_pieces(width):
    rng = np.random.default_rng(width)
    grid = np.linspace(0, 1, 257)
    for _ in range(20):
        w, b, a = rng.standard_normal(width), rng.uniform(-1, 1, width), rng.standard_normal(width)
        pts, vals = ds.shallow_network_pieces(grid, w, b, a, float(rng.standard_normal()))
        pieces = ds.count_pieces(pts, vals)
        inside = np.sum((-b / w > 0) & (-b / w < 1))
        assert pieces <= width + 1
        assert pieces == 1 + inside  # generic weights: every breakpoint in (0, 1) bends the function


# ----------------------------------------------------------------------------- shallow fits


@pytest.mark.parametrize("k", [2, 3, 4])
def test_dyadic_fits_respect_the_bound_and_are_exact_at_width_two_to_the_k(k):
    x = ds.dyadic_grid(k, 4)
    y = ds.sawtooth(x, k)
    for width in [1, 2, 2**k - 1, 2**k, 2**k + 1, 2**k + 3]:
        knots = ds.shallow_knots(width, k)
        assert len(knots) == width
        coef = ds.fit_shallow(x, y, knots)
        err = ds.exact_l2_error(knots, coef, k, 4)
        assert err >= ds.shallow_lower_bound(width, k) - 1e-12
        if width >= 2**k:
            assert err < 1e-20
        else:
            assert err > 1e-4  # W = 2^k - 1 cannot be exact: the left slope cannot be matched
    # Uniform breakpoints j/W, at a width not a multiple of 2^k, miss the dyadic points: not exact.
    knots = np.arange(2**k + 1) / (2**k + 1)
    assert ds.exact_l2_error(knots, ds.fit_shallow(x, y, knots), k, 4) > 1e-4
    assert ds.shallow_lower_bound(1, k) == pytest.approx((1 - 2.0 ** (1 - k)) / 12)
    assert ds.shallow_lower_bound(2 ** (k - 1), k) == 0.0 and ds.piece_count_value(2 ** (k - 1), k) == 1 / 24


def test_wide_fits_stay_exact_between_grid_points():
    # More knots than grid points: the fit must interpolate at the knots too, or it wiggles between.
    rows = pd.DataFrame(ds.sawtooth_rows(2, 1, [3, 4, 40], restarts=2), columns=["epoch", "split", "metric", "value"])
    fits = rows[(rows["split"] == "shallow_k2")].pivot_table(index="epoch", columns="metric", values="value")
    assert fits.loc[3, "l2_error"] > 1e-4
    assert fits.loc[4, "l2_error"] < 1e-20 and fits.loc[40, "l2_error"] < 1e-20
    assert (fits["pieces"] <= fits.index + 1).all()
    assert fits.loc[40, "max_error"] < 1e-12


def test_exact_l2_error_agrees_with_a_fine_quadrature():
    k = 3
    knots = ds.shallow_knots(5, k)
    x = ds.dyadic_grid(k, 4)
    coef = ds.fit_shallow(x, ds.sawtooth(x, k), knots)
    fine = np.linspace(0, 1, 200_001)
    quad = np.trapezoid((ds.shallow_eval(fine, knots, coef) - ds.sawtooth(fine, k)) ** 2, fine)
    assert ds.exact_l2_error(knots, coef, k, 4) == pytest.approx(quad, rel=1e-6)


def test_tent_variance_is_one_twelfth():
    # The constant of the bound: the best affine L2 fit of the tent is its mean 1/2.
    x = np.linspace(0, 1, 100_001)
    tent = ds.sawtooth(x, 1)
    a = np.polyfit(x, tent, 1)
    assert abs(a[0]) < 1e-8
    assert np.trapezoid((tent - np.polyval(a, x)) ** 2, x) == pytest.approx(1 / 12, rel=1e-6)


# The counterexample to the bound counted by pieces: width 3, k = 2.
COUNTER = dict(w=np.array([1.0, -1.0, 1.0]), b=np.array([-0.219, 0.749, -0.485]),
               a=np.array([-9.456, -5.752, 6.626]), c=4.116)


def test_the_counterexample_breaks_the_count_by_pieces_not_the_bound():
    err = ds.network_l2_error(k=2, **COUNTER)
    fine = np.linspace(0, 1, 400_001)
    quad = np.trapezoid((ds.network_eval(fine, **COUNTER) - ds.sawtooth(fine, 2)) ** 2, fine)
    assert err == pytest.approx(quad, rel=1e-6) and err == pytest.approx(0.00654, abs=5e-6)
    assert err < ds.piece_count_value(3, 2) == pytest.approx(1 / 48)  # (1 - W/2^k)_+/12 is no bound
    assert err >= ds.shallow_lower_bound(3, 2)  # (1 - W/2^(k-1))_+/12 = 0 here
    assert ds.network_pieces(COUNTER["w"], COUNTER["b"], COUNTER["a"]) == 4
    # The search finds a network at least as good from a handful of starts.
    assert ds.optimize_shallow(3, 2, restarts=4)["l2_error"] <= err + 1e-12


@pytest.mark.parametrize("k", [2, 3, 4])
def test_the_bound_holds_for_random_and_optimized_networks(k):
    rng = np.random.default_rng(k)
    for width in range(1, 2 ** (k - 1)):  # where the bound is positive
        bound = ds.shallow_lower_bound(width, k)
        assert bound == pytest.approx((2 ** (k - 1) - width) / (12 * 2 ** (k - 1)))
        for _ in range(50):
            w, b = rng.standard_normal(width), rng.uniform(-1, 1, width)
            a, c, err, _ = ds.fit_output_layer(w, b, k)  # the best output layer for a random first layer
            assert err >= bound and ds.network_l2_error(w, b, a, c, k) == pytest.approx(err, rel=1e-9, abs=1e-15)
        best = ds.optimize_shallow(width, k, restarts=4)
        assert bound <= best["l2_error"] < 1 / 12


@pytest.mark.parametrize("k", [1, 3, 6])
def test_a_constant_attains_the_bound_for_one_piece(k):
    # p = 1 (a network of width 0): the best constant 1/2 is at squared distance exactly 1/12.
    empty = np.zeros(0)
    assert ds.network_l2_error(empty, empty, empty, 0.5, k) == pytest.approx(1 / 12, rel=1e-12)
    assert ds.shallow_lower_bound(0, k) == pytest.approx(1 / 12)


def test_the_output_layer_is_the_exact_least_squares_fit_with_its_gradient():
    k, width = 3, 4
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal(width), rng.uniform(-1, 1, width)
    a, c, err, grad = ds.fit_output_layer(w, b, k)
    # Against least squares on a fine grid (trapezoid weights): same coefficients, same error.
    x = np.linspace(0, 1, 200_001)
    features = np.concatenate([np.maximum(np.outer(x, w) + b, 0), np.ones((len(x), 1))], axis=1)
    coef, *_ = np.linalg.lstsq(features, ds.sawtooth(x, k), rcond=None)
    np.testing.assert_allclose(np.append(a, c), coef, rtol=1e-4, atol=1e-6)
    assert err == pytest.approx(np.trapezoid((features @ coef - ds.sawtooth(x, k)) ** 2, x), rel=1e-5)
    # The envelope-theorem gradient against central differences of the exact error.
    theta, h = np.concatenate([w, b]), 1e-6
    numeric = [(ds.fit_output_layer(*np.split(theta + h * e, 2), k)[2] - ds.fit_output_layer(*np.split(theta - h * e, 2), k)[2])
               / (2 * h) for e in np.eye(2 * width)]
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-9)


def test_network_pieces_counts_real_bends_only():
    assert ds.network_pieces(np.array([1.0, 1.0]), np.array([-0.5, -0.5]), np.array([1.0, -1.0])) == 1  # they cancel
    assert ds.network_pieces(np.array([1.0, -2.0]), np.array([-0.25, 1.5]), np.array([1.0, 1.0])) == 3
    assert ds.network_pieces(np.array([1.0]), np.array([0.5]), np.array([3.0])) == 1  # bends outside [0, 1]


def test_matched_widths_match_parameter_counts():
    from mathdl.config import ModelConfig
    from mathdl.models import parameter_count

    w, shallow, deep = ds.matched_widths(10, 32)
    base = dict(activation="relu", residual=False, residual_scale=1.0, init="pytorch", output_scale=1.0)
    assert deep == parameter_count(ModelConfig(depth=2, width=32, **base), 10, 1)
    assert shallow == parameter_count(ModelConfig(depth=1, width=w, **base), 10, 1)
    assert abs(shallow - deep) <= 12


# ----------------------------------------------------------------------------- the study end to end


@pytest.fixture
def registered(monkeypatch):
    from mathdl.studies import STUDIES, Study

    study = Study("depth_separation", ds.DEFAULTS, ds.analyze, ds.figures, context=ds.context, compute=ds.compute,
                  params_schema=ds.PARAMS_SCHEMA)
    monkeypatch.setitem(STUDIES, "depth_separation", study)
    enum = cfg.load_schema()["$defs"]["experiment"]["properties"]["study"]
    monkeypatch.setitem(enum, "enum", [*enum["enum"], "depth_separation"])


def _radial_test_variance(p) -> float:
    """Var y of the radial test set, redrawn from its stream [data_seed, dim] as float32 targets."""
    rng = np.random.default_rng([p["data_seed"], p["dim"]])
    rng.standard_normal((p["n_train"], p["dim"]))  # the training inputs come first
    x = rng.standard_normal((p["n_test"], p["dim"]))
    return float(np.var(np.sin(2 * np.pi * p["frequency"] * (np.linalg.norm(x, axis=1) - np.sqrt(p["dim"])))
                        .astype(np.float32)))


TINY = {"k_max": 3, "shallow_widths": [1, 3, 4, 8], "shallow_restarts": 4, "dim": 4, "n_train": 300, "n_test": 200,
        "deep_width": 8, "epochs": 3, "batch_size": 100}


@pytest.fixture(scope="module")
def tiny_run():
    """A real tiny run over seeds 0 and 1, computed once for the file: plan, experiment, each group's
    result, the tables and the summary (as JSON)."""
    from mathdl.pipeline import run_parameters
    from mathdl.tables import Tables
    from mathdl.tasks import make_dataset

    plan = cfg.load_plan({"device": "cpu", "experiments": {"ds": {"study": "depth_separation", "seeds": [0, 1],
                                                                  "params": TINY}}})
    exp = plan.experiment("ds")
    results = [ds.compute(group, make_dataset(group.task), device="cpu") for group in exp.groups]
    tables = Tables(pd.concat([r.metrics for r in results], ignore_index=True),
                    pd.concat([r.runs.merge(run_parameters(g), on=["run_id", "seed"])
                               for g, r in zip(exp.groups, results)], ignore_index=True))
    return plan, exp, results, tables, json.loads(json.dumps(ds.analyze(tables, exp), allow_nan=False))


def test_compute_analyze_figures_report(registered, tiny_run, tmp_path, root, drawn):
    plan, exp, results, tables, summary = tiny_run
    for group, result in zip(exp.groups, results, strict=True):
        assert list(result.metrics.columns) == ["run_id", "epoch", "split", "metric", "value"]
        assert set(result.metrics["run_id"]) == {r.run_id for r in group.runs}

    assert summary["sawtooth_max_error"] == 0.0
    assert summary["sawtooth_pieces"] == {"1": 2, "2": 4, "3": 8}
    assert summary["shallow_exact_width"] == {"1": 3, "2": 4, "3": 8}  # the smallest fitted W >= 2^k
    for key in ("shallow_dyadic_pieces", "shallow_best_pieces"):
        for k, fits in summary[key].items():
            assert all(p <= int(w) + 1 for w, p in fits.items()), (key, k)
    # The bound against the best networks found, recomputed from the fits: positive at (k, W) = (2, 1),
    # (3, 1), (3, 3); the search starts from the dyadic fit, so it never does worse than that.
    best, dyadic = summary["shallow_best_l2_error"], summary["shallow_dyadic_l2_error"]
    checked = [(k, w) for k in (1, 2, 3) for w in (1, 3, 4, 8) if w < 2 ** (k - 1)]
    assert checked == [(2, 1), (3, 1), (3, 3)] and summary["shallow_bound_checks"] == 3
    ratios = [best[str(k)][str(w)] / ds.shallow_lower_bound(w, k) for k, w in checked]
    assert summary["shallow_bound_violations"] == 0 and min(ratios) >= 1.0
    assert summary["shallow_min_best_over_bound"] == pytest.approx(min(ratios), rel=1e-12)
    assert summary["shallow_max_best_over_bound"] == pytest.approx(max(ratios), rel=1e-12)
    assert summary["shallow_example"]["k"] == 3 and summary["shallow_example"]["width"] == 3
    assert all(best[k][w] <= dyadic[k][w] + 1e-15 for k in best for w in best[k])
    # The search beats the count by pieces at k = 2, W = 3 (the counterexample is 0.0065 < 1/48).
    assert best["2"]["3"] < ds.piece_count_value(3, 2) and summary["shallow_below_piece_count"] >= 1
    assert summary["shallow_widest_inexact"]["width"] == 4 and summary["shallow_restarts"] == TINY["shallow_restarts"]
    # The ratio of the engine's last-epoch test losses, read from the raw metrics: mean over seeds of
    # the shallow network over that of the deep one, and the mean of the per-seed ratios.
    m = tables.metrics[tables.metrics["split"] == "test"]  # the radial part (the sawtooth rows have no test split)
    last = m[m["epoch"] == m["epoch"].max()]
    final = last.pivot_table(index="run_id", columns="metric", values="value")
    assert len(final) == 2 and final["shallow_mse"].ne(final["deep_mse"]).all()
    assert summary["mse_ratio_shallow_over_deep"] == pytest.approx(
        final["shallow_mse"].mean() / final["deep_mse"].mean(), rel=1e-12)
    assert summary["mse_ratio_per_seed_mean"] == pytest.approx((final["shallow_mse"] / final["deep_mse"]).mean(),
                                                               rel=1e-12)
    var_y = _radial_test_variance(exp.params)
    for arch in ("shallow", "deep"):
        assert summary["test_mse"][arch]["mean"] == pytest.approx(final[f"{arch}_mse"].mean(), rel=1e-12)
        np.testing.assert_allclose(final[f"{arch}_relative_mse"], final[f"{arch}_mse"] / var_y, rtol=1e-6)
    assert summary["shallow_params"] - summary["deep_params"] in range(-6, 7)

    names = ds.figures(tables, summary, exp, plan.plot, tmp_path)
    assert names == list(ds.FIGURES) == list(drawn)
    for name in names:
        assert (tmp_path / f"{name}.pdf").stat().st_size > 0 and (tmp_path / f"{name}.png").exists()
    curves, counts = drawn["sawtooth"].axes
    for k, line in zip([1, 2, 3], curves.get_lines()):
        np.testing.assert_array_equal(line.get_ydata(), ds.sawtooth(line.get_xdata(), k))
    np.testing.assert_array_equal(counts.get_lines()[0].get_ydata(), [2, 4, 8])  # counted pieces
    (ax,) = drawn["shallow_fit"].axes
    # Per k: the best errors found, then the bound (1 - W/2^(k-1))/12 where positive
    # (no such width for k = 1).
    fit1, fit2, bound2, fit3, bound3 = ax.get_lines()
    for k, fit in zip([1, 2, 3], [fit1, fit2, fit3]):
        np.testing.assert_allclose(fit.get_ydata(), [summary["shallow_best_l2_error"][str(k)][str(w)]
                                                     for w in fit.get_xdata()])
    for k, bound in zip([2, 3], [bound2, bound3]):
        np.testing.assert_array_equal(bound.get_xdata(), np.arange(1, 2 ** (k - 1)))
        np.testing.assert_allclose(bound.get_ydata(), (1 - bound.get_xdata() / 2 ** (k - 1)) / 12)
    (ax,) = drawn["radial"].axes
    curves = [line.get_ydata() for line in ax.get_lines() if len(line.get_xdata())]
    by_epoch = m.groupby(["metric", "epoch"])["value"].mean()
    np.testing.assert_allclose(curves, [by_epoch["shallow_relative_mse"], by_epoch["deep_relative_mse"]], rtol=1e-6)

    from mathdl.templating import render_experiment

    piece = render_experiment(exp, summary)
    for name in names:
        assert f"figures/ds/{name}.pdf" in piece.section
    bib = (root / "report" / "references.bib").read_text()
    for keys in re.findall(r"\\cite[tp](?:\[[^\]]*\])?\{([^}]*)\}", piece.section):
        for key in keys.split(","):
            assert f"{{{key.strip()},\n" in bib, key
    assert "\\cite" not in piece.slides and piece.slides.count("\\begin{frame}") == 1


# ----------------------------------------------------------------------------- the words


@pytest.fixture(scope="module")
def tiny(tiny_run):
    """(experiment, summary) of the real tiny run."""
    return tiny_run[1], tiny_run[4]


def _words(exp, summary) -> tuple[str, str]:
    return words(exp, summary, flat=True)


def test_words_of_a_real_tiny_run(tiny, root):
    from mathdl.report import fmt

    exp, summary = tiny
    text, slides = _words(exp, summary)
    # The bound as proved (teeth), never the count by pieces as a bound.
    assert r"\frac1{12}\Bigl(1 - \frac{W}{2^{k-1}}\Bigr)_{+}" in text and r"\citet[Theorem~1.1]{telgarsky2016benefits}" in text
    assert "with $2^k$ in place of $2^{k-1}$ it would be false" in text
    assert summary["shallow_bound_violations"] == 0 and summary["shallow_bound_checks"] == 3
    assert (f"The bound held for the networks found (Figure~\\ref{{fig:ds-fit}}): at all \\num{{3}} pairs $(k, W)$ "
            f"where it is positive ($W < 2^{{k-1}}$) the best network found stays above it, by factors between "
            f"{fmt(summary['shallow_min_best_over_bound'])} and {fmt(summary['shallow_max_best_over_bound'])};") in text
    ex = summary["shallow_example"]
    assert (f"at $k = 3$ and $W = 3$, for instance, its squared error is {fmt(ex['best_l2_error'])} against the "
            f"bound {fmt(ex['lower_bound'])}") in text
    assert summary["shallow_below_piece_count"] >= 1
    assert "the search finds networks good enough to refute a false bound" in text
    assert r"fits $s_{3}$ exactly (squared error below \num{1e-10}) is $W = 8$, that is $2^{3}$." in text
    assert (r"For $s_{3}$ the best network of width 4 found still has squared error "
            f"{fmt(summary['shallow_widest_inexact']['best_l2_error'])}, where the bound is zero") in text
    assert r"exactly $2^k$ pieces for every $k$" in text and r"\num{8}~pieces from \num{19}~parameters" in text
    assert r"\num{3}~epochs, \num{2}~seeds" in text and r"from \num{4}~starts" in text
    ratio = summary["mse_ratio_shallow_over_deep"]
    assert ("it illustrates, and does not prove, the separation" in text) == (ratio > 1)
    assert ("depth does not help on this target" in text) == (ratio <= 1)
    assert ("no benefit of depth" in slides) == (ratio <= 1)
    assert "No run diverged." in text
    assert "(s)" not in text + slides and "--" not in text + slides and "ten dimensions" not in text
    assert "above the bound at all \\num{3} pairs $(k,W)$" in slides and slides.count("\\begin{frame}") == 1
    bib = (root / "report" / "references.bib").read_text()
    for keys in re.findall(r"\\cite[tp](?:\[[^\]]*\])?\{([^}]*)\}", text):
        for key in keys.split(","):
            assert f"{{{key.strip()},\n" in bib, key


def test_words_follow_the_check_of_the_bound(tiny):
    exp, base = tiny
    s = copy.deepcopy(base)
    s["shallow_bound_violations"] = 1
    text, slides = _words(exp, s)
    assert r"The check failed: at \num{1} of the \num{3}~pairs $(k, W)$ where the bound is positive" in text
    assert "the proposition or the computation is wrong" in text and "The bound held" not in text
    assert r"check failed: \num{1} of \num{3} best networks below the bound" in slides

    s = copy.deepcopy(base)
    s.update(shallow_bound_checks=1, shallow_min_best_over_bound=1.5, shallow_max_best_over_bound=1.5)
    text, slides = _words(exp, s)
    assert r"at the one pair $(k, W)$ where it is positive ($W < 2^{k-1}$) the best network found stays above it, by a factor of \num{1.5};" in text
    assert "above the bound at the one pair" in slides

    s.update(shallow_bound_checks=0, shallow_min_best_over_bound=None, shallow_max_best_over_bound=None,
             shallow_example=None)
    text, slides = _words(exp, s)
    assert "so these runs do not check the proposition" in text and "The bound held" not in text
    assert "bound not checked" in slides


def test_words_follow_the_search_and_the_exact_fits(tiny):
    exp, base = tiny
    s = copy.deepcopy(base)
    s["shallow_below_piece_count"] = 0
    text, _ = _words(exp, s)
    assert "No best network found lies below $(1 - W/2^k)_+/12$" in text and "good enough" not in text
    s["shallow_piece_count_checks"] = 0
    text, _ = _words(exp, s)
    assert "No best network found lies below" not in text and "good enough" not in text

    s = copy.deepcopy(base)
    s["shallow_exact_width"]["3"] = None
    s["shallow_widest_inexact"] = {"k": 3, "width": 2, "best_l2_error": 0.07, "lower_bound": 0.04, "piece_count": 0.06}
    text, _ = _words(exp, s)
    assert r"None of the fitted widths fits $s_{3}$ exactly" in text and "The narrowest fitted width" not in text
    assert r"the best network of width 2 found still has squared error \num{0.07} (bound \num{0.04})." in text
    s["shallow_widest_inexact"] = None
    text, _ = _words(exp, s)
    assert "still has squared error" not in text

    s = copy.deepcopy(base)
    s.update(sawtooth_max_error=1e-3, sawtooth_pieces_match=False)
    text, _ = _words(exp, s)
    assert r"differs from the closed form by at most \num{0.001} on the grids, and its counted pieces differ from $2^k$" in text
    assert "exactly $2^k$ pieces" not in text and "equals the closed form" not in text


def test_words_follow_the_radial_comparison(tiny):
    exp, base = tiny
    s = copy.deepcopy(base)
    s.update(mse_ratio_shallow_over_deep=2.5, test_mse_intervals_overlap=False)
    text, slides = _words(exp, s)
    assert (r"the two-layer network's test error is \emph{\num{2.5} times} that of the three-layer network, and "
            "their confidence intervals do not overlap.") in text
    assert "it illustrates, and does not prove, the separation" in text and "does not help" not in text
    assert r"ratio \num{2.5}" in slides and "no benefit of depth" not in slides
    s["test_mse_intervals_overlap"] = True
    assert "although their confidence intervals overlap." in _words(exp, s)[0]
    s["test_mse_intervals_overlap"] = None
    assert "confidence intervals" not in _words(exp, s)[0].split("On the radial target")[1]
    s["mse_ratio_shallow_over_deep"] = None
    text, slides = _words(exp, s)
    assert "No ratio of the two is defined" in text and "ratio" not in slides

    s = copy.deepcopy(base)
    for part in ("shallow", "deep"):
        s["test_mse"][part].update(ci_low=None, ci_high=None)
    s["n_diverged"] = 1
    text, _ = _words(exp, s)
    assert "CI [" not in text and r"(relative to $\Var y$: " in text
    assert r"One of the \num{2} runs diverged and is left out of the means." in text
    assert "No run diverged" not in text


def test_words_name_the_sweep_points(tiny):
    exp, base = tiny
    swept = cfg.load_plan({"device": "cpu", "experiments": {"ds": {
        "study": "depth_separation", "seeds": [0, 1], "params": TINY,
        "sweep": {"params.frequency": [0.4, 0.8]}}}}).experiment("ds")
    s = copy.deepcopy(base)
    s["points"] = [{"point": {"params.frequency": 0.4}, "mse_ratio_shallow_over_deep": 0.9},
                   {"point": {"params.frequency": 0.8}, "mse_ratio_shallow_over_deep": 1.5}]
    text, _ = _words(swept, s)
    assert (r"The experiment sweeps frequency; the numbers above are those of its first point, and the ratios of "
            r"the two test errors at the points are frequency $=$ \num{0.4}: \num{0.9}; frequency $=$ \num{0.8}: "
            r"\num{1.5}.") in text
    assert "The experiment sweeps" not in _words(exp, base)[0]
