"""Training a group of ``torch.nn.Module`` networks (cnn, resnet18, a group's own) as one ensemble.

``train(group, data, device, network=...)`` is the entry point, the counterpart of
``mathdl.engine.train`` for networks that are ordinary modules: the same tables, metric names,
status columns and guarantees, with the engine's bookkeeping (evaluation schedule, early
stopping, divergence freezing, tables) reused from ``engine._Ensemble``.

How the M runs of a group are held and stepped:

- Run m is built as it would be alone: ``torch.manual_seed(seed)``, then ``convnets.build``
  (PyTorch's initialization draws from the global generator), then cast to the group's dtype.
  Its generator continues from the global generator's state after the build, and draws, in
  this order: each epoch's minibatch order (``torch.randperm``, skipped for the full batch),
  then at each step its augmentation (``torch.randint`` crop offsets, then ``torch.rand``
  flips) and its dropout masks (as nn.Dropout draws them on a CPU). A group's own module whose
  layers draw from torch's global generator (nn.Dropout) gets that generator set to the run's
  state around the run's forward pass, so it draws the same stream.
- Parameters are one matrix theta of shape (M, P): run m's parameters flattened in
  ``named_parameters`` order. The optimizers of ``mathdl.optim`` step it with per-run
  hyperparameters of shape (M, 1). Buffers (batch norm's running statistics) are stacked per
  run, (M, ...).
- The "vmap" path: a step is a pure function of one run, f(theta_m, buffers_m, x_m, y_m,
  masks_m) -> (loss, new buffers) (``functional_call`` on one shared module structure),
  differentiated with ``torch.func.grad_and_value`` and mapped over the runs with
  ``torch.func.vmap``; batch norm updates the running statistics of the run's own copy, which
  the step returns. The "loop" path: each run's own module, whose parameters and buffers are
  views of theta and the stacked buffers, steps in turn with plain autograd (as fast as a
  hand-written per-model loop). Either way, runs that are frozen keep their parameters,
  optimizer state and running statistics. The two paths compute the same function and differ
  only in how PyTorch orders the arithmetic (float64 results agree to about 1e-10);
  ``choose_batching`` picks one from measurements (see ``CPU_VMAP_MAX_MACS``).
- Mixed precision (``train.mixed_precision``): each forward pass runs under bfloat16 autocast
  (``torch.autocast``: convolutions and matrix products in bfloat16, the operations torch lists
  as needing float32 in float32); parameters, gradients, optimizer state and the loss stay in the
  group's dtype (float32), so no loss scaling is needed. Evaluation runs the same way. On a GPU
  the loop path also feeds its modules channels-last images (``channels_last``), the memory
  layout that cuDNN's fastest convolutions want; that changes how the arithmetic is ordered,
  not what is computed.
- Metrics are those of ``mathdl.engine``: loss and error per split in eval mode (running
  statistics), ``weight_norm`` and ``rel_dist_init``, and per layer l (each module that owns
  parameters, in ``named_parameters`` order: a convolution, a batch norm's scale and shift, the
  read-out) ``weight_norm_layer<l>`` and ``rel_dist_init_layer<l>``.
"""

from __future__ import annotations

import contextlib
import copy
import sys
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from mathdl import convnets, engine, losses, optim
from mathdl.spec import PER_RUN_TRAIN_KEYS, GroupSpec, RunSpec, TrainConfig
from mathdl.tasks import SPLITS, Dataset

BATCHING = ("auto", "vmap", "loop")

# On the 2-core CI CPU (one thread, CPU time per epoch, 8 CNNs, batch 64), vmap ran at 1.3x
# the loop path for k = 2 and 4 on 8x8 images (15k and 58k multiply-adds per image) and 1.2x
# for k = 1 on 32x32 (83k); at 1.03x for k = 8 on 8x8 (226k), 0.92x for k = 2 on 32x32
# (277k) and 0.90x for k = 16 on 8x8 (895k); an earlier spike measured 0.3-0.4x for k = 16
# on 28x28 and 32x32. (vmap turns the runs' convolutions into one grouped convolution, which
# oneDNN runs slowly on a CPU.) So on a CPU the engine batches networks of at most this many
# multiply-adds per image; on a GPU it always batches.
CPU_VMAP_MAX_MACS = 150_000

# Evaluation on a CPU goes in batches of images that stay in the caches, but of at least this
# many: oneDNN's convolutions are slow on small batches. Measured on the 2-core CI CPU (a whole
# training of 1 epoch with evaluation at its start and end, 256 + 256 images): batches of 128
# against the 32 of the MLP engine's floor took 0.43 s against 0.49 s for a ResNet-18 of k = 8 on
# 32x32, 0.44 against 0.56 s for 8 CNNs of k = 16 on 8x8, 1.03 against 1.13 s for 8 CNNs of k = 4
# on 32x32; batches of 256 were no faster (0.53, 0.43, 1.13 s).
CPU_EVAL_MIN_IMAGES = 128

# Torch's own layers that draw from its global generator inside a forward pass.
_GLOBAL_RANDOM_LAYERS = (nn.modules.dropout._DropoutNd, nn.RReLU)


@dataclass(frozen=True)
class Augmentation:
    """Random crops of the zero-padded image and horizontal flips, drawn per run and per step."""

    crop_padding: int = 0  # pixels of zeros on each side; the crop has the image's size
    flip: bool = False  # mirror left-right with probability 1/2

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.flip


@dataclass
class ModuleTrainResult(engine.TrainResult):
    """engine.TrainResult, with ``params`` one stacked (M, ...) tensor per named parameter."""

    param_names: list[str] = field(default_factory=list)
    buffers: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)  # name -> (M, ...), on the CPU
    batching: str = ""  # vmap | loop: how the group was stepped


# ----------------------------------------------------------------------------- entry point


def network_of(group: GroupSpec) -> convnets.Network:
    """The group's network from its model config (keys arch, width, module, kwargs)."""
    model = group.model
    kwargs = model.kwargs or ()
    kwargs = tuple(sorted(kwargs.items())) if isinstance(kwargs, dict) else tuple(kwargs)
    return convnets.Network(model.arch, model.width, model.module, kwargs)


def augmentation_of(group: GroupSpec) -> Augmentation:
    """The group's augmentation from its train config (keys augment_crop, augment_flip)."""
    return Augmentation(group.train.augment_crop, group.train.augment_flip)


def train(
    group: GroupSpec,
    data: Dataset,
    device: str = "cpu",
    *,
    network: convnets.Network | None = None,
    input_shape: tuple[int, int, int] | None = None,
    augmentation: Augmentation | None = None,
    batching: str = "auto",
    channels_last: bool | None = None,
    progress: bool | None = None,
    memory_budget_mb: float | None = None,
) -> ModuleTrainResult:
    """Train every run of ``group`` on ``data``; see the module docstring.

    network: what to build (None: from the group's model config). input_shape: (C, H, W) of
    each image when the data set holds flat rows (images (N, C, H, W) need none).
    augmentation: None takes the group's train config (augment_crop, augment_flip).
    batching: auto (``choose_batching``), vmap or loop. channels_last: feed the loop path's
    modules channels-last images (None: on a GPU). memory_budget_mb: the memory one
    chunk of runs may take (None: ``engine.default_memory_budget_mb``).
    """
    start = time.perf_counter()
    dev = engine.resolve_device(device)
    if dev.type == "cpu" and sys.platform == "linux":
        engine.keep_freed_memory()
    if batching not in BATCHING:
        raise ValueError(f"unknown batching {batching!r}; valid: {', '.join(BATCHING)}")
    network = network or network_of(group)
    augmentation = augmentation or augmentation_of(group)
    engine._check(group, data)
    shape = image_shape(data, input_shape)
    if augmentation.crop_padding < 0:
        raise ValueError(f"augmentation crop_padding must be >= 0, not {augmentation.crop_padding}")

    cfg = group.train
    with torch.random.fork_rng(devices=[]):  # the caller's generator stays as it was
        probe = convnets.build(network, shape, data.n_outputs)
    costs = convnets.forward_costs(probe, shape)
    budget = (memory_budget_mb or engine.default_memory_budget_mb(dev)) * 2**20
    batch = engine._batch_size(cfg, data.x_train.shape[0])
    size = max(1, int(0.75 * budget // bytes_per_run(costs, shape, cfg, batch)))
    chunks = [group.runs[i : i + size] for i in range(0, len(group.runs), size)]
    parts, paths = [], set()
    for i, runs in enumerate(chunks):
        desc = f"{group.experiment}/{group.group_id} ({len(runs)} runs" + (
            f", chunk {i + 1}/{len(chunks)})" if len(chunks) > 1 else ")"
        )
        ensemble = _ModuleEnsemble(runs, cfg, network, shape, costs, data, dev, augmentation, batching, 0.25 * budget,
                                   dev.type == "cuda" if channels_last is None else channels_last)
        paths.add(ensemble.batching)
        parts.append((ensemble, ensemble.fit(desc, progress)))
    metrics = engine._in_canonical_order(pd.concat([p[1][0] for p in parts], ignore_index=True), group.runs)
    status = pd.concat([p[1][1] for p in parts], ignore_index=True)
    theta = torch.cat([p[1][2][0] for p in parts])
    buffers = {name: torch.cat([p[1][2][1 + j] for p in parts]) for j, name in enumerate(parts[0][0].buffer_names)}
    layout = parts[0][0].layout
    return ModuleTrainResult(
        metrics,
        status,
        str(dev),
        time.perf_counter() - start,
        layout.unflatten_stacked(theta),
        param_names=list(layout.names),
        buffers=buffers,
        batching="+".join(sorted(paths)),
    )


def image_shape(data: Dataset, input_shape: tuple[int, int, int] | None) -> tuple[int, int, int]:
    """(C, H, W) of the data set's images: from images (N, C, H, W), or ``input_shape`` for flat rows."""
    if data.x_train.ndim == 4:
        shape = tuple(int(s) for s in data.x_train.shape[1:])
        if input_shape is not None and tuple(input_shape) != shape:
            raise ValueError(f"input_shape {tuple(input_shape)} differs from the images' {shape}")
        return shape
    if input_shape is None:
        raise ValueError(f"the data set holds flat rows {data.x_train.shape}; give input_shape=(C, H, W)")
    if int(np.prod(input_shape)) != data.x_train.shape[1]:
        raise ValueError(f"input_shape {tuple(input_shape)} does not hold rows of {data.x_train.shape[1]} values")
    return tuple(int(s) for s in input_shape)


def bytes_per_run(costs: convnets.Costs, shape: tuple[int, ...], cfg: TrainConfig, batch: int) -> int:
    """A generous estimate of the training memory of one run (evaluation is batched apart)."""
    elem = torch.finfo(engine.DTYPES[cfg.dtype]).bits // 8
    # theta, gradient, initial values, optimizer buffers, best snapshot, two temporaries
    copies = 5 + optim.OPTIMIZERS[cfg.optimizer].n_buffers + int(cfg.early_stopping)
    images = 3 * int(np.prod(shape))  # the minibatch, padded and augmented
    return elem * (copies * costs.parameters + batch * (3 * costs.activations + images))


def choose_batching(batching: str, dev: torch.device, macs: int, m: int, module: nn.Module,
                    mixed_precision: bool = False) -> str:
    """vmap or loop: what was asked for, else vmap on a GPU and, on a CPU, for networks of at
    most ``CPU_VMAP_MAX_MACS`` multiply-adds per image (``macs``). A module with torch's own
    random layers, which draw from the global generator, is looped (vmap cannot give each run
    its own stream); so is a single run, and a module with batch norm in mixed precision (vmap's
    rule for batch norm refuses bfloat16 activations with float32 running statistics: "expected
    scalar type BFloat16 but found Float", torch 2.13)."""
    if batching not in BATCHING:
        raise ValueError(f"unknown batching {batching!r}; valid: {', '.join(BATCHING)}")
    if mixed_precision and any(isinstance(m_, nn.modules.batchnorm._BatchNorm) for m_ in module.modules()):
        if batching == "vmap":
            raise ValueError("batching vmap: a module with batch norm trains in mixed precision on the loop path only "
                             "(vmap's batch norm cannot mix bfloat16 activations with float32 statistics)")
        return "loop"
    if draws_from_global_generator(module):
        if batching == "vmap":
            raise ValueError(
                "batching vmap: the module's torch random layers (nn.Dropout, ...) draw from the "
                "global generator, which vmap cannot split per run; use convnets.Dropout or loop"
            )
        return "loop"
    if batching != "auto":
        return batching
    if m == 1:
        return "loop"
    if dev.type == "cuda":
        return "vmap"
    return "vmap" if macs <= CPU_VMAP_MAX_MACS else "loop"


def draws_from_global_generator(module: nn.Module) -> bool:
    return any(isinstance(m, _GLOBAL_RANDOM_LAYERS) for m in module.modules())


# ----------------------------------------------------------------------------- pieces


class _Layout:
    """Where each named parameter lives in a run's flat vector theta (P,), and which slices
    make up each layer (a module that owns parameters)."""

    def __init__(self, module: nn.Module):
        self.names, self.shapes, self.offsets = [], [], []
        layers: dict[str, list[int]] = {}
        o = 0
        for name, p in module.named_parameters():
            self.names.append(name)
            self.shapes.append(p.shape)
            self.offsets.append(o)
            owner = layers.setdefault(name.rpartition(".")[0], [o, o])
            if owner[1] != o:
                raise ValueError(f"parameters of module {name.rpartition('.')[0]!r} are not contiguous")
            owner[1] = o + p.numel()
            o += p.numel()
        self.size = o
        self.layers = [tuple(v) for v in layers.values()]  # (start, end) in theta

    def flatten(self, module: nn.Module) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in module.parameters()])

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        """Views of one run's theta (P,) (under vmap too) as its named parameters."""
        return {n: theta[o : o + s.numel()].view(s) for n, s, o in zip(self.names, self.shapes, self.offsets)}

    def unflatten_stacked(self, theta: torch.Tensor) -> list[torch.Tensor]:
        """theta (M, P) as one (M, *shape) tensor per named parameter."""
        m = theta.shape[0]
        return [theta[:, o : o + s.numel()].reshape(m, *s) for s, o in zip(self.shapes, self.offsets)]


def _share_storage(net: nn.Module, layout: _Layout, theta: torch.Tensor, buffer_names, buffers) -> nn.Module:
    """``net`` with its parameters turned into views of one run's theta (P,) and its buffers
    into the given tensors (views of the stacked buffers): the optimizer's in-place updates
    of theta reach the module, and batch norm's updates of its statistics reach the stack."""
    for name, view in layout.unflatten(theta).items():
        net.get_parameter(name).data = view
    for name, b in zip(buffer_names, buffers):
        owner, _, leaf = name.rpartition(".")
        net.get_submodule(owner)._buffers[leaf] = b
    return net


def augment(x: torch.Tensor, padding: int, offsets: torch.Tensor | None, flips: torch.Tensor | None) -> torch.Tensor:
    """Crop each image of x (..., C, H, W), padded with ``padding`` zeros on every side, at
    ``offsets`` (..., 2) (row, column in [0, 2 padding]), then mirror it where ``flips`` (...,);
    one gather on x's device."""
    *lead, c, h, w = x.shape
    flat = x.reshape(-1, c, h, w)
    n = flat.shape[0]
    padded = F.pad(flat, (padding,) * 4).movedim(1, -1)  # (n, H + 2p, W + 2p, C)
    rows = torch.arange(h, device=x.device).expand(n, h)
    cols = torch.arange(w, device=x.device).expand(n, w)
    if flips is not None:
        cols = torch.where(flips.reshape(n, 1).to(x.device), w - 1 - cols, cols)
    if offsets is not None:
        offsets = offsets.reshape(n, 2).to(x.device)
        rows, cols = rows + offsets[:, :1], cols + offsets[:, 1:]
    out = padded[torch.arange(n, device=x.device)[:, None, None], rows[:, :, None], cols[:, None, :]]  # (n, H, W, C)
    return out.movedim(-1, 1).reshape(*lead, c, h, w)


def draw_augmentation(aug: Augmentation, g: torch.Generator, batch: int):
    """One run's draws for one minibatch, in order: crop offsets (batch, 2), then flips (batch,)."""
    offsets = torch.randint(0, 2 * aug.crop_padding + 1, (batch, 2), generator=g) if aug.crop_padding else None
    flips = torch.rand(batch, generator=g) < 0.5 if aug.flip else None
    return offsets, flips


class _GlobalStreams:
    """Each run's stream of torch's global generator(s), for modules with torch's own random
    layers: around run m's forward pass the CPU generator holds run m's state (and gives it
    back after), so run m draws one stream, as alone. On CUDA the device's generator is kept
    per run the same way, seeded with the run's seed (as torch.manual_seed seeds it alone)."""

    def __init__(self, generators: Sequence[torch.Generator], runs: Sequence[RunSpec], dev: torch.device):
        self.generators, self.dev = generators, dev
        self.cuda_states = []
        if dev.type == "cuda":
            with torch.random.fork_rng(devices=[dev.index if dev.index is not None else torch.cuda.current_device()]):
                for r in runs:
                    torch.cuda.manual_seed(r.seed)
                    self.cuda_states.append(torch.cuda.get_rng_state(dev))

    @contextlib.contextmanager
    def run(self, m: int):
        saved = torch.get_rng_state()
        torch.set_rng_state(self.generators[m].get_state())
        if self.cuda_states:
            saved_cuda = torch.cuda.get_rng_state(self.dev)
            torch.cuda.set_rng_state(self.cuda_states[m], self.dev)
        try:
            yield
        finally:
            self.generators[m].set_state(torch.get_rng_state())
            torch.set_rng_state(saved)
            if self.cuda_states:
                self.cuda_states[m] = torch.cuda.get_rng_state(self.dev)
                torch.cuda.set_rng_state(saved_cuda, self.dev)


class _StepDraws:
    """What each run draws at each step, from its own generator: augmentation, then one dropout
    mask per mathdl Dropout layer (a rate of 0 draws nothing, as nn.Dropout(0) draws nothing)."""

    def __init__(self, generators, aug: Augmentation, rates: list[list[float]], shapes, dtype, dev):
        self.generators, self.aug, self.rates, self.shapes, self.dtype, self.dev = (
            generators,
            aug,
            rates,
            shapes,
            dtype,
            dev,
        )
        self.masked = any(p > 0 for run in rates for p in run)

    def __call__(self, xb: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """xb (M, B, C, H, W) -> (augmented xb, masks: one (M, B, *shape) per Dropout layer)."""
        batch = xb.shape[1]
        offsets, flips, masks = [], [], [[] for _ in self.shapes]
        for m, g in enumerate(self.generators):
            if self.aug.active:
                o, f = draw_augmentation(self.aug, g, batch)
                offsets.append(o), flips.append(f)
            if self.masked:
                for j, (p, shape) in enumerate(zip(self.rates[m], self.shapes)):
                    if p == 0:
                        masks[j].append(torch.ones(batch, *shape, dtype=self.dtype))
                    else:
                        masks[j].append(
                            torch.empty(batch, *shape, dtype=self.dtype).bernoulli_(1 - p, generator=g).div_(1 - p)
                        )
        if self.aug.active:
            xb = augment(
                xb,
                self.aug.crop_padding,
                torch.stack(offsets) if self.aug.crop_padding else None,
                torch.stack(flips) if self.aug.flip else None,
            )
        return xb, tuple(torch.stack(ms).to(self.dev, non_blocking=True) for ms in masks if ms)


class _Optimizer:
    """mathdl.optim over theta, with the buffers riding along in ``eval_params`` so that the
    engine's bookkeeping (early-stopping snapshots, final tables) keeps them with theta."""

    def __init__(self, inner: optim.Optimizer, buffers: list[torch.Tensor]):
        self.inner, self.buffers = inner, buffers

    def step(self, lr_factor: float = 1.0, frozen: torch.Tensor | None = None) -> None:
        self.inner.step(lr_factor, frozen)

    def eval_params(self) -> list[torch.Tensor]:
        return [*self.inner.eval_params(), *self.buffers]


# ----------------------------------------------------------------------------- the ensemble


class _ModuleEnsemble(engine._Ensemble):
    """One chunk of runs of one module architecture. Reuses engine._Ensemble's loop (``fit``),
    early stopping, divergence bookkeeping and tables; replaces how parameters are held, how a
    step runs and how metrics are computed. ``self.opt.eval_params()`` is [theta, *buffers]."""

    def __init__(self, runs, cfg, network, shape, costs, data, dev, aug, batching, eval_budget, channels_last=False):
        self.runs, self.cfg, self.dev, self.shape, self.aug = list(runs), cfg, dev, shape, aug
        self.m = m = len(self.runs)
        self.dtype = engine.DTYPES[cfg.dtype]
        if cfg.mixed_precision and self.dtype != torch.float32:
            raise ValueError(f"mixed precision keeps float32 parameters under bfloat16 autocast; dtype is {cfg.dtype}")
        self.classification = data.kind == "classification"
        self.n_outputs = data.n_outputs
        self.loss_fn = losses.loss_function(cfg.loss)

        # 1. Each run's network, built as alone; its generator goes on from there.
        self.generators, nets = [], []
        for r in self.runs:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(r.seed)
                nets.append(convnets.build(network, shape, data.n_outputs, r.train.dropout).to(self.dtype))
                self.generators.append(torch.Generator().set_state(torch.get_rng_state()))
        self.layout = _Layout(nets[0])
        self.base = copy.deepcopy(nets[0]).to("meta")  # the structure; tensors come from theta and buffers
        self.dropouts = [d for d in self.base.modules() if isinstance(d, convnets.Dropout)]
        if len(costs.dropout_shapes) != len(self.dropouts):
            raise ValueError("every mathdl.convnets.Dropout layer of the module must run in its forward pass")
        rates = [[d.p for d in net.modules() if isinstance(d, convnets.Dropout)] for net in nets]
        self.batching = choose_batching(batching, dev, costs.macs, m, self.base, cfg.mixed_precision)
        # Channels-last images for the loop path's own modules (vmap folds the runs into the channels).
        self.memory_format = torch.channels_last if channels_last and self.batching == "loop" else torch.contiguous_format

        # 2. theta (M, P) and the buffers (M, ...), on the device; the optimizer over theta.
        theta = torch.stack([self.layout.flatten(net) for net in nets]).to(dev)
        self.buffer_names = [name for name, _ in nets[0].named_buffers()]
        buffers = [torch.stack([dict(net.named_buffers())[n] for net in nets]).to(dev) for n in self.buffer_names]
        self.init = theta.clone()
        hyper = {
            k: torch.tensor([float(getattr(r.train, k)) for r in self.runs], dtype=self.dtype, device=dev).view(m, 1)
            for k in PER_RUN_TRAIN_KEYS
        }
        self.opt = _Optimizer(optim.make_optimizer(cfg.optimizer, [theta], hyper), buffers)
        # The loop path steps each run's own module, its tensors views of theta and the buffers.
        self.nets = (
            [
                _share_storage(net.to(dev), self.layout, theta[i], self.buffer_names, [b[i] for b in buffers])
                for i, net in enumerate(nets)
            ]
            if self.batching == "loop"
            else []
        )
        self.net_parts = [
            (list(net.parameters()), [d for d in net.modules() if isinstance(d, convnets.Dropout)]) for net in self.nets
        ]
        self.grads = torch.zeros_like(theta)
        self.draws = _StepDraws(self.generators, aug, rates, costs.dropout_shapes, self.dtype, dev)
        self.streams = (
            _GlobalStreams(self.generators, self.runs, dev) if draws_from_global_generator(self.base) else None
        )
        # engine._Ensemble.fit prefetches minibatch orders on a GPU only when nothing else draws
        # from the generators during an epoch; it reads that from ``self.dropout``.
        self.dropout = self.draws if (aug.active or self.draws.masked or self.streams) else None
        self._grad_fn = grad_and_value(self._loss_and_buffers, has_aux=True)

        # 3. Data on the device, as images (n, C, H, W).
        self.x = {s: torch.as_tensor(data.split(s)[0]).to(dev, self.dtype).reshape(-1, *shape) for s in SPLITS}
        self.y = {s: self._targets(data.split(s)[1]) for s in SPLITS}
        self.n = self.x["train"].shape[0]
        self.batch = engine._batch_size(cfg, self.n)
        elem = torch.finfo(self.dtype).bits // 8
        self.eval_chunk = max(1, int(eval_budget // (2 * m * max(costs.activations, 1) * elem)))
        if dev.type == "cpu":  # batches that stay in the caches, as in the engine, of at least CPU_EVAL_MIN_IMAGES
            self.eval_chunk = min(self.eval_chunk, max(CPU_EVAL_MIN_IMAGES, 2**22 // (m * max(costs.activations, 1))))

        # 4. Status, as in engine._Ensemble.
        self.diverged_at = torch.full((m,), -1, dtype=torch.int64, device=dev)
        self.alive = torch.ones(m, dtype=torch.bool, device=dev)
        self.stopped_epoch = np.full(m, -1)
        self.frozen: torch.Tensor | None = None
        self.records = []

    # ------------------------------------------------------------------------- one run, as a function

    @staticmethod
    @contextlib.contextmanager
    def _masks(dropouts: Sequence[convnets.Dropout], masks: Sequence[torch.Tensor]):
        for d, mask in zip(dropouts, masks):
            d.mask = mask
        try:
            yield
        finally:
            for d in dropouts:
                d.mask = None

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One run's loss (a scalar) of outputs (B, K) against labels (B,) or targets (B, K)."""
        if y.dim() == 1 and self.cfg.loss == "mse":  # one-hot labels, as losses.squared_error makes them (vmap-safe)
            y = (y.unsqueeze(1) == torch.arange(self.n_outputs, device=y.device)).to(out.dtype)  # (B, K)
        target = y.unsqueeze(0) if y.dim() == 1 else y.T.unsqueeze(0)
        return self.loss_fn(out.T.unsqueeze(0), target, self.n_outputs)[0]

    def _autocast(self):
        """The forward pass's precision: bfloat16 autocast with train.mixed_precision, else off."""
        return torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.cfg.mixed_precision)

    def _forward(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """A module's outputs (B, K) in the group's dtype, under the forward pass's precision."""
        with self._autocast():
            out = net(x.contiguous(memory_format=self.memory_format))
        return out.to(self.dtype)

    def _loss_and_buffers(self, theta, buffers, x, y, masks):
        """One run's minibatch loss in training mode, and its buffers after the step."""
        buffers = {n: b.clone() for n, b in zip(self.buffer_names, buffers)}  # batch norm updates these
        with self._masks(self.dropouts, masks), self._autocast():
            out = functional_call(self.base, (self.layout.unflatten(theta), buffers), (x,))  # (B, K)
        return self._loss(out.to(self.dtype), y), tuple(buffers[n] for n in self.buffer_names)

    def _outputs(self, theta, buffers, x):
        """One run's outputs (B, K) in eval mode (batch norm uses the running statistics)."""
        with self._autocast():
            out = functional_call(self.base, (self.layout.unflatten(theta), dict(zip(self.buffer_names, buffers))), (x,))
        return out.to(self.dtype)

    def _per_run(self, fn, args: Sequence, shared: Sequence = (), vmapped: bool = True):
        """fn(*args_m, *shared) for every run m: vmapped (on the vmap path), or looped and stacked."""
        if self.batching == "vmap" and vmapped:
            in_dims = (0,) * len(args) + (None,) * len(shared)
            return vmap(fn, in_dims=in_dims, randomness="error")(*args, *shared)
        outs = []
        for m in range(self.m):
            pick = [tuple(a[m] for a in arg) if isinstance(arg, tuple) else arg[m] for arg in args]
            outs.append(fn(*pick, *shared))
        return torch.utils._pytree.tree_map(lambda *ts: torch.stack(ts), *outs)

    def _is_live(self, theta: torch.Tensor, buffers: Sequence[torch.Tensor]) -> bool:
        """Whether these are the tensors the loop path's modules hold (not a snapshot)."""
        return theta is self.opt.inner.params[0] and all(b is s for b, s in zip(buffers, self.opt.buffers))

    # ------------------------------------------------------------------------- training

    def train_epoch(self, epoch: int, order: torch.Tensor | None) -> None:
        lr_factor = optim.lr_factor(
            self.cfg.lr_schedule, epoch - 1, self.cfg.epochs, self.cfg.lr_step_epochs, self.cfg.lr_gamma
        )
        x, y = self.x["train"], self.y["train"]
        theta, buffers = self.opt.inner.params[0], tuple(self.opt.buffers)
        for start in range(0, self.n, self.batch):
            if order is None:  # the full batch, in the data's order
                idx = torch.arange(self.n, device=self.dev).expand(self.m, -1)
            else:
                idx = order[:, start : start + self.batch]  # (M, B)
            xb, masks = self.draws(x[idx])  # (M, B, C, H, W)
            old_buffers = [b.clone() for b in buffers]
            if self.batching == "vmap":
                grads, (loss, new_buffers) = self._per_run(self._grad_fn, (theta, buffers, xb, y[idx], masks))
                for b, new in zip(buffers, new_buffers):
                    b.copy_(new)
            else:
                grads, loss = self._loop_step(xb, y[idx], masks)
            finite = torch.isfinite(loss)
            # A non-finite loss freezes its run; the others go on untouched.
            newly = ~finite & self.alive
            self.diverged_at = torch.where(newly, epoch, self.diverged_at)
            self.alive &= finite
            if engine._syncs_each_step(self.dev) and not bool(finite.all()):
                self._update_frozen()
            keep = ~finite
            if self.frozen is not None:
                keep = keep.index_fill(0, self.frozen, True)
            for b, old in zip(buffers, old_buffers):
                b.copy_(torch.where(keep.view(-1, *[1] * (b.dim() - 1)), old, b))
            theta.grad = torch.where(finite.view(-1, 1), grads, torch.zeros_like(grads))
            self.opt.step(lr_factor, self.frozen)

    def _loop_step(self, xb, yb, masks) -> tuple[torch.Tensor, torch.Tensor]:
        """Each run's own module, one after the other, with plain autograd: gradients (M, P)
        and losses (M,). Batch norm updates the running statistics in place (views of the
        stacked buffers)."""
        losses_ = []
        for m, (net, (params, dropouts)) in enumerate(zip(self.nets, self.net_parts)):
            with (
                self._masks(dropouts, [mask[m] for mask in masks]),
                self.streams.run(m) if self.streams else contextlib.nullcontext(),
            ):
                loss = self._loss(self._forward(net, xb[m]), yb[m])
            for p in params:
                p.grad = None
            loss.backward()
            torch.cat(
                [
                    p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel(), dtype=p.dtype, device=p.device)
                    for p in params
                ],
                out=self.grads[m],
            )
            losses_.append(loss.detach())
        return self.grads, torch.stack(losses_)

    # ------------------------------------------------------------------------- metrics

    @torch.no_grad()
    def split_metrics(self, params: Sequence[torch.Tensor], split: str) -> dict[str, torch.Tensor]:
        """loss and error of every run on a whole split, in batches of points: each (M,)."""
        theta, buffers = params[0], tuple(params[1:])
        x, y = self.x[split], self.y[split]
        n = x.shape[0]
        total = {"loss": torch.zeros(self.m, dtype=self.dtype, device=self.dev)}
        if self.classification:
            total["error"] = torch.zeros_like(total["loss"])
        # The loop path's own modules when they hold these parameters (skips functional_call's
        # per-call cost); functional_call on the shared structure otherwise.
        own = self.batching == "loop" and self._is_live(theta, buffers)
        for module in (self.base, *self.nets):
            module.eval()
        try:
            for start in range(0, n, self.eval_chunk):
                xc, yc = x[start : start + self.eval_chunk], y[start : start + self.eval_chunk]
                if own:
                    out = torch.stack([self._forward(net, xc) for net in self.nets]).transpose(1, 2)  # (M, K, c)
                else:
                    # Under vmap without a gradient transform torch.autocast does not reach the
                    # operations (they stay float32, torch 2.13), so mixed precision evaluates run by run.
                    out = self._per_run(self._outputs, (theta, buffers), (xc,),
                                        vmapped=not self.cfg.mixed_precision).transpose(1, 2)
                yc = (
                    yc.unsqueeze(0).expand(self.m, *yc.shape)
                    if yc.dim() == 1
                    else yc.T.unsqueeze(0).expand(self.m, -1, -1)
                )
                weight = xc.shape[0] / n
                total["loss"] += weight * self.loss_fn(out, yc, self.n_outputs)
                if self.classification:
                    total["error"] += weight * losses.error_rate(out, yc)
        finally:
            for module in (self.base, *self.nets):
                module.train()
        if not self.classification:
            total["error"] = total["loss"]
        return total

    @torch.no_grad()
    def parameter_metrics(self, params: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Norms and relative distances from initialization, in total and per layer: each (M,)."""
        theta = params[0]
        return engine.norm_metrics(
            (theta[:, a:b].pow(2).sum(1), (theta[:, a:b] - self.init[:, a:b]).pow(2).sum(1),
             self.init[:, a:b].pow(2).sum(1))
            for a, b in self.layout.layers
        )
