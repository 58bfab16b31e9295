"""Convolutional networks in the ensemble engine (mathdl.convnets, mathdl.module_engine).

The key check, as for the MLP engine (test_engine_reference.py): each run of a group trained
as one ensemble gets what it gets trained alone the ordinary way: ``torch.manual_seed(seed)``,
the torch.nn module, torch.optim, ``torch.randperm`` for each epoch's order, the same draws
for augmentation (by a per-image crop and flip written here) and nn.Dropout's own masks.
Everything runs in float64 on tiny images, so the two ways agree to about 1e-9 although they
add in a different order (a bug gives differences of order 1e-2).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mathdl import convnets, engine, module_engine
from mathdl.module_engine import Augmentation
from mathdl.spec import ConfigError
from mathdl.tasks import Dataset
from test_engine_reference import torch_loss, torch_optimizer, torch_scheduler

RTOL, ATOL = 1e-8, 1e-10
SHAPE = (1, 8, 8)
K = 3


class SmallNet(nn.Module):
    """A group's own module: conv, batch norm, pooling, torch's nn.Dropout, a read-out."""

    def __init__(self, channels: int = 3, n_classes: int = K, p: float = 0.25):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten()
        )
        self.drop = nn.Dropout(p)
        self.head = nn.Linear(channels * 16, n_classes)

    def forward(self, x):
        return self.head(self.drop(self.body(x)))


class WrongOutputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(64, 5)

    def forward(self, x):
        return self.lin(x.flatten(1))


def images(n_train=24, n_val=16, n_test=16, shape=SHAPE, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    xs = {
        s: rng.standard_normal((n, *shape)).astype(np.float32)
        for s, n in (("train", n_train), ("val", n_val), ("test", n_test))
    }
    ys = {s: rng.integers(0, K, len(x)).astype(np.int64) for s, x in xs.items()}
    return Dataset("classification", K, **{f"x_{s}": x for s, x in xs.items()}, **{f"y_{s}": y for s, y in ys.items()})


def group(seeds=(0, 1), train=None, per_run=None):
    base = {"dtype": "float64", "epochs": 3, "batch_size": 8, "eval_points": 4}
    return engine.make_group(seeds, task={"n_classes": K}, train={**base, **(train or {})}, per_run=per_run)


CNN = convnets.Network("cnn", width=2)
RESNET = convnets.Network("resnet18", width=2)
USER = convnets.Network("module", target="test_convnets:SmallNet", kwargs=(("channels", 3), ("p", 0.25)))


# ----------------------------------------------------------------------------- training alone


def crop_and_flip_alone(xb, padding, offsets, flips):
    """The augmentation one image at a time: pad, slice the crop, mirror."""
    out = []
    h, w = xb.shape[-2:]
    for i, img in enumerate(xb):
        r, c = (int(offsets[i, 0]), int(offsets[i, 1])) if offsets is not None else (0, 0)
        img = F.pad(img, (padding,) * 4)[:, r : r + h, c : c + w]
        out.append(img.flip(-1) if flips is not None and flips[i] else img)
    return torch.stack(out)


def train_alone(run, data: Dataset, network, aug: Augmentation):
    """One run the ordinary way: its final module and its metrics by (epoch, split, metric)."""
    cfg = run.train
    torch.manual_seed(run.seed)
    net = convnets.build(network, SHAPE, K, cfg.dropout).double()
    opt = torch_optimizer(cfg, net.parameters())
    sched = torch_scheduler(cfg, opt)
    split = {
        s: (torch.as_tensor(data.split(s)[0]).double(), torch.as_tensor(data.split(s)[1]))
        for s in ("train", "val", "test")
    }
    x, y = split["train"]
    n = len(x)
    batch = n if cfg.batch_size == 0 else cfg.batch_size
    records = {}

    def evaluate(epoch):
        net.eval()
        with torch.no_grad():
            for s, (xs, ys) in split.items():
                out = net(xs)
                records[(epoch, s, "loss")] = torch_loss(cfg.loss, out, ys, K).item()
                records[(epoch, s, "error")] = (out.argmax(1) != ys).double().mean().item()
        records[(epoch, "train", "weight_norm")] = torch.sqrt(sum((p**2).sum() for p in net.parameters())).item()
        net.train()

    schedule = set(engine.eval_epochs(cfg.epochs, cfg.eval_points))
    evaluate(0)
    for epoch in range(1, cfg.epochs + 1):
        order = torch.randperm(n) if batch < n else torch.arange(n)
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            xb = x[idx]
            offsets = torch.randint(0, 2 * aug.crop_padding + 1, (len(idx), 2)) if aug.crop_padding else None
            flips = torch.rand(len(idx)) < 0.5 if aug.flip else None
            if aug.active:
                xb = crop_and_flip_alone(xb, aug.crop_padding, offsets, flips)
            opt.zero_grad()
            torch_loss(cfg.loss, net(xb), y[idx], K).backward()
            opt.step()
        sched.step()
        if epoch in schedule:
            evaluate(epoch)
    return net, records


def check_against_alone(g, network, aug=None, batching="vmap", data=None):
    data, aug = data or images(), aug or Augmentation()
    # A convolution's bias right before batch norm has gradient 0 in exact arithmetic (batch
    # norm subtracts each channel's mean), so Adam's g / sqrt(s) turns the round-off of either
    # way into steps of their own: measured up to 7e-10 apart after 9 steps. Outputs do not
    # depend on these biases; every other parameter and every metric agrees to 1e-10.
    bias_atol = 1e-8 if g.train.optimizer == "adam" else ATOL
    result = module_engine.train(g, data, network=network, augmentation=aug, batching=batching, progress=False)
    assert result.batching == batching
    assert not result.runs["diverged"].any()
    metrics = result.metrics.set_index(["run_id", "epoch", "split", "metric"])["value"]
    for i, run in enumerate(g.runs):
        net, records = train_alone(run, data, network, aug)
        for name, ours, (theirs_name, theirs) in zip(result.param_names, result.params, net.named_parameters()):
            assert name == theirs_name
            before_bn = name.endswith("bias") and isinstance(net.get_submodule(name.rpartition(".")[0]), nn.Conv2d)
            torch.testing.assert_close(ours[i], theirs.detach(), rtol=RTOL, atol=bias_atol if before_bn else ATOL)
        for name, theirs in net.named_buffers():  # batch norm's running statistics, per run
            torch.testing.assert_close(result.buffers[name][i], theirs, rtol=RTOL, atol=ATOL)
        for (epoch, split, metric), value in records.items():
            assert metrics[(run.run_id, epoch, split, metric)] == pytest.approx(value, rel=RTOL, abs=ATOL), (
                run.seed,
                dict(run.point),
                epoch,
                split,
                metric,
            )
    return result


# Two kinds of run in every group: a plain one, and one with its own learning rate, weight
# decay, momentum and dropout, so that hyperparameters, masks and minibatch orders all differ.
PER_RUN = {
    "sgd": [{"lr": 0.1}, {"lr": 0.05, "weight_decay": 1e-2, "dropout": 0.3}],
    "momentum": [{"lr": 0.05}, {"lr": 0.02, "momentum": 0.5, "weight_decay": 1e-2, "dropout": 0.3}],
    "adam": [{"lr": 0.01}, {"lr": 0.003, "momentum": 0.8, "beta2": 0.99, "weight_decay": 1e-2, "dropout": 0.3}],
}


@pytest.mark.parametrize("optimizer", sorted(PER_RUN))
def test_cnn_runs_match_training_alone(optimizer):
    check_against_alone(group(train={"optimizer": optimizer}, per_run=PER_RUN[optimizer]), CNN)


def test_resnet18_runs_with_augmentation_match_training_alone():
    # (mathdl.optim's momentum matches torch.optim's only at a constant learning rate: a schedule goes with adam)
    g = group(train={"optimizer": "adam", "lr": 0.01, "lr_schedule": "cosine"}, per_run=[{}, {"dropout": 0.2}])
    check_against_alone(g, RESNET, aug=Augmentation(crop_padding=2, flip=True))


def test_own_module_with_torch_dropout_matches_training_alone():
    # nn.Dropout draws from torch's global generator: the engine loops, with each run's stream.
    g = group(train={"optimizer": "adam", "lr": 0.01}, per_run=[{}, {"weight_decay": 1e-2}])
    check_against_alone(g, USER, aug=Augmentation(crop_padding=1), batching="loop")


def test_cnn_full_batch_mse_matches_training_alone():
    g = group(train={"optimizer": "sgd", "lr": 0.1, "loss": "mse", "batch_size": 0}, per_run=[{}, {"lr": 0.05}])
    check_against_alone(g, CNN)


# ----------------------------------------------------------------------------- batched and looped


@pytest.mark.parametrize("optimizer", ["adam", "nesterov"])  # nesterov: metrics of theta, not the look-ahead point
def test_batched_and_looped_paths_give_the_same_tables(optimizer):
    g = group(train={"optimizer": optimizer, "lr": 0.01}, per_run=[{}, {"dropout": 0.3, "lr": 0.02}], seeds=(0, 1, 2))
    aug = Augmentation(crop_padding=1, flip=True)
    data = images()
    runs = {
        b: module_engine.train(g, data, network=CNN, augmentation=aug, batching=b, progress=False)
        for b in ("vmap", "loop")
    }
    a, b = runs["vmap"], runs["loop"]
    assert (a.batching, b.batching) == ("vmap", "loop")
    pd.testing.assert_frame_equal(a.metrics.drop(columns="value"), b.metrics.drop(columns="value"))
    np.testing.assert_allclose(a.metrics["value"], b.metrics["value"], rtol=RTOL, atol=ATOL)
    pd.testing.assert_frame_equal(a.runs, b.runs)
    for name in a.buffers:  # running means include the convolutions' biases, which Adam moves by round-off
        torch.testing.assert_close(a.buffers[name], b.buffers[name], rtol=RTOL, atol=1e-8)


def test_batching_rule():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    cnn = convnets.build(CNN, SHAPE, K)

    def macs(k, shape):
        return convnets.forward_costs(convnets.build(convnets.Network("cnn", k), shape, 10), shape).macs

    small, large = macs(4, (1, 8, 8)), macs(2, (3, 32, 32))
    assert small <= module_engine.CPU_VMAP_MAX_MACS < large
    assert module_engine.choose_batching("auto", cpu, small, 8, cnn) == "vmap"
    assert module_engine.choose_batching("auto", cpu, large, 8, cnn) == "loop"
    assert module_engine.choose_batching("auto", cpu, small, 1, cnn) == "loop"
    assert module_engine.choose_batching("auto", cuda, large, 8, cnn) == "vmap"
    assert module_engine.choose_batching("loop", cuda, large, 8, cnn) == "loop"
    assert module_engine.choose_batching("vmap", cpu, large, 8, cnn) == "vmap"
    own = SmallNet()
    assert module_engine.choose_batching("auto", cuda, small, 8, own) == "loop"
    with pytest.raises(ValueError, match="global generator"):
        module_engine.choose_batching("vmap", cpu, small, 8, own)
    with pytest.raises(ValueError, match="valid: auto, vmap, loop"):
        module_engine.choose_batching("grouped", cpu, small, 8, cnn)


def test_chunks_give_the_tables_of_one_ensemble():
    g = group(train={"optimizer": "sgd", "lr": 0.1}, per_run=[{}, {"dropout": 0.3}])
    data = images()
    whole = module_engine.train(g, data, network=CNN, batching="vmap", progress=False)
    costs = convnets.forward_costs(convnets.build(CNN, SHAPE, K), SHAPE)
    one_run_mb = module_engine.bytes_per_run(costs, SHAPE, g.train, 8) / 2**20
    chunked = module_engine.train(g, data, network=CNN, batching="vmap", progress=False, memory_budget_mb=one_run_mb)
    pd.testing.assert_frame_equal(whole.metrics.drop(columns="value"), chunked.metrics.drop(columns="value"))
    np.testing.assert_allclose(whole.metrics["value"], chunked.metrics["value"], rtol=RTOL, atol=ATOL)
    for ours, theirs in zip(whole.params, chunked.params):
        torch.testing.assert_close(ours, theirs, rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------------------- batch norm


def test_batch_norm_keeps_running_statistics_per_run_and_evaluates_with_them():
    g = group(train={"optimizer": "sgd", "lr": 0.1, "epochs": 2}, per_run=[{}, {"lr": 0.02}])
    data = images()
    result = module_engine.train(g, data, network=CNN, batching="vmap", progress=False)
    mean = result.buffers["features.1.running_mean"]  # (runs, channels)
    assert mean.shape == (len(g.runs), CNN.width)
    assert not torch.allclose(mean[0], mean[1])  # each run its own statistics
    assert (result.buffers["features.1.num_batches_tracked"] == 2 * 3).all()  # 2 epochs of 3 steps
    x_test, y_test = torch.as_tensor(data.x_test).double(), torch.as_tensor(data.y_test)
    final = result.metrics.query("epoch == 2 and split == 'test' and metric == 'loss'").set_index("run_id")["value"]
    for i, run in enumerate(g.runs):
        net = convnets.build(CNN, SHAPE, K).double()
        net.load_state_dict(
            {
                **{n: p[i] for n, p in zip(result.param_names, result.params)},
                **{n: b[i] for n, b in result.buffers.items()},
            }
        )
        with torch.no_grad():
            evaluated = F.cross_entropy(net.eval()(x_test), y_test).item()
            batch_stats = F.cross_entropy(net.train()(x_test), y_test).item()
        assert final[run.run_id] == pytest.approx(evaluated, rel=1e-10)
        assert abs(batch_stats - evaluated) > 1e-6  # the table's loss is not a train-mode loss


# ----------------------------------------------------------------------------- early stopping, divergence


@pytest.mark.parametrize("batching", ["vmap", "loop"])
def test_early_stopping_records_the_metrics_of_the_selected_epoch(batching):
    epochs = 6
    train = {"optimizer": "adam", "lr": 0.05, "epochs": epochs}
    per_run = [{}, {"lr": 0.02}]
    data = images(n_val=24, seed=3)
    every = module_engine.train(
        group(train={**train, "eval_points": 100}, per_run=per_run),
        data,
        network=CNN,
        batching=batching,
        progress=False,
    )
    ref = every.metrics.set_index(["run_id", "epoch", "split", "metric"])["value"]
    stopped = module_engine.train(
        group(train={**train, "eval_points": 2, "early_stopping": True}, per_run=per_run),
        data,
        network=CNN,
        batching=batching,
        progress=False,
    )
    rows = stopped.metrics.set_index(["run_id", "epoch", "split", "metric"])["value"]
    for run, status in zip(every.runs.itertuples(), stopped.runs.itertuples()):
        val = ref.xs((run.run_id, "val", "loss"), level=("run_id", "split", "metric"))
        assert status.selected_epoch == val.idxmin()  # the first best validation loss
        selected = rows.xs((status.run_id, status.selected_epoch), level=("run_id", "epoch"))
        expected = ref.xs((run.run_id, status.selected_epoch), level=("run_id", "epoch"))
        pd.testing.assert_series_equal(selected.sort_index(), expected.sort_index(), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("batching", ["vmap", "loop"])
def test_a_diverging_run_is_frozen_and_the_others_go_on(batching):
    train = {"optimizer": "sgd", "loss": "mse", "epochs": 3}
    data = images()
    both = module_engine.train(
        group(train=train, per_run=[{"lr": 0.05}, {"lr": 1e200}], seeds=(0,)),
        data,
        network=CNN,
        batching=batching,
        progress=False,
    )
    alone = module_engine.train(
        group(train=train, per_run=[{"lr": 0.05}], seeds=(0,)), data, network=CNN, batching=batching, progress=False
    )
    status = both.runs.set_index("run_id")
    bad = both.runs.run_id[1]
    assert list(both.runs["diverged"]) == [False, True]
    epoch = status.loc[bad, "diverged_epoch"]
    assert epoch >= 1
    later = both.metrics.query("run_id == @bad and epoch > @epoch")
    assert later["value"].isna().all() and len(later) > 0
    # frozen before the non-finite step: parameters and running statistics as they were
    assert all(torch.isfinite(p[1]).all() for p in both.params)
    assert all(torch.isfinite(b[1]).all() for b in both.buffers.values())
    good = both.metrics.query("run_id == @both.runs.run_id[0]").reset_index(drop=True)
    pd.testing.assert_frame_equal(good, alone.metrics.reset_index(drop=True))


def test_metric_names_are_the_engines():
    g = group(train={"optimizer": "sgd", "lr": 0.1, "epochs": 1})
    result = module_engine.train(g, images(), network=CNN, progress=False)
    mlp = engine.train(
        engine.make_group((0,), task={"n_classes": K, "input_dim": 64}, train={"epochs": 1}),
        Dataset(
            "classification",
            K,
            *(
                a.reshape(len(a), -1) if a.ndim == 4 else a
                for a in (
                    images().x_train,
                    images().y_train,
                    images().x_val,
                    images().y_val,
                    images().x_test,
                    images().y_test,
                )
            ),
        ),
        progress=False,
    )

    def names(metrics):
        return {(s, m.rstrip("0123456789")) for s, m in zip(metrics["split"], metrics["metric"])}

    assert names(result.metrics) == names(mlp.metrics)
    layers = {m for m in result.metrics["metric"] if m.startswith("weight_norm_layer")}
    owners = {n.rpartition(".")[0] for n in result.param_names}  # 4 convs, 4 batch norms, the read-out
    assert len(layers) == len(owners) == 9


# ----------------------------------------------------------------------------- pieces


def test_augmentation_is_the_per_image_crop_and_flip():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 4, 2, 6, 5, generator=g)  # (runs, batch, C, H, W)
    offsets = torch.randint(0, 5, (3, 4, 2), generator=g)
    flips = torch.rand(3, 4, generator=g) < 0.5
    got = module_engine.augment(x, 2, offsets, flips)
    for m in range(3):
        torch.testing.assert_close(got[m], crop_and_flip_alone(x[m], 2, offsets[m], flips[m]), rtol=0, atol=0)
    torch.testing.assert_close(module_engine.augment(x, 0, None, None), x, rtol=0, atol=0)


def test_cnn_is_nakkirans_five_layer_cnn():
    net = convnets.build(convnets.Network("cnn", width=4), (3, 32, 32), 10)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8, 16, 32]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) and c.bias is not None for c in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 4
    assert net.readout.in_features == 32 and net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    # 3x3 convolutions with biases, batch norms and the read-out, counted by hand
    weights = 3 * 4 * 9 + 4 + 4 * 8 * 9 + 8 + 8 * 16 * 9 + 16 + 16 * 32 * 9 + 32
    assert sum(p.numel() for p in net.parameters()) == weights + 2 * (4 + 8 + 16 + 32) + 32 * 10 + 10


def test_resnet18_at_width_64_is_the_usual_resnet18():
    net = convnets.build(convnets.Network("resnet18", width=64), (3, 32, 32), 10)
    # the CIFAR pre-activation ResNet-18 has 11,171,146 parameters (kuangliu/pytorch-cifar)
    assert sum(p.numel() for p in net.parameters()) == 11_171_146
    assert sum(isinstance(m, nn.Conv2d) for m in net.modules()) == 20  # stem, 16 in blocks, 3 shortcuts


# ----------------------------------------------------------------------------- the group's own module: errors


@pytest.mark.parametrize(
    "target, kwargs, key, words",
    [
        ("no_such_package_xyz.nets:Net", {}, "model.module", "cannot import 'no_such_package_xyz.nets'"),
        ("torch.nn:NoSuchNet", {}, "model.module", "has no 'NoSuchNet'"),
        ("collections:OrderedDict", {}, "model.module", "is not a torch.nn.Module"),
        ("torch.nn.Linear", {}, "model.module", "not of the form 'package.module:Class'"),
        ("test_convnets:SmallNet", {"widht": 3}, "model.module.kwargs", "unexpected keyword argument 'widht'"),
        ("test_convnets:WrongOutputs", {}, "model.module", "to (2, 5); the task needs (2, 3)"),
    ],
)
def test_a_bad_module_is_one_line_naming_the_key(target, kwargs, key, words):
    net = convnets.Network("module", target=target, kwargs=tuple(kwargs.items()))
    with pytest.raises(ConfigError) as err:
        convnets.build(net, SHAPE, K)
    message = str(err.value)
    assert message.startswith(f"{key}: ") and words in message and "\n" not in message


def test_config_errors_of_the_builtin_networks():
    with pytest.raises(ConfigError, match=r"^model.arch: unknown 'vgg'; valid: cnn, module, resnet18$"):
        convnets.build(convnets.Network("vgg"), SHAPE, K)
    with pytest.raises(ConfigError, match=r"^model.arch: cnn .* at least 4x4"):
        convnets.build(convnets.Network("cnn", 2), (1, 2, 2), K)
    with pytest.raises(ConfigError, match=r"^train.dropout: "):
        convnets.build(USER, SHAPE, K, dropout=0.5)


# ----------------------------------------------------------------------------- on a GPU


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("batching", ["vmap", "loop"])
def test_cuda_gives_the_cpu_tables(batching):
    # Dropout masks and augmentation are drawn from the runs' CPU generators either way.
    g = group(train={"optimizer": "momentum", "lr": 0.05}, per_run=[{}, {"dropout": 0.3}])
    aug, data = Augmentation(crop_padding=1, flip=True), images()
    cpu, gpu = (
        module_engine.train(g, data, device=d, network=CNN, augmentation=aug, batching=batching, progress=False)
        for d in ("cpu", "cuda")
    )
    assert gpu.device.startswith("cuda") and gpu.batching == batching
    pd.testing.assert_frame_equal(cpu.metrics, gpu.metrics, check_exact=False, rtol=1e-7, atol=1e-9)
    for name in cpu.buffers:
        torch.testing.assert_close(cpu.buffers[name], gpu.buffers[name], rtol=1e-7, atol=1e-9)


def test_network_of_reads_the_model_config_keys():
    from types import SimpleNamespace

    model = SimpleNamespace(arch="module", width=3, module="test_convnets:SmallNet", kwargs={"p": 0.1, "channels": 2})
    net = module_engine.network_of(SimpleNamespace(model=model))
    assert net == convnets.Network("module", 3, "test_convnets:SmallNet", (("channels", 2), ("p", 0.1)))
