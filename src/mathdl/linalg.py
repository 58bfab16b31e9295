"""Closed-form least squares shared by the studies."""

from __future__ import annotations

import numpy as np


def ridge_fit(x: np.ndarray, y: np.ndarray, lambdas) -> tuple[np.ndarray, np.ndarray]:
    """b_lambda = argmin ||X b - y||^2 + lambda ||b||^2 for each lambda, from one thin SVD
    X = U diag(s) V^T: b_lambda = V diag(s_i / (s_i^2 + lambda)) U^T y; at lambda = 0 the
    minimum-norm least-squares solution X^+ y. Singular values at or below eps max(n, d) s_max
    count as zero (numpy.linalg.lstsq's cutoff).

    x (n, d), y (n,) or (n, K) -> the solutions (L, d) or (L, d, K), and the kept eigenvalues
    s_i^2 of X^T X.
    """
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    positive = s > s.max(initial=0.0) * max(x.shape) * np.finfo(float).eps
    u, s, vt = u[:, positive], s[positive], vt[positive]
    filters = s[None, :] / (s[None, :] ** 2 + np.asarray(lambdas, dtype=float)[:, None])  # (L, k)
    return np.einsum("lk,k...,kd->ld...", filters, u.T @ y, vt), s**2
