"""Mixed precision (train.mixed_precision: bfloat16 autocast) and channels-last images in the
module engine (mathdl.module_engine).

On a CPU, torch.autocast runs convolutions and matrix products in bfloat16 as on a GPU, so the
check is the engine's usual one: each run gets what it would get trained alone the ordinary way,
here ``torch.autocast`` around the forward pass of a torch.nn module stepped by torch.optim.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mathdl import convnets, engine, module_engine
from test_convnets import CNN, K, SHAPE, images
from test_engine_reference import torch_loss, torch_optimizer

EPOCHS = 3


class Recorder(nn.Module):
    """A group's own module without batch norm that records, at each forward pass of more than
    two images (the engine checks a module's outputs on two), the dtype of its convolution's output and
    whether its input was channels-last."""

    SEEN: list[tuple[torch.dtype, bool]] = []

    def __init__(self, channels: int = 3, n_classes: int = K, in_channels: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.head = nn.Linear(channels * 64, n_classes)

    def forward(self, x):
        h = self.conv(x)
        channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        if x.shape[0] > 2:
            Recorder.SEEN.append((h.dtype, channels_last))
        return self.head(torch.relu(h).flatten(1))


RECORDER = convnets.Network("module", target="test_mixed_precision:Recorder")


def group(mixed_precision: bool, seeds=(0, 1), dtype="float32"):
    train = {"dtype": dtype, "epochs": EPOCHS, "batch_size": 8, "eval_points": 4, "optimizer": "sgd", "lr": 0.05,
             "mixed_precision": mixed_precision}
    return engine.make_group(seeds, task={"n_classes": K}, train=train)


def final(result, split="test", metric="loss") -> np.ndarray:
    m = result.metrics
    rows = m[(m.epoch == EPOCHS) & (m.split == split) & (m.metric == metric)]
    return rows.set_index("run_id").loc[[r for r in result.runs.run_id]].value.to_numpy()


def alone(run, data, network, mixed_precision: bool) -> dict[str, float]:
    """One run the ordinary way, in float32, each forward pass under bfloat16 autocast when asked."""
    cfg = run.train
    torch.manual_seed(run.seed)
    net = convnets.build(network, SHAPE, K, cfg.dropout).float()
    opt = torch_optimizer(cfg, net.parameters())
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=mixed_precision)
    for _ in range(EPOCHS):
        order = torch.randperm(len(x))
        for start in range(0, len(x), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            opt.zero_grad()
            with autocast:
                out = net(x[idx])
            torch_loss(cfg.loss, out.float(), y[idx], K).backward()
            opt.step()
    net.eval()
    out = {}
    with torch.no_grad():
        for split in ("train", "test"):
            xs, ys = (torch.as_tensor(a) for a in data.split(split))
            with autocast:
                o = net(xs)
            out[split] = torch_loss(cfg.loss, o.float(), ys, K).item()
    return out


def test_each_run_gets_what_autocast_gives_it_alone():
    data = images()
    mixed = module_engine.train(group(True), data, network=CNN, progress=False)
    plain = module_engine.train(group(False), data, network=CNN, progress=False)
    assert mixed.batching == "loop"  # a CNN has batch norm (the next test)
    for split in ("train", "test"):
        want = [alone(r, data, CNN, True)[split] for r in group(True).runs]
        np.testing.assert_allclose(final(mixed, split), want, rtol=2e-6)
        # bfloat16's rounding moves the losses far more than the tolerance above: the check has teeth
        assert np.abs(final(plain, split) - want).max() > 1e-4


def test_batch_norm_in_mixed_precision_takes_the_loop_path():
    cnn = convnets.build(CNN, SHAPE, K)
    cpu = torch.device("cpu")
    assert module_engine.choose_batching("auto", cpu, 1_000, 8, cnn, mixed_precision=True) == "loop"
    assert module_engine.choose_batching("auto", cpu, 1_000, 8, cnn, mixed_precision=False) == "vmap"
    with pytest.raises(ValueError, match="batching vmap: a module with batch norm trains in mixed precision"):
        module_engine.choose_batching("vmap", cpu, 1_000, 8, cnn, mixed_precision=True)
    own = convnets.build(RECORDER, SHAPE, K)  # no batch norm: vmap is fine
    assert module_engine.choose_batching("auto", cpu, 1_000, 8, own, mixed_precision=True) == "vmap"


@pytest.mark.parametrize("batching", ["vmap", "loop"])
def test_autocast_reaches_every_forward_pass_of_training_and_evaluation(batching):
    data = images()
    Recorder.SEEN.clear()
    mixed = module_engine.train(group(True), data, network=RECORDER, batching=batching, progress=False)
    assert Recorder.SEEN and {dtype for dtype, _ in Recorder.SEEN} == {torch.bfloat16}
    Recorder.SEEN.clear()
    plain = module_engine.train(group(False), data, network=RECORDER, batching=batching, progress=False)
    assert {dtype for dtype, _ in Recorder.SEEN} == {torch.float32}
    # the tables stay float32 numbers, and bfloat16 moved them
    assert mixed.metrics.value.dtype == np.float64
    assert np.abs(final(mixed) - final(plain)).max() > 1e-4


def test_the_two_paths_agree_in_mixed_precision_to_bfloat16s_rounding():
    data = images()
    vmapped = module_engine.train(group(True), data, network=RECORDER, batching="vmap", progress=False)
    looped = module_engine.train(group(True), data, network=RECORDER, batching="loop", progress=False)
    np.testing.assert_allclose(final(vmapped), final(looped), rtol=2e-2)


def test_channels_last_images_reach_the_loop_paths_modules_and_change_nothing():
    data = images(shape=(3, 8, 8))  # with one channel both layouts are the same strides
    network = convnets.Network("module", target="test_mixed_precision:Recorder", kwargs=(("in_channels", 3),))
    Recorder.SEEN.clear()
    last = module_engine.train(group(False, dtype="float64"), data, network=network, batching="loop",
                               channels_last=True, progress=False)
    assert Recorder.SEEN and all(flag for _, flag in Recorder.SEEN)
    Recorder.SEEN.clear()
    first = module_engine.train(group(False, dtype="float64"), data, network=network, batching="loop",
                                channels_last=False, progress=False)
    assert not any(flag for _, flag in Recorder.SEEN)  # on a CPU the default is the usual layout
    np.testing.assert_allclose(final(last), final(first), rtol=1e-10)
    np.testing.assert_allclose(final(last, "train", "error"), final(first, "train", "error"), rtol=0)


def test_mixed_precision_needs_float32_parameters():
    with pytest.raises(ValueError, match="mixed precision keeps float32 parameters under bfloat16 autocast; dtype is "
                                         "float64"):
        module_engine.train(group(True, dtype="float64"), images(), network=CNN, progress=False)
