"""A job ends when the process that started it (Snakemake) is killed hard."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="Linux /proc only")

CHILD = """
import time
from mathdl.orphans import exit_with_ancestor
print(exit_with_ancestor("fake_snakemake_parent", poll_s=0.1), flush=True)
time.sleep(60)
"""

PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", {child!r}])
print(child.pid, flush=True)
time.sleep(60)
"""


def test_a_job_ends_when_its_snakemake_is_killed(tmp_path):
    script = tmp_path / "fake_snakemake_parent.py"
    script.write_text(PARENT.format(child=CHILD))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    child_pid = int(parent.stdout.readline())
    # The child prints the pid it watches once it found its ancestor (no fixed wait, which a busy
    # machine could outlast): its fake Snakemake, the parent.
    assert parent.stdout.readline().strip() == str(parent.pid)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            return  # the orphan ended
        # a zombie (reparented to an init that has not reaped it yet) has ended too
        state = Path(f"/proc/{child_pid}/stat").read_text().rsplit(")", 1)[1].split()[0] \
            if Path(f"/proc/{child_pid}/stat").exists() else "X"
        if state in ("Z", "X"):
            return
        time.sleep(0.2)
    os.kill(child_pid, signal.SIGKILL)
    pytest.fail("the job kept running after its Snakemake was killed")


def test_without_snakemake_nothing_is_watched():
    from mathdl.orphans import exit_with_ancestor

    assert exit_with_ancestor("no-such-process-name-anywhere") is None
