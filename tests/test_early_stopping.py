"""Early stopping's selection, checked against training without it.

The engine keeps, for each run, the epoch of best validation ``selection_metric`` (checked every
epoch, whatever the eval schedule) and records the metrics of the parameters of that epoch. The
independent path here: the same seeds trained without early stopping and evaluated at every
epoch. With a constant learning rate the two trainings are the same up to the selected epoch,
so the selected epoch must be the first argmin of that run's validation curve (up to the epoch
where patience stops it), and the selected-epoch rows must equal that run's rows at the
selected epoch. Ties go to the earliest epoch: ``_Ensemble._select`` replaces the best only on a
strictly smaller value (``val < self.best``).
"""

from __future__ import annotations

import pandas as pd
import pytest

from mathdl import engine
from mathdl.tasks import make_dataset

TASK = {
    "input_dim": 6, "n_classes": 3, "teacher_width": 8, "n_train": 96, "n_val": 48, "n_test": 64, "label_noise": 0.4,
}
EPOCHS = 20
SEEDS = (0, 1, 2, 3)


def _train(**train):
    group = engine.make_group(
        SEEDS,
        task=TASK,
        model={"depth": 2, "width": 16},
        train={"epochs": EPOCHS, "batch_size": 32, "optimizer": "adam", "lr": 0.03, **train},
    )
    result = engine.train(group, make_dataset(group.task), progress=False)
    seed_of = result.runs.set_index("run_id")["seed"]
    metrics = result.metrics.assign(seed=result.metrics["run_id"].map(seed_of)).drop(columns="run_id")
    return result.runs.set_index("seed"), metrics.set_index(["seed", "epoch", "split", "metric"])["value"].sort_index()


def _selection_by_the_rule(curve: pd.Series, patience: int) -> tuple[int, int]:
    """(selected_epoch, stopped_epoch) from a validation curve by the documented rule: a later
    epoch replaces the best only when strictly better; with patience p > 0 a run stops at the
    p-th epoch in a row without a better value (stopped_epoch -1: it trained to the end)."""
    best, selected, since = curve[0], 0, 0
    for epoch in range(1, EPOCHS + 1):
        if curve[epoch] < best:
            best, selected, since = curve[epoch], epoch, 0
        else:
            since += 1
            if patience and since >= patience:
                return selected, epoch
    return selected, -1


@pytest.fixture(scope="module")
def reference():
    """The metrics of every epoch of the seeds trained without early stopping."""
    _, metrics = _train(eval_points=100)
    assert sorted(metrics.index.unique("epoch")) == list(range(EPOCHS + 1))
    return metrics


def _rows(metrics: pd.Series, seed: int, epoch: int) -> pd.Series:
    return metrics.xs((seed, epoch), level=("seed", "epoch"))


@pytest.mark.parametrize("patience", [0, 2])
def test_selected_metrics_are_those_of_the_selected_epoch(reference, patience):
    # Early stopping with only epochs 0 and EPOCHS scheduled, so the selected epoch's rows come
    # from the kept parameters.
    runs, metrics = _train(early_stopping=True, patience=patience, eval_points=2)
    val = reference.xs(("val", "loss"), level=("split", "metric")).unstack("seed")  # (epoch, seed)
    for seed in SEEDS:
        selected, stopped = _selection_by_the_rule(val[seed], patience)
        if patience == 0:  # the first argmin over all epochs
            assert selected == val[seed].idxmin() and stopped == -1
        assert (runs.loc[seed, "selected_epoch"], runs.loc[seed, "stopped_epoch"]) == (selected, stopped)
        pd.testing.assert_series_equal(
            _rows(metrics, seed, selected), _rows(reference, seed, selected), check_exact=False, rtol=1e-6, atol=1e-7
        )
    # The kept parameters were used: some selected epochs lie strictly between 0 and EPOCHS, and
    # their metrics are not those of the initial network.
    interior = runs.index[runs["selected_epoch"].between(1, EPOCHS - 1)]
    assert len(interior) >= 2
    for seed in interior:
        moved = _rows(metrics, seed, runs.loc[seed, "selected_epoch"]) - _rows(metrics, seed, 0)
        assert moved.abs().max() > 1e-3
    if patience:
        assert (runs["stopped_epoch"] > 0).any()


def test_a_tie_keeps_the_earliest_epoch(reference):
    # The validation error counts mistakes among 48 points, so equal best values recur; the
    # first epoch with the best value is selected, and its metrics (not a later tie's) are kept.
    runs, metrics = _train(early_stopping=True, selection_metric="error", eval_points=2)
    val = reference.xs(("val", "error"), level=("split", "metric")).unstack("seed")
    tied = 0
    for seed in SEEDS:
        best_epochs = [int(e) for e in val.index[val[seed] == val[seed].min()]]
        assert runs.loc[seed, "selected_epoch"] == best_epochs[0]
        pd.testing.assert_series_equal(
            _rows(metrics, seed, best_epochs[0]), _rows(reference, seed, best_epochs[0]),
            check_exact=False, rtol=1e-6, atol=1e-7,
        )
        tied += len(best_epochs) > 1 and 0 < best_epochs[0] < EPOCHS
    assert tied >= 2  # the case this test is about really happened, with kept parameters
