"""Real data sets: scikit-learn's digits, MNIST and Fashion-MNIST (IDX files), CIFAR-10.

digits (Alpaydin and Kaynak 1998; 1,797 8x8 images, 10 classes) ship with scikit-learn, so
they are the default real data set and need no download. MNIST (LeCun et al. 1998),
Fashion-MNIST (Xiao et al. 2017) and CIFAR-10 (Krizhevsky 2009) are read from the files their
authors distribute, in ``task.path`` (empty: ``data/<name>``); nothing is downloaded at run time.

A data set is turned into a :class:`~mathdl.tasks.Dataset` in four seeded steps (``task.seed``):
1. draw n_train + n_val images without replacement from the training images and n_test from the
   test images (digits have no official test split: all three are drawn, disjoint, from the 1,797);
2. scale pixels to [0, 1], each image shaped (C, H, W) (``IMAGE_SHAPES``);
3. with ``standardize``, shift and scale each feature (one pixel of one channel) to mean 0 and
   standard deviation 1 on the training split (a constant feature is only shifted), and apply
   the same map to val and test;
4. replace a fraction ``label_noise`` of the training and of the validation labels by uniformly
   random labels (:mod:`mathdl.tasks.noise`); test labels stay clean.
The Dataset holds float32 images (n, C, H, W); a fully connected network takes them flattened,
row-major (:meth:`~mathdl.tasks.Dataset.rows`).
"""

from __future__ import annotations

import gzip
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from mathdl.spec import ConfigError, TaskConfig
from mathdl.tasks.noise import randomize_labels

N_CLASSES = 10
# One image as (channels, height, width): a Dataset holds images of this shape (CIFAR-10's red,
# green and blue planes as the channels, as its files hold them one after another); a fully
# connected network takes each flattened row-major (Dataset.rows), an image network as it is.
IMAGE_SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "fashion_mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
# Values of one image (C H W), flattened: what a fully connected network of each data set takes.
INPUT_DIMS = {name: c * h * w for name, (c, h, w) in IMAGE_SHAPES.items()}
DIGITS_IMAGES = 1797  # scikit-learn's digits, counted without importing scikit-learn

# IDX element types (http://yann.lecun.com/exdb/mnist/): code -> big-endian NumPy dtype.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_TEST = "test_batch"

WHERE_FROM = {
    "mnist": "http://yann.lecun.com/exdb/mnist/ (or any mirror of the four IDX files)",
    "fashion_mnist": "https://github.com/zalandoresearch/fashion-mnist (data/fashion)",
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar.html (the python version, cifar-10-python.tar.gz, unpacked)",
}


@dataclass(frozen=True)
class Pool:
    """Images as float64 (n, C, H, W) in [0, 1] with int64 labels; ``shared``: one pool for all splits."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    shared: bool = False


# ----------------------------------------------------------------------------- file formats


def _open(path: Path, mode: str):
    """A file, through gzip when its name ends in .gz (the IDX files are distributed both ways)."""
    return (gzip.open if path.suffix == ".gz" else open)(path, mode)


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX array (optionally gzip-compressed): 2 zero bytes, a type code, the number of
    dimensions, the sizes as big-endian int32, then the data in row-major order."""
    path = Path(path)
    with _open(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    offset = 4 + 4 * ndim
    count = int(np.prod(shape)) if shape else 1
    if len(raw) - offset != count * dtype.itemsize:
        raise ValueError(f"{path}: the header promises {shape} of {dtype} but the file holds {len(raw) - offset} bytes")
    return np.frombuffer(raw, dtype=dtype, count=count, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when the name ends in .gz)."""
    path = Path(path)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in IDX_DTYPES.items()}
    array = np.asarray(array)
    code = codes[array.dtype.newbyteorder("=")]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    data = header + array.astype(IDX_DTYPES[code]).tobytes()
    with _open(path, "wb") as fh:
        fh.write(data)


def _idx_file(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


# What a CIFAR-10 batch's pickle may name: NumPy's array reconstruction, nothing else. A pickle
# can call any function it names, so a crafted file in a config-chosen folder could run code.
_CIFAR_PICKLE_GLOBALS = {
    (module, name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric", "numpy._core.numeric", "numpy")
    for name in ("_reconstruct", "_frombuffer", "ndarray", "dtype", "scalar")
}


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _CIFAR_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it names {module}.{name}, which a CIFAR-10 batch never holds")


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 Python batch: a pickled dict with b"data" (n, 3072) uint8 and b"labels".

    Read with an unpickler that admits only NumPy arrays, bytes, lists, dicts and numbers: a
    crafted file is refused without running anything.
    """
    try:
        with open(path, "rb") as fh:
            batch = _CifarUnpickler(fh, encoding="bytes").load()
        return np.asarray(batch[b"data"], dtype=np.uint8), np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise ConfigError(f"{path}: not a CIFAR-10 Python batch ({err})") from None


def write_cifar_batch(path: str | Path, x: np.ndarray, y: np.ndarray) -> None:
    """Write a batch in CIFAR-10's Python format (for tests and small local copies)."""
    with open(path, "wb") as fh:
        pickle.dump({b"data": np.asarray(x, dtype=np.uint8), b"labels": [int(v) for v in y]}, fh)


# ----------------------------------------------------------------------------- loaders


def data_folder(task: TaskConfig) -> Path:
    return Path(task.path) if task.path else Path("data") / task.name


def _cifar_folder(folder: Path) -> Path:
    nested = folder / "cifar-10-batches-py"
    return nested if nested.is_dir() else folder


def missing_files(task: TaskConfig) -> list[str]:
    """The files of a file-based data set that are not in its folder (empty for the others)."""
    folder = data_folder(task)
    if task.name in ("mnist", "fashion_mnist"):
        return [f"{stem}[.gz]" for stem in IDX_FILES.values() if _idx_file(folder, stem) is None]
    if task.name == "cifar10":
        folder = _cifar_folder(folder)
        return [name for name in [*CIFAR_TRAIN, CIFAR_TEST] if not (folder / name).is_file()]
    return []


def _require_files(task: TaskConfig) -> Path:
    missing = missing_files(task)
    if missing:
        raise FileNotFoundError(missing_files_message(task, missing))
    return data_folder(task)


def missing_files_message(task: TaskConfig, missing: list[str]) -> str:
    return (
        f"task.path: {task.name} needs {', '.join(missing)} in {data_folder(task)}/; "
        f"download them from {WHERE_FROM[task.name]} and put them there, or set task.path to their folder"
    )


def as_images(pixels: np.ndarray, name: str, top: float, where: str | Path) -> np.ndarray:
    """Pixels (n, ...) in 0..top as float64 images (n, C, H, W) in [0, 1] of data set ``name``, each
    read row-major from the file's own order; a file of images of another size is refused."""
    shape = IMAGE_SHAPES[name]
    if pixels.ndim < 2 or int(np.prod(pixels.shape[1:])) != INPUT_DIMS[name]:
        raise ValueError(f"{where}: {name} images are {'x'.join(map(str, shape))} (C x H x W), "
                         f"but the file holds images of shape {pixels.shape[1:]}")
    return pixels.reshape(len(pixels), *shape) / top


def load_digits() -> Pool:
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x, y = as_images(bunch.data, "digits", 16.0, "scikit-learn's digits"), bunch.target.astype(np.int64)
    return Pool(x, y, x, y, shared=True)


def load_idx_pool(task: TaskConfig) -> Pool:
    folder = _require_files(task)
    paths = {key: _idx_file(folder, stem) for key, stem in IDX_FILES.items()}
    arrays = {key: read_idx(path) for key, path in paths.items()}
    return Pool(
        as_images(arrays["x_train"], task.name, 255.0, paths["x_train"]), arrays["y_train"].astype(np.int64),
        as_images(arrays["x_test"], task.name, 255.0, paths["x_test"]), arrays["y_test"].astype(np.int64),
    )


def load_cifar10(task: TaskConfig) -> Pool:
    folder = _cifar_folder(_require_files(task))
    # each batch checked on its own, so that a batch of images of another size is named
    parts = [(as_images(x, "cifar10", 255.0, folder / name), y)
             for name in CIFAR_TRAIN for x, y in [read_cifar_batch(folder / name)]]
    x_train, y_train = (np.concatenate(arrays) for arrays in zip(*parts))
    x_test, y_test = read_cifar_batch(folder / CIFAR_TEST)
    return Pool(x_train, y_train, as_images(x_test, "cifar10", 255.0, folder / CIFAR_TEST), y_test)


LOADERS: dict[str, Callable[[TaskConfig], Pool]] = {
    "digits": lambda task: load_digits(),
    "mnist": load_idx_pool,
    "fashion_mnist": load_idx_pool,
    "cifar10": load_cifar10,
}


# ----------------------------------------------------------------------------- splits


def split_sizes_error(task: TaskConfig, n_train_pool: int, n_test_pool: int, shared: bool) -> str | None:
    """The one-line complaint when the requested splits do not fit in the data set, else None."""
    if shared:
        total = task.n_train + task.n_val + task.n_test
        if total > n_train_pool:
            return (f"task.n_train + task.n_val + task.n_test = {total}, but {task.name} has only "
                    f"{n_train_pool} images")
        return None
    if task.n_train + task.n_val > n_train_pool:
        return (f"task.n_train + task.n_val = {task.n_train + task.n_val}, but {task.name} has only "
                f"{n_train_pool} training images")
    if task.n_test > n_test_pool:
        return f"task.n_test = {task.n_test}, but {task.name} has only {n_test_pool} test images"
    return None


def draw_splits(task: TaskConfig, n_train_pool: int, n_test_pool: int, shared: bool,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the train, val and test images: drawn without replacement, disjoint (from one
    permutation of a shared pool; train and val from one permutation of the training images)."""
    n_fit = task.n_train + task.n_val
    if shared:
        order = rng.permutation(n_train_pool)
        fit, test = order[:n_fit], order[n_fit : n_fit + task.n_test]
    else:
        fit = rng.permutation(n_train_pool)[:n_fit]
        test = rng.permutation(n_test_pool)[: task.n_test]
    return fit[: task.n_train], fit[task.n_train :], test


def standardize(x_train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Shift and scale features to mean 0, sd 1 on ``x_train``; constant features only shifted.
    A feature is everything after the first axis: a column of rows, a pixel of a channel of images."""
    mean = x_train.mean(axis=0)
    sd = x_train.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return [(x - mean) / sd for x in (x_train, *others)]


def real_dataset(task: TaskConfig):
    """The Dataset of a real data set; see the module docstring for the steps."""
    from mathdl.tasks import Dataset

    if task.kind != "classification":
        raise ValueError(f"task.kind: {task.name} is a classification data set (train.loss mse uses one-hot targets)")
    pool = LOADERS[task.name](task)
    error = split_sizes_error(task, len(pool.x_train), len(pool.x_test), pool.shared)
    if error:
        raise ValueError(error)
    rng = np.random.default_rng(task.seed)
    train, val, test = draw_splits(task, len(pool.x_train), len(pool.x_test), pool.shared, rng)
    xs = [pool.x_train[train], pool.x_train[val], pool.x_test[test]]
    if task.standardize:
        xs = standardize(*xs)
    y_train = randomize_labels(pool.y_train[train], task.label_noise, N_CLASSES, rng)
    y_val = randomize_labels(pool.y_train[val], task.label_noise, N_CLASSES, rng)
    x_train, x_val, x_test = (x.astype(np.float32) for x in xs)
    return Dataset("classification", N_CLASSES, x_train, y_train, x_val, y_val, x_test, pool.y_test[test].copy())


# ----------------------------------------------------------------------------- checks before a run


def pool_sizes(task: TaskConfig) -> tuple[int, int, bool]:
    """(training images, test images, shared) from the files' headers, without reading the data."""
    if task.name == "digits":
        return DIGITS_IMAGES, DIGITS_IMAGES, True
    folder = data_folder(task)
    if task.name == "cifar10":  # the published sizes; a smaller local copy fails when the data are made
        return 50000, 10000, False
    sizes = []
    for key in ("y_train", "y_test"):
        with _open(_idx_file(folder, IDX_FILES[key]), "rb") as fh:
            header = fh.read(8)  # magic, then the first size: the number of labels
        sizes.append(int(np.frombuffer(header, dtype=">i4", count=1, offset=4)[0]))
    return sizes[0], sizes[1], False


def check_task(task: TaskConfig, where: str) -> None:
    """Raise ConfigError (one line; ``where`` is the experiment's key, experiments.<name>) when a
    real data set cannot give this task: its files are missing or the splits do not fit."""
    if task.name not in LOADERS:
        return
    if task.kind != "classification":
        raise ConfigError(f"{where}.task.kind: {task.name} is a classification data set, not {task.kind}")
    missing = missing_files(task)
    if missing:
        raise ConfigError(f"{where}.{missing_files_message(task, missing)}")
    error = split_sizes_error(task, *pool_sizes(task))
    if error:
        raise ConfigError(f"{where}: {error}")
