rule evaluate:
    input:
        metrics=group_outputs("metrics"),
        runs=group_outputs("runs"),
    output:
        metrics="results/tables/{experiment}/metrics.parquet",
        runs="results/tables/{experiment}/runs.parquet",
        summary="results/tables/{experiment}/summary.json",
    params:
        experiment=experiment_params,
    conda:
        "../../environment.yml"
    log:
        "results/logs/evaluate/{experiment}.log",
    script:
        "../scripts/evaluate.py"
