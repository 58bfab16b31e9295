"""Convolutional networks: the module engine against a per-model training loop, and the
projected time of the paper-scale CIFAR-10 CNN sweep.

Each row trains the same networks (``mathdl.convnets``: Nakkiran et al.'s CNN of width k, or
the pre-activation ResNet-18) on the same synthetic images (random pixels and labels: only
speed is measured) for the same epochs, with SGD (lr 0.01) and cross-entropy, evaluating train
and test loss and error at the first and last epoch, three ways in one process:

1. engine: ``mathdl.module_engine.train`` on one group of M runs (seeds 0..M-1), on the path
   its rule chooses (``choose_batching``), and, with ``--paths``, on each path forced;
2. loop: each network on its own, as a course project writes it: the module, a shuffling
   ``DataLoader`` over CPU tensors, ``torch.optim.SGD``, ``loss.item()`` every batch;
3. tuned loop (for the single ResNet-18): data kept on the device, no per-step sync, and on
   CUDA channels-last with bfloat16 autocast (``--amp``; the engine's row beside it then trains
   with ``train.mixed_precision``, and on CUDA the engine's loop path feeds channels-last images
   too, so the two compare like with like).

The loops are timed on ``--loop-models`` networks (their time is linear in the number of
networks). Rates are model-steps per second (one network taking one minibatch step) and
model-images per second (that times the batch). After a one-epoch warm-up of each, the engine
and the loops of a row are timed in turn ``--repeats`` times, forwards then backwards (ABBA), and
each side's median is kept (the forced paths of ``--paths``: the fastest of ``--repeats``).

Projection: seconds per model-image s(k) of the engine are measured at ``--proj-widths`` on
CIFAR-sized images (3x32x32), in groups of ``--proj-models`` runs (default 3: the three noise
levels of one width sharing a group, which needs label noise drawn per run; see the report) and
one run at a time, fitted as s(k) = a + b * flops(k) (flops: forward and backward of one image,
counted by ``convnets.forward_costs``), and summed over the sweep of Nakkiran et al. (2020,
Fig. 4 and Appendix B): widths k = 1..64, 3 label-noise levels (0, 10 %, 20 %), 50,000 training
images, ``--sweep-epochs`` epochs (default 4,000, their Adam setting; their SGD setting is 500K
steps of batch 128, i.e. 1,280 epochs), one seed per point, float32, evaluation not counted.
It also prints the sweep's total training FLOPs and the rate that one day would need.

    python benchmarks/bench_conv.py                      # CPU, tiny sizes, about two minutes
    python benchmarks/bench_conv.py --quick              # smoke test
    python benchmarks/bench_conv.py --threads 1 --paths  # on a busy machine; both engine paths forced too
    python benchmarks/bench_conv.py --device cuda        # GPU sizes: 64 CNNs of k = 4, ResNet-18 at k = 64
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mathdl import convnets, engine, module_engine
from mathdl.tasks import Dataset

LR = 0.01
N_CLASSES = 10
SWEEP_WIDTHS = range(1, 65)
SWEEP_NOISE_LEVELS = 3
SWEEP_IMAGES = 50_000


@dataclass(frozen=True)
class Row:
    arch: str
    width: int
    shape: tuple[int, int, int]
    models: int
    loop_models: int
    tuned: bool = False  # also time the tuned single-model loop


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    p.add_argument("--n-train", type=int, default=None, help="training images (default: 256 CPU, 4096 GPU)")
    p.add_argument("--batch", type=int, default=None, help="minibatch (default: 64 CPU, 128 GPU)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs timed (default: 8 CPU, 2 GPU)")
    p.add_argument("--repeats", type=int, default=4, help="timings per side, interleaved; the median is kept")
    p.add_argument("--paths", action="store_true", help="also time the engine with vmap and loop forced")
    p.add_argument("--amp", action="store_true",
                   help="on CUDA, the tuned loop and the engine's row beside it in bfloat16 autocast (train.mixed_precision)")
    p.add_argument("--proj-widths", type=int, nargs="*", default=None, help="widths measured for the projection")
    p.add_argument("--proj-models", type=int, default=None, help="runs per group in the projection's measurements")
    p.add_argument("--sweep-epochs", type=int, default=4000)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--quick", action="store_true", help="a smoke test: one epoch, one repeat, small rows")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    gpu = engine.resolve_device(args.device).type == "cuda"
    args.n_train = args.n_train or (4096 if gpu else 256)
    args.batch = args.batch or (128 if gpu else 64)
    args.epochs = args.epochs or (2 if gpu else 8)  # on a CPU, 2 epochs left the fixed costs a third of the time
    if args.proj_widths is None:
        args.proj_widths = [4, 16, 64] if gpu else [2, 8]
    args.proj_models = args.proj_models or 3
    if args.quick:
        args.epochs, args.repeats, args.n_train, args.proj_widths = 1, 1, min(args.n_train, 128), args.proj_widths[:1]
    return args


def rows(args, gpu: bool) -> list[Row]:
    if gpu:
        return [
            Row("cnn", 4, (3, 32, 32), 64, 4),  # the target: >= 20x the loop
            Row("cnn", 16, (3, 32, 32), 64, 4),
            Row("cnn", 4, (1, 28, 28), 64, 4),
            Row("resnet18", 64, (3, 32, 32), 1, 1, tuned=True),  # no slower than a tuned loop
        ]
    if args.quick:
        return [Row("cnn", 4, (1, 8, 8), 4, 1), Row("resnet18", 4, (3, 32, 32), 1, 1, tuned=True)]
    return [  # on a CPU the loops train all M networks (a loop of 2 scaled by M/2 read up to 15% faster)
        Row("cnn", 4, (1, 8, 8), 8, 8),
        Row("cnn", 16, (1, 8, 8), 8, 8),
        Row("cnn", 4, (3, 32, 32), 8, 8),
        Row("resnet18", 8, (3, 32, 32), 1, 1, tuned=True),
    ]


# ----------------------------------------------------------------------------- data and timing


def synthetic_images(shape, n_train: int, n_test: int, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = {s: rng.random((n, *shape), dtype=np.float32) for s, n in (("train", n_train), ("val", 0), ("test", n_test))}
    y = {s: rng.integers(0, N_CLASSES, len(v)).astype(np.int64) for s, v in x.items()}
    return Dataset(
        "classification", N_CLASSES, **{f"x_{s}": v for s, v in x.items()}, **{f"y_{s}": v for s, v in y.items()}
    )


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def seconds(fn, dev) -> float:
    sync(dev)
    start = time.perf_counter()
    fn()
    sync(dev)
    return time.perf_counter() - start


def best_time(fn, dev, repeats: int) -> float:
    return min(seconds(fn, dev) for _ in range(repeats))


def interleaved(fns, dev, repeats: int) -> list[float]:
    """The median time of each of ``fns``, timed in turn, forwards then backwards (ABBA...), so
    that a drift of the machine's speed (another process, the clock) falls on all of them alike."""
    times = [[] for _ in fns]
    for r in range(repeats):
        order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            times[i].append(seconds(fns[i], dev))
    return [float(np.median(t)) for t in times]


def make_group(models: int, args, epochs: int, mixed_precision: bool = False):
    train = {"optimizer": "sgd", "lr": LR, "batch_size": args.batch, "epochs": epochs, "eval_points": 2,
             "mixed_precision": mixed_precision}
    return engine.make_group(range(models), task={"n_classes": N_CLASSES}, train=train)


def engine_runner(row: Row, data, dev, args, batching: str = "auto"):
    """The engine's training of the row's M runs for --epochs, after a warm-up; and its path."""
    net = convnets.Network(row.arch, row.width)

    # The row with a tuned loop trains in mixed precision with --amp, as the tuned loop does on CUDA.
    mixed = row.tuned and args.amp and dev.type == "cuda"

    def run(epochs):
        return module_engine.train(
            make_group(row.models, args, epochs, mixed), data, device=dev.type, network=net, batching=batching,
            progress=False,
        )

    path = run(1).batching  # warm-up
    return (lambda: run(args.epochs)), path


def time_engine(row: Row, data, dev, args, batching: str = "auto") -> tuple[float, str]:
    fn, path = engine_runner(row, data, dev, args, batching)
    return best_time(fn, dev, args.repeats), path


def loop_one_model(seed: int, row: Row, data, dev, args) -> None:
    """One network, trained and evaluated the way a course project does it."""
    torch.manual_seed(seed)
    model = convnets.build(convnets.Network(row.arch, row.width), row.shape, N_CLASSES).to(dev)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    loader = DataLoader(TensorDataset(x, y), batch_size=args.batch, shuffle=True)
    splits = {"train": (x, y), "test": (torch.as_tensor(data.x_test), torch.as_tensor(data.y_test))}

    def evaluate():
        model.eval()
        with torch.no_grad():
            for xs, ys in splits.values():
                out = model(xs.to(dev))
                criterion(out, ys.to(dev)).item(), (out.argmax(1) != ys.to(dev)).float().mean().item()
        model.train()

    evaluate()
    for _ in range(args.epochs):
        for xb, yb in loader:
            xb, yb = xb.to(dev), yb.to(dev)
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            loss.item()
    evaluate()


def tuned_one_model(seed: int, row: Row, data, dev, args) -> None:
    """One network, written for speed: data on the device, no per-step sync, channels-last and
    bfloat16 autocast on CUDA (with --amp)."""
    torch.manual_seed(seed)
    cuda = dev.type == "cuda"
    fmt = torch.channels_last if cuda else torch.contiguous_format
    model = convnets.build(convnets.Network(row.arch, row.width), row.shape, N_CLASSES).to(dev, memory_format=fmt)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    x = torch.as_tensor(data.x_train).to(dev).contiguous(memory_format=fmt)
    y = torch.as_tensor(data.y_train).to(dev)
    x_test, y_test = torch.as_tensor(data.x_test).to(dev).contiguous(memory_format=fmt), torch.as_tensor(
        data.y_test
    ).to(dev)
    amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and args.amp)

    def evaluate():
        model.eval()
        with torch.no_grad(), amp:
            outs = [(model(a), b) for a, b in ((x, y), (x_test, y_test))]
            results = [(nn.functional.cross_entropy(o, b), (o.argmax(1) != b).float().mean()) for o, b in outs]
        model.train()
        return results

    evaluate()
    n = len(x)
    for _ in range(args.epochs):
        order = torch.randperm(n, device=dev)
        for start in range(0, n, args.batch):
            idx = order[start : start + args.batch]
            optimizer.zero_grad(set_to_none=True)
            with amp:
                loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
    [t.item() for pair in evaluate() for t in pair]


def loop_runner(fn, row: Row, data, dev, args):
    """``fn`` (a loop) over the row's --loop-models networks for --epochs, after a warm-up."""
    short = argparse.Namespace(**{**vars(args), "epochs": 1})
    fn(0, row, data, dev, short)  # warm-up
    return lambda: [fn(s, row, data, dev, args) for s in range(row.loop_models)]


# ----------------------------------------------------------------------------- projection


def cnn_train_flops(k: int) -> int:
    net = convnets.build(convnets.Network("cnn", k), (3, 32, 32), N_CLASSES)
    return convnets.forward_costs(net, (3, 32, 32)).train_flops


def project_sweep(args, dev) -> tuple[list[tuple[int, float]], float, float]:
    """Measured seconds per model-image at each width, and the fitted sweep time (hours) of the
    engine and of one run at a time (M = 1)."""
    data = synthetic_images((3, 32, 32), args.n_train, 64)
    measured, single = [], []
    for k in args.proj_widths:
        row = Row("cnn", k, (3, 32, 32), args.proj_models, 1)
        seconds, _ = time_engine(row, data, dev, args)
        steps = args.epochs * -(-args.n_train // args.batch)
        measured.append((k, seconds / (row.models * steps * args.batch)))
        alone, _ = time_engine(Row("cnn", k, (3, 32, 32), 1, 1), data, dev, args)
        single.append((k, alone / (steps * args.batch)))
    return measured, fit_hours(measured, args), fit_hours(single, args)


def fit_hours(points: list[tuple[int, float]], args) -> float:
    """Sum over the sweep of images * epochs * s(k), with s(k) = a + b flops(k) fitted to points."""
    flops = {k: cnn_train_flops(k) for k in sorted({*SWEEP_WIDTHS, *(k for k, _ in points)})}
    f = np.array([flops[k] for k, _ in points], dtype=float)
    s = np.array([v for _, v in points])
    if len(points) >= 2:
        a, b = np.linalg.lstsq(np.stack([np.ones_like(f), f], 1), s, rcond=None)[0]
        a, b = max(a, 0.0), max(b, 0.0)
    else:  # one point: all of it per flop
        a, b = 0.0, s[0] / f[0]
    per_image = sum(a + b * flops[k] for k in SWEEP_WIDTHS)
    return sweep_images(args) * per_image / 3600


def sweep_images(args) -> int:
    """Images each width's runs take a step on, over the whole sweep (all noise levels)."""
    return SWEEP_NOISE_LEVELS * SWEEP_IMAGES * args.sweep_epochs


# ----------------------------------------------------------------------------- main


def device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def main(argv=None) -> None:
    args = parse_args(argv)
    dev = engine.resolve_device(args.device)
    print(
        f"device: {device_name(dev)}; torch {torch.__version__}; float32; SGD lr {LR}, batch {args.batch}, "
        f"{args.n_train} training images, {args.epochs} epochs; rates in model-steps/s (model-images/s)"
    )
    header = f"{'arch':>8} {'k':>3} {'image':>8} {'M':>3} | {'engine (path)':>24} | {'loop':>18} | {'ratio':>6}"
    if args.paths:
        header += f" | {'vmap forced':>18} | {'loop forced':>18}"
    print(header)
    steps = args.epochs * -(-args.n_train // args.batch)
    first_ratio = None
    for row in rows(args, dev.type == "cuda"):
        data = synthetic_images(row.shape, args.n_train, 256)
        # the engine, the course-project loop and (for a tuned row) the tuned loop, timed in turn
        run_engine, path = engine_runner(row, data, dev, args)
        runners = [run_engine, loop_runner(loop_one_model, row, data, dev, args)]
        if row.tuned:
            runners.append(loop_runner(tuned_one_model, row, data, dev, args))
        times = interleaved(runners, dev, args.repeats)
        engine_rate = row.models * steps / times[0]
        loop_rate = row.loop_models * steps / times[1]
        ratio = engine_rate / loop_rate
        first_ratio = first_ratio or ratio
        line = (
            f"{row.arch:>8} {row.width:>3} {'x'.join(map(str, row.shape)):>8} {row.models:>3} | "
            f"{engine_rate:9.1f} ({engine_rate * args.batch:8.0f}) {path:>4} | "
            f"{loop_rate:8.1f} ({loop_rate * args.batch:7.0f}) | {ratio:5.2f}x"
        )
        if args.paths:
            for forced in ("vmap", "loop"):
                s, _ = time_engine(row, data, dev, args, batching=forced)
                rate = row.models * steps / s
                line += f" | {rate:8.1f} ({rate * args.batch:7.0f})"
        print(line, flush=True)
        if row.tuned:
            tuned = row.loop_models * steps / times[2]
            print(
                f"{'':>26}tuned single-model loop: {tuned:.1f} model-steps/s ({tuned * args.batch:.0f} images/s); "
                f"engine / tuned = {engine_rate / tuned:.2f}x"
                + (" (both in bfloat16 autocast)" if args.amp and dev.type == "cuda" else ""),
                flush=True,
            )

    measured, hours, hours_alone = project_sweep(args, dev)
    print(
        f"\nprojection: CIFAR-10 CNN sweep, k = 1..64, {SWEEP_NOISE_LEVELS} noise levels, {SWEEP_IMAGES:,} images, "
        f"{args.sweep_epochs:,} epochs, one run per point, evaluation not counted"
    )
    for k, s in measured:
        print(f"  measured k = {k:>2}: {1 / s:,.0f} model-images/s in groups of {args.proj_models}")
    print(
        f"  projected on this device ({device_name(dev)}): {hours:,.1f} h in groups of {args.proj_models} runs; "
        f"{hours_alone:,.1f} h one run at a time"
    )
    total = sweep_images(args) * sum(cnn_train_flops(k) for k in SWEEP_WIDTHS)
    print(f"  the sweep trains {total:.2e} FLOPs: {total / 86400 / 1e12:,.0f} TFLOP/s sustained for one day")
    print(f"speedup_vs_loop={first_ratio:.2f}")
    print(f"projected_sweep_hours={hours:.1f}")


if __name__ == "__main__":
    main()
