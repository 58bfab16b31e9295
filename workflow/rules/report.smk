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
        "results/report/{plan}/{doc}.pdf",
    log:
        "results/logs/report/{plan}/{doc}.log",
    conda:
        "../../environment.yml"
    params:
        experiments=list(EXPERIMENTS),
    script:
        "../scripts/compile.py"
