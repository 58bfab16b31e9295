"""linalg.ridge_fit against independent solvers: numpy's pseudo-inverse for the minimum-norm
least-squares solution at lambda = 0 on rank-deficient designs, and the normal equations
(X^T X + lambda I)^{-1} X^T y for lambda > 0, with ridge_fit's penalty lambda ||b||^2 (no 1/n)."""

from __future__ import annotations

import numpy as np
import pytest

from mathdl.linalg import ridge_fit


def _rank_deficient(n: int, d: int, rank: int, seed: int) -> np.ndarray:
    """An (n, d) design of the given rank < min(n, d): every column a combination of ``rank``
    random ones, column 1 zero and column 3 an exact copy of column 0."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, d))
    x[:, 1] = 0.0
    x[:, 3] = x[:, 0]
    return x


@pytest.mark.parametrize("n, d, rank", [(40, 9, 5), (6, 12, 4), (7, 7, 5)], ids=["n>d", "n<d", "n=d"])
def test_lambda_zero_is_the_pseudoinverse_solution_on_rank_deficient_designs(n, d, rank):
    x = _rank_deficient(n, d, rank, seed=n + d)
    assert np.linalg.matrix_rank(x) == rank < min(n, d)  # really rank-deficient
    rng = np.random.default_rng(1)
    y = rng.standard_normal(n)
    b, eigenvalues = ridge_fit(x, y, [0.0])
    expected = np.linalg.pinv(x) @ y
    np.testing.assert_allclose(b[0], expected, rtol=1e-9, atol=1e-10)
    # The minimum-norm solution has no component on the null space: nothing on the zero column,
    # equal weights on the two copies of column 0.
    assert b[0, 1] == pytest.approx(0.0, abs=1e-12)
    assert b[0, 0] == pytest.approx(b[0, 3], rel=1e-9, abs=1e-12)
    # Only the rank's worth of singular values is kept: the eigenvalues of X^T X that are not zero.
    assert len(eigenvalues) == rank
    np.testing.assert_allclose(np.sort(eigenvalues), np.linalg.eigvalsh(x.T @ x)[-rank:], rtol=1e-9)
    # Several outputs at once: column k is the fit of y[:, k].
    y2 = rng.standard_normal((n, 3))
    b2, _ = ridge_fit(x, y2, [0.0])
    assert b2.shape == (1, d, 3)
    np.testing.assert_allclose(b2[0], np.linalg.pinv(x) @ y2, rtol=1e-9, atol=1e-10)


def test_a_design_of_zeros_gives_the_zero_solution():
    b, eigenvalues = ridge_fit(np.zeros((4, 3)), np.ones(4), [0.0, 1.0])
    np.testing.assert_array_equal(b, np.zeros((2, 3)))
    assert len(eigenvalues) == 0


@pytest.mark.parametrize("n, d, rank", [(40, 9, 5), (6, 12, 4)], ids=["n>d", "n<d"])
def test_positive_lambda_is_the_normal_equations_with_penalty_lambda(n, d, rank):
    x = _rank_deficient(n, d, rank, seed=3)
    y = np.random.default_rng(2).standard_normal(n)
    lambdas = np.array([1e-3, 0.5, 7.0])
    b, _ = ridge_fit(x, y, lambdas)
    assert b.shape == (3, d)
    for lam, b_lam in zip(lambdas, b):
        expected = np.linalg.solve(x.T @ x + lam * np.eye(d), x.T @ y)
        np.testing.assert_allclose(b_lam, expected, rtol=1e-8, atol=1e-10)
        # The stationarity condition of ||X b - y||^2 + lambda ||b||^2 (not (1/n)||X b - y||^2).
        np.testing.assert_allclose(x.T @ (x @ b_lam - y) + lam * b_lam, 0.0, atol=1e-9)
