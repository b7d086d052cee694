"""Images per second for training and evaluation of Paper A's architectures on the current device, through the
project's training loop. On CUDA it also times each model with bf16 autocast, channels_last and torch.compile
switched on one after another.

    .venv/bin/python scripts/bench_images.py [--models resnet18 ...] [--widths 0.25 1.0] [--shape 1 28 28]
"""
from __future__ import annotations

import argparse
import time

import torch

from badminima.core import convnets
from badminima.core.metrics import accuracy
from badminima.core.models import Single
from badminima.core.train import TrainConfig, default_device, train


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def throughput(model: torch.nn.Module, shape: tuple[int, ...], batches: int, device: torch.device,
               amp: bool, channels_last: bool) -> tuple[float, float]:
    """(training images/s, evaluation images/s) over `batches` batches of 128 random images."""
    n = 128 * batches
    x = torch.randn(1, n, *shape, device=device)
    y = torch.randint(0, 10, (1, n), device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    net = Single(model)
    cfg = TrainConfig(lr=0.01, batch_size=128, max_epochs=1, until_fit=False)
    one = (x[:, :1], y[:, :1])   # a one-image fit set, so the epoch's own accuracy check costs nothing
    train(net, (x[:, :256], y[:, :256]), cfg, [0], fit_set=one, device=device, amp=amp)   # warm-up
    sync(device)
    start = time.perf_counter()
    train(net, (x, y), cfg, [0], fit_set=one, device=device, amp=amp)
    sync(device)
    train_rate = n / (time.perf_counter() - start)
    start = time.perf_counter()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
        accuracy(net, x, y, chunk=1024)
    sync(device)
    return train_rate, n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(convnets.NAMES))
    parser.add_argument("--widths", nargs="+", type=float, default=[0.25, 1.0], help="cpu-scale and paper widths")
    parser.add_argument("--shape", nargs=3, type=int, default=[1, 28, 28], help="C H W (Fashion-MNIST: 1 28 28)")
    parser.add_argument("--batches", type=int, default=0, help="timed batches (default: 4 on CPU, 50 on CUDA)")
    args = parser.parse_args()
    device = default_device()
    batches = args.batches or (50 if device.type == "cuda" else 4)
    variants = [("fp32", False, False, False)]
    if device.type == "cuda":
        variants += [("bf16", True, False, False), ("bf16+channels_last", True, True, False),
                     ("bf16+channels_last+compile", True, True, True)]
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; input {tuple(args.shape)}, batch 128, {batches} timed batches")
    print(f"{'model':<11} {'width':>5} {'params':>10} {'variant':<27} {'train img/s':>11} {'eval img/s':>10}")
    for model_name in args.models:
        for width in args.widths:
            for label, amp, channels_last, compile_ in variants:
                model = convnets.build(model_name, 10, in_channels=args.shape[0], width=width, seed=0).to(device)
                params = convnets.describe(model)["parameters"]
                if compile_:
                    model = torch.compile(model)
                train_rate, eval_rate = throughput(model, tuple(args.shape), batches, device, amp, channels_last)
                print(f"{model_name:<11} {width:>5} {params:>10,} {label:<27} {train_rate:>11.0f} {eval_rate:>10.0f}",
                      flush=True)


if __name__ == "__main__":
    main()
