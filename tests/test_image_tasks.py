"""Image data sets deliver images (N, C, H, W); fully connected consumers take them flattened.

Checked against the sources (scikit-learn's digits, tiny IDX and CIFAR-10 files written here) at
the indices the seeded draw picks, so a wrong channel order, a transposed image or a shuffled
split shows; and both engines must train on images exactly as on the rows of earlier versions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mathdl import engine, module_engine
from mathdl.config import TaskConfig
from mathdl.pipeline import train_group
from mathdl.tasks import Dataset, image_shape, input_dim, load_dataset, make_dataset
from mathdl.tasks.real import draw_splits, standardize
from test_real_data import _write_cifar, _write_mnist

SPLITS = ("train", "val", "test")


def _task(**kw) -> TaskConfig:
    base = dict(name="digits", path="", standardize=False, kind="classification", input_dim=10, n_classes=2,
                teacher_width=16, n_train=40, n_val=10, n_test=20, label_noise=0.0, seed=3)
    return TaskConfig(**{**base, **kw})


def _drawn(task: TaskConfig, n_train_pool: int, n_test_pool: int, shared: bool) -> dict[str, np.ndarray]:
    """The indices the data set's own seeded draw picks for each split (real.py, step 1)."""
    idx = draw_splits(task, n_train_pool, n_test_pool, shared, np.random.default_rng(task.seed))
    return dict(zip(SPLITS, idx))


def _flat(d: Dataset) -> Dataset:
    """``d`` as earlier versions held it: every input one row."""
    rows = {f"x_{s}": d.rows(s)[0].copy() for s in SPLITS}
    return Dataset(d.kind, d.n_outputs, y_train=d.y_train, y_val=d.y_val, y_test=d.y_test, **rows)


# ----------------------------------------------------------------------------- the data sets


def test_digits_are_float32_images_each_the_drawn_scikit_learn_image_over_16():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    task = _task()
    d = make_dataset(task)
    for s, idx in _drawn(task, 1797, 1797, True).items():
        x, y = d.split(s)
        assert x.dtype == np.float32 and x.shape == (len(idx), 1, 8, 8)
        np.testing.assert_array_equal(x[:, 0], (bunch.images[idx] / 16.0).astype(np.float32))
        np.testing.assert_array_equal(y, bunch.target[idx])
    assert image_shape(task) == d.x_train.shape[1:] and input_dim(task) == d.input_dim == 64


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_images_are_float32_images_each_the_drawn_file_image_over_255(tmp_path, name):
    arrays = _write_mnist(tmp_path / name)
    task = _task(name=name, path=str(tmp_path / name), n_train=20, n_val=10, n_test=12)
    d = make_dataset(task)
    drawn = _drawn(task, 30, 12, False)
    for s, idx in drawn.items():
        x, y = d.split(s)
        stem = "t10k" if s == "test" else "train"
        assert x.dtype == np.float32 and x.shape == (len(idx), 1, 28, 28)
        np.testing.assert_array_equal(x[:, 0], (arrays[f"{stem}-images-idx3-ubyte"][idx] / 255.0).astype(np.float32))
        np.testing.assert_array_equal(y, arrays[f"{stem}-labels-idx1-ubyte"][idx])
    assert image_shape(task) == d.x_train.shape[1:] and input_dim(task) == d.input_dim == 784


def test_cifar10_images_are_the_files_red_green_blue_planes_and_rows_are_the_files_rows(tmp_path):
    batches = _write_cifar(tmp_path / "c")
    task = _task(name="cifar10", path=str(tmp_path / "c"), n_train=25, n_val=5, n_test=8)
    d = make_dataset(task)
    x_pool = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)]) / 255.0
    pools = {"train": x_pool, "val": x_pool, "test": batches["test_batch"][0] / 255.0}
    for s, idx in _drawn(task, 30, 8, False).items():
        x = d.split(s)[0]
        assert x.dtype == np.float32 and x.shape == (len(idx), 3, 32, 32)
        red = pools[s][idx, :1024].reshape(-1, 32, 32)  # the file's first 1,024 values: the red plane, by rows
        np.testing.assert_array_equal(x[:, 0], red.astype(np.float32))
        np.testing.assert_array_equal(d.rows(s)[0], pools[s][idx].astype(np.float32))
    assert image_shape(task) == d.x_train.shape[1:] and input_dim(task) == d.input_dim == 3072


def test_a_file_of_images_of_another_size_is_refused_by_name(tmp_path):
    from mathdl.tasks.real import write_idx

    _write_mnist(tmp_path / "m")
    write_idx(tmp_path / "m" / "train-images-idx3-ubyte", np.zeros((30, 20, 20), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: mnist images are 1x28x28 \(C x H x W\), "
                                         r"but the file holds images of shape \(20, 20\)$"):
        make_dataset(_task(name="mnist", path=str(tmp_path / "m"), n_train=20, n_val=10, n_test=12))


def test_rows_are_the_earlier_rows_standardized_per_pixel_on_the_training_split():
    """The flat view is what earlier versions delivered: the drawn images as rows, row-major,
    each pixel standardized with the training split's mean and standard deviation."""
    from sklearn.datasets import load_digits

    pixels = load_digits().data / 16.0  # scikit-learn's rows: the 8x8 images flattened row-major
    task = _task(standardize=True, label_noise=0.3)
    d = make_dataset(task)
    drawn = _drawn(task, 1797, 1797, True)
    expected = standardize(*(pixels[drawn[s]] for s in SPLITS))
    for s, x in zip(SPLITS, expected):
        rows, y = d.rows(s)
        assert rows.shape == (len(drawn[s]), 64)
        np.testing.assert_array_equal(rows, x.astype(np.float32))
        np.testing.assert_array_equal(y, d.split(s)[1])
    np.testing.assert_allclose(d.x_train.mean(axis=0), 0.0, atol=1e-6)  # per pixel of each channel
    assert d.x_train.mean(axis=0).shape == (1, 8, 8)


def test_rows_of_an_empty_split_and_of_rows():
    d = make_dataset(_task(n_val=0))
    assert d.rows("val")[0].shape == (0, 64) and d.x_val.shape == (0, 1, 8, 8)
    teacher = make_dataset(_task(name="teacher", input_dim=5, n_classes=3, n_val=0))
    assert teacher.x_train.shape == (40, 5) and teacher.input_dim == 5
    assert np.shares_memory(teacher.rows("train")[0], teacher.x_train)
    np.testing.assert_array_equal(teacher.rows("train")[0], teacher.x_train)
    assert teacher.rows("val")[0].shape == (0, 5)


# ----------------------------------------------------------------------------- files of earlier versions


def test_a_cached_file_of_rows_loads_as_the_images_a_fresh_file_holds(tmp_path):
    task = _task(standardize=True)
    fresh = make_dataset(task)
    fresh.save(tmp_path / "new.npz")
    _flat(fresh).save(tmp_path / "old.npz")  # what earlier versions wrote for the same task
    for path in ("old.npz", "new.npz"):
        loaded = load_dataset(tmp_path / path, task)
        for s in SPLITS:
            assert loaded.split(s)[0].shape == fresh.split(s)[0].shape
            np.testing.assert_array_equal(loaded.split(s)[0], fresh.split(s)[0])
            np.testing.assert_array_equal(loaded.split(s)[1], fresh.split(s)[1])
    teacher = _task(name="teacher", input_dim=5, n_classes=3)
    make_dataset(teacher).save(tmp_path / "teacher.npz")
    assert load_dataset(tmp_path / "teacher.npz", teacher).x_train.shape == (40, 5)


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_a_cached_file_of_rows_trains_as_a_fresh_file_of_images(tmp_path, arch):
    task = {"name": "digits", "n_train": 40, "n_val": 10, "n_test": 20, "seed": 3}
    model = {"arch": arch, "width": 2 if arch == "cnn" else 8, "depth": 1}
    g = engine.make_group((0, 1), task=task, model=model, train={"epochs": 2, "batch_size": 16, "eval_points": 2})
    fresh = make_dataset(g.task)
    fresh.save(tmp_path / "new.npz")
    _flat(fresh).save(tmp_path / "old.npz")
    tables = {}
    for name in ("old", "new"):
        out = tmp_path / name
        train_group(g.to_dict(), tmp_path / f"{name}.npz", out / "metrics.parquet", out / "runs.parquet",
                    out / "provenance.json", device="cpu")
        tables[name] = pd.read_parquet(out / "metrics.parquet")
    pd.testing.assert_frame_equal(tables["old"], tables["new"])


# ----------------------------------------------------------------------------- engines on images and rows


def test_the_mlp_engine_trains_on_images_as_on_their_rows():
    task = {"name": "digits", "n_train": 60, "n_val": 20, "n_test": 30, "seed": 1}
    g = engine.make_group((0, 1, 2), task=task, model={"width": 16, "depth": 2},
                          train={"epochs": 3, "batch_size": 16, "eval_points": 3, "dropout": 0.1},
                          per_run=[{"lr": 0.1}, {"lr": 0.05}])
    data = make_dataset(g.task)
    assert data.x_train.ndim == 4
    on_images, on_rows = engine.train(g, data), engine.train(g, _flat(data))
    pd.testing.assert_frame_equal(on_images.metrics, on_rows.metrics)
    pd.testing.assert_frame_equal(on_images.runs, on_rows.runs)
    assert on_images.params[0].shape[-1] == 64  # the first layer takes the 64 pixels
    for a, b in zip(on_images.params, on_rows.params):
        assert np.array_equal(a.numpy(), b.numpy())


def test_the_module_engine_trains_on_images_as_on_rows_with_their_shape():
    task = {"name": "digits", "n_train": 40, "n_val": 10, "n_test": 20, "seed": 2}
    g = engine.make_group((0, 1), task=task, model={"arch": "cnn", "width": 2},
                          train={"epochs": 2, "batch_size": 16, "eval_points": 2})
    data = make_dataset(g.task)
    on_images = module_engine.train(g, data, batching="vmap")
    on_rows = module_engine.train(g, _flat(data), input_shape=(1, 8, 8), batching="vmap")
    pd.testing.assert_frame_equal(on_images.metrics, on_rows.metrics)
    for a, b in zip(on_images.params, on_rows.params):
        assert np.array_equal(a.numpy(), b.numpy())
