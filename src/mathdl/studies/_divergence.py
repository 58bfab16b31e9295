"""Diverged networks in a study's own compute: which failed, and their numbers left out.

The engine flags a run ``diverged`` from the epoch its training loss turned non-finite, and
records NaN only *after* that epoch: a run that diverges at the last recorded epoch can still
have finite final metrics (its frozen parameters scored on another split, say). A study that
trains networks inside its compute (several shapes in one job) calls :func:`blank_failed` on
each engine result, so that every later mean, interval and selection sees NaN for a failed
network, whenever it failed, and counts it with :func:`failed_runs`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def failed_runs(result) -> set[str]:
    """Run ids of an engine result that diverged (at any epoch, the last recorded one too) or
    whose final training loss is not finite, caught diverging or not."""
    m, runs = result.metrics, result.runs
    loss = m[(m["split"] == "train") & (m["metric"] == "loss")]
    last = loss[loss["epoch"] == loss.groupby("run_id")["epoch"].transform("max")]
    non_finite = set(last.loc[~np.isfinite(last["value"].to_numpy(dtype=float)), "run_id"])
    return set(runs.loc[runs["diverged"].astype(bool), "run_id"]) | non_finite


def blank_failed(result) -> pd.DataFrame:
    """The result's metrics with every value of a failed run NaN from the epoch it diverged on
    (a run with a non-finite final loss that was not caught diverging: at its last epoch)."""
    m = result.metrics.copy()
    failed = failed_runs(result)
    if not failed:
        return m
    start = result.runs.set_index("run_id")["diverged_epoch"].astype(int)
    last = m.groupby("run_id")["epoch"].transform("max")
    since = m["run_id"].map(start).fillna(-1).astype(int)
    since = since.where(since >= 0, last)  # not caught diverging: only the last epoch
    m.loc[m["run_id"].isin(failed) & (m["epoch"] >= since), "value"] = np.nan
    return m
