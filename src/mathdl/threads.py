"""How a job's CPU threads wait: short spins, so that a busy machine does not stall training.

PyTorch's CPU kernels run on OpenMP threads (GNU libgomp in the PyPI wheels; MKL and oneDNN
use the same threads). Between two parallel regions an idle OpenMP worker spins, waiting for
the next region, rather than sleeping: libgomp spins 300,000 rounds by default (about 3 ms by
its own estimate, longer on CPUs with a slow ``pause``), while the engine's steps start a new
region every few microseconds. So every worker is always busy. On a quiet machine that costs
nothing; with one other CPU-bound process on a 2-core machine, three busy threads share two
cores, the scheduler hands whole time slices to spinning workers while the thread holding the
work waits, and the engine ran at 32% of its quiet speed (8,103 -> 2,587 model-steps/s at width
128), where losing one of two cores should leave 50%; two other 2-thread torch processes made
it 15x slower.

The fix: a short spin (``GOMP_SPINCOUNT``; libgomp itself drops to 100 when it knows that its
own threads outnumber the cores, but it cannot see other processes) and Intel OpenMP's
equivalent (``KMP_BLOCKTIME``, milliseconds, default 200, for builds that use it), set in the
environment of a job before torch is imported: a worker that finds no work soon sleeps and
gives its core back. ``benchmarks/bench_threads.py`` measures the choice against libgomp's
default and ``OMP_WAIT_POLICY=PASSIVE`` (no spin at all), quiet and beside a competing
process; ``benchmarks/README.md`` has the numbers.

How many threads a job uses is the plan's ``threads`` (Snakemake's ``threads:``, and Slurm's
CPUs per task), applied by ``use_threads`` where the job starts (``pipeline.train_group``), to
torch and to NumPy's BLAS alike: a job never starts more threads than the cores it was given.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

# Environment for the OpenMP runtimes; read once, when the runtime loads (at ``import torch``).
# A value already in the environment (the user's own) is kept.
OPENMP_WAIT = {
    "GOMP_SPINCOUNT": "1000",  # GNU libgomp (PyPI's torch): spin rounds before sleeping (~10 us)
    "KMP_BLOCKTIME": "1",  # Intel and LLVM OpenMP (conda, macOS builds): milliseconds before sleeping
}


def configure_openmp(environ: dict | None = None) -> bool:
    """Put OPENMP_WAIT into ``environ`` (default ``os.environ``) where it is not set.

    Call it where a process starts, before ``import torch``: the runtime reads these variables
    when it loads. Child processes inherit them either way. Returns whether torch was not yet
    imported, i.e. whether the setting takes effect in this process.
    """
    environ = os.environ if environ is None else environ
    for key, value in OPENMP_WAIT.items():
        environ.setdefault(key, value)
    return "torch" not in sys.modules


@contextlib.contextmanager
def use_threads(n: int) -> Iterator[None]:
    """Run torch's CPU kernels on ``n`` threads, and NumPy's BLAS (closed-form studies) on at most
    ``n``, inside the block. Without the BLAS limit, OpenBLAS starts a thread per core whatever
    the job's share: on a busy 2-core machine that made SVDs ten times slower."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)
