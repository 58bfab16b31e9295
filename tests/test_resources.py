"""What training jobs ask a scheduler for."""

from __future__ import annotations

from mathdl import resources
from mathdl.config import load_plan


def _group(tiny_config, **train):
    tiny_config["experiments"]["exp"]["train"].update(train)
    return load_plan(tiny_config).experiment("exp").groups[0]


def test_parameter_count_of_a_one_hidden_layer_network(tiny_config):
    group = _group(tiny_config)  # input 3, width 2, 2 classes
    assert resources.parameter_count(group) == (3 * 2 + 2) + (2 * 2 + 2)


def test_estimates_grow_with_work(tiny_config):
    small = _group(tiny_config)
    long = _group(tiny_config, epochs=100_000_000)
    assert resources.runtime_minutes(long) > resources.runtime_minutes(small) >= resources.RUNTIME_MIN_BASE
    assert resources.mem_mb(small) >= resources.MEM_MB_BASE


def test_gpus_follow_the_device():
    assert resources.gpus("cuda", False) == 1
    assert resources.gpus("cpu", True) == 0
    assert resources.gpus("auto", False) == 0
    assert resources.gpus("auto", True) == 1


def test_parameter_count_agrees_with_the_models(tiny_config):
    from mathdl import models

    for residual in (False, True):
        tiny_config["experiments"]["exp"]["model"] = {"residual": residual, "depth": 3, "width": 5}
        group = load_plan(tiny_config).experiment("exp").groups[0]
        expected = models.parameter_count(group.model, group.task.input_dim, group.task.n_classes)
        assert resources.parameter_count(group) == expected
