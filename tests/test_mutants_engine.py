"""The engine, pinned where mutation testing found it loose (tests/README.md, "Mutation testing").

The memory estimates and what they decide (runs per chunk, points per evaluation batch), the
evaluation schedule's values, a run that is non-finite on one batch and finite on the next,
metrics NaN from the epoch of divergence on, a split without points, the group checks, the wall time,
the progress bar's words, and the groups that ``make_group`` builds.
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np
import pytest
import torch

from mathdl import engine, models
from mathdl.config import load_plan
from mathdl.tasks import make_dataset

TASK = {"input_dim": 6, "n_classes": 3, "teacher_width": 8, "n_train": 96, "n_val": 48, "n_test": 64}


def _group(seeds=(0, 1), task=None, model=None, train=None, per_run=None, **kw):
    return engine.make_group(
        seeds,
        task={**TASK, **(task or {})},
        model={"depth": 2, "width": 16, **(model or {})},
        train={"epochs": 4, "batch_size": 32, "eval_points": 5, **(train or {})},
        per_run=per_run,
        **kw,
    )


# ----------------------------------------------------------------------------- memory


def test_default_cpu_budget_is_a_quarter_of_the_ram_at_most_8_gib(monkeypatch):
    with open("/proc/meminfo") as fh:  # another reading of the same RAM: MemTotal in kB
        mem_total = next(int(line.split()[1]) for line in fh if line.startswith("MemTotal:")) * 1024
    expected = min(8 * 2**30, mem_total / 4) / 2**20
    assert engine.default_memory_budget_mb(torch.device("cpu")) == pytest.approx(expected, rel=1e-3)

    def ram(gib):
        return lambda name: {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": gib * 2**30 // 4096}[name]

    monkeypatch.setattr(engine.os, "sysconf", ram(64))
    assert engine.default_memory_budget_mb(torch.device("cpu")) == 8192  # capped
    monkeypatch.setattr(engine.os, "sysconf", ram(2))
    assert engine.default_memory_budget_mb(torch.device("cpu")) == 512

    def unknown(name):
        raise ValueError(name)

    monkeypatch.setattr(engine.os, "sysconf", unknown)  # RAM unknown: taken as 16 GiB
    assert engine.default_memory_budget_mb(torch.device("cpu")) == 4096


def _reference_bytes(model: dict, d: int, k: int, optimizer: str, early_stopping: bool, dtype: str, batch: int) -> int:
    """The estimate's documented meaning, counted independently: the parameters of the same
    network built with torch.nn; copies: parameters, gradients, initial values, the optimizer's
    state (SGD 0, momentum 1, Adam 2 per parameter), the best snapshot with early stopping and two
    temporaries; per point of a batch: pre-activation, post-activation, mask and gradient of
    every unit, the inputs counted as units."""
    widths = [d] + [model["width"]] * (2 * model["depth"] + 1 if model.get("residual") else model["depth"]) + [k]
    layers = [torch.nn.Linear(a, b) for a, b in zip(widths, widths[1:])]
    params = sum(p.numel() for layer in layers for p in layer.parameters())
    buffers = {"sgd": 0, "gd": 0, "momentum": 1, "nesterov": 1, "adagrad": 1, "adam": 2}[optimizer]
    copies = 1 + 1 + 1 + buffers + int(early_stopping) + 2
    units = sum(widths)
    return {"float32": 4, "float64": 8}[dtype] * (copies * params + 4 * units * batch)


@pytest.mark.parametrize(
    "model, optimizer, early_stopping, dtype, batch",
    [
        ({"depth": 2, "width": 16}, "sgd", False, "float32", 32),
        ({"depth": 3, "width": 7}, "adam", True, "float64", 5),
        ({"depth": 1, "width": 30}, "momentum", False, "float32", 1),
        ({"depth": 2, "width": 8, "residual": True}, "adagrad", True, "float32", 17),
    ],
)
def test_bytes_per_run_counts_what_its_docstring_says(model, optimizer, early_stopping, dtype, batch):
    group = _group(model=model, train={"optimizer": optimizer, "early_stopping": early_stopping, "dtype": dtype})
    arch = models.architecture(group.model, 6, 3)
    expected = _reference_bytes(model, 6, 3, optimizer, early_stopping, dtype, batch)
    assert engine.bytes_per_run(arch, group.train, batch) == expected


def _chunks_in_progress_bar(capsys, group, budget_mb) -> list[str]:
    engine.train(group, make_dataset(group.task), progress=True, memory_budget_mb=budget_mb)
    err = capsys.readouterr().err
    return sorted({part.split(":")[0].strip() for part in err.replace("\r", "\n").split("\n") if "runs" in part})


def test_runs_per_chunk_are_three_quarters_of_the_budget_over_the_estimate(capsys):
    # A chunk of k runs takes k * bytes_per_run, and may use 75% of the budget (the rest is for
    # evaluation). A budget of exactly k runs' worth gives chunks of k; a byte less, k - 1.
    group = _group(seeds=(0, 1, 2, 3, 4), train={"epochs": 1})
    arch = models.architecture(group.model, 6, 3)
    per_run = engine.bytes_per_run(arch, group.train, 32)
    name = f"adhoc/{group.group_id}"
    exact = 2 * per_run / 0.75 / 2**20
    assert _chunks_in_progress_bar(capsys, group, exact) == [
        f"{name} (1 runs, chunk 3/3)", f"{name} (2 runs, chunk 1/3)", f"{name} (2 runs, chunk 2/3)"]
    just_under = (2 * per_run - 1) / 0.75 / 2**20
    assert _chunks_in_progress_bar(capsys, group, just_under) == [f"{name} (1 runs, chunk {i}/5)" for i in range(1, 6)]
    assert _chunks_in_progress_bar(capsys, group, 1e-9) == [f"{name} (1 runs, chunk {i}/5)" for i in range(1, 6)]
    assert _chunks_in_progress_bar(capsys, group, None) == [f"{name} (5 runs)"]  # the default: all fit
    two = _group(seeds=(0, 1, 2, 3), train={"epochs": 1})  # two chunks are named as chunks too
    assert _chunks_in_progress_bar(capsys, two, exact) == [
        f"adhoc/{two.group_id} (2 runs, chunk 1/2)", f"adhoc/{two.group_id} (2 runs, chunk 2/2)"]


def _ensemble(m=2, width=16, eval_budget=1e9, dtype="float32", dev="cpu", depth=2):
    group = _group(seeds=tuple(range(m)), model={"width": width, "depth": depth}, train={"dtype": dtype})
    data = make_dataset(group.task)
    arch = models.architecture(group.model, data.x_train.shape[1], data.n_outputs)
    return engine._Ensemble(group.runs, group.train, arch, data, torch.device(dev), eval_budget=eval_budget)


def test_evaluation_batches_fit_the_budget_and_the_cpu_caches():
    # Points per no-grad batch: the budget over 4 activations of the widest layer per point and
    # run (float32: 4 bytes); on a CPU at most 2^22 / (M * widest) points (a few MB), but 32 at least.
    assert _ensemble(m=2, width=16, eval_budget=4 * 2 * 16 * 4 * 10).eval_chunk == 10
    assert _ensemble(m=2, width=16, eval_budget=4 * 2 * 16 * 4 * 10 - 1).eval_chunk == 9
    assert _ensemble(m=2, width=16, eval_budget=4 * 2 * 16 * 8 * 10, dtype="float64").eval_chunk == 10
    assert _ensemble(m=2, width=16, eval_budget=1).eval_chunk == 1  # at least one point
    assert _ensemble(m=2, width=16, eval_budget=1e12).eval_chunk == 2**22 // (2 * 16)  # the cache cap
    # the cap's floor: 2^22 // (M * widest) = 31 here (one hidden layer, so few parameters)
    assert _ensemble(m=1, width=2**17 + 1, depth=1, eval_budget=1e15).eval_chunk == 32
    widest_is_input = _ensemble(m=1, width=2, eval_budget=4 * 6 * 4 * 7)  # input_dim 6 > width 2
    assert widest_is_input.eval_chunk == 7


def test_results_do_not_depend_on_the_evaluation_batch():
    group = _group(train={"epochs": 2})
    data = make_dataset(group.task)
    tiny = engine.train(group, data, progress=False, memory_budget_mb=4 * 2 * 16 * 4 * 5 / 0.25 / 2**20 + 1)
    big = engine.train(group, data, progress=False)
    np.testing.assert_allclose(tiny.metrics["value"], big.metrics["value"], rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- schedule, checks, time


@pytest.mark.parametrize(
    "epochs, points, expected",
    [(100, 5, [0, 1, 5, 22, 100]), (1000, 5, [0, 1, 10, 100, 1000]), (1000, 4, [0, 1, 32, 1000]),
     (100, 3, [0, 1, 100]), (10, 2, [0, 1, 10]), (5, 1, [0, 1, 5])],
)
def test_eval_epochs_are_rounded_powers(epochs, points, expected):
    # points - 1 log-spaced epochs from 1 to `epochs`, epochs^(i / (points - 2)) for i = 0 .. points - 2,
    # rounded, with epoch 0 (one point or two: just epoch 1, then 0 and the last are added).
    assert engine.eval_epochs(epochs, points) == expected


def test_a_run_with_another_model_is_refused_even_when_its_training_agrees():
    group = _group()
    other = dataclasses.replace(group.runs[1], model=dataclasses.replace(group.model, width=17))
    bad = dataclasses.replace(group, runs=(group.runs[0], other))
    with pytest.raises(ValueError, match=f"run {other.run_id} does not share its group's shape"):
        engine.train(bad, make_dataset(group.task), progress=False)
    other_train = dataclasses.replace(group.runs[1], train=dataclasses.replace(group.train, epochs=5))
    with pytest.raises(ValueError, match="does not share its group's shape"):
        engine.train(dataclasses.replace(group, runs=(group.runs[0], other_train)), make_dataset(group.task), progress=False)


def test_wall_time_is_the_time_train_took():
    group = _group(seeds=(0,), train={"epochs": 1})
    data = make_dataset(group.task)
    before = time.perf_counter()
    result = engine.train(group, data, progress=False)
    outside = time.perf_counter() - before
    assert 0 < result.wall_time_s <= outside


def test_a_split_without_points_has_no_rows():
    r = engine.train(g := _group(task={"n_val": 0}), make_dataset(g.task), progress=False)
    assert set(r.metrics["split"]) == {"train", "test"}
    assert r.metrics["value"].notna().all()
    one = engine.train(g := _group(task={"n_val": 1}), make_dataset(g.task), progress=False)
    assert set(one.metrics["split"]) == {"train", "val", "test"}  # one point is a split


# ----------------------------------------------------------------------------- divergence


def _poisoned(group, row=40):
    """The group's data with one training point so large that every batch holding it has an
    infinite loss (its square overflows float32); the other batches are finite."""
    data = make_dataset(group.task)
    x = data.x_train.copy()
    x[row] = 1e30
    return dataclasses.replace(data, x_train=x)


@pytest.mark.parametrize("sync_each_step", [True, False], ids=["exact", "on-device"])
def test_a_run_non_finite_on_one_batch_stays_frozen_when_later_batches_are_finite(monkeypatch, sync_each_step):
    # Every run meets the poisoned point in epoch 1 and is frozen there; with three batches per
    # epoch most runs meet finite batches after it. They must stay frozen: the parameters after 5
    # epochs are those after 1, and every run is diverged at epoch 1.
    monkeypatch.setattr(engine, "_syncs_each_step", lambda dev: sync_each_step)
    train = {"loss": "mse", "eval_points": 20}
    seeds = (0, 1, 2, 3, 4, 5)
    one = engine.train(g1 := _group(seeds=seeds, train={**train, "epochs": 1}), _poisoned(g1), progress=False)
    five = engine.train(g5 := _group(seeds=seeds, train={**train, "epochs": 5}), _poisoned(g5), progress=False)
    assert five.runs["diverged"].all() and (five.runs["diverged_epoch"] == 1).all()
    for p1, p5 in zip(one.params, five.params):
        torch.testing.assert_close(p1, p5, rtol=0, atol=0, equal_nan=True)
    # From the epoch of divergence on every metric is NaN (a run that diverges in its last epoch
    # must not count in a mean of last-epoch errors); before it they are finite.
    m = five.metrics.query("split != 'train'")
    assert m.query("epoch < 1")["value"].notna().all() and (m["epoch"] < 1).any()
    assert m.query("epoch >= 1")["value"].isna().all() and (m["epoch"] > 1).any()
    at_one = one.metrics.query("split != 'train' and epoch == 1").reset_index(drop=True)
    assert at_one["value"].isna().all()


# ----------------------------------------------------------------------------- groups by hand


def test_make_group_builds_what_the_config_builds():
    cfg = {"experiments": {"e": {
        "study": "sweep", "seeds": [0, 1], "task": {**TASK, "label_noise": 0.1}, "model": {"depth": 2, "width": 16},
        "train": {"epochs": 4, "batch_size": 32, "eval_points": 5}, "sweep": {"train.lr": [0.01, 0.02]},
    }}}
    (experiment,) = load_plan(cfg).experiments
    (expected,) = experiment.groups
    group = _group(task={"label_noise": 0.1}, per_run=[{"lr": 0.01}, {"lr": 0.02}], experiment="e")
    assert (group.experiment, group.study, group.data_id, group.group_id) == (
        "e", "sweep", expected.data_id, expected.group_id)
    by_id = {r.run_id: r for r in expected.runs}
    assert len(group.runs) == 4
    for run in group.runs:
        # make_group names a point's keys as per_run does (a config: "train.lr")
        assert run.point == (("lr", run.train.lr),) and by_id[run.run_id].point == (("train.lr", run.train.lr),)
        assert run.train == by_id[run.run_id].train and run.task == by_id[run.run_id].task
    assert [(r.seed, r.train.lr) for r in group.runs] == [(0, 0.01), (1, 0.01), (0, 0.02), (1, 0.02)]
    with pytest.raises(ValueError, match=r"^train: unknown keys \['bogus'\]; valid: "):
        _group(train={"bogus": 1})


# ----------------------------------------------------------------------------- early stopping, one run


def test_a_single_runs_selected_epoch_off_the_schedule_gets_its_own_rows():
    """One run, early stopping, an evaluation schedule of epochs 0, 1 and 12: its best validation
    epoch (3) is not scheduled, so the metrics at it are recorded as an extra row set, one row per
    (split, metric) as at a scheduled epoch, all finite."""
    from mathdl.tables import Tables

    group = _group(seeds=(0,), task={"label_noise": 0.4, "n_train": 48}, model={"width": 64},
                   train={"early_stopping": True, "patience": 0, "eval_points": 2, "epochs": 12, "lr": 0.003,
                          "optimizer": "adam"})
    result = engine.train(group, make_dataset(group.task), progress=False)
    assert int(result.runs["selected_epoch"][0]) == 3
    rows = result.metrics.groupby("epoch")[["split", "metric"]].apply(lambda f: sorted(zip(f["split"], f["metric"])))
    assert sorted(rows.index) == [0, 1, 3, 12] and rows[3] == rows[12]
    assert result.metrics.query("epoch == 3")["value"].notna().all()
    selected = Tables(result.metrics, result.runs).selected()
    assert selected[["val_loss", "val_error", "test_loss", "test_error"]].notna().all().all()


def test_epochs_in_the_tables_are_integers():
    """Epochs are integers in both tables (parquet keeps the dtype; the analyses compare them
    with ==): the metrics' epoch, and the runs' selected, stopped and diverged epochs."""
    group = _group(seeds=(0, 1), train={"early_stopping": True, "patience": 1, "epochs": 3})
    result = engine.train(group, make_dataset(group.task), progress=False)
    assert result.metrics["epoch"].dtype == np.int64
    for column in ("selected_epoch", "stopped_epoch", "diverged_epoch"):
        assert result.runs[column].dtype == np.int64, column
    assert result.runs["diverged"].dtype == bool
    assert not result.runs["diverged"].any() and (result.runs["diverged_epoch"] == -1).all()  # -1: never diverged


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal of a machine without CUDA")
def test_cuda_on_a_machine_without_it_is_refused_in_one_line():
    with pytest.raises(RuntimeError) as info:
        engine.resolve_device("cuda")
    assert str(info.value) == "device: cuda was asked for, but torch sees no CUDA device"
    assert engine.resolve_device("auto") == torch.device("cpu")


@pytest.mark.parametrize(
    "task, train, message",
    [
        ({"kind": "regression"}, {"loss": "cross_entropy"},
         "train.loss: cross_entropy needs a classification task (task.kind is regression)"),
        ({"kind": "regression"}, {"loss": "hinge"}, "train.loss: hinge needs a classification task (task.kind is regression)"),
        ({"n_val": 0}, {"early_stopping": True},
         "train.early_stopping selects on the validation split: set task.n_val > 0"),
        ({}, {"dtype": "float16"}, f"unknown dtype 'float16'; valid: {', '.join(engine.DTYPES)}"),
    ],
)
def test_check_refuses_a_group_that_cannot_train_in_one_line(task, train, message):
    group = _group(seeds=(0,), task=task, train=train)
    with pytest.raises(ValueError) as info:
        engine.train(group, make_dataset(group.task), progress=False)
    assert str(info.value) == message
    assert len(engine.DTYPES) > 1


def test_make_group_names_every_valid_key_of_a_section():
    from mathdl.config import load_schema

    valid = ", ".join(load_schema()["$defs"]["train"]["properties"])
    with pytest.raises(ValueError) as info:
        _group(train={"bogus": 1, "lrr": 2})
    assert str(info.value) == f"train: unknown keys ['bogus', 'lrr']; valid: {valid}"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_targets_are_on_the_runs_dtype_and_labels_stay_integers(dtype):
    # Targets of any float type (the teacher's are float32; a group's own loader may give float64)
    # are held in the run's dtype on the device, like the inputs; class labels stay int64.
    want, other = getattr(torch, dtype), np.float64 if dtype == "float32" else np.float32
    group = _group(task={"kind": "regression", "n_classes": 2}, train={"dtype": dtype, "loss": "mse"})
    data = make_dataset(group.task)
    data = dataclasses.replace(data, **{f"y_{s}": getattr(data, f"y_{s}").astype(other) for s in ("train", "val", "test")})
    arch = models.architecture(group.model, data.x_train.shape[1], data.n_outputs)
    ens = engine._Ensemble(group.runs, group.train, arch, data, torch.device("cpu"), eval_budget=1e9)
    assert {t.dtype for t in ens.y.values()} == {want} and {t.dtype for t in ens.x.values()} == {want}
    labels = _ensemble(dtype=dtype)
    assert {t.dtype for t in labels.y.values()} == {torch.int64}


# ----------------------------------------------------------------------------- malloc and prefetching


# Run in a fresh process: malloc's settings belong to the process, and one that a test (or a
# mutation tester's parent process) set earlier would hide a setting missing here. The child gets
# this process's sys.path (so it imports the same mathdl, a mutation tester's copy included) and
# environment.
_MALLOC_PROBE = """
import ctypes, json
from mathdl import engine


def heap():
    # the brk heap's span: the kernel may list it as several adjacent [heap] mappings
    spans = [[int(v, 16) for v in line.split()[0].split("-")]
             for line in open("/proc/self/maps") if line.rstrip().endswith("[heap]")]
    return [min(lo for lo, _ in spans), max(hi for _, hi in spans)] if spans else [0, 0]


kept = engine.keep_freed_memory()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
below, above = libc.malloc(2**28 - 2**20), libc.malloc(2**28 + 2**20)
lo, hi = heap()
libc.free(above)
libc.free(below)
print(json.dumps({"kept": kept, "below_in_heap": lo <= below < hi, "above_in_heap": lo <= above < hi,
                  "trimmed": heap() != [lo, hi]}))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads the process's memory map (Linux)")
def test_freed_memory_stays_with_the_process_up_to_256_mb(monkeypatch):
    """keep_freed_memory's two malloc settings, seen in a fresh process's memory map: a block under
    256 MB comes from the heap (not a mapping of its own, which glibc returns to the OS on free),
    one above it does not, and freeing the heap's top block leaves the heap as large as it was."""
    import ctypes
    import json
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, "-c", _MALLOC_PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "kept": True, "below_in_heap": True, "above_in_heap": False, "trimmed": False}
    # the setting is asked for once per process
    monkeypatch.setattr(engine, "_KEPT", None)
    calls = []
    libc = ctypes.CDLL("libc.so.6")
    monkeypatch.setattr(ctypes, "CDLL", lambda name: calls.append(name) or libc)
    assert engine.keep_freed_memory() is True
    engine.keep_freed_memory()
    assert calls == ["libc.so.6"]


def test_prefetched_epoch_orders_are_the_orders_drawn_in_turn():
    """A GPU draws the next epoch's orders on a thread while the current one trains; the orders
    (and the generators' states after them) are those drawn one epoch at a time."""
    cpu = torch.device("cpu")
    gens = [torch.Generator().manual_seed(s) for s in (0, 1, 2)]
    want = [torch.stack([torch.randperm(10, generator=g) for g in gens]) for _ in range(4)]
    pre = engine._EpochOrders([torch.Generator().manual_seed(s) for s in (0, 1, 2)], 10, cpu, prefetch=True)
    try:
        got = [pre.next() for _ in range(4)]
    finally:
        pre.close()
    assert pre.pool._shutdown
    for g, w in zip(got, want):
        assert torch.equal(g, w)
    # one epoch more was drawn ahead of time: the generators are where five epochs leave them
    fifth = torch.stack([torch.randperm(10, generator=g) for g in gens])
    assert torch.equal(pre.pending.result(), fifth)
    plain = engine._EpochOrders([torch.Generator().manual_seed(0)], 10, cpu, prefetch=False)
    assert plain.pool is None and torch.equal(plain.next(), want[0][:1])


def test_norms_and_distances_from_initialization_are_those_of_the_parameters():
    """weight_norm and rel_dist_init, in total and per layer (a layer's weights and biases), at the
    last epoch: recomputed from the final parameters and the runs' initial ones."""
    group = _group(seeds=(0, 1, 2), train={"epochs": 3, "lr": 0.2, "dtype": "float64"})
    data = make_dataset(group.task)
    result = engine.train(group, data, progress=False)
    arch = models.architecture(group.model, data.input_dim, data.n_outputs)
    _, init = engine.initial_params(group.runs, arch, torch.float64, torch.device("cpu"))
    final = result.params
    m = result.metrics
    last = m[(m.epoch == 3) & (m.split == "train")].pivot(index="run_id", columns="metric", values="value")
    last = last.loc[[r.run_id for r in group.runs]]

    def sq(ts):
        return sum(t.flatten(1).pow(2).sum(1) for t in ts).numpy()

    n_layers = len(final) // 2
    assert n_layers == 3
    for l in range(n_layers):
        w, b = 2 * l, 2 * l + 1
        np.testing.assert_allclose(last[f"weight_norm_layer{l + 1}"], np.sqrt(sq([final[w], final[b]])), rtol=1e-10)
        dist, start = sq([final[w] - init[w], final[b] - init[b]]), sq([init[w], init[b]])
        np.testing.assert_allclose(last[f"rel_dist_init_layer{l + 1}"], np.sqrt(dist / start), rtol=1e-10)
    np.testing.assert_allclose(last["weight_norm"], np.sqrt(sq(final)), rtol=1e-10)
    dist = sq([f - i for f, i in zip(final, init)])
    np.testing.assert_allclose(last["rel_dist_init"], np.sqrt(dist / sq(init)), rtol=1e-10)
    assert (last["rel_dist_init"] > 0.01).all()  # training moved them: the check is not of zeros
