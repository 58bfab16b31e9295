"""What a training job asks a scheduler for: memory, run time and GPUs, from the group's size.

The estimates are deliberately generous (a job killed for its limits costs more than an idle
reservation): memory holds parameters, gradients and two optimizer states per model plus the
activations of a batch; run time assumes a slow 1 GFLOP/s for the 6 * params * points of each
step (forward and backward) and doubles it.
"""

from __future__ import annotations

import math

from mathdl.spec import GroupSpec, ModelConfig

ASSUMED_FLOPS = 1e9  # a slow CPU core; GPUs are far faster, so the estimate errs long
MEM_MB_BASE = 1500  # Python, torch and the data; a profile's set-resources can raise it
RUNTIME_MIN_BASE = 10  # minutes: start-up, data loading, writing tables


def parameter_count(group: GroupSpec, d: int | None = None, k: int | None = None) -> int:
    """Parameters of one network of the group (weights and biases of every layer), for ``d``
    inputs and ``k`` outputs (default: the task's input_dim and n_classes).

    Counted here without torch (mathdl.models.parameter_count is the same number), because
    Snakemake evaluates this while it parses the workflow.
    """
    d = group.task.input_dim if d is None else d
    k = group.task.n_classes if k is None else k
    return network_parameter_count(group.model, d, k)


def network_parameter_count(model: ModelConfig, d: int, k: int) -> int:
    """Parameters of one network of this architecture with ``d`` inputs and ``k`` outputs."""
    w, depth = model.width, model.depth
    if model.residual:  # embedding, two layers per block, read-out
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


def min_mem_mb(group: GroupSpec) -> int:
    """A lower bound of a training job's memory: parameters and gradients of every run, and the data.

    Plan loading refuses a job above the machine's memory on this bound (never on the generous
    estimate of :func:`mem_mb`), so a plan is refused only when it cannot fit.
    """
    from mathdl.tasks import input_dim, n_outputs

    task = group.task
    n_points = task.n_train + task.n_val + task.n_test
    params = parameter_count(group, input_dim(task), n_outputs(task))
    return math.ceil((8 * params * len(group.runs) + 4 * n_points * (input_dim(task) + 1)) / 2**20)


def machine_mem_mb() -> int:
    """This machine's physical memory in MB (the limit when a plan sets no max_mem_mb)."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError, AttributeError):
        return 1 << 20  # unknown: do not refuse on memory
