"""Runs that diverge are left out of every mean, whenever they diverge: at the last recorded epoch
too. The engine records NaN from the epoch a run diverges in (an error rate of infinite outputs
would be a finite number), and the studies' helpers leave out a run whose final loss is not finite
even where the engine did not catch it diverging.

The group trains one epoch: runs with a learning rate of 30 diverge in it, at the last epoch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mathdl import engine
from mathdl.engine import TrainResult
from mathdl.pipeline import run_parameters
from mathdl.studies._divergence import blank_failed, failed_runs
from mathdl.tables import Tables, mean_ci_dict
from mathdl.tasks import make_dataset

SAFE_LR, EXPLODING_LR = 0.1, 30.0


@pytest.fixture(scope="module")
def last_epoch():
    group = engine.make_group(
        [0, 1, 2], task={"kind": "classification", "n_train": 64, "n_test": 64},
        model={"width": 16, "depth": 2},
        train={"loss": "cross_entropy", "lr": SAFE_LR, "batch_size": 8, "epochs": 1, "eval_points": 2},
        per_run=[{"lr": SAFE_LR}, {"lr": EXPLODING_LR}], experiment="divergence")
    result = engine.train(group, make_dataset(group.task), progress=False)
    runs = result.runs.merge(run_parameters(group), on=["run_id", "seed"])
    diverged = set(runs.loc[runs["diverged"], "run_id"])
    # The premise: some runs diverge at the last epoch, and the engine records no number for them there.
    assert diverged and set(runs.loc[runs["diverged"], "diverged_epoch"]) == {1}
    final = Tables(result.metrics, runs).final().set_index("run_id")
    assert final.loc[sorted(diverged), "test_error"].isna().all()
    assert np.isfinite(final.drop(sorted(diverged))["test_error"]).all()
    return group, result, runs, diverged


def test_failed_runs_are_the_diverged_ones(last_epoch):
    _, result, _, diverged = last_epoch
    assert failed_runs(result) == diverged


def test_blank_failed_leaves_out_every_number_of_a_failed_run_from_its_divergence_on(last_epoch):
    _, result, _, diverged = last_epoch
    blank = blank_failed(result)
    gone = blank["run_id"].isin(diverged) & (blank["epoch"] >= 1)
    assert blank.loc[gone, "value"].isna().all()
    pd.testing.assert_frame_equal(blank[~gone], result.metrics[~gone])  # the rest untouched, epoch 0 included


def test_a_non_finite_final_loss_counts_as_failed_though_not_caught_diverging():
    metrics = pd.DataFrame({"run_id": ["a", "a", "b", "b"], "epoch": [0, 5, 0, 5], "split": ["train"] * 4,
                            "metric": ["loss"] * 4, "value": [1.0, np.inf, 1.0, 0.5]})
    runs = pd.DataFrame({"run_id": ["a", "b"], "seed": [0, 1], "diverged": [False, False], "diverged_epoch": [-1, -1]})
    result = TrainResult(metrics, runs, "cpu", 0.0)
    assert failed_runs(result) == {"a"}
    assert blank_failed(result)["value"].tolist()[:2] == [1.0, pytest.approx(np.nan, nan_ok=True)]


def test_residual_means_leave_out_runs_that_diverge_at_the_last_epoch(last_epoch):
    from mathdl.studies import residual

    _, result, runs, diverged = last_epoch
    per_run = residual.per_run(Tables(result.metrics, runs))
    failed = per_run["run_id"].isin(diverged)
    assert per_run.loc[failed, "failed"].all() and not per_run.loc[~failed, "failed"].any()
    assert per_run.loc[failed, ["train_loss", "train_error", "test_loss", "test_error"]].isna().all().all()
    final = Tables(result.metrics, runs).final().set_index("run_id")
    kept = final.loc[per_run.loc[~failed, "run_id"], "test_error"]
    assert mean_ci_dict(per_run["test_error"]) == mean_ci_dict(kept)


def test_random_labels_means_leave_out_runs_that_diverge_at_the_last_epoch(last_epoch):
    from mathdl.studies import random_labels

    _, result, runs, diverged = last_epoch
    table = random_labels.run_table(Tables(result.metrics, runs))
    failed = table["run_id"].isin(diverged)
    assert table.loc[failed, "diverged"].all()
    assert table.loc[failed, ["train_accuracy", "test_accuracy", "epochs_to_fit"]].isna().all().all()
    final = Tables(result.metrics, runs).final().set_index("run_id")
    kept = 1.0 - final.loc[table.loc[~failed, "run_id"], "test_error"]
    assert mean_ci_dict(table["test_accuracy"]) == mean_ci_dict(kept)
