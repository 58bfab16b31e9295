"""A study's words: LaTeX templates rendered with its summary's numbers (Jinja2).

Each study folder holds ``templates/section.tex`` (its subsection of the paper) and
``templates/slides.tex`` (its beamer frames). They are Jinja2 templates with delimiters
that LaTeX editors leave alone (the convention of the Jinja2 docs for LaTeX):

- ``\\VAR{summary.best_test_error|fmt}`` prints a value;
- ``%% if summary.n_diverged == 0`` ... ``%% else`` ... ``%% endif``: a branch on a line
  of its own (``\\BLOCK{if ...}`` inline); wording that depends on a result is such a
  visible branch;
- ``%# a comment`` is dropped from the output; ``\\#{ ... }`` too.

Python computes numbers (``analyze``, and an optional ``context(experiment, summary)`` for
values that only the words need); templates hold words. A group takes over an
experiment's words with ``mathdl eject EXPERIMENT``, which copies the templates to
``report/experiments/<slug>/``; the build then renders that copy instead of the study's.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Mapping

import jinja2
import jinja2.ext

from mathdl import report

# Shared pieces every template may import: ``%% import "common.tex" as common``.
COMMON_DIR = Path(__file__).parent / "studies" / "_templates"
EJECT_DIR = "experiments"  # under report/: report/experiments/<slug>/section.tex, slides.tex
TEMPLATE_NAMES = ("section.tex", "slides.tex")


def plural(n, singular: str, plural_form: str | None = None) -> str:
    """'1 run', '3 runs' (the number printed with \\num)."""
    word = singular if n == 1 else (plural_form or singular + "s")
    return f"{report.fmt(n)}~{word}"


def count(n, singular: str, plural_form: str | None = None) -> str:
    """The noun only, in the number's grammatical number: 'run' or 'runs'."""
    return singular if n == 1 else (plural_form or singular + "s")


def percent(value, digits: int = 3) -> str:
    """A fraction in [0, 1] as a percentage, '12.5\\%'."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "--"
    return rf"\num{{{100 * float(value):.{digits}g}}}\,\%"


def english_list(items) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = [str(i) for i in items]
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


class _WholeLines(jinja2.ext.Extension):
    """``%% statement`` and ``%# comment`` lines vanish whole, newline included, and nothing more.

    (Jinja2's own line statements also swallow the blank line after them, which in LaTeX is a
    paragraph break; here each such line becomes an inline ``\\BLOCK{statement}``.)
    """

    _STATEMENT = re.compile(r"^[ \t]*%%(.*?)[ \t]*(?:\r?\n|\Z)", re.M)
    _COMMENT = re.compile(r"^[ \t]*%#.*(?:\r?\n|\Z)", re.M)

    def preprocess(self, source, name, filename=None):
        source = self._COMMENT.sub("", source)
        return self._STATEMENT.sub(lambda m: r"\BLOCK{" + m.group(1).strip() + "}", source)


def environment(search_path: list[Path]) -> jinja2.Environment:
    """The Jinja2 environment with LaTeX-friendly delimiters, strict about undefined names."""
    env = jinja2.Environment(
        extensions=[_WholeLines],
        loader=jinja2.FileSystemLoader([str(p) for p in search_path] + [str(COMMON_DIR)]),
        block_start_string=r"\BLOCK{",
        block_end_string="}",
        variable_start_string=r"\VAR{",
        variable_end_string="}",
        comment_start_string=r"\#{",
        comment_end_string="}",
        # A %% line vanishes whole; an inline \BLOCK{...} keeps the text around it as it is.
        trim_blocks=False,
        lstrip_blocks=False,
        autoescape=False,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(
        fmt=report.fmt, esc=report.escape, percent=percent, count=count, plural=plural, english_list=english_list,
    )
    env.globals.update(
        fmt=report.fmt, esc=report.escape, plural=plural, count=count, percent=percent,
        english_list=english_list, figure=report.figure_tex, table=report.booktabs_table,
        named=report.named, data_set_name=report.data_set_name, key_name=report.key_name,
        OPTIMIZER_NAMES=report.OPTIMIZER_NAMES, LOSS_NAMES=report.LOSS_NAMES,
        ACTIVATION_NAMES=report.ACTIVATION_NAMES, isfinite=_isfinite,
    )
    return env


def _isfinite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def study_template_dir(study_name: str) -> Path:
    return Path(__file__).parent / "studies" / study_name / "templates"


def has_templates(study_name: str) -> bool:
    return all((study_template_dir(study_name) / n).is_file() for n in TEMPLATE_NAMES)


def ejected_dir(report_dir: str | Path, experiment_name: str) -> Path:
    return Path(report_dir) / EJECT_DIR / report.slug(experiment_name)


def render(study, experiment, summary: Mapping[str, Any], figure_dir: str,
           report_dir: str | Path | None = None) -> report.ReportPiece:
    """The experiment's subsection and frames: its ejected templates if any, else the study's."""
    search = [study_template_dir(study.name)]
    source = "study"
    if report_dir is not None:
        ejected = ejected_dir(report_dir, experiment.name)
        if ejected.is_dir():
            search.insert(0, ejected)
            source = str(ejected)
    env = environment(search)
    extra = study.context(experiment, summary) if study.context is not None else {}
    context = {
        "experiment": experiment,
        "summary": summary,
        "fig": figure_dir,
        "slug": report.slug(experiment.name),
        "title": report.escape(experiment.title),
        "description": report.escape(experiment.description),
        **extra,
    }
    pieces = {}
    for name in TEMPLATE_NAMES:
        try:
            pieces[name] = env.get_template(name).render(context)
        except jinja2.TemplateError as err:
            where = f"{getattr(err, 'filename', None) or name}"
            line = getattr(err, "lineno", None)
            raise RuntimeError(
                f"template {where}{f' line {line}' if line else ''} of experiment {experiment.name!r} "
                f"({source} templates): {err.message if hasattr(err, 'message') else err}"
            ) from None
    return report.ReportPiece(section=pieces["section.tex"], slides=pieces["slides.tex"])


def render_experiment(experiment, summary: Mapping[str, Any], report_dir: str | Path | None = None) -> report.ReportPiece:
    """``render`` for an experiment of a plan, with its figure folder as the build lays it out."""
    from mathdl.studies import get_study

    return render(get_study(experiment.study), experiment, summary, f"figures/{report.slug(experiment.name)}", report_dir)


def eject(study_name: str, experiment_name: str, report_dir: str | Path) -> list[Path]:
    """Copy a study's templates to report/experiments/<slug>/ for the group to edit; never overwrites."""
    target = ejected_dir(report_dir, experiment_name)
    if target.exists():
        raise FileExistsError(f"{target} exists already (delete it to eject again)")
    source = study_template_dir(study_name)
    if not has_templates(study_name):
        raise FileNotFoundError(f"study {study_name} has no templates to eject")
    target.mkdir(parents=True)
    copied = []
    for path in sorted(source.iterdir()):
        if path.is_file():
            (target / path.name).write_text(path.read_text())
            copied.append(target / path.name)
    return copied
