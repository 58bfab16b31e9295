"""What networks can represent: step networks written down by hand, and backpropagation by hand.

(a) With the step activation H(z) = 1[z >= 0] (McCulloch and Pitts 1943) and weights written
    down, not trained: one neuron is the indicator of a closed half-plane; a layer of k
    neurons followed by an AND neuron (weights 1, bias -(k - 1/2)) is an intersection of
    half-planes, a convex polygon; two such hidden layers followed by an OR neuron (weights 1,
    bias -1/2) are a union of intersections: two disjoint polygons, or a non-convex L. Each
    network is evaluated on a fine grid and compared with the indicator of its set computed
    from the set's vertices alone (ray casting), excluding grid points within
    ``boundary_margin`` of the set's boundary, where a closed set's value is a matter of
    rounding.
(b) The lecture's backpropagation (Rumelhart, Hinton and Williams 1986), written by hand in
    :mod:`mathdl.backprop`, against torch.autograd on random networks of several depths,
    widths and activations: the relative error of all parameter gradients together.
(c) The activations and their derivatives, the derivatives checked against central finite
    differences away from the kinks.

Nothing is trained and nothing is random but the networks of (b), drawn from each run's seed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mathdl import backprop

DEFAULTS: dict[str, Any] = {
    "description": (
        "Which sets do networks of step neurons represent exactly, and does backpropagation "
        "written by hand give the gradients of automatic differentiation?"
    ),
    "seeds": [0],
    "task": {"name": "none"},
    "params": {},  # filled from PARAMS_SCHEMA
    "sweep": {},
}

PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "grid_size": {
            "description": "Points per axis of the grid on which the step networks are checked.",
            "type": "integer", "minimum": 11, "maximum": 4001, "default": 801,
        },
        "grid_extent": {
            "description": "The grids cover the square [-grid_extent, grid_extent]^2 (the sets lie in [-1.8, 1.8]^2).",
            "type": "number", "exclusiveMinimum": 0, "default": 2.0,
        },
        "boundary_margin": {
            "description": "Grid points closer than this to the boundary of a set are not counted (rounding decides them).",
            "type": "number", "minimum": 0, "default": 1e-9,
        },
        "plot_grid_size": {
            "description": "Points per axis of the coarser grid stored for drawing the decision regions.",
            "type": "integer", "minimum": 11, "maximum": 1001, "default": 201,
        },
        "depths": {
            "description": "Hidden layers of the random networks checked against autograd.",
            "type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 50},
            "minItems": 1, "uniqueItems": True, "default": [1, 2, 3, 5],
        },
        "widths": {
            "description": "Hidden widths of the random networks checked against autograd.",
            "type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 1024},
            "minItems": 1, "uniqueItems": True, "default": [1, 4, 16],
        },
        "activations": {
            "description": "Activations of the random networks checked against autograd.",
            "type": "array", "items": {"enum": list(backprop.DIFFERENTIABLE)},
            "minItems": 1, "uniqueItems": True, "default": list(backprop.DIFFERENTIABLE),
        },
        "networks_per_config": {
            "description": "Random networks per (depth, width, activation) and seed.",
            "type": "integer", "minimum": 1, "default": 2,
        },
        "input_dim": {
            "description": "Input dimension of the random networks.",
            "type": "integer", "minimum": 1, "default": 3,
        },
        "output_dim": {
            "description": "Output dimension of the random networks (squared loss against Gaussian targets).",
            "type": "integer", "minimum": 1, "default": 2,
        },
        "batch_size": {
            "description": "Examples in the batch on which each random network's gradients are compared.",
            "type": "integer", "minimum": 1, "default": 8,
        },
        "dtype": {
            "description": "Floating-point type of the backpropagation check (float64: errors near 1e-16).",
            "enum": ["float64", "float32"], "default": "float64",
        },
        "activation_range": {
            "description": "The activations are drawn and checked on [-activation_range, activation_range].",
            "type": "number", "exclusiveMinimum": 0, "default": 4.0,
        },
        "activation_points": {
            "description": "Points on which the activations and their derivatives are evaluated.",
            "type": "integer", "minimum": 11, "maximum": 100001, "default": 801,
        },
        "fd_step": {
            "description": "Step h of the central finite differences that check the derivatives.",
            "type": "number", "exclusiveMinimum": 0, "maximum": 0.1, "default": 1e-6,
        },
        "kink_margin": {
            "description": "Points closer than this to a kink (0 for step and ReLU) are left out of the finite-difference check.",
            "type": "number", "minimum": 0, "default": 1e-3,
        },
    },
}

# The unit roundoff of each dtype: the scale of the backpropagation errors.
UNIT_ROUNDOFF = {"float64": float(np.finfo(np.float64).eps / 2), "float32": float(np.finfo(np.float32).eps / 2)}
# Drawn instead of an error of exactly 0 on the logarithmic axis (a fraction of the roundoff).
ZERO_ERROR_FLOOR = 1e-3
# Hand-written and automatic gradients agree "to rounding" when their relative difference is below
# this many unit roundoffs: both sum the same products, in possibly different orders, and the
# error of such sums grows with their length (here at most a few hundred terms per entry).
BACKPROP_ROUNDOFF_LIMIT = 1000
FIGURES = ("decision_regions", "backprop_check", "activations")
CONSTRUCTION_METRICS = ("misclassified", "evaluated_points", "excluded_points", "boundary_disagreements")


# ----------------------------------------------------------------------------- (a) the sets


@dataclass(frozen=True)
class Shape:
    """A closed set of the plane described by geometry alone, independently of any network.

    Either the closed half-plane to the left of the directed line ``line = (p, q)``, or the
    union of disjoint simple ``polygons`` (each a tuple of vertices).
    """

    line: tuple[tuple[float, float], tuple[float, float]] | None = None
    polygons: tuple[tuple[tuple[float, float], ...], ...] = ()

    def contains(self, pts: np.ndarray) -> np.ndarray:
        """Membership of each point (N, 2): the sign of a cross product, or even-odd ray casting."""
        if self.line is not None:
            return _cross_from_line(self.line, pts) >= 0
        inside = np.zeros(len(pts), dtype=bool)
        for poly in self.polygons:
            inside |= _inside_polygon(pts, np.asarray(poly, dtype=np.float64))
        return inside

    def boundary_distance(self, pts: np.ndarray) -> np.ndarray:
        """Euclidean distance of each point to the boundary (the line, or the polygons' edges)."""
        if self.line is not None:
            p, q = np.asarray(self.line, dtype=np.float64)
            return np.abs(_cross_from_line(self.line, pts)) / np.linalg.norm(q - p)
        dist = np.full(len(pts), np.inf)
        for poly in self.polygons:
            v = np.asarray(poly, dtype=np.float64)
            for a, b in zip(v, np.roll(v, -1, axis=0)):
                dist = np.minimum(dist, _segment_distance(pts, a, b))
        return dist


def _cross_from_line(line, pts: np.ndarray) -> np.ndarray:
    """(q - p) x (x - p): positive to the left of the directed line p -> q."""
    p, q = np.asarray(line, dtype=np.float64)
    d = q - p
    return d[0] * (pts[:, 1] - p[1]) - d[1] * (pts[:, 0] - p[0])


def _inside_polygon(pts: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """Even-odd rule: a horizontal ray from the point crosses the boundary an odd number of times."""
    x, y = pts[:, 0], pts[:, 1]
    inside = np.zeros(len(pts), dtype=bool)
    for (x1, y1), (x2, y2) in zip(verts, np.roll(verts, -1, axis=0)):
        straddles = (y1 > y) != (y2 > y)  # never true for a horizontal edge: no division by 0 below
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= straddles & (x < x_cross)
    return inside


def _segment_distance(pts: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(((pts - a) @ ab) / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(pts - (a + t[:, None] * ab), axis=1)


# ----------------------------------------------------------------------------- (a) the networks


@dataclass(frozen=True)
class StepNetwork:
    """x -> H(W_L ... H(W_1 x + b_1) ... + b_L), the step after every layer (the output too)."""

    weights: tuple[np.ndarray, ...]  # W_l of shape (out, in)
    biases: tuple[np.ndarray, ...]  # b_l of shape (out,)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The network on a batch (N, 2); returns (N,) values in {0, 1}."""
        h = x
        for w, b in zip(self.weights, self.biases):
            h = backprop.ACTIVATIONS["step"].value(h @ w.T + b)
        return h[:, 0]

    @property
    def architecture(self) -> str:
        return "-".join(str(n) for n in [self.weights[0].shape[1], *(w.shape[0] for w in self.weights)])


@dataclass(frozen=True)
class Construction:
    name: str
    kind: str  # halfspace | intersection | union
    label: str  # for figures and the report
    network: StepNetwork
    shape: Shape


def _net(*layers) -> StepNetwork:
    return StepNetwork(
        tuple(np.array(w, dtype=np.float64) for w, _ in layers),
        tuple(np.array(b, dtype=np.float64) for _, b in layers),
    )


# Each hidden row (w1, w2 | b) is a neuron H(w1 x1 + w2 x2 + b): the closed half-plane
# {w . x + b >= 0}, the normal w pointing into the set. The sets' vertices are listed
# counter-clockwise; the weights were worked out by hand from them (inward normals, scaled
# to small integers), and the tests check them only against the vertices.
AND3 = ([[1, 1, 1]], [-2.5])  # H(h1 + h2 + h3 - 2.5) = 1 iff all three are 1
AND4 = ([[1, 1, 1, 1]], [-3.5])
OR2 = ([[1, 1]], [-0.5])  # H(g1 + g2 - 0.5) = 1 iff at least one is 1

CONSTRUCTIONS: tuple[Construction, ...] = (
    Construction(
        "halfspace", "halfspace", "half-plane",
        # one neuron: {x1 + 2 x2 - 1 >= 0}
        _net(([[1.0, 2.0]], [-1.0])),
        # the line through (-1, 1) and (1, 0); the set lies to its left
        Shape(line=((-1.0, 1.0), (1.0, 0.0))),
    ),
    Construction(
        "triangle", "intersection", "triangle",
        _net(
            (
                [[0, 2],     # 2 x2 + 3 >= 0:          above the base  (-1.5,-1.5)-(1.5,-1.5)
                 [-4, -2],   # -4 x1 - 2 x2 + 3 >= 0:  left of the edge (1.5,-1.5)-(0,1.5)
                 [4, -2]],   # 4 x1 - 2 x2 + 3 >= 0:   right of the edge (0,1.5)-(-1.5,-1.5)
                [3, 3, 3],
            ),
            AND3,
        ),
        Shape(polygons=(((-1.5, -1.5), (1.5, -1.5), (0.0, 1.5)),)),
    ),
    Construction(
        "square", "intersection", "square",
        _net(
            (
                [[-1, -1],   # x1 + x2 <= 1.5
                 [1, -1],    # x2 - x1 <= 1.5
                 [1, 1],     # x1 + x2 >= -1.5
                 [-1, 1]],   # x1 - x2 <= 1.5
                [1.5, 1.5, 1.5, 1.5],
            ),
            AND4,
        ),
        # |x1| + |x2| <= 1.5: a square turned by 45 degrees
        Shape(polygons=(((1.5, 0.0), (0.0, 1.5), (-1.5, 0.0), (0.0, -1.5)),)),
    ),
    Construction(
        "two_polygons", "union", "triangle or square",
        _net(
            (
                [[0, 5],     # triangle: 5 x2 + 6 >= 0           (x2 >= -1.2)
                 [-3, -1],   # triangle: -3 x1 - x2 - 1.8 >= 0   (edge (-0.2,-1.2)-(-1,1.2))
                 [3, -1],    # triangle: 3 x1 - x2 + 4.2 >= 0    (edge (-1,1.2)-(-1.8,-1.2))
                 [1, 0],     # square: x1 >= 0.4
                 [-1, 0],    # square: x1 <= 1.6
                 [0, 1],     # square: x2 >= -0.6
                 [0, -1]],   # square: x2 <= 0.6
                [6, -1.8, 4.2, -0.4, 1.6, 0.6, 0.6],
            ),
            (
                [[1, 1, 1, 0, 0, 0, 0],   # AND of the triangle's three half-planes
                 [0, 0, 0, 1, 1, 1, 1]],  # AND of the square's four
                [-2.5, -3.5],
            ),
            OR2,
        ),
        Shape(polygons=(
            ((-1.8, -1.2), (-0.2, -1.2), (-1.0, 1.2)),
            ((0.4, -0.6), (1.6, -0.6), (1.6, 0.6), (0.4, 0.6)),
        )),
    ),
    Construction(
        "l_shape", "union", "L-shape",
        _net(
            (
                [[1, 0],     # x1 >= -1.5  (shared by both rectangles)
                 [0, 1],     # x2 >= -1.5  (shared)
                 [-1, 0],    # x1 <= 1.5   (foot)
                 [0, -1],    # x2 <= -0.5  (foot)
                 [-1, 0],    # x1 <= -0.5  (leg)
                 [0, -1]],   # x2 <= 1.5   (leg)
                [1.5, 1.5, 1.5, -0.5, -0.5, 1.5],
            ),
            (
                [[1, 1, 1, 1, 0, 0],   # foot [-1.5, 1.5] x [-1.5, -0.5]
                 [1, 1, 0, 0, 1, 1]],  # leg  [-1.5, -0.5] x [-1.5, 1.5]
                [-3.5, -3.5],
            ),
            OR2,
        ),
        # not convex: its six vertices, counter-clockwise
        Shape(polygons=(((-1.5, -1.5), (1.5, -1.5), (1.5, -0.5), (-0.5, -0.5), (-0.5, 1.5), (-1.5, 1.5)),)),
    ),
)
KINDS = ("halfspace", "intersection", "union")
KIND_LABELS = {"halfspace": "half-space", "intersection": "intersection", "union": "union"}


def grid_points(size: int, extent: float) -> np.ndarray:
    """The size x size grid on [-extent, extent]^2, row-major (x2 slow, x1 fast): (size^2, 2)."""
    axis = np.linspace(-extent, extent, size)
    x1, x2 = np.meshgrid(axis, axis)
    return np.column_stack([x1.ravel(), x2.ravel()])


def check_construction(c: Construction, pts: np.ndarray, margin: float) -> dict[str, int]:
    """Network against the exact indicator on ``pts``, away from the boundary and on it."""
    net = c.network(pts).astype(bool)
    exact = c.shape.contains(pts)
    near = c.shape.boundary_distance(pts) < margin
    wrong = net != exact
    return {
        "misclassified": int((wrong & ~near).sum()),
        "evaluated_points": int((~near).sum()),
        "excluded_points": int(near.sum()),
        "boundary_disagreements": int((wrong & near).sum()),
    }


# ----------------------------------------------------------------------------- compute


def _rows(run_id: str, split: str, epoch, metric: str, values) -> pd.DataFrame:
    values = np.atleast_1d(np.asarray(values, dtype=np.float64))
    return pd.DataFrame({
        "run_id": run_id,
        "epoch": np.broadcast_to(np.asarray(epoch, dtype=np.int64), values.shape),
        "split": split,
        "metric": metric,
        "value": values,
    })


def _representation_tables(run_id: str, p: dict) -> list[pd.DataFrame]:
    """(a): errors of every construction on the fine grid; network outputs on the plot grid."""
    pts = grid_points(p["grid_size"], p["grid_extent"])
    plot_pts = grid_points(p["plot_grid_size"], p["grid_extent"])
    frames = []
    for c in CONSTRUCTIONS:
        for metric, value in check_construction(c, pts, p["boundary_margin"]).items():
            frames.append(_rows(run_id, c.name, 0, metric, value))
        out = c.network(plot_pts)
        frames.append(_rows(run_id, c.name, np.arange(len(out)), "network_output", out))
    return frames


def _backprop_tables(run_id: str, seed: int, p: dict) -> list[pd.DataFrame]:
    """(b): hand-written backpropagation against autograd on random networks."""
    dtype = np.dtype(p["dtype"])
    rng = np.random.default_rng(seed)
    rows = []
    index = 0
    for depth in p["depths"]:
        for width in p["widths"]:
            for activation in p["activations"]:
                for _ in range(p["networks_per_config"]):
                    layers = backprop.random_network(rng, p["input_dim"], width, depth, p["output_dim"], activation, dtype)
                    x = rng.standard_normal((p["batch_size"], p["input_dim"])).astype(dtype)
                    y = rng.standard_normal((p["batch_size"], p["output_dim"])).astype(dtype)
                    errors = backprop.compare_with_autograd(layers, x, y)
                    for metric, value in {**errors, "depth": depth, "width": width}.items():
                        rows.append((run_id, index, activation, metric, float(value)))
                    index += 1
    return [pd.DataFrame(rows, columns=["run_id", "epoch", "split", "metric", "value"])]


def _activation_tables(run_id: str, p: dict) -> list[pd.DataFrame]:
    """(c): sigma and sigma' on a grid, and the largest finite-difference error away from kinks."""
    z = np.linspace(-p["activation_range"], p["activation_range"], p["activation_points"])
    idx = np.arange(len(z))
    frames = []
    for name, fn in backprop.ACTIVATIONS.items():
        frames += [
            _rows(run_id, name, idx, "z", z),
            _rows(run_id, name, idx, "value", fn.value(z)),
            _rows(run_id, name, idx, "derivative", fn.derivative(z)),
        ]
        # the difference quotient straddles a kink when |z - kink| < h: keep clear by the margin and h
        smooth = np.ones(len(z), dtype=bool)
        for k in fn.kinks:
            smooth &= np.abs(z - k) > max(p["kink_margin"], p["fd_step"])
        fd = backprop.finite_difference_derivative(name, z[smooth], p["fd_step"])
        frames.append(_rows(run_id, name, 0, "fd_derivative_error", np.max(np.abs(fd - fn.derivative(z[smooth])))))
        frames.append(_rows(run_id, name, 0, "fd_points", int(smooth.sum())))
    return frames


def networks(group) -> list:
    """No network: the job computes with NumPy on the host (and asks for no GPU)."""
    return []


def compute(group, data, device: str = "cpu"):
    """Every run: the step constructions, the backpropagation check (from its seed), the activations."""
    from mathdl.engine import TrainResult
    from mathdl.studies import host_device

    del data  # no data set; NumPy and torch on the CPU
    used = host_device(device)
    start = time.perf_counter()
    metrics, runs = [], []
    for run in group.runs:
        p = dict(run.params)
        frames = _representation_tables(run.run_id, p) + _backprop_tables(run.run_id, run.seed, p) + _activation_tables(run.run_id, p)
        table = pd.concat(frames, ignore_index=True)
        metrics.append(table)
        bp = table[table["metric"] == "relative_error"]["value"]
        runs.append({
            "run_id": run.run_id, "seed": run.seed, "diverged": False, "diverged_epoch": -1,
            "n_networks_checked": int(len(bp)), "backprop_max_relative_error": float(bp.max()) if len(bp) else float("nan"),
        })
    return TrainResult(
        metrics=pd.concat(metrics, ignore_index=True),
        runs=pd.DataFrame(runs),
        device=used,
        wall_time_s=time.perf_counter() - start,
    )


# ----------------------------------------------------------------------------- analyze


def analyze(tables, experiment) -> dict:
    """Misclassified points per construction and kind; the backpropagation and derivative errors."""
    m = tables.metrics
    p = dict(experiment.params)
    names = {c.name: c for c in CONSTRUCTIONS}

    cons = m[m["metric"].isin(CONSTRUCTION_METRICS) & m["split"].isin(names)]
    worst = cons.groupby(["split", "metric"])["value"].max()  # every run computes the same
    constructions = []
    for c in CONSTRUCTIONS:
        if c.name not in worst.index.get_level_values(0):
            continue
        entry = {"name": c.name, "kind": c.kind, "label": c.label, "architecture": c.network.architecture}
        entry.update({k: int(worst[(c.name, k)]) for k in CONSTRUCTION_METRICS})
        constructions.append(entry)
    by_kind = {k: sum(e["misclassified"] for e in constructions if e["kind"] == k) for k in KINDS}

    bp = m[m["metric"].isin(["relative_error", "input_relative_error", "loss_relative_error", "depth", "width"])]
    wide = bp.pivot_table(index=["run_id", "epoch", "split"], columns="metric", values="value").reset_index()
    per_activation = {
        act: {"n_networks": int(len(df)), "max_relative_error": float(df["relative_error"].max())}
        for act, df in wide.groupby("split", sort=False)
    }
    # The dtype may be swept: measure each run's error in its own unit roundoff.
    dtypes = tables.runs.set_index("run_id")["params.dtype"] if "params.dtype" in tables.runs else None
    run_dtype = wide["run_id"].map(dtypes) if dtypes is not None else pd.Series(p["dtype"], index=wide.index)
    roundoff = max(UNIT_ROUNDOFF[d] for d in set(run_dtype)) if len(wide) else UNIT_ROUNDOFF[p["dtype"]]
    in_roundoff = wide["relative_error"] / run_dtype.map(UNIT_ROUNDOFF)
    input_in_roundoff = wide["input_relative_error"] / run_dtype.map(UNIT_ROUNDOFF)
    max_err = float(wide["relative_error"].max()) if len(wide) else float("nan")
    worst_in_roundoff = max(float(in_roundoff.max()), float(input_in_roundoff.max())) if len(wide) else float("nan")

    fd = m[m["metric"] == "fd_derivative_error"].groupby("split")["value"].max()
    n_grid = int(p["grid_size"]) ** 2
    return {
        "grid_size": int(p["grid_size"]),
        "grid_points": n_grid,
        "grid_extent": float(p["grid_extent"]),
        "boundary_margin": float(p["boundary_margin"]),
        "constructions": constructions,
        "halfspace_errors": by_kind["halfspace"],
        "intersection_errors": by_kind["intersection"],
        "union_errors": by_kind["union"],
        "total_errors": sum(by_kind.values()),
        "all_exact": sum(by_kind.values()) == 0,
        "n_runs": int(tables.runs["run_id"].nunique()),
        "n_networks_checked": int(len(wide)),
        "depths": [int(d) for d in p["depths"]],
        "widths": [int(w) for w in p["widths"]],
        "activations": list(p["activations"]),
        "dtype": ", ".join(sorted(set(run_dtype))) or p["dtype"],
        "unit_roundoff": roundoff,
        "backprop_max_relative_error": max_err,
        "backprop_median_relative_error": float(wide["relative_error"].median()) if len(wide) else float("nan"),
        "backprop_max_error_in_roundoff": float(in_roundoff.max()) if len(wide) else float("nan"),
        "backprop_max_input_relative_error": float(wide["input_relative_error"].max()) if len(wide) else float("nan"),
        "backprop_max_loss_relative_error": float(wide["loss_relative_error"].max()) if len(wide) else float("nan"),
        "backprop_max_input_error_in_roundoff": float(input_in_roundoff.max()) if len(wide) else float("nan"),
        "backprop_roundoff_limit": BACKPROP_ROUNDOFF_LIMIT,
        # Parameter and input gradients both within the limit (in their run's unit roundoff).
        "backprop_within_roundoff": bool(worst_in_roundoff <= BACKPROP_ROUNDOFF_LIMIT),
        "backprop_by_activation": per_activation,
        "fd_step": float(p["fd_step"]),
        "kink_margin": float(p["kink_margin"]),
        "activation_derivative_errors": {k: float(v) for k, v in fd.items()},
        "activation_derivative_max_error": float(fd.max()),
        "fd_error_estimate": fd_error_estimate(p["fd_step"], p["activation_range"]),
        "activation_derivatives_within_estimate": bool(float(fd.max()) <= fd_error_estimate(p["fd_step"], p["activation_range"])),
    }


def fd_error_estimate(step: float, z_range: float) -> float:
    """What the central difference (s(z + h) - s(z - h)) / 2h itself may be off by, in float64:
    truncation h^2 max|s'''| / 6 <= h^2 / 3 (|s'''| <= 2 for these activations, tanh's at 0) and
    rounding of about 4 u (R + 1) / h (a few ulps of values |s(z)| <= |z| + 1 <= R + 1, divided by 2h)."""
    return step**2 / 3 + 4 * UNIT_ROUNDOFF["float64"] * (z_range + 1) / step


# ----------------------------------------------------------------------------- figures


def _first_run(tables) -> str:
    return tables.runs.sort_values(["seed", "run_id"])["run_id"].iloc[0]


def figures(tables, summary, experiment, plot, outdir: Path) -> list[str]:
    """decision_regions, backprop_check and activations, from the tables."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.colors import ListedColormap

    from mathdl import plots

    plots.setup(plot)
    m = tables.metrics
    run = _first_run(tables)
    names = []

    # (a) decision regions: the network's output on the plot grid, the exact set's outline
    runs = tables.runs.set_index("run_id")
    size = int(runs.loc[run, "params.plot_grid_size"])
    extent = float(runs.loc[run, "params.grid_extent"])
    shown = [c for c in CONSTRUCTIONS if ((m["split"] == c.name) & (m["metric"] == "network_output")).any()]
    colours = sns.color_palette(plot.palette, 3)
    cmap = ListedColormap([(1, 1, 1), colours[0]])
    fig, axes = plt.subplots(1, len(shown), figsize=(plot.width * 1.5, plot.width * 1.5 / len(shown) + 0.6),
                             squeeze=False, sharex=True, sharey=True, layout="constrained")
    for ax, c in zip(axes[0], shown):
        out = m[(m["run_id"] == run) & (m["split"] == c.name) & (m["metric"] == "network_output")].sort_values("epoch")
        ax.imshow(out["value"].to_numpy().reshape(size, size), origin="lower", extent=(-extent, extent, -extent, extent),
                  cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        _draw_outline(ax, c.shape, extent, colour="black")
        entry = next((e for e in summary["constructions"] if e["name"] == c.name), None)
        errors = f"\n{entry['misclassified']} wrong" if entry else ""
        ax.set_title(f"{c.label}\n{c.network.architecture}{errors}", fontsize="small")
        ax.set_xlim(-extent, extent)
        ax.set_ylim(-extent, extent)
        ax.set_xticks([-extent, 0, extent])
        ax.set_yticks([-extent, 0, extent])
        ax.set_aspect("equal")
        ax.grid(False)
        ax.tick_params(labelsize="small")
    names.append(plots.save(fig, outdir, "decision_regions", plot))

    # (b) relative error of the hand-written gradients, per network
    bp = m[m["metric"].isin(["relative_error", "depth"])]
    wide = bp.pivot_table(index=["run_id", "epoch", "split"], columns="metric", values="value").reset_index()
    roundoff = summary["unit_roundoff"]
    wide["shown_error"] = np.maximum(wide["relative_error"], ZERO_ERROR_FLOOR * roundoff)
    wide["depth"] = wide["depth"].astype(int)
    wide = wide.rename(columns={"split": "activation"})
    fig, (ax,) = plots.new_figure(plot)
    sns.stripplot(data=wide, x="depth", y="shown_error", hue="activation", dodge=True, jitter=0.15, size=3,
                  log_scale=True, ax=ax)
    ax.axhline(roundoff, color="grey", linestyle="--", linewidth=1, label="unit roundoff")
    ax.set_xlabel("hidden layers")
    ax.set_ylabel("relative error vs autograd")
    ax.legend(fontsize="x-small", ncols=2)
    names.append(plots.save(fig, outdir, "backprop_check", plot))

    # (c) the activations and their derivatives
    curves = m[(m["run_id"] == run) & m["metric"].isin(["z", "value", "derivative"])]
    curves = curves.pivot_table(index=["split", "epoch"], columns="metric", values="value").reset_index()
    curves = curves.rename(columns={"split": "activation"})
    order = [a for a in backprop.ACTIVATIONS if a in set(curves["activation"])]
    fig, axes = plots.new_figure(plot, ncols=2)
    for ax, what, label in zip(axes, ("value", "derivative"), (r"$\sigma(z)$", r"$\sigma'(z)$")):
        sns.lineplot(data=curves, x="z", y=what, hue="activation", hue_order=order, style="activation",
                     style_order=order, ax=ax, legend=what == "value", estimator=None, sort=True)
        ax.set_ylabel(label)
        ax.set_xlabel("$z$")
    axes[0].set_ylim(-1.5, 3)
    axes[1].set_ylim(-0.1, 1.2)
    axes[0].legend(fontsize="x-small")
    names.append(plots.save(fig, outdir, "activations", plot))
    return names


def _draw_outline(ax, shape: Shape, extent: float, colour) -> None:
    if shape.line is not None:
        p, q = np.asarray(shape.line, dtype=np.float64)
        d = (q - p) / np.linalg.norm(q - p)
        ends = np.array([p - 4 * extent * d, p + 4 * extent * d])
        ax.plot(ends[:, 0], ends[:, 1], color=colour, linestyle="--", linewidth=1)
    for poly in shape.polygons:
        v = np.asarray(poly + (poly[0],), dtype=np.float64)
        ax.plot(v[:, 0], v[:, 1], color=colour, linestyle="--", linewidth=1)


# ----------------------------------------------------------------------------- words


def context(experiment, summary) -> dict:
    """What the templates need beyond the summary: the table's cells, the activations' names."""
    from mathdl.report import ACTIVATION_NAMES, escape, fmt, named

    rows = [[escape(e["label"]), KIND_LABELS[e["kind"]], escape(e["architecture"]), fmt(e["evaluated_points"]),
             fmt(e["excluded_points"]), fmt(e["misclassified"])] for e in summary["constructions"]]
    return {"rows": rows, "activation_names": [named(ACTIVATION_NAMES, a) for a in summary["activations"]]}
