"""Which OpenMP wait setting keeps the engine fast beside other busy processes?

The engine's speed at width 128 (64 networks, depth 3, batch 64, as in ``bench_engine.py``)
under each setting below, quiet and beside ``--competitors`` CPU-bound processes (a Python
busy loop each) that this script starts. An OpenMP runtime reads its settings when it loads,
so each measurement is a fresh Python process with its own environment. The settings and
loads are measured in rounds, in a new order each round, and the median of each is reported,
so a change in the machine's own load falls on all of them alike.

Columns: model-steps per second, quiet and loaded, and the share of its quiet speed that the
engine kept; ``vs default`` compares each setting's quiet speed with libgomp's default.

    python benchmarks/bench_threads.py                  # a few minutes on 2 cores
    python benchmarks/bench_threads.py --rounds 1 --epochs 2   # a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> the OpenMP runtime's environment. Each names every variable of mathdl.threads.OPENMP_WAIT
# (the default's values spelled out: libgomp's documented defaults), so that configure_openmp,
# which bench_engine calls, changes none of them.
SETTINGS = {
    "libgomp's default (spin 300,000)": {"GOMP_SPINCOUNT": "300000", "KMP_BLOCKTIME": "200"},
    "mathdl.threads.OPENMP_WAIT": {},  # filled from the package
    "OMP_WAIT_POLICY=PASSIVE (no spin)": {"GOMP_SPINCOUNT": "0", "KMP_BLOCKTIME": "0", "OMP_WAIT_POLICY": "PASSIVE"},
    "GOMP_SPINCOUNT=1000": {"GOMP_SPINCOUNT": "1000", "KMP_BLOCKTIME": "1"},
    "GOMP_SPINCOUNT=100000": {"GOMP_SPINCOUNT": "100000", "KMP_BLOCKTIME": "1"},
}
OPENMP_VARIABLES = ("GOMP_SPINCOUNT", "KMP_BLOCKTIME", "OMP_WAIT_POLICY")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="measurements of each (setting, load); medians reported")
    p.add_argument("--threads", type=int, nargs="+", default=[0], help="torch threads (0: one per core)")
    p.add_argument("--competitors", type=int, default=1, help="CPU-bound processes for the loaded column")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--child", help=argparse.SUPPRESS)  # internal: one measurement, JSON in, rate out
    return p.parse_args(argv)


def child(spec: dict) -> None:
    """One measurement, in this fresh process: the engine's model-steps/s (best of two)."""
    sys.path.insert(0, str(HERE))
    import bench_engine  # noqa: E402  (imports torch with this process's environment)
    import torch

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    args = bench_engine.parse_args(["--epochs", str(spec["epochs"]), "--device", "cpu"])
    dev = torch.device("cpu")
    data = bench_engine.make_dataset(bench_engine.engine.make_group(task=bench_engine.task_config(args)).task)
    bench_engine.engine_warm_up(args, 64, 128, data, dev)
    with bench_engine.competing_processes(spec["competitors"]):
        seconds = min(bench_engine.engine_seconds(args, 64, 128, data, dev) for _ in range(2))
    steps = 64 * args.epochs * -(-args.n_train // args.batch)
    print(json.dumps({"rate": steps / seconds, "threads": torch.get_num_threads()}))


def run_child(setting: dict, threads: int, competitors: int, epochs: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in OPENMP_VARIABLES} | setting
    spec = json.dumps({"threads": threads, "competitors": competitors, "epochs": epochs})
    out = subprocess.run([sys.executable, __file__, "--child", spec], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return
    from mathdl.threads import OPENMP_WAIT

    settings = dict(SETTINGS)
    settings["mathdl.threads.OPENMP_WAIT"] = dict(OPENMP_WAIT)
    cases = [(name, t, load) for name in settings for t in args.threads for load in ("quiet", "loaded")]
    rates: dict[tuple, list[float]] = {c: [] for c in cases}
    used_threads = {}
    started = time.perf_counter()
    for r in range(args.rounds):
        order = random.Random(r).sample(cases, len(cases))
        for name, t, load in order:
            out = run_child(settings[name], t, args.competitors if load == "loaded" else 0, args.epochs)
            rates[(name, t, load)].append(out["rate"])
            used_threads[t] = out["threads"]
    medians = {c: statistics.median(v) for c, v in rates.items()}
    print(f"engine at width 128, 64 networks, {args.epochs} epochs; medians of {args.rounds} rounds; "
          f"loaded: {args.competitors} CPU-bound process(es); {os.cpu_count()} cores; "
          f"{time.perf_counter() - started:.0f} s")
    print("| setting | threads | quiet steps/s | loaded steps/s | kept under load | quiet vs default |")
    print("|---|---:|---:|---:|---:|---:|")
    default = next(iter(settings))
    for name in settings:
        for t in args.threads:
            quiet, loaded = medians[(name, t, "quiet")], medians[(name, t, "loaded")]
            base = medians[(default, t, "quiet")]
            print(f"| {name} | {used_threads[t]} | {quiet:,.0f} | {loaded:,.0f} | {loaded / quiet:.0%} | "
                  f"{quiet / base:.2f} |", flush=True)


if __name__ == "__main__":
    main()
