"""mathdl.threads: the OpenMP wait setting reaches torch's runtime, and a job's threads are its cores."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from mathdl import threads

# A process that starts torch's OpenMP workers, then sleeps: how much CPU did it burn asleep?
# Spinning workers burn CPU for as long as their spin count lasts; sleeping ones burn none.
PROBE = """
import sys, time
sys.path.insert(0, {src!r})
from mathdl.threads import configure_openmp
configure_openmp()
import torch
torch.set_num_threads(2)
a = torch.randn(256, 256)
for _ in range(20):
    a = (a @ a).tanh()
start = time.process_time()
time.sleep(1.0)
print(time.process_time() - start)
"""


def cpu_seconds_while_asleep(extra_env: dict) -> float:
    env = {k: v for k, v in os.environ.items() if k not in threads.OPENMP_WAIT} | extra_env
    src = str(threads.__file__).rsplit("/mathdl/", 1)[0]
    out = subprocess.run([sys.executable, "-c", PROBE.format(src=src)], env=env, capture_output=True, text=True,
                         check=True, timeout=120)
    return float(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores for OpenMP workers")
def test_idle_workers_sleep_with_the_setting_and_spin_without():
    # With mathdl's setting the workers spin ~1,000 rounds (microseconds) and sleep.
    assert cpu_seconds_while_asleep({}) < 0.03
    # The same probe with a spin that never ends burns CPU while the main thread sleeps: the
    # variable is read by torch's runtime, and the probe sees the difference.
    # (A spinning worker gets at least 1/8 of a core even with a load of 16 on two cores.)
    assert cpu_seconds_while_asleep({"GOMP_SPINCOUNT": "infinite"}) > 0.05


def test_configure_keeps_a_users_setting_and_says_when_it_is_too_late():
    env = {"GOMP_SPINCOUNT": "5"}
    took = threads.configure_openmp(env)
    assert env["GOMP_SPINCOUNT"] == "5" and env["KMP_BLOCKTIME"] == threads.OPENMP_WAIT["KMP_BLOCKTIME"]
    assert took is False  # torch is imported in this test process: only children would see it


def test_use_threads_sets_the_jobs_threads_and_restores_them():
    from threadpoolctl import threadpool_info

    before = torch.get_num_threads()
    with threads.use_threads(1):
        assert torch.get_num_threads() == 1
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
    assert torch.get_num_threads() == before
