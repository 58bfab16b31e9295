rule evaluate:
    input:
        metrics=group_outputs("metrics"),
        runs=group_outputs("runs"),
    output:
        metrics="results/tables/{experiment}/metrics.parquet",
        runs="results/tables/{experiment}/runs.parquet",
        summary="results/tables/{experiment}/summary.json",
    log:
        "results/logs/evaluate/{experiment}.log",
    conda:
        "../../environment.yml"
    params:
        experiment=experiment_params,
        code=study_code,
    script:
        "../scripts/evaluate.py"
