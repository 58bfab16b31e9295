"""The depth-separation study: the sawtooth network, piece counts, the shallow bound, end to end."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

import mathdl.config as cfg
from mathdl.studies import depth_separation as ds

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
def test_shallow_fits_respect_the_bound_and_are_exact_at_width_two_to_the_k(k):
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
    assert ds.shallow_lower_bound(1, k) == pytest.approx((1 - 2.0**-k) / 12)


def test_wide_fits_stay_exact_between_grid_points():
    # More knots than grid points: the fit must interpolate at the knots too, or it wiggles between.
    rows = pd.DataFrame(ds.sawtooth_rows(2, 1, [3, 4, 40]), columns=["epoch", "split", "metric", "value"])
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

    study = Study("depth_separation", ds.DEFAULTS, ds.analyze, ds.figures, ds.report, compute=ds.compute,
                  params_schema=ds.PARAMS_SCHEMA)
    monkeypatch.setitem(STUDIES, "depth_separation", study)
    enum = cfg.load_schema()["$defs"]["experiment"]["properties"]["study"]
    monkeypatch.setitem(enum, "enum", [*enum["enum"], "depth_separation"])


@pytest.fixture
def drawn(monkeypatch):
    """The figures the study saves, by name: still inspectable after plots.save has closed them."""
    from mathdl import plots

    figs, save = {}, plots.save

    def keep(fig, outdir, name, plot):
        figs[name] = fig
        return save(fig, outdir, name, plot)

    monkeypatch.setattr(plots, "save", keep)
    return figs


def _radial_test_variance(p) -> float:
    """Var y of the radial test set, redrawn from its stream [data_seed, dim] as float32 targets."""
    rng = np.random.default_rng([p["data_seed"], p["dim"]])
    rng.standard_normal((p["n_train"], p["dim"]))  # the training inputs come first
    x = rng.standard_normal((p["n_test"], p["dim"]))
    return float(np.var(np.sin(2 * np.pi * p["frequency"] * (np.linalg.norm(x, axis=1) - np.sqrt(p["dim"])))
                        .astype(np.float32)))


def test_compute_analyze_figures_report(registered, tmp_path, root, drawn):
    from mathdl.pipeline import run_parameters
    from mathdl.tables import Tables
    from mathdl.tasks import make_dataset

    config = {"device": "cpu", "experiments": {"ds": {
        "study": "depth_separation", "seeds": [0, 1],
        "params": {"k_max": 3, "shallow_widths": [1, 3, 4, 8], "dim": 4, "n_train": 300, "n_test": 200,
                   "deep_width": 8, "epochs": 3, "batch_size": 100},
    }}}
    plan = cfg.load_plan(config)
    exp = plan.experiment("ds")
    metrics, runs = [], []
    for group in exp.groups:
        result = ds.compute(group, make_dataset(group.task), device="cpu")
        assert list(result.metrics.columns) == ["run_id", "epoch", "split", "metric", "value"]
        assert set(result.metrics["run_id"]) == {r.run_id for r in group.runs}
        metrics.append(result.metrics)
        runs.append(result.runs.merge(run_parameters(group), on=["run_id", "seed"]))
    tables = Tables(pd.concat(metrics, ignore_index=True), pd.concat(runs, ignore_index=True))

    summary = json.loads(json.dumps(ds.analyze(tables, exp), allow_nan=False))
    assert summary["sawtooth_max_error"] == 0.0
    assert summary["sawtooth_pieces"] == {"1": 2, "2": 4, "3": 8}
    assert summary["shallow_exact_width"] == {"1": 3, "2": 4, "3": 8}  # the smallest fitted W >= 2^k
    for k, fits in summary["shallow_fit_pieces"].items():
        assert all(p <= int(w) + 1 for w, p in fits.items())
    assert summary["shallow_min_error_over_bound"] >= 1.0
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
    lines = ax.get_lines()  # per k: the fitted errors (floored at 1e-12), then the bound (1 - W/2^k)_+ / 12
    for k, fit, bound in zip([1, 2, 3], lines[::2], lines[1::2]):
        np.testing.assert_allclose(fit.get_ydata(), np.maximum([summary["shallow_fit_l2_error"][str(k)][str(w)]
                                                                for w in fit.get_xdata()], 1e-12))
        np.testing.assert_allclose(bound.get_ydata(), np.maximum(0, 1 - bound.get_xdata() / 2**k) / 12)
    (ax,) = drawn["radial"].axes
    curves = [line.get_ydata() for line in ax.get_lines() if len(line.get_xdata())]
    by_epoch = m.groupby(["metric", "epoch"])["value"].mean()
    np.testing.assert_allclose(curves, [by_epoch["shallow_relative_mse"], by_epoch["deep_relative_mse"]], rtol=1e-6)

    piece = ds.report(exp, summary, "figures/ds", "Ds")
    assert all(re.fullmatch(r"Ds[A-Za-z]+", k) for k in piece.macros)
    assert set(re.findall(r"\\(Ds[A-Za-z]+)", piece.section + piece.slides)) <= set(piece.macros)
    for name in names:
        assert f"figures/ds/{name}.pdf" in piece.section
    bib = (root / "report" / "references.bib").read_text()
    for keys in re.findall(r"\\cite[tp](?:\[[^\]]*\])?\{([^}]*)\}", piece.section):
        for key in keys.split(","):
            assert f"{{{key.strip()},\n" in bib, key
    assert "\\cite" not in piece.slides and piece.slides.count("\\begin{frame}") == 1
