"""The approximation study: Maurey's sampled network, its 1/m rate, the slope fit, end to end."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

import mathdl.config as cfg
from mathdl.studies import approximation as ap
from mathdl.tables import loglog_slope


@pytest.fixture(scope="module")
def teacher():
    return ap.teacher_network(dim=4, width=2000, directions=3, rng=np.random.default_rng(0))


def test_teacher_is_scaled_to_unit_second_moment(teacher):
    x = np.random.default_rng(1).uniform(-1, 1, size=(20_000, 4))
    assert np.mean(ap.relu_network(x, *teacher) ** 2) == pytest.approx(1.0, rel=0.05)


def test_bump_has_unit_second_moment():
    x = np.random.default_rng(2).uniform(-1, 1, size=(200_000, 8))
    assert np.mean(ap.bump(x) ** 2) == pytest.approx(1.0, rel=0.02)


def test_maurey_network_is_an_unbiased_estimate_of_the_teacher(teacher):
    w, b, a = teacher
    x = np.random.default_rng(3).uniform(-1, 1, size=(50, 4))
    rng = np.random.default_rng(4)
    draws = 4000
    samples = np.stack([ap.relu_network(x, *ap.maurey_network(w, b, a, 5, rng)) for _ in range(draws)])
    f = ap.relu_network(x, w, b, a)
    se = samples.std(axis=0, ddof=1) / np.sqrt(draws)
    # Each point's mean over draws lies within 4.5 standard errors (a 1e-5 two-sided tail, 50 points).
    assert np.all(np.abs(samples.mean(axis=0) - f) < 4.5 * se)
    # The weights: sign(a_i) ||a||_1 / m, so the sampled path norm equals the teacher's.
    _, _, a_m = ap.maurey_network(w, b, a, 7, rng)
    np.testing.assert_allclose(np.abs(a_m), np.abs(a).sum() / 7)


def test_maurey_error_decays_like_one_over_m(teacher):
    w, b, a = teacher
    x = np.random.default_rng(5).uniform(-1, 1, size=(200, 4))
    f = ap.relu_network(x, w, b, a)
    rng = np.random.default_rng(6)
    widths = [4, 16, 64, 256, 1024]
    errors = [np.mean([np.mean((ap.relu_network(x, *ap.maurey_network(w, b, a, m, rng)) - f) ** 2)
                       for _ in range(1000)]) for m in widths]
    assert loglog_slope(widths, errors)[0] == pytest.approx(-1.0, abs=0.1)
    # ... and around its exact expectation C/m (within 12%: 1000 draws per width, heavy-tailed at small m).
    constant = ap.maurey_error_constant(w, b, a, x)
    np.testing.assert_allclose(np.array(errors) * widths, constant, rtol=0.12)


@pytest.mark.parametrize("exponent", [-1.0, -0.5, 2.0])
def test_slope_fit_recovers_a_known_power_law(exponent):
    x = np.array([2, 4, 8, 16, 32, 64, 128])
    assert loglog_slope(x, 3.0 * x**exponent)[0] == pytest.approx(exponent, abs=1e-12)
    noisy = 3.0 * x**exponent * np.exp(0.05 * np.random.default_rng(7).standard_normal(len(x)))
    assert loglog_slope(x, noisy)[0] == pytest.approx(exponent, abs=0.05)


# ----------------------------------------------------------------------------- the study end to end


@pytest.fixture
def registered(monkeypatch):
    from mathdl.studies import STUDIES, Study

    study = Study("approximation", ap.DEFAULTS, ap.analyze, ap.figures, ap.report, ap.compute, ap.PARAMS_SCHEMA)
    monkeypatch.setitem(STUDIES, "approximation", study)
    enum = cfg.load_schema()["$defs"]["experiment"]["properties"]["study"]
    monkeypatch.setitem(enum, "enum", [*enum["enum"], "approximation"])


def test_compute_analyze_figures_report(registered, tmp_path, root):
    from mathdl.pipeline import run_parameters
    from mathdl.tables import Tables
    from mathdl.tasks import make_dataset

    config = {"device": "cpu", "experiments": {"ap": {
        "study": "approximation", "seeds": [0, 1],
        "params": {"dim": 3, "widths": [2, 8, 32], "activations": ["relu", "softplus"], "teacher_width": 500,
                   "n_train": 100, "n_test": 200, "maurey_draws": 5},
        "train": {"epochs": 100, "lr": 0.02},
    }}}
    plan = cfg.load_plan(config)
    exp = plan.experiment("ap")
    assert len(exp.groups) == 2  # one per target
    metrics, runs = [], []
    for group in exp.groups:
        result = ap.compute(group, make_dataset(group.task), device="cpu")
        assert list(result.metrics.columns) == ["run_id", "epoch", "split", "metric", "value"]
        metrics.append(result.metrics)
        runs.append(result.runs.merge(run_parameters(group), on=["run_id", "seed"]))
    tables = Tables(pd.concat(metrics, ignore_index=True), pd.concat(runs, ignore_index=True))

    summary = json.loads(json.dumps(ap.analyze(tables, exp), allow_nan=False))
    assert summary["targets"] == ["teacher", "bump"] and summary["widths"] == [2, 8, 32]
    for key in ("maurey_slope", "trained_slope"):
        assert summary[key]["ci_low"] <= summary[key]["mean"] <= summary[key]["ci_high"]
    assert summary["maurey_slope"]["mean"] < -0.5
    assert 0.0 <= summary["trained_below_maurey"] <= 1.0
    assert set(summary["slopes"]["teacher"]) == {"maurey", "relu", "softplus"}
    assert set(summary["slopes"]["bump"]) == {"relu", "softplus"}
    errors = summary["per_target"]["teacher"]["relu"]["errors"]
    assert errors["32"]["mean"] < errors["2"]["mean"]

    names = ap.figures(tables, summary, exp, plan.plot, tmp_path)
    assert names == list(ap.FIGURES)
    for name in names:
        assert (tmp_path / f"{name}.pdf").stat().st_size > 0 and (tmp_path / f"{name}.png").exists()

    piece = ap.report(exp, summary, "figures/ap", "Ap")
    assert all(re.fullmatch(r"Ap[A-Za-z]+", k) for k in piece.macros)
    used = set(re.findall(r"\\(Ap[A-Za-z]+)", piece.section + piece.slides))
    assert used <= set(piece.macros)
    for name in names:
        assert f"figures/ap/{name}.pdf" in piece.section
    bib = (root / "report" / "references.bib").read_text()
    for keys in re.findall(r"\\cite[tp](?:\[[^\]]*\])?\{([^}]*)\}", piece.section):
        for key in keys.split(","):
            assert f"{{{key.strip()},\n" in bib, key
    assert "\\cite" not in piece.slides and piece.slides.count("\\begin{frame}") == 1
