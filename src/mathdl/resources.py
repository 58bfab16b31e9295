"""What a training job asks a scheduler for: memory, run time and GPUs, from the real shapes.

A job trains the networks its study lists (``Study.networks(group)``: batches of one shape
trained together, one batch after another; by default the group's model once per run), on the
data set's real input size and class count (:func:`mathdl.tasks.input_dim` and ``n_outputs``:
digits 64 and 10, MNIST 784 and 10, CIFAR-10 3,072 and 10). Memory is the process's peak
resident set (what Slurm limits): a base for Python, torch, pandas and pyarrow, the data, and
the largest batch; run time is the sum over the batches. A job that gets a GPU keeps the
networks on the device: its host memory is the base, the CUDA libraries, the data and the
trained parameters copied back, and it runs faster.

Memory of one batch of M networks with P parameters each, U units (inputs plus every layer's
outputs) and minibatch B, in bytes of its dtype (the engine trains M in chunks of at most
3/4 of its budget, :data:`ENGINE_BUDGET_BYTES`):

    M * (STATE_COPIES + buffers) * P      parameters, gradients, initial values, optimizer buffers
    + M * ACTIVATION_COPIES * U * B       activations, masks and their gradients

Measured with ``benchmarks/resources_memory.py`` (peak RSS of ``pipeline.train_group`` in a
fresh process, on the CPU; estimate / measured peak, the goal being between 1 and 2):

    ==========================================  ========  =========  =====  ====================
    case (inputs-width x depth-classes, runs)   estimate  peak (MB)  ratio  old estimate (ratio)
    ==========================================  ========  =========  =====  ====================
    tiny (10-8-2, 2 runs): the base             751       337        2.23   1,501 (4.5)
    digits 64-256x2-10, 20 runs, SGD B=64       805       432        1.86   2,070 (4.8)
    MNIST-shaped 784-1024x2-10, 10 runs, B=128  1,265     672        1.88   4,179 (6.2)
    CIFAR-shaped 3072-1024-10, 8 runs, Adam     1,672     1,229      1.36   5,646 (4.6)
    width 1e5 (10-1e5-2), 4 runs, B=32          1,114     832        1.34   11,034 (13)
    width 1e6, 1 run, B=32                      1,658     1,207      1.37   25,335 (21)
    width 1e6, 1 run, full batch of 1,024       20,580    12,419     1.66   60,491 (4.9)
    ==========================================  ========  =========  =====  ====================

(Measured on the 2-core CI machine under load, torch 2.13 CPU, in November 2026; the peaks of
one case differed by up to 250 MB between two runs, the table has the larger. The base alone, Python
with torch and mathdl imported, measured 304 MB in one virtual environment and 395 MB in another
with the same packages on the same machine, and a real job peaked 120 MB above its estimate in CI
with a base of 500 MB: the base is held at 750 MB, so the smallest jobs ask for about twice their
need. A GPU job's host memory, :data:`CUDA_HOST_MB`, is not measured yet.)

The old estimate (the task's ``input_dim``/``n_classes`` keys whatever the data set, a 1.5 GB
base, three copies of the widest layer for every point of the data) was 4.5 to 21 times the peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from mathdl.spec import GroupSpec, ModelConfig

MEM_MB_BASE = 750  # measured 300-450 MB: Python, torch, NumPy, pandas, pyarrow, the tables (see above)
CUDA_HOST_MB = 3000  # host memory of the CUDA runtime and kernels (not yet measured on a GPU)
# Per parameter: value, gradient, initial value and the update's temporaries. Measured (peak RSS
# above the base, less data and activations, over M P float32): 3.5 copies with SGD, 7.4 with Adam
# (whose two buffers the optimizer term adds).
STATE_COPIES = 6
ACTIVATION_COPIES = 5  # per unit and point: pre- and post-activation, mask, gradient, a temporary
ENGINE_BUDGET_BYTES = 8 * 2**30  # engine.default_memory_budget_mb on a CPU with 32 GB or more
OPTIMIZER_BUFFERS = {"gd": 0, "sgd": 0, "momentum": 1, "nesterov": 1, "adagrad": 1, "adam": 2}  # optim.py
ELEMENT_BYTES = {"float32": 4, "float64": 8}

CPU_FLOPS = 1e9  # a slow CPU core; the estimate errs long
GPU_FLOPS = 1e11  # far below a data-centre GPU's peak: small batched matmuls and launches
RUNTIME_MIN_BASE = 10  # minutes: start-up, data loading, writing tables


@dataclass(frozen=True)
class Networks:
    """``n_models`` networks of one shape trained together (one engine call) inside a job."""

    model: ModelConfig  # the shape: depth, width, residual
    n_models: int
    input_dim: int
    n_outputs: int
    n_train: int
    n_eval: int = 0  # validation and test points, scored in no-grad batches
    batch_size: int = 0  # 0: full batch
    epochs: int = 1
    eval_points: int = 10  # epochs at which every split is scored
    optimizer: str = "sgd"
    dtype: str = "float32"
    early_stopping: bool = False  # keeps a snapshot of the best parameters
    image_shape: tuple[int, int, int] | None = None  # (C, H, W) of an image network's inputs

    @classmethod
    def of_group(cls, group: GroupSpec, **changes) -> "Networks":
        """The group's own networks: its model once per run, on its data set's real shape and with its
        training loop; ``changes`` replace fields (a study's in-job grid: another width, a count)."""
        from mathdl.tasks import image_shape, input_dim, n_outputs

        task, train = group.task, group.train
        nets = cls(model=group.model, n_models=len(group.runs), input_dim=input_dim(task),
                   n_outputs=n_outputs(task), n_train=task.n_train, n_eval=task.n_val + task.n_test,
                   batch_size=train.batch_size, epochs=train.epochs, eval_points=train.eval_points,
                   optimizer=train.optimizer, dtype=train.dtype, early_stopping=train.early_stopping,
                   image_shape=image_shape(task) if group.model.arch != "mlp" else None)
        return replace(nets, **changes)

    @property
    def image_costs(self) -> "ImageCosts | None":
        """An image network's counts per image (None for a fully connected network)."""
        if self.model.arch == "mlp":
            return None
        return image_network_costs(self.model, self.image_shape, self.n_outputs)

    @property
    def parameters(self) -> int:
        costs = self.image_costs
        return costs.parameters if costs else network_parameter_count(self.model, self.input_dim, self.n_outputs)

    @property
    def macs(self) -> int:
        """Multiply-adds of one forward pass per point (a fully connected network: one per weight, about
        its parameters)."""
        costs = self.image_costs
        return costs.macs if costs else self.parameters

    @property
    def minibatch(self) -> int:
        full = self.batch_size == 0 or self.optimizer == "gd"
        return max(1, self.n_train if full else min(self.batch_size, self.n_train))

    @property
    def units(self) -> int:
        """Inputs plus the outputs of every layer of one network, per point (an image network: every
        module's output, as convnets.forward_costs counts them)."""
        costs = self.image_costs
        if costs:
            return self.input_dim + costs.activations
        w, depth = self.model.width, self.model.depth
        layers = 2 * depth + 1 if self.model.residual else depth  # residual: embedding, two per block
        return self.input_dim + w * layers + self.n_outputs

    def bytes_per_model(self) -> int:
        copies = STATE_COPIES + OPTIMIZER_BUFFERS.get(self.optimizer, 2) + int(self.early_stopping)
        return ELEMENT_BYTES[self.dtype] * (copies * self.parameters + ACTIVATION_COPIES * self.units * self.minibatch)

    def train_bytes(self) -> int:
        """The CPU memory of training: the largest chunk of models the engine holds at once."""
        per_model = self.bytes_per_model()
        chunk = max(1, int(0.75 * ENGINE_BUDGET_BYTES // per_model))
        return min(self.n_models, chunk) * per_model

    def data_bytes(self) -> int:
        """Inputs and targets of every split, as loaded and as the engine's tensors (float32, twice)."""
        return 2 * 4 * (self.n_train + self.n_eval) * (self.input_dim + self.n_outputs)

    def flops(self) -> float:
        """Forward and backward (6 per multiply-add and point) of every step, and the scheduled scoring."""
        steps = self.epochs * math.ceil(self.n_train / self.minibatch)
        train = 6 * self.macs * self.n_models * steps * self.minibatch
        scoring = 2 * self.macs * self.n_models * (self.n_train + self.n_eval) * max(self.eval_points, 2)
        return float(train + scoring)


def networks(group: GroupSpec) -> list[Networks]:
    """The batches of networks a group's job trains: its study's ``networks`` hook, else the group's model."""
    from mathdl.studies import get_study

    hook = get_study(group.study).networks
    return list(hook(group)) if hook is not None else [Networks.of_group(group)]


def parameter_count(group: GroupSpec, d: int | None = None, k: int | None = None) -> int:
    """Parameters of one network of the group (weights and biases of every layer), for ``d``
    inputs and ``k`` outputs (default: the data set's real input size and outputs).

    Counted here without torch (mathdl.models.parameter_count is the same number), because
    Snakemake evaluates this while it parses the workflow.
    """
    from mathdl.tasks import input_dim, n_outputs

    d = input_dim(group.task) if d is None else d
    k = n_outputs(group.task) if k is None else k
    return network_parameter_count(group.model, d, k)


def network_parameter_count(model: ModelConfig, d: int, k: int) -> int:
    """Parameters of one network of this architecture with ``d`` inputs and ``k`` outputs (an image
    network: on the data set's images of ``d`` pixels)."""
    if model.arch != "mlp":
        return image_network_costs(model, _shape_of(d), k).parameters
    w, depth = model.width, model.depth
    if model.residual:  # embedding, two layers per block, read-out
        layers = [(d, w)] + [(w, w)] * (2 * depth) + [(w, k)]
    else:
        sizes = [d] + [w] * depth + [k]
        layers = list(zip(sizes[:-1], sizes[1:]))
    return sum(fan_in * fan_out + fan_out for fan_in, fan_out in layers)


# ----------------------------------------------------------------------------- image networks


@dataclass(frozen=True)
class ImageCosts:
    """Per image, one forward pass: what mathdl.convnets.forward_costs counts with hooks."""

    parameters: int
    activations: int  # elements of every leaf module's output
    macs: int  # multiply-adds of the convolutions and the read-out


def _shape_of(d: int) -> tuple[int, int, int]:
    from mathdl.tasks.real import IMAGE_SHAPES

    shapes = {c * h * w: (c, h, w) for c, h, w in IMAGE_SHAPES.values()}
    if d not in shapes:
        raise ValueError(f"no image data set has {d} pixels; image networks train on {sorted(IMAGE_SHAPES)}")
    return shapes[d]


def image_network_costs(model: ModelConfig, shape: tuple[int, int, int], n_outputs: int) -> ImageCosts:
    """Closed-form counts of ``model.arch`` on images of ``shape`` (C, H, W), without torch (the
    workflow sizes jobs while it parses). A group's own module is unknown until it is built, so it
    is sized generously as the usual ResNet-18 (k = 64, 11 million parameters on CIFAR-10)."""
    if model.arch == "module":
        model = replace(model, arch="resnet18", width=64)
    try:
        count = IMAGE_COSTS[model.arch]
    except KeyError:
        raise ValueError(f"unknown image architecture {model.arch!r}; valid: {', '.join(sorted(IMAGE_COSTS))}") from None
    return count(model.width, shape, n_outputs)


def _conv(c_in: int, c_out: int, h: int, w: int, kernel: int, stride: int, bias: bool):
    """A kxk convolution with padding (k - 1) / 2: its parameters, output size and multiply-adds."""
    h_out, w_out = (h - 1) // stride + 1, (w - 1) // stride + 1
    out = c_out * h_out * w_out
    return c_in * c_out * kernel**2 + (c_out if bias else 0), (h_out, w_out), out, out * c_in * kernel**2


def cnn_costs(k: int, shape: tuple[int, int, int], n_outputs: int) -> ImageCosts:
    """Nakkiran et al.'s CNN (convnets.StandardCNN): per stage conv (with bias), batch norm, ReLU and
    a max-pool (none, 2, 2, then global), then flatten, dropout and the read-out."""
    c_in, h, w = shape
    params = acts = macs = 0
    for i, pool in enumerate((1, 2, 2, 0)):  # 0: the global max-pool
        c = k * 2**i
        p, (h, w), out, m = _conv(c_in, c, h, w, 3, 1, bias=True)
        params, macs = params + p + 2 * c, macs + m
        acts += 3 * out  # conv, batch norm, ReLU
        if pool > 1:
            h, w = h // pool, w // pool
            acts += c * h * w
        elif pool == 0:
            acts += c
        c_in = c
    features = 8 * k
    params += features * n_outputs + n_outputs
    acts += 2 * features + n_outputs  # flatten, dropout, read-out
    macs += features * n_outputs
    return ImageCosts(params, acts, macs)


def resnet18_costs(k: int, shape: tuple[int, int, int], n_outputs: int) -> ImageCosts:
    """The pre-activation ResNet-18 (convnets.PreActResNet18): a 3x3 stem, four stages of two blocks
    (bn1, conv1, bn2, conv2 and a 1x1 shortcut where the shape changes; no biases), then dropout
    and the read-out (the ReLUs and the average pool are functions, not modules)."""
    c_in, h, w = shape
    params, (h, w), acts, macs = _conv(c_in, k, h, w, 3, 1, bias=False)
    c_in = k
    for i, stride in enumerate((1, 2, 2, 2)):
        c = k * 2**i
        for s in (stride, 1):
            p1, (h2, w2), out, m1 = _conv(c_in, c, h, w, 3, s, bias=False)
            p2, _, _, m2 = _conv(c, c, h2, w2, 3, 1, bias=False)
            params += 2 * c_in + p1 + 2 * c + p2
            acts += c_in * h * w + 3 * out  # bn1; conv1, bn2, conv2
            macs += m1 + m2
            if s != 1 or c_in != c:
                ps, _, out_s, ms = _conv(c_in, c, h, w, 1, s, bias=False)
                params, acts, macs = params + ps, acts + out_s, macs + ms
            c_in, h, w = c, h2, w2
    features = 8 * k
    params += features * n_outputs + n_outputs
    acts += features + n_outputs  # dropout, read-out
    macs += features * n_outputs
    return ImageCosts(params, acts, macs)


IMAGE_COSTS = {"cnn": cnn_costs, "resnet18": resnet18_costs}


def uses_gpu(device: str, gpus_for_auto: bool) -> bool:
    """Whether a job of this plan runs on a GPU: device cuda, or auto where the plan asks for GPUs."""
    return device == "cuda" or (device == "auto" and gpus_for_auto)


def mem_mb(group: GroupSpec, device: str | None = None, gpus_for_auto: bool = False) -> int:
    """Host memory (MB) of the group's training job: the base, the data and the largest batch of
    networks (on a GPU: the CUDA libraries and the trained parameters copied back instead).
    Without a device, the larger of the two (the job may run either way)."""
    if device is None:
        return max(mem_mb(group, "cpu"), mem_mb(group, "cuda"))
    batches = networks(group)
    data = max([n.data_bytes() for n in batches], default=0)
    if uses_gpu(device, gpus_for_auto):
        results = max([n.n_models * n.parameters * ELEMENT_BYTES[n.dtype] for n in batches], default=0)
        return MEM_MB_BASE + CUDA_HOST_MB + math.ceil((data + results) / 2**20)
    work = max([n.train_bytes() for n in batches], default=0)
    return MEM_MB_BASE + math.ceil((data + work) / 2**20)


def runtime_minutes(group: GroupSpec, device: str | None = None, gpus_for_auto: bool = False) -> int:
    """Run time (minutes) of the group's training job: twice the FLOPs of every batch at a slow rate
    (a CPU's without a device)."""
    rate = GPU_FLOPS if device is not None and uses_gpu(device, gpus_for_auto) else CPU_FLOPS
    flops = sum(n.flops() for n in networks(group))
    return RUNTIME_MIN_BASE + math.ceil(2 * flops / rate / 60)


def gpus(device: str, gpus_for_auto: bool, group: GroupSpec | None = None) -> int:
    """One GPU for device cuda, and for auto where the plan says so (the Slurm profile does); none
    for a group whose study trains no network (NumPy on the host), where one is given."""
    if group is not None and not networks(group):
        return 0
    return int(uses_gpu(device, gpus_for_auto))


def min_mem_mb(group: GroupSpec) -> int:
    """A lower bound of a training job's memory: parameters and gradients of the largest batch of
    networks (every run of it: the engine's chunks cannot go below one), and the data.

    Plan loading refuses a job above the machine's memory on this bound (never on the generous
    estimate of :func:`mem_mb`), so a plan is refused only when it cannot fit.
    """
    batches = networks(group)
    if not batches:
        return 0
    need = max(2 * ELEMENT_BYTES[n.dtype] * n.parameters * n.n_models + n.data_bytes() // 2 for n in batches)
    return math.ceil(need / 2**20)


def machine_mem_mb() -> int:
    """This machine's physical memory in MB (the limit when a plan sets no max_mem_mb)."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError, AttributeError):
        return 1 << 20  # unknown: do not refuse on memory
