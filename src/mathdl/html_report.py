"""The pieces of Snakemake's HTML report (``snakemake --report report.html``) that Snakemake
cannot make by itself: each figure's caption and each table, read from the generated LaTeX.

The paper's words come from the study templates, rendered into
``results/report/<plan>/generated/sections/<slug>.tex`` (see :mod:`mathdl.templating`); this
module reads the figures and tables back out of those files, so the report shows the very
captions and tables the paper prints:

- ``captions.rst``: one reStructuredText caption per figure, as a Jinja2 template that
  Snakemake renders for each figure with the wildcards ``experiment`` and ``name`` (a rule
  gives ``report()`` one caption file for all its outputs; the template picks the right one);
- ``tables/<experiment>/<label>.html``: each table of an experiment's section as a small
  HTML page (caption above, header row, body rows).

LaTeX becomes reStructuredText by a small converter that knows what the templates write
(``\\num``, escaped specials, font commands, citations, inline math). Math is rendered by
docutils, with the macros of the paper's preamble expanded first; a formula docutils cannot
render is shown as its LaTeX source, never dropped.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from mathdl import report
from mathdl.integrity import write_manifest

CAPTIONS_FILE = "captions.rst"
TABLES_DIR = "tables"
NOT_IN_PAPER = "This figure is not in the paper (its experiment's section does not include it)."

# ----------------------------------------------------------------------------- reading LaTeX


def braced(tex: str, start: int) -> tuple[str, int]:
    """The content of the brace group opening at ``tex[start]`` (which must be ``{``), and the
    index just after its closing brace. Escaped braces (``\\{``) do not count."""
    if start >= len(tex) or tex[start] != "{":
        raise ValueError(f"no brace group at {start}: {tex[start:start + 20]!r}")
    depth, i = 0, start
    while i < len(tex):
        c = tex[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return tex[start + 1:i], i + 1
        i += 1
    raise ValueError(f"unbalanced braces from {start}: {tex[start:start + 40]!r}")


def _skip_optional(tex: str, i: int) -> int:
    """Past an optional ``[...]`` argument (and spaces) at ``i``."""
    while i < len(tex) and tex[i] in " \t\n":
        i += 1
    if i < len(tex) and tex[i] == "[":
        depth = 0
        while i < len(tex):
            if tex[i] == "[":
                depth += 1
            elif tex[i] == "]":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
    return i


def command_argument(tex: str, command: str) -> str | None:
    """The first argument of the first ``\\command[opt]{arg}`` in ``tex`` (None if absent)."""
    m = re.search(rf"\\{command}(?![A-Za-z])", tex)
    if m is None:
        return None
    i = _skip_optional(tex, m.end())
    while i < len(tex) and tex[i] in " \t\n":
        i += 1
    return braced(tex, i)[0]


def environments(tex: str, name: str) -> list[str]:
    """The bodies of every ``\\begin{name}`` ... ``\\end{name}`` (and ``name*``), in order."""
    pattern = re.compile(rf"\\begin\{{{name}\*?\}}(.*?)\\end\{{{name}\*?\}}", re.S)
    return [m.group(1) for m in pattern.finditer(_strip_comments(tex))]


def _strip_comments(tex: str) -> str:
    """LaTeX without its ``%`` comments (an escaped ``\\%`` stays)."""
    return re.sub(r"(?<!\\)%[^\n]*", "", tex)


def preamble_macros(tex: str) -> dict[str, tuple[int, str]]:
    """The macros a preamble defines, by name: (number of arguments, body).

    ``\\newcommand{\\norm}[1]{\\lVert #1\\rVert}`` gives ``norm: (1, '\\lVert #1\\rVert')``;
    ``\\DeclareMathOperator{\\relu}{ReLU}`` gives ``relu: (0, '\\operatorname{ReLU}')``.
    """
    tex = _strip_comments(tex)
    macros: dict[str, tuple[int, str]] = {}
    for m in re.finditer(r"\\(?:re)?newcommand\*?\s*\{\\([A-Za-z]+)\}\s*(?:\[(\d)\])?\s*(?=\{)", tex):
        try:
            body, _ = braced(tex, m.end())
        except ValueError:
            continue
        macros[m.group(1)] = (int(m.group(2) or 0), body)
    for m in re.finditer(r"\\DeclareMathOperator(\*?)\s*\{\\([A-Za-z]+)\}\s*(?=\{)", tex):
        try:
            body, _ = braced(tex, m.end())
        except ValueError:
            continue
        macros[m.group(2)] = (0, rf"\operatorname{m.group(1)}{{{body}}}")
    return macros


def expand_macros(tex: str, macros: Mapping[str, tuple[int, str]], depth: int = 5) -> str:
    """``tex`` with the given macros expanded (arguments in braces), ``depth`` times at most."""
    if not macros:
        return tex
    pattern = re.compile(r"\\(" + "|".join(sorted(map(re.escape, macros), key=len, reverse=True)) + r")(?![A-Za-z])")
    for _ in range(depth):
        out, pos, changed = [], 0, False
        for m in pattern.finditer(tex):
            if m.start() < pos:
                continue
            n_args, body = macros[m.group(1)]
            i, args = m.end(), []
            try:
                for _ in range(n_args):
                    while i < len(tex) and tex[i] == " ":
                        i += 1
                    arg, i = braced(tex, i)
                    args.append(arg)
            except ValueError:
                continue  # not the form we expand: leave it as written
            for k, arg in enumerate(args, start=1):
                body = body.replace(f"#{k}", arg)
            # a body ending in a control word (\rVert) must not run into a letter after it
            ends_in_word = re.search(r"\\[A-Za-z]+$", body) is not None
            out += [tex[pos:m.start()], body + (" " if ends_in_word and tex[i:i + 1].isalpha() else "")]
            pos, changed = i, True
        tex = "".join(out) + tex[pos:]
        if not changed:
            break
    return tex


# ----------------------------------------------------------------------------- LaTeX to rst

# Text-mode commands that print a character or nothing.
_SYMBOLS = {
    "%": "%", "&": "&", "#": "#", "_": "_", "$": "$", "{": "{", "}": "}", ",": "\u2009", " ": " ",
    ";": " ", ":": " ", "!": "", "-": "", "/": "", "\\": " ",
    "ldots": "\u2026", "dots": "\u2026", "textasciitilde": "~", "textasciicircum": "^",
    "textbackslash": "\\", "textbar": "|", "textless": "<", "textgreater": ">", "S": "\u00a7",
    "LaTeX": "LaTeX", "TeX": "TeX", "quad": " ", "qquad": " ", "noindent": "", "centering": "",
    "small": "", "footnotesize": "", "scriptsize": "", "normalsize": "", "relax": "", "par": " ",
}
# Commands whose argument is printed as it is (fonts, numbers) or dropped (labels).
_KEEP_ARGUMENT = {"num", "emph", "textit", "textbf", "texttt", "textsc", "textsf", "textrm", "textup",
                  "mbox", "text", "textnormal", "url", "mathrm", "ensuremath"}
_DROP = {"label", "index", "vspace", "hspace", "phantom", "footnotemark"}
_CITES = {"cite", "citep", "citet", "citealp", "citealt", "citeauthor", "citeyear", "parencite", "textcite"}
_REFS = {"ref", "cref", "Cref", "eqref", "autoref", "pageref"}
_MATH = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$|\\\[(.+?)\\\]|(?<!\\)\$(.+?)(?<!\\)\$|\\\((.+?)\\\)", re.S)


def _text_to_plain(tex: str) -> str:
    """Text-mode LaTeX (no math) as plain Unicode text."""
    out, i = [], 0
    while i < len(tex):
        c = tex[i]
        if c == "\\":
            m = re.match(r"\\([A-Za-z]+)\*?|\\(.)", tex[i:], re.S)
            if m is None:  # a backslash at the very end
                out.append("\\")
                break
            name = m.group(1) or m.group(2)
            i += m.end()
            if m.group(2) is not None:  # a control symbol: \% \& \, \\ ...
                out.append(_SYMBOLS.get(name, name))
                continue
            j = _skip_optional(tex, i)
            while j < len(tex) and tex[j] == " ":
                j += 1
            has_arg = j < len(tex) and tex[j] == "{"
            if has_arg:
                try:
                    braced(tex, j)
                except ValueError:  # unbalanced: print what follows as text, not fail
                    has_arg = False
            if name in _CITES and has_arg:
                arg, i = braced(tex, j)
                out.append("[" + ", ".join(k.strip() for k in arg.split(",")) + "]")
            elif name in _REFS and has_arg:
                arg, i = braced(tex, j)
                out.append(f"[{arg}]")
            elif name in _DROP and has_arg:
                _, i = braced(tex, j)
            elif (name in _KEEP_ARGUMENT or name not in _SYMBOLS) and has_arg:
                arg, i = braced(tex, j)
                out.append(_text_to_plain(arg))
            elif name in _SYMBOLS:
                out.append(_SYMBOLS[name])
                if tex[i:i + 2] == "{}":
                    i += 2
            else:  # an unknown command without argument: its name, rather than nothing
                out.append(name)
        elif c in "{}":
            i += 1
        elif c == "~":
            out.append("\u00a0")
            i += 1
        elif tex.startswith("---", i):
            out.append("\u2014")
            i += 3
        elif tex.startswith("--", i):
            out.append("\u2013")
            i += 2
        elif tex.startswith("``", i) or tex.startswith("''", i):
            out.append("\u201c" if c == "`" else "\u201d")
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _rst_escape(text: str) -> str:
    return re.sub(r"([\\`*_|])", r"\\\1", text)


# docutils stops at its first warning (we then fall back) and prints nothing.
_QUIET = {"halt_level": 2, "report_level": 5, "warning_stream": io.StringIO()}


def _math_renders(latex: str) -> bool:
    """Whether docutils renders ``latex`` without an unknown command or an error."""
    from docutils.core import publish_parts

    try:
        # docutils' math parser prints what it does not know ("* Unknown command"): kept out of the log
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            # the writer and math output of the report's pages (_rst_to_html): MathML fails on some
            # formulas the plain HTML math output takes, such as a superscript without a base
            html = publish_parts(f":math:`{latex}`", writer="html5",
                                 settings_overrides={**_QUIET, "math_output": "MathML"})["body"]
    except Exception:  # docutils raises its SystemMessage (or a parser error) on what it cannot read
        return False
    return 'class="unknown"' not in html and "system-message" not in html and "Unknown command" not in html


def tex_to_rst(tex: str, macros: Mapping[str, tuple[int, str]] | None = None) -> str:
    """One paragraph of LaTeX (a caption, a table cell) as one line of reStructuredText.

    Inline math becomes the ``:math:`` role (docutils renders it) after the preamble's
    ``macros`` are expanded; a formula docutils cannot render is shown as its LaTeX source.
    """
    tex = re.sub(r"\s+", " ", _strip_comments(tex)).strip()
    parts, pos = [], 0
    for m in _MATH.finditer(tex):
        parts.append(_rst_escape(_text_to_plain(tex[pos:m.start()])))
        latex = next(g for g in m.groups() if g is not None).strip()
        latex = expand_macros(re.sub(r"\\num\{([^{}]*)\}", r"\1", latex), macros or {}).strip()  # no space before the closing `
        if _math_renders(latex):
            parts.append(r"\ :math:`" + latex.replace("`", r"\`") + r"`\ ")
        else:
            parts.append(r"\ ``" + m.group(0).replace("``", "` `") + r"``\ ")
        pos = m.end()
    parts.append(_rst_escape(_text_to_plain(tex[pos:])))
    text = "".join(parts).strip()
    # A leading "- ", "1. " or ".. " would start a list or a comment: an escaped space first.
    return r"\ " + text if text else ""


# ----------------------------------------------------------------------------- figures and tables


def figure_captions(section_tex: str) -> dict[tuple[str, str], str]:
    """Each figure of a section by (figure folder, figure name): its caption's LaTeX.

    ``\\includegraphics{figures/<slug>/<name>.pdf}`` gives the key ``(<slug>, <name>)``; every
    graphic of a figure environment shares its caption.
    """
    captions = {}
    for body in environments(section_tex, "figure"):
        caption = command_argument(body, "caption")
        for m in re.finditer(r"\\includegraphics\s*(?:\[[^\]]*\])?\s*\{([^{}]+)\}", body):
            path = Path(m.group(1))
            captions[(path.parent.name, path.stem)] = caption or ""
    return captions


@dataclass(frozen=True)
class Table:
    """A table of the paper: its label, caption, header rows and body rows (cells as LaTeX)."""

    label: str
    caption: str
    header: list[list[str]]
    rows: list[list[str]]


_RULE_LINE = re.compile(r"\\(?:toprule|midrule|bottomrule|hline|cline\{[^}]*\}|cmidrule(?:\([^)]*\))?\{[^}]*\})")


def tables(section_tex: str) -> list[Table]:
    """The tables (``table`` environments with a ``tabular``, and ``longtable``) of a section, in order."""
    found = []
    for n, body in enumerate(environments(section_tex, "table"), start=1):
        tabulars = environments(body, "tabular")
        if not tabulars:
            continue
        tabular = tabulars[0].lstrip()
        if tabular.startswith("{"):  # the column specification
            tabular = tabular[braced(tabular, 0)[1]:]
        head, sep, rest = tabular.partition(r"\midrule")
        if not sep:  # no rule under a header: every row is a body row
            head, rest = "", tabular
        found.append(Table(
            label=command_argument(body, "label") or f"table-{n}",
            caption=command_argument(body, "caption") or "",
            header=_rows(head),
            rows=_rows(rest),
        ))
    # A long table (mathdl.report.booktabs_table above LONG_TABLE_ROWS rows): the header of its
    # first page, the rows after its feet.
    for n, body in enumerate(environments(section_tex, "longtable"), start=1):
        first, _, rest = body.partition(r"\endfirsthead")
        head = first.partition(r"\toprule")[2].partition(r"\midrule")[0]
        found.append(Table(
            label=command_argument(first, "label") or f"longtable-{n}",
            caption=command_argument(first, "caption") or "",
            header=_rows(head),
            rows=_rows(rest.partition(r"\endlastfoot")[2]),
        ))
    return sorted(found, key=lambda t: section_tex.find(f"\\label{{{t.label}}}"))


def _rows(tex: str) -> list[list[str]]:
    tex = _RULE_LINE.sub("", tex)
    rows = []
    for line in re.split(r"\\\\(?:\[[^\]]*\])?", tex):
        if line.strip():
            rows.append([cell.strip() for cell in re.split(r"(?<!\\)&", line)])
    return rows


def table_html(table: Table, macros: Mapping[str, tuple[int, str]] | None = None) -> str:
    """A table as a small HTML page: its caption above, header and body rows (docutils).

    A table whose rows differ in length (a ``\\multicolumn``), or that docutils cannot lay
    out, is shown as its LaTeX source under its caption: never as a grid with shifted cells."""
    caption = tex_to_rst(table.caption, macros)
    source = "\n".join("   " + line for line in _latex_source(table).splitlines())
    as_source = f"{caption}\n\n::\n\n{source}\n"
    all_rows = table.header + table.rows
    if not all_rows or len({len(r) for r in all_rows}) != 1:
        return _rst_to_html(as_source, table.label)
    lines = [f".. list-table:: {caption}", f"   :header-rows: {len(table.header)}", ""]
    for row in all_rows:
        cells = [tex_to_rst(c, macros) for c in row]
        lines += [f"   * - {cells[0]}".rstrip()] + [f"     - {c}".rstrip() for c in cells[1:]]
    try:
        return _rst_to_html("\n".join(lines) + "\n", table.label)
    except Exception:  # docutils' SystemMessage, on a cell it cannot read
        return _rst_to_html(as_source, table.label)


def _latex_source(table: Table) -> str:
    return "\n".join(" & ".join(row) + r" \\" for row in table.header + table.rows)


def _rst_to_html(rst: str, title: str) -> str:
    from docutils.core import publish_string

    html = publish_string(
        rst,
        writer="html5",
        settings_overrides={**_QUIET, "math_output": "MathML", "title": title, "embed_stylesheet": True,
                            "table_style": "booktabs"},
    )
    return html.decode("utf-8")


def captions_template(captions: Mapping[str, Mapping[str, str]]) -> str:
    """The Jinja2 template of every figure's caption, for ``report(caption=...)``.

    Snakemake renders it once per figure, with ``snakemake.wildcards.experiment`` and
    ``.name``; the captions travel as a JSON literal, which Jinja2 reads as a dict (its string
    escapes are Python's, a superset of JSON's).
    """
    literal = json.dumps(captions, ensure_ascii=False, sort_keys=True)
    return (
        "{# Generated by mathdl (mathdl.html_report): the figures' captions in the paper. #}\n"
        f"{{% set captions = {literal} %}}\n"
        "{% set caption = captions.get(snakemake.wildcards.experiment, {}).get(snakemake.wildcards.name) %}\n"
        f"{{{{ caption if caption else {json.dumps(NOT_IN_PAPER)} }}}}\n"
    )


def _table_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", label).strip("-") or "table"


def write_html_report_pieces(experiments: Sequence[str], sections_dir: str | Path,
                             figure_dirs: Sequence[str | Path], preamble: str | Path | None,
                             outdir: str | Path) -> None:
    """``captions.rst`` and ``tables/<experiment>/<label>.html`` in ``outdir`` (written atomically).

    ``experiments`` and ``figure_dirs`` are in the same order; ``sections_dir`` holds each
    experiment's rendered section as ``<slug>.tex``; ``preamble`` is the paper's source, whose
    macros are expanded in the math.
    """
    macros = preamble_macros(Path(preamble).read_text()) if preamble else {}
    by_slug = {report.slug(name): name for name in experiments}
    captions: dict[str, dict[str, str]] = {name: {} for name in experiments}
    for name, folder in zip(experiments, figure_dirs):
        for png in sorted(Path(folder).glob("*.png")):
            captions[name][png.stem] = ""  # not in the paper unless a section shows it
    outdir = Path(outdir)
    tmp = outdir.with_name(outdir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in experiments:
        section = Path(sections_dir) / f"{report.slug(name)}.tex"
        if not section.is_file():
            continue
        tex = section.read_text()
        for (folder, figure), caption in figure_captions(tex).items():
            if folder in by_slug and figure in captions[by_slug[folder]]:
                captions[by_slug[folder]][figure] = tex_to_rst(caption, macros)
        for table in tables(tex):
            path = tmp / TABLES_DIR / name / f"{_table_name(table.label)}.html"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(table_html(table, macros))
    (tmp / CAPTIONS_FILE).write_text(captions_template(captions))
    write_manifest(tmp)
    shutil.rmtree(outdir, ignore_errors=True)
    tmp.rename(outdir)

