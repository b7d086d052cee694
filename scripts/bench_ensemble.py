"""Benchmark (not a test): a batched ensemble of one-hidden-layer nets against the same members trained one by one,
both through the one training loop, for the same number of full-batch gradient-descent steps on n = 100 points.

    .venv/bin/python scripts/bench_ensemble.py [--steps 100] [--widths 100 500 2000] [--members 32 128]

Prints, per width p and ensemble size, the wall time of the batched run, of the one-by-one loop, and their ratio."""
from __future__ import annotations

import argparse
import time

import torch

from badminima.data.toy import draw
from badminima.models import MLP
from badminima.train import TrainConfig, train
from badminima.widths import cpu_settings

CPU = torch.device("cpu")


def _data(members: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    draws = [draw("gaussians", n, 2, seed)[0] for seed in range(members)]
    return torch.stack([x for x, _ in draws]), torch.stack([y for _, y in draws])


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(width: int, members: int, steps: int, n: int = 100) -> tuple[float, float]:
    """Seconds for `steps` steps of all members batched, and of the members one after another."""
    x, y = _data(members, n)
    seeds = list(range(members))
    cfg = TrainConfig(lr=0.01, batch_size=None, max_epochs=steps, until_fit=False)
    batched = _timed(lambda: train(MLP([2, width, 1], seeds), (x, y), cfg, seeds, device=CPU))
    one_by_one = _timed(lambda: [train(MLP([2, width, 1], [s]), (x[m:m + 1], y[m:m + 1]), cfg, [s], device=CPU)
                                 for m, s in enumerate(seeds)])
    return batched, one_by_one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--widths", type=int, nargs="+", default=[100, 500, 2000])
    parser.add_argument("--members", type=int, nargs="+", default=[32, 128])
    args = parser.parse_args()
    with cpu_settings():   # the width sweeps' settings: one thread, denormals flushed, freed memory kept
        bench(10, 2, 5)    # warm-up: first calls pay for lazy initialisation
        print(f"full-batch GD, n = 100, {args.steps} steps, {torch.get_num_threads()} thread, "
              f"torch {torch.__version__}")
        print(f"{'p':>6} {'members':>8} {'batched s':>10} {'one by one s':>13} {'ratio':>7}")
        for members in args.members:
            for width in args.widths:
                batched, one_by_one = bench(width, members, args.steps)
                print(f"{width:>6} {members:>8} {batched:>10.2f} {one_by_one:>13.2f} "
                      f"{one_by_one / batched:>6.1f}x", flush=True)


if __name__ == "__main__":
    main()
