"""The curse-of-dimensionality study: histograms, de Moivre's expectation, kNN, distances."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mathdl.config as cfg
from mathdl.studies import curse
from conftest import draw_figures
from helpers import words as _words


# ----------------------------------------------------------------------------- histograms


@pytest.mark.parametrize("dim, m", [(1, 10), (2, 5), (3, 4)])
def test_histogram_estimate_integrates_to_one(dim, m):
    x = np.random.default_rng(0).beta(2, 5, size=(300, dim))  # any density on the cube
    # Evaluate at the centre of every bin: the integral is the sum times the bin volume eps^d.
    axes = [(np.arange(m) + 0.5) / m] * dim
    centres = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, dim)
    assert curse.histogram_density(x, m, centres).sum() * m**-dim == pytest.approx(1.0, rel=1e-12)
    assert curse.bin_counts(x, m).sum() == 300


def test_points_on_the_upper_faces_fall_in_the_last_bin():
    x = np.array([[0.0, 1.0], [1.0, 0.999]])
    np.testing.assert_array_equal(curse.bin_index(x, 4), [[0, 3], [3, 3]])


def test_histogram_error_is_small_in_one_dimension_with_many_points():
    rng = np.random.default_rng(1)
    n, m = 100_000, 10
    x = rng.uniform(size=(n, 1))
    l1 = curse.uniform_l1_error(curse.bin_counts(x, m), n, 1, m)
    assert l1 < 0.02  # about sqrt(2 m / (pi n)) = 0.008
    estimate = curse.histogram_density(x, m, rng.uniform(size=(1000, 1)))
    assert np.abs(estimate - 1).mean() < 0.02


def test_exact_l1_error_agrees_with_a_fine_grid():
    rng = np.random.default_rng(2)
    x = rng.uniform(size=(50, 2))
    # The midpoint rule is exact for the piecewise constant |p_hat - 1| on a grid that refines the bins.
    g = (np.arange(40) + 0.5) / 40
    grid = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)
    numeric = np.abs(curse.histogram_density(x, 4, grid) - 1).mean()
    assert curse.uniform_l1_error(curse.bin_counts(x, 4), 50, 2, 4) == pytest.approx(numeric, rel=1e-12)


@pytest.mark.parametrize("n, dim, m", [(10, 1, 3), (1000, 3, 10), (1000, 5, 10), (50, 2, 2)])
def test_de_moivre_expectation_equals_the_binomial_sum(n, dim, m):
    q = m**-dim
    k = np.arange(n + 1)
    mad = np.sum(stats.binom.pmf(k, n, q) * np.abs(k - n * q))
    assert curse.expected_uniform_l1(n, dim, m) == pytest.approx(m**dim * mad / n, rel=1e-9)


def test_simulated_l1_error_matches_its_expectation():
    n, dim, m = 200, 2, 8
    rng = np.random.default_rng(3)
    l1 = [curse.uniform_l1_error(curse.bin_counts(rng.uniform(size=(n, dim)), m), n, dim, m) for _ in range(400)]
    se = np.std(l1, ddof=1) / math.sqrt(len(l1))
    assert abs(np.mean(l1) - curse.expected_uniform_l1(n, dim, m)) < 4 * se


def test_sparse_histograms_err_by_twice_the_empty_share():
    n, dim, m = 100, 3, 5  # n q = 0.8 <= 1
    counts = curse.bin_counts(np.random.default_rng(4).uniform(size=(n, dim)), m)
    share = curse.empty_share(len(counts), dim, m)
    assert curse.uniform_l1_error(counts, n, dim, m) == pytest.approx(2 * share, rel=1e-12)
    q = m**-dim
    assert curse.expected_uniform_l1(n, dim, m) == pytest.approx(2 * (1 - q) ** n, rel=1e-9)
    assert curse.expected_empty_share(n, dim, m) == pytest.approx((1 - q) ** n, rel=1e-12)
    # In very high dimension the histogram is as far from the density as any density can be.
    assert curse.expected_uniform_l1(1000, 100, 10) == pytest.approx(2.0)


# ----------------------------------------------------------------------------- kNN and distances


def test_knn_with_k_equal_to_n_predicts_the_mean():
    rng = np.random.default_rng(5)
    x, y = rng.uniform(size=(40, 3)), rng.standard_normal(40)
    np.testing.assert_allclose(curse.knn_predict(x, y, rng.uniform(size=(7, 3)), k=40), y.mean())


def test_one_nearest_neighbour_interpolates_the_training_points():
    rng = np.random.default_rng(6)
    x, y = rng.uniform(size=(30, 5)), rng.standard_normal(30)
    np.testing.assert_allclose(curse.knn_predict(x, y, x, k=1), y)


def test_target_has_variance_one_half_in_every_dimension():
    rng = np.random.default_rng(7)
    for dim in (1, 10, 100):
        f = curse.sum_of_sines(rng.uniform(size=(20_000, dim)))
        assert f.var() == pytest.approx(curse.TARGET_VARIANCE, rel=0.05)


def test_distances_concentrate():
    rng = np.random.default_rng(8)
    ratios = [curse.distance_ratio(rng.uniform(size=(500, d)), rng.uniform(size=(100, d))).mean()
              for d in (1, 10, 200)]
    assert ratios[0] < 0.01 < ratios[1] < ratios[2]
    assert ratios[2] > 0.75


def test_the_crossover_is_the_first_dimension_past_one_half():
    def per_dim(*means):
        return [{"dim": d, "error": {"mean": m}} for d, m in zip((1, 3, 8), means)]

    assert curse._crossover(per_dim(0.6, 0.9, 1.0), "error") == 1
    assert curse._crossover(per_dim(0.1, None, 0.7), "error") == 8  # a missing mean is no crossing
    assert curse._crossover(per_dim(0.1, 0.5, 0.4), "error") is None  # 1/2 itself is not past it


# ----------------------------------------------------------------------------- the study end to end


@pytest.fixture
def registered(monkeypatch):
    from mathdl.studies import STUDIES, Study

    study = Study("curse", curse.DEFAULTS, curse.analyze, curse.figures, compute=curse.compute,
                  params_schema=curse.PARAMS_SCHEMA)
    monkeypatch.setitem(STUDIES, "curse", study)
    enum = cfg.load_schema()["$defs"]["experiment"]["properties"]["study"]
    monkeypatch.setitem(enum, "enum", [*enum["enum"], "curse"])


def _independent_errors(seed: int, dim: int, n: int, n_test: int, k: int, m: int) -> tuple[float, float, float]:
    """(kNN MSE / Var f, histogram L1 / 2, mean nearest/farthest distance ratio) of one run, redrawn from
    the study's stream [seed, dim] and computed with scipy's distances and a full sort (noise 0)."""
    from scipy.spatial.distance import cdist

    def f(x):
        return np.sin(2 * np.pi * x).sum(axis=1) / math.sqrt(x.shape[1])

    rng = np.random.default_rng([seed, dim])
    x_train, x_test = rng.uniform(size=(n, dim)), rng.uniform(size=(n_test, dim))
    dist = cdist(x_test, x_train)
    nearest = np.argsort(dist, axis=1)[:, :k]
    relative_mse = np.mean((f(x_train)[nearest].mean(axis=1) - f(x_test)) ** 2) / 0.5  # Var f = 1/2
    _, counts = np.unique(np.minimum((x_train * m).astype(int), m - 1), axis=0, return_counts=True)
    q = float(m) ** -dim  # the uniform density's mass per bin; empty bins err by q each
    tv = (np.abs(counts / n - q).sum() + (float(m) ** dim - len(counts)) * q) / 2
    return relative_mse, tv, float((dist.min(axis=1) / dist.max(axis=1)).mean())


def test_compute_analyze_figures_report(registered, tiny_run, figured, root):
    plan, exp, tables, summary = tiny_run  # the summary as JSON, NaN refused
    assert len(exp.groups) == 4 and exp.plot.x == "params.dim"
    assert list(tables.metrics.columns) == ["run_id", "epoch", "split", "metric", "value"]
    assert summary["dims"] == [1, 3, 8, 40]
    assert summary["bins_needed_by_dim"] == {"1": 10.0, "3": 1e3, "8": 1e8, "40": 1e40}
    # Each dimension's errors, recomputed run by run, and the first dimension past 1/2: the kNN error
    # is 0.001, 0.11, 0.48, 0.74 at d = 1, 3, 8, 40, the histogram's 0.07, 0.82, 1.0, 1.0.
    dims = [1, 3, 8, 40]
    runs = np.array([[_independent_errors(seed, d, 200, 50, 5, 10) for d in dims] for seed in (0, 1)])
    knn, tv, ratio = runs.mean(axis=0).T  # means over the seeds
    np.testing.assert_allclose([summary["knn_relative_mse_by_dim"][str(d)] for d in dims], knn, rtol=1e-9)
    np.testing.assert_allclose([e["hist_tv"]["mean"] for e in summary["per_dim"]], tv, rtol=1e-9)
    np.testing.assert_allclose([summary["distance_ratio_by_dim"][str(d)] for d in dims], ratio, rtol=1e-9)
    assert summary["crossover_dimension"] == next(d for d, e in zip(dims, knn) if e > 0.5) == 40
    assert summary["histogram_crossover_dimension"] == next(d for d, e in zip(dims, tv) if e > 0.5) == 3
    assert summary["hist_l1_by_dim"]["40"] == pytest.approx(2.0)
    assert summary["max_hist_l1_theory_error"] < 0.2

    names, drawn, outdir = figured
    assert names == list(curse.FIGURES) == list(drawn)
    for name in names:
        assert (outdir / f"{name}.pdf").stat().st_size > 0 and (outdir / f"{name}.png").exists()
    errors, bins = drawn["error_vs_dim"].axes
    hist_line, knn_line, theory_line, level_line = [line for line in errors.get_lines() if len(line.get_xdata())]
    np.testing.assert_allclose([hist_line.get_ydata(), knn_line.get_ydata()], [tv, knn], rtol=1e-9)
    np.testing.assert_allclose(theory_line.get_ydata(), [curse.expected_uniform_l1(200, d, 10) / 2 for d in dims])
    assert list(level_line.get_ydata()) == [0.5, 0.5]
    np.testing.assert_allclose(bins.get_lines()[0].get_ydata(), [10.0**d for d in dims])
    (ax,) = drawn["distance_ratio"].axes
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), ratio, rtol=1e-9)

    from mathdl.templating import render_experiment

    piece = render_experiment(exp, summary)
    assert "first exceeds \\num{0.5} at $d=\\num{40}$" in piece.section
    assert "the histogram's total variation error at $d=\\num{3}$" in piece.section
    for name in names:
        assert f"figures/cu/{name}.pdf" in piece.section + piece.slides
    bib = (root / "report" / "references.bib").read_text()
    for keys in re.findall(r"\\cite[tp](?:\[[^\]]*\])?\{([^}]*)\}", piece.section):
        for key in keys.split(","):
            assert f"{{{key.strip()},\n" in bib, key
    assert "\\cite" not in piece.slides and piece.slides.count("\\begin{frame}") == 1


def test_k_larger_than_n_is_refused(registered):
    from mathdl.tasks import make_dataset

    config = {"device": "cpu", "experiments": {"cu": {
        "study": "curse", "seeds": [0], "params": {"n_train": 5, "k": 6}, "sweep": {}}}}
    group = cfg.load_plan(config).experiment("cu").groups[0]
    with pytest.raises(ValueError, match="params.k"):
        curse.compute(group, make_dataset(group.task), device="cpu")


# ----------------------------------------------------------------------------- the words (templates)

# The paper's text width (a4, 2.4 cm margins) and the text area of a beamer 16:9 frame (433 x 244 pt),
# in inches: a figure's fonts print at (their size) x (shown size / drawn size).
PAPER_TEXT_WIDTH_IN = (210 - 2 * 24) / 25.4
SLIDE_TEXT_WIDTH_IN, SLIDE_TEXT_HEIGHT_IN = 433.34 / 72.27, 244.07 / 72.27
MIN_PRINTED_PT = 7


def _printed_min_pt(fig, width_in: float, height_in: float = math.inf) -> float:
    """The smallest font of a figure as printed in a box of width x height (never enlarged)."""
    fig_w, fig_h = fig.get_size_inches()
    scale = min(1.0, width_in / fig_w, height_in / fig_h)
    fig.canvas.draw()
    texts = fig.findobj(lambda o: hasattr(o, "get_fontsize") and hasattr(o, "get_text"))
    return min(t.get_fontsize() for t in texts if t.get_visible() and t.get_text()) * scale


@pytest.fixture(scope="module")
def tiny_run():
    """d = 1, 3, 8, 40 at n = 200, k = 5, seeds 0 and 1: plan, experiment, tables and the summary (as JSON)."""
    import json

    from mathdl.pipeline import run_parameters
    from mathdl.tables import Tables

    plan = cfg.load_plan({"device": "cpu", "experiments": {"cu": {
        "study": "curse", "seeds": [0, 1], "params": {"n_train": 200, "n_test": 50, "k": 5},
        "sweep": {"params.dim": [1, 3, 8, 40]}}}})
    exp = plan.experiment("cu")
    metrics, runs = [], []
    for group in exp.groups:
        result = curse.compute(group, None, device="cpu")
        metrics.append(result.metrics)
        runs.append(result.runs.merge(run_parameters(group), on=["run_id", "seed"]))
    tables = Tables(pd.concat(metrics, ignore_index=True), pd.concat(runs, ignore_index=True))
    return plan, exp, tables, json.loads(json.dumps(curse.analyze(tables, exp), allow_nan=False))


@pytest.fixture(scope="module")
def figured(tiny_run, tmp_path_factory):
    """The tiny run's figures, drawn and saved once: names, figures by name, their folder."""
    plan, exp, tables, summary = tiny_run
    outdir = tmp_path_factory.mktemp("figures")
    return (*draw_figures(curse.figures, tables, summary, exp, plan.plot, outdir), outdir)


def _edited(summary, last=None, **changes):
    """A copy of the summary with top-level changes and, with ``last``, changes to the largest d's entry."""
    import json

    out = json.loads(json.dumps(summary))
    out.update(changes)
    if last:
        out["per_dim"][-1].update(last)
    return out


def test_random_averages_err_as_the_summary_says():
    """Averaging k training targets drawn anywhere: E(f_hat - f)^2 / Var f = 1 + (1 + noise^2 / Var f) / k."""
    rng = np.random.default_rng(0)
    k, noise, dim, m = 5, 0.3, 3, 200_000
    x_test, x_train = rng.uniform(size=(m, dim)), rng.uniform(size=(m, k, dim))
    targets = curse.sum_of_sines(x_train.reshape(-1, dim)).reshape(m, k) + noise * rng.standard_normal((m, k))
    relative = np.mean((targets.mean(axis=1) - curse.sum_of_sines(x_test)) ** 2) / curse.TARGET_VARIANCE
    expected = 1 + (curse.TARGET_VARIANCE + noise**2) / (k * curse.TARGET_VARIANCE)
    assert relative == pytest.approx(expected, rel=0.01)  # Monte-Carlo relative error about 0.3%


def test_words_of_a_tiny_run(tiny_run):
    _, exp, _, summary = tiny_run
    section, slides = _words(exp, summary)
    for text in (section, slides):
        assert "(s)" not in text and "left out of the means" not in text and "\\VAR" not in text
    assert section.lstrip().startswith(r"\subsection{cu}")
    assert "The relative kNN error first exceeds \\num{0.5} at $d=\\num{40}$" in section
    assert "the histogram's total variation error at $d=\\num{3}$" in section
    # every error grows with d here, and at d = 40 the kNN error (0.74) is below a random average's 1.2
    assert "$\\tfrac12\\norm{\\hat p-p}_1$ grows from \\num{0.07} to \\num{1}" in section
    assert "the relative kNN error grows from" in section and "distance ratio rises from" in section
    assert summary["random_average_relative_mse"] == pytest.approx(1.2)
    assert "=\\num{1.2}$;\nat $d=\\num{40}$ the nearest neighbours still do better than that." in section
    assert "exact targets" in section and "$n=\\num{200}$" in section and "\\num{2}~seeds" in section
    assert [len(re.findall(r"\\includegraphics", f)) for f in slides.split(r"\begin{frame}")[1:]] == [1]
    assert "figures/cu/slide_error_vs_dim.pdf" in slides and "above \\num{0.5} from $d=\\num{40}$" in slides


def test_words_for_other_outcomes(tiny_run):
    _, exp, _, summary = tiny_run
    section, slides = _words(exp, _edited(summary, crossover_dimension=None, histogram_crossover_dimension=None))
    assert "first exceeds" not in section and "stays at or below \\num{0.5} up to $d=\\num{40}$" in section
    assert "total variation error never does up to $d=\\num{40}$" in section
    assert "never above \\num{0.5}" in slides
    # errors that fall, or stay, with d
    first = summary["per_dim"][0]
    section, _ = _words(exp, _edited(summary, last={
        "knn_relative_mse": {"mean": 0.0001, "ci_low": 0.0, "ci_high": 0.0002},
        "distance_ratio": dict(first["distance_ratio"]), "hist_tv": {"mean": 0.01, "ci_low": 0, "ci_high": 0.02}}))
    assert "the relative kNN error falls from" in section and "kNN error grows" not in section
    assert "distance ratio stays at" in section and "rises" not in section
    assert "norm{\\hat p-p}_1$ falls from" in section
    # nearest neighbours no better than random ones
    section, _ = _words(exp, _edited(summary, last={"knn_relative_mse": {"mean": 1.3, "ci_low": 1.2, "ci_high": 1.4}}))
    assert "do no better than that" in section and "still do better" not in section
    # noisy targets, and n swept
    section, slides = _words(exp, _edited(summary, noise=0.5, n_train=None))
    assert "noisy targets ($\\sigma=\\num{0.5}$)" in section and "exact targets" not in section
    assert "$n=n$" in section + slides


def test_figures_print_readably(figured):
    names, drawn, _ = figured
    assert names == list(curse.FIGURES) == list(drawn)
    # as the templates include them; on the slide, a 0.6-width column and at most 0.78 of the height
    shown = {"error_vs_dim": (0.8 * PAPER_TEXT_WIDTH_IN,), "distance_ratio": (0.7 * PAPER_TEXT_WIDTH_IN,),
             "slide_error_vs_dim": (0.6 * SLIDE_TEXT_WIDTH_IN, 0.78 * SLIDE_TEXT_HEIGHT_IN)}
    for name, box in shown.items():
        assert _printed_min_pt(drawn[name], *box) >= MIN_PRINTED_PT, (name, _printed_min_pt(drawn[name], *box))
