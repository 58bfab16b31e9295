"""Data sets, pinned where mutation testing found them loose (tests/README.md, "Mutation testing").

The teacher against its documented construction (draw by draw, and by its second moment, which
does not depend on the order of the draws), the regression targets' standardization and noise,
the data sets that carry no data, the real loaders' pixel scaling, label types and split
checks, IDX headers at their edges, and a CIFAR-10 batch pickled as Python 2 wrote it.
"""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest
from scipy import stats

from mathdl.config import ConfigError, TaskConfig
from mathdl.tasks import Dataset, input_dim, make_dataset
from mathdl.tasks.real import (
    pool_sizes,
    check_task,
    read_cifar_batch,
    read_idx,
    write_cifar_batch,
    write_idx,
)


def _task(**kw) -> TaskConfig:
    base = dict(name="teacher", path="", standardize=False, kind="regression", input_dim=4, n_classes=2,
                teacher_width=8, n_train=50, n_val=10, n_test=30, label_noise=0.0, seed=0)
    return TaskConfig(**{**base, **kw})


# ----------------------------------------------------------------------------- the teacher


def _reference_teacher(task: TaskConfig) -> tuple[dict, dict]:
    """The teacher module's docstring, written out: W, b ~ N(0, 1/d), A ~ N(0, 1/m), drawn in that
    order from default_rng(seed), then the train, val and test inputs ~ N(0, I_d).
    Returns the inputs and the clean outputs f*(x) per split."""
    rng = np.random.default_rng(task.seed)
    d, m, k = task.input_dim, task.teacher_width, task.n_classes
    w = rng.standard_normal((m, d)) / np.sqrt(d)
    b = rng.standard_normal(m) / np.sqrt(d)
    a = rng.standard_normal((k, m)) / np.sqrt(m)
    xs = {s: rng.standard_normal((n, d)) for s, n in (("train", task.n_train), ("val", task.n_val), ("test", task.n_test))}
    return xs, {s: np.maximum(x @ w.T + b, 0.0) @ a.T for s, x in xs.items()}


@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_teacher_is_the_documented_construction_draw_by_draw(kind):
    # A change in the order of the draws changes every data set of a seed: flagged here on purpose.
    task = _task(kind=kind, n_classes=3)
    d = make_dataset(task)
    xs, clean = _reference_teacher(task)
    scale = clean["train"].std()
    for s in ("train", "val", "test"):
        x, y = d.split(s)
        assert x.dtype == np.float32
        np.testing.assert_array_equal(x, xs[s].astype(np.float32))
        if kind == "classification":
            np.testing.assert_array_equal(y, clean[s].argmax(axis=1))
        else:
            assert y.dtype == np.float32
            np.testing.assert_allclose(y, clean[s] / scale, rtol=1e-6, atol=1e-7)


def test_teacher_second_moment_matches_its_weight_scales():
    # With one training point the targets are f* itself (no spread to standardize by). Over x, W, b
    # and A: E f*_k(x)^2 = m E[A^2] E[relu(h)^2] = E[relu(h)^2] with h ~ N(0, |x|^2/d + 1/d), so
    # E f*^2 = (1 + 1/d) / 2 = 0.625 at d = 4. Weights of scale 1 instead of 1/sqrt(d) (W or b) or
    # of 1/sqrt(m) (A), or centred elsewhere, move it by 60% or more. The estimate averages 20
    # teachers of 50 independent outputs each; its spread (from the outputs' means, a chi-square
    # with one degree of freedom per output) is about 1.5%.
    moments = [np.mean(make_dataset(_task(teacher_width=256, n_train=1, n_val=0, n_test=2000, n_classes=50, seed=s))
                       .y_test.astype(np.float64) ** 2) for s in range(20)]
    assert np.mean(moments) == pytest.approx(0.625, rel=0.1)


def test_regression_targets_have_unit_sd_on_the_training_split():
    for n_train in (2, 3, 500):
        d = make_dataset(_task(n_train=n_train, n_classes=3))
        assert d.y_train.astype(np.float64).std() == pytest.approx(1.0, rel=1e-5)
        _, clean = _reference_teacher(_task(n_train=n_train, n_classes=3))
        # val and test are divided by the same (training) scale
        np.testing.assert_allclose(d.y_test, clean["test"] / clean["train"].std(), rtol=1e-5, atol=1e-6)
    one = make_dataset(_task(n_train=1))  # one point: no scale to estimate, targets are f* itself
    _, clean = _reference_teacher(_task(n_train=1))
    np.testing.assert_allclose(one.y_test, clean["test"], rtol=1e-6, atol=1e-7)


def test_a_constant_teacher_on_the_training_points_gives_finite_unscaled_targets():
    # One hidden unit in one dimension is off at both training points for about a quarter of the
    # seeds: the training targets are all 0, their sd is 0, and dividing by it would give NaN.
    for seed in range(100):
        task = _task(input_dim=1, teacher_width=1, n_classes=1, n_train=2, n_test=200, seed=seed)
        _, clean = _reference_teacher(task)
        if np.ptp(clean["train"]) == 0 and np.ptp(clean["test"]) > 0:
            break
    else:
        pytest.fail("no seed below 100 gives a teacher constant on its training points")
    d = make_dataset(task)
    np.testing.assert_array_equal(d.y_train, 0.0)
    np.testing.assert_allclose(d.y_test, clean["test"], rtol=1e-6)  # scale 1, not NaN or another number


def test_regression_noise_is_iid_gaussian_of_sd_label_noise_on_train_and_val_only():
    task = dict(n_train=4000, n_val=2000, n_test=500, n_classes=2)
    clean, noisy = make_dataset(_task(**task)), make_dataset(_task(**task, label_noise=0.5))
    np.testing.assert_array_equal(clean.y_test, noisy.y_test)
    np.testing.assert_array_equal(clean.x_train, noisy.x_train)
    for y_clean, y_noisy in [(clean.y_train, noisy.y_train), (clean.y_val, noisy.y_val)]:
        e = (y_noisy.astype(np.float64) - y_clean).ravel()
        assert abs(e.mean()) < 4 * 0.5 / np.sqrt(e.size)
        assert e.std() == pytest.approx(0.5, rel=0.05)
        assert stats.kstest(e / 0.5, "norm").pvalue > 1e-3
        assert np.unique(e).size == e.size  # a draw per target, not one shift for all
    # the documented sign: y = f*/scale + sigma z, z the next draws of the generator
    rng = np.random.default_rng(0)
    ref = _task(**task)
    rng.standard_normal(ref.teacher_width * ref.input_dim + ref.teacher_width + ref.n_classes * ref.teacher_width)
    rng.standard_normal((ref.n_train + ref.n_val + ref.n_test) * ref.input_dim)
    z = rng.standard_normal((ref.n_train, ref.n_classes))
    np.testing.assert_allclose(noisy.y_train - clean.y_train, 0.5 * z, atol=1e-5)


def test_classification_needs_two_classes_a_regression_may_have_one_output():
    with pytest.raises(ValueError, match="^task.n_classes: classification needs at least 2 classes$"):
        make_dataset(_task(kind="classification", n_classes=1))
    assert make_dataset(_task(kind="regression", n_classes=1)).y_train.shape == (50, 1)
    assert set(make_dataset(_task(kind="classification", n_classes=2)).y_train) == {0, 1}  # two are enough


# ----------------------------------------------------------------------------- the registry


def test_no_data_task_has_empty_splits_of_the_right_shape_and_types():
    d = make_dataset(_task(name="none", kind="classification", input_dim=3, n_classes=5))
    assert d.kind == "classification" and d.n_outputs == 5
    for s in ("train", "val", "test"):
        x, y = d.split(s)
        assert x.shape == (0, 3) and x.dtype == np.float32
        assert y.shape == (0,) and y.dtype == np.int64


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"^unknown task 'bogus'; valid: cifar10, digits, fashion_mnist, mnist, none, teacher$"):
        make_dataset(_task(name="bogus"))
    with pytest.raises(ValueError, match=r"^unknown split 'all'; valid: train, val, test$"):
        make_dataset(_task()).split("all")


def test_input_dim_of_a_real_data_set_is_its_pixels_not_the_configured_input_dim():
    assert input_dim(_task(name="digits", input_dim=10)) == 64
    assert input_dim(_task(name="cifar10", input_dim=10)) == 3072
    assert input_dim(_task(name="teacher", input_dim=10)) == 10


# ----------------------------------------------------------------------------- digits


def _digits(**kw) -> TaskConfig:
    return _task(**{**dict(name="digits", kind="classification", n_classes=2, n_train=200, n_val=50, n_test=300), **kw})


def test_digits_splits_are_a_partition_of_the_images_with_their_own_labels():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pairs = sorted((row.tobytes(), int(label)) for row, label in zip(bunch.data / 16.0, bunch.target))
    d = make_dataset(_digits(n_train=1000, n_val=300, n_test=497))  # all 1,797 images
    drawn = sorted((x.astype(np.float64).tobytes(), int(y)) for s in ("train", "val", "test") for x, y in zip(*d.rows(s)))
    assert drawn == pairs  # disjoint, none left out, every image with its own label
    assert d.x_train.max() == 1.0 and np.isin(d.x_train * 16, np.arange(17)).all()  # pixels k/16
    assert d.y_val.dtype == np.int64 and d.y_val.shape == (300,)


def test_digits_that_do_not_fit_are_refused_when_the_data_are_made():
    with pytest.raises(ValueError, match=r"^task.n_train \+ task.n_val \+ task.n_test = 1800, but digits has only 1797 images$"):
        make_dataset(_digits(n_train=1000, n_val=300, n_test=500))
    with pytest.raises(ValueError, match=r"^task.kind: digits is a classification data set \(train.loss mse"):
        make_dataset(_digits(kind="regression"))


# ----------------------------------------------------------------------------- IDX files


def _write_mnist(folder, n_train=30, n_test=12):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(n_test, dtype=np.uint8) % 10,
    }
    for name, a in arrays.items():
        write_idx(folder / name, a)
    return arrays


def _rows(x, y) -> list:
    return sorted((tuple(np.round(np.asarray(r, dtype=np.float64), 5)), int(label)) for r, label in zip(x, y))


def test_mnist_train_and_val_are_the_training_images_over_255_with_int64_labels(tmp_path):
    arrays = _write_mnist(tmp_path / "m")
    d = make_dataset(_digits(name="mnist", path=str(tmp_path / "m"), n_train=20, n_val=10, n_test=12))
    assert d.y_train.dtype == d.y_val.dtype == d.y_test.dtype == np.int64
    images = arrays["train-images-idx3-ubyte"].reshape(30, -1) / 255.0
    drawn = _rows(np.concatenate([d.rows("train")[0], d.rows("val")[0]]), np.concatenate([d.y_train, d.y_val]))
    assert drawn == _rows(images, arrays["train-labels-idx1-ubyte"])


def test_mnist_splits_that_do_not_fit_are_named_when_the_data_are_made(tmp_path):
    _write_mnist(tmp_path / "m")
    with pytest.raises(ValueError, match=r"^task.n_train \+ task.n_val = 31, but mnist has only 30 training images$"):
        make_dataset(_digits(name="mnist", path=str(tmp_path / "m"), n_train=20, n_val=11, n_test=12))


def test_missing_files_are_named_when_the_data_are_made(tmp_path):
    task = _digits(name="mnist", path=str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError) as err:
        make_dataset(task)
    assert str(err.value).startswith(
        "task.path: mnist needs train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
        f"t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz] in {tmp_path / 'empty'}/; download them from http"
    )


def test_idx_scalar_round_trip_and_magic_edges(tmp_path):
    write_idx(tmp_path / "s", np.array(42, dtype=np.uint8))  # 0 dimensions: 4 header bytes and 1 datum
    assert (tmp_path / "s").read_bytes() == bytes([0, 0, 8, 0, 42])
    assert read_idx(tmp_path / "s").shape == () and int(read_idx(tmp_path / "s")) == 42
    bad = {
        "short": bytes([0, 0]),  # too short to hold a magic number
        "first": bytes([1, 0, 8, 1, 0, 0, 0, 1, 5]),  # first byte not 0
        "second": bytes([0, 1, 8, 1, 0, 0, 0, 1, 5]),
        "type": bytes([0, 0, 7, 1, 0, 0, 0, 1, 5]),  # no such type code
    }
    for name, raw in bad.items():
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(ValueError, match="not an IDX file"):
            read_idx(tmp_path / name)
    (tmp_path / "bodyless").write_bytes(bytes([0, 0, 8, 0]))  # a scalar's header without its datum
    with pytest.raises(ValueError, match=r"promises \(\) of uint8 but the file holds 0 bytes$"):
        read_idx(tmp_path / "bodyless")
    (tmp_path / "y").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 9, 1, 2]))
    with pytest.raises(ValueError, match=r"promises \(9,\) of uint8 but the file holds 2 bytes$"):
        read_idx(tmp_path / "y")


# ----------------------------------------------------------------------------- CIFAR-10


def _py2_pickle(x: np.ndarray, labels: list[int]) -> bytes:
    """A batch as CIFAR-10's authors pickled it with Python 2 (protocol 2): keys and the array's
    bytes are Python 2 str (SHORT_BINSTRING, BINSTRING), the array rebuilt by numpy's _reconstruct."""

    def short(b: bytes) -> bytes:
        return b"U" + bytes([len(b)]) + b

    ints = b"".join(b"J" + struct.pack("<i", s) for s in x.shape)
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + short(b"b") + b"\x87R"
             + b"(K\x01(" + ints + b"tcnumpy\ndtype\n" + short(b"u1") + b"K\x00K\x01\x87R(K\x03" + short(b"|")
             + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89T" + struct.pack("<i", x.nbytes) + x.tobytes() + b"tb")
    return (b"\x80\x02}(" + short(b"data") + array + short(b"labels") + b"]("
            + b"".join(b"K" + bytes([v]) for v in labels) + b"eu.")


def test_a_python_2_cifar_batch_is_read(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (3, 3072), dtype=np.uint8)
    (tmp_path / "b").write_bytes(_py2_pickle(x, [1, 5, 9]))
    with pytest.raises(UnicodeDecodeError):
        pickle.loads((tmp_path / "b").read_bytes())  # what a reader without encoding="bytes" meets
    data, labels = read_cifar_batch(tmp_path / "b")
    np.testing.assert_array_equal(data, x)
    assert labels.tolist() == [1, 5, 9] and labels.dtype == np.int64


def test_written_cifar_batch_holds_uint8_pixels(tmp_path):
    write_cifar_batch(tmp_path / "b", [[0, 255, 7]], [3])
    with open(tmp_path / "b", "rb") as fh:
        batch = pickle.load(fh)
    assert batch[b"data"].dtype == np.uint8 and batch[b"labels"] == [3]


def _write_cifar(folder, per_batch=6, n_test=8):
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    train = []
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", n_test)]:
        x, y = rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n)
        write_cifar_batch(folder / name, x, y)
        if name != "test_batch":
            train.append((x, y))
    return np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])


def test_cifar_batches_directly_in_the_folder_are_read_and_scaled(tmp_path):
    x, y = _write_cifar(tmp_path / "flat")  # no cifar-10-batches-py subfolder
    d = make_dataset(_digits(name="cifar10", path=str(tmp_path / "flat"), n_train=25, n_val=5, n_test=8))
    drawn = _rows(np.concatenate([d.rows("train")[0], d.rows("val")[0]]), np.concatenate([d.y_train, d.y_val]))
    assert drawn == _rows(x / 255.0, y)


def test_cifar_sizes_are_the_published_ones(tmp_path):
    _write_cifar(tmp_path / "c")
    task = _digits(name="cifar10", path=str(tmp_path / "c"), n_train=49000, n_val=1000, n_test=10000)
    assert pool_sizes(task) == (50000, 10000, False)
    check_task(task, "experiments.c")  # fits: the files' real sizes are checked when the data are made
    with pytest.raises(ConfigError, match=r"^experiments.c: task.n_test = 10001, but cifar10 has only 10000 test images$"):
        check_task(_digits(name="cifar10", path=str(tmp_path / "c"), n_test=10001), "experiments.c")
    with pytest.raises(ConfigError, match=r"^experiments.c: task.n_train \+ task.n_val = 50001, but cifar10 has"):
        check_task(_digits(name="cifar10", path=str(tmp_path / "c"), n_train=50000, n_val=1), "experiments.c")


def test_dataset_round_trip_keeps_every_split(tmp_path):
    d = make_dataset(_task(n_classes=3))
    d.save(tmp_path / "d.npz")
    e = Dataset.load(tmp_path / "d.npz")
    for s in ("train", "val", "test"):
        for a, b in zip(d.split(s), e.split(s)):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)


def test_images_of_the_wrong_size_name_the_file_that_holds_them(tmp_path):
    """Each loader says which file holds images of another size: the IDX test images, a CIFAR-10
    training batch (before, a numpy error about concatenation), the CIFAR-10 test batch."""
    _write_mnist(tmp_path / "mnist")
    write_idx(tmp_path / "mnist" / "t10k-images-idx3-ubyte", np.zeros((12, 27, 28), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"^" + str(tmp_path / "mnist" / "t10k-images-idx3-ubyte") + r": mnist images "
                       r"are 1x28x28 \(C x H x W\), but the file holds images of shape \(27, 28\)$"):
        make_dataset(_task(name="mnist", path=str(tmp_path / "mnist"), kind="classification", n_classes=10,
                           n_train=10, n_val=0, n_test=5))
    for broken in ("data_batch_3", "test_batch"):
        folder = tmp_path / broken
        _write_cifar(folder)
        write_cifar_batch(folder / broken, np.zeros((6, 3071), dtype=np.uint8), [0] * 6)
        with pytest.raises(ValueError, match=r"^" + str(folder / broken) + r": cifar10 images are 3x32x32 \(C x H x W\), "
                           r"but the file holds images of shape \(3071,\)$"):
            make_dataset(_task(name="cifar10", path=str(folder), kind="classification", n_classes=10, n_train=10,
                               n_val=0, n_test=5))
