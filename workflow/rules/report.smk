rule report_pieces:
    input:
        summaries=all_summaries,
        figures=all_figure_dirs,
    output:
        metadata="results/report/generated/metadata.tex",
        macros="results/report/generated/macros.tex",
        experiments="results/report/generated/experiments.tex",
        slides="results/report/generated/slides.tex",
    log:
        "results/logs/report/pieces.log",
    conda:
        "../../environment.yml"
    params:
        project=canonical(RESOLVED["project"]),
        experiments=all_experiment_params,
    script:
        "../scripts/report_pieces.py"


rule compile_document:
    input:
        sources=report_sources,
        pieces=rules.report_pieces.output,
        figures=all_figure_dirs,
    output:
        "results/report/{doc}.pdf",
    log:
        "results/logs/report/{doc}.log",
    conda:
        "../../environment.yml"
    params:
        experiments=list(EXPERIMENTS),
    script:
        "../scripts/compile.py"
