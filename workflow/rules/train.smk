# One job trains one group as a batched ensemble. On a cluster, the Slurm profile bundles
# many such jobs into one submission (groups: train=train, see workflow/profiles/slurm).
rule train:
    input:
        data=group_data,
    output:
        metrics="results/runs/{experiment}/{group}/metrics.parquet",
        runs="results/runs/{experiment}/{group}/runs.parquet",
        provenance="results/runs/{experiment}/{group}/provenance.json",
    log:
        "results/logs/train/{experiment}/{group}.log",
    conda:
        "../../environment.yml"
    threads: PLAN.threads
    resources:
        mem_mb=train_mem_mb,
        runtime=train_runtime,
        gpu=train_gpus,
    params:
        spec=group_spec,
        device=PLAN.device,
    script:
        "../scripts/train.py"
