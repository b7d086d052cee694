"""Paper A's Algorithm 1: the set C of noisy, randomly labelled copies of the training images."""
from __future__ import annotations

import torch


def zero_out(x: torch.Tensor, fraction: float, gen: torch.Generator, whole_pixels: bool = False,
             chunk: int = 4096) -> torch.Tensor:
    """A copy of the uint8 images x (n, C, H, W) with `fraction` of each image's entries set to 0, chosen without
    replacement per image. By default single colour values are zeroed, as the authors' code does
    (int(C*H*W*fraction) of them); with whole_pixels, int(H*W*fraction) pixel positions in every channel."""
    n, c, h, w = x.shape
    size = h * w if whole_pixels else c * h * w
    k = int(size * fraction)
    out = x.clone()
    flat = out.view(n, c, h * w) if whole_pixels else out.view(n, size)
    for start in range(0, n, chunk):
        rows = flat[start:start + chunk]
        # the k smallest of uniform scores are a uniform k-subset without replacement, per row
        picked = torch.rand(rows.shape[0], size, generator=gen).argsort(dim=1)[:, :k]
        if whole_pixels:
            rows.scatter_(2, picked[:, None, :].expand(-1, c, -1), 0)
        else:
            rows.scatter_(1, picked, 0)
    return out


def algorithm1_set(x: torch.Tensor, classes: int, replication: int, noise_percent: float, seed: int,
                   whole_pixels: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Paper A's Algorithm 1 data set C: `replication` copies of every uint8 image (n, C, H, W), each with
    `noise_percent`% of its values zeroed and a uniformly random label. Drawn once from `seed`."""
    gen = torch.Generator().manual_seed(seed)
    copies = x.repeat(replication, 1, 1, 1)
    noisy = zero_out(copies, noise_percent / 100, gen, whole_pixels)
    labels = torch.randint(0, classes, (len(copies),), generator=gen)
    return noisy, labels
