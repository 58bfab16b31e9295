"""The deep double descent study: a peak is claimed only where the intervals over seeds show a rise
and a fall (checked on curves built by hand), the summary's curves are the means of the long
table, the words follow the summary (peak / no peak / one seed), the figures are drawn, the plan
refuses what the study cannot analyse, and a tiny CNN sweep runs through the pipeline."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mathdl.config import ConfigError, load_plan
from mathdl.spec import PlotConfig
from mathdl.studies import deep_double_descent as ddd
from mathdl.tables import Tables, mean_ci_dict
from helpers import train_groups, words

WIDTHS = [1, 2, 4, 8]
EPOCHS = [0, 1, 3, 10]


def _ci(mean, half):
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half}


# ----------------------------------------------------------------------------- the peak rule


def test_a_rise_and_a_fall_beyond_the_intervals_is_a_peak():
    cis = [_ci(0.3, 0.01), _ci(0.2, 0.01), _ci(0.5, 0.02), _ci(0.25, 0.01), _ci(0.1, 0.01)]
    peak = ddd.ci_peak([1, 2, 4, 8, 16], cis)
    assert peak == {"x": 4, "error": cis[2], "rise_from": 2, "fall_to": 16}


@pytest.mark.parametrize(
    "cis",
    [
        [_ci(0.5, 0.01), _ci(0.4, 0.01), _ci(0.3, 0.01), _ci(0.2, 0.01)],  # falls all the way
        [_ci(0.2, 0.01), _ci(0.3, 0.01), _ci(0.4, 0.01), _ci(0.5, 0.01)],  # highest at the edge
        [_ci(0.3, 0.01), _ci(0.35, 0.1), _ci(0.3, 0.01), _ci(0.3, 0.01)],  # a bump within its interval
        [_ci(0.3, 0.01), _ci(0.5, 0.01), _ci(0.5, 0.01), _ci(0.52, 0.01)],  # a rise without a fall
        [{"mean": 0.3, "ci_low": None, "ci_high": None}, {"mean": 0.9, "ci_low": None, "ci_high": None},
         {"mean": 0.1, "ci_low": None, "ci_high": None}],  # one seed: no intervals
    ],
)
def test_no_peak_without_a_rise_and_a_fall_beyond_the_intervals(cis):
    assert ddd.ci_peak(list(range(len(cis))), cis) is None


# ----------------------------------------------------------------------------- analysis on built tables


def _tables(final_test, seeds=(0, 1, 2), epoch_bump=None, spread=0.005):
    """Tables of runs at WIDTHS x noise levels: final_test[noise][i] is the mean final test error at
    WIDTHS[i]; each seed adds +-spread. epoch_bump: (noise, width) whose test error peaks at epoch 3."""
    metrics, runs = [], []
    for noise, curve in final_test.items():
        for width, final in zip(WIDTHS, curve):
            for s in seeds:
                run_id = f"r{noise}-{width}-{s}"
                runs.append({"run_id": run_id, "seed": s, "diverged": False, "diverged_epoch": np.nan,
                             "selected_epoch": EPOCHS[-1], "stopped_epoch": EPOCHS[-1],
                             "model.width": width, "task.label_noise": noise})
                jitter = spread * (s - 1)
                for epoch in EPOCHS:
                    test = final + 0.5 * (EPOCHS[-1] - epoch) / EPOCHS[-1] + jitter
                    if epoch_bump == (noise, width) and epoch == 3:
                        test = final + 0.6 + jitter
                    train = max(0.0, 0.4 * (EPOCHS[-1] - epoch) / EPOCHS[-1] - 0.01 * width)
                    metrics += [(run_id, epoch, "test", "error", test), (run_id, epoch, "train", "error", train)]
    return Tables(pd.DataFrame(metrics, columns=["run_id", "epoch", "split", "metric", "value"]), pd.DataFrame(runs))


def _experiment(seeds=(0, 1, 2)):
    plan = load_plan({"experiments": {"ddd": {"study": "deep_double_descent", "seeds": list(seeds)}}})
    return plan.experiment("ddd")


@pytest.fixture(scope="module")
def peaked():
    tables = _tables({0.0: [0.3, 0.2, 0.15, 0.1], 0.2: [0.3, 0.25, 0.5, 0.2]}, epoch_bump=(0.2, 8))
    exp = _experiment()
    return exp, tables, json.loads(json.dumps(ddd.analyze(tables, exp), allow_nan=False))


def test_the_summary_holds_each_curve_as_the_mean_of_its_runs(peaked):
    exp, tables, summary = peaked
    assert summary["widths"] == WIDTHS and summary["noise_levels"] == [0.0, 0.2]
    final = tables.final()
    for block in summary["model_wise"]:
        for width, ci in zip(block["widths"], block["test_error"]):
            rows = final[(final["model.width"] == width) & (final["task.label_noise"] == block["label_noise"])]
            assert ci == pytest.approx(mean_ci_dict(rows["test_error"]))
    m = tables.metrics
    for block in summary["epoch_wise"]:
        ids = tables.runs.loc[(tables.runs["model.width"] == block["width"])
                              & (tables.runs["task.label_noise"] == block["label_noise"]), "run_id"]
        for epoch, ci in zip(block["epochs"], block["test_error"]):
            values = m[m["run_id"].isin(ids) & (m["epoch"] == epoch) & (m["split"] == "test") & (m["metric"] == "error")]
            assert ci["mean"] == pytest.approx(values["value"].mean())


def test_peaks_are_found_where_the_curves_were_built_with_one(peaked):
    _, _, summary = peaked
    clean, noisy = summary["model_wise"]
    assert clean["peak"] is None and clean["best_width"] == 8
    assert noisy["peak"]["x"] == 4 and noisy["peak"]["rise_from"] == 2 and noisy["peak"]["fall_to"] == 8
    epochs = {(e["label_noise"], e["width"]): e["peak"] for e in summary["epoch_wise"]}
    assert epochs[(0.2, 8)]["x"] == 3
    assert all(p is None for key, p in epochs.items() if key != (0.2, 8))
    assert summary["n_model_wise_peaks"] == 1 and summary["n_epoch_wise_peaks_at_largest_width"] == 1


def test_the_words_claim_exactly_the_peaks_of_the_summary(peaked):
    exp, _, summary = peaked
    section, slides = words(exp, summary, flat=True)
    assert section.count("peaks at width") == 1 and r"peaks at width $k=\num{4}$" in section
    assert section.count("has no peak by this criterion") == 1 + 1  # clean width curve, clean epoch curve
    assert r"of width $k=\num{8}$ peaks at epoch \num{3}" in section
    assert r"noise \num{0.2}: peak at $k=\num{4}$; peak at epoch \num{3}" in slides
    assert r"noise \num{0}: no peak over $k$; no peak over epochs" in slides


def test_the_largest_width_is_named_where_all_its_runs_diverged():
    """Where every run of the sweep's largest width diverged at one noise level, the words give the
    errors of the largest width that has runs, and name it (not 'the largest width')."""
    tables = _tables({0.0: [0.3, 0.2, 0.15, 0.1], 0.2: [0.3, 0.25, 0.5, 0.2]})
    gone = (tables.runs["model.width"] == 8) & (tables.runs["task.label_noise"] == 0.2)
    tables.runs.loc[gone, "diverged"] = True
    exp = _experiment()
    summary = json.loads(json.dumps(ddd.analyze(tables, exp), allow_nan=False))
    clean, noisy = summary["model_wise"]
    assert (clean["largest_width"], noisy["largest_width"]) == (8, 4)
    assert noisy["largest_width_test_error"] == pytest.approx(0.5)
    section, _ = words(exp, summary, flat=True)
    assert section.count("At the largest width the mean train error rate") == 1  # the clean labels only
    assert (r"At $k=\num{4}$, the largest width with a run that did not diverge at this label noise, the mean train "
            r"error rate is \num{0} and the mean test error rate \num{0.5}.") in section


def test_one_width_is_named_as_one():
    tables = _tables({0.0: [0.3, 0.2, 0.15, 0.1], 0.2: [0.3, 0.25, 0.5, 0.2]})
    keep = tables.runs["model.width"] == 2
    tables = Tables(tables.metrics[tables.metrics["run_id"].isin(tables.runs.loc[keep, "run_id"])], tables.runs[keep])
    exp = _experiment()
    summary = json.loads(json.dumps(ddd.analyze(tables, exp), allow_nan=False))
    section, slides = words(exp, summary, flat=True)
    assert r"of width $k=\num{2}$ on" in section and "of widths" not in section
    assert r"width $k=\num{2}$, \num{3}~seeds" in slides


def test_with_one_seed_no_peak_is_claimed():
    tables = _tables({0.2: [0.3, 0.25, 0.9, 0.2]}, seeds=(0,))
    exp = _experiment(seeds=(0,))
    summary = json.loads(json.dumps(ddd.analyze(tables, exp), allow_nan=False))
    assert summary["model_wise"][0]["peak"] is None
    section, _ = words(exp, summary, flat=True)
    assert "no peak is claimed" in section and "peaks at" not in section


def test_the_figures_are_drawn(peaked, tmp_path, drawn):
    exp, tables, summary = peaked
    plan = load_plan({"experiments": {"ddd": {"study": "deep_double_descent"}}})
    names = ddd.figures(tables, summary, exp, PlotConfig(**plan.resolved["plot"]), tmp_path)
    assert names == list(ddd.FIGURES)
    assert all((tmp_path / f"{n}.pdf").is_file() for n in names)


# ----------------------------------------------------------------------------- plans and a real run


@pytest.mark.parametrize(
    "exp, match",
    [
        ({"model": {"arch": "mlp"}}, r"model.arch: study deep_double_descent trains cnn and resnet18 networks, not mlp"),
        ({"sweep": {"train.lr": [0.1, 0.01]}}, r"study deep_double_descent sweeps only model.width, task.label_noise"),
        ({"task": {"name": "teacher"}}, r"model.arch: cnn needs an image data set"),
    ],
)
def test_the_plan_refuses_what_the_study_cannot_analyse(exp, match):
    with pytest.raises(ConfigError, match=match):
        load_plan({"experiments": {"ddd": {"study": "deep_double_descent", **exp}}})


def test_the_default_plan_runs_a_small_cnn_sweep_on_the_digits(root):
    exp = load_plan(root / "config" / "config.yaml").experiment("deep_double_descent")
    assert {g.model.arch for g in exp.groups} == {"cnn"} and exp.task.name == "digits"
    assert len(exp.runs) <= 24


def test_a_tiny_sweep_trains_and_is_analysed(tmp_path):
    from mathdl.pipeline import collect

    plan = load_plan({"device": "cpu", "experiments": {"ddd": {
        "study": "deep_double_descent", "seeds": [0, 1], "task": {"n_train": 64, "n_test": 64},
        "train": {"epochs": 2, "eval_points": 2}, "sweep": {"model.width": [1, 2], "task.label_noise": [0.0]}}}})
    exp = plan.experiment("ddd")
    paths = train_groups(exp.groups, tmp_path)
    tables = collect([p[0] for p in paths], [p[1] for p in paths])
    summary = ddd.analyze(tables, exp)
    assert summary["widths"] == [1, 2] and summary["n_runs"] == 4 and summary["arch"] == "cnn"
    assert [e["epochs"] for e in summary["epoch_wise"]] == [[0, 1, 2]] * 2
