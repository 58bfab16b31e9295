rule figures:
    input:
        metrics=rules.evaluate.output.metrics,
        runs=rules.evaluate.output.runs,
        summary=rules.evaluate.output.summary,
    output:
        directory("results/figures/{experiment}"),
    params:
        experiment=experiment_params,
        plot=plot_options,
        experiment_plot=experiment_plot_options,
    conda:
        "../../environment.yml"
    log:
        "results/logs/figures/{experiment}.log",
    script:
        "../scripts/figures.py"
