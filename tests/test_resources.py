"""What training jobs ask a scheduler for: memory, run time and GPUs from the real shapes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from mathdl import resources
from mathdl.config import load_plan
from mathdl.engine import make_group
from mathdl.resources import Networks


def _group(tiny_config, **train):
    tiny_config["experiments"]["exp"]["train"].update(train)
    return load_plan(tiny_config).experiment("exp").groups[0]


def _mlp(d: int, w: int, k: int) -> int:
    return (d * w + w) + (w * k + k)


SHAPES = {"digits": (64, 10), "mnist": (784, 10), "cifar10": (3072, 10)}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_real_data_sets_are_sized_by_their_own_input_size_and_classes(name):
    # The task's input_dim / n_classes keys keep their defaults (10 and 2): they do not describe real data.
    d, k = SHAPES[name]
    group = make_group(range(8), task={"name": name}, model={"width": 512, "depth": 1})
    assert (group.task.input_dim, group.task.n_classes) != (d, k)
    assert resources.parameter_count(group) == _mlp(d, 512, k)
    (nets,) = resources.networks(group)
    assert (nets.input_dim, nets.n_outputs, nets.n_models, nets.parameters) == (d, k, 8, _mlp(d, 512, k))
    # At least the parameters and gradients of the eight networks, beyond the base.
    assert resources.mem_mb(group) >= resources.MEM_MB_BASE + math.ceil(8 * 2 * 4 * _mlp(d, 512, k) / 2**20)


def test_larger_inputs_need_more_memory_and_time():
    sized = {name: make_group(range(8), task={"name": name, "n_train": 1000}, model={"width": 512})
             for name in SHAPES}
    mem = [resources.mem_mb(sized[n], "cpu") for n in ("digits", "mnist", "cifar10")]
    time = [resources.runtime_minutes(sized[n]) for n in ("digits", "mnist", "cifar10")]
    assert mem[0] < mem[1] < mem[2] and time[0] < time[1] < time[2]


def test_estimates_grow_with_work_and_runs(tiny_config):
    small = _group(tiny_config)
    long = _group(tiny_config, epochs=100_000_000)
    assert resources.runtime_minutes(long) > resources.runtime_minutes(small) >= resources.RUNTIME_MIN_BASE
    assert resources.mem_mb(small) >= resources.MEM_MB_BASE
    few = make_group(range(2), task={"name": "mnist"}, model={"width": 2048})
    many = make_group(range(64), task={"name": "mnist"}, model={"width": 2048})
    assert resources.mem_mb(many, "cpu") > resources.mem_mb(few, "cpu")


def test_the_engine_chunks_bound_the_memory_of_a_huge_group():
    # 2,000 runs of width 32,768 on MNIST (1.3 TB to train at once; 100,000 runs of width 2,048
    # are as huge, but building their run ids took 4 s): the engine trains them in chunks of its
    # 8 GiB budget.
    group = make_group(range(2_000), task={"name": "mnist"}, model={"width": 32_768})
    (nets,) = resources.networks(group)
    assert nets.n_models * nets.bytes_per_model() > 100 * resources.ENGINE_BUDGET_BYTES
    assert resources.mem_mb(group, "cpu") <= resources.MEM_MB_BASE + 1 + (
        resources.ENGINE_BUDGET_BYTES + nets.data_bytes()) / 2**20


def _study_group(study: str, seeds, task=None, params=None, train=None, sweep=None):
    config = {"device": "cpu", "experiments": {"exp": {"study": study, "seeds": list(seeds)}}}
    exp = config["experiments"]["exp"]
    for key, value in (("task", task), ("params", params), ("train", train), ("sweep", sweep)):
        if value is not None:
            exp[key] = value
    return load_plan(config).experiment("exp").groups


def test_double_descent_counts_every_width_it_trains_in_one_job():
    groups = _study_group("double_descent", [0, 1, 2], task={"name": "digits", "n_train": 100, "n_test": 100},
                          params={"nn_ratios": [0.5, 1.0, 8.0]}, sweep={"params.method": ["network"]})
    group = groups[0]
    batches = resources.networks(group)
    assert len(batches) == 3 and {b.n_models for b in batches} == {3}
    assert {(b.input_dim, b.n_outputs) for b in batches} == {(64, 10)}
    # widths whose parameter counts are nearest 0.5, 1 and 8 times n K = 1,000
    assert [round(b.parameters / 1000, 1) for b in batches] == pytest.approx([0.5, 1.0, 8.0], abs=0.1)
    widest = max(batches, key=lambda b: b.model.width)
    assert resources.mem_mb(group, "cpu") == resources.MEM_MB_BASE + math.ceil(
        (widest.train_bytes() + widest.data_bytes()) / 2**20)
    flops = sum(b.flops() for b in batches)  # the widths train one after another: their times add up
    assert resources.runtime_minutes(group, "cpu") == resources.RUNTIME_MIN_BASE + math.ceil(
        2 * flops / resources.CPU_FLOPS / 60)
    assert flops > widest.flops()


def test_regularization_counts_widths_times_penalties():
    groups = _study_group("regularization", [0, 1], task={"name": "digits", "n_train": 60, "n_val": 40, "n_test": 60},
                          params={"widths": [8, 64, 512], "weight_decays": [0, 0.01, 0.1], "dropouts": [0.5]})
    by_part = {g.runs[0].params["part"]: g for g in groups}
    batches = resources.networks(by_part["networks"])
    # per width: 2 seeds x (3 weight decays + 1 dropout rate)
    assert [(b.model.width, b.n_models) for b in batches] == [(8, 8), (64, 8), (512, 8)]
    assert resources.networks(by_part["ridge"]) == []
    assert resources.gpus("cuda", False, by_part["ridge"]) == 0
    assert resources.gpus("cuda", False, by_part["networks"]) == 1


def test_a_study_without_networks_asks_for_the_base_and_no_gpu():
    (group, *_) = _study_group("curse", [0, 1], params={"n_train": 200, "n_test": 50})
    assert resources.networks(group) == []
    assert resources.mem_mb(group, "cpu") == resources.MEM_MB_BASE
    assert resources.mem_mb(group, "cuda") == resources.MEM_MB_BASE + resources.CUDA_HOST_MB
    assert resources.runtime_minutes(group) == resources.RUNTIME_MIN_BASE
    assert resources.gpus("cuda", True, group) == 0


def test_gpus_follow_the_device():
    assert resources.gpus("cuda", False) == 1
    assert resources.gpus("cpu", True) == 0
    assert resources.gpus("auto", False) == 0
    assert resources.gpus("auto", True) == 1


def test_a_gpu_job_holds_the_networks_on_the_device():
    group = make_group(range(256), task={"name": "cifar10", "n_train": 1000}, model={"width": 1024})
    (nets,) = resources.networks(group)
    on_gpu = resources.mem_mb(group, "cuda")
    # the CUDA libraries, the data and the trained parameters copied back: not the training state
    assert on_gpu == resources.MEM_MB_BASE + resources.CUDA_HOST_MB + math.ceil(
        (nets.data_bytes() + 4 * nets.parameters * nets.n_models) / 2**20)
    assert resources.mem_mb(group, "auto", gpus_for_auto=True) == on_gpu
    assert resources.mem_mb(group, "auto", gpus_for_auto=False) == resources.mem_mb(group, "cpu")
    assert resources.runtime_minutes(group, "cuda") < resources.runtime_minutes(group, "cpu")
    # The device not said (a rule that does not pass it): the larger memory, the CPU's time.
    tiny = make_group(range(2), task={"name": "digits"}, model={"width": 8})
    for g in (group, tiny):
        assert resources.mem_mb(g) == max(resources.mem_mb(g, "cpu"), resources.mem_mb(g, "cuda"))
        assert resources.runtime_minutes(g) == resources.runtime_minutes(g, "cpu")
    assert resources.mem_mb(tiny) > resources.mem_mb(tiny, "cpu")  # CUDA's host memory beats a tiny group


def test_parameter_count_agrees_with_the_models(tiny_config):
    from mathdl import models

    for residual in (False, True):
        tiny_config["experiments"]["exp"]["model"] = {"residual": residual, "depth": 3, "width": 5}
        group = load_plan(tiny_config).experiment("exp").groups[0]
        expected = models.parameter_count(group.model, group.task.input_dim, group.task.n_classes)
        assert resources.parameter_count(group) == expected


# The peak is the process's own VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over
# exec, so it starts at the resident size of the process that started the job (a pytest that had
# grown to 980 MB read as a 982 MB job that peaks at 562 MB alone).
_CHILD = """
import json, sys
from mathdl.pipeline import train_group
spec, data, out = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
train_group(spec, data, out + "/m.parquet", out + "/r.parquet", out + "/p.json", device="cpu", threads=1)
print("PEAK_KB", next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak from /proc (Linux)")
def test_the_estimate_is_within_twice_the_measured_peak_of_a_real_job(tmp_path):
    """An MNIST-shaped group trained as the train rule does, in a fresh process: its peak resident
    memory lies below the estimate, and the estimate below twice the peak."""
    from mathdl import pipeline

    group = make_group(range(8), task={"input_dim": 784, "n_classes": 10, "n_train": 256, "n_test": 256},
                       model={"width": 1024}, train={"epochs": 1, "batch_size": 64, "optimizer": "adam"})
    pipeline.make_data(dict(vars(group.task)), tmp_path / "data.npz")
    (tmp_path / "spec.json").write_text(json.dumps(group.to_dict()))
    out = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / "spec.json"), str(tmp_path / "data.npz"),
                          str(tmp_path)], capture_output=True, text=True, check=True).stdout
    peak_mb = int(out.split("PEAK_KB")[1].split()[0]) / 1024
    estimate = resources.mem_mb(group, "cpu")
    assert peak_mb <= estimate <= 2 * peak_mb, (estimate, peak_mb)
