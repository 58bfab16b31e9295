"""tables: what mutation testing found unpinned by tests/test_tables.py (see tests/README.md).

The wide view of each run's last epoch, the long view with parameters, the log-log fit, and
mean_ci's handling of missing values and of a confidence level passed through mean_ci_dict.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mathdl.tables import Tables, loglog_slope, mean_ci, mean_ci_dict


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
