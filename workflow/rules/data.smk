rule data:
    output:
        "results/data/{experiment}/{data_id}.npz",
    log:
        "results/logs/data/{experiment}/{data_id}.log",
    conda:
        "../../environment.yml"
    params:
        task=task_params,
    script:
        "../scripts/data.py"
