"""Convolutional networks and the group's own network, as ordinary ``torch.nn.Module``s.

Three architectures, chosen by name (``ARCHITECTURES``), each built for images of shape
(C, H, W) and a number of classes:

- ``cnn``: the standard CNN family of Nakkiran et al. (2020, "Deep double descent: where bigger
  models and more data hurt", ICLR; Appendix B): four Conv-BatchNorm-ReLU-MaxPool stages of
  widths k, 2k, 4k, 8k (3x3 convolutions, stride 1, padding 1, with biases) and a linear
  read-out, after the "backbone" of Page (2018, myrtle.ai, "How to train your ResNet").
  The max-pools are [1, 2, 2, 8] on 32x32 CIFAR-10 images (their code, models/mcnn.py of
  harvard-machine-learning/double-descent: no pool after the first stage, 2x2 after the next
  three, then 4x4, so that 32x32 ends at 1x1). Here the last pool is a global max-pool, the
  same map on 32x32 images and defined on 8x8 digits and 28x28 MNIST too.
- ``resnet18``: the pre-activation ResNet-18 of He et al. (2016, "Identity mappings in deep
  residual networks", ECCV) in its CIFAR form (Kuang Liu's pytorch-cifar ``PreActResNet18``,
  the one Nakkiran et al. use): a 3x3 stem of k channels, four stages of two
  BN-ReLU-conv-BN-ReLU-conv blocks of widths k, 2k, 4k, 8k with strides 1, 2, 2, 2 (a 1x1
  convolution on the shortcut where the shape changes), global average pooling (their 4x4
  average pool on 32x32) and a linear read-out; like their code, no BN-ReLU after the last
  block. k = 64 is the usual ResNet-18 (11,171,146 parameters for CIFAR-10).
- ``module``: the group's own ``nn.Module``, named ``package.module:Class`` and built with
  keyword arguments; it must map a batch (B, C, H, W) to outputs (B, n_outputs).

Both built-in networks take ``dropout``: an inverted-dropout layer (:class:`Dropout`) on the
pooled features before the read-out. Parameters are initialized by PyTorch's defaults
(as in both papers' code), drawn from torch's global generator when a module is built.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from mathdl.spec import ConfigError


@dataclass(frozen=True)
class Network:
    """What every run of a group builds: an architecture and its size."""

    arch: str  # cnn | resnet18 | module
    width: int = 64  # k: the first stage's channels (cnn, resnet18)
    target: str = ""  # module: "package.module:Class"
    kwargs: tuple[tuple[str, Any], ...] = ()  # module: the class's keyword arguments


class Dropout(nn.Module):
    """Inverted dropout that an ensemble engine can feed with each run's own mask.

    On its own it is ``nn.Dropout(p)``: in training, x * Bernoulli(1 - p) / (1 - p). While
    ``mask`` is set (by mathdl.module_engine, which draws one per run from the run's
    generator, as nn.Dropout would draw it on a CPU), it returns x * mask instead.
    """

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = float(p)
        self.mask: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mask is not None:
            return x * self.mask
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


# ----------------------------------------------------------------------------- cnn


class StandardCNN(nn.Module):
    """Nakkiran et al.'s 5-layer CNN of width k: see the module docstring."""

    POOLS = (1, 2, 2)  # after stages 1-3; stage 4 ends in a global max-pool

    def __init__(self, k: int, in_channels: int, n_classes: int, dropout: float = 0.0):
        super().__init__()
        widths = [k, 2 * k, 4 * k, 8 * k]
        layers: list[nn.Module] = []
        c_in = in_channels
        for c, pool in zip(widths, (*self.POOLS, None)):
            layers += [nn.Conv2d(c_in, c, kernel_size=3, stride=1, padding=1, bias=True), nn.BatchNorm2d(c), nn.ReLU()]
            if pool is None:
                layers.append(nn.AdaptiveMaxPool2d(1))
            elif pool > 1:
                layers.append(nn.MaxPool2d(pool))
            c_in = c
        self.features = nn.Sequential(*layers, nn.Flatten())  # (B, 8k)
        self.dropout = Dropout(dropout)
        self.readout = nn.Linear(8 * k, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.dropout(self.features(x)))


# ----------------------------------------------------------------------------- resnet18


class PreActBlock(nn.Module):
    """x -> conv2(relu(bn2(conv1(relu(bn1(x)))))) + shortcut(relu(bn1(x))) (He et al. 2016b, Fig. 4e)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, kernel_size=3, stride=1, padding=1, bias=False)
        self.shortcut = (
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=stride, bias=False) if stride != 1 or c_in != c_out else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.bn1(x))
        skip = self.shortcut(a) if self.shortcut is not None else x
        return self.conv2(F.relu(self.bn2(self.conv1(a)))) + skip


class PreActResNet18(nn.Module):
    """Pre-activation ResNet-18 of width k: see the module docstring."""

    def __init__(self, k: int, in_channels: int, n_classes: int, dropout: float = 0.0):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, k, kernel_size=3, stride=1, padding=1, bias=False)
        blocks, c_in = [], k
        for c, stride in zip((k, 2 * k, 4 * k, 8 * k), (1, 2, 2, 2)):
            blocks += [PreActBlock(c_in, c, stride), PreActBlock(c, c, 1)]
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.dropout = Dropout(dropout)
        self.readout = nn.Linear(8 * k, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1).flatten(1)  # (B, 8k)
        return self.readout(self.dropout(h))


# ----------------------------------------------------------------------------- the group's own module


def load_class(target: str, key: str = "model.module") -> type[nn.Module]:
    """The class named ``package.module:Class``; any problem is one ConfigError line naming ``key``."""
    module_name, sep, class_name = str(target).partition(":")
    if not sep or not module_name or not class_name.isidentifier():
        raise ConfigError(f"{key}: {target!r} is not of the form 'package.module:Class'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise ConfigError(f"{key}: cannot import {module_name!r} ({err}); is it installed or on PYTHONPATH?") from None
    except Exception as err:  # the group's module failed while it was imported
        raise ConfigError(f"{key}: importing {module_name!r} failed: {_one_line(err)}") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ConfigError(f"{key}: module {module_name!r} has no {class_name!r}")
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        raise ConfigError(f"{key}: {target} is not a torch.nn.Module subclass (it is {type(cls).__name__})")
    return cls


def build_user_module(target: str, kwargs: Mapping[str, Any], key: str = "model.module") -> nn.Module:
    """``Class(**kwargs)``; bad arguments, or an error in the constructor, are one ConfigError line."""
    cls = load_class(target, key)
    try:
        return cls(**dict(kwargs))
    except Exception as err:
        args = ", ".join(f"{k}={v!r}" for k, v in dict(kwargs).items())
        raise ConfigError(f"{key}.kwargs: {target}({args}) failed: {_one_line(err)}") from None


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


# ----------------------------------------------------------------------------- building


def _cnn(net: Network, shape: tuple[int, int, int], n_outputs: int, dropout: float) -> nn.Module:
    if min(shape[1:]) < 4:
        raise ConfigError(f"model.arch: cnn halves the image twice; it needs at least 4x4 pixels, not {shape[1:]}")
    return StandardCNN(net.width, shape[0], n_outputs, dropout)


def _resnet18(net: Network, shape: tuple[int, int, int], n_outputs: int, dropout: float) -> nn.Module:
    return PreActResNet18(net.width, shape[0], n_outputs, dropout)


def _module(net: Network, shape: tuple[int, int, int], n_outputs: int, dropout: float) -> nn.Module:
    if dropout:
        raise ConfigError(
            "train.dropout: a group's own module places its own dropout layers; set their rate in "
            "model.kwargs and train.dropout to 0"
        )
    return build_user_module(net.target, dict(net.kwargs))


ARCHITECTURES: dict[str, Callable[[Network, tuple[int, int, int], int, float], nn.Module]] = {
    "cnn": _cnn,
    "resnet18": _resnet18,
    "module": _module,
}


def build(net: Network, shape: tuple[int, int, int], n_outputs: int, dropout: float = 0.0) -> nn.Module:
    """One network for images of ``shape`` (C, H, W) and ``n_outputs`` classes, its parameters
    drawn from torch's global generator (call ``torch.manual_seed`` first for a given run).

    The output's shape is checked on one image (in eval mode, without drawing random numbers):
    a module that does not return (B, n_outputs) is a ConfigError naming model.module.
    """
    try:
        builder = ARCHITECTURES[net.arch]
    except KeyError:
        raise ConfigError(f"model.arch: unknown {net.arch!r}; valid: {', '.join(sorted(ARCHITECTURES))}") from None
    if net.arch != "module" and net.width < 1:
        raise ConfigError(f"model.width: {net.arch} needs a width k >= 1, not {net.width}")
    module = builder(net, tuple(shape), n_outputs, dropout)
    if net.arch == "module":
        _check_outputs(module, net.target, tuple(shape), n_outputs)
    return module


def _check_outputs(module: nn.Module, target: str, shape: tuple[int, int, int], n_outputs: int) -> None:
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(torch.zeros(2, *shape))
    except Exception as err:
        raise ConfigError(
            f"model.module: {target} fails on a batch of images {(2, *shape)}: {_one_line(err)}"
        ) from None
    finally:
        module.train(was_training)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, n_outputs):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(f"model.module: {target} maps images {(2, *shape)} to {got}; the task needs (2, {n_outputs})")


# ----------------------------------------------------------------------------- costs


@dataclass(frozen=True)
class Costs:
    """Per image, in one forward pass: what memory and run-time estimates count."""

    parameters: int
    activations: int  # elements of every leaf module's output (what backward keeps, roughly)
    macs: int  # multiply-adds of the convolutions and linear layers
    dropout_shapes: tuple[tuple[int, ...], ...]  # the input of each mathdl Dropout per image, in modules() order

    @property
    def train_flops(self) -> int:
        """Forward and backward: about 3 forward passes of 2 flops per multiply-add."""
        return 6 * self.macs


def forward_costs(module: nn.Module, shape: tuple[int, int, int]) -> Costs:
    """Count ``Costs`` with forward hooks on one image (eval mode, no gradient, any dtype)."""
    acts, macs, drops = [0], [0], {}
    leaves = [m for m in module.modules() if not list(m.children())]

    def hook(m, inputs, out):
        if isinstance(out, torch.Tensor):
            acts[0] += out.numel()
        if isinstance(m, nn.Conv2d):
            macs[0] += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            macs[0] += out.numel() * m.in_features
        if isinstance(m, Dropout):
            drops[id(m)] = tuple(inputs[0].shape[1:])

    handles = [m.register_forward_hook(hook) for m in leaves]
    was_training = module.training
    module.eval()
    try:
        p = next(module.parameters(), None)
        x = torch.zeros(
            1, *shape, dtype=p.dtype if p is not None else torch.float32, device=p.device if p is not None else "cpu"
        )
        with torch.no_grad():
            module(x)
    finally:
        module.train(was_training)
        for h in handles:
            h.remove()
    shapes = tuple(drops[id(m)] for m in module.modules() if isinstance(m, Dropout) and id(m) in drops)
    return Costs(sum(p.numel() for p in module.parameters()), acts[0], macs[0], shapes)
