"""Images per second for training and evaluation of Paper A's architectures on the current device, through the
project's training loop, each variant's training rate also as a ratio to the first (one network, fp32). Every
device times one network and five packed into one (runs sharing the device, core.packed); on CUDA also bf16
autocast, channels_last and torch.compile switched on one after another, and the training step's achieved TFLOP/s
(its floating-point operations counted by torch's FlopCounterMode) against the device's bf16 matrix peak.

    .venv/bin/python scripts/bench_images.py [--models resnet18 ...] [--widths 0.25 1.0] [--shape 1 28 28]
                                             [--batch 128] [--compile-models resnet18 ...] [--peak-tflops 790]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from badminima.core import convnets
from badminima.core.metrics import EVAL_CHUNK, accuracy
from badminima.core.models import Single
from badminima.core.packed import Packed
from badminima.core.train import TrainConfig, default_device, train


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def throughput(nets: list[torch.nn.Module], shape: tuple[int, ...], batches: int, batch: int, device: torch.device,
               amp: bool, channels_last: bool, eval_chunks: list[int]) -> tuple[float, list[float]]:
    """(training images/s, evaluation images/s at each of `eval_chunks`) over `batches` batches of `batch` random
    images, for one network or several packed into one (core.packed: runs sharing the device), counting every
    member's images."""
    n, members = batch * batches, len(nets)
    x = torch.randn(1, n, *shape, device=device)
    y = torch.randint(0, 10, (1, n), device=device)
    if members > 1:
        net = Packed(nets, channels_last=channels_last).to(device)
    else:
        net = Single(nets[0].to(memory_format=torch.channels_last) if channels_last else nets[0])
    seeds = list(range(members))
    cfg = TrainConfig(lr=0.01, batch_size=batch, max_epochs=1, until_fit=False)
    one = (x[:, :1], y[:, :1])   # a one-image fit set, so the epoch's own accuracy check costs nothing
    train(net, (x[:, :2 * batch], y[:, :2 * batch]), cfg, seeds, fit_set=one, device=device, amp=amp)   # warm-up
    sync(device)
    start = time.perf_counter()
    train(net, (x, y), cfg, seeds, fit_set=one, device=device, amp=amp)
    sync(device)
    train_rate = members * n / (time.perf_counter() - start)
    eval_rates = []
    for chunk in eval_chunks:
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
            accuracy(net, x, y, chunk=chunk)
        sync(device)
        eval_rates.append(members * n / (time.perf_counter() - start))
    return train_rate, eval_rates


def train_flops_per_image(model: torch.nn.Module, shape: tuple[int, ...], device: torch.device) -> float:
    """Floating-point operations of one training step (forward and backward), per image of a batch of 128."""
    x = torch.randn(128, *shape, device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        torch.nn.functional.cross_entropy(model(x), torch.zeros(128, dtype=torch.long, device=device)).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(convnets.NAMES))
    parser.add_argument("--widths", nargs="+", type=float, default=[0.25, 1.0], help="cpu-scale and paper widths")
    parser.add_argument("--shape", nargs=3, type=int, default=[1, 28, 28], help="C H W (Fashion-MNIST: 1 28 28)")
    parser.add_argument("--batches", type=int, default=0, help="timed batches (default: 4 on CPU, 50 on CUDA)")
    parser.add_argument("--batch", type=int, default=128, help="images a batch (the cpu scale's: 32)")
    parser.add_argument("--compile-models", nargs="*", default=None,
                        help="on CUDA, the models also timed under torch.compile (default: all of --models)")
    parser.add_argument("--peak-tflops", type=float, default=790.0,
                        help="the device's bf16 matrix peak for the last column (default: an H200's measured 790)")
    parser.add_argument("--eval-chunks", nargs="+", type=int, default=[500, EVAL_CHUNK],
                        help="images an evaluation's forward pass takes at a time, each timed (default: the one "
                             "before and the library's)")
    parser.add_argument("--rates-out", default=None,
                        help="write each model's fastest training images/s at the widest --widths here (JSON)")
    parser.add_argument("--json", default=None, help="also write every row here (JSON), for bench_kernels.py")
    args = parser.parse_args()
    device = default_device()
    batches = args.batches or (50 if device.type == "cuda" else 4)
    # (label, bf16 autocast, channels_last, compile, networks packed)
    variants = [("fp32", False, False, False, 1), ("fp32, 5 packed", False, False, False, 5)]
    if device.type == "cuda":
        variants += [("bf16", True, False, False, 1), ("bf16+channels_last", True, True, False, 1),
                     ("bf16+channels_last+compile", True, True, True, 1), ("bf16+channels_last, 5 packed",
                                                                            True, True, False, 5)]
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; input {tuple(args.shape)}, batch {args.batch}, {batches} timed batches")
    evals = " ".join(f"{f'eval@{c} img/s':>15}" for c in args.eval_chunks)
    print(f"{'model':<11} {'width':>5} {'params':>10} {'variant':<27} {'train img/s':>11} {'ratio':>6} "
          f"{evals} {'TFLOP/s':>8} {'of peak':>8}")
    compiled = args.models if args.compile_models is None else args.compile_models
    best: dict[str, float] = {}   # each model's fastest training images/s at the widest width, for --rates-out
    rows = []
    for model_name in args.models:
        for width in args.widths:
            flops = train_flops_per_image(
                convnets.build(model_name, 10, in_channels=args.shape[0], width=width, seed=0).to(device),
                tuple(args.shape), device)
            first = None
            for label, amp, channels_last, compile_, members in variants:
                if compile_ and model_name not in compiled:
                    continue
                nets = [convnets.build(model_name, 10, in_channels=args.shape[0], width=width, seed=s).to(device)
                        for s in range(members)]
                params = convnets.describe(nets[0])["parameters"]
                if compile_:
                    nets = [torch.compile(nets[0])]
                train_rate, eval_rates = throughput(nets, tuple(args.shape), batches, args.batch, device, amp,
                                                    channels_last, args.eval_chunks)
                first = first or train_rate
                if width == max(args.widths):
                    best[model_name] = max(best.get(model_name, 0.0), train_rate)
                tflops = train_rate * flops / 1e12
                share = f"{100 * tflops / args.peak_tflops:.2f}%" if device.type == "cuda" else "-"
                rows.append({"model": model_name, "width": width, "variant": label, "train img/s": train_rate,
                             **{f"eval img/s at chunk {c}": r for c, r in zip(args.eval_chunks, eval_rates)}})
                shown = " ".join(f"{r:>15.0f}" for r in eval_rates)
                print(f"{model_name:<11} {width:>5} {params:>10,} {label:<27} {train_rate:>11.0f} "
                      f"{train_rate / first:>5.2f}x {shown} {tflops:>8.2f} {share:>8}", flush=True)
    if args.rates_out:
        Path(args.rates_out).write_text(json.dumps(best) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(rows) + "\n")


if __name__ == "__main__":
    main()
