"""The double-descent study: the minimum-norm fit, the width for a parameter count, the peak
statistics, a real random-features peak at N = n on digits, and the study end to end."""

from __future__ import annotations

import copy
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
from helpers import words

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


BOTH_METHODS = {**TINY, "sweep": {"task.label_noise": [0.0, 0.2], "params.method": ["random_features", "network"]}}


@pytest.fixture(scope="module")
def tiny_run():
    """A real tiny run, both methods, label noise 0 and 0.2 (computed once for the file): plan,
    experiment, tables and summary."""
    import torch

    torch.set_num_threads(1)
    plan, exp, tables = _run(BOTH_METHODS)
    return plan, exp, tables, _summary(tables, exp)


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
    # The smallest models' underfitting is the largest error, not the peak.
    assert dd.peak_statistics([0.25, 0.5, 1.0, 2.0], [0.9, 0.3, 0.6, 0.2])[:2] == (1.0, pytest.approx(2.0))


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


def _final_curves(tables, method: str, noise: float, split: str, metric: str = "error") -> pd.DataFrame:
    """Rows: size ratio; columns: seed; the last recorded epoch's value (minimum norm for random features)."""
    m = tables.metrics.merge(tables.runs[["run_id", "seed", "params.method", "task.label_noise"]], on="run_id")
    m = m[(m["params.method"] == method) & (m["task.label_noise"] == noise) & (m["split"] == split)
          & (m["metric"] == metric) & ((m["ridge"] == 0) | m["ridge"].isna())]
    m = m[m["epoch"] == m.groupby(["run_id", "width"])["epoch"].transform("max")]
    return m.pivot(index="ratio", columns="seed", values="value")


def _peak_after_first_descent(ratios, errors) -> tuple[float, float]:
    """(r*, E(r*) / min_{r<1} E): the largest error at or after the classical optimum below N = n."""
    errors = np.asarray(errors)
    best = int(np.argmin(np.where(np.asarray(ratios) < 1, errors, np.inf)))
    peak = best + int(np.argmax(errors[best:]))
    return float(ratios[peak]), float(errors[peak] / errors[best])


def _has_line(ax, y) -> bool:
    return any(len(line.get_ydata()) == len(y) and np.allclose(line.get_ydata(), y, rtol=1e-6)
               for line in ax.get_lines())


def test_compute_analyze_figures_report(tiny_run, tmp_path, root, drawn):
    plan, exp, tables, summary = tiny_run
    m = tables.metrics
    assert list(m.columns) == ["run_id", "epoch", "split", "metric", "value", *dd.COORDINATES]
    assert set(m["run_id"]) == set(tables.runs["run_id"]) and len(tables.runs) == 8
    assert not tables.runs["diverged"].any()
    pd.testing.assert_frame_equal(m, _run(BOTH_METHODS)[2].metrics)  # deterministic given the seeds
    # Networks: the width whose p = w (d + 1) + K (w + 1) is closest to ratio n K, recorded beside the engine's metrics.
    nn = m[m["ratio"].notna() & m["ridge"].isna()]
    sizes = nn.drop_duplicates("width").sort_values("width")
    assert list(sizes["n_params"]) == [w * 65 + 10 * (w + 1) for w in sizes["width"]]
    np.testing.assert_allclose(sizes["ratio"], sizes["n_params"] / 600)
    assert sorted(nn["epoch"].unique()) == eval_epochs(60, 4)  # the engine's schedule, every size

    assert summary["headline_label_noise"] == 0.2 and summary["label_noises"] == [0.0, 0.2]
    assert sorted(summary["random_features"]) == sorted(summary["network"]) == ["0", "0.2"]
    assert summary["network"]["0.2"]["widths"] == list(sizes["width"])
    assert "final" in summary["numbers"]
    # The headline peaks (label noise 0.2) against the raw final rows, per seed: random features peak
    # at N = n (test error 0.91 against 0.58 at the best N < n); the networks only descend, so their
    # "peak" is the smallest size and its ratio to the best below 1 is 1.
    for method, location, over_best in (("random_features", "peak_location_ratio", "peak_over_best_below"),
                                        ("network", "nn_peak_params_over_nK", "nn_peak_over_best_below")):
        test = _final_curves(tables, method, 0.2, "test")
        peaks = np.array([_peak_after_first_descent(test.index, test[seed]) for seed in (0, 1)])
        assert summary[location]["per_seed"] == pytest.approx(peaks[:, 0].tolist(), rel=1e-12), method
        assert summary[location]["mean"] == pytest.approx(peaks[:, 0].mean(), rel=1e-12), method
        assert summary[over_best]["mean"] == pytest.approx(peaks[:, 1].mean(), rel=1e-12), method
        assert [e["mean"] for e in summary[method]["0.2"]["test_error"]] == pytest.approx(test.mean(axis=1).tolist())
    assert summary["peak_location_ratio"]["per_seed"] == [1.0, 1.0] and summary["peak_over_best_below"]["mean"] > 1.5
    assert summary["nn_peak_params_over_nK"]["mean"] == pytest.approx(85 / 600)  # width 7: 7 * 65 + 80 parameters

    names = dd.figures(tables, summary, exp, plan.plot, tmp_path)
    assert names == [*dd.FIGURES["random_features"], *dd.FIGURES["network"]] == list(drawn)
    for name in names:
        assert (tmp_path / f"{name}.pdf").stat().st_size > 0 and (tmp_path / f"{name}.png").exists()
    for figure, method in (("rf_double_descent", "random_features"), ("nn_double_descent", "network")):
        errors = drawn[figure].axes[0]  # the error rates: test and train, each label noise
        for noise in (0.0, 0.2):
            for split in ("test", "train"):
                assert _has_line(errors, _final_curves(tables, method, noise, split).mean(axis=1)), (figure, noise, split)
        assert any(list(line.get_xdata()) == [1.0, 1.0] for line in errors.get_lines())  # the threshold

    from mathdl.templating import render_experiment

    piece = render_experiment(exp, summary)
    assert r"the mean test error rate peaks at $N/n=\num{1}$" in " ".join(piece.section.split())
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
    from mathdl.templating import render_experiment

    piece = render_experiment(exp, summary)
    text = " ".join(piece.section.split())
    assert r"\num{2} of the \num{2}~runs diverged at one size or more" in text
    assert "Random features" not in text and piece.slides.count("\\begin{frame}") == 1


def test_other_sweeps_are_refused():
    with pytest.raises(ValueError, match="study double_descent sweeps only params.method, task.label_noise, not train.lr"):
        _run({**TINY, "sweep": {"params.method": ["network"], "train.lr": [0.01, 0.1]}})


def test_a_grid_without_the_threshold_is_refused():
    with pytest.raises(cfg.ConfigError, match="rf_ratios"):
        cfg.load_plan({"experiments": {"dd": {"study": "double_descent", "params": {"rf_ratios": [0.5, 2.0]}}}})


# ----------------------------------------------------------------------------- the words


def test_peak_decision_needs_a_rise_above_both_ends():
    ratios = [0.25, 0.5, 0.9, 1.0, 2.0, 4.0]
    peak = dd.peak_decision(ratios, [0.4, 0.3, 0.6, 0.9, 0.35, 0.2])
    assert peak["has_peak"] is True and peak["peak_over_best_below"] == pytest.approx(3.0)
    assert peak["peak_over_largest"] == pytest.approx(4.5) and peak["largest_over_best_below"] == pytest.approx(2 / 3)
    falling = dd.peak_decision(ratios, [0.5, 0.4, 0.3, 0.25, 0.2, 0.1])
    assert falling["has_peak"] is False and falling["peak_over_best_below"] == pytest.approx(1.0)
    rising = dd.peak_decision(ratios, [0.5, 0.3, 0.4, 0.5, 0.6, 0.62])  # still rising at the largest size
    assert rising["has_peak"] is False and rising["peak_over_largest"] == pytest.approx(1.0)
    small = dd.peak_decision(ratios, [0.5, 0.3, 0.32, 0.31, 0.3, 0.2])  # 7% above the optimum: within the margin
    assert small["has_peak"] is False and dd.peak_decision(ratios, [0.5, 0.3, 0.32, 0.31, 0.3, 0.2], 0.05)["has_peak"]
    assert dd.peak_decision([1.0, 2.0], [0.5, 0.3])["has_peak"] is None  # no size below the threshold


@pytest.fixture(scope="module")
def tiny(tiny_run):
    """(experiment, summary) of the real tiny run."""
    return tiny_run[1], tiny_run[3]


def _words(exp, summary) -> tuple[str, str]:
    return words(exp, summary, flat=True)


def _block_sentence(text: str, method_heading: str, noise: str) -> str:
    """The sentence of one label noise in one method's paragraph."""
    part = text.split(method_heading, 1)[1]
    return part.split(f"label noise {noise},", 1)[1].split(". ", 1)[0]


def test_words_of_a_real_tiny_run(tiny):
    from mathdl.report import fmt

    exp, summary = tiny
    text, slides = _words(exp, summary)
    for method, heading, x in (("random_features", r"\paragraph{Random features.}", "N/n"),
                               ("network", r"\paragraph{Networks with one hidden layer.}", "p/(nK)")):
        for key, block in summary[method].items():
            sentence = _block_sentence(text, heading, fmt(block["label_noise"]))
            if block["mean_curve_has_peak"]:
                assert sentence.startswith(f" the mean {'final ' if method == 'network' else ''}test error rate peaks "
                                           f"at ${x}={fmt(block['mean_curve_peak_location'])}$"), sentence
            else:
                assert "has no peak" in sentence and "peaks at" not in sentence, sentence
    ratio = summary["network"]["0.2"]["interpolation_ratio"]
    assert ("No network size fits every training label" in text) == (ratio is None)
    assert "two-layer" not in text.lower() and "one hidden layer" in text
    assert r"$p=w(d+1)+K(w+1)$" in text
    assert "(s)" not in text + slides and "run(s)" not in text
    assert slides.count("\\begin{frame}") == 2 and "\\cite" not in slides


def test_words_follow_peak_or_no_peak(tiny):
    exp, base = tiny
    s = copy.deepcopy(base)
    nn = s["network"]["0.2"]
    nn.update(mean_curve_has_peak=False, mean_curve_peak_over_best_below=1.05, mean_curve_peak_over_largest=1.4,
              mean_curve_peak_location=0.75)
    text, slides = _words(exp, s)
    sentence = _block_sentence(text, r"\paragraph{Networks", r"\num{0.2}")
    assert "has no peak: after its lowest value below the threshold it rises at most by a factor \\num{1.05}" in sentence
    assert "peaks at" not in sentence and "no peak (highest point after the best below $p=nK$" in slides
    nn.update(mean_curve_peak_over_best_below=1.5, mean_curve_peak_over_largest=1.02)
    sentence = _block_sentence(_words(exp, s)[0], r"\paragraph{Networks", r"\num{0.2}")
    assert r"rises to \num{1.5} times that value at $p/(nK)=\num{0.75}$ but does not come down again" in sentence
    nn.update(mean_curve_peak_over_best_below=1.0)
    sentence = _block_sentence(_words(exp, s)[0], r"\paragraph{Networks", r"\num{0.2}")
    assert "has no peak: it does not rise again" in sentence
    nn.update(mean_curve_has_peak=True, mean_curve_peak_over_best_below=2.0, mean_curve_peak_over_largest=3.0)
    sentence = _block_sentence(_words(exp, s)[0], r"\paragraph{Networks", r"\num{0.2}")
    assert r"peaks at $p/(nK)=\num{0.75}$, \num{2} times its lowest value" in sentence
    nn["mean_curve_has_peak"] = None
    assert "no peak of the mean final test error rate can be measured" in _words(exp, s)[0]

    rf_low = s["random_features"]["0"]
    rf_low.update(mean_curve_has_peak=False, mean_curve_peak_over_best_below=1.0)
    text, _ = _words(exp, s)
    assert "A peak without label noise is no contradiction" not in text
    rf_low["mean_curve_largest_over_best_below"] = 1.3
    assert "the second descent does not beat the classical optimum" in _words(exp, s)[0]


def test_words_follow_interpolation_ridge_depth_and_divergence(tiny):
    exp, base = tiny
    s = copy.deepcopy(base)
    nn = s["network"]["0.2"]
    nn["interpolation_ratio"] = None
    text, slides = _words(exp, s)
    assert "No network size fits every training label for every seed." in text and "Every network from" not in text
    assert "no size fits every training label" in slides
    nn["interpolation_ratio"] = nn["ratios"][0]
    assert "Every network fits every training label, from the smallest size on." in _words(exp, s)[0]

    rf = s["random_features"]["0.2"]
    rf.update(interpolates=False, max_train_loss_interpolating=0.01)
    rf["ridge"]["0.1"]["test_error_at_threshold"]["mean"] = 2 * rf["test_error_at_threshold"]["mean"]
    text, _ = _words(exp, s)
    assert r"largest training mean squared error for $N\ge n$ is \num{0.01}, so not every fit interpolates" in text
    assert r"(no $\lambda$ lowers it)" in text and "lower with every" not in text

    s["n_diverged"] = 1
    assert r"\num{1} of the \num{8}~runs diverged at one size or more" in _words(exp, s)[0]

    s["model"]["depth"] = 3
    deep = cfg.load_plan({"device": "cpu", "experiments": {"dd": {**TINY, "model": {"depth": 3}}}}).experiment("dd")
    text, slides = _words(deep, s)
    assert r"\paragraph{Networks with 3 hidden layers.}" in text and "one hidden layer" not in text.split("Networks", 1)[1]
    assert "w(d+1)" not in text and "$p$ parameters" in text and "networks with 3 hidden layers" in slides


def test_words_of_one_method_and_one_noise(tiny):
    exp, base = tiny
    s = copy.deepcopy(base)
    s["network"] = {}
    del s["random_features"]["0"]
    text, slides = _words(exp, s)
    assert r"\paragraph{Random features.}" in text and "Networks with" not in text and "label noise \\num{0}," not in text
    assert slides.count("\\begin{frame}") == 1
