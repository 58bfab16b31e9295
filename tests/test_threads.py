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


def cpu_seconds_while_asleep(*extra_envs: dict) -> list[float]:
    """The probe's CPU seconds asleep, once per environment; the probes run side by side (each
    measures its own process only, and the second no longer waits for the first's torch import)."""
    src = str(threads.__file__).rsplit("/mathdl/", 1)[0]
    probes = [subprocess.Popen([sys.executable, "-c", PROBE.format(src=src)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env={k: v for k, v in os.environ.items() if k not in threads.OPENMP_WAIT} | extra)
              for extra in extra_envs]
    try:
        outs = [probe.communicate(timeout=120) for probe in probes]
    finally:
        for probe in probes:
            probe.kill()  # one left hanging by a timeout; nothing for one that has ended
    for probe, (_, err) in zip(probes, outs):
        assert probe.returncode == 0, err
    return [float(out.strip().splitlines()[-1]) for out, _ in outs]


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores for OpenMP workers")
def test_idle_workers_sleep_with_the_setting_and_spin_without():
    # With mathdl's setting the workers spin ~1,000 rounds (microseconds) and sleep. The same
    # probe with a spin that never ends burns CPU while the main thread sleeps: the variable is
    # read by torch's runtime, and the probe sees the difference.
    # (A spinning worker gets at least 1/8 of a core even with a load of 16 on two cores.)
    setting, spinning = cpu_seconds_while_asleep({}, {"GOMP_SPINCOUNT": "infinite"})
    assert setting < 0.03
    assert spinning > 0.05


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
