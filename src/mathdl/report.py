"""LaTeX pieces of the report: escaping, numbers, ``\\result`` values, and compiling with latexmk.

Numbers in the text are formatted from each study's ``summary.json`` when its templates are
rendered (:mod:`mathdl.templating`), and every value of every summary is available to
hand-written text as ``\\result{experiment}{key.path}`` (:func:`results_tex`), so the text and
the data cannot disagree.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_ESCAPE_RE = re.compile("|".join(re.escape(c) for c in _ESCAPES))

_DIGIT_WORDS = "Zero One Two Three Four Five Six Seven Eight Nine".split()


# Config values as the text names them (LaTeX); a value missing here is printed escaped.
OPTIMIZER_NAMES = {
    "gd": "full-batch gradient descent", "sgd": "SGD", "momentum": "SGD with heavy-ball momentum",
    "nesterov": "SGD with Nesterov momentum", "adagrad": "AdaGrad", "adam": "Adam",
}
LOSS_NAMES = {"mse": "squared", "cross_entropy": "cross-entropy", "hinge": "multiclass hinge"}
ACTIVATION_NAMES = {"relu": "ReLU", "logistic": "logistic", "tanh": "tanh", "softplus": "soft-plus",
                    "identity": "linear", "step": "step"}
DATA_SET_NAMES = {
    "digits": r"scikit-learn's $8\times8$ digits \citep{alpaydin1998optical}",
    "mnist": r"MNIST \citep{lecun1998gradient}",
    "fashion_mnist": r"Fashion-MNIST \citep{xiao2017fashion}",
    "cifar10": r"CIFAR-10 \citep{krizhevsky2009learning}",
}


# Config keys as the text names them (swept keys on axes, in tables and sentences).
KEY_NAMES = {
    "model.width": "width", "model.depth": "depth", "model.activation": "activation",
    "model.residual": "residual", "train.lr": "learning rate", "train.optimizer": "optimizer",
    "train.batch_size": "batch size", "train.epochs": "epochs", "train.weight_decay": "weight decay",
    "train.dropout": "dropout rate", "train.momentum": "momentum", "train.l1": "L1 penalty",
    "task.label_noise": "label noise", "task.n_train": "training set size", "task.input_dim": "input dimension",
    "task.n_classes": "number of classes", "task.teacher_width": "teacher width",
}


# The architectures whose model.width is the width parameter k of Nakkiran et al. (2020): their
# four stages have k, 2k, 4k and 8k channels, so no layer has width k. Their words for the key
# (LaTeX, and matplotlib's mathtext on figures, which reads $k$ alike).
WIDTH_PARAMETER_ARCHS = ("cnn", "resnet18")
WIDTH_PARAMETER_KEY_NAMES = {"model.width": "width parameter $k$"}


def key_name(key: str, arch: str = "") -> str:
    """The text's name of a config key ('model.width' -> 'width'); others printed escaped.
    ``arch`` is the one architecture of the networks the key describes ("" for several): for cnn
    and resnet18 model.width is their 'width parameter $k$'."""
    if arch in WIDTH_PARAMETER_ARCHS and key in WIDTH_PARAMETER_KEY_NAMES:
        return WIDTH_PARAMETER_KEY_NAMES[key]
    return KEY_NAMES.get(key, escape(key.split(".", 1)[-1].replace("_", " ")))


def named(names: Mapping[str, str], value: str) -> str:
    """The text's name of a config value (``named(OPTIMIZER_NAMES, "momentum")``), else the value escaped."""
    return names.get(value, escape(value))


def data_set_name(task_name: str) -> str:
    """'scikit-learn's 8x8 digits (citation)' for a real data set, else 'the <name> task'."""
    return DATA_SET_NAMES.get(task_name, f"the {escape(task_name)} task")


def escape(text: str) -> str:
    """Plain text to LaTeX: every special character printed as itself."""
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group()], str(text))


def slug(name: str) -> str:
    """A file-name-safe form of an experiment name, for paths that LaTeX reads."""
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-") or "experiment"


def fmt(value, digits: int = 3) -> str:
    """A number for the text: siunitx-formatted, or an en dash for a missing one."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "--"
    if isinstance(value, (bool,)):
        return "yes" if value else "no"
    if isinstance(value, int):
        return rf"\num{{{value}}}"
    return rf"\num{{{float(value):.{digits}g}}}"


@dataclass
class ReportPiece:
    """What one experiment contributes: a paper subsection and beamer frames."""

    section: str = ""
    slides: str = ""


RESULT_KEY = re.compile(r"[A-Za-z0-9_.:+-]+")


def flatten(summary, prefix: str = "") -> dict[str, object]:
    """A summary's leaves by dotted path: {'best': {'x': 3}, 'pts': [1]} -> {'best.x': 3, 'pts.0': 1}."""
    items = summary.items() if isinstance(summary, Mapping) else enumerate(summary)
    out: dict[str, object] = {}
    for key, value in items:
        path = f"{prefix}{key}"
        if isinstance(value, (Mapping, list, tuple)):
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def result_value(value) -> str:
    """How ``\result`` prints a summary value: numbers as the generated text does, text escaped."""
    if isinstance(value, str):
        return escape(value)
    return fmt(value)


def results_tex(summaries: Mapping[str, Mapping]) -> str:
    r"""``\result{experiment}{key.path}``: any value of any summary.json, for hand-written text.

    ``experiment`` is the experiment's slug (its name with every run of characters other
    than letters and digits replaced by ``-``); ``key.path`` the dotted path of a value in
    its summary.json (list entries by index: ``points.0.test_error.mean``). A key that does
    not exist stops the compile with a message naming the experiment and the key.
    """
    lines = [
        "% Generated by mathdl from the analyses' summary.json files. Do not edit.",
        r"% \result{experiment-slug}{key.path} prints one value; see report/README.md.",
        r"\makeatletter",
        r"\DeclareRobustCommand{\result}[2]{%",
        r"  \ifcsname mathdl@r@#1@#2\endcsname\csname mathdl@r@#1@#2\endcsname",
        r"  \else\mathdl@noresult{#1}{#2}\fi}",
        r"\newcommand{\mathdl@noresult}[2]{%",
        r"  \ifcsname mathdl@e@#1\endcsname",
        r"    \PackageError{mathdl}{experiment '#1' has no result '#2' (its keys are the paths of its summary.json)}{}%",
        r"  \else",
        r"    \PackageError{mathdl}{no experiment '#1' in this plan (experiments: " + ", ".join(slug(n) for n in summaries) + ")}{}%",
        r"  \fi\textbf{??}}",
    ]
    for name, summary in summaries.items():
        s = slug(name)
        lines.append(rf"\expandafter\def\csname mathdl@e@{s}\endcsname{{}}")
        for key, value in flatten(summary).items():
            if RESULT_KEY.fullmatch(key):
                lines.append(rf"\expandafter\def\csname mathdl@r@{s}@{key}\endcsname{{{result_value(value)}}}")
    lines.append(r"\makeatother")
    return "\n".join(lines) + "\n"


def metadata_tex(title: str, authors: Sequence[str], course: str, date: str, survey: bool = True,
                 n_experiments: int = 0, n_runs: int = 0) -> str:
    and_sep = r" \and "
    joined = and_sep.join(escape(a) for a in authors)
    today = r"\today"
    return "\n".join(
        [
            "% Generated by mathdl from the config's project section. Do not edit.",
            rf"\newcommand{{\mathdlTitle}}{{{escape(title)}}}",
            rf"\newcommand{{\mathdlAuthors}}{{{joined}}}",
            rf"\newcommand{{\mathdlAuthorsShort}}{{{', '.join(escape(a) for a in authors)}}}",
            rf"\newcommand{{\mathdlCourse}}{{{escape(course)}}}",
            rf"\newcommand{{\mathdlDate}}{{{escape(date) if date else today}}}",
            rf"\newcommand{{\mathdlNumExperiments}}{{{n_experiments}}}",
            rf"\newcommand{{\mathdlNumRuns}}{{{n_runs}}}",
            r"\newif\ifmathdlsurvey",
            r"\mathdlsurveytrue" if survey else r"\mathdlsurveyfalse",
        ]
    ) + "\n"


LONG_TABLE_ROWS = 30  # a float with more rows would run off its page: a longtable breaks across pages


def booktabs_table(header: Sequence[str], rows: Sequence[Sequence[str]], caption: str, label: str) -> str:
    """A booktabs table; cells are LaTeX already.

    Up to LONG_TABLE_ROWS rows it is a float, shrunk to the text width where it is wider (a sweep of
    several keys has many columns); longer tables are a ``longtable`` in a smaller font that breaks
    across pages and repeats its header (a sweep of a few keys easily has 50 points).
    """
    cols = "l" + "r" * (len(header) - 1)
    head = "    " + " & ".join(header) + r" \\"
    body = "\n".join("    " + " & ".join(r) + r" \\" for r in rows)
    if len(rows) > LONG_TABLE_ROWS:
        return "\n".join(
            [
                r"{\small\setlength{\tabcolsep}{4pt}",
                rf"\begin{{longtable}}{{{cols}}}",
                rf"  \caption{{{caption}}}\label{{{label}}} \\",
                r"    \toprule",
                head,
                r"    \midrule",
                r"  \endfirsthead",
                rf"  \multicolumn{{{len(header)}}}{{l}}{{\small\tablename~\thetable{{}} (continued)}} \\",
                r"    \toprule",
                head,
                r"    \midrule",
                r"  \endhead",
                r"    \bottomrule",
                r"  \endlastfoot",
                body,
                r"\end{longtable}}",
            ]
        )
    return "\n".join(
        [
            r"\begin{table}[htbp]",
            r"  \centering",
            rf"  \caption{{{caption}}}",
            rf"  \label{{{label}}}",
            r"  \begin{adjustbox}{max width=\linewidth}",
            rf"  \begin{{tabular}}{{{cols}}}",
            r"    \toprule",
            head,
            r"    \midrule",
            body,
            r"    \bottomrule",
            r"  \end{tabular}",
            r"  \end{adjustbox}",
            r"\end{table}",
        ]
    )


def figure_tex(figure_dir: str, name: str, caption: str, label: str, width: str = r"\linewidth") -> str:
    """A figure environment with one centered ``figure_dir/name.pdf``; caption is LaTeX already.

    No trailing newline, like :func:`booktabs_table`.
    """
    return "\n".join(
        [
            r"\begin{figure}[htbp]",
            r"  \centering",
            f"  \\includegraphics[width={width}]{{{figure_dir}/{name}.pdf}}",
            f"  \\caption{{{caption}}}",
            f"  \\label{{{label}}}",
            r"\end{figure}",
        ]
    )


class TexMissing(RuntimeError):
    pass


TEX_INSTALL_HINT = (
    "apt-get install -y --no-install-recommends latexmk texlive-latex-base texlive-latex-recommended "
    "texlive-latex-extra texlive-fonts-recommended texlive-science lmodern poppler-utils"
)


def latex_command(main: str) -> list[str]:
    """latexmk when installed (TeX Live, MiKTeX); tectonic otherwise (conda-forge)."""
    if shutil.which("latexmk"):
        return ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error", main]
    if shutil.which("tectonic"):
        return ["tectonic", "--keep-logs", main]
    raise TexMissing(f"no TeX engine (latexmk or tectonic) is installed; on Debian/Ubuntu: {TEX_INSTALL_HINT}")


def latex_env() -> dict[str, str]:
    """The environment for TeX: log lines unwrapped (TeX Live wraps at 79 characters), so an
    error message such as a missing ``\\result`` key reaches the user whole."""
    import os

    return {**os.environ, "max_print_line": "10000", "error_line": "254", "half_error_line": "238"}


def compile_latex(workdir: Path, main: str, output: Path) -> None:
    """Compile ``workdir/main`` and copy the PDF to ``output``; on failure, name the log's errors."""
    cmd = latex_command(main)
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=latex_env())
    print(proc.stdout[-20000:])
    print(proc.stderr[-5000:])
    pdf = workdir / (Path(main).stem + ".pdf")
    if proc.returncode != 0 or not pdf.exists():
        log = workdir / (Path(main).stem + ".log")
        text = log.read_text(errors="replace").splitlines() if log.exists() else []
        errors = [ln for ln in text if ln.startswith("!") or ".tex:" in ln]
        raise RuntimeError(f"{cmd[0]} failed on {main} (exit {proc.returncode}): " + " | ".join(errors[:5]))
    output.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pdf, output)
