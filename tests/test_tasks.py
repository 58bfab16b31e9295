"""Data generation: shapes, reproducibility, label noise."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

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


@pytest.mark.parametrize(
    "n, fraction, count", [(1000, 0.3, 300), (7, 0.5, 4), (3, 0.5, 2), (50, 0.0, 0), (50, 1.0, 50)]
)
def test_randomize_labels_relabels_exactly_round_fraction_n_points(n, fraction, count):
    # Start from a label no draw can give (class K among 0..K-1), so every relabelled point shows,
    # including those whose new label would have equalled the old one.
    k = 3
    labels = np.full(n, k, dtype=np.int64)
    out = randomize_labels(labels, fraction, k, np.random.default_rng(n))
    relabelled = out != k
    assert relabelled.sum() == count == round(fraction * n)
    assert set(out[relabelled].tolist()) <= set(range(k))
    assert (labels == k).all()  # the input is left as it was


def test_randomize_labels_rejects_a_fraction_outside_0_1():
    with pytest.raises(ValueError, match="label_noise"):
        randomize_labels(np.zeros(10, dtype=np.int64), 1.5, 3, np.random.default_rng(0))


def test_new_labels_are_uniform_over_all_k_classes():
    # Chi-square goodness of fit at the 0.1% level, seed fixed. A draw over K - 1 classes leaves a
    # class empty (chi-square about 5500 on 9 degrees of freedom here), and a draw that always
    # changes the label never keeps it: both fail by hundreds of standard deviations.
    k, n = 10, 100_000
    rng = np.random.default_rng(7)
    new = randomize_labels(np.full(n, k, dtype=np.int64), 0.5, k, rng)
    new = new[new != k]
    assert len(new) == n // 2
    assert stats.chisquare(np.bincount(new, minlength=k)).pvalue > 1e-3
    # Relabelling every point of a balanced labelling: the new labels are uniform and independent
    # of the old, so a label is kept with probability 1/K (Zhang et al. 2017), not 0.
    old = np.arange(n) % k
    out = randomize_labels(old, 1.0, k, rng)
    assert stats.chisquare(np.bincount(out, minlength=k)).pvalue > 1e-3
    assert stats.binomtest(int((out == old).sum()), n, 1 / k).pvalue > 1e-3


def test_teacher_label_noise_changes_train_and_val_labels_and_leaves_test_labels_clean():
    task = dict(n_train=2000, n_val=1000, n_test=1000, n_classes=4)
    clean, noisy = make_dataset(_task(**task)), make_dataset(_task(**task, label_noise=0.3))
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(clean.split(split)[0], noisy.split(split)[0])
    np.testing.assert_array_equal(clean.y_test, noisy.y_test)
    for y_clean, y_noisy, n in [(clean.y_train, noisy.y_train, 2000), (clean.y_val, noisy.y_val, 1000)]:
        # round(0.3 n) points relabelled, each changing with probability (K - 1)/K = 3/4.
        changed = int((y_clean != y_noisy).sum())
        assert changed <= round(0.3 * n)
        assert stats.binomtest(changed, round(0.3 * n), 3 / 4).pvalue > 1e-3


def test_save_and_load_round_trip(tmp_path):
    d = make_dataset(_task())
    d.save(tmp_path / "d.npz")
    e = Dataset.load(tmp_path / "d.npz")
    assert e.kind == d.kind and e.n_outputs == d.n_outputs
    assert np.array_equal(e.x_val, d.x_val) and np.array_equal(e.y_test, d.y_test)
