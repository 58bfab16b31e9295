"""Label noise: a fraction of the labels replaced by uniformly random ones.

As Zhang et al. (2017) corrupt labels: each chosen label is redrawn uniformly from all K
classes, so it keeps its old value with probability 1/K and about a (K-1)/K share of the
chosen labels change.
"""

from __future__ import annotations

import numpy as np


def noise_mask(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask of exactly round(fraction * n) of n positions, chosen uniformly at random."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"task.label_noise: a fraction of labels must lie in [0, 1], got {fraction}")
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=int(round(fraction * n)), replace=False)] = True
    return mask


def randomize_labels(labels: np.ndarray, fraction: float, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Redraw the labels at ``noise_mask(len(labels), fraction, rng)`` uniformly from 0..n_classes-1."""
    mask = noise_mask(len(labels), fraction, rng)
    labels = labels.copy()
    labels[mask] = rng.integers(0, n_classes, size=int(mask.sum()))
    return labels
