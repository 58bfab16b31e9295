rule train:
    input:
        data=group_data,
    output:
        metrics="results/runs/{experiment}/{group}/metrics.parquet",
        runs="results/runs/{experiment}/{group}/runs.parquet",
        provenance="results/runs/{experiment}/{group}/provenance.json",
    params:
        spec=group_spec,
        device=PLAN.device,
    threads: PLAN.threads
    conda:
        "../../environment.yml"
    log:
        "results/logs/train/{experiment}/{group}.log",
    script:
        "../scripts/train.py"
