"""LaTeX pieces: escaping, numbers, figures, metadata."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from mathdl.report import LONG_TABLE_ROWS, booktabs_table, escape, figure_tex, fmt, metadata_tex, slug


def test_escape_every_special_character():
    assert escape("wide_nets_&_50%") == r"wide\_nets\_\&\_50\%"
    assert escape(r"a\b{c}$#~^") == r"a\textbackslash{}b\{c\}\$\#\textasciitilde{}\textasciicircum{}"


def test_slug_is_path_safe():
    assert slug("wide_nets_&_50%") == "wide-nets-50"


def test_fmt_numbers():
    assert fmt(0.123456) == r"\num{0.123}"
    assert fmt(7) == r"\num{7}"
    assert fmt(float("nan")) == "--"
    assert fmt(None) == "--"


def test_figure_tex_block():
    assert figure_tex("figures/a", "loss", r"Loss $\{x\}$.", "fig:a-loss") == "\n".join([
        r"\begin{figure}[htbp]",
        r"  \centering",
        r"  \includegraphics[width=\linewidth]{figures/a/loss.pdf}",
        r"  \caption{Loss $\{x\}$.}",
        r"  \label{fig:a-loss}",
        r"\end{figure}",
    ])
    assert r"[width=0.8\linewidth]{figures/a/loss.pdf}" in figure_tex("figures/a", "loss", "", "l", width=r"0.8\linewidth")


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="needs latexmk")
def test_escaped_metadata_compiles(tmp_path):
    (tmp_path / "meta.tex").write_text(metadata_tex("100% of {x} & y_z #1 ~ ^ \\", ["A & B", "C_D"], "Course", ""))
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\\input{meta}\\title{\\mathdlTitle}\\author{\\mathdlAuthors}"
        "\\date{\\mathdlDate}\\begin{document}\\maketitle\\end{document}\n"
    )
    proc = subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:]


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="needs latexmk")
@pytest.mark.parametrize("n_rows", [3, 4 * LONG_TABLE_ROWS])
def test_tables_short_and_long_compile_with_every_row(tmp_path, n_rows):
    """A short table is a float; a long one breaks across pages, and no row is lost either way."""
    rows = [[f"row{i}", f"{i / 7:.3f}"] for i in range(n_rows)]
    tex = booktabs_table(["point", "test error"], rows, "Errors.", "tab:e")
    assert ("longtable" in tex) == (n_rows > LONG_TABLE_ROWS)
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\\usepackage{booktabs,longtable,adjustbox}\\begin{document}\n" + tex + "\n\\end{document}\n"
    )
    proc = subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:]
    text = subprocess.run(["pdftotext", "-layout", "doc.pdf", "-"], cwd=tmp_path, capture_output=True, text=True).stdout
    assert all(f"row{i} " in text for i in range(n_rows))
    pages = text.count("\f")
    assert (pages > 1) == (n_rows > LONG_TABLE_ROWS)
