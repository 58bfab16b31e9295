rule figures:
    input:
        metrics=rules.evaluate.output.metrics,
        runs=rules.evaluate.output.runs,
        summary=rules.evaluate.output.summary,
    output:
        # In the HTML report: each PNG under its experiment, with its caption in the paper.
        report(
            directory("results/figures/{experiment}"),
            patterns=["{name}.png"],
            caption=FIGURE_CAPTIONS,
            category="{experiment}",
            subcategory="Figures",
        ),
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
