"""The key check of the engine: a handful of runs trained batched give what each run gets when
trained alone the ordinary way: ``torch.manual_seed(seed)``, a torch.nn network, torch.optim,
``torch.randperm`` for each epoch's minibatch order and nn.Dropout's own masks.

Everything runs in float64, so that the two ways agree to about 1e-10 although they add in a
different order (a bug gives differences of order 1e-2). Losses, error rates and weight norms
on every scheduled epoch, and the final parameters, are compared.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from mathdl import engine, models
from mathdl.tasks import Dataset
from test_models import make_ref

RTOL, ATOL = 1e-9, 1e-10


def toy_data(
    kind: str = "classification", n_train: int = 40, n_test: int = 30, d: int = 5, k: int = 3, seed: int = 0
) -> Dataset:
    rng = np.random.default_rng(seed)
    xs = {
        s: rng.standard_normal((n, d)).astype(np.float32) for s, n in (("train", n_train), ("val", 0), ("test", n_test))
    }
    if kind == "classification":
        ys = {s: rng.integers(0, k, len(x)).astype(np.int64) for s, x in xs.items()}
    else:
        ys = {s: rng.standard_normal((len(x), k)).astype(np.float32) for s, x in xs.items()}
    return Dataset(kind, k, **{f"x_{s}": x for s, x in xs.items()}, **{f"y_{s}": y for s, y in ys.items()})


def torch_optimizer(cfg, params):
    wd = cfg.weight_decay
    if cfg.optimizer in ("gd", "sgd"):
        return torch.optim.SGD(params, lr=cfg.lr, weight_decay=wd)
    if cfg.optimizer in ("momentum", "nesterov"):
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.optimizer == "nesterov", weight_decay=wd
        )
    if cfg.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=cfg.lr, eps=cfg.eps, weight_decay=wd)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.momentum, cfg.beta2), eps=cfg.eps, weight_decay=wd)
    raise AssertionError(cfg.optimizer)


def torch_scheduler(cfg, opt):
    if cfg.lr_schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step_epochs, gamma=cfg.lr_gamma)
    if cfg.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0)


def torch_loss(name, out, y, k):
    if name == "cross_entropy":
        return F.cross_entropy(out, y)
    if name == "hinge":
        return F.multi_margin_loss(out, y)
    target = F.one_hot(y, k).to(out.dtype) if y.dtype == torch.int64 else y
    return F.mse_loss(out, target)


def train_alone(run, data: Dataset, arch: models.Architecture):
    """One run the ordinary way; returns its final theta and its metrics by (epoch, split, metric)."""
    cfg = run.train
    net = make_ref(arch, run.seed, cfg.dropout).double()
    opt = torch_optimizer(cfg, net.parameters())
    sched = torch_scheduler(cfg, opt)
    split = {
        s: (torch.as_tensor(data.split(s)[0]).double(), torch.as_tensor(data.split(s)[1])) for s in ("train", "test")
    }
    split = {s: (x, y if y.dtype == torch.int64 else y.double()) for s, (x, y) in split.items()}
    x, y = split["train"]
    n = len(x)
    batch = n if cfg.batch_size == 0 or cfg.optimizer == "gd" else cfg.batch_size

    def theta():
        """Nesterov: torch keeps the look-ahead point p; theta = p + lr mu buf."""
        out = {}
        for name, p in net.named_parameters():
            buf = opt.state[p].get("momentum_buffer") if cfg.optimizer == "nesterov" else None
            out[name] = p.detach() + (cfg.lr * cfg.momentum * buf if buf is not None else 0)
        return out

    def evaluate(epoch):
        net.eval()
        params = theta()
        with torch.no_grad():
            for s, (xs, ys) in split.items():
                out = functional_call(net, params, (xs,))
                loss = torch_loss(cfg.loss, out, ys, data.n_outputs).item()
                records[(epoch, s, "loss")] = loss
                records[(epoch, s, "error")] = (
                    (out.argmax(1) != ys).double().mean().item() if ys.dtype == torch.int64 else loss
                )
        records[(epoch, "train", "weight_norm")] = torch.sqrt(sum((p**2).sum() for p in params.values())).item()
        net.train()

    records = {}
    schedule = set(engine.eval_epochs(cfg.epochs, cfg.eval_points))
    evaluate(0)
    for epoch in range(1, cfg.epochs + 1):
        order = torch.randperm(n) if batch < n else torch.arange(n)
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            opt.zero_grad()
            loss = torch_loss(cfg.loss, net(x[idx]), y[idx], data.n_outputs)
            if cfg.l1:
                loss = loss + cfg.l1 * sum(p.abs().sum() for p in net.parameters())
            loss.backward()
            opt.step()
        sched.step()
        if epoch in schedule:
            evaluate(epoch)
    final = theta()
    params = []
    for lin in range(len(arch.layers)):
        params += [final[f"linears.{lin}.weight"], final[f"linears.{lin}.bias"].unsqueeze(-1)]
    return params, records


def check_against_alone(group, data: Dataset):
    result = engine.train(group, data, progress=False)
    arch = models.architecture(group.model, data.x_train.shape[1], data.n_outputs)
    metrics = result.metrics.set_index(["run_id", "epoch", "split", "metric"])["value"]
    assert not result.runs["diverged"].any()
    for i, run in enumerate(group.runs):
        params, records = train_alone(run, data, arch)
        for ours, theirs in zip(result.params, params):
            torch.testing.assert_close(ours[i], theirs, rtol=RTOL, atol=ATOL)
        for (epoch, split, metric), value in records.items():
            assert metrics[(run.run_id, epoch, split, metric)] == pytest.approx(value, rel=RTOL, abs=ATOL), (
                run.seed,
                dict(run.point),
                epoch,
                split,
                metric,
            )


def group(seeds=(0, 1), model=None, train=None, per_run=None, kind="classification"):
    task = {"kind": kind, "input_dim": 5, "n_classes": 3}
    base = {"dtype": "float64", "epochs": 4, "batch_size": 16, "eval_points": 4}
    return engine.make_group(
        seeds,
        task=task,
        model={"depth": 2, "width": 8, **(model or {})},
        train={**base, **(train or {})},
        per_run=per_run,
    )


# Two kinds of run in every group: a plain one, and one with every regularizer and its own
# momentum, so that per-run hyperparameters, dropout masks and minibatch orders all differ.
PER_RUN = {
    "gd": [{"lr": 0.2}, {"lr": 0.1, "weight_decay": 1e-2, "l1": 1e-3, "dropout": 0.25}],
    "sgd": [{"lr": 0.1}, {"lr": 0.05, "weight_decay": 1e-2, "l1": 1e-3, "dropout": 0.25}],
    "momentum": [{"lr": 0.05}, {"lr": 0.02, "momentum": 0.5, "weight_decay": 1e-2, "l1": 1e-3, "dropout": 0.25}],
    "nesterov": [{"lr": 0.05}, {"lr": 0.02, "momentum": 0.5, "weight_decay": 1e-2, "l1": 1e-3, "dropout": 0.25}],
    "adagrad": [{"lr": 0.05}, {"lr": 0.1, "eps": 1e-6, "weight_decay": 1e-2, "l1": 1e-3, "dropout": 0.25}],
    "adam": [
        {"lr": 0.01},
        {"lr": 0.003, "momentum": 0.8, "beta2": 0.99, "weight_decay": 1e-2, "l1": 1e-3, "dropout": 0.25},
    ],
}


@pytest.mark.parametrize("optimizer", sorted(PER_RUN))
def test_each_optimizer_matches_training_alone(optimizer):
    check_against_alone(group(train={"optimizer": optimizer}, per_run=PER_RUN[optimizer]), toy_data())


@pytest.mark.parametrize(
    "model, train, kind",
    [
        ({}, {"loss": "mse", "optimizer": "momentum", "lr": 0.05}, "regression"),
        ({}, {"loss": "mse", "optimizer": "sgd", "lr": 0.1, "batch_size": 0}, "classification"),
        ({"activation": "tanh", "init": "he"}, {"loss": "hinge", "optimizer": "adam", "lr": 0.01}, "classification"),
        (
            {},
            {"optimizer": "sgd", "lr": 0.2, "lr_schedule": "step", "lr_step_epochs": 2, "lr_gamma": 0.3},
            "classification",
        ),
        ({}, {"optimizer": "adam", "lr": 0.02, "lr_schedule": "cosine"}, "classification"),
        (
            {"residual": True, "residual_scale": 0.5, "init": "ntk", "output_scale": 2.0},
            {"optimizer": "sgd", "lr": 0.05},
            "classification",
        ),
        (
            {"residual": True, "depth": 3, "init": "glorot", "activation": "softplus"},
            {"optimizer": "nesterov", "lr": 0.02},
            "classification",
        ),
        ({"activation": "step", "init": "uniform"}, {"optimizer": "sgd", "lr": 0.1}, "classification"),
    ],
    ids=[
        "mse-regression",
        "mse-labels-fullbatch",
        "hinge-tanh-he",
        "step-schedule",
        "cosine-schedule",
        "residual-ntk-alpha",
        "residual-glorot-nesterov",
        "step-activation",
    ],
)
def test_losses_schedules_and_architectures_match_training_alone(model, train, kind):
    per_run = [{}, {"dropout": 0.25, "weight_decay": 1e-2}]
    check_against_alone(group(model=model, train=train, per_run=per_run, kind=kind), toy_data(kind))
