"""The batched training loop: all runs of a group train together as one ensemble.

``train(group, data, device)`` is the entry point: no paths, no argument parsing. It returns
tidy tables, one row per (run_id, epoch, split, metric, value), and one row per run with its
status. Each run draws its initialization and its minibatch order from its own generator
seeded with the run's seed, so it gets what it would get if trained alone. A run whose
training loss becomes NaN or infinite is frozen and flagged ``diverged``; the others go on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from mathdl import losses, models, optim
from mathdl.config import PER_RUN_TRAIN_KEYS, GroupSpec
from mathdl.tasks import SPLITS, Dataset


@dataclass
class TrainResult:
    metrics: pd.DataFrame  # run_id, epoch, split, metric, value
    runs: pd.DataFrame  # one row per run: run_id, seed, diverged, diverged_epoch
    device: str
    wall_time_s: float


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
    """Epoch 0 and about ``points - 1`` log-spaced epochs up to the last one."""
    grid = np.unique(np.round(np.geomspace(1, epochs, num=max(points - 1, 1))).astype(int))
    return [0] + [int(e) for e in grid]


def _targets(y: np.ndarray, device: torch.device, m: int) -> torch.Tensor:
    """Targets for M models: labels (M, n) or values (M, K, n)."""
    t = torch.as_tensor(y, device=device)
    if t.dtype == torch.int64:
        return t.unsqueeze(0).expand(m, -1)
    return t.T.unsqueeze(0).expand(m, -1, -1)


def _gather(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Columns idx (M, B) of t: (M, n) -> (M, B) or (M, K, n) -> (M, K, B)."""
    if t.dim() == 2:
        return torch.gather(t, 1, idx)
    return torch.gather(t, 2, idx.unsqueeze(1).expand(-1, t.shape[1], -1))


def train(group: GroupSpec, data: Dataset, device: str = "cpu", progress: bool | None = None) -> TrainResult:
    """Train every run of ``group`` on ``data``; see the module docstring."""
    start = time.perf_counter()
    dev = resolve_device(device)
    runs, model, cfg = group.runs, group.model, group.train
    m = len(runs)
    act = models.activation(model.activation)
    loss_fn = losses.loss_function(cfg.loss)
    classification = data.kind == "classification"

    # 1. Per-run generators: initialization first, then minibatch orders, as if trained alone.
    generators = [torch.Generator().manual_seed(r.seed) for r in runs]
    sizes = models.layer_sizes(model, data.x_train.shape[1], data.n_outputs)
    params = [p.to(dev).requires_grad_() for p in models.init_params(sizes, generators)]
    hyper = {k: torch.tensor([getattr(r.train, k) for r in runs], device=dev).view(m, 1, 1) for k in PER_RUN_TRAIN_KEYS}
    opt = optim.make_optimizer(cfg.optimizer, params, hyper)

    # 2. Data on the device, shared by all models; columns are points.
    x = {s: torch.as_tensor(data.split(s)[0], device=dev).T.unsqueeze(0).expand(m, -1, -1) for s in SPLITS}
    y = {s: _targets(data.split(s)[1], dev, m) for s in SPLITS}
    n = data.x_train.shape[0]
    batch = n if cfg.batch_size == 0 else min(cfg.batch_size, n)
    steps_per_epoch = -(-n // batch)

    active = torch.ones(m, 1, 1, device=dev)  # 0 once a run diverged
    diverged_epoch = np.full(m, -1)
    schedule = set(eval_epochs(cfg.epochs, cfg.eval_points))
    rows: list[pd.DataFrame] = []
    run_ids = [r.run_id for r in runs]

    def evaluate(epoch: int) -> None:
        with torch.no_grad():
            frozen = active.view(m).cpu().numpy() == 0
            for split in SPLITS:
                if x[split].shape[2] == 0:
                    continue
                out = models.forward(params, x[split], act)
                values = {"loss": loss_fn(out, y[split], data.n_outputs)}
                if classification:
                    values["error"] = losses.error_rate(out, y[split])
                else:
                    values["error"] = values["loss"]
                for metric, v in values.items():
                    v = v.cpu().numpy().astype(float)
                    v[frozen & (diverged_epoch < epoch)] = np.nan
                    rows.append(pd.DataFrame({"run_id": run_ids, "epoch": epoch, "split": split, "metric": metric, "value": v}))
            norm = torch.sqrt(sum((p.detach() ** 2).flatten(1).sum(1) for p in params)).cpu().numpy()
            rows.append(pd.DataFrame({"run_id": run_ids, "epoch": epoch, "split": "train", "metric": "weight_norm", "value": norm}))

    evaluate(0)
    # disable=None: a bar on a terminal, quiet in logs and under Snakemake.
    bar = tqdm(
        range(1, cfg.epochs + 1),
        desc=f"{group.experiment}/{group.group_id} ({m} runs)",
        disable=None if progress is None else not progress,
        leave=False,
    )
    for epoch in bar:
        # 3. Each run's own permutation of the training points: (M, n).
        order = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(dev)
        for step in range(steps_per_epoch):
            idx = order[:, step * batch : (step + 1) * batch]  # (M, B)
            xb = torch.gather(x["train"], 2, idx.unsqueeze(1).expand(-1, x["train"].shape[1], -1))
            yb = _gather(y["train"], idx)
            loss = loss_fn(models.forward(params, xb, act), yb, data.n_outputs)  # (M,)
            finite = torch.isfinite(loss)
            # 4. A non-finite loss freezes its run; the others go on untouched.
            newly = (~finite) & (active.view(m) > 0)
            if bool(newly.any()):
                diverged_epoch[newly.cpu().numpy()] = epoch
                active[newly] = 0
            for p in params:
                p.grad = None
            torch.where(finite, loss, torch.zeros_like(loss)).sum().backward()
            opt.step(active)
        if epoch in schedule:
            evaluate(epoch)
    bar.close()

    metrics = pd.concat(rows, ignore_index=True)
    status = pd.DataFrame(
        {
            "run_id": run_ids,
            "seed": [r.seed for r in runs],
            "diverged": diverged_epoch >= 0,
            "diverged_epoch": diverged_epoch,
        }
    )
    return TrainResult(metrics, status, str(dev), time.perf_counter() - start)
