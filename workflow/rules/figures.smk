rule figures:
    input:
        metrics=rules.evaluate.output.metrics,
        runs=rules.evaluate.output.runs,
        summary=rules.evaluate.output.summary,
    output:
        directory("results/figures/{experiment}"),
    log:
        "results/logs/figures/{experiment}.log",
    conda:
        "../../environment.yml"
    params:
        experiment=experiment_params,
        code=study_code,
        plot=plot_options,
        experiment_plot=experiment_plot_options,
    script:
        "../scripts/figures.py"
