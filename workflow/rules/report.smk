rule report_pieces:
    input:
        summaries=all_summaries,
        figures=all_figure_dirs,
        templates=ejected_templates,
    output:
        directory("results/report/{plan}/generated"),
    log:
        "results/logs/report/{plan}/pieces.log",
    conda:
        "../../environment.yml"
    params:
        project=canonical(RESOLVED["project"]),
        report=report_settings(),
        experiments=all_experiment_params,
        code=all_study_code,
    script:
        "../scripts/report_pieces.py"


rule compile_document:
    input:
        sources=report_sources,
        pieces=rules.report_pieces.output,
        figures=all_figure_dirs,
    output:
        report(
            "results/report/{plan}/{doc}.pdf",
            caption="../report/document.rst",
            category="Paper and slides",
            subcategory="PDF",
        ),
    log:
        "results/logs/report/{plan}/{doc}.log",
    conda:
        "../../environment.yml"
    params:
        experiments=list(EXPERIMENTS),
    script:
        "../scripts/compile.py"


# The figures' captions and the tables of the paper, for Snakemake's HTML report.
rule html_report_pieces:
    input:
        pieces=rules.report_pieces.output[0],
        figures=all_figure_dirs,
        preamble="report/paper.tex",
    output:
        report(
            directory(HTML_REPORT_PIECES),
            patterns=["tables/{experiment}/{name}.html"],
            caption="../report/table.rst",
            category="{experiment}",
            subcategory="Tables",
        ),
    log:
        "results/logs/report/{plan}/html.log",
    conda:
        "../../environment.yml"
    params:
        experiments=list(EXPERIMENTS),
    script:
        "../scripts/html_report_pieces.py"
