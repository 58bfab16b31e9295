"""The HTML report's pieces (mathdl.html_report): captions and tables read from the generated LaTeX."""

from __future__ import annotations

import html as htmllib
import json
import types

import jinja2
import pytest
from docutils.core import publish_parts

from mathdl import html_report, report
from mathdl.integrity import MANIFEST


def as_html(rst: str) -> str:
    """rst rendered as Snakemake renders a caption (docutils' html writer, default settings)."""
    return publish_parts(rst, writer="html", settings_overrides={"report_level": 1})["body"]


def test_caption_text_and_math_become_rst_that_docutils_renders_cleanly():
    tex = (r"Final error of Wide nets \& 50\% of \#labels against the fraction $p$ "
           r"(mean over \num{2}~seeds, \texttt{torch.autograd}, \citep{zhang2017, arora2019}) -- "
           r"and $y^\top(H^\infty)^{-1}y/n$.")
    html = as_html(html_report.tex_to_rst(tex))
    assert "system-message" not in html and "unknown" not in html
    assert "Wide nets &amp; 50% of #labels against the fraction" in html
    assert "mean over 2\u00a0seeds, torch.autograd, [zhang2017, arora2019]) \u2013 and" in html.replace("&nbsp;", "\u00a0")
    assert html.count('class="formula"') == 2  # both formulas rendered as math, not as text
    assert "\\" not in html and "$" not in html


def test_rst_special_characters_of_the_text_are_printed_as_themselves():
    html = as_html(html_report.tex_to_rst(r"1. a *star*, a `tick`, a pipe | and more\_underscores_ here"))
    assert "<p>1. a *star*, a `tick`, a pipe | and more_underscores_ here</p>" in html


def test_escaped_dollars_are_text():
    assert as_html(html_report.tex_to_rst(r"costs \$5 and \$6 for $n$")).count('class="formula"') == 1


def test_math_spacing_keeps_the_words_apart_and_the_punctuation_attached():
    html = as_html(html_report.tex_to_rst(r"one curve per $p$. Between $a$ and $b$, n=$n$"))
    text = " ".join(html.replace("<i>", "").replace("</i>", "").split())
    assert "per <span class=\"formula\">p</span>. Between <span class=\"formula\">a</span> and" in text
    assert "n=<span class=\"formula\">n</span>" in text


def test_paper_macros_are_expanded_and_unknown_ones_shown_as_latex_source(root):
    macros = html_report.preamble_macros((root / "report" / "paper.tex").read_text())
    assert macros["norm"] == (1, r"\lVert #1\rVert")
    assert macros["relu"] == (0, r"\operatorname{ReLU}")
    html = as_html(html_report.tex_to_rst(r"the norm $\norm{w - w_0}$ of $\relu(x)$", macros))
    assert "unknown" not in html and html.count('class="formula"') == 2 and "‖" in html
    # without the preamble docutils does not know \norm: the formula stays readable as written
    html = as_html(html_report.tex_to_rst(r"the norm $\norm{w}$ here"))
    assert 'class="formula"' not in html and r"$\norm{w}$" in html


def test_expand_macros_substitutes_arguments_and_nests():
    macros = {"ip": (2, r"\langle #1,#2\rangle"), "norm": (1, r"\lVert #1\rVert"), "EE": (0, r"\mathbb{E}")}
    assert html_report.expand_macros(r"\EE\ip{x}{\norm{y}}", macros) == r"\mathbb{E}\langle x,\lVert y\rVert\rangle"
    assert html_report.expand_macros(r"\EEx \EE", macros) == r"\EEx \mathbb{E}"  # a longer name is not \EE
    assert html_report.expand_macros(r"\norm{v}w", {"norm": (1, r"\lVert #1\rVert")}) == r"\lVert v\rVert w"


def test_figure_captions_are_found_by_folder_and_name():
    section = "\n\n".join([
        report.figure_tex("figures/wide-nets", "error_vs_x", r"Error against width: {mean} over \num{2}~seeds.", "fig:a"),
        "% \\includegraphics{figures/wide-nets/commented_out.pdf}",
        r"\begin{figure*}\includegraphics[width=.5\linewidth]{figures/other/left.pdf}"
        r"\includegraphics{figures/other/right}\caption[short]{Both panels.}\end{figure*}",
    ])
    assert html_report.figure_captions(section) == {
        ("wide-nets", "error_vs_x"): r"Error against width: {mean} over \num{2}~seeds.",
        ("other", "left"): "Both panels.",
        ("other", "right"): "Both panels.",
    }


def test_tables_read_back_what_booktabs_table_wrote():
    header = ["width", r"test error ($\%$)", r"95\% CI"]
    rows = [[r"\num{4}", r"\num{0.107}", r"[\num{-0.0663}, \num{0.281}]"], ["16", "--", r"a \& b"]]
    tex = "Text before.\n" + report.booktabs_table(header, rows, r"Final errors of {wide} nets.", "tab:wide") + "\nAfter."
    (table,) = html_report.tables(tex)
    assert table == html_report.Table(label="tab:wide", caption="Final errors of {wide} nets.", header=[header], rows=rows)
    html = html_report.table_html(table)
    assert "<caption>Final errors of wide nets.</caption>" in html
    assert html.count("<tr>") == 3 and html.count("<th class") == 3 and html.count("<td") == 6
    assert "<td><p>[-0.0663, 0.281]</p></td>" in html and "<td><p>a &amp; b</p></td>" in html


def test_short_and_long_tables_read_back_in_the_order_of_the_text():
    rows = [[f"\\num{{{i}}}", f"{i / 7:.3f}"] for i in range(report.LONG_TABLE_ROWS + 5)]
    long = report.booktabs_table(["width", "error"], rows, "Many points.", "tab:long")
    short = report.booktabs_table(["width", "error"], rows[:2], "Two points.", "tab:short")
    assert "longtable" in long and "longtable" not in short
    found = html_report.tables(long + "\nBetween.\n" + short)
    assert [t.label for t in found] == ["tab:long", "tab:short"]
    assert found[0] == html_report.Table(label="tab:long", caption="Many points.", header=[["width", "error"]], rows=rows)
    assert found[1].rows == rows[:2]


def test_a_table_with_rows_of_unequal_length_is_shown_as_its_source():
    table = html_report.Table("tab:x", "Spans.", [[r"\multicolumn{2}{c}{both}", "c"]], [["1", "2", "3"]])
    html = html_report.table_html(table)
    assert "<table" not in html and r"\multicolumn{2}{c}{both} &amp; c \\" in html and "Spans." in html


def render_caption(template: str, experiment: str, name: str) -> str:
    """The caption as Snakemake's report renders it: Jinja2 (trim_blocks, lstrip_blocks), then docutils."""
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    snakemake = types.SimpleNamespace(wildcards=types.SimpleNamespace(experiment=experiment, name=name))
    return as_html(env.from_string(template).render(snakemake=snakemake))


def test_captions_template_gives_each_figure_its_own_caption():
    tricky = 'quotes " and \' , a backslash \\ , "%}" and "}}", G\u00f6del, \U0001d53c'
    template = html_report.captions_template({
        "wide_nets_&_50%": {"error_vs_x": html_report.tex_to_rst(r"Error of $p$."), "curves": "Curves."},
        "other": {"error_vs_x": tricky.replace("\\", "\\\\"), "unused": ""},
    })
    assert 'class="formula"' in render_caption(template, "wide_nets_&_50%", "error_vs_x")
    assert "<p>Curves.</p>" in render_caption(template, "wide_nets_&_50%", "curves")
    assert htmllib.unescape(render_caption(template, "other", "error_vs_x")).strip() == f"<p>{tricky}</p>"
    for experiment, name in [("other", "unused"), ("other", "missing"), ("missing", "x")]:
        html = render_caption(template, experiment, name)
        assert "not in the paper" in html and "system-message" not in html


def test_write_html_report_pieces(tmp_path, root):
    sections, figures = tmp_path / "sections", tmp_path / "figures"
    sections.mkdir()
    for name in ("wide_nets_&_50%", "plain"):
        (figures / name).mkdir(parents=True)
    for name in ("error_vs_x", "not_in_paper"):
        (figures / "wide_nets_&_50%" / f"{name}.png").write_bytes(b"png")
    (sections / "wide-nets-50.tex").write_text("\n".join([
        report.figure_tex("figures/wide-nets-50", "error_vs_x", r"Error against $\norm{w}$.", "fig:e"),
        report.booktabs_table(["a", "b"], [["1", "2"]], "First.", "tab:wide-nets-50"),
        report.booktabs_table(["c"], [["3"]], "Second.", "tab:wide-nets-50-more"),
    ]))
    (sections / "plain.tex").write_text("No figure, no table.\n")
    out = tmp_path / "html"
    html_report.write_html_report_pieces(["wide_nets_&_50%", "plain"], sections,
                                         [figures / "wide_nets_&_50%", figures / "plain"],
                                         root / "report" / "paper.tex", out)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        MANIFEST, "captions.rst", "tables/wide_nets_&_50%/tab-wide-nets-50-more.html",
        "tables/wide_nets_&_50%/tab-wide-nets-50.html",
    ]
    template = (out / html_report.CAPTIONS_FILE).read_text()
    literal = template.split("{% set captions = ", 1)[1].split(" %}\n", 1)[0]
    assert set(json.loads(literal)) == {"wide_nets_&_50%", "plain"}
    assert "‖" in render_caption(template, "wide_nets_&_50%", "error_vs_x")  # the paper's \norm, expanded
    assert "not in the paper" in render_caption(template, "wide_nets_&_50%", "not_in_paper")
    assert "<caption>Second.</caption>" in (out / "tables/wide_nets_&_50%/tab-wide-nets-50-more.html").read_text()
    assert not (tmp_path / "html.tmp").exists()


def test_braced_refuses_unbalanced_input():
    assert html_report.braced(r"{a{b}\}c}rest", 0) == (r"a{b}\}c", 9)
    with pytest.raises(ValueError):
        html_report.braced("{a{b}", 0)


def test_a_formula_that_mathml_cannot_lay_out_is_shown_as_source():
    """A superscript without a base (the residual study's dagger) breaks docutils' MathML writer:
    the cell and the caption show it as LaTeX source, and the page is still written."""
    table = html_report.Table(label="t", caption=r"Errors ($^\dagger$: at the edge of the grid).",
                              header=[["lr", "error"]], rows=[[r"\num{0.1}$^\dagger$", r"\num{0.2}"]])
    page = html_report.table_html(table)
    assert "^\\dagger" in page and page.count("<td") == 2
