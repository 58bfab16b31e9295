"""The stages of the workflow as functions of (parameters, input paths, output paths).

Snakemake rules call these through ``workflow/scripts/*.py``; the ``mathdl`` CLI exposes
them too. Paths always come from the caller. Every output is written atomically, so an
interrupted stage leaves either a finished file or none.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from mathdl import io
from mathdl.config import (
    Experiment,
    _canonical,
    GroupSpec,
    PlotConfig,
    ProjectConfig,
    TaskConfig,
    _build_experiment,
)
from mathdl.integrity import write_manifest
from mathdl.report import metadata_tex, results_tex, slug
from mathdl.studies import get_study
from mathdl.tables import Tables
from mathdl.tasks import input_dim, n_outputs


def experiment_from_params(name: str, params: Mapping) -> Experiment:
    """Rebuild an Experiment from its resolved config section (as the workflow passes it)."""
    exp = {**params, "plot": {"x": "", "logx": True, "logy": False, **params.get("plot", {})}}
    return _build_experiment(name, exp)


# ----------------------------------------------------------------------------- data


def make_data(task: Mapping, out: str | Path) -> None:
    from mathdl.tasks import make_dataset

    make_dataset(TaskConfig(**task)).save(out)


# ----------------------------------------------------------------------------- train


def train_group(spec: Mapping, data: str | Path, out_metrics: str | Path, out_runs: str | Path,
                out_provenance: str | Path, device: str = "auto", threads: int = 1) -> None:
    """Train one group (or compute it, for a study with its own ``compute``); write tables and provenance."""
    from mathdl.orphans import exit_with_ancestor
    from mathdl.tasks import load_dataset
    from mathdl.threads import use_threads

    exit_with_ancestor("snakemake")  # no orphan trains on after a hard kill of Snakemake
    group = GroupSpec.from_dict(spec)
    compute = get_study(group.study).compute or TRAINERS[group.model.arch]
    with use_threads(threads):  # torch's and NumPy's BLAS threads: the job's cores, no more
        result = compute(group, load_dataset(data, group.task), device=device)
    runs = result.runs.merge(run_parameters(group), on=["run_id", "seed"])
    runs["device"] = result.device
    if get_study(group.study).compute is None:  # networks trained by an engine: their size
        runs["n_params"] = trained_parameter_count(group, result)
    io.write_table(result.metrics, out_metrics)
    io.write_table(runs, out_runs)
    io.write_json(
        io.provenance(
            spec=group.to_dict(), device=result.device, wall_time_s=result.wall_time_s,
            n_runs=len(group.runs), n_diverged=int(runs["diverged"].sum()),
        ),
        out_provenance,
    )
    print(f"trained {len(group.runs)} runs of {group.experiment}/{group.group_id} on {result.device} "
          f"in {result.wall_time_s:.1f} s; {int(runs['diverged'].sum())} diverged")


def _train_mlp(group: GroupSpec, data, device: str):
    from mathdl import engine

    return engine.train(group, data, device=device)


def _train_module(group: GroupSpec, data, device: str):
    """An image network: on the data set's images (n, C, H, W), which give it their shape."""
    from mathdl import module_engine

    return module_engine.train(group, data, device=device)


# model.arch -> how a group of it trains: the stacked-matmul engine for fully connected networks
# (the plan turns resmlp into mlp with residual), the module engine for every torch.nn.Module.
TRAINERS = {"mlp": _train_mlp, "cnn": _train_module, "resnet18": _train_module, "module": _train_module}


def trained_parameter_count(group: GroupSpec, result) -> int:
    """Parameters of one network of the group: counted from the trained tensors of an image network
    (a group's own module is known only once built), in closed form for a fully connected one."""
    if group.model.arch == "mlp":
        from mathdl.resources import parameter_count

        return parameter_count(group, input_dim(group.task), n_outputs(group.task))
    return sum(p[0].numel() for p in result.params)  # each (M, ...): one run's is p[0]


def run_parameters(group: GroupSpec) -> pd.DataFrame:
    """One row per run: ids, seed, and every resolved parameter as a ``section.key`` column
    (a real data set's input size and classes as the data have them, not the teacher's keys)."""
    rows = []
    for r in group.runs:
        row = {"run_id": r.run_id, "group_id": group.group_id, "seed": r.seed}
        for section in ("task", "model", "train"):
            for key, value in vars(getattr(r, section)).items():
                row[f"{section}.{key}"] = value
        row["model.kwargs"] = _canonical(dict(r.model.kwargs))  # one JSON text: a table cell of one type
        row["task.input_dim"], row["task.n_classes"] = input_dim(r.task), n_outputs(r.task)
        for key, value in r.params.items():
            row[f"params.{key}"] = value
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- evaluate


def collect(metrics: Sequence[str | Path], runs: Sequence[str | Path]) -> Tables:
    return Tables(
        metrics=pd.concat([io.read_table(p) for p in metrics], ignore_index=True),
        runs=pd.concat([io.read_table(p) for p in runs], ignore_index=True),
    )


def evaluate(name: str, params: Mapping, metrics: Sequence[str], runs: Sequence[str],
             out_metrics: str | Path, out_runs: str | Path, out_summary: str | Path) -> None:
    """Gather an experiment's group tables into one pair of tables and analyse them."""
    experiment = experiment_from_params(name, params)
    tables = collect(metrics, runs)
    summary = get_study(experiment.study).analyze(tables, experiment)
    io.write_table(tables.metrics, out_metrics)
    io.write_table(tables.per_run(), out_runs)  # plus final (and selected) errors per split
    io.write_json(summary, out_summary)


# ----------------------------------------------------------------------------- figures


def make_figures(name: str, params: Mapping, plot: Mapping, metrics: str, runs: str, summary: str,
                 outdir: str | Path) -> list[str]:
    experiment = experiment_from_params(name, params)
    tables = Tables(io.read_table(metrics), io.read_table(runs))
    outdir = Path(outdir)
    tmp = outdir.with_name(outdir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    names = get_study(experiment.study).figures(tables, io.read_json(summary), experiment, PlotConfig(**plot), tmp)
    write_manifest(tmp)
    shutil.rmtree(outdir, ignore_errors=True)
    tmp.rename(outdir)
    return names


# ----------------------------------------------------------------------------- report


def write_report_pieces(project: Mapping, report_cfg: Mapping, experiments: Mapping[str, Mapping],
                        summaries: Sequence[str], report_dir: str | Path, outdir: str | Path) -> None:
    """The generated half of the documents, in ``outdir`` (one folder, written atomically):

    - ``metadata.tex``: title, authors, course, date, ``\\ifmathdlsurvey``;
    - ``results.tex``: ``\\result{experiment}{key.path}`` for every value of every summary;
    - ``sections/<slug>.tex`` and ``slides/<slug>.tex``: each experiment's words, rendered
      from its templates (the group's ejected copy under ``report_dir`` if there is one);
    - ``main.tex``, ``appendix.tex``, ``slides.tex``, ``appendix-slides.tex``: the experiments
      in the order of the plan's ``report`` section.
    """
    from mathdl import templating

    proj = ProjectConfig(**{**project, "authors": tuple(project["authors"])})
    outdir = Path(outdir)
    files: dict[str, str] = {}
    loaded = {}
    n_runs = 0
    for (name, params), summary_path in zip(experiments.items(), summaries):
        experiment = experiment_from_params(name, params)
        summary = io.read_json(summary_path)
        loaded[name] = summary
        n_runs += len(experiment.runs)
        study = get_study(experiment.study)
        piece = templating.render(study, experiment, summary, f"figures/{slug(name)}", report_dir)
        files[f"sections/{slug(name)}.tex"] = piece.section
        files[f"slides/{slug(name)}.tex"] = piece.slides

    def inputs(kind: str, names: Sequence[str]) -> str:
        lines = [f"% Generated by mathdl: the {kind} of the plan's report section, in order."]
        lines += [rf"\input{{generated/{kind}/{slug(n)}}}" for n in names]
        return "\n".join(lines) + "\n"

    files.update({
        "metadata.tex": metadata_tex(proj.title, proj.authors, proj.course, proj.date, report_cfg["survey"],
                                     len(experiments), n_runs),
        "results.tex": results_tex(loaded),
        "main.tex": inputs("sections", report_cfg["main"]),
        "appendix.tex": inputs("sections", report_cfg["appendix"]),
        "slides.tex": inputs("slides", report_cfg["main"]),
        "appendix-slides.tex": inputs("slides", report_cfg["appendix"]),
    })
    tmp = outdir.with_name(outdir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for fname, text in files.items():
        (tmp / fname).parent.mkdir(parents=True, exist_ok=True)
        (tmp / fname).write_text(text)
    write_manifest(tmp)
    shutil.rmtree(outdir, ignore_errors=True)
    tmp.rename(outdir)


def compile_document(main: str, sources: str | Path, generated: str | Path, figures: Mapping[str, str],
                     workdir: str | Path, output: str | Path) -> None:
    """Lay out a build folder (sources, generated/, figures/<slug>/) and run latexmk in it."""
    from mathdl.report import compile_latex

    workdir = Path(workdir)
    start = time.perf_counter()
    # Keep latexmk's own state between runs (faster), but refresh every input.
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(sources, workdir, dirs_exist_ok=True)
    shutil.rmtree(workdir / "generated", ignore_errors=True)
    shutil.copytree(generated, workdir / "generated")
    shutil.rmtree(workdir / "figures", ignore_errors=True)
    for name, folder in figures.items():
        shutil.copytree(folder, workdir / "figures" / slug(name))
    out = Path(output)
    tmp = out.with_name(f".{out.name}.tmp")
    compile_latex(workdir, main, tmp)
    tmp.replace(out)
    print(f"compiled {out} in {time.perf_counter() - start:.1f} s")
