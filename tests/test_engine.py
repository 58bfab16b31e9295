"""The engine's contract: tidy tables, determinism, isolation of runs, divergence, chunking,
early stopping on the validation split, metrics, devices and the progress bar."""

from __future__ import annotations

import dataclasses
import numpy as np
import pandas as pd
import pytest
import torch

from mathdl import engine
from mathdl.config import PER_RUN_TRAIN_KEYS, load_plan
from mathdl.tasks import make_dataset

TASK = {
    "input_dim": 6,
    "n_classes": 3,
    "teacher_width": 8,
    "n_train": 96,
    "n_val": 48,
    "n_test": 64,
    "label_noise": 0.1,
}


def small_group(seeds=(0, 1), task=None, model=None, train=None, per_run=None):
    return engine.make_group(
        seeds,
        task={**TASK, **(task or {})},
        model={"depth": 2, "width": 16, **(model or {})},
        train={"epochs": 12, "batch_size": 32, "eval_points": 6, **(train or {})},
        per_run=per_run,
    )


def fit(group, **kw):
    return engine.train(group, make_dataset(group.task), progress=False, **kw)


def run_values(result, run_id):
    m = result.metrics
    return m[m.run_id == run_id].drop(columns="run_id").reset_index(drop=True)


def test_tables_follow_the_contract():
    g = small_group(per_run=[{"lr": 0.05}, {"lr": 0.1}])
    r = fit(g)
    assert list(r.metrics.columns) == ["run_id", "epoch", "split", "metric", "value"]
    assert list(r.runs.columns) == ["run_id", "seed", "diverged", "diverged_epoch", "selected_epoch", "stopped_epoch"]
    assert r.runs["run_id"].tolist() == [run.run_id for run in g.runs]
    assert sorted(r.metrics["epoch"].unique()) == engine.eval_epochs(12, 6)
    assert set(r.metrics["split"]) == {"train", "val", "test"}
    per_split = r.metrics.groupby("split")["metric"].unique().map(set)
    assert per_split["test"] == per_split["val"] == {"loss", "error"}
    assert per_split["train"] == {"loss", "error", "weight_norm", "rel_dist_init"} | {
        f"{kind}_layer{l}" for kind in ("weight_norm", "rel_dist_init") for l in (1, 2, 3)
    }
    assert not r.metrics.duplicated(["run_id", "epoch", "split", "metric"]).any()
    assert (r.runs["selected_epoch"] == 12).all() and (r.runs["stopped_epoch"] == -1).all()
    assert r.device == "cpu" and r.wall_time_s > 0
    assert [tuple(p.shape) for p in r.params] == [
        (4, 16, 6),
        (4, 16, 1),
        (4, 16, 16),
        (4, 16, 1),
        (4, 3, 16),
        (4, 3, 1),
    ]


def test_training_learns():
    r = fit(small_group(train={"optimizer": "adam", "lr": 0.01, "epochs": 30}))
    err = r.metrics.query("split == 'test' and metric == 'error'").groupby("epoch")["value"].mean()
    assert err.iloc[-1] < err.iloc[0] - 0.2


def test_two_runs_give_identical_tables():
    g = small_group(train={"optimizer": "momentum"}, per_run=[{"dropout": 0.2}, {"lr": 0.1}])
    a, b = fit(g), fit(g)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    pd.testing.assert_frame_equal(a.runs, b.runs)


def test_a_run_in_a_group_gets_what_it_gets_alone():
    """float32, the default: the batch of models changes nothing for any one of them."""
    per_run = [{"lr": 0.05, "dropout": 0.1}, {"lr": 0.2, "weight_decay": 1e-3}]
    g = small_group(seeds=(0, 1, 2), train={"optimizer": "nesterov"}, per_run=per_run)
    together = fit(g)
    for i, run in enumerate(g.runs):
        alone = fit(dataclasses.replace(g, runs=(run,)))
        pd.testing.assert_frame_equal(
            run_values(together, run.run_id), run_values(alone, run.run_id), check_exact=False, rtol=1e-5, atol=1e-6
        )
        for p_group, p_alone in zip(together.params, alone.params):
            torch.testing.assert_close(p_group[i], p_alone[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("sync_each_step", [True, False], ids=["exact", "on-device"])
def test_a_diverging_run_is_frozen_and_the_others_go_on(monkeypatch, sync_each_step):
    monkeypatch.setattr(engine, "_syncs_each_step", lambda dev: sync_each_step)
    healthy = [{"lr": 0.05}, {"lr": 0.1}]
    g_all = small_group(seeds=(0,), train={"loss": "mse"}, per_run=healthy + [{"lr": 1e6}])
    g_ok = small_group(seeds=(0,), train={"loss": "mse"}, per_run=healthy)
    r_all, r_ok = fit(g_all), fit(g_ok)
    runs = r_all.runs.set_index("run_id")
    bad = g_all.runs[2].run_id
    assert runs.loc[bad, "diverged"] and runs.loc[bad, "diverged_epoch"] >= 1
    assert not runs.drop(index=bad)["diverged"].any()
    diverged_epoch = int(runs.loc[bad, "diverged_epoch"])
    after = r_all.metrics.query("run_id == @bad and epoch > @diverged_epoch")
    assert len(after) > 0 and after["value"].isna().all()
    for run in g_ok.runs:
        pd.testing.assert_frame_equal(
            run_values(r_all, run.run_id), run_values(r_ok, run.run_id), check_exact=False, rtol=1e-5, atol=1e-6
        )
    if sync_each_step:  # frozen at the step its loss became non-finite: its parameters stay finite
        assert all(torch.isfinite(p[2]).all() for p in r_all.params)


def test_chunks_give_the_same_tables(monkeypatch):
    g = small_group(seeds=(0, 1, 2), per_run=[{"lr": 0.05}, {"lr": 0.1, "dropout": 0.1}])
    whole = fit(g)
    chunks = []
    fit_chunk = engine._Ensemble.fit
    monkeypatch.setattr(engine._Ensemble, "fit", lambda self, *a: chunks.append(self.m) or fit_chunk(self, *a))
    arch = engine.models.architecture(g.model, TASK["input_dim"], TASK["n_classes"])
    per_run = engine.bytes_per_run(arch, g.train, 32)
    parts = fit(g, memory_budget_mb=2.5 * per_run / 0.75 / 2**20)
    assert chunks == [2, 2, 2]
    pd.testing.assert_frame_equal(whole.runs, parts.runs)
    pd.testing.assert_frame_equal(whole.metrics, parts.metrics, check_exact=False, rtol=1e-5, atol=1e-6)


def test_early_stopping_selects_on_validation_only():
    train = {"early_stopping": True, "eval_points": 100, "optimizer": "adam", "lr": 0.03, "epochs": 15}
    g = small_group(task={"label_noise": 0.4}, train=train)
    data = make_dataset(g.task)
    r = engine.train(g, data, progress=False)
    val = r.metrics.query("split == 'val' and metric == 'loss'").pivot(index="epoch", columns="run_id", values="value")
    assert list(val.index) == list(range(16))  # every epoch scheduled here
    for run in g.runs:
        selected = r.runs.set_index("run_id").loc[run.run_id, "selected_epoch"]
        assert selected == val[run.run_id].idxmin()
    # The test split plays no part: other test labels, the same selection.
    rng = np.random.default_rng(0)
    shuffled = dataclasses.replace(data, y_test=rng.permutation(data.y_test))
    r2 = engine.train(g, shuffled, progress=False)
    pd.testing.assert_series_equal(r.runs["selected_epoch"], r2.runs["selected_epoch"])


def test_selected_epoch_metrics_are_kept_beside_the_final_ones():
    train = {"early_stopping": True, "eval_points": 3, "optimizer": "adam", "lr": 0.05, "epochs": 20}
    r = fit(small_group(seeds=(0, 1, 2), task={"label_noise": 0.4}, train=train))
    kinds = r.metrics.assign(kind=r.metrics["split"] + "/" + r.metrics["metric"])
    assert (r.runs["selected_epoch"] < 20).any()
    for run_id, selected in r.runs.set_index("run_id")["selected_epoch"].items():
        at_selected = set(kinds.query("run_id == @run_id and epoch == @selected")["kind"])
        assert at_selected == set(kinds.query("run_id == @run_id and epoch == 20")["kind"])


def test_patience_stops_a_run_and_freezes_it():
    train = {"early_stopping": True, "patience": 2, "eval_points": 100, "optimizer": "adam", "lr": 0.05, "epochs": 30}
    r = fit(small_group(task={"label_noise": 0.5, "n_train": 64}, model={"width": 64}, train=train))
    runs = r.runs.set_index("run_id")
    assert (runs["stopped_epoch"] > 0).any()
    for run_id, row in runs.iterrows():
        if row["stopped_epoch"] > 0:
            assert row["stopped_epoch"] == row["selected_epoch"] + 2
            later = r.metrics.query("run_id == @run_id and epoch >= @row.stopped_epoch")
            assert (later.groupby(["split", "metric"])["value"].nunique() == 1).all()


def test_early_stopping_needs_a_validation_split():
    with pytest.raises(ValueError, match="n_val"):
        fit(small_group(task={"n_val": 0}, train={"early_stopping": True}))


def test_parameter_metrics():
    r = fit(small_group(seeds=(3,)))
    m = r.metrics.query("split == 'train'").pivot(index="epoch", columns="metric", values="value")
    assert (m.loc[0, [c for c in m.columns if c.startswith("rel_dist_init")]] == 0).all()
    assert m.loc[12, "rel_dist_init"] > 0
    layers = [c for c in m.columns if c.startswith("weight_norm_layer")]
    np.testing.assert_allclose((m[layers] ** 2).sum(axis=1), m["weight_norm"] ** 2, rtol=1e-5)
    final_norm = torch.sqrt(sum((p[0].double() ** 2).sum() for p in r.params)).item()
    assert m.loc[12, "weight_norm"] == pytest.approx(final_norm, rel=1e-5)


def test_regression_task_and_full_batch():
    r = fit(
        small_group(task={"kind": "regression", "n_classes": 2}, train={"loss": "mse", "optimizer": "gd", "lr": 0.1})
    )
    err = r.metrics.query("metric == 'error'")
    loss = r.metrics.query("metric == 'loss'")
    np.testing.assert_array_equal(err["value"].to_numpy(), loss["value"].to_numpy())
    test = loss.query("split == 'test'").groupby("epoch")["value"].mean()
    assert test.iloc[-1] < test.iloc[0]


def test_loss_must_suit_the_task():
    with pytest.raises(ValueError, match="classification"):
        fit(small_group(task={"kind": "regression"}, train={"loss": "hinge"}))


def test_devices():
    assert engine.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="valid: auto, cpu, cuda"):
        engine.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA"):
            engine.resolve_device("cuda")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_gives_the_cpu_tables():
    g = small_group(train={"dtype": "float64"}, per_run=[{"dropout": 0.1}, {"lr": 0.1}])
    data = make_dataset(g.task)
    cpu, gpu = (engine.train(g, data, device=d, progress=False) for d in ("cpu", "cuda"))
    assert gpu.device.startswith("cuda")
    pd.testing.assert_frame_equal(cpu.metrics, gpu.metrics, check_exact=False, rtol=1e-8, atol=1e-9)


def test_progress_bar_is_quiet_off_a_terminal(capsys):
    g = small_group(seeds=(0,), train={"epochs": 3})
    engine.train(g, make_dataset(g.task), progress=None)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_make_group_ids_match_the_config_and_per_run_keys_share_a_group():
    cfg = {
        "experiments": {
            "e": {
                "study": "sweep",
                "seeds": [0, 1],
                "task": TASK,
                "model": {"depth": 2, "width": 16},
                "train": {"optimizer": "adam", "epochs": 12, "batch_size": 32, "eval_points": 6},
                "sweep": {"train.lr": [0.01, 0.02], "train.dropout": [0.0, 0.3]},
            }
        }
    }
    (experiment,) = load_plan(cfg).experiments
    assert len(experiment.groups) == 1 and len(experiment.groups[0].runs) == 8
    g = small_group(train={"optimizer": "adam"}, per_run=[{"lr": 0.01, "dropout": 0.0}])
    assert g.group_id == experiment.groups[0].group_id
    assert {r.run_id for r in g.runs} <= {r.run_id for r in experiment.groups[0].runs}
    assert set(PER_RUN_TRAIN_KEYS) >= {"lr", "momentum", "weight_decay", "l1", "dropout"}
    with pytest.raises(ValueError, match="per_run may set only"):
        small_group(per_run=[{"epochs": 3}])


@pytest.mark.parametrize("epochs, points", [(1, 2), (10, 2), (100, 3), (100, 20), (7, 50)])
def test_eval_schedule_starts_at_zero_and_ends_at_the_last_epoch(epochs, points):
    from mathdl.engine import eval_epochs

    schedule = eval_epochs(epochs, points)
    assert schedule[0] == 0 and schedule[-1] == epochs
    assert schedule == sorted(set(schedule))
    assert len(schedule) <= max(points, 2) + 1
