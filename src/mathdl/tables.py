"""The tidy result tables of an experiment and the views that analyses take of them.

``metrics`` is long-form: one row per (run_id, epoch, split, metric, value).
``runs`` has one row per run: run_id, group_id, seed, status, and every resolved parameter
as a column named ``section.key`` (``model.width``, ``train.lr``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


CI_LEVEL = 0.95  # confidence level of the intervals in every summary.json and report


@dataclass(frozen=True)
class Tables:
    metrics: pd.DataFrame
    runs: pd.DataFrame

    def final(self) -> pd.DataFrame:
        """Wide table of each run's last recorded epoch: one row per run, columns split_metric."""
        last = self.metrics.loc[self.metrics.groupby(["run_id", "split", "metric"])["epoch"].idxmax()]
        return self._wide(last)

    def selected(self) -> pd.DataFrame:
        """Like :meth:`final`, at each run's ``selected_epoch`` (early stopping's choice on the
        validation split; without early stopping, the last epoch)."""
        at = self.metrics.merge(self.runs[["run_id", "selected_epoch"]], on="run_id")
        return self._wide(at[at["epoch"] == at["selected_epoch"]])

    def _wide(self, rows: pd.DataFrame) -> pd.DataFrame:
        """The runs table with one metric row per (run, split, metric) as columns split_metric."""
        wide = rows.pivot_table(index="run_id", columns=["split", "metric"], values="value", dropna=False)
        wide.columns = [f"{s}_{m}" for s, m in wide.columns]
        return self.runs.merge(wide.reset_index(), on="run_id", how="left")

    def per_run(self, metrics: tuple[str, ...] = ("loss", "error")) -> pd.DataFrame:
        """The runs table with, per split, the final and (with early stopping) the selected-epoch
        ``metrics`` as columns ``final_<split>_<metric>`` and ``selected_<split>_<metric>``:
        a group's question answered by one pandas line."""
        out = self.runs.copy()
        views = [("final", self.final())]
        if "selected_epoch" in self.runs and (self.runs["selected_epoch"] != self.last_epochs()).any():
            views.append(("selected", self.selected()))
        for prefix, wide in views:
            wide = wide.set_index("run_id")
            for column in wide.columns:
                if "_" in column and column.split("_", 1)[1] in metrics and column.split("_", 1)[0] in ("train", "val", "test"):
                    out[f"{prefix}_{column}"] = out["run_id"].map(wide[column])
        return out

    def last_epochs(self) -> pd.Series:
        """Each run's last recorded epoch, aligned with the runs table."""
        last = self.metrics.groupby("run_id")["epoch"].max()
        return self.runs["run_id"].map(last)

    def with_params(self) -> pd.DataFrame:
        """Long metrics joined with the run parameters."""
        return self.metrics.merge(self.runs, on="run_id", how="left")


def mean_ci(values, level: float = CI_LEVEL) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of the mean; the interval is NaN for one value."""
    from scipy import stats  # here, not at import: every Snakemake parse imports this module

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return (float("nan"),) * 3
    mean = float(v.mean())
    if len(v) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return mean, mean - half, mean + half


def json_number(value) -> float | None:
    """A number for summary.json: a float, or None for a missing, NaN or infinite value."""
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def mean_ci_dict(values, level: float = CI_LEVEL) -> dict:
    """``mean_ci`` as summary.json holds it: {mean, ci_low, ci_high}, None where undefined."""
    mean, lo, hi = mean_ci(values, level)
    return {"mean": json_number(mean), "ci_low": json_number(lo), "ci_high": json_number(hi)}


def interval_side(ci: dict, value: float | None) -> int | None:
    """Where a ``mean_ci_dict`` lies against ``value``: 1 entirely above, -1 entirely below, 0 where it
    holds it; without an interval (a single value) its mean decides. None without a mean or a value.
    The studies' words ('falls', 'above chance', ...) are chosen from it."""
    if value is None or ci["mean"] is None:
        return None
    low = ci["mean"] if ci["ci_low"] is None else ci["ci_low"]
    high = ci["mean"] if ci["ci_high"] is None else ci["ci_high"]
    return 1 if low > value else -1 if high < value else 0


def loglog_slope(x, y) -> tuple[float, float]:
    """Least-squares fit of log y = intercept + slope log x: (slope, intercept), the exponent p
    and the log-constant of y ~ c x^p."""
    slope, intercept = np.polyfit(np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float)), 1)
    return float(slope), float(intercept)
