"""Training images/s of Paper A's cpu grid, per model, along the previous path and the chapters' path, side by side
in one run, with their ratio:

- one seed at a time: each run alone, on every core's thread (the path before seed packing);
- the chapters' path: five seeds of a configuration packed into one network (DenseNet-40 one at a time), in one
  process per core with one thread each, all processes training at once (as experiments.train_all runs a grid).

    .venv/bin/python scripts/bench_paths.py [--models resnet18 ...] [--width 0.125] [--batches 12]
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import time

import torch

from badminima.core import convnets
from badminima.core.models import Single
from badminima.core.packed import Packed
from badminima.core.train import TrainConfig, train
from badminima.paper_a.runs import PACKED_MODELS

SEEDS = (0, 1, 2, 3, 4)
CPU = torch.device("cpu")


def seconds(model_name: str, width: float, batches: int, packed: bool) -> float:
    """Time to train the five seeds for one epoch of `batches` batches of 32 Fashion-MNIST-sized images."""
    n = 32 * batches
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(1, n, 1, 28, 28, generator=gen), torch.randint(0, 10, (1, n), generator=gen)
    cfg = TrainConfig(lr=0.01, batch_size=32, max_epochs=1, until_fit=False)
    nets = [convnets.build(model_name, 10, 1, width, seed=s) for s in SEEDS]
    models = [(Packed(nets), list(SEEDS))] if packed else [(Single(n), [s]) for n, s in zip(nets, SEEDS)]
    one = (x[:, :1], y[:, :1])   # a one-image fit set: the epoch's accuracy check costs nothing
    train(models[0][0], (x[:, :64], y[:, :64]), cfg, models[0][1], fit_set=one, device=CPU)   # warm-up
    start = time.perf_counter()
    for model, seeds in models:
        train(model, (x, y), cfg, seeds, fit_set=one, device=CPU)
    return time.perf_counter() - start


def _worker(args: tuple) -> float:
    torch.set_num_threads(1)
    barrier, model_name, width, batches, packed = args
    barrier.wait()
    return seconds(model_name, width, batches, packed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(convnets.NAMES))
    parser.add_argument("--width", type=float, default=0.125, help="the cpu scale's width")
    parser.add_argument("--batches", type=int, default=12)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    images = len(SEEDS) * 32 * args.batches
    print(f"{cores} cores; five seeds, batch 32, 1x28x28, width {args.width}, {args.batches} batches per seed")
    print(f"{'model':<11} {'one at a time img/s':>20} {'chapters path img/s':>20} {'ratio':>6}")
    ctx = multiprocessing.get_context("spawn")
    for name in args.models:
        before = images / seconds(name, args.width, args.batches, packed=False)
        with ctx.Manager() as manager, ctx.Pool(cores) as pool:
            barrier = manager.Barrier(cores)
            times = pool.map(_worker, [(barrier, name, args.width, args.batches, name in PACKED_MODELS)] * cores)
        after = cores * images / max(times)
        print(f"{name:<11} {before:>20.0f} {after:>20.0f} {after / before:>5.2f}x", flush=True)


if __name__ == "__main__":
    main()
