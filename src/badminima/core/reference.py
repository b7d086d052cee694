"""The reference digests: a few runs of seconds, one per model family and the fast path, whose weights' SHA-256 are
committed (reference_digests.json beside this file). On any x86-64 CPU with AVX2 and FMA, computing with the pinned
kernels (runtime.KERNELS), they come out bit for bit the same; a test recomputes them, so every machine that runs
the tests checks that the book's numbers are a function of the commit and its parameters, not of the CPU.

    python -m badminima.core.reference          # print this machine's digests beside the committed ones
    python -m badminima.core.reference --write  # commit these as the reference (after a change to how runs compute)
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Callable

import torch

from badminima.core import convnets, fastmlp, runtime
from badminima.core.data.toy import draw
from badminima.core.models import MLP, Single
from badminima.core.packed import Packed
from badminima.core.train import TrainConfig, train

FILE = Path(__file__).with_name("reference_digests.json")
CPU = torch.device("cpu")
SGD = TrainConfig(lr=0.05, batch_size=8, momentum=0.9, weight_decay=5e-4, max_epochs=2, until_fit=False)


def _images(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """n grayscale 28x28 images from integer arithmetic alone (no random generator whose kernels could differ),
    with labels 0-9."""
    i = torch.arange(n * 28 * 28, dtype=torch.int64).reshape(1, n, 1, 28, 28)
    return ((i * 2654435761) % 251).float() / 250, torch.arange(n).reshape(1, n) % 10


def _convnet(name: str, seeds: tuple[int, ...] = (0,)) -> dict[str, torch.Tensor]:
    nets = [convnets.build(name, 10, in_channels=1, width=0.0625, seed=s) for s in seeds]
    model = Packed(nets) if len(nets) > 1 else Single(nets[0])
    train(model, _images(), SGD, seeds, device=CPU, amp=False)
    return model.state_dict()


def _mlp(fast: bool) -> dict[str, torch.Tensor]:
    seeds = (0, 1)
    (x, y), _ = draw("spirals", 50, 2, seed=0)
    model = MLP((2, 32, 1), seeds)
    cfg = TrainConfig(lr=0.05, max_epochs=200, until_fit=False)
    data = (x.repeat(2, 1, 1), y.repeat(2, 1))
    if fast:
        fastmlp.train_mlp(model, data, cfg, seeds, device=CPU)
    else:
        train(model, data, cfg, seeds, device=CPU, amp=False)
    return model.state_dict()


RUNS: dict[str, Callable[[], dict[str, torch.Tensor]]] = {
    "vgg16": lambda: _convnet("vgg16"),
    "resnet18": lambda: _convnet("resnet18"),
    "resnet18, 2 packed": lambda: _convnet("resnet18", (0, 1)),
    "densenet40": lambda: _convnet("densenet40"),
    "mlp, the one loop": lambda: _mlp(fast=False),
    "mlp, the fast path": lambda: _mlp(fast=True),
}


def digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes."""
    h = hashlib.sha256()
    for name, t in sorted(state.items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name} {t.dtype} {tuple(t.shape)}\n".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def compute() -> dict[str, str]:
    """This machine's digests, computed as stored results are (one thread)."""
    with runtime.threads(runtime.RUN_THREADS):
        return {name: digest(run()) for name, run in RUNS.items()}


def committed() -> dict[str, str]:
    return json.loads(FILE.read_text())["digests"]


def instruction_sets() -> str:
    """The vector instruction sets this CPU reports (Linux), for a message about a mismatch."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return "unknown"
    wanted = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "amx_tile")
    return " ".join(f for f in wanted if f in flags.split())


def main(argv: list[str]) -> int:
    ours = compute()
    if "--write" in argv:
        FILE.write_text(json.dumps({"kernels": runtime.kernels(), "torch": torch.__version__, "digests": ours},
                                   indent=1) + "\n")
    theirs = committed()
    for name, value in ours.items():
        print(f"{name:<20} {value[:16]} {'same' if theirs.get(name) == value else 'DIFFERENT'}")
    print(f"kernels: {runtime.kernels_tag() or 'pinned'}; CPU: {instruction_sets()}")
    return 0 if ours == theirs else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
