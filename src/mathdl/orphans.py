"""A training job ends when the Snakemake that started it dies.

Snakemake starts a job as a child process (through a shell). After a hard kill of Snakemake
(``kill -9``, a closed terminal, a lost login node) the job would otherwise train on as an
orphan, holding cores and memory, and race the rerun that writes the same files. A daemon
thread watches the nearest ancestor process whose command line names Snakemake and ends this
process when that ancestor is gone. Results are written atomically, so nothing half-written
is left behind. Linux only (it reads /proc); elsewhere it does nothing.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

POLL_S = 2.0


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # the field after the (command name)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def find_ancestor(match: str = "snakemake") -> int | None:
    """The nearest ancestor process whose command line contains ``match``, or None."""
    pid = os.getppid()
    while pid and pid > 1:
        if match in _cmdline(pid):
            return pid
        pid = _parent(pid)
    return None


def _start_time(pid: int) -> str | None:
    """When a process started (field 22 of /proc/<pid>/stat): with the pid, its identity."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def exit_with_ancestor(match: str = "snakemake", poll_s: float = POLL_S) -> int | None:
    """Watch the nearest ``match`` ancestor; when it dies, end this process (exit status 143).

    Returns the watched pid (None when there is none, or off Linux: then nothing is watched).
    """
    pid = find_ancestor(match)
    if pid is None:
        return None
    start_time = _start_time(pid)  # a reused pid is another process

    def watch():
        while start_time is not None and _start_time(pid) == start_time:
            time.sleep(poll_s)
        print(f"mathdl: Snakemake (pid {pid}) is gone; ending this job", flush=True)
        os._exit(143)

    threading.Thread(target=watch, name="exit-with-snakemake", daemon=True).start()
    return pid
