rule data:
    output:
        "results/data/{experiment}/{data_id}.npz",
    params:
        task=task_params,
    conda:
        "../../environment.yml"
    log:
        "results/logs/data/{experiment}/{data_id}.log",
    script:
        "../scripts/data.py"
