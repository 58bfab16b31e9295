"""The batched training loop: all runs of a group train together as one ensemble.

``train(group, data, device)`` is the entry point: no paths, no argument parsing. It returns
tidy tables: one row per (run_id, epoch, split, metric, value), and one row per run with its
status. Each run draws, from its own generator seeded with the run's seed and in this order,
its initialization, then each epoch's minibatch order (``torch.randperm``, skipped for the full
batch) and each step's dropout masks, so it gets exactly what it would get if trained alone
after ``torch.manual_seed(seed)``: tests/test_engine_reference.py trains runs both ways and
compares.

Metrics, on the log-spaced epochs of ``eval_epochs`` and in large no-grad batches:
per split, ``loss`` and ``error`` (the error rate for classification, the loss for regression);
on split ``train``, the parameters' ``weight_norm`` and ``rel_dist_init`` (||theta - theta_0|| /
||theta_0||), and the same for each linear layer l (weight and bias) as ``weight_norm_layer<l>``
and ``rel_dist_init_layer<l>``, l = 1, 2, ... in forward order.

A run whose training loss becomes NaN or infinite is frozen and flagged ``diverged``; its
metrics are NaN from the epoch it diverged in on, and the others go on. With ``early_stopping``, every epoch
each run's validation metric is compared with its best; the runs table gets the best epoch as
``selected_epoch`` and the metrics table that epoch's metrics (an extra row set when it was not
a scheduled epoch), beside the final ones. Groups larger than a memory budget train in chunks.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from mathdl import losses, models, optim
from mathdl.spec import PER_RUN_TRAIN_KEYS, GroupSpec, RunSpec, TrainConfig
from mathdl.tasks import SPLITS, Dataset

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class TrainResult:
    metrics: pd.DataFrame  # run_id, epoch, split, metric, value
    runs: pd.DataFrame  # one row per run: run_id, seed, diverged, diverged_epoch, selected_epoch, stopped_epoch
    device: str
    wall_time_s: float
    # The final parameters theta, [W_1, b_1, ...] stacked over runs as in mathdl.models, on the CPU.
    params: list[torch.Tensor] = field(default_factory=list, repr=False)


def resolve_device(device: str) -> torch.device:
    """auto: CUDA when present, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda was asked for, but torch sees no CUDA device")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; valid: auto, cpu, cuda")
    return torch.device(device)


def eval_epochs(epochs: int, points: int) -> list[int]:
    """Epoch 0, the last epoch, and about ``points - 2`` log-spaced epochs between them."""
    grid = np.round(np.geomspace(1, epochs, num=max(points - 1, 1))).astype(int)
    return sorted({0, epochs, *(int(e) for e in grid)})


# ----------------------------------------------------------------------------- memory


def default_memory_budget_mb(dev: torch.device) -> float:
    """CUDA: 80% of the free device memory; CPU: a quarter of the RAM, at most 8 GiB."""
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return 0.8 * free / 2**20
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 16 * 2**30
    return min(8 * 2**30, ram / 4) / 2**20


def bytes_per_run(arch: models.Architecture, cfg: TrainConfig, batch: int) -> int:
    """A generous estimate of the training memory of one run (evaluation is batched apart)."""
    elem = torch.finfo(DTYPES[cfg.dtype]).bits // 8
    # parameters, gradients, initial values, optimizer buffers, best snapshot, two temporaries
    copies = 5 + optim.OPTIMIZERS[cfg.optimizer].n_buffers + int(cfg.early_stopping)
    units = sum(fan_out for _, fan_out in arch.layers) + arch.input_dim
    return elem * (copies * arch.parameter_count() + 4 * units * batch)  # pre-, post-activation, mask, grad


def _batch_size(cfg: TrainConfig, n: int) -> int:
    if cfg.batch_size == 0 or cfg.optimizer in optim.FULL_BATCH_OPTIMIZERS:
        return n
    return min(cfg.batch_size, n)


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of returning it to the OS.

    By default glibc hands large freed blocks back, so each step's new activations of a few MB
    cost page faults: measured on the 2-core CI CPU, a quarter of the time went to the kernel
    and training ran 14% slower. The process keeps its peak memory until it exits, which suits
    a training job. Returns whether the setting took (False off glibc).
    """
    global _KEPT
    if _KEPT is None:
        try:
            libc = ctypes.CDLL("libc.so.6")
            m_trim_threshold, m_mmap_threshold = -1, -3  # from malloc.h
            _KEPT = bool(libc.mallopt(m_mmap_threshold, 2**28)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))
        except (OSError, AttributeError):
            _KEPT = False
    return _KEPT


_KEPT: bool | None = None


def _syncs_each_step(dev: torch.device) -> bool:
    """Check for divergence after every step (exact freezing) where reading a flag is free.

    On a GPU the check would stall the queue of kernels once per step; there divergence is
    tracked on the device and runs are frozen at the end of the epoch (a diverged run's
    metrics are NaN from its divergence on either way).
    """
    return dev.type == "cpu"


# ----------------------------------------------------------------------------- entry point


def train(
    group: GroupSpec,
    data: Dataset,
    device: str = "cpu",
    progress: bool | None = None,
    memory_budget_mb: float | None = None,
) -> TrainResult:
    """Train every run of ``group`` on ``data``; see the module docstring.

    progress: a tqdm bar; None shows it only on a terminal. memory_budget_mb: the memory
    that one chunk of runs may take; None uses ``default_memory_budget_mb``.
    """
    start = time.perf_counter()
    dev = resolve_device(device)
    if dev.type == "cpu" and sys.platform == "linux":
        keep_freed_memory()
    cfg = group.train
    _check(group, data)
    arch = models.architecture(group.model, data.input_dim, data.n_outputs)
    budget = (memory_budget_mb or default_memory_budget_mb(dev)) * 2**20
    per_run = bytes_per_run(arch, cfg, _batch_size(cfg, data.x_train.shape[0]))
    size = max(1, int(0.75 * budget // per_run))
    chunks = [group.runs[i : i + size] for i in range(0, len(group.runs), size)]
    parts = []
    for i, runs in enumerate(chunks):
        desc = f"{group.experiment}/{group.group_id} ({len(runs)} runs" + (
            f", chunk {i + 1}/{len(chunks)})" if len(chunks) > 1 else ")"
        )
        parts.append(_Ensemble(runs, cfg, arch, data, dev, eval_budget=0.25 * budget).fit(desc, progress))
    metrics = _in_canonical_order(pd.concat([p[0] for p in parts], ignore_index=True), group.runs)
    status = pd.concat([p[1] for p in parts], ignore_index=True)
    params = [torch.cat(ps) for ps in zip(*(p[2] for p in parts))]
    return TrainResult(metrics, status, str(dev), time.perf_counter() - start, params)


def _in_canonical_order(metrics: pd.DataFrame, runs: Sequence[RunSpec]) -> pd.DataFrame:
    """Rows by epoch, then (split, metric) in order of first appearance, then run: the same
    table whether the group trained in one chunk or several."""
    pair = metrics["split"] + "/" + metrics["metric"]
    order = {p: i for i, p in enumerate(pd.unique(pair))}
    position = {r.run_id: i for i, r in enumerate(runs)}
    keys = pd.DataFrame({"epoch": metrics["epoch"], "pair": pair.map(order), "run": metrics["run_id"].map(position)})
    return metrics.loc[keys.sort_values(["epoch", "pair", "run"], kind="stable").index].reset_index(drop=True)


def _check(group: GroupSpec, data: Dataset) -> None:
    cfg = group.train
    if data.kind != "classification" and cfg.loss in ("cross_entropy", "hinge"):
        raise ValueError(f"train.loss: {cfg.loss} needs a classification task (task.kind is {data.kind})")
    if cfg.early_stopping and data.x_val.shape[0] == 0:
        raise ValueError("train.early_stopping selects on the validation split: set task.n_val > 0")
    if cfg.dtype not in DTYPES:
        raise ValueError(f"unknown dtype {cfg.dtype!r}; valid: {', '.join(DTYPES)}")
    losses.loss_function(cfg.loss)
    optim.lr_factor(cfg.lr_schedule, 0, cfg.epochs, cfg.lr_step_epochs, cfg.lr_gamma)
    for r in group.runs:
        shared = {k: v for k, v in vars(r.train).items() if k not in PER_RUN_TRAIN_KEYS}
        if shared != {k: v for k, v in vars(cfg).items() if k not in PER_RUN_TRAIN_KEYS} or r.model != group.model:
            raise ValueError(f"run {r.run_id} does not share its group's shape; only {PER_RUN_TRAIN_KEYS} may differ")


# ----------------------------------------------------------------------------- the ensemble


class _DropoutMasks:
    """Inverted dropout with each run's own masks, drawn as nn.Dropout would draw them alone.

    nn.Dropout on a (B, width) activation draws ``bernoulli_(1 - p)`` of that shape and divides
    by 1 - p; we draw the same tensor from the run's generator and transpose it to (width, B).
    A run with p = 0 draws nothing, as nn.Dropout(0) draws nothing.
    """

    def __init__(self, generators: Sequence[torch.Generator], rates: Sequence[float], dtype, dev):
        self.generators, self.rates, self.dtype, self.dev = generators, list(rates), dtype, dev

    def __call__(self, h: torch.Tensor) -> torch.Tensor:
        m, width, batch = h.shape
        masks = []
        for g, p in zip(self.generators, self.rates):
            if p == 0:
                masks.append(torch.ones(width, batch, dtype=self.dtype))
            else:
                masks.append(torch.empty(batch, width, dtype=self.dtype).bernoulli_(1 - p, generator=g).div_(1 - p).T)
        return h * torch.stack(masks).to(self.dev, non_blocking=True)  # (M, width, B)


def norm_metrics(layers) -> dict[str, torch.Tensor]:
    """The parameter metrics from each layer's squared norm, squared distance from initialization
    and squared initial norm (each (M,), layers in forward order): per layer and in total."""
    out, norms, dists, inits = {}, [], [], []
    for l, (norm, dist, init) in enumerate(layers, start=1):
        out[f"weight_norm_layer{l}"] = norm.sqrt()
        out[f"rel_dist_init_layer{l}"] = (dist / init).sqrt()
        norms.append(norm), dists.append(dist), inits.append(init)
    out["weight_norm"] = sum(norms).sqrt()
    out["rel_dist_init"] = (sum(dists) / sum(inits)).sqrt()
    return out


class _Ensemble:
    """One chunk of runs: parameters, optimizer, generators, data on the device, bookkeeping."""

    def __init__(
        self,
        runs: Sequence[RunSpec],
        cfg: TrainConfig,
        arch: models.Architecture,
        data: Dataset,
        dev: torch.device,
        eval_budget: float,
    ):
        self.runs, self.cfg, self.arch, self.dev = list(runs), cfg, arch, dev
        self.m = m = len(self.runs)
        self.dtype = DTYPES[cfg.dtype]
        self.classification = data.kind == "classification"
        self.n_outputs = data.n_outputs
        self.loss_fn = losses.loss_function(cfg.loss)

        # 1. Each run's generator draws its initialization first (float32, then cast).
        self.generators, init = initial_params(self.runs, arch, self.dtype, dev)
        self.params = [p.requires_grad_() for p in init]
        self.init = [p.detach().clone() for p in self.params]
        hyper = {
            k: torch.tensor([float(getattr(r.train, k)) for r in self.runs], dtype=self.dtype, device=dev).view(m, 1, 1)
            for k in PER_RUN_TRAIN_KEYS
        }
        self.opt = optim.make_optimizer(cfg.optimizer, self.params, hyper)
        rates = [r.train.dropout for r in self.runs]
        self.dropout = _DropoutMasks(self.generators, rates, self.dtype, dev) if any(rates) else None

        # 2. Data on the device, shared by all models: rows (n, d) for minibatches (images
        # flattened, once), targets as given.
        self.x = {s: torch.as_tensor(data.rows(s)[0]).to(dev, self.dtype) for s in SPLITS}
        self.y = {s: self._targets(data.split(s)[1]) for s in SPLITS}
        self.n = self.x["train"].shape[0]
        self.batch = _batch_size(cfg, self.n)
        widest = max(arch.width, arch.input_dim, arch.output_dim)
        elem = torch.finfo(self.dtype).bits // 8
        self.eval_chunk = max(1, int(eval_budget // (4 * m * widest * elem)))  # points per no-grad batch
        if dev.type == "cpu":  # batches that stay in the caches: measured ~1.5x faster than one big one
            self.eval_chunk = min(self.eval_chunk, max(32, 2**22 // (m * widest)))

        # 3. Status on the host (for tables) and on the device (for the loop).
        self.diverged_at = torch.full((m,), -1, dtype=torch.int64, device=dev)
        self.alive = torch.ones(m, dtype=torch.bool, device=dev)
        self.stopped_epoch = np.full(m, -1)
        self.frozen: torch.Tensor | None = None  # indices of runs that no longer train
        self.records: list[tuple[np.ndarray, int | np.ndarray, str, str, np.ndarray]] = []

    def _targets(self, y: np.ndarray) -> torch.Tensor:
        t = torch.as_tensor(y).to(self.dev)
        return t if t.dtype == torch.int64 else t.to(self.dtype)

    # ------------------------------------------------------------------------- training

    def fit(self, desc: str, progress: bool | None) -> tuple[pd.DataFrame, pd.DataFrame, list[torch.Tensor]]:
        cfg = self.cfg
        schedule = set(eval_epochs(cfg.epochs, cfg.eval_points))
        self.evaluate_and_record(0)
        if cfg.early_stopping:
            self._start_selection()
        orders = _EpochOrders(
            self.generators, self.n, self.dev, prefetch=self.dev.type == "cuda" and self.dropout is None
        )
        # disable=None: a bar on a terminal, quiet in logs and under Snakemake.
        bar = tqdm(range(1, cfg.epochs + 1), desc=desc, disable=None if progress is None else not progress, leave=False)
        for epoch in bar:
            order = orders.next() if self.batch < self.n else None
            if self.frozen is None or len(self.frozen) < self.m:
                self.train_epoch(epoch, order)
            self._update_frozen()
            if cfg.early_stopping:
                self._select(epoch)
            if epoch in schedule:
                self.evaluate_and_record(epoch)
        bar.close()
        orders.close()
        if cfg.early_stopping:
            self._record_selected(schedule)
        return self._tables()

    def train_epoch(self, epoch: int, order: torch.Tensor | None) -> None:
        lr_factor = optim.lr_factor(
            self.cfg.lr_schedule, epoch - 1, self.cfg.epochs, self.cfg.lr_step_epochs, self.cfg.lr_gamma
        )
        x, y = self.x["train"], self.y["train"]
        for start in range(0, self.n, self.batch):
            if order is None:  # the full batch, in the data's order
                xb = x.T.unsqueeze(0).expand(self.m, -1, -1)  # (M, d, n)
                yb = (
                    y.unsqueeze(0).expand(self.m, *y.shape) if y.dim() == 1 else y.T.unsqueeze(0).expand(self.m, -1, -1)
                )
            else:
                idx = order[:, start : start + self.batch]  # (M, B)
                xb = x[idx].transpose(1, 2)  # (M, d, B)
                yb = y[idx] if y.dim() == 1 else y[idx].transpose(1, 2)  # (M, B) or (M, K, B)
            loss = self.loss_fn(models.forward(self.params, xb, self.arch, self.dropout), yb, self.n_outputs)  # (M,)
            finite = torch.isfinite(loss)
            # A non-finite loss freezes its run; the others go on untouched.
            newly = ~finite & self.alive
            self.diverged_at = torch.where(newly, epoch, self.diverged_at)
            self.alive &= finite
            if _syncs_each_step(self.dev) and not bool(finite.all()):
                self._update_frozen()
            for p in self.params:
                p.grad = None
            torch.where(finite, loss, torch.zeros_like(loss)).sum().backward()
            self.opt.step(lr_factor, self.frozen)

    def _update_frozen(self) -> None:
        frozen = ~self.alive | torch.as_tensor(self.stopped_epoch >= 0, device=self.dev)
        self.frozen = frozen.nonzero().view(-1) if bool(frozen.any()) else None

    # ------------------------------------------------------------------------- metrics

    @torch.no_grad()
    def split_metrics(self, params: Sequence[torch.Tensor], split: str) -> dict[str, torch.Tensor]:
        """loss and error of every model on a whole split, in batches of points: each (M,)."""
        x, y = self.x[split], self.y[split]
        n = x.shape[0]
        total = {"loss": torch.zeros(self.m, dtype=self.dtype, device=self.dev)}
        if self.classification:
            total["error"] = torch.zeros_like(total["loss"])
        for start in range(0, n, self.eval_chunk):
            xc, yc = x[start : start + self.eval_chunk], y[start : start + self.eval_chunk]
            out = models.forward(params, xc.T.unsqueeze(0).expand(self.m, -1, -1), self.arch)  # (M, K, c)
            yc = (
                yc.unsqueeze(0).expand(self.m, *yc.shape) if yc.dim() == 1 else yc.T.unsqueeze(0).expand(self.m, -1, -1)
            )
            weight = xc.shape[0] / n
            total["loss"] += weight * self.loss_fn(out, yc, self.n_outputs)
            if self.classification:
                total["error"] += weight * losses.error_rate(out, yc)
        if not self.classification:
            total["error"] = total["loss"]
        return total

    @torch.no_grad()
    def parameter_metrics(self, params: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Norms and relative distances from initialization, in total and per layer: each (M,)."""

        def sq(ts):
            return sum(t.flatten(1).pow(2).sum(1) for t in ts)

        layers = [(2 * i, 2 * i + 1) for i in range(len(self.arch.layers))]
        return norm_metrics(
            (sq([params[w], params[b]]), sq([params[w] - self.init[w], params[b] - self.init[b]]),
             sq([self.init[w], self.init[b]]))
            for w, b in layers
        )

    def metrics(self, params: Sequence[torch.Tensor]) -> list[tuple[str, str, torch.Tensor]]:
        rows = [
            (split, metric, v)
            for split in SPLITS
            if self.x[split].shape[0] > 0
            for metric, v in self.split_metrics(params, split).items()
        ]
        return rows + [("train", metric, v) for metric, v in self.parameter_metrics(params).items()]

    def evaluate_and_record(self, epoch: int) -> None:
        diverged_at = self.diverged_at.cpu().numpy()
        gone = (diverged_at >= 0) & (diverged_at <= epoch)  # NaN from the epoch it diverged in on
        runs = np.arange(self.m)
        for split, metric, v in self.metrics(self.opt.eval_params()):
            v = v.cpu().numpy().astype(float)
            v[gone] = np.nan
            self.records.append((runs, epoch, split, metric, v))

    # ------------------------------------------------------------------------- early stopping

    def _validation(self) -> torch.Tensor:
        v = self.split_metrics(self.opt.eval_params(), "val")[self.cfg.selection_metric]
        return torch.where(self.alive, v, torch.full_like(v, float("nan")))

    def _start_selection(self) -> None:
        self.best = self._validation()
        self.selected = torch.zeros(self.m, dtype=torch.int64, device=self.dev)
        self.since_best = torch.zeros(self.m, dtype=torch.int64, device=self.dev)
        self.snapshot = [p.detach().clone() for p in self.opt.eval_params()]

    @torch.no_grad()
    def _select(self, epoch: int) -> None:
        """Keep each run's best validation epoch and parameters; stop runs out of patience."""
        val = self._validation()
        improved = val < self.best  # NaN never improves
        self.best = torch.where(improved, val, self.best)
        self.selected = torch.where(improved, epoch, self.selected)
        self.since_best = torch.where(improved, 0, self.since_best + 1)
        idx = improved.nonzero().view(-1)
        if len(idx) > 0:
            for s, p in zip(self.snapshot, self.opt.eval_params()):
                s[idx] = p[idx]
        if self.cfg.patience > 0:
            out_of_patience = (self.since_best >= self.cfg.patience) & self.alive
            stop = out_of_patience.cpu().numpy() & (self.stopped_epoch < 0)
            if stop.any():
                self.stopped_epoch[stop] = epoch
                self._update_frozen()

    def _record_selected(self, schedule: set[int]) -> None:
        """Metrics of the selected parameters, for runs whose selected epoch was not scheduled."""
        selected = self.selected.cpu().numpy()
        extra = np.flatnonzero(~np.isin(selected, sorted(schedule)))
        if len(extra) == 0:
            return
        for split, metric, v in self.metrics(self.snapshot):
            self.records.append((extra, selected[extra], split, metric, v.cpu().numpy().astype(float)[extra]))

    # ------------------------------------------------------------------------- tables

    def _tables(self) -> tuple[pd.DataFrame, pd.DataFrame, list[torch.Tensor]]:
        run_ids = np.array([r.run_id for r in self.runs], dtype=object)
        metrics = pd.DataFrame(
            {
                "run_id": np.concatenate([run_ids[runs] for runs, *_ in self.records]),
                "epoch": np.concatenate([np.broadcast_to(e, len(runs)) for runs, e, *_ in self.records]).astype(
                    np.int64
                ),
                "split": np.concatenate([np.full(len(runs), s, dtype=object) for runs, _, s, *_ in self.records]),
                "metric": np.concatenate([np.full(len(runs), m, dtype=object) for runs, _, _, m, _ in self.records]),
                "value": np.concatenate([v for *_, v in self.records]).astype(float),
            }
        )
        diverged_at = self.diverged_at.cpu().numpy()
        selected = self.selected.cpu().numpy() if self.cfg.early_stopping else np.full(self.m, self.cfg.epochs)
        status = pd.DataFrame(
            {
                "run_id": run_ids,
                "seed": [r.seed for r in self.runs],
                "diverged": diverged_at >= 0,
                "diverged_epoch": diverged_at,
                "selected_epoch": selected.astype(np.int64),
                "stopped_epoch": self.stopped_epoch.astype(np.int64),
            }
        )
        params = [p.detach().cpu() for p in self.opt.eval_params()]
        return metrics, status, params


class _EpochOrders:
    """Each run's permutation of the training points for the next epoch, stacked (M, n).

    On a GPU the next epoch's permutations are drawn on a CPU thread while the current epoch
    trains (only where nothing else draws from the generators meanwhile, i.e. without dropout).
    """

    def __init__(self, generators: Sequence[torch.Generator], n: int, dev: torch.device, prefetch: bool):
        self.generators, self.n, self.dev = generators, n, dev
        self.pool = ThreadPoolExecutor(max_workers=1) if prefetch else None
        self.pending = None

    def _draw(self) -> torch.Tensor:
        order = torch.stack([torch.randperm(self.n, generator=g) for g in self.generators])
        return order.pin_memory().to(self.dev, non_blocking=True) if self.dev.type == "cuda" else order

    def next(self) -> torch.Tensor:
        if self.pool is None:
            return self._draw()
        order = self.pending.result() if self.pending is not None else self._draw()
        self.pending = self.pool.submit(self._draw)
        return order

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)


# ----------------------------------------------------------------------------- building groups by hand


def initial_params(runs: Sequence[RunSpec], arch: models.Architecture, dtype: torch.dtype,
                   dev: torch.device) -> tuple[list[torch.Generator], list[torch.Tensor]]:
    """Each run's generator, seeded with the run's seed, and theta_0 drawn from it first (float32,
    then cast), stacked over runs: where training starts (and the generators go on from there)."""
    generators = [torch.Generator().manual_seed(r.seed) for r in runs]
    return generators, [p.to(dev, dtype) for p in models.init_params(arch, generators)]


def make_group(
    seeds: Sequence[int] = (0,),
    *,
    task: dict | None = None,
    model: dict | None = None,
    train: dict | None = None,
    per_run: Sequence[dict] | None = None,
    experiment: str = "adhoc",
) -> GroupSpec:
    """A group outside a config file (tests, benchmarks, notebooks): schema defaults, updated by
    ``task``, ``model`` and ``train``; each seed is paired with each entry of ``per_run``
    (overrides of keys in PER_RUN_TRAIN_KEYS). Run and group ids are those a config would give.
    """
    from mathdl.config import ModelConfig, TaskConfig, load_schema, model_identity, stable_hash, train_identity

    defs = load_schema()["$defs"]

    def section(name: str, overrides: dict | None) -> dict:
        values = {k: v["default"] for k, v in defs[name]["properties"].items()}
        unknown = set(overrides or {}) - set(values)
        if unknown:
            raise ValueError(f"{name}: unknown keys {sorted(unknown)}; valid: {', '.join(values)}")
        return {**values, **(overrides or {})}

    task_d, model_d, train_d = section("task", task), section("model", model), section("train", train)
    variants = list(per_run) if per_run else [{}]
    for v in variants:
        if set(v) - set(PER_RUN_TRAIN_KEYS):
            raise ValueError(
                f"per_run may set only {PER_RUN_TRAIN_KEYS}, not {sorted(set(v) - set(PER_RUN_TRAIN_KEYS))}"
            )
    shared = {k: v for k, v in train_identity(train_d).items() if k not in PER_RUN_TRAIN_KEYS}
    group_id = stable_hash({"task": task_d, "model": model_identity(model_d), "train": shared})
    runs = []
    for v in variants:
        run_train = {**train_d, **v}
        for seed in seeds:
            identity = {"task": task_d, "model": model_identity(model_d), "train": train_identity(run_train)}
            run_id = stable_hash({**identity, "seed": seed})
            point = tuple(sorted(v.items()))
            runs.append(
                RunSpec(run_id, seed, point, TaskConfig(**task_d), ModelConfig(**model_d), TrainConfig(**run_train))
            )
    return GroupSpec(group_id, experiment, "sweep", stable_hash(task_d), tuple(runs))
