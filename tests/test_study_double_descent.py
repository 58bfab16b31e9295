"""The double-descent study: the minimum-norm fit, the width for a parameter count, the peak
statistics, a real random-features peak at N = n on digits, and the study end to end."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pandas as pd
import pytest

import mathdl.config as cfg
from mathdl.engine import eval_epochs
from mathdl.studies import double_descent as dd

# A few sizes around the thresholds, a short training: the whole file runs in seconds.
TINY_PARAMS = {"rf_ratios": [0.25, 0.5, 0.9, 1.0, 1.1, 2.0, 8.0], "rf_ridges": [0.1], "nn_ratios": [0.2, 1.0, 4.0]}
TINY = {
    "study": "double_descent", "seeds": [0, 1],
    "task": {"n_train": 60, "n_test": 300},
    "train": {"epochs": 60, "lr": 0.01, "eval_points": 4},
    "params": TINY_PARAMS,
}


@pytest.fixture(autouse=True)
def one_thread():
    """One BLAS/torch thread, as a training job gets by default: the CI machine is shared."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _run(experiment: dict):
    from mathdl.pipeline import run_parameters
    from mathdl.tables import Tables
    from mathdl.tasks import make_dataset

    plan = cfg.load_plan({"device": "cpu", "experiments": {"dd": experiment}})
    exp = plan.experiment("dd")
    metrics, runs = [], []
    for group in exp.groups:
        result = dd.compute(group, make_dataset(group.task), device="cpu")
        assert len(result.runs) == len(group.runs) == len(exp.seeds)  # one row per run of the group
        metrics.append(result.metrics)
        runs.append(result.runs.merge(run_parameters(group), on=["run_id", "seed"]))
    return plan, exp, Tables(pd.concat(metrics, ignore_index=True), pd.concat(runs, ignore_index=True))


def _summary(tables, exp) -> dict:
    return json.loads(json.dumps(dd.analyze(tables, exp), allow_nan=False))  # what summary.json holds


# ----------------------------------------------------------------------------- the mathematics


@pytest.mark.parametrize("n_features", [5, 19, 20, 21, 80])
def test_minimum_norm_solution_interpolates_when_N_at_least_n(n_features):
    rng = np.random.default_rng(0)
    n, d, k = 20, 6, 3
    x, y = rng.standard_normal((n, d)), np.eye(k)[rng.integers(k, size=n)]
    phi = dd.relu_features(x, rng.standard_normal((n_features, d)))
    (b,) = dd.least_squares_fits(phi, y, [0.0])
    residual = np.abs(phi @ b - y).max()
    if n_features >= n:
        assert residual < 1e-8  # Phi B = Y
        # Minimum norm: B lies in the row space of Phi; adding a null-space direction keeps the fit and grows the norm.
        null = np.linalg.svd(phi)[2][n:].T  # (N, N - n)
        if null.shape[1]:
            other = b + null @ rng.standard_normal((null.shape[1], k))
            assert np.abs(phi @ other - y).max() < 1e-8 and np.linalg.norm(other) > np.linalg.norm(b)
    else:
        assert residual > 1e-3  # too few features to fit n one-hot rows
    np.testing.assert_allclose(b, np.linalg.lstsq(phi, y, rcond=None)[0], atol=1e-8)


def test_ridge_fit_minimizes_the_penalized_loss_and_tends_to_the_minimum_norm_fit():
    rng = np.random.default_rng(1)
    n, lam = 15, 0.05
    phi, y = rng.standard_normal((n, 40)), rng.standard_normal((n, 2))
    b0, b_lam, b_tiny = dd.least_squares_fits(phi, y, [0.0, lam, 1e-12])
    gradient = 2 / n * phi.T @ (phi @ b_lam - y) + 2 * lam * b_lam  # of (1/n)||Phi B - Y||^2 + lam ||B||^2
    assert np.abs(gradient).max() < 1e-10
    np.testing.assert_allclose(b_tiny, b0, atol=1e-6)
    assert np.linalg.norm(b_lam) < np.linalg.norm(b0)


def test_width_for_params_is_the_closest_count():
    from mathdl import models

    model = cfg.load_plan({"experiments": {"dd": {"study": "double_descent"}}}).experiment("dd").model
    count = lambda w: models.parameter_count(dataclasses.replace(model, width=w), 64, 10)  # noqa: E731
    assert count(27) == 27 * 65 + 10 * 28  # p = w (d + 1) + K (w + 1)
    for target in [30, 100, 2000, 2035, 20000]:
        width = dd.width_for_params(target, model, 64, 10)
        best = min(range(1, 400), key=lambda w: (abs(count(w) - target), w))
        assert width == best, target


def test_peak_statistics_of_a_double_descent_curve():
    ratios = [0.25, 0.5, 0.9, 1.0, 2.0, 4.0]
    errors = [0.4, 0.3, 0.6, 0.9, 0.35, 0.2]
    peak, over_best, largest = dd.peak_statistics(ratios, errors)
    assert peak == 1.0 and over_best == pytest.approx(3.0) and largest == pytest.approx(0.2 / 0.3)
    peak, over_best, _ = dd.peak_statistics(ratios, [np.nan, 0.3, 0.6, np.inf, 0.35, 0.2])  # a diverged size
    assert peak == 0.9 and over_best == pytest.approx(2.0)
    assert all(math.isnan(v) for v in dd.peak_statistics(ratios, [np.nan] * 6))


# ----------------------------------------------------------------------------- the science, on digits


def test_random_features_test_error_and_norm_peak_at_N_equal_n_on_digits():
    experiment = {**TINY, "seeds": [0, 1, 2], "task": {"n_train": 100, "n_test": 500},
                  "sweep": {"params.method": ["random_features"], "task.label_noise": [0.2]}}
    _, exp, tables = _run(experiment)
    summary = _summary(tables, exp)
    rf = summary["random_features"]["0.2"]
    assert summary["peak_location_ratio"]["per_seed"] == [1.0, 1.0, 1.0]
    assert rf["norm_peak_location"]["mean"] == 1.0 and rf["mse_peak_location"]["mean"] == 1.0
    assert summary["peak_over_best_below"]["ci_low"] > 1.5  # a real peak, for every seed
    assert rf["largest_over_best_below"]["mean"] < 1  # and a second descent below the classical optimum
    assert rf["max_train_loss_interpolating"] < 1e-20  # N >= n interpolates
    below = [e["mean"] for r, e in zip(rf["ratios"], rf["train_loss"]) if r < 1]
    assert min(below) > 1e-4
    # Ridge removes the peak at the threshold.
    assert rf["ridge"]["0.1"]["test_error_at_threshold"]["mean"] < 0.5 * rf["test_error_at_threshold"]["mean"]
    assert summary["network"] == {} and summary["nn_peak_params_over_nK"] is None


def test_compute_analyze_figures_report(tmp_path, root):
    experiment = {**TINY, "sweep": {"task.label_noise": [0.0, 0.2], "params.method": ["random_features", "network"]}}
    plan, exp, tables = _run(experiment)
    m = tables.metrics
    assert list(m.columns) == ["run_id", "epoch", "split", "metric", "value", *dd.COORDINATES]
    assert set(m["run_id"]) == set(tables.runs["run_id"]) and len(tables.runs) == 8
    assert not tables.runs["diverged"].any()
    pd.testing.assert_frame_equal(m, _run(experiment)[2].metrics)  # deterministic given the seeds
    # Networks: the width whose p = w (d + 1) + K (w + 1) is closest to ratio n K, recorded beside the engine's metrics.
    nn = m[m["ratio"].notna() & m["ridge"].isna()]
    sizes = nn.drop_duplicates("width").sort_values("width")
    assert list(sizes["n_params"]) == [w * 65 + 10 * (w + 1) for w in sizes["width"]]
    np.testing.assert_allclose(sizes["ratio"], sizes["n_params"] / 600)
    assert sorted(nn["epoch"].unique()) == eval_epochs(60, 4)  # the engine's schedule, every size

    summary = _summary(tables, exp)
    for key in ("peak_location_ratio", "peak_over_best_below", "nn_peak_params_over_nK"):
        assert set(summary[key]) >= {"mean", "ci_low", "ci_high"}, key
    assert summary["headline_label_noise"] == 0.2 and summary["label_noises"] == [0.0, 0.2]
    assert sorted(summary["random_features"]) == sorted(summary["network"]) == ["0", "0.2"]
    assert summary["network"]["0.2"]["widths"] == list(sizes["width"])
    assert summary["peak_location_ratio"]["mean"] == 1.0
    assert "final" in summary["numbers"]

    names = dd.figures(tables, summary, exp, plan.plot, tmp_path)
    assert names == [*dd.FIGURES["random_features"], *dd.FIGURES["network"]]
    for name in names:
        assert (tmp_path / f"{name}.pdf").stat().st_size > 0 and (tmp_path / f"{name}.png").exists()

    piece = dd.report(exp, summary, "figures/dd", "Dd")
    assert all(re.fullmatch(r"Dd[A-Za-z]+", k) for k in piece.macros)
    used = set(re.findall(r"\\(Dd[A-Za-z]+)", piece.section + piece.slides))
    assert used <= set(piece.macros), used - set(piece.macros)
    assert piece.macros["DdRfPeakRatio"] == r"\num{1}" and "--" not in piece.macros["DdNnPeakRatio"]
    for name in names:
        assert f"figures/dd/{name}.pdf" in piece.section
    bib = (root / "report" / "references.bib").read_text()
    for keys in re.findall(r"\\cite[tp]?(?:\[[^\]]*\])?\{([^}]*)\}", piece.section):
        for key in keys.split(","):
            assert f"{{{key.strip()},\n" in bib, key
    assert "\\cite" not in piece.slides and piece.slides.count("\\begin{frame}") == 2


def test_a_diverged_network_is_flagged_and_analysis_goes_on(tmp_path):
    experiment = {**TINY, "train": {"optimizer": "gd", "lr": 1e4, "epochs": 5, "eval_points": 3},
                  "sweep": {"params.method": ["network"], "task.label_noise": [0.2]}}
    plan, exp, tables = _run(experiment)
    assert tables.runs["diverged"].all() and (tables.runs["diverged_sizes"] > 0).all()
    summary = _summary(tables, exp)
    assert summary["n_diverged"] == 2 and summary["random_features"] == {}
    dd.figures(tables, summary, exp, plan.plot, tmp_path)
    piece = dd.report(exp, summary, "figures/dd", "Dd")
    assert "Dd" in piece.slides


def test_other_sweeps_are_refused():
    with pytest.raises(ValueError, match="study double_descent sweeps only params.method, task.label_noise, not train.lr"):
        _run({**TINY, "sweep": {"params.method": ["network"], "train.lr": [0.01, 0.1]}})


def test_a_grid_without_the_threshold_is_refused():
    with pytest.raises(cfg.ConfigError, match="rf_ratios"):
        cfg.load_plan({"experiments": {"dd": {"study": "double_descent", "params": {"rf_ratios": [0.5, 2.0]}}}})
