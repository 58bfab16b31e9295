"""The stacked ensemble against torch.nn: initial draws and forward passes, model by model.

``RefNet`` is the network written the ordinary way (nn.Linear layers, activations as
modules); tests/test_engine_reference.py trains it with torch.optim.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mathdl import models
from mathdl.config import ModelConfig

ACTIVATION_MODULES = {
    "relu": nn.ReLU,
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
    "softplus": nn.Softplus,
    "identity": nn.Identity,
}


class Step(nn.Module):
    def forward(self, h):
        return (h > 0).to(h.dtype)


class RefNet(nn.Module):
    """One network of an Architecture, written with torch.nn. Rows are points: x (B, in)."""

    def __init__(self, arch: models.Architecture, dropout: float = 0.0):
        super().__init__()
        self.arch = arch
        # Built in forward order, so that nn.Linear's default init draws as the engine does.
        self.linears = nn.ModuleList(nn.Linear(i, o) for i, o in arch.layers)
        self.act = ACTIVATION_MODULES.get(arch.activation, Step)()
        self.drop = nn.Dropout(dropout)

    def reinit(self, seed: int) -> None:
        """Seed again and draw every layer with torch.nn.init: weight, then bias."""
        torch.manual_seed(seed)
        for lin in self.linears:
            w, b = lin.weight, lin.bias
            if self.arch.init == "uniform":
                c = math.sqrt(3.0 / w.shape[1])
                nn.init.uniform_(w, -c, c)
            elif self.arch.init == "he":
                nn.init.kaiming_normal_(w, nonlinearity="relu")
            elif self.arch.init == "glorot":
                nn.init.xavier_normal_(w)
            elif self.arch.init == "ntk":
                nn.init.normal_(w, 0.0, 1.0)
            nn.init.zeros_(b)

    def linear(self, i: int, h: torch.Tensor) -> torch.Tensor:
        lin = self.linears[i]
        if self.arch.init == "ntk":
            return h @ lin.weight.T / math.sqrt(lin.weight.shape[1]) + lin.bias
        return lin(h)

    def forward(self, x):
        a = self.arch
        if a.residual:
            h = self.linear(0, x)
            for block in range(a.depth):
                h = h + a.residual_scale * self.linear(
                    2 + 2 * block, self.drop(self.act(self.linear(1 + 2 * block, h)))
                )
        else:
            h = x
            for i in range(a.depth):
                h = self.drop(self.act(self.linear(i, h)))
        return a.output_scale * self.linear(len(a.layers) - 1, h)


def make_ref(arch: models.Architecture, seed: int, dropout: float = 0.0) -> RefNet:
    """What a run with this seed would build alone: torch.manual_seed(seed), then the network."""
    torch.manual_seed(seed)
    net = RefNet(arch, dropout)
    if arch.init != "pytorch":
        net.reinit(seed)
    return net


def ref_params(net: RefNet) -> list[torch.Tensor]:
    """[W_1, b_1, ...] with biases as columns, as the engine keeps them for one model."""
    out = []
    for lin in net.linears:
        out += [lin.weight.detach(), lin.bias.detach().unsqueeze(-1)]
    return out


def arch_of(**kw) -> models.Architecture:
    cfg = dict(
        depth=2, width=7, activation="relu", residual=False, residual_scale=1.0, init="pytorch", output_scale=1.0
    )
    cfg.update(kw)
    return models.architecture(ModelConfig(**cfg), input_dim=5, output_dim=3)


@pytest.mark.parametrize("init", sorted(models.INITS))
@pytest.mark.parametrize("residual", [False, True])
def test_init_draws_what_torch_nn_draws_alone(init, residual):
    arch = arch_of(init=init, residual=residual)
    seeds = [0, 3, 11]
    stacked = models.init_params(arch, [torch.Generator().manual_seed(s) for s in seeds])
    for m, seed in enumerate(seeds):
        for ours, theirs in zip(stacked, ref_params(make_ref(arch, seed))):
            assert torch.equal(ours[m], theirs), "initial parameters differ from torch.nn's draws"


def test_init_scales():
    """Empirical variances of wide layers match each rule's formula."""
    fan_in, fan_out = 400, 300
    arch = models.Architecture(fan_in, 2, 1, fan_out, "relu", False, 1.0, "he", 1.0)
    expected = {
        "uniform": 1 / fan_in,
        "he": 2 / fan_in,
        "glorot": 2 / (fan_in + fan_out),
        "ntk": 1.0,
        "pytorch": 1 / (3 * fan_in),
    }
    for init, var in expected.items():
        w = models.init_params(
            models.Architecture(**{**arch.__dict__, "init": init}), [torch.Generator().manual_seed(0)]
        )[0]
        assert w.var().item() == pytest.approx(var, rel=0.03), init


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"activation": "tanh", "depth": 3},
        {"activation": "logistic"},
        {"activation": "softplus", "init": "he"},
        {"activation": "identity", "init": "glorot"},
        {"activation": "step", "init": "uniform"},
        {"init": "ntk", "output_scale": 5.0},
        {"residual": True, "depth": 3, "residual_scale": 0.5},
        {"residual": True, "residual_scale": 2.0},
        {"residual": True, "init": "ntk", "activation": "tanh", "output_scale": 0.1},
    ],
    ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "default",
)
def test_forward_matches_torch_nn(kw):
    arch = arch_of(**kw)
    seeds = [1, 2, 5, 8]
    params = [p.double() for p in models.init_params(arch, [torch.Generator().manual_seed(s) for s in seeds])]
    x = torch.randn(20, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    out = models.forward(params, x.T.unsqueeze(0).expand(len(seeds), -1, -1), arch)  # (M, K, B)
    for m, seed in enumerate(seeds):
        expected = make_ref(arch, seed).double()(x)  # (B, K)
        torch.testing.assert_close(out[m].T, expected, rtol=1e-12, atol=1e-12)


def test_step_activation_has_no_gradient_below_it():
    arch = arch_of(activation="step")
    params = [p.requires_grad_() for p in models.init_params(arch, [torch.Generator().manual_seed(0)])]
    models.forward(params, torch.randn(1, 5, 4), arch).sum().backward()
    assert params[0].grad is None and params[-1].grad is not None


def test_layers_and_parameter_count():
    plain, res = arch_of(depth=3), arch_of(depth=3, residual=True)
    assert plain.layers == [(5, 7), (7, 7), (7, 7), (7, 3)]
    assert res.layers == [(5, 7)] + [(7, 7)] * 6 + [(7, 3)]
    assert plain.parameter_count() == sum(p.numel() for p in RefNet(plain).parameters())
    assert res.parameter_count() == sum(p.numel() for p in RefNet(res).parameters())


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid: .*relu"):
        arch_of(activation="gelu")
    with pytest.raises(ValueError, match="valid: .*glorot"):
        arch_of(init="orthogonal")


def test_unknown_name_messages_list_every_valid_name():
    with pytest.raises(ValueError) as err:
        arch_of(activation="gelu")
    assert str(err.value) == "unknown activation 'gelu'; valid: identity, logistic, relu, softplus, step, tanh"
    with pytest.raises(ValueError) as err:
        arch_of(init="orthogonal")
    assert str(err.value) == "unknown init 'orthogonal'; valid: glorot, he, ntk, pytorch, uniform"
