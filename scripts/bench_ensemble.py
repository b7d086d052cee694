"""Benchmark (not a test): microseconds per member-step of Paper B's one-hidden-layer nets (n = 100 points in 2-D,
full-batch gradient descent, float32), three ways, all keeping the one loop's contract:

  fast     core/fastmlp.py: hand-derived gradients, all members batched
  batched  the generic loop (core/train.py) on the same batched MLP
  alone    the generic loop on one member at a time (the first --alone members, scaled to all)

and, measured in the same run, how far the fast path is from this machine's limit: the step's floating-point
operations against a large matrix product's rate (the floor). On the CPU the fast path's fused step stores no
n x p array (each member runs its steps on one core, its weights and points in the first-level cache), so
arithmetic sets the floor; the elementwise bandwidth is printed for the tensor step (GPU), which moves the n x p
hidden layer about 8 times.
History is kept at the end only, as in a long sweep (every 60th step of 300,000).

    .venv/bin/python scripts/bench_ensemble.py [--widths 10 100 500 2000] [--members 32 128] [--steps 200]
                                               [--repeats 3] [--alone 4] [--threads T] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from badminima.core import fastmlp, runtime
from badminima.core.data.toy import draw
from badminima.core.models import MLP
from badminima.core.train import TrainConfig, train

N, D = 100, 2


def _data(members: int) -> tuple[torch.Tensor, torch.Tensor]:
    draws = [draw("gaussians", N, D, seed)[0] for seed in range(members)]
    return torch.stack([x for x, _ in draws]), torch.stack([y for _, y in draws])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device: torch.device, repeats: int) -> float:
    """The fastest of `repeats` timings: the least disturbed by whatever else the machine was doing."""
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def machine(device: torch.device) -> tuple[float, float]:
    """(matrix-product FLOP/s, elementwise bytes/s): a 2048^3 float32 product, and an add over 32M floats."""
    a, b = torch.randn(2048, 2048, device=device), torch.randn(2048, 2048, device=device)
    flops = 2 * 2048 ** 3 / _timed(lambda: torch.mm(a, b), device, 5)
    x, y = torch.randn(1 << 25, device=device), torch.randn(1 << 25, device=device)
    out = torch.empty_like(x)
    moved = 3 * 4 * x.numel() / _timed(lambda: torch.add(x, y, out=out), device, 5)
    return flops, moved


def step_flops(p: int) -> float:
    """Floating-point operations of one member's full-batch step: x W1 and its gradient (2 x 2nDp), the ReLU, the
    logit, the readout's gradient, the hidden gradient, its mask and the bias gradient (9np)."""
    return N * p * (4 * D + 9)


def bench(width: int, members: int, steps: int, repeats: int, alone: int, device: torch.device
          ) -> dict[str, float]:
    """Seconds for `steps` steps of every member: fast path, generic batched loop, generic loop one at a time."""
    x, y = _data(members)
    seeds = list(range(members))
    cfg = TrainConfig(lr=0.01, max_epochs=steps, until_fit=False)
    fast = _timed(lambda: fastmlp.train_mlp(MLP([D, width, 1], seeds), (x, y), cfg, seeds, device=device,
                                            history_every=steps), device, repeats)
    batched = _timed(lambda: train(MLP([D, width, 1], seeds), (x, y), cfg, seeds, device=device, amp=False),
                     device, repeats)
    alone = min(alone, members)   # each member alone costs the same: time a few, scale to all
    one = _timed(lambda: [train(MLP([D, width, 1], [s]), (x[m:m + 1], y[m:m + 1]), cfg, [s], device=device,
                                amp=False) for m, s in enumerate(seeds[:alone])], device, repeats)
    return {"fast": fast, "batched": batched, "alone": one * members / alone}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--widths", type=int, nargs="+", default=[10, 100, 500, 2000])
    parser.add_argument("--members", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--alone", type=int, default=4, help="members timed one by one (default 4), scaled to all")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--json", default=None, help="also write every row here (JSON), for bench_kernels.py")
    args = parser.parse_args()
    rows = []
    device = torch.device(args.device)
    with runtime.threads(args.threads), runtime.flush_denormal(True):   # the width sweeps' settings
        bench(10, 2, 5, 1, 2, device)   # warm-up: first calls pay for lazy initialisation
        flops, moved = machine(device)
        print(f"full-batch GD, n = {N}, d = {D}, {args.steps} steps, {torch.get_num_threads()} threads, {device}, "
              f"fastest of {args.repeats}, torch {torch.__version__}")
        print(f"machine: matrix product {flops / 1e9:.0f} GFLOP/s, elementwise {moved / 1e9:.1f} GB/s")
        print("microseconds per member-step:")
        print(f"{'p':>6} {'members':>8} {'fast':>8} {'batched':>8} {'alone':>8} {'vs batched':>11} "
              f"{'vs alone':>9} {'floor':>7} {'fast/floor':>11}")
        for members in args.members:
            for width in args.widths:
                t = bench(width, members, args.steps, args.repeats, args.alone, device)
                us = {k: 1e6 * v / (args.steps * members) for k, v in t.items()}
                floor = 1e6 * step_flops(width) / flops
                rows.append({"p": width, "members": members, **{f"{k} us": v for k, v in us.items()}})
                print(f"{width:>6} {members:>8} {us['fast']:>8.2f} {us['batched']:>8.2f} {us['alone']:>8.1f} "
                      f"{us['batched'] / us['fast']:>10.1f}x {us['alone'] / us['fast']:>8.1f}x {floor:>7.2f} "
                      f"{us['fast'] / floor:>10.1f}x", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows) + "\n")


if __name__ == "__main__":
    main()
