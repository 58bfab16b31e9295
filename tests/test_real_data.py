"""Real data sets: digits, and tiny MNIST/Fashion-MNIST IDX and CIFAR-10 files written here."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from mathdl.config import ConfigError, TaskConfig, load_plan
from mathdl.tasks import make_dataset
from mathdl.tasks.noise import noise_mask, randomize_labels
from mathdl.tasks.real import (
    draw_splits,
    read_idx,
    standardize,
    write_cifar_batch,
    write_idx,
)


def _task(**kw) -> TaskConfig:
    base = dict(name="digits", path="", standardize=True, kind="classification", input_dim=10, n_classes=2,
                teacher_width=16, n_train=200, n_val=50, n_test=300, label_noise=0.0, seed=0)
    return TaskConfig(**{**base, **kw})


def _write_mnist(folder, n_train=30, n_test=12, gz=False, side=28):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(n_test, dtype=np.uint8) % 10,
    }
    for name, a in arrays.items():
        write_idx(folder / (name + (".gz" if gz else "")), a)
    return arrays


def _write_cifar(folder, per_batch=6, n_test=8):
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", n_test)]:
        x, y = rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n)
        write_cifar_batch(folder / name, x, y)
        batches[name] = (x, y)
    return batches


def _plan(task: dict) -> dict:
    return {"experiments": {"real": {"study": "sweep", "task": task, "sweep": {"model.width": [4]}}}}


# ----------------------------------------------------------------------------- digits


def test_digits_shapes_types_and_standardization():
    d = make_dataset(_task(n_val=50))
    assert d.kind == "classification" and d.n_outputs == 10
    assert d.x_train.shape == (200, 1, 8, 8) and d.x_val.shape == (50, 1, 8, 8) and d.x_test.shape == (300, 1, 8, 8)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert set(np.unique(d.y_test)) <= set(range(10))
    sd = d.x_train.std(axis=0)
    varying = sd > 0
    np.testing.assert_allclose(d.x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(sd[varying], 1.0, rtol=1e-4)
    raw = make_dataset(_task(standardize=False))
    assert raw.x_train.min() >= 0.0 and raw.x_train.max() <= 1.0  # pixels scaled to [0, 1]


def test_standardize_uses_the_training_statistics_only():
    rng = np.random.default_rng(0)
    x_train, x_test = rng.normal(3.0, 2.0, (100, 3)), rng.normal(0.0, 1.0, (50, 3))
    x_train[:, 2] = 5.0  # a constant feature: only shifted
    st_train, st_test = standardize(x_train, x_test)
    sd = np.where(x_train.std(0) > 0, x_train.std(0), 1.0)
    np.testing.assert_allclose(st_test, (x_test - x_train.mean(0)) / sd)
    np.testing.assert_allclose(st_train[:, 2], 0.0)


def test_splits_are_disjoint_and_reproducible():
    task = _task(n_train=1000, n_val=300, n_test=497)  # all 1,797 digits
    a = draw_splits(task, 1797, 1797, True, np.random.default_rng(task.seed))
    b = draw_splits(task, 1797, 1797, True, np.random.default_rng(task.seed))
    c = draw_splits(task, 1797, 1797, True, np.random.default_rng(1))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    train, val, test = map(set, a)
    assert len(train) == 1000 and len(val) == 300 and len(test) == 497
    assert not (train & val) and not (train & test) and not (val & test)
    # with separate pools: train and val disjoint, test from the test pool
    tr, va, te = draw_splits(_task(n_train=20, n_val=10, n_test=12), 30, 12, False, np.random.default_rng(0))
    assert not set(tr) & set(va) and sorted(te) == list(range(12))
    d1, d2 = make_dataset(task), make_dataset(task)
    np.testing.assert_array_equal(d1.x_val, d2.x_val)
    np.testing.assert_array_equal(d1.y_test, d2.y_test)


def test_label_noise_replaces_exactly_the_requested_fraction():
    for n, fraction in [(1000, 0.3), (7, 0.5), (50, 0.0), (50, 1.0)]:
        mask = noise_mask(n, fraction, np.random.default_rng(3))
        assert mask.sum() == round(fraction * n)
    labels = np.arange(1000) % 10
    out = randomize_labels(labels, 0.3, 10, np.random.default_rng(3))
    mask = noise_mask(1000, 0.3, np.random.default_rng(3))  # the same draws: the same positions
    np.testing.assert_array_equal(out[~mask], labels[~mask])  # only the chosen labels may change
    assert 0.8 * 270 < (out[mask] != labels[mask]).sum() <= 300  # about 9/10 of them do
    with pytest.raises(ValueError, match="label_noise"):
        noise_mask(10, 1.5, np.random.default_rng(0))


def test_label_noise_on_digits_keeps_inputs_splits_and_test_labels():
    clean, noisy = make_dataset(_task()), make_dataset(_task(label_noise=0.5))
    np.testing.assert_array_equal(clean.x_train, noisy.x_train)
    np.testing.assert_array_equal(clean.y_test, noisy.y_test)
    changed = np.mean(clean.y_train != noisy.y_train)
    assert 0.5 * 0.9 - 0.1 < changed < 0.5 * 0.9 + 0.1


# ----------------------------------------------------------------------------- file formats


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, dtype, gz):
    a = (np.arange(24).reshape(2, 3, 4) % 7).astype(dtype)
    path = tmp_path / ("a.idx" + (".gz" if gz else ""))
    write_idx(path, a)
    b = read_idx(path)
    assert b.dtype == a.dtype and b.shape == a.shape
    np.testing.assert_array_equal(a, b)


def test_idx_header_is_the_published_one(tmp_path):
    write_idx(tmp_path / "labels", np.array([3, 1, 4], dtype=np.uint8))
    raw = (tmp_path / "labels").read_bytes()
    assert raw == bytes([0, 0, 8, 1, 0, 0, 0, 3, 3, 1, 4])  # magic 2049, n = 3, the labels


def test_bad_idx_files_are_named(tmp_path):
    (tmp_path / "x").write_bytes(b"not an idx file")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "x")
    (tmp_path / "y").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 9, 1, 2]))
    with pytest.raises(ValueError, match="promises"):
        read_idx(tmp_path / "y")


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("gz", [False, True])
def test_mnist_loader_reads_tiny_idx_files(tmp_path, name, gz):
    arrays = _write_mnist(tmp_path / name, gz=gz)
    task = _task(name=name, path=str(tmp_path / name), n_train=20, n_val=10, n_test=12, standardize=False)
    d = make_dataset(task)
    assert d.x_train.shape == (20, 1, 28, 28) and d.x_val.shape == (10, 1, 28, 28) and d.x_test.shape == (12, 1, 28, 28)
    # the test split is the whole (tiny) test file, in some order: the same images, scaled to [0, 1]
    images = arrays["t10k-images-idx3-ubyte"].reshape(12, -1) / 255.0
    x_test = d.rows("test")[0]
    order = np.lexsort(x_test.T[::-1])
    np.testing.assert_allclose(x_test[order], images[np.lexsort(images.T[::-1])], atol=1e-6)
    assert sorted(d.y_test) == sorted(arrays["t10k-labels-idx1-ubyte"])


def test_cifar10_loader_reads_tiny_python_batches(tmp_path):
    batches = _write_cifar(tmp_path / "cifar" / "cifar-10-batches-py")
    task = _task(name="cifar10", path=str(tmp_path / "cifar"), n_train=25, n_val=5, n_test=8, standardize=False)
    d = make_dataset(task)
    assert d.x_train.shape == (25, 3, 32, 32) and d.x_test.shape == (8, 3, 32, 32)
    x_test, y_test = batches["test_batch"]
    rows = {tuple(r): int(y) for r, y in zip(np.round(x_test / 255.0, 5), y_test)}
    for r, y in zip(np.round(d.rows("test")[0].astype(np.float64), 5), d.y_test):
        assert rows[tuple(r)] == y  # every test image comes with its own label


# ----------------------------------------------------------------------------- config checks


def test_missing_files_say_what_and_where(tmp_path):
    folder = tmp_path / "nowhere"
    with pytest.raises(ConfigError) as err:
        load_plan(_plan({"name": "mnist", "path": str(folder)}))
    message = str(err.value)
    assert "\n" not in message and message.startswith("experiments.real.task.path: mnist needs")
    assert "train-images-idx3-ubyte" in message and str(folder) in message and "download" in message
    with pytest.raises(ConfigError, match="cifar10 needs data_batch_1"):
        load_plan(_plan({"name": "cifar10", "path": str(folder)}))


def test_default_path_is_data_slash_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="in data/fashion_mnist/"):
        load_plan(_plan({"name": "fashion_mnist"}))
    _write_mnist(tmp_path / "data" / "fashion_mnist")
    plan = load_plan(_plan({"name": "fashion_mnist", "n_train": 20, "n_test": 12}))
    assert make_dataset(plan.experiments[0].task).x_train.shape == (20, 1, 28, 28)


def test_splits_that_do_not_fit_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"n_train \+ task.n_val \+ task.n_test = 1800, but digits has only 1797"):
        load_plan(_plan({"name": "digits", "n_train": 1000, "n_val": 300, "n_test": 500}))
    _write_mnist(tmp_path / "m", gz=True)
    with pytest.raises(ConfigError, match="task.n_test = 13, but mnist has only 12 test images"):
        load_plan(_plan({"name": "mnist", "path": str(tmp_path / "m"), "n_train": 20, "n_test": 13}))
    with pytest.raises(ConfigError, match="experiments.real.task.kind: digits is a classification data set"):
        load_plan(_plan({"name": "digits", "kind": "regression"}))


def test_gzip_and_plain_files_give_the_same_data(tmp_path):
    _write_mnist(tmp_path / "plain")
    _write_mnist(tmp_path / "gz", gz=True)
    assert gzip.open(tmp_path / "gz" / "t10k-labels-idx1-ubyte.gz").read(4) == bytes([0, 0, 8, 1])
    a = make_dataset(_task(name="mnist", path=str(tmp_path / "plain"), n_train=20, n_val=0, n_test=12))
    b = make_dataset(_task(name="mnist", path=str(tmp_path / "gz"), n_train=20, n_val=0, n_test=12))
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)


def test_n_outputs_is_known_before_the_data_are_made():
    from mathdl.tasks import n_outputs

    assert n_outputs(_task()) == make_dataset(_task()).n_outputs == 10
    teacher = _task(name="teacher", n_classes=3, input_dim=4)
    assert n_outputs(teacher) == make_dataset(teacher).n_outputs == 3
