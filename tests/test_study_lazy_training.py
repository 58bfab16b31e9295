"""The lazy-training study end to end on tiny sizes, and its slope fit."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

import mathdl.config as cfg
from mathdl.tables import loglog_slope
from mathdl.studies import lazy_training as lt


@pytest.fixture
def registered(monkeypatch):
    from mathdl.studies import STUDIES, Study

    study = Study("lazy_training", lt.DEFAULTS, lt.analyze, lt.figures, lt.report, lt.compute, lt.PARAMS_SCHEMA, lt.SWEEPABLE)
    monkeypatch.setitem(STUDIES, "lazy_training", study)
    enum = cfg.load_schema()["$defs"]["experiment"]["properties"]["study"]
    monkeypatch.setitem(enum, "enum", [*enum["enum"], "lazy_training"])


TINY = {"widths": [16, 64, 256], "n_train": 8, "n_test": 16, "input_dim": 3, "epochs": 100, "lr": 0.2,
        "alphas": [0.1, 1.0, 10.0], "alpha_width": 32, "alpha_steps": 60,
        "deep_depth": 2, "deep_widths": [16, 64, 256], "deep_epochs": 60}


def _run(config):
    from mathdl.pipeline import run_parameters
    from mathdl.tables import Tables
    from mathdl.tasks import make_dataset

    plan = cfg.load_plan(config)
    exp = plan.experiment("lt")
    metrics, runs = [], []
    for group in exp.groups:
        result = lt.compute(group, make_dataset(group.task), device="cpu")
        metrics.append(result.metrics)
        runs.append(result.runs.merge(run_parameters(group), on=["run_id", "seed"]))
    return plan, exp, Tables(pd.concat(metrics, ignore_index=True), pd.concat(runs, ignore_index=True))


def test_slope_fit_recovers_a_power_law():
    x = np.array([64, 256, 1024, 4096])
    slope, intercept = loglog_slope(x, 3.0 * x**-0.5)
    assert slope == pytest.approx(-0.5, abs=1e-12) and math.exp(intercept) == pytest.approx(3.0, rel=1e-10)


def test_compute_analyze_figures_report(registered, tmp_path, root):
    config = {"device": "cpu", "experiments": {"lt": {"study": "lazy_training", "seeds": [0, 1], "params": TINY}}}
    plan, exp, tables = _run(config)
    assert list(tables.metrics.columns) == ["run_id", "epoch", "split", "metric", "value"]
    assert len(tables.runs) == 2 and not tables.runs["diverged"].any()
    pd.testing.assert_frame_equal(tables.metrics, _run(config)[2].metrics)  # deterministic given the seeds

    summary = json.loads(json.dumps(lt.analyze(tables, exp), allow_nan=False))
    assert summary["widths"] == [16, 64, 256]
    for key in ("weight_change_slope", "ntk_change_slope", "linearization_gap_slope"):
        assert summary[key]["mean"] < 0  # everything shrinks with width, even at these sizes
    # Our own ||theta_T - theta_0|| / ||theta_0|| (init redrawn from the seed) is the engine's.
    for mine, engine in zip(summary["weight_change"], summary["rel_dist_init_engine"]):
        assert mine["mean"] == pytest.approx(engine["mean"], rel=1e-9)
    changes = [c["mean"] for c in summary["alpha_weight_change"]]
    assert changes[0] > changes[1] > changes[2]  # lazier with the output scale

    names = lt.figures(tables, summary, exp, plan.plot, tmp_path)
    assert names == list(lt.FIGURES)
    for name in names:
        assert (tmp_path / f"{name}.pdf").stat().st_size > 0 and (tmp_path / f"{name}.png").exists()

    piece = lt.report(exp, summary, "figures/lt", "Lt")
    assert all(re.fullmatch(r"Lt[A-Za-z]+", k) for k in piece.macros)
    used = set(re.findall(r"\\(Lt[A-Za-z]+)", piece.section + piece.slides))
    assert used <= set(piece.macros)
    for name in names:
        assert f"figures/lt/{name}.pdf" in piece.section
    bib = (root / "report" / "references.bib").read_text()
    for keys in re.findall(r"\\cite[tp](?:\[[^\]]*\])?\{([^}]*)\}", piece.section):
        for key in keys.split(","):
            assert f"{{{key.strip()},\n" in bib, key
    assert "\\cite" not in piece.slides and 1 <= piece.slides.count("\\begin{frame}") <= 2


def test_deep_per_layer_changes_shrink_with_width(registered):
    config = {"device": "cpu", "experiments": {"lt": {"study": "lazy_training", "seeds": [0, 1], "params": TINY}}}
    _, exp, tables = _run(config)
    summary = json.loads(json.dumps(lt.analyze(tables, exp), allow_nan=False))
    layers = [str(l) for l in range(1, TINY["deep_depth"] + 2)]  # hidden layers and the output layer
    assert summary["deep_widths"] == TINY["deep_widths"] and summary["deep_layers"] == [int(l) for l in layers]
    change = summary["deep_layer_change"]
    assert sorted(change) == sorted(str(w) for w in TINY["deep_widths"])
    small, large = change[str(TINY["deep_widths"][0])], change[str(TINY["deep_widths"][-1])]
    for layer in layers:
        assert set(small[layer]) == {"mean", "ci_low", "ci_high"}
        assert 0 < large[layer]["mean"] < small[layer]["mean"], layer
        assert summary["deep_layer_change_slopes"][layer]["mean"] < 0, layer
    assert sorted(summary["deep_layer_change_slopes"]) == layers
    # They are the engine's per-layer relative distances, one per run, width and layer.
    deep = tables.metrics[tables.metrics["split"] == "deep"]
    assert len(deep) == 2 * len(TINY["deep_widths"]) * (len(layers) + 1)


def test_a_sweep_is_refused(registered):
    config = {"device": "cpu", "experiments": {"lt": {"study": "lazy_training", "seeds": [0], "params": TINY,
                                                      "sweep": {"params.lr": [0.1, 0.2]}}}}
    with pytest.raises(ValueError, match=r"sweeps nothing \(it computes its grids from params\), not params.lr"):
        _run(config)
