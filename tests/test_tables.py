"""tables.mean_ci: the Student-t interval of the mean, against scipy and a hand calculation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from mathdl.tables import CI_LEVEL, mean_ci, mean_ci_dict


@pytest.mark.parametrize("n", [2, 3, 5, 30])
@pytest.mark.parametrize("level", [CI_LEVEL, 0.8])
def test_mean_ci_is_scipys_t_interval(n, level):
    v = np.random.default_rng(n).normal(3.0, 2.0, size=n)
    mean, lo, hi = mean_ci(v, level)
    sem = v.std(ddof=1) / math.sqrt(n)
    expected_lo, expected_hi = stats.t.interval(level, df=n - 1, loc=v.mean(), scale=sem)
    assert mean == pytest.approx(v.mean(), rel=1e-12)
    assert lo == pytest.approx(expected_lo, rel=1e-10) and hi == pytest.approx(expected_hi, rel=1e-10)


def test_mean_ci_by_hand():
    # values 1, 2, 3, 4: mean 2.5, sample variance (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3,
    # and the 97.5% quantile of Student's t with n - 1 = 3 degrees of freedom, 3.18244630528371
    # (printed tables: 3.182); the half-width is t s / sqrt(n) = 2.05426...
    half = 3.18244630528371 * math.sqrt(5 / 3) / 2
    mean, lo, hi = mean_ci([1.0, 2.0, 3.0, 4.0], 0.95)
    assert (mean, lo, hi) == pytest.approx((2.5, 2.5 - half, 2.5 + half), rel=1e-10)
    # Values 0 and 2: mean 1, s = sqrt(2), n = 2, 1 degree of freedom, t = 12.7062047361747.
    assert mean_ci([0.0, 2.0], 0.95) == pytest.approx((1.0, 1.0 - 12.7062047361747, 1.0 + 12.7062047361747), rel=1e-10)


def test_one_value_has_a_mean_and_no_interval():
    mean, lo, hi = mean_ci([4.5])
    assert mean == 4.5 and math.isnan(lo) and math.isnan(hi)
    assert mean_ci_dict([4.5]) == {"mean": 4.5, "ci_low": None, "ci_high": None}


def test_non_finite_values_are_left_out():
    # NaN (a diverged run's metric) and infinities are dropped before the mean and the interval.
    assert mean_ci([1.0, np.nan, 2.0, np.inf, 3.0, -np.inf]) == pytest.approx(mean_ci([1.0, 2.0, 3.0]), rel=1e-15)
    mean, lo, hi = mean_ci([np.nan, 7.0, np.inf])  # one finite value left: no interval
    assert mean == 7.0 and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(x) for x in mean_ci([np.nan, np.inf]))
    assert all(math.isnan(x) for x in mean_ci([]))
    assert mean_ci_dict([np.nan]) == {"mean": None, "ci_low": None, "ci_high": None}


def test_identical_values_give_an_empty_interval():
    assert mean_ci([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
