"""Stacked optimizers against torch.optim, one model at a time, with per-model hyperparameters."""

from __future__ import annotations

import pytest
import torch

from mathdl import optim

M = 3
HYPER = {  # one value per model
    "lr": [0.1, 0.03, 0.2],
    "momentum": [0.9, 0.5, 0.2],
    "beta2": [0.999, 0.9, 0.99],
    "eps": [1e-8, 1e-6, 1e-3],
    "weight_decay": [0.0, 0.01, 0.1],
    "l1": [0.0, 0.0, 0.0],
    "dropout": [0.0, 0.0, 0.0],
}


def hyper_tensors(hyper=HYPER):
    return {k: torch.tensor(v, dtype=torch.float64).view(-1, 1, 1) for k, v in hyper.items()}


def torch_optimizer(name, params, m):
    h = {k: v[m] for k, v in HYPER.items()}
    if name in ("gd", "sgd"):
        return torch.optim.SGD(params, lr=h["lr"], weight_decay=h["weight_decay"])
    if name in ("momentum", "nesterov"):
        return torch.optim.SGD(
            params, lr=h["lr"], momentum=h["momentum"], nesterov=name == "nesterov", weight_decay=h["weight_decay"]
        )
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=h["lr"], eps=h["eps"], weight_decay=h["weight_decay"])
    if name == "adam":
        return torch.optim.Adam(
            params, lr=h["lr"], betas=(h["momentum"], h["beta2"]), eps=h["eps"], weight_decay=h["weight_decay"]
        )
    raise AssertionError(name)


def quadratic_grads(p: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Gradient of the loss sum((p - target)^2 * (1 + |target|)) / 2, a curved bowl."""
    return (p - target) * (1 + target.abs())


@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_steps_match_torch_optim(name):
    """Ten steps on a quadratic per model; nesterov's theta is torch's p + lr mu buf."""
    g = torch.Generator().manual_seed(0)
    shapes = [(M, 4, 3), (M, 4, 1)]
    start = [torch.randn(*s, dtype=torch.float64, generator=g) for s in shapes]
    targets = [torch.randn(*s, dtype=torch.float64, generator=g) for s in shapes]
    params = [p.clone() for p in start]
    opt = optim.make_optimizer(name, params, hyper_tensors())
    for _ in range(10):
        for p, t in zip(params, targets):
            p.grad = quadratic_grads(p, t)
        opt.step()
    for m in range(M):
        ref = [p[m].clone().requires_grad_() for p in start]
        ref_opt = torch_optimizer(name, ref, m)
        for _ in range(10):
            for p, t in zip(ref, targets):
                p.grad = quadratic_grads(p.detach(), t[m])
            ref_opt.step()
        for ours, theirs in zip(opt.eval_params(), ref):
            expected = theirs.detach()
            if name == "nesterov":
                expected = expected + HYPER["lr"][m] * HYPER["momentum"][m] * ref_opt.state[theirs]["momentum_buffer"]
            torch.testing.assert_close(ours[m], expected, rtol=1e-12, atol=1e-12)


def test_l1_is_the_subgradient_of_the_norm():
    hyper = hyper_tensors({**HYPER, "l1": [0.0, 0.5, 0.01], "weight_decay": [0.0, 0.0, 0.0]})
    p = torch.tensor([-2.0, 0.0, 3.0], dtype=torch.float64).view(1, 3, 1).repeat(M, 1, 1)
    p.grad = torch.zeros_like(p)
    g = optim.SGD([p], hyper).gradient(p)
    torch.testing.assert_close(g[1].view(-1), torch.tensor([-0.5, 0.0, 0.5], dtype=torch.float64))


def test_frozen_models_keep_parameters_and_state():
    params = [torch.ones(M, 2, 2, dtype=torch.float64)]
    opt = optim.make_optimizer("adam", params, hyper_tensors())
    params[0].grad = torch.ones_like(params[0])
    opt.step()
    before = [t.clone() for t in (params[0], *opt.buffers[0])]
    params[0].grad = torch.full_like(params[0], float("nan"))
    params[0].grad[0] = 1.0
    opt.step(frozen=torch.tensor([1, 2]))
    for now, then in zip((params[0], *opt.buffers[0]), before):
        assert torch.equal(now[1:], then[1:])
        assert not torch.equal(now[0], then[0])


@pytest.mark.parametrize(
    "schedule, torch_scheduler",
    [
        ("constant", lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 1.0)),
        ("step", lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
        ("cosine", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10)),
    ],
)
def test_schedules_match_torch(schedule, torch_scheduler):
    p = torch.zeros(1, requires_grad=True)
    o = torch.optim.SGD([p], lr=0.4)
    sched = torch_scheduler(o)
    for e in range(10):
        assert 0.4 * optim.lr_factor(schedule, e, 10, 3, 0.5) == pytest.approx(o.param_groups[0]["lr"], rel=1e-12)
        o.step()
        sched.step()


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid: .*nesterov"):
        optim.make_optimizer("rmsprop", [], hyper_tensors())
    with pytest.raises(ValueError, match="valid: .*cosine"):
        optim.lr_factor("linear", 0, 10)


def test_a_group_without_regularizer_keys_takes_plain_steps():
    """``weight_decay`` and ``l1`` may be absent from the hyperparameters: then g is the gradient."""
    p = torch.ones(2, 3, 1, dtype=torch.float64)
    p.grad = torch.full_like(p, 0.5)
    opt = optim.SGD([p], {"lr": torch.full((2, 1, 1), 0.1, dtype=torch.float64)})
    assert torch.equal(opt.gradient(p), p.grad)
    opt.step()
    torch.testing.assert_close(p, torch.full_like(p, 0.95))


@pytest.mark.parametrize("value", [1.0, 0.3])
def test_regularizers_that_every_model_shares_are_applied(value):
    """g = grad + wd theta + l1 sign(theta) also when no model of the group has a zero coefficient."""
    hyper = hyper_tensors({**HYPER, "weight_decay": [value] * M, "l1": [value] * M})
    p = torch.tensor([-2.0, 0.0, 3.0], dtype=torch.float64).view(1, 3, 1).repeat(M, 1, 1)
    p.grad = torch.ones_like(p)
    g = optim.SGD([p], hyper).gradient(p)
    torch.testing.assert_close(g, p.grad + value * p + value * torch.sign(p))


def test_default_step_schedule_keeps_the_learning_rate():
    """step_epochs = 1 and gamma = 1 by default: the step schedule is then constant."""
    assert [optim.lr_factor("step", e, 10) for e in range(4)] == [1.0] * 4
    assert [optim.lr_factor("step", e, 10, gamma=0.5) for e in range(4)] == [1.0, 0.5, 0.25, 0.125]


def test_unknown_name_messages_list_every_valid_name():
    with pytest.raises(ValueError) as err:
        optim.make_optimizer("rmsprop", [], hyper_tensors())
    assert str(err.value) == "unknown optimizer 'rmsprop'; valid: adagrad, adam, gd, momentum, nesterov, sgd"
    with pytest.raises(ValueError) as err:
        optim.lr_factor("linear", 0, 10)
    assert str(err.value) == "unknown lr_schedule 'linear'; valid: constant, cosine, step"
