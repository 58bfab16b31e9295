"""The sgd_linear study: an unbiased stochastic gradient, GD to the least-squares solution, the SGD plateau."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from mathdl.studies import sgd_linear as sl
from conftest import draw_figures
from helpers import edited as _edited, words as _words


def default_params(**over):
    params = {p: s["default"] for p, s in sl.PARAMS_SCHEMA["properties"].items()}
    params.update(over)
    return params


@pytest.mark.parametrize("sampling", sl.SAMPLINGS)
@pytest.mark.parametrize("batch", [1, 10, 100])
def test_stochastic_gradient_is_unbiased(sampling, batch):
    """The average of K minibatch gradients differs from the full gradient by Monte-Carlo error only.

    ||d|| / sqrt(E||d||^2) exceeds 4 with probability below 1e-3 for a 2-dimensional (near)
    Gaussian d; the p-value of K d^T C^{-1} d ~ chi^2_2 is above 1e-3 unless there is a bias.
    """
    params = default_params(n=20000)
    X, y = sl.make_data(params, seed=0)
    beta = np.array([0.3, -0.7])
    check = sl.gradient_check(X, y, beta, batch, 4000, sampling, np.random.default_rng(7))
    assert check["relative_error"] < 4 * check["expected_relative_error"]
    assert check["p_value"] > 1e-3


def test_gradient_check_detects_a_biased_gradient():
    """The same statistic rejects a sampler that prefers large x (a sanity check of the check)."""
    params = default_params(n=20000)
    X, y = sl.make_data(params, seed=0)
    beta = np.zeros(2)
    per_sample = X * (X @ beta - y)[:, None]
    full = per_sample.mean(axis=0)
    rng = np.random.default_rng(0)
    biased = np.argsort(X[:, 1])[len(y) // 10:]  # never the smallest tenth of x
    means = np.array([per_sample[rng.choice(biased, 10)].mean(axis=0) for _ in range(4000)])
    centred = per_sample - full
    cov = centred.T @ centred / len(y) / 10
    d = means.mean(axis=0) - full
    assert 4000 * d @ np.linalg.solve(cov, d) > 100  # chi^2_2 p-value ~ e^-50


def test_gd_converges_to_the_closed_form_least_squares_solution():
    params = default_params(n=5000, batch_size=0, lr=0.5, full_batch_epochs=400, evals_per_epoch=1, log_evals=0)
    X, y = sl.make_data(params, seed=3)
    # the normal equations, solved independently of the study's lstsq
    xm, ym = X[:, 1].mean(), y.mean()
    slope = np.sum((X[:, 1] - xm) * (y - ym)) / np.sum((X[:, 1] - xm) ** 2)
    closed = np.array([ym - slope * xm, slope])
    beta_hat, l_star, H = sl.least_squares(X, y)
    np.testing.assert_allclose(beta_hat, closed, rtol=1e-10)
    table, info = sl.train(X, y, params, np.random.default_rng(0), beta_hat, H, l_star)
    final = np.array([info["final_beta0"], info["final_beta1"]])
    # GD contracts by max|1 - lr lambda| per step: after 400 steps the error is far below 1e-10
    rate = np.max(np.abs(1 - 0.5 * np.linalg.eigvalsh(H)))
    assert rate**400 < 1e-12
    np.testing.assert_allclose(final, closed, rtol=1e-9)
    assert table["loss"].iloc[-1] == pytest.approx(l_star, rel=1e-12)
    assert table["passes"].iloc[-1] == 400 and not info["diverged"]


def test_loss_gap_is_the_quadratic_form():
    params = default_params(n=1000)
    X, y = sl.make_data(params, seed=1)
    beta_hat, l_star, H = sl.least_squares(X, y)
    beta = np.array([-1.0, 4.0])
    direct = 0.5 * np.mean((X @ beta - y) ** 2)
    assert l_star + sl.loss_gap(beta, beta_hat, H) == pytest.approx(direct, rel=1e-12)


def test_predicted_plateau_matches_a_long_simulation():
    """Constant-step SGD with replacement: the time-averaged excess loss against the stationary solution."""
    params = default_params(n=500)
    X, y = sl.make_data(params, seed=2)
    beta_hat, _, H = sl.least_squares(X, y)
    lr, batch, steps = 0.05, 1, 60000
    predicted = sl.predicted_plateau(X, y, lr, batch, "with_replacement")
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(y), size=steps)
    beta, total = beta_hat.copy(), 0.0
    for i in idx:  # B = 1: scalar arithmetic is enough
        r = X[i] @ beta - y[i]
        beta = beta - lr * r * X[i]
        total += sl.loss_gap(beta, beta_hat, H)
    # autocorrelation time ~ 1/(2 lr mu) ~ 30 steps: ~1000 effective samples, a few % error
    assert total / steps == pytest.approx(predicted, rel=0.12)
    # the small-step limit lr sigma^2 tr(H) / (4B), with sigma^2 ~ the residual variance
    small = sl.predicted_plateau(X, y, 1e-4, 10, "with_replacement")
    resid_var = np.mean((y - X @ beta_hat) ** 2)
    assert small == pytest.approx(1e-4 * resid_var * np.trace(H) / 40, rel=0.05)
    assert sl.predicted_plateau(X, y, lr, len(y), "with_replacement") == 0.0


def test_eval_steps_cover_the_run():
    steps = sl.eval_steps(steps_per_epoch=1000, epochs=2, evals_per_epoch=4, log_evals=5)
    assert steps[0] == 0 and steps[-1] == 2000
    assert {1, 1000, 500, 1500} <= set(steps.tolist())


# ----------------------------------------------------------------------------- end to end


@pytest.fixture
def registered(monkeypatch):
    from mathdl import config as cfg
    from mathdl.studies import STUDIES, Study

    study = Study("sgd_linear", sl.DEFAULTS, sl.analyze, sl.figures, compute=sl.compute,
                  params_schema=sl.PARAMS_SCHEMA)
    monkeypatch.setitem(STUDIES, "sgd_linear", study)
    enum = cfg.load_schema()["$defs"]["experiment"]["properties"]["study"]
    monkeypatch.setitem(enum, "enum", [*enum["enum"], "sgd_linear"])
    return study


def test_compute_analyze_figures_report(registered, tiny_run, figured):
    from mathdl.templating import render_experiment

    plan, exp, tables, summary = tiny_run  # the summary as JSON, NaN refused
    assert list(tables.metrics.columns) == ["run_id", "epoch", "split", "metric", "value"]
    assert {"run_id", "seed", "diverged", "diverged_epoch"} <= set(tables.runs.columns)
    assert [b["batch_size"] for b in summary["batch_sizes"]] == [1, 50, 2000]
    assert set(summary["final_loss"]) == {"1", "50", "full (2000)"}
    assert summary["unbiased_relative_error"] < 4 * summary["unbiased_expected_relative_error"]
    assert summary["gd_final_beta_error"] < 1e-3
    # L* of each seed's data by the normal equations of a line (not the study's lstsq), and the final
    # losses from the raw rows; a seed's optimum is below every run's final loss on its data.
    l_star = {}
    for seed in (0, 1):
        X, y = sl.make_data(exp.params, seed)
        x = X[:, 1]
        slope = np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2)
        l_star[seed] = 0.5 * np.mean((y - y.mean() - slope * (x - x.mean())) ** 2)
    assert summary["ols_loss"] == pytest.approx(np.mean(list(l_star.values())), rel=1e-10)
    loss = tables.metrics.query("split == 'train' and metric == 'loss'").merge(tables.runs[["run_id", "seed", "batch"]])
    final = loss[loss["epoch"] == loss.groupby("run_id")["epoch"].transform("max")]
    assert (final["value"] >= final["seed"].map(l_star) * (1 - 1e-12)).all()
    by_batch = final.groupby("batch")["value"].mean()
    assert [summary["final_loss"][label] for label in ("1", "50", "full (2000)")] == pytest.approx(
        by_batch[[1, 50, 2000]].tolist(), rel=1e-12)
    secs = tables.metrics.query("split == 'train' and metric == 'seconds'")
    assert (secs.groupby("run_id")["value"].diff().dropna() >= 0).all()  # a clock never runs back

    names, drawn, outdir = figured
    assert names == list(sl.FIGURES) == list(drawn)
    for name in names:
        assert (outdir / f"{name}.pdf").is_file() and (outdir / f"{name}.png").is_file()
    (ax,) = drawn["loss_vs_passes"].axes
    gap = tables.metrics.query("split == 'train'").pivot_table(index=["run_id", "epoch"], columns="metric",
                                                                values="value").reset_index()
    gap = gap.merge(tables.runs[["run_id", "batch"]])
    lines = {line.get_label(): line for line in ax.get_lines()}
    for batch, label in ((1, "1"), (50, "50"), (2000, "full (2000)")):
        mean = gap[(gap["batch"] == batch) & (gap["passes"] > 0) & (gap["loss_gap"] > 0)]
        mean = mean.groupby("epoch")[["passes", "loss_gap"]].mean()
        np.testing.assert_allclose(lines[label].get_xdata(), mean["passes"], rtol=1e-12)
        np.testing.assert_allclose(lines[label].get_ydata(), mean["loss_gap"], rtol=1e-12)
    target = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    target_gap = summary["target_gap"] * np.mean(list(l_star.values()))
    assert [line.get_ydata()[0] for line in target] == [pytest.approx(target_gap)]
    (ax,) = drawn["gradient_check"].axes
    check = tables.metrics.query("split == 'check' and metric == 'relative_error'").merge(
        tables.runs[["run_id", "batch"]])
    measured = ax.get_lines()[0]
    assert sorted(zip(measured.get_xdata(), measured.get_ydata())) == sorted(
        zip(check.loc[check["batch"] < 2000, "batch"], check.loc[check["batch"] < 2000, "value"]))

    piece = render_experiment(exp, summary)
    for name in names:
        assert f"figures/sgd/{name}.pdf" in piece.section + piece.slides
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
TINY = {"n": 2000, "epochs": 2, "full_batch_epochs": 400, "check_batches": 300, "evals_per_epoch": 20}


def _tiny(batch_sizes, **params):
    """A real run of the study at a small size: plan, experiment, tables and its summary (as JSON)."""
    from mathdl.config import load_plan
    from mathdl.pipeline import run_parameters
    from mathdl.tables import Tables

    plan = load_plan({"device": "cpu", "experiments": {"sgd": {
        "study": "sgd_linear", "seeds": [0, 1], "params": {**TINY, **params},
        "sweep": {"params.batch_size": batch_sizes}}}})
    exp = plan.experiment("sgd")
    metrics, runs = [], []
    for group in exp.groups:
        result = sl.compute(group, None, device="cpu")
        metrics.append(result.metrics)
        runs.append(result.runs.merge(run_parameters(group), on=["run_id", "seed"]))
    tables = Tables(pd.concat(metrics, ignore_index=True), pd.concat(runs, ignore_index=True))
    return plan, exp, tables, json.loads(json.dumps(sl.analyze(tables, exp), allow_nan=False))


@pytest.fixture(scope="module")
def tiny_run():
    return _tiny([1, 50, 0])


@pytest.fixture(scope="module")
def figured(tiny_run, tmp_path_factory):
    """The tiny run's figures, drawn and saved once: names, figures by name, their folder."""
    plan, exp, tables, summary = tiny_run
    outdir = tmp_path_factory.mktemp("figures")
    return (*draw_figures(sl.figures, tables, summary, exp, plan.plot, outdir), outdir)


def test_words_of_a_tiny_run(tiny_run):
    from mathdl.report import fmt

    _, exp, _, summary = tiny_run
    section, slides = _words(exp, summary)
    for text in (section, slides):
        assert "(s)" not in text and "left out of the means" not in text and "\\VAR" not in text
    assert section.lstrip().startswith(r"\subsection{sgd}") and "No run diverged." in section
    # B = 1 comes within 1% of L* first, in 0.013 passes, and leaves again; 50 and n stay from 0.82 and 28 passes
    assert (summary["first_hit_batch_size"], summary["first_hit_stays"]) == (1, False)
    assert summary["first_hit_passes"] < 1
    assert "The first batch size to come within the target is $B=\\num{1}$" in section
    assert "within a fraction of a pass, but it does not stay there in every seed" in section
    assert summary["staying_batch_sizes"] == [50, 2000]
    assert "Only $B\\in\\{50, n\\}$ stay within the target" in section
    assert f"GD gets within \\num{{1}}\\% of $L^\\star$ after {fmt(summary['gd_passes_to_target'])} passes" in section
    # 4 stochastic checks, smallest p 0.024: adjusted 0.095 > 0.01
    assert summary["unbiased_n_checks"] == 4 and not summary["unbiased_bias_detected"]
    assert summary["unbiased_adjusted_p_value"] == pytest.approx(4 * summary["unbiased_min_p_value"])
    assert "no bias is detectable" in section and "no bias detected" in slides
    assert "\\num{4}~checks" in section
    assert [len(re.findall(r"\\includegraphics", f)) for f in slides.split(r"\begin{frame}")[1:]] == [1]
    assert "figures/sgd/slide_loss_vs_passes.pdf" in slides and r"\cite" not in slides


def test_words_for_other_outcomes(tiny_run):
    _, exp, _, summary = tiny_run
    section, slides = _words(exp, _edited(summary, unbiased_bias_detected=True, unbiased_adjusted_p_value=0.001))
    assert "no bias" not in section + slides
    assert "the check detects a difference" in section and "a difference detected" in slides
    section, _ = _words(exp, _edited(summary, staying_batch_sizes=[], fastest_in_passes=None,
                                     fastest_in_seconds=None))
    assert "No batch size stays within the target" in section and "does so first" not in section
    section, _ = _words(exp, _edited(summary, staying_batch_sizes=[1, 50, 2000], first_hit_stays=True))
    assert "Every batch size stays within the target" in section and "Only" not in section
    assert "it stays there to the end in every seed" in section and "does not stay" not in section
    section, slides = _words(exp, _edited(summary, gd_passes_to_target=None))
    assert "GD does not get within \\num{1}\\% of $L^\\star$ in \\num{400}~passes" in section
    assert "GD gets within" not in section and "not within" in slides
    section, _ = _words(exp, _edited(summary, first_hit_passes=1.5))
    assert "fraction of a pass" not in section
    section, _ = _words(exp, _edited(summary, n_diverged=2))
    assert r"\num{2} of the \num{6} runs diverged and are left out of the means." in section


def test_words_of_full_batch_only():
    _, exp, _, summary = _tiny([0], full_batch_epochs=5)
    section, slides = _words(exp, summary)
    assert summary["unbiased_relative_error"] is None and summary["staying_batch_sizes"] == []
    assert "Unbiasedness" not in section and "gradient_check" not in section
    assert "first batch size" not in section and "unbiasedness check" not in slides
    assert "GD does not get within" in section  # 5 steps of lr 0.05 are not enough
    assert "No batch size stays within the target" in section


def test_figures_print_readably(figured):
    names, drawn, _ = figured
    assert names == list(sl.FIGURES) == list(drawn)
    # as the templates include them; on the slide, a 0.6-width column and at most 0.78 of the height
    shown = {"loss_vs_passes": (0.8 * PAPER_TEXT_WIDTH_IN,), "loss_vs_seconds": (0.8 * PAPER_TEXT_WIDTH_IN,),
             "gradient_check": (0.8 * PAPER_TEXT_WIDTH_IN,),
             "slide_loss_vs_passes": (0.6 * SLIDE_TEXT_WIDTH_IN, 0.78 * SLIDE_TEXT_HEIGHT_IN)}
    for name, box in shown.items():
        assert _printed_min_pt(drawn[name], *box) >= MIN_PRINTED_PT, (name, _printed_min_pt(drawn[name], *box))
