"""How much faster is the batched engine than a per-model training loop?

Trains the same sweep of small networks two ways, in one process, on one device:

1. engine: ``mathdl.engine.train`` on one group of M runs (seeds 0..M-1);
2. loop: each network on its own, written the way most course projects write it:
   ``nn.Sequential``, a shuffling ``DataLoader``, ``torch.optim.SGD``, ``loss.item()`` every batch.

Both train the same networks (depth hidden ReLU layers of the given width, PyTorch's default
init, cross-entropy, SGD with lr 0.05, batch 64) on the same teacher task for the same epochs,
and both evaluate train and test loss and error on the same log-spaced epochs (the engine also
records its parameter norms and distances). The loop is timed on ``--loop-models`` networks (its time grows linearly in the number of
networks, so its rate in model-steps per second does not depend on M).

Robust to a load that changes mid-run: engine and loop are timed in alternation, ``--repeats``
times each (the order flipped every repetition), and the medians are reported, so a job that
starts or stops on the machine moves both sides alike instead of one. Beside the quiet row, a
row is measured in the same run under ``--competitors`` CPU-bound processes that the benchmark
starts itself (a Python busy loop each), interleaved with the quiet repetitions; its last
column is the share of the quiet engine speed that the engine kept.

Achieved GFLOP/s counts only the training matmuls: 2 B sum_l fan_in fan_out for the forward
pass and twice that for the backward pass (less the input gradient of the first layer), per
model-step of batch B. The peak is the best of a few large float32 matmuls on the same device.

The last lines are ``speedup_vs_loop=<ratio>`` (quiet) and ``engine_kept_under_load=<share>``
for the first (models, width) pair: by default 64 networks of width 128, depth 3, batch 64.

    python benchmarks/bench_engine.py                 # CPU, a few minutes
    python benchmarks/bench_engine.py --quick         # a smoke test, seconds
    python benchmarks/bench_engine.py --device cuda --models 2048 --width 128 --competitors 0
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import subprocess
import sys
import time

from mathdl.threads import configure_openmp

configure_openmp()  # before torch loads: idle OpenMP workers sleep soon, as in a training job (mathdl.threads)

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from mathdl import engine  # noqa: E402
from mathdl.tasks import make_dataset  # noqa: E402

LR = 0.05


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, nargs="+", default=[64], help="networks trained together (M)")
    p.add_argument(
        "--width", type=int, nargs="+", default=[128, 32, 256], help="hidden width(s); the first is the headline"
    )
    p.add_argument("--depth", type=int, default=3, help="hidden layers")
    p.add_argument("--batch", type=int, default=64, help="minibatch size")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--n-train", type=int, default=512, help="training points (n_train / batch steps per epoch)")
    p.add_argument("--eval-points", type=int, default=5, help="log-spaced epochs with metrics, both ways")
    p.add_argument("--loop-models", type=int, default=6, help="networks the per-model loop is timed on")
    p.add_argument("--repeats", type=int, default=3, help="timings per side and load, interleaved; the median is kept")
    p.add_argument(
        "--competitors", type=int, default=1, help="CPU-bound processes started for the loaded row (0: no such row)"
    )
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default, one per core)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--peak-n", type=int, default=0, help="size of the peak's square matmuls (0: 4096 CPU, 8192 GPU)")
    p.add_argument("--quick", action="store_true", help="few epochs and networks: a smoke test")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.loop_models, args.repeats, args.width = 4, 2, 1, args.width[:1]
    return args


def task_config(args) -> dict:
    return {
        "kind": "classification",
        "input_dim": 10,
        "n_classes": 2,
        "teacher_width": 16,
        "n_train": args.n_train,
        "n_val": 0,
        "n_test": 512,
        "label_noise": 0.1,
    }


def train_config(args, epochs: int) -> dict:
    return {
        "loss": "cross_entropy",
        "optimizer": "sgd",
        "lr": LR,
        "batch_size": args.batch,
        "epochs": epochs,
        "eval_points": args.eval_points,
    }


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def engine_seconds(args, models: int, width: int, data, dev) -> float:
    """Seconds for the engine to train ``models`` networks, once."""
    group = engine.make_group(
        range(models),
        task=task_config(args),
        model={"depth": args.depth, "width": width},
        train=train_config(args, args.epochs),
    )
    sync(dev)
    start = time.perf_counter()
    engine.train(group, data, device=str(dev.type), progress=False)
    sync(dev)
    return time.perf_counter() - start


def engine_warm_up(args, models: int, width: int, data, dev) -> None:
    warm = engine.make_group(
        range(models), task=task_config(args), model={"depth": args.depth, "width": width}, train=train_config(args, 1)
    )
    engine.train(warm, data, device=str(dev.type), progress=False)


def loop_one_model(seed: int, args, width: int, data, dev, schedule: set[int]) -> list:
    """One network, trained and evaluated the way a course project does it."""
    torch.manual_seed(seed)
    layers, fan_in = [], data.x_train.shape[1]
    for _ in range(args.depth):
        layers += [nn.Linear(fan_in, width), nn.ReLU()]
        fan_in = width
    layers.append(nn.Linear(fan_in, data.n_outputs))
    model = nn.Sequential(*layers).to(dev)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    x_train, y_train = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    train_loader = DataLoader(TensorDataset(x_train, y_train), batch_size=args.batch, shuffle=True)
    splits = {"train": (x_train, y_train), "test": (torch.as_tensor(data.x_test), torch.as_tensor(data.y_test))}
    history = []

    def evaluate(epoch):
        model.eval()
        with torch.no_grad():
            for split, (x, y) in splits.items():
                x, y = x.to(dev), y.to(dev)
                out = model(x)
                history.append((epoch, split, criterion(out, y).item(), (out.argmax(1) != y).float().mean().item()))
        model.train()

    evaluate(0)
    for epoch in range(1, args.epochs + 1):
        running_loss = 0.0
        for xb, yb in train_loader:
            xb, yb = xb.to(dev), yb.to(dev)
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        history.append((epoch, "train_running", running_loss / len(train_loader), None))
        if epoch in schedule:
            evaluate(epoch)
    return history


def loop_seconds(args, width: int, data, dev) -> float:
    """Seconds for the per-model loop to train args.loop_models networks, once."""
    schedule = set(engine.eval_epochs(args.epochs, args.eval_points))
    sync(dev)
    start = time.perf_counter()
    for seed in range(args.loop_models):
        loop_one_model(seed, args, width, data, dev, schedule)
    sync(dev)
    return time.perf_counter() - start


def loop_warm_up(args, width: int, data, dev) -> None:
    short = argparse.Namespace(**{**vars(args), "epochs": 1})
    loop_one_model(0, short, width, data, dev, {1})


# A CPU-bound process that ends by itself when its parent does (a killed benchmark leaves no spinner).
BUSY_LOOP = """
import os
parent = os.getppid()
while os.getppid() == parent:
    for _ in range(1_000_000):
        pass
"""


@contextlib.contextmanager
def competing_processes(n: int):
    """``n`` CPU-bound processes (a Python busy loop each) running for the duration of the block."""
    procs = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(n)]
    try:
        if procs:
            time.sleep(0.3)  # let them start and take their cores
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def measure(args, models: int, width: int, data, dev) -> dict[str, dict[str, float]]:
    """Median seconds of engine and loop, quiet and (with competitors) loaded: {load: {side: s}}.

    Each repetition times every (load, side) once; the order of the loads and of the sides is
    flipped from one repetition to the next (ABBA), so a drift in the machine's own load falls
    on all four alike.
    """
    loads = {"quiet": 0} | ({"loaded": args.competitors} if args.competitors else {})
    sides = {
        "engine": lambda: engine_seconds(args, models, width, data, dev),
        "loop": lambda: loop_seconds(args, width, data, dev),
    }
    engine_warm_up(args, models, width, data, dev)
    loop_warm_up(args, width, data, dev)
    times: dict[str, dict[str, list[float]]] = {load: {side: [] for side in sides} for load in loads}
    for rep in range(args.repeats):
        flip = -1 if rep % 2 else 1
        for load in list(loads)[::flip]:
            with competing_processes(loads[load]):
                for side in list(sides)[::flip]:
                    times[load][side].append(sides[side]())
    return {load: {side: statistics.median(ts) for side, ts in by_side.items()} for load, by_side in times.items()}


def train_flops_per_model_step(args, width: int, data) -> float:
    sizes = [data.x_train.shape[1]] + [width] * args.depth + [data.n_outputs]
    layers = list(zip(sizes[:-1], sizes[1:]))
    weights = sum(i * o for i, o in layers)
    return 2 * args.batch * (3 * weights - layers[0][0] * layers[0][1])


def matmul_peak_gflops(dev: torch.device, n: int = 0) -> float:
    n = n or (4096 if dev.type == "cpu" else 8192)
    a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
    best = float("inf")
    for _ in range(4):
        sync(dev)
        start = time.perf_counter()
        a @ b
        sync(dev)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


LOAD_NAMES = {"quiet": "quiet", "loaded": "{n} competing"}


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = engine.resolve_device(args.device)
    data = make_dataset(engine.make_group(task=task_config(args)).task)
    steps_per_epoch = -(-args.n_train // args.batch)
    peak = matmul_peak_gflops(dev, args.peak_n)
    print(
        f"device: {device_name(dev)}; torch {torch.__version__}; depth {args.depth}, batch {args.batch}, "
        f"{args.epochs} epochs of {steps_per_epoch} steps, loop timed on {args.loop_models} networks; "
        f"medians of {args.repeats} interleaved timings"
    )
    header = (
        "load",
        "models",
        "width",
        "engine steps/s",
        "loop steps/s",
        "ratio",
        "engine GFLOP/s",
        "loop GFLOP/s",
        "matmul peak GFLOP/s",
        "engine kept",
    )
    print("| " + " | ".join(header) + " |")
    print("|---|" + "|".join("---:" for _ in header[1:]) + "|")
    headline = None
    for models in args.models:
        for width in args.width:
            flops = train_flops_per_model_step(args, width, data)
            seconds = measure(args, models, width, data, dev)
            rates = {
                load: (models * args.epochs * steps_per_epoch / s["engine"],
                       args.loop_models * args.epochs * steps_per_epoch / s["loop"])
                for load, s in seconds.items()
            }
            for load, (engine_rate, loop_rate) in rates.items():
                kept = engine_rate / rates["quiet"][0]
                row = (
                    LOAD_NAMES[load].format(n=args.competitors),
                    models,
                    width,
                    f"{engine_rate:,.0f}",
                    f"{loop_rate:,.0f}",
                    f"{engine_rate / loop_rate:.1f}x",
                    f"{engine_rate * flops / 1e9:.1f}",
                    f"{loop_rate * flops / 1e9:.1f}",
                    f"{peak:.0f}",
                    "" if load == "quiet" else f"{kept:.0%}",
                )
                print("| " + " | ".join(map(str, row)) + " |", flush=True)
            if headline is None:
                engine_quiet, loop_quiet = rates["quiet"]
                kept = rates["loaded"][0] / engine_quiet if "loaded" in rates else None
                headline = (engine_quiet / loop_quiet, kept)
    print(f"speedup_vs_loop={headline[0]:.1f}")
    if headline[1] is not None:
        print(f"engine_kept_under_load={headline[1]:.2f}")


if __name__ == "__main__":
    main()
