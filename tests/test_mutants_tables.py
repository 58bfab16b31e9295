"""tables: what mutation testing found unpinned by tests/test_tables.py (see tests/README.md).

The wide view of each run's last epoch, the long view with parameters, the log-log fit, and
mean_ci's handling of missing values and of a confidence level passed through mean_ci_dict; the
view at early stopping's selected epoch, per_run's columns, last_epochs, json_number and
interval_side (reached before only through the study tests, which mutation testing leaves out).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mathdl.tables import CI_LEVEL, Tables, interval_side, json_number, loglog_slope, mean_ci, mean_ci_dict


def small_tables() -> Tables:
    """Runs a, b, c; a's epochs out of order, b's last value NaN (a diverged run), c never logged."""
    metrics = pd.DataFrame(
        [
            ("a", 2, "train", "loss", 0.2),
            ("a", 0, "train", "loss", 1.0),
            ("a", 1, "train", "loss", 0.5),
            ("a", 0, "test", "error", 0.9),
            ("a", 1, "test", "error", 0.4),
            ("b", 0, "test", "error", 0.7),
            ("b", 3, "test", "error", np.nan),
        ],
        columns=["run_id", "epoch", "split", "metric", "value"],
    )
    runs = pd.DataFrame({"run_id": ["a", "b", "c"], "group_id": ["g", "g", "h"], "model.width": [4, 4, 8]})
    return Tables(metrics, runs)


def test_final_holds_each_runs_last_recorded_epoch():
    final = small_tables().final()
    assert list(final["run_id"]) == ["a", "b", "c"]  # every run, in the order of runs
    assert list(final["model.width"]) == [4, 4, 8]
    assert final.loc[0, "train_loss"] == 0.2  # epoch 2, not the last row (epoch 1)
    assert final.loc[0, "test_error"] == 0.4
    assert math.isnan(final.loc[1, "test_error"])  # b's last epoch is NaN, not its earlier 0.7
    assert math.isnan(final.loc[1, "train_loss"])  # b never logged it
    assert final.loc[2, ["test_error", "train_loss"]].isna().all()  # c has no metrics at all


def test_with_params_gives_every_metric_row_its_runs_parameters():
    tables = small_tables()
    long = tables.with_params()
    assert len(long) == len(tables.metrics)
    pd.testing.assert_frame_equal(long[tables.metrics.columns], tables.metrics)
    assert list(long["group_id"]) == ["g"] * 7
    assert list(long["model.width"]) == [4] * 7


def test_loglog_slope_recovers_a_power_law():
    x = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    slope, intercept = loglog_slope(x, 3.0 * x**-0.5)
    assert slope == pytest.approx(-0.5, rel=1e-12)
    assert intercept == pytest.approx(math.log(3.0), rel=1e-12)
    assert isinstance(slope, float) and isinstance(intercept, float)


def test_mean_ci_counts_none_as_missing():
    assert mean_ci([1.0, None, 3.0]) == mean_ci([1.0, 3.0])


def test_mean_ci_dict_passes_the_level_on():
    values = [1.0, 2.0, 3.0, 4.0]
    mean, lo, hi = mean_ci(values, 0.8)
    assert mean_ci_dict(values, 0.8) == {"mean": mean, "ci_low": lo, "ci_high": hi}
    assert hi - lo < mean_ci(values)[2] - mean_ci(values)[1]  # an 80% interval is the narrower


def test_final_keeps_a_metric_that_every_run_ends_on_nan():
    """All runs diverged: their test loss is NaN at the last epoch, and the column is still there."""
    metrics = pd.DataFrame(
        [("a", 0, "test", "loss", 2.0), ("a", 1, "test", "loss", np.nan), ("b", 1, "test", "loss", np.nan)]
        + [(run, 1, "test", "error", 0.5) for run in ("a", "b")],
        columns=["run_id", "epoch", "split", "metric", "value"],
    )
    final = Tables(metrics, pd.DataFrame({"run_id": ["a", "b"]})).final()
    assert final["test_loss"].isna().all()
    assert list(final["test_error"]) == [0.5, 0.5]


def test_with_params_keeps_metric_rows_of_a_run_missing_from_runs():
    tables = small_tables()
    orphan = pd.DataFrame([("z", 0, "test", "error", 0.1)], columns=tables.metrics.columns)
    long = Tables(pd.concat([tables.metrics, orphan], ignore_index=True), tables.runs).with_params()
    assert len(long) == len(tables.metrics) + 1
    assert long.iloc[-1]["run_id"] == "z" and pd.isna(long.iloc[-1]["group_id"])


def early_stopped_tables() -> Tables:
    """Runs a (selected at epoch 1 of 2), b (selected at its last epoch, 2) and c (no metrics)."""
    rows = []
    for run, errors in (("a", [0.9, 0.3, 0.5]), ("b", [0.8, 0.6, 0.4])):
        for epoch, error in enumerate(errors):
            rows += [(run, epoch, "val", "error", error), (run, epoch, "test", "error", error + 0.01),
                     (run, epoch, "train", "loss", 2.0 - epoch), (run, epoch, "test", "accuracy", 1 - error),
                     (run, epoch, "other", "loss", 7.0)]
    metrics = pd.DataFrame(rows, columns=["run_id", "epoch", "split", "metric", "value"])
    runs = pd.DataFrame({"run_id": ["a", "b", "c"], "group_id": ["g", "g", "g"], "selected_epoch": [1, 2, 0]})
    return Tables(metrics, runs)


def test_selected_holds_each_runs_metrics_at_its_selected_epoch():
    selected = early_stopped_tables().selected()
    assert list(selected["run_id"]) == ["a", "b", "c"]
    assert list(selected["val_error"][:2]) == [0.3, 0.4]
    assert list(selected["test_error"][:2]) == pytest.approx([0.31, 0.41], abs=1e-15)
    assert list(selected["train_loss"][:2]) == [1.0, 0.0]
    assert selected.loc[2, ["val_error", "test_error"]].isna().all()  # c has no metrics
    assert list(selected["selected_epoch"]) == [1, 2, 0]


def test_last_epochs_are_aligned_with_the_runs_table():
    tables = early_stopped_tables()
    last = tables.last_epochs()
    assert list(last[:2]) == [2, 2] and math.isnan(last[2])
    reordered = Tables(tables.metrics, tables.runs.iloc[::-1].reset_index(drop=True))
    assert list(reordered.last_epochs()[1:]) == [2, 2]


def test_per_run_has_final_and_selected_columns_of_the_named_metrics_per_split():
    tables = early_stopped_tables()
    out = tables.per_run()
    assert list(out["run_id"]) == ["a", "b", "c"]
    added = sorted(set(out.columns) - set(tables.runs.columns))
    # every split and metric of the pivot (NaN where never logged), but not other_loss, not accuracy
    assert added == sorted(f"{view}_{split}_{metric}" for view in ("final", "selected")
                           for split in ("train", "val", "test") for metric in ("loss", "error"))
    assert list(out["final_val_error"][:2]) == [0.5, 0.4]
    assert list(out["selected_val_error"][:2]) == [0.3, 0.4]
    assert list(out["selected_test_error"][:2]) == pytest.approx([0.31, 0.41], abs=1e-15)
    assert out.loc[2, ["final_val_error", "selected_val_error"]].isna().all()
    pd.testing.assert_frame_equal(out[tables.runs.columns], tables.runs)  # the runs table is kept as it is
    accuracy = tables.per_run(metrics=("accuracy",))
    assert sorted(set(accuracy.columns) - set(tables.runs.columns)) == sorted(
        f"{view}_{split}_accuracy" for view in ("final", "selected") for split in ("train", "val", "test"))
    assert list(accuracy["selected_test_accuracy"][:2]) == pytest.approx([0.7, 0.6])


def test_per_run_has_no_selected_columns_when_every_run_is_selected_at_its_last_epoch():
    tables = early_stopped_tables()
    runs = tables.runs.iloc[:2].assign(selected_epoch=[2, 2])
    out = Tables(tables.metrics, runs).per_run()
    assert not [c for c in out.columns if c.startswith("selected_") and c != "selected_epoch"]
    assert list(out["final_val_error"]) == [0.5, 0.4]
    without = Tables(tables.metrics, tables.runs[["run_id", "group_id"]]).per_run()  # no early stopping column
    assert sorted(set(without.columns) - {"run_id", "group_id"}) == sorted(
        f"final_{split}_{metric}" for split in ("train", "val", "test") for metric in ("loss", "error"))


def test_per_run_reads_split_names_before_the_first_underscore():
    """A metric name with an underscore (test_margin_loss) is its split and the rest; a column
    that merely contains a metric name (val_error_rate) is not taken for it."""
    metrics = pd.DataFrame([("a", 0, "test", "margin_loss", 1.5), ("a", 0, "val", "error_rate", 0.2),
                            ("a", 0, "val", "error", 0.1)], columns=["run_id", "epoch", "split", "metric", "value"])
    out = Tables(metrics, pd.DataFrame({"run_id": ["a"]})).per_run(metrics=("margin_loss", "error"))
    assert sorted(set(out.columns) - {"run_id"}) == ["final_test_error", "final_test_margin_loss",
                                                     "final_val_error", "final_val_margin_loss"]
    assert out.loc[0, "final_test_margin_loss"] == 1.5


def test_json_number_is_a_float_or_none():
    assert json_number(None) is None
    for bad in (float("nan"), float("inf"), -float("inf"), np.float32("nan")):
        assert json_number(bad) is None
    for value, expected in ((3, 3.0), (np.float32(0.5), 0.5), (-2.25, -2.25), (0, 0.0)):
        out = json_number(value)
        assert out == expected and type(out) is float


def test_mean_ci_dict_is_none_where_mean_ci_is_undefined():
    assert mean_ci_dict([]) == {"mean": None, "ci_low": None, "ci_high": None}
    mean, lo, hi = mean_ci([1.0, 2.0, 4.0])
    assert mean_ci_dict([1.0, 2.0, 4.0]) == {"mean": mean, "ci_low": lo, "ci_high": hi}
    assert mean_ci([1.0, 2.0, 4.0]) == mean_ci([1.0, 2.0, 4.0], CI_LEVEL)
    assert CI_LEVEL == 0.95


@pytest.mark.parametrize(
    "ci, value, side",
    [
        ({"mean": 1.0, "ci_low": 0.5, "ci_high": 1.5}, 0.4, 1),
        ({"mean": 1.0, "ci_low": 0.5, "ci_high": 1.5}, 0.5, 0),  # the interval's end holds the value
        ({"mean": 1.0, "ci_low": 0.5, "ci_high": 1.5}, 1.0, 0),
        ({"mean": 1.0, "ci_low": 0.5, "ci_high": 1.5}, 1.5, 0),
        ({"mean": 1.0, "ci_low": 0.5, "ci_high": 1.5}, 1.6, -1),
        ({"mean": 1.0, "ci_low": None, "ci_high": None}, 0.9, 1),  # one value: its mean decides
        ({"mean": 1.0, "ci_low": None, "ci_high": None}, 1.0, 0),
        ({"mean": 1.0, "ci_low": None, "ci_high": None}, 1.1, -1),
        ({"mean": 1.0, "ci_low": 0.5, "ci_high": None}, 1.1, -1),  # each missing end is the mean
        ({"mean": 1.0, "ci_low": None, "ci_high": 1.5}, 0.9, 1),
        ({"mean": None, "ci_low": None, "ci_high": None}, 1.0, None),
        ({"mean": 1.0, "ci_low": 0.5, "ci_high": 1.5}, None, None),
        ({"mean": 0.0, "ci_low": -1.0, "ci_high": 1.0}, 0.0, 0),  # zero is a value, not a missing one
        ({"mean": 0.0, "ci_low": None, "ci_high": None}, -0.5, 1),
    ],
)
def test_interval_side(ci, value, side):
    assert interval_side(ci, value) == side
