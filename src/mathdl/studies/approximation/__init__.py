"""Universal approximation and Barron's rate (Cybenko 1989; Hornik 1991; Barron 1993).

Two targets, on inputs uniform in the cube [-1, 1]^d:

* ``teacher``: a wide ReLU network f(x) = sum_i a_i relu(w_i . x + b_i) with N units
  (``teacher_width``). Its directions w_i cluster around ``teacher_directions`` random unit
  vectors whose clusters carry alternating signs, so f is a signed sum of smooth ridge-like
  bumps rather than a nearly radial average. Its gradient jumps where a unit switches, so it is not
  in Barron's (1993) Fourier class, but Maurey's bound below applies to it with its path norm ||a||_1.
* ``bump``: the Gaussian exp(-||x||^2), whose Fourier transform is again Gaussian: in Barron's class,
  with the constant of ``bump_barron_bound``.

Both are scaled so that E f(X)^2 = 1 (exactly for the bump, on a reference sample for the
teacher); relative errors ||f_hat - f||^2 / ||f||^2 (on the test points) do not depend on it.

Barron's proof made concrete (Maurey's empirical method, Pisier 1981): draw m units of the
teacher i.i.d. with probability p_i = |a_i| / ||a||_1 and give each the output weight
sign(a_i) ||a||_1 / m. The sampled network f_m is unbiased, E f_m(x) = f(x), and its
expected squared error is exactly (||a||_1^2 E_p ||phi_J||^2 - ||f||^2) / m, phi_i the i-th
unit: an O(1/m) constructive upper bound on the best width-m approximation. Beside it,
one-hidden-layer networks of width m trained with the engine (full batch, mse) on n_train
noiseless samples, with logistic, ReLU and soft-plus activations.

Seeds vary the networks' initialization and Maurey's draw; the teacher and the data are
fixed by ``data_seed``, so that every seed approximates the same function from the same sample.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mathdl.tables import CI_LEVEL, loglog_slope, mean_ci_dict

ACTIVATIONS = ("relu", "logistic", "softplus")
TARGETS = ("teacher", "bump")

DEFAULTS: dict[str, Any] = {
    "description": (
        "How fast does the error of a one-hidden-layer network fall with its width, for a wide ReLU "
        "teacher and a Gaussian bump, against the rate of Barron's theorem, and how do trained "
        "networks compare with Maurey's randomly sampled ones?"
    ),
    "seeds": [0, 1, 2],
    "task": {"name": "none"},
    # The training loop of every width and activation (the model section's depth, width and
    # activation are overridden per fit). Full-batch Adam with a cosine decay to converge.
    "model": {"depth": 1, "init": "pytorch"},
    "train": {
        "loss": "mse", "optimizer": "adam", "lr": 0.01, "batch_size": 0, "epochs": 500,
        "lr_schedule": "cosine", "eval_points": 3,
    },
    "sweep": {"params.target": list(TARGETS)},
}

PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "target": {
            "description": "The function to approximate: the wide ReLU teacher or the Gaussian bump exp(-|x|^2).",
            "enum": list(TARGETS), "default": "teacher",
        },
        "dim": {
            "description": "Input dimension d; inputs are uniform in [-1, 1]^d.",
            "type": "integer", "minimum": 1, "maximum": 1000, "default": 8,
        },
        "widths": {
            "description": "Hidden widths m of the trained and the Maurey-sampled networks.",
            "type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2,
            "default": [4, 8, 16, 32, 64, 128],
        },
        "activations": {
            "description": "Activations of the trained networks (the teacher is always ReLU).",
            "type": "array", "items": {"enum": list(ACTIVATIONS)}, "minItems": 1, "uniqueItems": True,
            "default": list(ACTIVATIONS),
        },
        "teacher_width": {
            "description": "Units N of the teacher network.",
            "type": "integer", "minimum": 1, "default": 20000,
        },
        "teacher_directions": {
            "description": "Clusters of teacher directions; their output weights alternate in sign.",
            "type": "integer", "minimum": 1, "default": 5,
        },
        "maurey_draws": {
            "description": "Independent Maurey networks per seed and width; their mean relative error is recorded.",
            "type": "integer", "minimum": 1, "default": 20,
        },
        "n_train": {
            "description": "Noiseless training samples of the target (shared by all seeds).",
            "type": "integer", "minimum": 1, "default": 500,
        },
        "n_test": {
            "description": "Test points on which relative errors are measured.",
            "type": "integer", "minimum": 1, "default": 2000,
        },
        "data_seed": {
            "description": "Seed of the teacher and of the training and test inputs.",
            "type": "integer", "minimum": 0, "default": 0,
        },
    },
}

FIGURES = ("error_vs_width",)
BARRON_EXPONENT = -1.0  # Barron (1993): the squared L^2 error of the best width-m network is O(1/m)
UNIT_CHUNK = 4096  # teacher units evaluated at once: (n, chunk) float64 blocks stay small
LABELS = {"maurey": "Maurey (sampled)", "relu": "trained ReLU", "logistic": "trained logistic",
          "softplus": "trained soft-plus"}


# ----------------------------------------------------------------------------- the mathematics


def relu_network(x: np.ndarray, w: np.ndarray, b: np.ndarray, a: np.ndarray) -> np.ndarray:
    """sum_i a_i relu(w_i . x + b_i): x (n, d), w (N, d), b (N,), a (N,) -> (n,), in unit chunks."""
    out = np.zeros(x.shape[0])
    for s in range(0, len(a), UNIT_CHUNK):
        pre = x @ w[s : s + UNIT_CHUNK].T + b[s : s + UNIT_CHUNK]  # (n, chunk)
        out += np.maximum(pre, 0.0) @ a[s : s + UNIT_CHUNK]
    return out


def teacher_network(dim: int, width: int, directions: int, rng: np.random.Generator):
    """(w, b, a) of the teacher, scaled so that E f(X)^2 = 1 on 4096 reference points.

    w_i = normalize(c_k + xi_i / 2), xi_i ~ N(0, I/d), around K random unit vectors c_k;
    b_i ~ U[-1, 1]; a_i = s_k u_i / N with u_i ~ U[1/2, 3/2] and cluster signs s_k = (-1)^k.
    """
    centres = rng.standard_normal((directions, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    cluster = rng.integers(directions, size=width)
    w = centres[cluster] + 0.5 * rng.standard_normal((width, dim)) / math.sqrt(dim)
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    b = rng.uniform(-1.0, 1.0, size=width)
    a = (-1.0) ** cluster * rng.uniform(0.5, 1.5, size=width) / width
    reference = rng.uniform(-1.0, 1.0, size=(4096, dim))
    a /= math.sqrt(np.mean(relu_network(reference, w, b, a) ** 2))
    return w, b, a


def bump(x: np.ndarray) -> np.ndarray:
    """exp(-||x||^2) / sqrt(E exp(-2||X||^2)), X uniform in [-1, 1]^d: E f(X)^2 = 1 exactly."""
    # E exp(-2 t^2) for t ~ U[-1, 1] is sqrt(pi / 2) erf(sqrt 2) / 2, and coordinates are independent.
    per_axis = math.sqrt(math.pi / 2) * math.erf(math.sqrt(2)) / 2
    return np.exp(-(x**2).sum(axis=1)) / math.sqrt(per_axis ** x.shape[1])


def bump_barron_bound(dim: int) -> float:
    """(2 C_{f,B})^2 of the (scaled) bump on the cube B = [-1, 1]^d: Barron's (1993, Theorem 1)
    bound on the squared L^2(mu) error of the best width-m sigmoidal network is this over m.

    Barron's constant is C_{f,B} = int |omega|_B |f~(omega)| d omega with |omega|_B =
    sup_{x in B} |omega . x|, which is ||omega||_1 on the cube, and f(x) = int e^{i omega . x}
    f~(omega) d omega. exp(-||x||^2) is the characteristic function of N(0, 2 I_d), so f~ is s
    times that density (s = 1 / sqrt(E exp(-2||X||^2)), the scale of ``bump``) and
    C_{f,B} = s E ||omega||_1 = s d sqrt(2) sqrt(2 / pi) = 2 s d / sqrt(pi). With E f(X)^2 = 1
    the bound is relative to ||f||^2.
    """
    per_axis = math.sqrt(math.pi / 2) * math.erf(math.sqrt(2)) / 2
    c = 2 * dim / math.sqrt(math.pi) / math.sqrt(per_axis**dim)
    return (2 * c) ** 2


def maurey_network(w: np.ndarray, b: np.ndarray, a: np.ndarray, m: int, rng: np.random.Generator):
    """Maurey's empirical method: m units drawn i.i.d. with p_i = |a_i| / ||a||_1, each with
    output weight sign(a_i) ||a||_1 / m; an unbiased estimate of the teacher."""
    norm1 = np.abs(a).sum()
    idx = rng.choice(len(a), size=m, p=np.abs(a) / norm1)
    return w[idx], b[idx], np.sign(a[idx]) * norm1 / m


def maurey_error_constant(w: np.ndarray, b: np.ndarray, a: np.ndarray, x: np.ndarray) -> float:
    """C with E ||f_m - f||^2 = C / m on the points x (empirical norm):
    C = ||a||_1 sum_i |a_i| mean_x phi_i(x)^2 - mean_x f(x)^2, phi_i the i-th unit."""
    second = 0.0
    for s in range(0, len(a), UNIT_CHUNK):
        phi = np.maximum(x @ w[s : s + UNIT_CHUNK].T + b[s : s + UNIT_CHUNK], 0.0)  # (n, chunk)
        second += float((phi**2).mean(axis=0) @ np.abs(a[s : s + UNIT_CHUNK]))
    return float(np.abs(a).sum() * second - np.mean(relu_network(x, w, b, a) ** 2))


# ----------------------------------------------------------------------------- compute


def _data(p):
    """Teacher (or None), training and test inputs and targets, all from ``data_seed``."""
    rng = np.random.default_rng([p["data_seed"], p["dim"]])
    teacher = teacher_network(p["dim"], p["teacher_width"], p["teacher_directions"], rng) if p["target"] == "teacher" else None
    x_train = rng.uniform(-1.0, 1.0, size=(p["n_train"], p["dim"]))
    x_test = rng.uniform(-1.0, 1.0, size=(p["n_test"], p["dim"]))
    f = (lambda x: relu_network(x, *teacher)) if teacher is not None else bump
    return teacher, x_train, f(x_train), x_test, f(x_test)


def _trained_rows(group, p, x_train, y_train, x_test, y_test, norms, device) -> tuple[list[tuple], dict, str]:
    """Train every (activation, width) on the shared data, all seeds in one batched engine call
    on ``device``; rows, diverged fits per run, and the device they trained on."""
    from mathdl import engine
    from mathdl.studies._divergence import blank_failed, failed_runs
    from mathdl.tasks import Dataset

    f32 = np.float32
    data = Dataset("regression", 1, x_train.astype(f32), y_train[:, None].astype(f32),
                   x_train[:0].astype(f32), y_train[:0, None].astype(f32), x_test.astype(f32), y_test[:, None].astype(f32))
    rows, diverged = [], {r.run_id: 0 for r in group.runs}
    seeds = [r.seed for r in group.runs]
    used = str(engine.resolve_device(device))
    for act in p["activations"]:
        for m in p["widths"]:
            g = engine.make_group(seeds, model={**vars(group.model), "depth": 1, "width": m, "activation": act},
                                  train=vars(group.train), experiment=group.experiment)
            result = engine.train(g, data, device=device, progress=False)
            used = result.device
            ids = {ours.run_id: theirs.run_id for ours, theirs in zip(g.runs, group.runs)}
            last = result.metrics["epoch"].max()
            if last != group.train.epochs:  # eval_points < 3 records epochs 0 and 1 only
                raise ValueError(f"train.eval_points must be at least 3 (the last epoch recorded was {last})")
            # A fit that failed, even at the last epoch, records NaN: it is left out of every mean
            # and its run out of the series' slope.
            metrics = blank_failed(result)
            final = metrics[(metrics["metric"] == "loss") & (metrics["epoch"] == last)]
            for row in final.itertuples():
                rows.append((ids[row.run_id], m, row.split, act, row.value / norms[row.split]))
            for run_id in failed_runs(result):
                diverged[ids[run_id]] += 1
    return rows, diverged, used


def networks(group) -> list:
    """What the group's job trains (mathdl.resources sizes the job from it): every activation and
    width of the trained series on the shared data, all seeds batched, one after another."""
    from mathdl.resources import Networks

    p = group.runs[0].params
    return [Networks.of_group(group, model=dataclasses.replace(group.model, depth=1, width=m, residual=False),
                              input_dim=p["dim"], n_outputs=1, n_train=p["n_train"], n_eval=p["n_test"])
            for _ in p["activations"] for m in p["widths"]]


def compute(group, data, device):
    """Maurey-sampled and trained networks of every width for every seed of one target."""
    from mathdl.engine import TrainResult

    start = time.perf_counter()
    p = group.runs[0].params
    teacher, x_train, y_train, x_test, y_test = _data(p)
    norms = {"train": float(np.mean(y_train**2)), "test": float(np.mean(y_test**2))}
    rows, diverged, used = _trained_rows(group, p, x_train, y_train, x_test, y_test, norms, device)
    if teacher is not None:
        constant = maurey_error_constant(*teacher, x_test) / norms["test"]
        for run in group.runs:
            rng = np.random.default_rng([run.seed, p["data_seed"], 1])
            for m in p["widths"]:
                errors = [np.mean((relu_network(x_test, *maurey_network(*teacher, m, rng)) - y_test) ** 2)
                          for _ in range(p["maurey_draws"])]
                rows.append((run.run_id, m, "test", "maurey", float(np.mean(errors)) / norms["test"]))
                rows.append((run.run_id, m, "test", "maurey_expected", constant / m))
    metrics = pd.DataFrame(rows, columns=["run_id", "epoch", "split", "metric", "value"])
    metrics["value"] = metrics["value"].astype(float)
    runs = pd.DataFrame([{"run_id": r.run_id, "seed": r.seed, "diverged": diverged[r.run_id] > 0,
                          "diverged_epoch": -1, "diverged_fits": diverged[r.run_id]} for r in group.runs])
    return TrainResult(metrics=metrics, runs=runs, device=used, wall_time_s=time.perf_counter() - start)


# ----------------------------------------------------------------------------- analyze





def _test_errors(tables) -> pd.DataFrame:
    """Relative test errors, one row per (target, run, series, width)."""
    df = tables.with_params()
    df = df[df["split"] == "test"].rename(columns={"epoch": "width", "metric": "series", "value": "error"})
    if "params.target" not in df:
        df["params.target"] = "teacher"
    return df


def _series_summary(df: pd.DataFrame) -> dict:
    """Per-seed log-log slopes (mean and t-interval) and per-width mean errors of one series."""
    slopes = [loglog_slope(d["width"], d["error"])[0] for _, d in df.groupby("run_id")
              if (d["error"] > 0).all() and d["width"].nunique() > 1]
    return {
        "slope": mean_ci_dict(slopes),
        "errors": {str(int(m)): mean_ci_dict(d["error"]) for m, d in df.groupby("width", sort=True)},
    }


def analyze(tables, experiment) -> dict:
    """Slopes of the relative error against width, per target and series; trained vs. Maurey."""
    df = _test_errors(tables)
    p = experiment.params
    per_target: dict[str, dict] = {}
    for target, dt in df.groupby("params.target", sort=False):
        per_target[str(target)] = {str(s): _series_summary(ds) for s, ds in dt.groupby("series", sort=False)}
    teacher = per_target.get("teacher", {})
    main = "relu" if "relu" in p["activations"] else p["activations"][0]
    summary: dict[str, Any] = {
        "confidence": CI_LEVEL,
        "n_seeds": int(df["run_id"].nunique() // max(1, df["params.target"].nunique())),
        "widths": [int(m) for m in sorted(df["width"].unique())],
        "activations": list(p["activations"]),
        "main_activation": main,
        "targets": list(per_target),
        "dim": p["dim"],
        "teacher_width": p["teacher_width"],
        "n_train": p["n_train"],
        "n_test": p["n_test"],
        "epochs": int(tables.runs["train.epochs"].iloc[0]) if "train.epochs" in tables.runs else None,
        "n_diverged": int(tables.runs["diverged"].sum()),
        "per_target": per_target,
        "maurey_slope": teacher.get("maurey", {}).get("slope"),
        "maurey_expected_slope": -1.0 if teacher else None,
        "trained_slope": teacher.get(main, {}).get("slope"),
        "trained_below_maurey": None,
        "maurey_constant": None,
        "maurey_draws": p["maurey_draws"],
        "slopes": {t: {s: v["slope"] for s, v in series.items() if s != "maurey_expected"}
                   for t, series in per_target.items()},
    }
    if teacher and "maurey" in teacher and main in teacher:
        maurey, trained = teacher["maurey"]["errors"], teacher[main]["errors"]
        below = [trained[m]["mean"] < maurey[m]["mean"] for m in maurey if m in trained]
        summary["trained_below_maurey"] = float(np.mean(below))
        widths = np.array(summary["widths"], dtype=float)
        expected = np.array([teacher["maurey_expected"]["errors"][str(int(m))]["mean"] for m in widths])
        summary["maurey_constant"] = float(np.mean(expected * widths))
    summary.update(_readings(tables, summary))
    return summary


def _readings(tables, summary: dict) -> dict:
    """The numbers the words branch on. Maurey's network is informative at a width where its mean
    relative error is below 1, that of predicting 0; there, how often the trained network of the main
    activation is better. Barron's bound for the bump; the trained networks' relative train and test
    errors at the largest width, with their parameter count m (d + 2) + 1 against n_train."""
    per_target, main, largest = summary["per_target"], summary["main_activation"], summary["widths"][-1]
    teacher = per_target.get("teacher", {})
    out: dict[str, Any] = {
        "barron_exponent": BARRON_EXPONENT,
        "n_runs": int(len(tables.runs)),
        "bump_barron_bound": bump_barron_bound(summary["dim"]) if "bump" in per_target else None,
        "maurey_informative_widths": [],
        "n_trained_below_maurey_informative": None,
        "largest_width": largest,
        "n_params_at_largest_width": largest * (summary["dim"] + 2) + 1,
    }
    if "maurey" in teacher:
        maurey = teacher["maurey"]["errors"]
        out["maurey_informative_widths"] = sorted(
            int(m) for m, e in maurey.items() if e["mean"] is not None and e["mean"] < 1)
        if main in teacher:
            trained = teacher[main]["errors"]
            out["n_trained_below_maurey_informative"] = sum(
                trained[str(m)]["mean"] is not None and trained[str(m)]["mean"] < maurey[str(m)]["mean"]
                for m in out["maurey_informative_widths"])
    df = tables.with_params()
    df = df[(df["split"] == "train") & (df["epoch"] == largest)]
    if "params.target" not in df:
        df["params.target"] = "teacher"
    out["errors_at_largest_width"] = {
        target: {act: {"train": mean_ci_dict(df[(df["params.target"] == target) & (df["metric"] == act)]["value"])["mean"],
                       "test": series[act]["errors"][str(largest)]["mean"]}
                 for act in summary["activations"] if act in series}
        for target, series in per_target.items()}
    return out


# ----------------------------------------------------------------------------- figures


def figures(tables, summary, experiment, plot, outdir: Path) -> list[str]:
    """error_vs_width: relative test error against width, log-log, one panel per target; each
    method with its own colour, marker and dashes (trained ReLU and soft-plus get near colours in
    some palettes). Dotted: relative error 1, that of predicting 0; on the teacher, dashed: Maurey's
    exact expectation C/m; on the other targets, a guide of slope -1 (Barron's rate)."""
    import seaborn as sns

    from mathdl import plots

    plots.setup(plot)
    df = _test_errors(tables)
    df = df[df["series"] != "maurey_expected"].copy()
    df["method"] = df["series"].map(LABELS)
    order = [LABELS[s] for s in ("maurey", *summary["activations"]) if LABELS[s] in set(df["method"])]
    palette = dict(zip(order, sns.color_palette(plot.palette, len(order))))
    markers = dict(zip(order, ("o", "s", "^", "D")))
    dashes = dict(zip(order, ("", (4, 2), (1, 1.5), (6, 2, 1, 2))))
    targets = summary["targets"]
    fig, axes = plots.new_figure(plot, ncols=len(targets))
    widths = np.array(summary["widths"], dtype=float)
    errorbar = ("ci", round(100 * plot.confidence))
    legend: dict[str, Any] = {}
    for ax, target in zip(axes, targets):
        sub = df[df["params.target"] == target]
        present = [o for o in order if o in set(sub["method"])]
        sns.lineplot(data=sub, x="width", y="error", hue="method", hue_order=present, style="method",
                     style_order=present, palette=palette, markers=markers, dashes=dashes,
                     errorbar=errorbar, ax=ax)
        ax.axhline(1.0, color="0.3", ls=":", lw=1, label="predicting 0 (relative error 1)")
        if target == "teacher" and summary["maurey_constant"] is not None:
            ax.plot(widths, summary["maurey_constant"] / widths, color="gray", ls="--", lw=1,
                    label=r"Maurey, expected $C_{\mathrm{M}}/m$")
        elif LABELS[summary["main_activation"]] in present:
            first = sub[(sub["method"] == LABELS[summary["main_activation"]]) & (sub["width"] == widths[0])]["error"].mean()
            ax.plot(widths, first * (widths / widths[0]) ** BARRON_EXPONENT, color="gray", ls="--", lw=1,
                    label=r"slope $-1$ (Barron's rate)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("width m")
        ax.set_ylabel(r"$\|\hat f - f\|^2 / \|f\|^2$ (test)")
        ax.set_title(target)
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    fig.legend(list(legend.values()), list(legend), loc="outside lower center", ncols=3, fontsize="small")
    return [plots.save(fig, outdir, "error_vs_width", plot)]


# ----------------------------------------------------------------------------- words


def context(experiment, summary) -> dict:
    """What the templates need beyond the summary: the methods' names and the table of slopes."""
    from mathdl.report import escape, fmt

    names = {s: LABELS[s].removeprefix("trained ") for s in LABELS}
    rows = []
    for target in summary["targets"]:  # in the figure's order (summary.json keeps its keys sorted)
        series = summary["slopes"][target]
        for name in [n for n in ("maurey", *summary["activations"]) if n in series]:
            ci = series[name]
            rows.append([escape(target), escape(LABELS.get(name, name)), fmt(ci["mean"]),
                         f"[{fmt(ci['ci_low'])}, {fmt(ci['ci_high'])}]",
                         fmt(summary["per_target"][target][name]["errors"][str(summary["widths"][-1])]["mean"])])
    return {"names": names, "activation_names": [names[a] for a in summary["activations"]], "slope_rows": rows}
