"""Measured peak memory of real training jobs against mathdl.resources' estimates.

Each case trains one group the way the workflow's train rule does (``pipeline.train_group`` in
a fresh process, data from an .npz file) and reads the process's peak resident set size
(``getrusage``: what Slurm's memory limit counts). Prints one markdown row per case: the shape,
the estimate, the measured peak and their ratio (the estimate should lie between 1x and 2x).

    python benchmarks/resources_memory.py            # every case (minutes; the widest needs ~4 GB)
    python benchmarks/resources_memory.py digits     # the cases whose label holds 'digits'

Peak memory does not depend on the machine's load; run time does (not measured here).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

# label: (task, model, train, number of seeds)
CASES = {
    "tiny (base)": ({"input_dim": 10, "n_train": 64, "n_test": 64}, {"width": 8}, {"epochs": 1}, 2),
    "digits 64-256x2-10, 20 runs": ({"name": "digits", "n_train": 1000, "n_test": 500},
                                    {"width": 256, "depth": 2}, {"epochs": 2, "batch_size": 64}, 20),
    "MNIST-shaped 784-1024x2-10, 10 runs": ({"input_dim": 784, "n_classes": 10, "n_train": 2000, "n_test": 1000},
                                            {"width": 1024, "depth": 2}, {"epochs": 1, "batch_size": 128}, 10),
    "CIFAR-shaped 3072-1024-10, 8 runs, Adam": (
        {"input_dim": 3072, "n_classes": 10, "n_train": 2000, "n_test": 1000},
        {"width": 1024, "depth": 1}, {"epochs": 1, "batch_size": 128, "optimizer": "adam"}, 8),
    "width 1e5, 4 runs": ({"input_dim": 10, "n_train": 256, "n_test": 256}, {"width": 10**5},
                          {"epochs": 1, "batch_size": 32}, 4),
    "width 1e6, 1 run": ({"input_dim": 10, "n_train": 256, "n_test": 256}, {"width": 10**6},
                         {"epochs": 1, "batch_size": 32}, 1),
    "width 1e6, full batch 1024": ({"input_dim": 10, "n_train": 1024, "n_test": 256}, {"width": 10**6},
                                   {"epochs": 1, "batch_size": 0}, 1),
}

CHILD = """
import json, resource, sys
from mathdl.pipeline import train_group
spec, data, out = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
train_group(spec, data, out + "/m.parquet", out + "/r.parquet", out + "/p.json", device="cpu", threads=1)
print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def measure(task: dict, model: dict, train: dict, n_seeds: int) -> tuple[int, int, int]:
    """(estimate MB, measured peak MB, old estimate MB) of one group trained in a fresh process."""
    from mathdl import engine, pipeline, resources

    group = engine.make_group(list(range(n_seeds)), task=task, model=model, train=train)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.npz"
        pipeline.make_data(dict(vars(group.task)), data)
        spec = Path(tmp) / "spec.json"
        spec.write_text(json.dumps(group.to_dict()))
        out = subprocess.run([sys.executable, "-c", CHILD, str(spec), str(data), tmp],
                             capture_output=True, text=True, check=True).stdout
    peak_kb = int(out.split("PEAK_KB")[1].split()[0])
    old = getattr(resources, "old_mem_mb", None)
    return resources.mem_mb(group), peak_kb // 1024, old(group) if old else -1


def main(selection: list[str]) -> None:
    print("| case | estimate (MB) | measured peak RSS (MB) | estimate / peak |")
    print("|---|---:|---:|---:|")
    for label, case in CASES.items():
        if selection and not any(s in label for s in selection):
            continue
        estimate, peak, _ = measure(*case)
        print(f"| {label} | {estimate} | {peak} | {estimate / peak:.2f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
