"""The regularization study: the optimal-ridge theory against simulation, model selection on the
validation split only, and the study end to end on tiny sizes (ridge and digits networks)."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest

import mathdl.config as cfg
from mathdl.studies import regularization as reg
from mathdl.templating import render_experiment

# 50 designs per seed (the default): enough for the Monte Carlo checks of the end-to-end test, and cheap.
TINY = {"ridge_dim": 8, "ridge_n_over_d": [0.5, 1, 2], "ridge_lambda_ratios": [0, 1, 4], "ridge_draws": 50,
        "widths": [4, 32], "weight_decays": [0, 0.01], "dropouts": [0.5]}
TINY_TASK = {"n_train": 120, "n_val": 60, "n_test": 120}
TINY_TRAIN = {"epochs": 30, "eval_points": 4}


def _config(**experiment) -> dict:
    exp = {"study": "regularization", "seeds": [0, 1], "params": TINY, "task": TINY_TASK, "train": TINY_TRAIN}
    return {"device": "cpu", "experiments": {"reg": {**exp, **experiment}}}


def _run(config):
    import torch

    from mathdl.pipeline import run_parameters
    from mathdl.tables import Tables
    from mathdl.tasks import make_dataset

    torch.set_num_threads(1)
    plan = cfg.load_plan(config)
    exp = plan.experiment("reg")
    metrics, runs = [], []
    for group in exp.groups:
        result = reg.compute(group, make_dataset(group.task), device="cpu")
        metrics.append(result.metrics)
        runs.append(result.runs.merge(run_parameters(group), on=["run_id", "seed"]))
    return plan, exp, Tables(pd.concat(metrics, ignore_index=True), pd.concat(runs, ignore_index=True))


@pytest.fixture(scope="module")
def tiny():
    """The tiny plan computed once: both parts, two seeds."""
    return _run(_config())


# ----------------------------------------------------------------------------- ridge theory


def test_ridge_fit_is_the_ridge_and_the_minimum_norm_solution():
    rng = np.random.default_rng(0)
    for n, d in ((6, 10), (10, 10), (15, 10)):
        x, y = rng.standard_normal((n, d)), rng.standard_normal(n)
        b, eigenvalues = reg.ridge_fit(x, y, np.array([0.0, 2.5]))
        np.testing.assert_allclose(b[0], np.linalg.pinv(x) @ y, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(b[1], np.linalg.solve(x.T @ x + 2.5 * np.eye(d), x.T @ y), rtol=1e-8)
        assert len(eigenvalues) == min(n, d)


def test_conditional_risk_is_the_monte_carlo_mean_over_signal_and_noise():
    """Equation (1) given X against ||b - beta*||^2 + sigma^2 averaged over beta* on the sphere and noise."""
    rng = np.random.default_rng(1)
    d, sigma, r, draws = 6, 0.5, 1.0, 20000
    lambdas = np.array([0.0, 0.5, 3.0])
    for n in (4, 9):  # under- and over-determined
        x = rng.standard_normal((n, d))
        g = rng.standard_normal((draws, d))
        beta = r * g / np.linalg.norm(g, axis=1, keepdims=True)
        y = beta @ x.T + sigma * rng.standard_normal((draws, n))  # (draws, n)
        u, s, vt = np.linalg.svd(x, full_matrices=False)
        filters = s[None, :] / (s[None, :] ** 2 + lambdas[:, None])  # (L, k)
        b = np.einsum("lk,wk,kd->lwd", filters, y @ u, vt)  # (L, draws, d)
        simulated = ((b - beta[None]) ** 2).sum(axis=2).mean(axis=1) + sigma**2
        exact = reg.conditional_risk(s**2, d, lambdas, sigma, r)
        np.testing.assert_allclose(simulated, exact, rtol=0.03)


def test_lambda_star_minimizes_the_risk_on_a_fine_grid():
    d, sigma, r = 10, 0.5, 1.0
    lam = reg.theory_lambda(d, sigma, r)
    assert lam == pytest.approx(2.5)
    ratios = np.geomspace(1 / 8, 8, 25)  # contains 1; neighbours a factor 2^(1/4) apart
    exact, simulated = reg.ridge_risks([5, 10, 20], ratios * lam, d, sigma, r, 200, np.random.default_rng(2))
    # Given every design, (1) is least at lambda* exactly: so is its average, at every n.
    assert all(ratios[np.argmin(row)] == pytest.approx(1.0) for row in exact)
    # The plain Monte Carlo estimate (beta* and noise drawn too) finds it within one grid step.
    for row in simulated:
        assert 2**-0.3 <= ratios[np.argmin(row)] <= 2**0.3
    # The risk is unimodal in lambda: it falls up to lambda* and rises after.
    star = int(np.argmin(np.abs(ratios - 1)))
    assert (np.diff(exact[:, : star + 1]) < 0).all() and (np.diff(exact[:, star:]) > 0).all()


def test_optimal_risk_is_monotone_in_n_and_the_ridgeless_risk_peaks_at_d():
    d, sigma, r = 12, 0.5, 1.0
    lam = reg.theory_lambda(d, sigma, r)
    sizes = list(range(2, 37, 2))
    exact, _ = reg.ridge_risks(sizes, np.array([0.0, lam]), d, sigma, r, 3, np.random.default_rng(3))
    assert (np.diff(exact[:, 1]) <= 1e-12).all()  # nested designs: monotone in every draw
    assert sizes[int(np.argmax(exact[:, 0]))] == d
    assert exact[sizes.index(d), 0] > 5 * exact[sizes.index(d), 1]


def test_ridgeless_risk_matches_its_finite_sample_formula():
    d, sigma, r = 20, 0.5, 1.0
    sizes = [8, 40]  # far from the singular n = d - 1, d, d + 1
    exact, _ = reg.ridge_risks(sizes, np.array([0.0]), d, sigma, r, 2000, np.random.default_rng(4))
    for i, n in enumerate(sizes):
        assert exact[i, 0] == pytest.approx(reg.ridgeless_expected_risk(n, d, sigma, r), rel=0.03)
    assert reg.ridgeless_expected_risk(d, d, sigma, r) == np.inf


def test_find_peak():
    assert reg.find_peak([0.5, 0.2, 0.25, 0.3, 0.22, 0.2]) == (3, 1, True)
    assert reg.find_peak([0.5, 0.4, 0.3]) == (0, None, False)  # no bump: the global maximum
    assert reg.find_peak([np.nan, np.nan]) == (0, None, False)


# ----------------------------------------------------------------------------- model selection


def _table(val_wd, test_wd) -> pd.DataFrame:
    """Two seeds, one width; the validation and test errors of each weight decay, dropout off."""
    rows = []
    for run in ("a", "b"):
        for wd, v, t in zip((0.0, 0.01, 0.1), val_wd, test_wd):
            rows.append({"run_id": run, "seed": 0 if run == "a" else 1, "width": 8, "weight_decay": wd,
                         "dropout": 0.0, "final_val": v, "final_test": t, "final_train": 0.0,
                         "selected_test": t, "selected_epoch": 3})
        rows.append({"run_id": run, "seed": 0 if run == "a" else 1, "width": 8, "weight_decay": 0.0,
                     "dropout": 0.5, "final_val": 0.0, "final_test": 0.9, "final_train": 0.0,
                     "selected_test": 0.9, "selected_epoch": 3})
    return pd.DataFrame(rows)


def test_the_best_weight_decay_is_chosen_on_the_validation_split_only():
    # The test split would pick 0.1; the validation split picks 0.01, and its test error is reported.
    table = _table(val_wd=(0.3, 0.1, 0.2), test_wd=(0.5, 0.4, 0.05))
    chosen = reg._curves(table)["best_weight_decay"]
    assert chosen["weight_decay"].tolist() == [0.01, 0.01]
    assert chosen["test"].tolist() == [0.4, 0.4]
    # Dropout rows never enter the weight-decay choice (nor weight-decay rows the dropout choice).
    assert reg._curves(table)["best_dropout"]["dropout"].tolist() == [0.5, 0.5]


def test_ties_go_to_the_weaker_regularization():
    chosen = reg._curves(_table(val_wd=(0.1, 0.1, 0.1), test_wd=(0.2, 0.3, 0.4)))["best_weight_decay"]
    assert chosen["weight_decay"].tolist() == [0.0, 0.0]


# ----------------------------------------------------------------------------- end to end


def _independent_network_curves(metrics: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per curve, the test error by seed run (rows) and width (columns), from the raw error rows: no
    regularization at the last and at the validation-selected epoch, and the weight decay (dropout)
    of least final validation error per seed run and width, ties to the weaker regularization."""
    err = metrics[(metrics["part"] == "networks") & (metrics["metric"] == "error")]
    keys = ["run_id", "width", "weight_decay", "dropout"]
    final = err[err["epoch"] == err["epoch"].max()].pivot_table(index=keys, columns="split", values="value")
    selected = err[(err["epoch"] == err["selected_epoch"]) & (err["split"] == "test")].set_index(keys)["value"]
    final = final.join(selected.rename("selected_test")).reset_index()
    plain = final[(final["weight_decay"] == 0) & (final["dropout"] == 0)]
    curves = {"none": plain.pivot(index="run_id", columns="width", values="test"),
              "early_stopping": plain.pivot(index="run_id", columns="width", values="selected_test")}
    for name, key, other in (("best_weight_decay", "weight_decay", "dropout"), ("best_dropout", "dropout", "weight_decay")):
        rows = final[final[other] == 0]
        best = {(run, width): min(zip(g["val"], g[key], g["test"]))
                for (run, width), g in rows.groupby(["run_id", "width"])}
        curves[name] = pd.Series({k: test for k, (_, _, test) in best.items()}).unstack()
        curves[f"{name}_choice"] = pd.Series({k: value for k, (_, value, _) in best.items()}).unstack()
    return curves


def test_compute_analyze_figures_report(tiny, tmp_path, root, drawn):
    plan, exp, tables = tiny
    assert list(tables.metrics.columns[:5]) == ["run_id", "epoch", "split", "metric", "value"]
    assert {"part", "n_samples", "lambda_ratio", "width", "weight_decay", "dropout"} <= set(tables.metrics.columns)
    assert len(tables.runs) == 4 and set(tables.runs["params.part"]) == {"ridge", "networks"}
    assert set(tables.metrics["run_id"]) == set(tables.runs["run_id"])
    assert not tables.runs["diverged"].any()
    net = tables.metrics[tables.metrics["part"] == "networks"]
    # One network per seed, width and regularizer: weight decays 0 and 0.01, dropout 0.5.
    nets = net[net["split"] != "model"].groupby(["run_id", "width", "weight_decay", "dropout"]).ngroups
    assert nets == 2 * 2 * 3

    summary = json.loads(json.dumps(reg.analyze(tables, exp), allow_nan=False))
    assert summary["parts"] == ["ridge", "networks"]
    assert summary["ridge_n"] == [4, 8, 16] and summary["ridgeless_peak_n"] == 8
    assert summary["lambda_theory"] == pytest.approx(8 * 0.25)
    # The exact risk (1) is least at lambda* and monotone at lambda* for every design, whatever the
    # draws: asserting that on the summary tests the grid. The Monte Carlo risks can fail. Over the
    # 2 x 50 designs, beta* and noise draws (standard deviations per draw from 20,000 draws):
    # * the simulated risk averaged over n is 0.080 higher at 4 lambda* than at lambda* (sd 0.065,
    #   a standard error of 0.0065: 12 of them) and far higher at 0, so the simulated best is lambda*;
    # * at lambda* it falls by 0.24 from n = 4 to 8 and 0.22 from 8 to 16 (sd 0.22 and 0.19: 11
    #   standard errors), so the simulated optimal risk is monotone;
    # * simulated against exact, relative: sd at most 0.31 per draw in the worst (n, lambda > 0) cell, a
    #   standard error of 0.031; 0.125 is 4 of them (in 2,000 replays of the test the largest of the
    #   six cells passed 0.099 once in a thousand);
    # * the exact ridgeless risk averaged over designs against its finite-sample expectation at n = 4
    #   and n = 16 (n = 8 has none): relative sd per design 0.23 and 0.16, 4 standard errors 0.10 and 0.07.
    ridge = tables.metrics[tables.metrics["part"] == "ridge"]
    cells = ridge.pivot_table(index=["lambda_ratio", "n_samples"], columns="metric", values="value")  # seed means
    simulated = cells["risk_simulated"].unstack("n_samples")  # (lambda ratio, n)
    assert simulated.mean(axis=1).idxmin() == summary["best_lambda_over_theory_simulated"] == 1.0
    assert summary["best_lambda_over_theory_simulated_per_seed"] == [1.0, 1.0]
    assert (np.diff(simulated.loc[1.0]) < 0).all() and summary["optimal_risk_monotone_simulated"] == 1
    positive = cells.loc[[0.0 < q for q in cells.index.get_level_values("lambda_ratio")]]
    rel = ((positive["risk_simulated"] - positive["risk"]).abs() / positive["risk"]).max()
    assert summary["ridge_simulated_max_rel_diff"] == pytest.approx(rel, rel=1e-9) and rel < 0.125
    ridgeless = [e["mean"] for e in summary["ridge_risk"]["0"]]
    assert ridgeless[0] == pytest.approx(reg.ridgeless_expected_risk(4, 8, 0.5, 1.0), rel=0.10)
    assert ridgeless[2] == pytest.approx(reg.ridgeless_expected_risk(16, 8, 0.5, 1.0), rel=0.07)
    assert summary["ridgeless_theory"] == [pytest.approx(13 / 12), None, pytest.approx(0.25 * (1 + 8 / 7))]
    # The networks' curves and the peak against the raw error rows, selected here independently.
    curves = _independent_network_curves(tables.metrics)
    for curve in reg.CURVES:
        assert [e["mean"] for e in summary["nn_test_error"][curve]] == pytest.approx(
            curves[curve].mean().tolist(), rel=1e-12), curve
    assert summary["nn_selected_weight_decay"] == curves["best_weight_decay_choice"].T.to_numpy().tolist()
    assert summary["nn_selected_dropout"] == curves["best_dropout_choice"].T.to_numpy().tolist()
    none, decay = curves["none"].mean(), curves["best_weight_decay"].mean()
    assert summary["nn_widths"] == [4, 32] and summary["nn_peak_width"] == none.idxmax()  # of two widths, the worse
    assert summary["nn_bump_found"] == int(none[32] > none[4])
    peak = summary["nn_peak_width"]
    assert summary["nn_peak_reduction_weight_decay"] == pytest.approx(none[peak] / decay[peak], rel=1e-12)
    assert summary["nn_targets"] == 120 * 10 and summary["nn_parameters"] == [4 * 65 + 50, 32 * 65 + 330]
    assert set(summary["nn_selection"]) >= set(reg.CURVES)

    names = reg.figures(tables, summary, exp, plan.plot, tmp_path)
    assert names == list(reg.FIGURES) == list(drawn)
    for name in names:
        assert (tmp_path / f"{name}.pdf").stat().st_size > 0 and (tmp_path / f"{name}.png").exists()
    by_n, by_lambda = drawn["ridge_risk"].axes
    risks = [line.get_ydata() for line in by_n.get_lines()[:6] if len(line.get_xdata())]  # one per penalty
    np.testing.assert_allclose(risks, [[e["mean"] for e in summary["ridge_risk"][q]] for q in ("0", "1", "4")],
                               rtol=1e-9)
    assert [line.get_xdata()[0] for line in by_n.get_lines() if line.get_linestyle() == ":"] == [8]  # n = d
    (ax,) = drawn["nn_test_error"].axes
    drawn_curves = [line.get_ydata() for line in ax.get_lines()[:8] if len(line.get_xdata())]
    np.testing.assert_allclose(drawn_curves, [curves[c].mean() for c in reg.CURVES], rtol=1e-6)
    assert [ax.get_ylabel() for ax in drawn["nn_gap_heatmaps"].axes[:2]] == ["weight decay", "dropout rate"]

    piece = render_experiment(exp, summary)
    for name in names:
        assert f"figures/reg/{name}.pdf" in piece.section
    text, slides = _words(piece.section), _words(piece.slides)
    # The words of the real tiny run, chosen from its numbers (asserted above: the Monte Carlo check
    # is least at lambda* and monotone there; the ridgeless peak is at n = d = 8).
    assert "peaks at $n=8=d$" in text and "there its expectation is infinite" in text
    assert "the Monte Carlo estimate at $\\lambda^*$, the check, never increases with $n$ either" in text
    assert "least on average over $n$ at 1$ \\lambda^*$ for the mean over seeds, $\\lambda^*$ itself" in text
    assert "and at $\\lambda^*$ for 2 of the 2 seeds separately" in text
    assert "Monte Carlo risk at $\\lambda^*$ never increases with $n$" in slides
    assert "No network diverged." in text and "(12 networks in all)" in text and "(s)" not in text
    assert ("double descent in width" in text) == bool(summary["nn_bump_found"])
    assert ("shows no bump on this width grid" in text) == (not summary["nn_bump_found"])
    against = {1: "lower than without regularization", -1: "higher than without regularization",
               0: "not clearly different from that without regularization"}
    assert f"{against[summary['nn_peak_reduction_weight_decay_vs_one']]}: the per-seed ratio" in text
    assert "epoch of least validation loss" in text and "least final validation error" in text
    bib = (root / "report" / "references.bib").read_text()
    for keys in re.findall(r"\\cite[tp](?:\[[^\]]*\])?\{([^}]*)\}", piece.section):
        for key in keys.split(","):
            assert f"{{{key.strip()},\n" in bib, key
    assert "\\cite" not in piece.slides and piece.slides.count("\\begin{frame}") == 2


def test_the_networks_record_final_and_selected_epochs(tiny):
    _, _, tables = tiny
    net = tables.metrics[(tables.metrics["part"] == "networks") & (tables.metrics["split"] != "model")]
    last = net["epoch"].max()
    assert last == TINY_TRAIN["epochs"]
    keys = ["run_id", "width", "weight_decay", "dropout"]
    for _, rows in net.groupby(keys):
        selected = rows["selected_epoch"].iloc[0]
        assert 0 <= selected <= last
        assert {"train", "val", "test"} <= set(rows.loc[rows["epoch"] == selected, "split"])
        assert {"train", "val", "test"} <= set(rows.loc[rows["epoch"] == last, "split"])


def test_a_peak_made_by_hand_and_its_reduction(tiny):
    """The unregularized networks of width 32 made worse (test error 0.9 at every epoch): the bump
    moves there, and each reduction is the unregularized test error over the regularized one."""
    from mathdl.tables import Tables

    _, exp, tables = tiny
    m = tables.metrics.copy()
    worse = (m["part"] == "networks") & m["width"].eq(32) & m["weight_decay"].eq(0) & m["dropout"].eq(0)
    m.loc[worse & m["metric"].eq("error") & m["split"].eq("test"), "value"] = 0.9
    summary = json.loads(json.dumps(reg.analyze(Tables(m, tables.runs), exp), allow_nan=False))
    curves = {k: v.mean() for k, v in _independent_network_curves(m).items()}
    assert curves["none"][32] == pytest.approx(0.9) and curves["none"][4] < 0.9
    assert summary["nn_bump_found"] == 1 and (summary["nn_dip_width"], summary["nn_peak_width"]) == (4, 32)
    assert summary["nn_bump_height"] == pytest.approx(0.9 - curves["none"][4], rel=1e-12)
    for curve, key in reg.REDUCTION_KEYS.items():
        assert summary[key] == pytest.approx(0.9 / curves[curve][32], rel=1e-12), curve
    assert summary["nn_peak_reduction_weight_decay"] > 1  # a seed's validation error picks weight decay 0.01


def test_a_single_part_and_diverged_networks(tiny):
    """Only the networks part, with one network's values and then every value non-finite."""
    plan, exp, tables = tiny
    from mathdl.tables import Tables

    m = tables.metrics[tables.metrics["part"] == "networks"].copy()
    one = m["run_id"].eq(m["run_id"].iloc[0]) & m["weight_decay"].eq(0.01) & m["width"].eq(4) & m["split"].ne("model")
    m.loc[one, "value"] = np.nan
    summary = json.loads(json.dumps(reg.analyze(Tables(m, tables.runs), exp), allow_nan=False))
    assert summary["parts"] == ["networks"] and summary["best_lambda_over_theory"] is None
    assert summary["nn_n_diverged"] == 1
    m.loc[m["split"] != "model", "value"] = np.nan
    summary = json.loads(json.dumps(reg.analyze(Tables(m, tables.runs), exp), allow_nan=False))
    assert summary["nn_peak_reduction_weight_decay"] is None
    piece = render_experiment(exp, summary)
    assert "ridge_risk" not in piece.section and piece.slides.count("\\begin{frame}") == 1
    text = _words(piece.section)
    assert "All 12 networks diverged, so no mean is reported." in text and "nothing to compare" in text
    assert "Ridge regression: theory" not in text and "We check the second." in text
    assert "bump" not in text and "times less" not in text


# ----------------------------------------------------------------------------- the words against edited summaries


def _words(latex: str) -> str:
    """Rendered LaTeX with numbers as printed (\\num{0.5} -> 0.5) and lines joined: the text to assert on."""
    text = re.sub(r"\\num\{([^}]*)\}", r"\1", latex).replace("\\,\\%", " %").replace("\\,", " ")
    return re.sub(r"\s+", " ", text.replace("~", " ").replace("%\n", ""))


@pytest.fixture(scope="module")
def tiny_summary(tiny):
    _, exp, tables = tiny
    return exp, json.loads(json.dumps(reg.analyze(tables, exp), allow_nan=False))


def _render(exp, summary, **changes) -> tuple[str, str]:
    piece = render_experiment(exp, {**summary, **changes})
    return _words(piece.section), _words(piece.slides)


def test_the_numbers_behind_the_words():
    assert reg._max_rise([3.0, 2.0, 2.2, 1.0]) == pytest.approx(0.1) and reg._max_rise([3.0, 2.0, 1.0]) == 0.0
    assert reg.panel_sizes([5, 10, 20, 40, 80], 20) == [10, 20, 40] and reg.panel_sizes([4, 8], 8) == [4, 8]
    assert reg._mode([0.01, 0.0, 0.01, None]) == 0.01 and reg._mode([0.01, 0.0]) == 0.0 and reg._mode([]) is None


def test_words_when_the_monte_carlo_check_disagrees(tiny_summary):
    exp, summary = tiny_summary
    text, slides = _render(exp, summary, optimal_risk_monotone_simulated=0, optimal_risk_simulated_max_rise=0.031,
                           best_lambda_over_theory_simulated=3.0, best_lambda_simulated_at_theory_seeds=1)
    assert "the check, increases somewhere along the grid of $n$, by at most 3.1 % between neighbouring sizes" in text
    assert "least on average over $n$ at 3$ \\lambda^*$ for the mean over seeds, not at the theory's" in text
    assert "never increases with $n$ either" not in text and "itself, as the theory says" not in text
    assert "and at $\\lambda^*$ for 1 of the 2 seeds separately" in text
    assert "increases somewhere in $n$ (at most 3.1 %)" in slides and "3$ \\lambda^*$" in slides


def test_words_when_the_ridgeless_peak_is_away_from_d(tiny_summary):
    exp, summary = tiny_summary
    text, _ = _render(exp, summary, ridgeless_peak_n=16)
    assert "peaks at $n=16$ with" in text and "expectation is infinite, so this average" not in text


@pytest.mark.parametrize("flag, words", [
    (1, "lower than without regularization: the per-seed ratio"),
    (-1, "higher than without regularization: the per-seed ratio"),
    (0, "not clearly different from that without regularization: the per-seed ratio"),
])
def test_words_on_the_weight_decay_at_the_peak(tiny_summary, flag, words):
    exp, summary = tiny_summary
    text, slides = _render(exp, summary, nn_peak_reduction_weight_decay_vs_one=flag)
    assert words in text
    assert ("as \\citet{nakkiran2021optimal} found for tuned weight decay" in text) == (flag == 1)


@pytest.mark.parametrize("chosen, words", [(0.0, "that is none"), (0.01, "the largest of the grid, so a larger")])
def test_words_on_the_selected_weight_decay_at_the_edge_of_its_grid(tiny_summary, chosen, words):
    exp, summary = tiny_summary
    assert summary["nn_weight_decays"] == [0.0, 0.01]
    text, _ = _render(exp, summary, nn_peak_selected_weight_decay=chosen)
    assert f"ties going to the weaker: {chosen:g}, {words}" in text


def test_words_on_the_bump(tiny_summary):
    exp, summary = tiny_summary
    none = summary["nn_test_error"]["none"]
    bump = dict(nn_bump_found=1, nn_dip_width=4, nn_peak_width=32, nn_bump_height=0.1)
    text, slides = _render(exp, summary, **bump)
    assert "first falls, to" in text and "at width 32, the largest of the grid" in text
    assert "double descent in width" not in text  # no width after the peak: no second descent
    assert "peak at width 32" in slides
    text, slides = _render(exp, summary, nn_bump_found=0, nn_dip_width=None, nn_peak_width=4)
    assert "shows no bump on this width grid: its largest value" in text and "at width 4, where" in text
    assert "no bump; largest test error" in slides and none


@pytest.mark.parametrize("fits, words", [
    ([], "No unregularized network fits the noisy training labels"),
    ([32], "from width 32 on"),
    ([4], "at widths 4 only"),
])
def test_words_on_interpolation(tiny_summary, fits, words):
    exp, summary = tiny_summary
    text, _ = _render(exp, summary, nn_interpolating_widths=fits, nn_interpolation_width=fits[0] if fits else None)
    assert words in text


def test_words_on_the_gap_and_the_threshold(tiny_summary):
    exp, summary = tiny_summary
    text, _ = _render(exp, summary, nn_gap_min=-0.05, nn_threshold_width_params=None)
    assert "it is negative where a network's error on the noisy training labels exceeds" in text
    assert "at no width inside the grid" in text and "dotted: the width where" not in text
    text, _ = _render(exp, summary, nn_gap_min=0.01)
    assert "it is negative" not in text


def test_compute_refuses_what_it_cannot_do():
    plan = cfg.load_plan(_config())
    group = next(g for g in plan.experiment("reg").groups if g.runs[0].params["part"] == "ridge")
    bogus = dataclasses.replace(group, runs=tuple(dataclasses.replace(r, params={**r.params, "part": "bogus"})
                                                  for r in group.runs))
    with pytest.raises(ValueError, match="unknown part 'bogus'; valid: ridge, networks"):
        reg.compute(bogus, None, "cpu")
    with pytest.raises(ValueError, match="study regularization sweeps only params.part, not train.lr"):
        _run(_config(sweep={"params.part": ["ridge"], "train.lr": [0.01, 0.02]}))
    with pytest.raises(ValueError, match="train.patience: 0"):
        _run(_config(sweep={"params.part": ["networks"]}, train={**TINY_TRAIN, "patience": 5}))


def test_the_grids_must_hold_their_anchors():
    for key, value in (("ridge_lambda_ratios", [0.5, 1]), ("ridge_lambda_ratios", [0, 2]),
                       ("ridge_n_over_d", [0.5, 2]), ("weight_decays", [0.01, 0.1])):
        with pytest.raises(cfg.ConfigError, match=f"params.{key}"):
            cfg.load_plan(_config(params={**TINY, key: value}))
