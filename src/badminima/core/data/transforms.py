"""What is done to image tensors between reading them (images.py) and training on them: a class-balanced
subset, the paper's random crop and flip, and the uint8-to-normalised-float conversion."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from badminima.core.config import ParameterError, check_range

Tensor = torch.Tensor


def subset(x: Tensor, y: Tensor, per_class: int, seed: int, classes: int | None = None) -> tuple[Tensor, Tensor]:
    """`per_class` images of each class 0..classes-1 (default: up to the largest label), chosen and then shuffled
    by `seed`."""
    check_range("per_class", per_class, 1, integer=True)
    classes = int(y.max()) + 1 if classes is None else classes
    gen = torch.Generator().manual_seed(seed)
    shuffled = torch.randperm(len(y), generator=gen)
    counts = torch.bincount(y[shuffled], minlength=classes)
    short = int(counts[:classes].argmin())
    if counts[short] < per_class:
        raise ParameterError(f"per_class={per_class} is more than class {short} has ({int(counts[short])} images)")
    # A stable sort keeps the shuffled order within each class, so each class's first per_class are a random pick.
    by_class = shuffled[torch.argsort(y[shuffled], stable=True)]
    starts = torch.cumsum(counts, 0) - counts
    chosen = by_class[(starts[:classes, None] + torch.arange(per_class)).flatten()]
    chosen = chosen[torch.randperm(len(chosen), generator=gen)]
    return x[chosen], y[chosen]


def crop_padding(height: int, width: int) -> int:
    """The crop's padding for images of this size: the paper's 4 pixels of 32, an eighth of the shorter side
    rounded half up, at least 1 (4 for every built-in data set: 28 and 32 pixels)."""
    return max(1, (min(height, width) + 4) // 8)


def crop_flip(x: Tensor, gen: torch.Generator, padding: int = 4, flip: bool = True) -> Tensor:
    """Random crop from the zero-padded image and (if `flip`) horizontal flip with probability 1/2, each image of the
    batch (..., C, H, W) its own draw. The draws come from the CPU generator `gen`, so results do not depend on
    device; the flips are drawn even when not applied, so the crops are the same with and without them."""
    *lead, c, h, w = x.shape
    flat = x.reshape(-1, c, h, w)
    n = len(flat)
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=gen).to(x.device)
    flips = (torch.rand(n, generator=gen) < 0.5).to(x.device) & flip
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    padded = F.pad(flat, (padding,) * 4)
    out = padded.gather(2, rows[:, None, :, None].expand(n, c, h, w + 2 * padding))
    out = out.gather(3, cols[:, None, None, :].expand(n, c, h, w))
    return out.reshape(*lead, c, h, w)


def to_float(x: Tensor, mean: Sequence[float], std: Sequence[float], device: str | torch.device = "cpu") -> Tensor:
    """uint8 images (..., C, H, W) as float32 on `device`, scaled to [0, 1] and normalised per channel."""
    x = x.to(device)  # move as uint8: a quarter of the float32 bytes
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device)[:, None, None]
    std_t = torch.tensor(std, dtype=torch.float32, device=device)[:, None, None]
    return (x.float() / 255 - mean_t) / std_t
