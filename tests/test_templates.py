"""Study words as templates: rendering, \\result for hand-written text, ejecting a study's words."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path

import pytest

from mathdl import report, templating
from mathdl.config import load_plan
from mathdl.studies import STUDIES

needs_tex = pytest.mark.skipif(shutil.which("latexmk") is None, reason="needs latexmk")


def _sweep_experiment(tiny_config):
    return load_plan(tiny_config).experiment("exp")


def _point(width, train, test, lo=None, hi=None):
    return {"point": {"model.width": width}, "n_runs": 2, "n_diverged": 0,
            "train_error": {"mean": train, "ci_low": None, "ci_high": None},
            "test_error": {"mean": test, "ci_low": lo, "ci_high": hi}, "gap": test - train}


def _sweep_summary(best_width=4, n_diverged=0):
    points = [_point(2, 0.30, 0.35), _point(4, 0.10, 0.20, 0.15, 0.25)]
    best = points[[2, 4].index(best_width)]
    return {
        "x": "model.width", "error_name": "error rate", "confidence": 0.95, "n_runs": 8, "n_seeds": 2,
        "n_diverged": n_diverged, "final_epoch": 3, "early_stopping": 0, "points": points, "best": best,
        "best_x": best_width, "largest_x": 4, "smallest_x": 2,
        "train_error_at_largest_x": 0.10, "test_error_at_largest_x": 0.20,
        "best_test_error": best["test_error"]["mean"],
        "at_largest_x": {"n_points": 1, "best": points[1], "worst": points[1]},
    }


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_every_study_has_its_words_as_templates():
    for name in STUDIES:
        assert templating.has_templates(name), name


def test_sweep_words_follow_its_numbers(tiny_config):
    tiny_config["experiments"]["exp"]["sweep"] = {"model.width": [2, 4]}
    experiment = _sweep_experiment(tiny_config)
    text = _flat(templating.render_experiment(experiment, _sweep_summary(best_width=4)).section)
    assert r"The lowest mean test error rate, \num{0.2}, is reached at width $=$ \num{4}" in text
    assert r"at the largest value, \num{4} (the best one)" in text
    assert "No run diverged." in text
    assert "one hidden layer" in text and "depth 1" not in text and "model.width" not in text
    assert "(s)" not in text

    text = _flat(templating.render_experiment(experiment, _sweep_summary(best_width=2)).section)
    assert r"reached at width $=$ \num{2}, the smallest value of the sweep" in text
    assert "(the best one)" not in text

    text = _flat(templating.render_experiment(experiment, _sweep_summary(n_diverged=1)).section)
    assert "One of the \\num{8} runs diverged and is left out of the means." in text
    text = _flat(templating.render_experiment(experiment, _sweep_summary(n_diverged=3)).section)
    assert "\\num{3} of the \\num{8} runs diverged and are left out of the means." in text
    summary = _sweep_summary(n_diverged=8)
    summary["best"] = None
    text = _flat(templating.render_experiment(experiment, summary).section)
    assert "No run finished with a finite test error rate." in text and "lowest" not in text


def test_sweep_over_two_keys_names_the_best_point(tiny_config):
    experiment = _sweep_experiment(tiny_config)  # sweeps model.width and train.lr
    summary = _sweep_summary()
    for p, lr in zip(summary["points"], (0.1, 0.01)):
        p["point"]["train.lr"] = lr
    piece = templating.render_experiment(experiment, summary)
    text = _flat(piece.section)
    assert r"reached at the point width $=$ \num{4}, learning rate $=$ \num{0.01}" in text
    assert "at the largest value" not in text  # one column of a two-key grid is no 'largest value'
    assert "width & learning rate & train error rate" in text  # both keys head the table


def test_results_tex_defines_every_value_by_its_path():
    tex = report.results_tex({"wide_nets_&_50%": {"best": {"x": 16, "err": 0.0977}, "pts": [1, 2.5], "name": "a_b"}})
    assert r"\csname mathdl@r@wide-nets-50@best.x\endcsname{\num{16}}" in tex
    assert r"\csname mathdl@r@wide-nets-50@best.err\endcsname{\num{0.0977}}" in tex
    assert r"\csname mathdl@r@wide-nets-50@pts.1\endcsname{\num{2.5}}" in tex
    assert r"\csname mathdl@r@wide-nets-50@name\endcsname{a\_b}" in tex


def _compile(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    summaries = {"teacher_width": {"best_test_error": 0.0734, "points": [{"n_runs": 3}]}}
    (tmp_path / "results.tex").write_text(report.results_tex(summaries))
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\\usepackage{siunitx}\\input{results}\\begin{document}" + body + "\\end{document}\n"
    )
    return subprocess.run(report.latex_command("doc.tex"), cwd=tmp_path, capture_output=True, text=True,
                          env=report.latex_env())


@needs_tex
def test_result_prints_a_summary_value_in_hand_written_text(tmp_path):
    proc = _compile(tmp_path, r"Best: \result{teacher-width}{best_test_error}; runs \result{teacher-width}{points.0.n_runs}.")
    assert proc.returncode == 0, proc.stdout[-2000:]
    text = subprocess.run(["pdftotext", tmp_path / "doc.pdf", "-"], capture_output=True, text=True).stdout
    assert "Best: 0.0734; runs 3." in text


@needs_tex
@pytest.mark.parametrize(
    "citation, message",
    [
        (r"\result{teacher-width}{best_tset_error}", "experiment 'teacher-width' has no result 'best_tset_error'"),
        (r"\result{teacher}{best_test_error}", "no experiment 'teacher' in this plan (experiments: teacher-width)"),
    ],
)
def test_result_of_a_missing_key_stops_the_compile_naming_it(tmp_path, citation, message):
    proc = _compile(tmp_path, citation)
    assert proc.returncode != 0
    log = (tmp_path / "doc.log").read_text()
    assert f"Package mathdl Error: {message}" in log  # on one line: what compile_latex reports


def test_ejected_templates_replace_the_study_words_and_keep_the_numbers(tmp_path, tiny_config):
    tiny_config["experiments"]["exp"]["sweep"] = {"model.width": [2, 4]}
    experiment = _sweep_experiment(tiny_config)
    copied = templating.eject("sweep", "exp", tmp_path)
    assert [p.name for p in copied] == ["section.tex", "slides.tex"]
    section = tmp_path / "experiments" / "exp" / "section.tex"
    section.write_text(section.read_text().replace(r"\VAR{description}", r"Our own words: \VAR{summary.best_test_error|fmt}."))
    piece = templating.render_experiment(experiment, _sweep_summary(), report_dir=tmp_path)
    assert r"Our own words: \num{0.2}." in piece.section
    with pytest.raises(FileExistsError):
        templating.eject("sweep", "exp", tmp_path)


def test_a_template_error_names_the_experiment_and_the_file(tmp_path, tiny_config):
    experiment = _sweep_experiment(tiny_config)
    templating.eject("sweep", "exp", tmp_path)
    (tmp_path / "experiments" / "exp" / "slides.tex").write_text(r"\VAR{summary.no_such_key|fmt}")
    with pytest.raises(RuntimeError, match=r"template slides.tex.* of experiment 'exp'.*no_such_key"):
        templating.render_experiment(experiment, _sweep_summary(), report_dir=tmp_path)


def test_report_pieces_follow_the_report_section(tmp_path, tiny_config):
    from mathdl import io
    from mathdl.pipeline import write_report_pieces

    tiny_config["experiments"]["exp"]["sweep"] = {"model.width": [2, 4]}
    tiny_config["experiments"]["more"] = copy.deepcopy(tiny_config["experiments"]["exp"])
    tiny_config["report"] = {"appendix": ["exp"], "survey": False}
    plan = load_plan(tiny_config)
    summaries = []
    for name in ("exp", "more"):
        io.write_json(_sweep_summary(), tmp_path / f"{name}.json")
        summaries.append(tmp_path / f"{name}.json")
    experiments = {name: plan.resolved["experiments"][name] for name in ("exp", "more")}
    report_cfg = {"main": list(plan.report.main), "appendix": list(plan.report.appendix), "survey": False}
    out = tmp_path / "generated"
    write_report_pieces(plan.resolved["project"], report_cfg, experiments, summaries, tmp_path / "report", out)
    assert (out / "main.tex").read_text().splitlines()[1:] == [r"\input{generated/sections/more}"]
    assert (out / "appendix.tex").read_text().splitlines()[1:] == [r"\input{generated/sections/exp}"]
    assert r"\mathdlsurveyfalse" in (out / "metadata.tex").read_text()
    assert r"mathdl@r@more@best_test_error\endcsname{\num{0.2}}" in (out / "results.tex").read_text()
    assert (out / "sections" / "exp.tex").read_text().startswith("\n") or "subsection" in (out / "sections" / "exp.tex").read_text()


def test_sweep_with_early_stopping_reports_the_selected_epoch(tiny_config):
    """The summary's errors are those at each run's selected epoch, read independently from the
    long metrics table; the words say so."""
    from mathdl import engine
    from mathdl.studies import sweep
    from mathdl.tables import Tables
    from mathdl.tasks import make_dataset

    exp = tiny_config["experiments"]["exp"]
    exp["task"].update(n_val=32, label_noise=0.3)
    exp["train"].update(epochs=12, early_stopping=True, eval_points=12)
    exp["sweep"] = {"model.width": [4]}
    experiment = load_plan(tiny_config).experiment("exp")
    group = experiment.groups[0]
    from mathdl.pipeline import run_parameters

    result = engine.train(group, make_dataset(group.task), device="cpu")
    tables = Tables(result.metrics, result.runs.merge(run_parameters(group), on=["run_id", "seed"]))
    summary = sweep.analyze(tables, experiment)
    m = tables.metrics.merge(tables.runs[["run_id", "selected_epoch"]], on="run_id")
    at = m[(m["epoch"] == m["selected_epoch"]) & (m["split"] == "test") & (m["metric"] == "error")]
    assert len(at) == len(tables.runs)
    assert summary["early_stopping"] == 1
    assert summary["best_test_error"] == pytest.approx(at["value"].mean())
    assert (tables.runs["selected_epoch"] < 12).any()  # a selection that differs from the last epoch
    per_run = tables.per_run()
    assert per_run["selected_test_error"].tolist() == pytest.approx(
        at.set_index("run_id").loc[per_run["run_id"], "value"].tolist())
    text = _flat(templating.render_experiment(experiment, summary).section)
    assert "reported at the epoch of its best validation" in text and "last epoch, not selected" not in text
