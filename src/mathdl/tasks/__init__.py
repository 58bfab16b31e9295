"""Data sets: generators and loaders, one module each, registered in ``TASKS``.

A task turns a :class:`~mathdl.config.TaskConfig` into a :class:`Dataset` of NumPy arrays.
Inputs are float32: a real data set's images as images (n, C, H, W) (``image_shape`` gives
(C, H, W) before the data are made), the other tasks' points as rows (n, d); a fully connected
network takes every input as one row, through :meth:`Dataset.rows`. Targets are int64 labels
of shape (n,) for classification and float32 of shape (n, k) for regression.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from mathdl.io import atomic_path
from mathdl.spec import TaskConfig

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Dataset:
    kind: str  # regression | classification
    n_outputs: int
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A split's inputs as the task gives them (images (n, C, H, W) or rows (n, d)) and targets."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; valid: {', '.join(SPLITS)}")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def rows(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A split with each input as one row (n, input_dim), what a fully connected network takes:
        an image flattened row-major (channel by channel, each row by row); rows stay as they are.
        A view where the inputs are contiguous, so no copy."""
        x, y = self.split(name)
        return x.reshape(x.shape[0], self.input_dim), y

    @property
    def input_dim(self) -> int:
        """Values in one input: d of rows, C H W of images (a fully connected network's inputs)."""
        return int(np.prod(self.x_train.shape[1:], dtype=np.int64))

    def save(self, path: str | Path) -> None:
        arrays = {f"{p}_{s}": getattr(self, f"{p}_{s}") for s in SPLITS for p in ("x", "y")}
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, kind=np.array(self.kind), n_outputs=np.array(self.n_outputs), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "Dataset":
        with np.load(path) as f:
            return cls(
                kind=str(f["kind"]),
                n_outputs=int(f["n_outputs"]),
                **{f"{p}_{s}": f[f"{p}_{s}"] for s in SPLITS for p in ("x", "y")},
            )


def _teacher(task: TaskConfig) -> Dataset:
    from mathdl.tasks.teacher import teacher_dataset

    return teacher_dataset(task)


def _no_data(task: TaskConfig) -> Dataset:
    """For studies that compute without a data set (optimization paths, closed forms)."""
    empty_x = np.zeros((0, task.input_dim), dtype=np.float32)
    empty_y = np.zeros(0, dtype=np.int64)
    return Dataset(task.kind, task.n_classes, empty_x, empty_y, empty_x, empty_y, empty_x, empty_y)


def _real(task: TaskConfig) -> Dataset:
    from mathdl.tasks.real import real_dataset

    return real_dataset(task)


TASKS: dict[str, Callable[[TaskConfig], Dataset]] = {
    "teacher": _teacher,
    "digits": _real,
    "mnist": _real,
    "fashion_mnist": _real,
    "cifar10": _real,
    "none": _no_data,
}


def n_outputs(task: TaskConfig) -> int:
    """The classes (or regression outputs) a task's Dataset will have, without making it."""
    from mathdl.tasks.real import LOADERS, N_CLASSES

    return N_CLASSES if task.name in LOADERS else task.n_classes


def input_dim(task: TaskConfig) -> int:
    """The input size a task's Dataset will have, without making it (real data: its pixels)."""
    from mathdl.tasks.real import INPUT_DIMS

    return INPUT_DIMS.get(task.name, task.input_dim)


def image_shape(task: TaskConfig) -> tuple[int, int, int] | None:
    """(C, H, W) of one image of a real data set (its Dataset holds images (n, C, H, W)); None for
    a task without images (teacher, none)."""
    from mathdl.tasks.real import IMAGE_SHAPES

    return IMAGE_SHAPES.get(task.name)


def load_dataset(path: str | Path, task: TaskConfig) -> Dataset:
    """The Dataset that ``make_dataset(task)`` saved at ``path``, inputs shaped as the task gives them.

    A real data set's file written before Datasets held images has flat rows (n, C H W): each is
    its image flattened row-major, so reshaping gives the images ``make_dataset`` gives now, and a
    cached file trains as a fresh one would (its name, the task's hash, is unchanged, so Snakemake
    keeps it).
    """
    data = Dataset.load(path)
    shape = image_shape(task)
    if shape is None or data.x_train.ndim == 4:
        return data
    return replace(data, **{f"x_{s}": data.split(s)[0].reshape(-1, *shape) for s in SPLITS})


def make_dataset(task: TaskConfig) -> Dataset:
    try:
        generator = TASKS[task.name]
    except KeyError:
        raise ValueError(f"unknown task {task.name!r}; valid: {', '.join(sorted(TASKS))}") from None
    return generator(task)
