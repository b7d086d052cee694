"""Benchmark (not a test): a batched ensemble of one-hidden-layer nets against the same members trained one by one,
both through the one training loop, for the same number of full-batch gradient-descent steps on n = 100 points.

    .venv/bin/python scripts/bench_ensemble.py [--steps 100] [--widths 100 500 2000] [--members 32 128] [--threads T]
                                               [--repeats 3] [--device cuda]

Prints, per width p and ensemble size, the wall time of the batched run (eager, and under torch.compile once its
compilation is done; the compilation's own time is a column of its own), of the one-by-one loop (eager: a single
net this small is all per-step overhead, which compilation does not remove), and the ratios."""
from __future__ import annotations

import argparse
import time

import torch

from badminima.core.data.toy import draw
from badminima.core.models import MLP
from badminima.core.train import TrainConfig, train
from badminima.paper_b.experiments import cpu_settings



def _data(members: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    draws = [draw("gaussians", n, 2, seed)[0] for seed in range(members)]
    return torch.stack([x for x, _ in draws]), torch.stack([y for _, y in draws])


def _timed(fn, repeats: int = 1) -> float:
    """The fastest of `repeats` timings: the least disturbed by whatever else the machine was doing."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bench(width: int, members: int, steps: int, repeats: int, device: torch.device, alone: int,
          compile_: bool = True, n: int = 100) -> dict[str, float]:
    """Seconds for `steps` steps of all members batched (eager; compiled, after its compilation) and of the members
    one after another, each the fastest of `repeats`."""
    x, y = _data(members, n)
    seeds = list(range(members))
    cfg = TrainConfig(lr=0.01, batch_size=None, max_epochs=steps, until_fit=False)
    # amp=False: the sweeps train these nets in float32 on every device.
    run = lambda model: train(model, (x, y), cfg, seeds, device=device, amp=False)
    batched = _timed(lambda: run(MLP([2, width, 1], seeds)), repeats)
    first = steady = float("nan")
    if compile_:
        torch._dynamo.reset()   # a fresh compilation for each shape, timed on its own
        compiled = torch.compile(MLP([2, width, 1], seeds))
        first = _timed(lambda: train(compiled, (x, y), TrainConfig(max_epochs=1, until_fit=False), seeds,
                                      device=device, amp=False))
        steady = _timed(lambda: run(compiled), repeats)
    # Each member alone costs the same, so the first `alone` of them are timed and the time scaled to all.
    alone = min(alone, members)
    one_by_one = _timed(lambda: [train(MLP([2, width, 1], [s]), (x[m:m + 1], y[m:m + 1]), cfg, [s], device=device,
                                       amp=False)
                                 for m, s in enumerate(seeds[:alone])], repeats) * members / alone
    return {"batched": batched, "compiled": steady, "compile": first, "one_by_one": one_by_one}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--widths", type=int, nargs="+", default=[100, 500, 2000])
    parser.add_argument("--members", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile columns")
    parser.add_argument("--alone", type=int, default=1 << 30,
                        help="time this many members one by one and scale to all (default: every member)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with cpu_settings():   # the width sweeps' settings: denormals flushed, freed memory kept
        device = torch.device(args.device)
        bench(10, 2, 5, 1, device, 2, not args.no_compile)  # warm-up: first calls pay for lazy initialisation
        print(f"full-batch GD, n = 100, {args.steps} steps, {torch.get_num_threads()} threads, {args.device}, "
              f"fastest of {args.repeats}, torch {torch.__version__}")
        print(f"{'p':>6} {'members':>8} {'batched s':>10} {'compiled s':>11} {'(compile s)':>12} "
              f"{'one by one s':>13} {'ratio':>7} {'compiled':>9} {'us/member-step':>15}")
        for members in args.members:
            for width in args.widths:
                t = bench(width, members, args.steps, args.repeats, device, args.alone, not args.no_compile)
                print(f"{width:>6} {members:>8} {t['batched']:>10.3f} {t['compiled']:>11.3f} {t['compile']:>12.1f} "
                      f"{t['one_by_one']:>13.2f} {t['one_by_one'] / t['batched']:>6.1f}x "
                      f"{t['one_by_one'] / t['compiled']:>8.1f}x "
                      f"{1e6 * t['batched'] / (args.steps * members):>15.2f}", flush=True)


if __name__ == "__main__":
    main()
