# Input functions and shared settings. Every path of the workflow is spelled here once.
import json
import os
from pathlib import Path

from mathdl import resources
from mathdl.studies import source_hash

EXPERIMENTS = {e.name: e for e in PLAN.experiments}
RESOLVED = PLAN.resolved
# Each plan builds its documents in its own folder, results/report/<plan>/: the report
# section's name, else the plan file's name (config/tiny.yaml -> tiny).
PLAN_FILE = (workflow.overwrite_configfiles or ["config/config.yaml"])[-1]
PLAN_NAME = PLAN.report.name or Path(PLAN_FILE).stem
REPORT_DIR = f"results/report/{PLAN_NAME}"
# Snakemake's HTML report (snakemake --report): the figures' captions and the tables, read
# from the generated LaTeX by rule html_report_pieces. report() takes one caption file per
# output, as a path that is fixed when the rules are read: hence this absolute path.
HTML_REPORT_PIECES = "results/report/{plan}/html"
FIGURE_CAPTIONS = os.path.abspath(
    f"{HTML_REPORT_PIECES.format(plan=PLAN_NAME)}/captions.rst"
)


def canonical(obj):
    """Keys sorted at every level: Snakemake compares params as written, so a config that
    only lists its keys in another order must not look changed (and retrain everything).
    """
    return json.loads(json.dumps(obj, sort_keys=True))


wildcard_constraints:
    experiment="[^/]+",
    data_id="[0-9a-f]{10}",
    group="[0-9a-f]{10}",
    doc="paper|slides",
    plan="[A-Za-z0-9][A-Za-z0-9_-]*",


def experiment_params(wildcards):
    """The experiment's resolved config; of its plot section only x, which the analysis uses, and
    the channels (hue, style, col, row), which the figures' captions in the text name.
    """
    exp = dict(RESOLVED["experiments"][wildcards.experiment])
    plot = EXPERIMENTS[wildcards.experiment].plot
    # x resolved here (the first varied key by default): canonical() sorts the sweep's keys
    exp["plot"] = {
        "x": plot.x,
        "hue": plot.hue,
        "style": plot.style,
        "col": plot.col,
        "row": plot.row,
    }
    return canonical(exp)


def study_code(wildcards):
    """The experiment's study folder, hashed: an edit of its code or words reruns its analysis,
    figures and report (never its training)."""
    return STUDY_CODE[EXPERIMENTS[wildcards.experiment].study]


def all_study_code(wildcards):
    return {name: STUDY_CODE[e.study] for name, e in EXPERIMENTS.items()}


STUDY_CODE = {e.study: source_hash(e.study) for e in PLAN.experiments}


def all_experiment_params(wildcards):
    return {name: experiment_params(Wildcards(name)) for name in EXPERIMENTS}


class Wildcards:
    def __init__(self, experiment):
        self.experiment = experiment


def plot_options(wildcards):
    return canonical(RESOLVED["plot"])


def experiment_plot_options(wildcards):
    plot = dict(RESOLVED["experiments"][wildcards.experiment]["plot"])
    plot["x"] = EXPERIMENTS[wildcards.experiment].plot.x
    return canonical(plot)


def group_spec(wildcards):
    return canonical(EXPERIMENTS[wildcards.experiment].group(wildcards.group).to_dict())


def group_data(wildcards):
    data_id = EXPERIMENTS[wildcards.experiment].group(wildcards.group).data_id
    return rules.data.output[0].format(experiment=wildcards.experiment, data_id=data_id)


def task_params(wildcards):
    return canonical(vars(EXPERIMENTS[wildcards.experiment].tasks()[wildcards.data_id]))


def group_outputs(kind):
    def paths(wildcards):
        exp = EXPERIMENTS[wildcards.experiment]
        return expand(
            rules.train.output[kind],
            experiment=[exp.name],
            group=[g.group_id for g in exp.groups],
        )

    return paths


def all_summaries(wildcards):
    return expand(rules.evaluate.output.summary, experiment=list(EXPERIMENTS))


def all_figure_dirs(wildcards):
    return expand(rules.figures.output[0], experiment=list(EXPERIMENTS))


def report_sources(wildcards):
    """Every hand-written file under report/ (an edit reruns the compile)."""
    return sorted(str(p) for p in Path("report").rglob("*") if p.is_file())


def ejected_templates(wildcards):
    """Experiment templates a group took over (mathdl eject): an edit rerenders the pieces."""
    return sorted(str(p) for p in Path("report/experiments").rglob("*") if p.is_file())


def report_settings():
    """The plan's report section with main and appendix resolved to experiment names."""
    return canonical(
        {
            "main": list(PLAN.report.main),
            "appendix": list(PLAN.report.appendix),
            "survey": PLAN.report.survey,
        }
    )


def documents():
    return expand(
        rules.compile_document.output[0], plan=[PLAN_NAME], doc=["paper", "slides"]
    )


def _group(wildcards):
    return EXPERIMENTS[wildcards.experiment].group(wildcards.group)


def train_mem_mb(wildcards):
    return resources.mem_mb(_group(wildcards), PLAN.device, PLAN.gpus_for_auto)


def train_runtime(wildcards):
    return resources.runtime_minutes(_group(wildcards), PLAN.device, PLAN.gpus_for_auto)


def train_gpus(wildcards):
    """One GPU for a job that trains networks on cuda (or auto on a cluster); none for NumPy studies."""
    return resources.gpus(PLAN.device, PLAN.gpus_for_auto, _group(wildcards))


def all_results():
    """Every file the plan makes, up to the documents: the target asks for all of them, so a
    result that is missing (or removed as damaged, see mathdl.integrity) is rebuilt."""
    paths = []
    for exp in PLAN.experiments:
        for data_id in exp.tasks():
            paths.append(
                rules.data.output[0].format(experiment=exp.name, data_id=data_id)
            )
        for g in exp.groups:
            paths += [
                out.format(experiment=exp.name, group=g.group_id)
                for out in rules.train.output
            ]
        paths += [out.format(experiment=exp.name) for out in rules.evaluate.output]
        paths.append(rules.figures.output[0].format(experiment=exp.name))
    paths.append(rules.report_pieces.output[0].format(plan=PLAN_NAME))
    paths.append(rules.html_report_pieces.output[0].format(plan=PLAN_NAME))
    return paths + documents()
