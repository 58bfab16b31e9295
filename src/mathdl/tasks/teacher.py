"""A random one-hidden-layer ReLU "teacher" network as the target function.

Inputs x ~ N(0, I_d). The teacher is f*(x) = A relu(W x + b) with W_ij ~ N(0, 1/d),
b_i ~ N(0, 1/d) and A_ki ~ N(0, 1/m) for m hidden units. Classification labels are
argmax_k f*_k(x); a fraction ``label_noise`` of the training and validation labels is then
replaced by labels drawn uniformly at random (so about a (K-1)/K share of those change), as
in Zhang et al. (2017) and Nakkiran et al. (2019). Regression targets are f*(x), rescaled to
unit standard deviation, plus Gaussian noise of standard deviation ``label_noise``.
The test set is never noisy: test error measures distance to the teacher.
"""

from __future__ import annotations

import numpy as np

from mathdl.spec import TaskConfig
from mathdl.tasks.noise import randomize_labels


def teacher_dataset(task: TaskConfig):
    from mathdl.tasks import Dataset

    rng = np.random.default_rng(task.seed)
    d, m, k = task.input_dim, task.teacher_width, task.n_classes
    if task.kind == "classification" and k < 2:
        raise ValueError("task.n_classes: classification needs at least 2 classes")
    w = rng.normal(0.0, 1.0 / np.sqrt(d), size=(m, d))
    b = rng.normal(0.0, 1.0 / np.sqrt(d), size=m)
    a = rng.normal(0.0, 1.0 / np.sqrt(m), size=(k, m))

    def teacher(x: np.ndarray) -> np.ndarray:
        return np.maximum(x @ w.T + b, 0.0) @ a.T  # (n, k)

    sizes = {"train": task.n_train, "val": task.n_val, "test": task.n_test}
    xs = {s: rng.standard_normal((n, d)) for s, n in sizes.items()}
    clean = {s: teacher(x) for s, x in xs.items()}
    if task.kind == "classification":
        ys = {s: f.argmax(axis=1).astype(np.int64) for s, f in clean.items()}
        for s in ("train", "val"):
            ys[s] = randomize_labels(ys[s], task.label_noise, k, rng)
    else:
        scale = clean["train"].std() if task.n_train > 1 else 1.0
        scale = scale if scale > 0 else 1.0
        ys = {s: (f / scale) for s, f in clean.items()}
        for s in ("train", "val"):
            ys[s] = ys[s] + task.label_noise * rng.standard_normal(ys[s].shape)
        ys = {s: y.astype(np.float32) for s, y in ys.items()}
    return Dataset(
        kind=task.kind,
        n_outputs=k,
        **{f"x_{s}": xs[s].astype(np.float32) for s in sizes},
        **{f"y_{s}": ys[s] for s in sizes},
    )
