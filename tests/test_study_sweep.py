"""The generic sweep study: figures that show every swept key (checked from what they plot and
from the drawn legends and panel titles), means over seeds only, early-stopped errors read
independently from the long metrics table, words that name every swept key and whole points
(an image network's width as its width parameter k), and the shared axis helpers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import mathdl.config as cfg
from mathdl.engine import eval_epochs
from mathdl.report import key_name
from mathdl.spec import PlotConfig
from mathdl.studies import sweep
from mathdl.studies.sweep import layout as layouts
from mathdl.studies.sweep import plotting
from helpers import words

KEYS = ["model.depth", "model.width", "task.label_noise"]
EPOCHS = 12
THREE_KEYS = {
    "study": "sweep", "seeds": [0, 1],
    "task": {"input_dim": 3, "n_train": 32, "n_val": 32, "n_test": 64},
    "train": {"epochs": EPOCHS, "batch_size": 8, "eval_points": 4, "early_stopping": True},
    "sweep": {"model.depth": [1, 2], "model.width": [4, 8], "task.label_noise": [0.0, 0.3]},
}


def _run(experiment: dict):
    """Train every group of a one-experiment plan; the tables as the workflow writes them."""
    import torch

    from mathdl.pipeline import TRAINERS, run_parameters
    from mathdl.tables import Tables
    from mathdl.tasks import make_dataset

    torch.set_num_threads(1)
    plan = cfg.load_plan({"device": "cpu", "experiments": {"exp": experiment}})
    exp = plan.experiment("exp")
    metrics, runs = [], []
    for group in exp.groups:
        result = TRAINERS[group.model.arch](group, make_dataset(group.task), device="cpu")
        metrics.append(result.metrics)
        runs.append(result.runs.merge(run_parameters(group), on=["run_id", "seed"]))
    tables = Tables(pd.concat(metrics, ignore_index=True), pd.concat(runs, ignore_index=True))
    summary = json.loads(json.dumps(sweep.analyze(tables, exp), allow_nan=False))  # as summary.json holds it
    # The figures read runs.parquet, which is the per-run table (final and selected errors added).
    return plan, exp, Tables(tables.metrics, tables.per_run()), summary


@pytest.fixture(scope="module")
def three_keys():
    return _run(THREE_KEYS)


def _draw(run, tmp_path, drawn):
    plan, exp, tables, summary = run
    names = sweep.figures(tables, summary, exp, PlotConfig(**plan.resolved["plot"]), tmp_path)
    assert names == list(sweep.FIGURES)
    assert all((tmp_path / f"{n}.pdf").is_file() for n in names)
    return drawn


def _at(tables, epochs: pd.Series, split: str = "test") -> pd.Series:
    """Each run's error on ``split`` at the given epoch (run_id -> epoch), from the long table."""
    m = tables.metrics
    m = m[(m["split"] == split) & (m["metric"] == "error")]
    m = m[m["epoch"] == m["run_id"].map(epochs)]
    assert m["run_id"].is_unique
    return m.set_index("run_id")["value"]


def _texts(fig) -> str:
    """Everything a reader sees as words on a figure: legend entries, panel titles, axis labels."""
    parts = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    for ax in fig.axes:
        if ax.get_visible():
            parts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
    return " | ".join(parts)


# ----------------------------------------------------------------------------- figures


def test_three_key_figures_name_every_swept_key(three_keys, tmp_path, drawn):
    plan, exp, tables, summary = three_keys
    figs = _draw(three_keys, tmp_path, drawn)
    data, layout = plotting.error_data(tables, summary, exp)
    assert sorted(layout.keys()) == sorted(KEYS)  # every varied key on the axis or a channel
    assert layout.x == "model.depth" and layout.hue == ("model.width",) and layout.col == ("task.label_noise",)
    text = _texts(figs["error_vs_x"])
    for key in KEYS:
        assert key_name(key) in text, (key, text)
    # The facets are the values of the column key; the legend's colour entries the values of the colour key.
    titles = {ax.get_title() for ax in figs["error_vs_x"].axes if ax.get_visible()}
    assert titles == {"label noise = 0", "label noise = 0.3"}
    legend = [t.get_text() for t in figs["error_vs_x"].legends[0].get_texts()]
    assert legend[:3] == ["width", "4", "8"]

    curves, curve_layout = plotting.curve_data(tables, summary, exp)
    assert sorted(curve_layout.keys()) == sorted(["epoch", *KEYS])
    text = _texts(figs["learning_curves"])
    for key in KEYS:
        assert key_name(key) in text, (key, text)
    assert len([ax for ax in figs["learning_curves"].axes if ax.get_visible()]) == 4  # noise x width panels


def test_each_drawn_point_is_a_mean_over_the_seeds_of_one_sweep_point(three_keys, tmp_path, drawn):
    plan, exp, tables, summary = three_keys
    data, layout = plotting.error_data(tables, summary, exp)
    runs = tables.runs.set_index("run_id")
    selected = _at(tables, runs["selected_epoch"], "test")
    test = data[data["split"] == "test"]
    assert len(test) == 8  # 2 x 2 x 2 points, none merged
    for row in test.to_dict("records"):
        members = runs.loc[list(row["runs"])]
        assert len(members) == len(exp.seeds) == row["n_seeds"]
        for key in KEYS:  # one full point: every swept key has its row's value in each averaged run
            assert (members[key] == row[key]).all()
        assert row["mean"] == pytest.approx(selected.loc[list(row["runs"])].mean())
    # No two rows share a place in the figure: nothing is averaged while drawing.
    place = ["col", "row", "hue", "style", "split", "model.depth"]
    assert not data.duplicated(place).any()
    # The drawn lines are these means: in each panel, one line per colour and split.
    figs = _draw(three_keys, tmp_path, drawn)
    for ax in figs["error_vs_x"].axes:
        here = data[data["col"] == ax.get_title()]
        drawn_y = sorted(tuple(np.round(line.get_ydata(), 12)) for line in ax.get_lines())
        expected = sorted(tuple(np.round(g.sort_values("model.depth")["mean"].to_numpy(), 12))
                          for _, g in here.groupby(["hue", "split"]))
        assert drawn_y == expected


def test_learning_curves_average_the_schedule_epochs_over_all_runs_of_a_point(three_keys):
    plan, exp, tables, summary = three_keys
    curves, _ = plotting.curve_data(tables, summary, exp)
    schedule = eval_epochs(EPOCHS, 4)
    assert sorted(curves["epoch"].unique()) == schedule
    assert (curves["n_seeds"] == len(exp.seeds)).all()  # every run recorded at every drawn epoch
    # The engine records extra rows at selected epochs off the schedule; they are not drawn.
    off = ~tables.runs["selected_epoch"].isin(schedule)
    assert off.any(), "pick a config where some run selects an epoch off the schedule"
    m = tables.metrics[(tables.metrics["split"] == "test") & (tables.metrics["metric"] == "error")]
    m = m[m["epoch"].isin(schedule)].merge(tables.runs[["run_id", *KEYS]], on="run_id")
    expected = m.groupby([*KEYS, "epoch"])["value"].mean()
    got = curves.set_index([*KEYS, "epoch"])["mean"]
    assert got.sort_index().to_numpy() == pytest.approx(expected.sort_index().to_numpy())


# ----------------------------------------------------------------------------- early stopping


def test_with_early_stopping_the_summary_holds_the_selected_and_the_last_epoch_errors(three_keys):
    plan, exp, tables, summary = three_keys
    runs = tables.runs.set_index("run_id")
    assert (runs["selected_epoch"] < EPOCHS).any()  # a selection that differs from the last epoch
    selected = {s: _at(tables, runs["selected_epoch"], s) for s in ("train", "test")}
    last = {s: _at(tables, pd.Series(EPOCHS, index=runs.index), s) for s in ("train", "test")}
    assert summary["early_stopping"] == 1 and len(summary["points"]) == 8
    for p in summary["points"]:
        ids = runs.index[np.logical_and.reduce([runs[k] == v for k, v in p["point"].items()])]
        assert len(ids) == 2
        for split in ("train", "test"):
            assert p[f"{split}_error"]["mean"] == pytest.approx(selected[split].loc[ids].mean())
            assert p[f"final_{split}_error"]["mean"] == pytest.approx(last[split].loc[ids].mean())
        assert p["selected_epoch"] == pytest.approx(runs.loc[ids, "selected_epoch"].mean())
    best = min(summary["points"], key=lambda p: p["test_error"]["mean"])
    assert summary["best_test_error"] == best["test_error"]["mean"]
    assert summary["final_test_error_at_best"] == best["final_test_error"]["mean"]
    assert summary["mean_selected_epoch"] == pytest.approx(runs["selected_epoch"].mean())
    section, slides = words(exp, summary, flat=True)
    assert "reported at the epoch of its best validation loss" in section
    assert "The lowest mean test error rate at the selected epoch" in section
    assert "at the last epoch" in section and "errors at each run's epoch selected" in slides


def test_without_early_stopping_the_summary_holds_the_last_epoch_errors(tmp_path, drawn):
    experiment = {**THREE_KEYS, "train": {**THREE_KEYS["train"], "early_stopping": False, "epochs": 4},
                  "sweep": {"model.width": [4, 8]}, "task": {**THREE_KEYS["task"], "n_val": 0}}
    run = _run(experiment)
    plan, exp, tables, summary = run
    runs = tables.runs.set_index("run_id")
    last = _at(tables, pd.Series(4, index=runs.index))
    for p in summary["points"]:
        ids = runs.index[runs["model.width"] == p["point"]["model.width"]]
        assert p["test_error"]["mean"] == pytest.approx(last.loc[ids].mean())
        assert "final_test_error" not in p
    section, _ = words(exp, summary, flat=True)
    assert "show the errors at the last epoch" in section
    assert "selected on the validation" not in section and "early stopping" not in section
    assert "one hidden layer of width" not in section  # width is swept: never printed as one value
    figs = _draw(run, tmp_path, drawn)
    assert len(figs["error_vs_x"].axes) == 1 and "width" in _texts(figs["error_vs_x"])


# ----------------------------------------------------------------------------- words


def test_words_name_every_swept_key_with_its_values_and_whole_points(three_keys):
    plan, exp, tables, summary = three_keys
    section, slides = words(exp, summary, flat=True)
    assert (r"sweeping depth over \num{1} and \num{2}, width over \num{4} and \num{8} and label noise over "
            r"\num{0} and \num{0.3}.") in section
    # Swept settings are never printed as one value of the setup.
    assert "hidden layer" not in section and "label noise \\num" not in section
    assert r"(classification, $n=\num{32}$ training points)" in section
    assert "depth & width & label noise & train error rate & test error rate" in section
    assert section.count(r"\num{1} & \num{4} & \num{0} &") == 1  # one row per full point
    # The best point and the range at the largest depth: every key of each point named.
    best = summary["best"]["point"]
    assert (f"the point depth $=$ \\num{{{best['model.depth']}}}, width $=$ \\num{{{best['model.width']}}}, "
            f"label noise $=$ \\num{{{best['task.label_noise']:g}}}") in section
    at_largest = [p for p in summary["points"] if p["point"]["model.depth"] == 2]
    lo = min(at_largest, key=lambda p: p["test_error"]["mean"])
    hi = max(at_largest, key=lambda p: p["test_error"]["mean"])
    assert summary["at_largest_x"]["best"] == lo and summary["at_largest_x"]["worst"] == hi
    assert "train_error_at_largest_x" not in summary  # four points at depth 2: no one 'error at the largest depth'
    if lo["test_error"]["mean"] < hi["test_error"]["mean"]:
        assert (r"At the largest depth, \num{2}, the mean test error rate over the \num{4} points ranges from "
                f"{_num(lo['test_error']['mean'])} (width $=$ \\num{{{lo['point']['model.width']}}}, label noise $=$ "
                f"\\num{{{lo['point']['task.label_noise']:g}}}) to {_num(hi['test_error']['mean'])}") in section
    assert "(train dashed, test solid; colour: width; panel columns: label noise)" in section  # where each key is
    assert "sweeping depth over" in slides


def _num(v: float) -> str:
    return f"\\num{{{v:.3g}}}"


def test_a_one_key_sweep_keeps_its_sentences(three_keys):
    plan, exp, tables, summary = three_keys
    one = cfg.load_plan({"experiments": {"exp": {**THREE_KEYS, "sweep": {"model.width": [4, 8]}}}}).experiment("exp")
    points = [p for p in summary["points"] if p["point"]["model.depth"] == 1 and p["point"]["task.label_noise"] == 0]
    for p in points:
        p["point"] = {"model.width": p["point"]["model.width"]}
    hand = {**summary, "x": "model.width", "keys": ["model.width"], "points": points, "best": points[0],
            "best_x": 4, "smallest_x": 4, "largest_x": 8, "values": {"model.width": [4, 8]},
            "best_test_error": points[0]["test_error"]["mean"],
            "at_largest_x": {"n_points": 1, "best": points[1], "worst": points[1]}}
    section, _ = words(one, hand, flat=True)
    assert r"is reached at width $=$ \num{4}, the smallest value of the sweep" in section
    assert f"at the largest value, \\num{{8}}, the mean train error rate is {_num(points[1]['train_error']['mean'])}" in section


def test_an_x_with_one_value_gets_no_extreme_value_sentence(tmp_path, drawn):
    experiment = {**THREE_KEYS, "train": {**THREE_KEYS["train"], "early_stopping": False, "epochs": 2},
                  "task": {**THREE_KEYS["task"], "n_val": 0}, "sweep": {"train.lr": [0.1], "model.width": [4, 8]}}
    run = _run(experiment)
    plan, exp, tables, summary = run
    section, _ = words(exp, summary, flat=True)
    assert "largest" not in section and "smallest value" not in section
    assert r"the point learning rate $=$ \num{0.1}, width $=$" in section
    assert r"sweeping width over \num{4} and \num{8}." in section
    assert r"The sweep also set learning rate \num{0.1} at every point." in section
    figs = _draw(run, tmp_path, drawn)
    assert "width" in _texts(figs["error_vs_x"])  # the varied key is on a channel, not averaged


def test_a_sweep_where_every_run_diverged_still_draws_and_says_so(tmp_path, drawn):
    experiment = {**THREE_KEYS, "train": {"epochs": 3, "batch_size": 8, "lr": 1e12, "loss": "mse"},
                  "task": {**THREE_KEYS["task"], "n_val": 0}, "sweep": {"model.width": [4, 8], "model.depth": [1, 2]}}
    run = _run(experiment)
    plan, exp, tables, summary = run
    assert summary["best"] is None and summary["n_diverged"] == summary["n_runs"] == 8
    figs = _draw(run, tmp_path, drawn)
    assert all(not ax.get_lines() for ax in figs["error_vs_x"].axes)  # nothing drawn: no mean exists
    section, _ = words(exp, summary, flat=True)
    assert "No run finished with a finite test error rate." in section and "lowest" not in section


# ----------------------------------------------------------------------------- image networks

CNN_SWEEP = {
    "study": "sweep", "seeds": [0, 1],
    "task": {"name": "digits", "n_train": 32, "n_test": 32},
    "model": {"arch": "cnn"},
    "train": {"epochs": 1, "batch_size": 16, "eval_points": 2},
    "sweep": {"model.width": [1, 2], "train.lr": [0.05, 0.1]},
}


def test_a_cnn_sweep_names_its_width_parameter_k_in_words_and_figures(tmp_path, drawn):
    from mathdl import html_report

    run = _run(CNN_SWEEP)
    plan, exp, tables, summary = run
    assert sweep.architecture(exp) == "cnn"
    section, slides = words(exp, summary, flat=True)
    k = "width parameter $k$"
    assert rf"sweeping {k} over \num{{1}} and \num{{2}} and learning rate over" in section
    assert f"{k} & learning rate & train error rate & test error rate" in section  # the table's header
    assert rf"At the largest {k}, \num{{2}}, the mean test error rate" in section
    assert f"against {k} for" in section and f"colour: {k}" in section  # the captions
    assert f"sweeping {k} over" in slides
    assert " width over" not in section and "width $=$" not in section.replace(f"{k} $=$", "")
    figs = _draw(run, tmp_path, drawn)
    assert figs["error_vs_x"].axes[0].get_xlabel() == k  # matplotlib's mathtext draws $k$ (saved as PDF above)
    assert [t.get_text() for t in figs["learning_curves"].legends[0].get_texts()][:3] == [k, "1", "2"]
    # The HTML report's table shows the header's $k$ as math.
    (table,) = html_report.tables(words(exp, summary)[0])
    assert table.header[0][0] == k and "<math" in html_report.table_html(table)

    # k on the facets: each panel is titled by its value.
    faceted = _run({**CNN_SWEEP, "plot": {"x": "train.lr", "col": "model.width"}})
    figs = _draw(faceted, tmp_path, drawn)
    titles = {ax.get_title() for ax in figs["error_vs_x"].axes if ax.get_visible()}
    assert titles == {f"{k} = 1", f"{k} = 2"}


def test_only_one_image_architecture_calls_the_width_k():
    assert [key_name("model.width", arch) for arch in ("cnn", "resnet18", "mlp", "module", "")] == [
        "width parameter $k$", "width parameter $k$", "width", "width", "width"]
    assert key_name("model.depth", "cnn") == "depth"
    mixed = cfg.load_plan({"device": "cpu", "experiments": {"exp": {
        **CNN_SWEEP, "sweep": {}, "cases": [{"model.arch": "cnn"}, {"model.arch": "mlp"}]}}}).experiment("exp")
    assert sweep.architecture(mixed) == ""  # a width shared by an MLP and a CNN is named generically


# ----------------------------------------------------------------------------- layout


def _points(**columns) -> pd.DataFrame:
    return pd.DataFrame(columns)


def test_zipped_keys_share_a_channel_and_a_grid_gets_one_channel_per_key():
    grid = pd.DataFrame([(d, w, n) for d in (1, 2) for w in (4, 8) for n in (0, 0.2)], columns=KEYS)
    assert layouts.blocks(grid, KEYS) == [(k,) for k in KEYS]
    chosen = layouts.choose(grid, KEYS, "model.depth", {})
    assert (chosen.hue, chosen.col, chosen.row, chosen.style) == (("model.width",), ("task.label_noise",), (), ())
    # depth and width zipped (a fixed parameter budget), crossed with label noise.
    zipped = pd.DataFrame([(d, w, n) for d, w in ((1, 64), (2, 32), (4, 16)) for n in (0, 0.2)], columns=KEYS)
    assert layouts.blocks(zipped, KEYS) == [("model.depth", "model.width"), ("task.label_noise",)]
    chosen = layouts.choose(zipped, KEYS, "model.depth", {})
    assert chosen.along_x == ("model.width",) and chosen.hue == ("task.label_noise",) and not chosen.col
    chosen = layouts.choose(zipped, KEYS, "task.label_noise", {})
    assert chosen.hue == ("model.depth", "model.width")


def test_configured_channels_win_and_extra_keys_join_the_colour():
    keys = ["a", "b", "c", "d", "e", "f"]
    grid = pd.DataFrame([(a, b, c, d, e, f) for a in (1, 2) for b in (1, 2) for c in (1, 2) for d in (1, 2)
                         for e in (1, 2) for f in (1, 2)], columns=keys)
    chosen = layouts.choose(grid, keys, "a", {"row": "b", "hue": "", "col": "", "style": ""})
    assert chosen.row == ("b",) and chosen.hue == ("c", "f") and chosen.col == ("d",) and chosen.style == ("e",)
    assert sorted(chosen.keys()) == keys  # six keys, four channels and the axis: none left out
    single = pd.DataFrame({"a": [1, 2], "b": [3, 3]})
    chosen = layouts.choose(single, ["a", "b"], "a", {})
    assert chosen.fixed == ("b",) and not chosen.channels()
    curves = layouts.for_curves(layouts.choose(grid[["a", "b", "c"]].drop_duplicates(), ["a", "b", "c"], "a", {}))
    assert (curves.x, curves.hue, curves.col, curves.row) == ("epoch", ("a",), ("c",), ("b",))


# ----------------------------------------------------------------------------- axes


def test_log_axis_holds_a_zero_without_a_negative_half():
    import matplotlib.pyplot as plt

    from mathdl import plots

    fig, ax = plt.subplots()
    ax.plot([0, 1e-4, 1e-3, 1e-2], [1, 2, 3, 4])
    assert plots.log_axis(ax, [0, 1e-4, 1e-3, 1e-2]) == "symlog"
    assert ax.get_xlim()[0] == 0 and min(ax.get_xticks()) == 0
    fig2, bx = plt.subplots()
    bx.plot([2, 4, 8], [1, 2, 3])
    assert plots.log_axis(bx, [2, 4, 8]) == "log" and list(bx.get_xticks()) == [2, 4, 8]
    assert plots.log_axis(bx, [-1, 1]) == "linear"
    fig3, cx = plt.subplots()
    cx.plot([0, 1, 5, 50], [1, 2, 3, 4])
    plots.epoch_axis(cx, 50)
    assert list(cx.get_xticks()) == [0, 1, 10, 50] and cx.get_xlim() == (0, 50)
    for f in (fig, fig2, fig3):
        plt.close(f)
