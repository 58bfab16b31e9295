"""Data generation: shapes, reproducibility, label noise."""

from __future__ import annotations

import numpy as np
import pytest

from mathdl.config import TaskConfig
from mathdl.tasks import Dataset, make_dataset
from mathdl.tasks.noise import randomize_labels


def _task(**kw) -> TaskConfig:
    base = dict(name="teacher", path="", standardize=True, kind="classification", input_dim=5, n_classes=3, teacher_width=8,
                n_train=100, n_val=20, n_test=50, label_noise=0.0, seed=0)
    return TaskConfig(**{**base, **kw})


def test_shapes_and_dtypes():
    d = make_dataset(_task())
    assert d.x_train.shape == (100, 5) and d.x_val.shape == (20, 5) and d.x_test.shape == (50, 5)
    assert d.y_train.dtype == np.int64 and set(np.unique(d.y_test)) <= {0, 1, 2}
    r = make_dataset(_task(kind="regression"))
    assert r.y_train.shape == (100, 3) and r.y_train.dtype == np.float32


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = make_dataset(_task()), make_dataset(_task()), make_dataset(_task(seed=1))
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.x_train, c.x_train)


def test_label_noise_changes_train_labels_only():
    clean, noisy = make_dataset(_task()), make_dataset(_task(label_noise=1.0))
    assert np.array_equal(clean.x_train, noisy.x_train)
    assert np.array_equal(clean.y_test, noisy.y_test)
    # a fully randomized label agrees with the clean one about 1/3 of the time
    assert 0.15 < np.mean(clean.y_train == noisy.y_train) < 0.55


def test_randomize_labels_replaces_exactly_the_requested_fraction():
    rng = np.random.default_rng(0)
    labels = np.zeros(1000, dtype=np.int64)
    # with labels drawn from classes {1, 2} only, every replaced label differs from 0
    out = randomize_labels(labels, 0.3, 3, rng)
    changed = out != 0
    assert changed.sum() <= 300
    assert abs(changed.sum() - 300 * 2 / 3) < 60
    with pytest.raises(ValueError, match="label_noise"):
        randomize_labels(labels, 1.5, 3, rng)


def test_save_and_load_round_trip(tmp_path):
    d = make_dataset(_task())
    d.save(tmp_path / "d.npz")
    e = Dataset.load(tmp_path / "d.npz")
    assert e.kind == d.kind and e.n_outputs == d.n_outputs
    assert np.array_equal(e.x_val, d.x_val) and np.array_equal(e.y_test, d.y_test)
