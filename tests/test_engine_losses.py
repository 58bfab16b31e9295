"""Per-model losses against torch.nn's, model by model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mathdl import losses

M, K, B = 4, 3, 10


def outputs_and_labels():
    g = torch.Generator().manual_seed(0)
    return torch.randn(M, K, B, dtype=torch.float64, generator=g), torch.randint(0, K, (M, B), generator=g)


@pytest.mark.parametrize(
    "name, reference",
    [
        ("cross_entropy", F.cross_entropy),
        ("hinge", F.multi_margin_loss),
        ("mse", lambda out, y: F.mse_loss(out, F.one_hot(y, K).double())),
    ],
)
def test_classification_losses_match_torch_nn(name, reference):
    out, y = outputs_and_labels()
    ours = losses.loss_function(name)(out, y, K)
    for m in range(M):
        assert ours[m].item() == pytest.approx(reference(out[m].T, y[m]).item(), rel=1e-12)


def test_mse_on_real_targets():
    out, _ = outputs_and_labels()
    target = torch.randn_like(out)
    ours = losses.squared_error(out, target, K)
    for m in range(M):
        assert ours[m].item() == pytest.approx(F.mse_loss(out[m], target[m]).item(), rel=1e-12)


def test_error_rate():
    out = torch.tensor([[[2.0, 0.0], [1.0, 3.0]]])  # (1, K=2, B=2): predictions 0, 1
    assert losses.error_rate(out, torch.tensor([[0, 0]])).item() == 0.5


def test_label_losses_refuse_real_targets_and_unknown_names():
    out, _ = outputs_and_labels()
    for name in ("cross_entropy", "hinge"):
        with pytest.raises(ValueError, match="classification"):
            losses.loss_function(name)(out, torch.randn_like(out), K)
    with pytest.raises(ValueError, match="valid: cross_entropy, hinge, mse"):
        losses.loss_function("huber")


def test_mse_one_hot_has_every_class_when_the_batch_lacks_some():
    """The one-hot targets have K rows even when the largest labels are absent from the batch."""
    out, _ = outputs_and_labels()
    y = torch.zeros(M, B, dtype=torch.int64)  # only class 0 of K = 3
    ours = losses.squared_error(out, y, K)
    for m in range(M):
        assert ours[m].item() == pytest.approx(F.mse_loss(out[m].T, F.one_hot(y[m], K).double()).item(), rel=1e-12)


@pytest.mark.parametrize("name", ["cross_entropy", "hinge"])
def test_label_loss_message_names_the_config_key(name):
    out, _ = outputs_and_labels()
    with pytest.raises(ValueError) as err:
        losses.loss_function(name)(out, torch.randn_like(out), K)
    assert str(err.value) == f"train.loss: {name} needs a classification task"
