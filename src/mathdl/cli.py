"""The ``mathdl`` command: check a plan, list its runs, run the workflow, eject an experiment's
templates, train one group.

Errors in a config print one line naming the key, and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from mathdl.config import ConfigError, load_plan

DEFAULT_CONFIG = "config/config.yaml"


def _project_root() -> Path:
    """The folder holding workflow/Snakefile: the current one or one above it."""
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / "workflow" / "Snakefile").is_file():
            return folder
    raise SystemExit("mathdl: no workflow/Snakefile here or above; run this inside the mathdl project")


def cmd_check(args) -> int:
    plan = load_plan(args.config)
    n_groups = sum(len(e.groups) for e in plan.experiments)
    n_runs = sum(len(e.runs) for e in plan.experiments)
    print(f"{args.config}: valid; {len(plan.experiments)} experiments, {n_groups} training groups, {n_runs} runs")
    return 0


def cmd_plan(args) -> int:
    plan = load_plan(args.config)
    for e in plan.experiments:
        print(f"{e.name} (study {e.study}): {len(e.groups)} groups, {len(e.runs)} runs")
        for g in e.groups:
            point = ", ".join(f"{k}={v}" for k, v in g.runs[0].point) or "no sweep"
            model = g.runs[0].model
            if getattr(model, "param_budget", 0):  # the width the budget chose, and what it gives
                from mathdl import resources
                from mathdl.report import WIDTH_PARAMETER_ARCHS

                width = "width parameter k" if model.arch in WIDTH_PARAMETER_ARCHS else "width"
                point += f"; {width} {model.width} ({resources.parameter_count(g):,} parameters)"
            print(f"  group {g.group_id}: {len(g.runs)} runs; {point}")
    return 0


def cmd_run(args) -> int:
    """Validate, then hand over to Snakemake with the project's workflow."""
    plan_file = Path(args.config).resolve()
    load_plan(plan_file)
    root = _project_root()
    snakemake = shutil.which("snakemake") or "snakemake"
    cmd = [snakemake, "--snakefile", str(root / "workflow" / "Snakefile"), "--directory", str(root),
           "--cores", str(args.cores), "--configfile", str(plan_file)]
    if args.profile:
        cmd += ["--workflow-profile", str(root / "workflow" / "profiles" / args.profile)]
    if args.dry_run:
        cmd.append("-n")
    cmd += args.snakemake_args
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.call(cmd)


def cmd_train(args) -> int:
    """Train one group outside Snakemake (for debugging a study)."""
    import tempfile

    from mathdl.pipeline import make_data, train_group

    plan = load_plan(args.config)
    experiment = plan.experiment(args.experiment)
    group = experiment.group(args.group) if args.group else experiment.groups[0]
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.npz"
        make_data(vars(group.task), data)
        train_group(group.to_dict(), data, out / "metrics.parquet", out / "runs.parquet", out / "provenance.json",
                    device=args.device or plan.device, threads=plan.threads)
    print(f"wrote {out}/metrics.parquet, runs.parquet, provenance.json")
    return 0


def cmd_eject(args) -> int:
    """Copy an experiment's templates to report/experiments/<slug>/: the group edits the words there."""
    from mathdl import templating

    plan = load_plan(args.config)
    experiment = plan.experiment(args.experiment)
    report_dir = _project_root() / "report"
    try:
        copied = templating.eject(experiment.study, experiment.name, report_dir)
    except (FileExistsError, FileNotFoundError) as err:
        print(f"mathdl: {err}", file=sys.stderr)
        return 2
    for path in copied:
        print(f"wrote {path}")
    print(f"The build now renders these instead of study {experiment.study}'s templates; the numbers still "
          f"come from summary.json at every build. Delete the folder to go back.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mathdl",
        description=(
            "Reproducible experiments on deep networks, from a config to a compiled paper. "
            "The workflow is Snakemake's (workflow/Snakefile); this command checks plans, lists "
            "their runs, runs the workflow and trains single groups."
        ),
        epilog="Example: mathdl check config/config.yaml && mathdl run --cores 2",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("check", help="validate a config and count its experiments, groups and runs")
    p.add_argument("config", nargs="?", default=DEFAULT_CONFIG, help=f"YAML plan (default: {DEFAULT_CONFIG})")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("plan", help="list the training groups and sweep points of a config")
    p.add_argument("config", nargs="?", default=DEFAULT_CONFIG, help=f"YAML plan (default: {DEFAULT_CONFIG})")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("run", help="run the workflow (snakemake) on a config, to results/report/<plan>/paper.pdf")
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"YAML plan (default: {DEFAULT_CONFIG})")
    p.add_argument("--cores", default=str(os.cpu_count() or 1), help="parallel jobs/cores (default: all)")
    p.add_argument("--profile", help="a profile under workflow/profiles, e.g. slurm")
    p.add_argument("-n", "--dry-run", action="store_true", help="list the jobs without running them")
    p.add_argument("snakemake_args", nargs=argparse.REMAINDER, help="further arguments for snakemake (after --)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "eject", help="copy an experiment's text templates to report/experiments/ to edit its words",
        description=(
            "Copy the LaTeX templates of an experiment's study (its subsection and its slides) to "
            "report/experiments/<experiment>/. The build then renders your copy instead of the study's, "
            "with the numbers of the experiment's summary.json at every build."
        ),
    )
    p.add_argument("experiment", help="experiment name")
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"YAML plan (default: {DEFAULT_CONFIG})")
    p.set_defaults(func=cmd_eject)

    p = sub.add_parser("train", help="train one group of an experiment outside the workflow")
    p.add_argument("experiment", help="experiment name")
    p.add_argument("--group", help="group id (see `mathdl plan`; default: the first)")
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"YAML plan (default: {DEFAULT_CONFIG})")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override the config's device")
    p.add_argument("--out", default="results/debug", help="output folder (default: results/debug)")
    p.set_defaults(func=cmd_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    from mathdl.threads import configure_openmp

    configure_openmp()  # before torch loads, here and in the jobs it starts (mathdl.threads)
    args = build_parser().parse_args(argv)
    if getattr(args, "snakemake_args", None) and args.snakemake_args[0] == "--":
        args.snakemake_args = args.snakemake_args[1:]
    try:
        return args.func(args)
    except ConfigError as err:
        print(f"mathdl: invalid config: {err}", file=sys.stderr)
        return 2
    except KeyError as err:
        print(f"mathdl: {err.args[0]}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
