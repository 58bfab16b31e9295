"""linalg.ridge_fit: what mutation testing found unpinned by tests/test_linalg.py (see tests/README.md).

Designs with no rows or no columns, the relative cutoff on a design of tiny (or huge) scale,
and no warnings on a regular call.
"""

from __future__ import annotations

import numpy as np
import pytest

from mathdl.linalg import ridge_fit


@pytest.mark.parametrize("shape", [(5, 0), (0, 3)])
def test_an_empty_design_gives_zero_solutions(shape):
    """No singular values: the solution is 0 (no column, or no data) and no eigenvalue is kept."""
    n, d = shape
    b, eigenvalues = ridge_fit(np.zeros(shape), np.ones(n), [0.0, 1.0])
    assert b.shape == (2, d) and not b.any()
    assert eigenvalues.shape == (0,)


@pytest.mark.parametrize("scale", [1e-20, 1e20])
def test_the_cutoff_is_relative_to_the_largest_singular_value(scale):
    """(c X)^+ y = X^+ y / c for any c > 0: no singular value counts as zero because of the scale."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 4)), rng.standard_normal(6)
    b, eigenvalues = ridge_fit(x, y, [0.0])
    b_scaled, eigenvalues_scaled = ridge_fit(scale * x, y, [0.0])
    np.testing.assert_allclose(b_scaled * scale, b, rtol=1e-10)
    np.testing.assert_allclose(eigenvalues_scaled / scale**2, eigenvalues, rtol=1e-10)


@pytest.mark.filterwarnings("error")
def test_a_regular_call_warns_nothing():
    """A warning here (a deprecated NumPy call, a division by zero) is an error."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((5, 8)), rng.standard_normal((5, 2))
    b, _ = ridge_fit(x, y, [0.0, 0.1])
    assert b.shape == (2, 8, 2)
