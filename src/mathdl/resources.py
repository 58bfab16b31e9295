"""What a training job asks a scheduler for: memory, run time and GPUs, from the group's size.

The estimates are deliberately generous (a job killed for its limits costs more than an idle
reservation): memory holds parameters, gradients and two optimizer states per model plus the
activations of a batch; run time assumes a slow 1 GFLOP/s for the 6 * params * points of each
step (forward and backward) and doubles it.
"""

from __future__ import annotations

import math

from mathdl.spec import GroupSpec

ASSUMED_FLOPS = 1e9  # a slow CPU core; GPUs are far faster, so the estimate errs long
MEM_MB_BASE = 1500  # Python, torch and the data; a profile's set-resources can raise it
RUNTIME_MIN_BASE = 10  # minutes: start-up, data loading, writing tables


def parameter_count(group: GroupSpec) -> int:
    """Parameters of one network of the group (weights and biases of every layer).

    Counted here without torch (mathdl.models.parameter_count is the same number), because
    Snakemake evaluates this while it parses the workflow.
    """
    d, w, k, depth = group.task.input_dim, group.model.width, group.task.n_classes, group.model.depth
    if group.model.residual:  # embedding, two layers per block, read-out
        layers = [(d, w)] + [(w, w)] * (2 * depth) + [(w, k)]
    else:
        sizes = [d] + [w] * depth + [k]
        layers = list(zip(sizes[:-1], sizes[1:]))
    return sum(fan_in * fan_out + fan_out for fan_in, fan_out in layers)


def mem_mb(group: GroupSpec) -> int:
    m = len(group.runs)
    n_points = group.task.n_train + group.task.n_val + group.task.n_test
    batch = group.train.batch_size or group.task.n_train
    widest = max(group.model.width, group.task.input_dim, group.task.n_classes)
    state_bytes = 4 * 4 * parameter_count(group) * m  # params, grads, two optimizer buffers
    activation_bytes = 4 * 3 * m * max(batch, n_points) * widest * (group.model.depth + 1)
    return MEM_MB_BASE + math.ceil(2 * (state_bytes + activation_bytes) / 2**20)


def runtime_minutes(group: GroupSpec) -> int:
    n = group.task.n_train
    batch = group.train.batch_size or n
    steps = group.train.epochs * math.ceil(n / batch)
    flops = 6 * parameter_count(group) * len(group.runs) * steps * min(batch, n)
    return RUNTIME_MIN_BASE + math.ceil(2 * flops / ASSUMED_FLOPS / 60)


def gpus(device: str, gpus_for_auto: bool) -> int:
    """One GPU for device cuda, and for auto where the plan says so (the Slurm profile does)."""
    return int(device == "cuda" or (device == "auto" and gpus_for_auto))
