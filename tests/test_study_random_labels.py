"""The random-labels study: Arora et al.'s complexity checked against direct computations, epochs to
fit, and the study end to end on a few real digits (clean against random labels)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

import mathdl.config as cfg
from mathdl.studies import random_labels as rl
from mathdl.templating import render_experiment

TINY = {
    "study": "random_labels",
    "seeds": [0, 1],
    "task": {"n_train": 100, "n_test": 120},
    "model": {"width": 128},
    "train": {"epochs": 60, "batch_size": 10, "eval_points": 400},  # 400 >= 60 ln 60 + 2: every epoch recorded
    "sweep": {"task.label_noise": [0.0, 0.5, 1.0]},
}


def _run(experiment: dict):
    import torch

    from mathdl.pipeline import run_parameters
    from mathdl.tables import Tables
    from mathdl.tasks import make_dataset

    torch.set_num_threads(1)
    plan = cfg.load_plan({"device": "cpu", "experiments": {"rl": experiment}})
    exp = plan.experiment("rl")
    metrics, runs, data = [], [], {}
    for group in exp.groups:
        data[group.task.label_noise] = make_dataset(group.task)
        result = rl.compute(group, data[group.task.label_noise], device="cpu")
        assert len(result.runs) == len(group.runs)
        metrics.append(result.metrics)
        runs.append(result.runs.merge(run_parameters(group), on=["run_id", "seed"]))
    tables = Tables(pd.concat(metrics, ignore_index=True), pd.concat(runs, ignore_index=True))
    return plan, exp, tables, data


@pytest.fixture(scope="module")
def tiny():
    return _run(TINY)


def _digits(n_train: int, label_noise: float):
    from mathdl.engine import make_group
    from mathdl.tasks import make_dataset

    task = make_group(task={"name": "digits", "n_train": n_train, "n_test": 10, "label_noise": label_noise}).task
    return make_dataset(task)


# ----------------------------------------------------------------------------- the mathematics


def test_gram_is_the_expectation_over_gaussian_first_layer_weights():
    """H_ij = E_w[x_i.x_j 1{w.x_i >= 0, w.x_j >= 0}], by Monte Carlo over 400,000 w (s.e. < 1e-3)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3))
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    w = rng.standard_normal((400_000, 3))
    active = (w @ u.T >= 0).astype(float)  # (W, n)
    monte_carlo = (u @ u.T) * (active.T @ active) / len(w)
    h = rl.arora_gram(x)
    np.testing.assert_allclose(h, monte_carlo, atol=5e-3)
    np.testing.assert_allclose(np.diag(h), 0.5, rtol=1e-12)  # g = 1: 1 * pi / (2 pi)
    np.testing.assert_allclose(rl.arora_gram(3.0 * x), h, rtol=1e-12)  # inputs are normalized first


def test_complexity_is_the_direct_quadratic_form():
    rng = np.random.default_rng(1)
    n, k = 12, 3
    x = rng.standard_normal((n, 5))
    labels = rng.integers(0, k, size=n)
    out = rl.arora_complexity(x, labels, k)
    h_inv = np.linalg.inv(rl.arora_gram(x))
    y = np.eye(k)[labels]
    y_centred = y - 1 / k
    direct = sum(y_centred[:, j] @ h_inv @ y_centred[:, j] for j in range(k))
    assert out["complexity"] == pytest.approx(direct, rel=1e-9)
    assert out["complexity_onehot"] == pytest.approx(sum(y[:, j] @ h_inv @ y[:, j] for j in range(k)), rel=1e-9)
    # One-hot = centred + 1^T H^-1 1 / K: the cross term vanishes because the centred rows sum to zero.
    assert out["complexity_onehot"] == pytest.approx(out["complexity"] + h_inv.sum() / k, rel=1e-9)
    assert out["min_eigenvalue"] == pytest.approx(np.linalg.eigvalsh(rl.arora_gram(x))[0], rel=1e-9)
    # K = 2: half of Arora et al.'s y^T H^-1 y with y = +-1.
    binary = rng.integers(0, 2, size=n)
    pm = 2.0 * binary - 1
    assert rl.arora_complexity(x, binary, 2)["complexity"] == pytest.approx(pm @ h_inv @ pm / 2, rel=1e-9)


def test_parallel_inputs_give_nan_not_an_error():
    x = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])  # rows 0 and 1 are parallel: H is singular
    out = rl.arora_complexity(x, np.array([0, 1, 0]), 2)
    assert math.isnan(out["complexity"]) and out["min_eigenvalue"] == pytest.approx(0.0, abs=1e-12)


def test_random_labels_have_a_larger_complexity_than_real_ones():
    clean, noisy = _digits(200, 0.0), _digits(200, 1.0)
    np.testing.assert_array_equal(clean.x_train, noisy.x_train)  # same images, other labels
    c_clean = rl.arora_complexity(*clean.rows("train"), 10)["complexity"]
    c_noisy = rl.arora_complexity(*noisy.rows("train"), 10)["complexity"]
    assert c_noisy > 3 * c_clean > 0


def test_epochs_to_fit():
    epochs, errors = [0, 1, 2, 4, 8, 16], [0.9, 0.5, 0.1, 1e-9, 0.0, 0.02]
    assert rl.epochs_to_fit(epochs, errors, n_train=50) == (4.0, 2.0)  # first hit; a later relapse is ignored
    assert rl.epochs_to_fit(epochs[::-1], errors[::-1], n_train=50) == (4.0, 2.0)  # order of the rows is irrelevant
    never = rl.epochs_to_fit([0, 1, 2], [0.5, 0.02, float("nan")], n_train=50)  # one point wrong, then diverged
    assert all(math.isnan(v) for v in never)


# ----------------------------------------------------------------------------- the study


def test_compute_adds_the_complexity_of_each_training_set(tiny):
    _, exp, tables, data = tiny
    m = tables.metrics
    assert list(m.columns) == ["run_id", "epoch", "split", "metric", "value"]
    assert len(tables.runs) == 6 and not tables.runs["diverged"].any()
    arora = m[m["metric"] == "arora_complexity"].merge(tables.runs, on="run_id")
    assert len(arora) == 6 and (arora["epoch"] == 0).all()
    for p, df in arora.groupby("task.label_noise"):
        d = data[p]
        expected = rl.arora_complexity(*d.rows("train"), d.n_outputs)["complexity"]
        np.testing.assert_allclose(df["value"], expected, rtol=1e-12)


def _per_run(tables) -> pd.DataFrame:
    """From the raw rows, per run: p, seed, final test accuracy, the first epoch with no training point
    misclassified (error below 1/(2n), n = 100), and Arora's complexity over n."""
    m = tables.metrics.merge(tables.runs[["run_id", "seed", "task.label_noise"]], on="run_id")
    err = m[m["metric"] == "error"]
    final = err[(err["split"] == "test") & (err["epoch"] == err["epoch"].max())].set_index("run_id")["value"]
    train = err[err["split"] == "train"]
    fitted = train[train["value"] < 0.5 / 100].groupby("run_id")["epoch"].min()
    arora = m[m["metric"] == "arora_complexity"].set_index("run_id")["value"] / 100
    out = tables.runs.set_index("run_id")[["seed", "task.label_noise"]].rename(columns={"task.label_noise": "p"})
    return out.assign(test_accuracy=1 - final, epochs_to_fit=fitted, complexity=arora)


def test_clean_labels_generalize_and_random_labels_are_fitted_slower(tiny):
    _, exp, tables, _ = tiny
    summary = json.loads(json.dumps(rl.analyze(tables, exp), allow_nan=False))
    # The numbers against the raw rows.
    runs = _per_run(tables)
    by_p = runs.groupby("p")[["test_accuracy", "epochs_to_fit", "complexity"]].mean()
    assert [pt["test_accuracy"]["mean"] for pt in summary["points"]] == pytest.approx(by_p["test_accuracy"].tolist())
    assert [pt["epochs_to_fit"]["mean"] for pt in summary["points"]] == pytest.approx(by_p["epochs_to_fit"].tolist())
    assert [pt["arora_complexity_per_n"]["mean"] for pt in summary["points"]] == pytest.approx(by_p["complexity"].tolist())
    fit = runs.pivot(index="seed", columns="p", values="epochs_to_fit")
    assert summary["fit_time_ratio"]["mean"] == pytest.approx((fit[1.0] / fit[0.0]).mean())
    assert summary["arora_ratio"]["mean"] == pytest.approx(by_p.loc[1.0, "complexity"] / by_p.loc[0.0, "complexity"])
    assert summary["test_accuracy_clean"]["mean"] == pytest.approx(by_p.loc[0.0, "test_accuracy"])
    assert summary["label_noise"] == [0.0, 0.5, 1.0]
    assert summary["train_accuracy_min"] == 1.0 and summary["fitted_fraction_min"] == 1.0  # every labelling is fitted
    assert summary["test_accuracy_clean"]["mean"] > 0.7
    assert summary["test_accuracy_full_corruption"]["mean"] < 0.3  # chance is 0.1
    assert summary["spearman_test_accuracy_vs_corruption"] == pytest.approx(-1.0)
    assert summary["fit_time_ratio"]["mean"] > 1.2
    assert summary["epochs_to_fit_full_corruption"]["mean"] > summary["epochs_to_fit_clean"]["mean"]
    assert summary["arora_ratio"]["mean"] > 2 and summary["arora_ratio"]["ci_low"] is None  # one data draw
    assert summary["fit_epoch_resolution"] == 1
    assert summary["chance_accuracy"] == pytest.approx(0.1)
    assert summary["selection"].startswith("final epoch")


def _has_line(ax, y) -> bool:
    return any(len(line.get_ydata()) == len(y) and np.allclose(line.get_ydata(), y, rtol=1e-6)
               for line in ax.get_lines())


def test_figures_and_report(tiny, tmp_path, root, drawn):
    plan, exp, tables, _ = tiny
    summary = json.loads(json.dumps(rl.analyze(tables, exp), allow_nan=False))
    names = rl.figures(tables, summary, exp, plan.plot, tmp_path)
    assert names == list(rl.FIGURES) == list(drawn)
    for name in names:
        assert (tmp_path / f"{name}.pdf").stat().st_size > 0 and (tmp_path / f"{name}.png").exists()
    by_p = _per_run(tables).groupby("p")[["test_accuracy", "epochs_to_fit", "complexity"]].mean()
    (ax,) = drawn["accuracy_vs_corruption"].axes
    assert _has_line(ax, by_p["test_accuracy"]) and _has_line(ax, [1.0, 1.0, 1.0])  # test; train: every run fits
    (ax,) = drawn["train_error_curves"].axes
    m = tables.metrics.merge(tables.runs[["run_id", "task.label_noise"]], on="run_id")
    train = m[(m["split"] == "train") & (m["metric"] == "error")]
    for p, rows in train.groupby("task.label_noise"):
        assert _has_line(ax, rows.groupby("epoch")["value"].mean()), p
    fit_ax, complexity_ax = drawn["fit_time_and_complexity"].axes
    assert _has_line(fit_ax, by_p["epochs_to_fit"]) and _has_line(complexity_ax, by_p["complexity"])

    piece = render_experiment(exp, summary)
    for name in names:
        assert f"figures/rl/{name}.pdf" in piece.section
    bib = (root / "report" / "references.bib").read_text()
    for keys in re.findall(r"\\cite[tp](?:\[[^\]]*\])?\{([^}]*)\}", piece.section):
        for key in keys.split(","):
            assert f"{{{key.strip()},\n" in bib, key
    assert "\\cite" not in piece.slides and piece.slides.count("\\begin{frame}") == 1
    # The words of the real tiny run (its numbers: test_clean_labels_generalize_and_random_labels_are_fitted_slower).
    assert summary["every_run_fits_at_final_epoch"] == 1 and summary["test_accuracy_falls_at_every_step"] == 1
    text, slides = _words(piece.section), _words(piece.slides)
    assert "Every run fits every training label at every $p$" in text and "not every run" not in text.lower()
    assert "No run diverged." in text and "(to within 1 epoch)" in text and "(s)" not in text
    assert "the accuracy falls at every step of $p$" in text
    chance = {0: "the interval holds chance", 1: "lies above chance", -1: "lies below chance"}
    assert chance[summary["test_accuracy_full_corruption_vs_chance"]] in text  # (both seeds: 0.075 at p = 1)
    fit = {0: "no clear difference in the time to fit", 1: "take longer to fit", -1: "take less time to fit"}
    assert fit[summary["fit_time_ratio_vs_one"]] in text
    assert summary["arora_ratio_vs_one"] == 1 and "random labels make it larger" in text
    assert "every run fits every training label, at every $p$" in slides and "$\\ge$" not in slides


def test_a_diverged_run_does_not_break_the_analysis(tiny):
    plan, exp, tables, _ = tiny
    from mathdl.tables import Tables

    victim = tables.runs["run_id"].iloc[-1]  # a run at p = 1
    metrics = tables.metrics.copy()
    late = (metrics["run_id"] == victim) & (metrics["epoch"] > 3)
    metrics.loc[late, "value"] = float("nan")  # as the engine leaves a run frozen at epoch 3
    runs = tables.runs.copy()
    runs.loc[runs["run_id"] == victim, ["diverged", "diverged_epoch"]] = [True, 3]
    broken = Tables(metrics, runs)
    summary = json.loads(json.dumps(rl.analyze(broken, exp), allow_nan=False))
    assert summary["n_diverged"] == 1
    full = summary["points"][-1]
    assert full["n_diverged"] == 1 and full["fitted_fraction"] == 0.5
    assert summary["test_accuracy_full_corruption"]["ci_low"] is None  # one finite value left
    assert summary["fit_time_ratio"]["mean"] is not None  # from the other seed
    text = _words(render_experiment(exp, summary).section)
    assert "One of the 6 runs diverged and is left out of the means. A diverged run counts as one that did not fit." \
        in text
    assert "Not every run fits its training labels: at $p=1$ only 50 % of the runs reach a training error of zero" \
        in text and "Every run fits" not in text


# ----------------------------------------------------------------------------- the words against edited summaries


def _words(latex: str) -> str:
    """Rendered LaTeX with numbers as printed (\\num{0.5} -> 0.5) and lines joined: the text to assert on."""
    text = re.sub(r"\\num\{([^}]*)\}", r"\1", latex).replace("\\,\\%", " %").replace("~", " ").replace("%\n", "")
    return re.sub(r"\s+", " ", text)


@pytest.fixture(scope="module")
def tiny_summary(tiny):
    _, exp, tables, _ = tiny
    return exp, json.loads(json.dumps(rl.analyze(tables, exp), allow_nan=False))


def _render(exp, summary, **changes) -> tuple[str, str]:
    piece = render_experiment(exp, {**summary, **changes})
    return _words(piece.section), _words(piece.slides)


def test_an_interval_against_a_value():
    from mathdl.tables import interval_side

    ci = {"mean": 0.5, "ci_low": 0.4, "ci_high": 0.6}
    assert [interval_side(ci, v) for v in (0.3, 0.4, 0.5, 0.6, 0.7)] == [1, 0, 0, 0, -1]
    assert interval_side({"mean": 0.5, "ci_low": None, "ci_high": None}, 0.3) == 1  # one value: its mean
    assert interval_side({"mean": None, "ci_low": None, "ci_high": None}, 0.3) is None
    assert interval_side(ci, None) is None


def test_words_when_a_fit_is_lost_by_the_final_epoch(tiny_summary):
    exp, summary = tiny_summary
    text, slides = _render(exp, summary, every_run_fits_at_final_epoch=0, train_accuracy_min=0.98)
    assert "but not every run still does at the final epoch: the lowest mean final training accuracy over $p$ is " \
           "0.98" in text
    assert "Every run fits every training label" not in text and "fits every training label" not in slides


def test_words_when_no_run_fits_some_level(tiny_summary):
    exp, summary = tiny_summary
    text, slides = _render(exp, summary, fitted_fraction_min=0.0, slowest_fit_fitted_fraction=0.0,
                           slowest_fit_label_noise=1.0, every_run_fits_at_final_epoch=0)
    assert "at $p=1$ none of the runs reaches a training error of zero" in text
    assert "The slowest fit is at" not in text and "Every run" not in text
    assert "at $p=1$ no run fits" in slides and "0 %" not in slides


@pytest.mark.parametrize("against, words", [
    (0, "at $p=1$ the interval holds chance"), (1, "even at $p=1$ the interval lies above chance"),
    (-1, "at $p=1$ the interval lies below chance"),
])
def test_words_on_the_test_accuracy_against_chance(tiny_summary, against, words):
    exp, summary = tiny_summary
    text, _ = _render(exp, summary, test_accuracy_full_corruption_vs_chance=against)
    assert words in text
    assert sum(w in text for w in ("holds chance", "lies above chance", "lies below chance")) == 1


def test_words_on_trends_and_ratios(tiny_summary):
    exp, summary = tiny_summary
    text, _ = _render(exp, summary, test_accuracy_falls_at_every_step=0, spearman_test_accuracy_vs_corruption=0.5,
                      fit_time_ratio_vs_one=0, arora_ratio_vs_one=-1, spearman_arora_vs_test_accuracy=0.5)
    assert "the accuracy tends to rise with $p$, against" in text and "falls at every step" not in text
    assert "no clear difference in the time to fit" in text and "take longer" not in text
    assert "random labels make it smaller, against the theory" in text
    assert "the larger the complexity, the higher the test accuracy, against the theory" in text
    text, _ = _render(exp, summary, test_accuracy_falls_at_every_step=0, spearman_test_accuracy_vs_corruption=-0.5,
                      fit_time_ratio_vs_one=1)
    assert "tends to fall as $p$ grows, though not at every step" in text and "random labels take longer to fit" in text


@pytest.mark.parametrize("bound, empty", [(1.3, True), (0.4, False)])
def test_words_on_the_size_of_the_bound(tiny_summary, bound, empty):
    exp, summary = tiny_summary
    text, _ = _render(exp, summary, arora_bound_min=bound)
    assert f"is {bound} at its smallest over $p$" in text
    assert ("so it says nothing about a loss in $[0,1]$" in text) == empty


def test_words_when_every_run_diverged(tiny_summary):
    exp, summary = tiny_summary
    text, slides = _render(exp, summary, n_diverged=summary["n_runs"])
    assert f"All {summary['n_runs']} runs diverged, so no mean is reported." in text


def test_a_foreign_sweep_is_refused():
    experiment = {**TINY, "sweep": {"task.label_noise": [0.0, 1.0], "model.width": [16, 32]}}
    with pytest.raises(cfg.ConfigError, match="study random_labels sweeps only task.label_noise, task.seed, not model.width"):
        cfg.load_plan({"device": "cpu", "experiments": {"rl": experiment}})
