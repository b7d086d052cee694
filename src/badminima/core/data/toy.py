"""Seeded 2-D binary distributions, each drawn as a training set and a separate test set. A data set is one of them
with its options set, and belongs to the protocol that uses it, not here."""
from __future__ import annotations

import math

import torch

from badminima.core.config import check_choice, check_range

Tensor = torch.Tensor


def _balanced_labels(n: int, gen: torch.Generator) -> Tensor:
    y = torch.arange(n) % 2
    return y[torch.randperm(n, generator=gen)]


def two_gaussians(n: int, gen: torch.Generator, separation: float = 6.0) -> tuple[Tensor, Tensor]:
    """Two unit-variance Gaussians whose centres lie `separation` apart on the x axis."""
    y = _balanced_labels(n, gen)
    centre = torch.stack([(y.float() - 0.5) * separation, torch.zeros(n)], dim=1)
    return centre + torch.randn(n, 2, generator=gen), y


def gaussians(n: int, gen: torch.Generator, mu: float = 2.5) -> tuple[Tensor, Tensor]:
    """Mean (2y-1)*[mu, mu], identity covariance."""
    y = _balanced_labels(n, gen)
    mean = (2 * y.float() - 1)[:, None] * torch.tensor([mu, mu])
    return mean + torch.randn(n, 2, generator=gen), y


def circles(n: int, gen: torch.Generator, noise: float = 0.5) -> tuple[Tensor, Tensor]:
    """Radius uniform on [0, 10], minus 5 (inner disc, y=0) or plus 5 (outer ring, y=1), plus noise."""
    y = _balanced_labels(n, gen)
    radius = 10 * torch.rand(n, generator=gen) + torch.where(y == 1, 5.0, -5.0)
    radius = radius.abs() + noise * torch.randn(n, generator=gen)
    angle = 2 * math.pi * torch.rand(n, generator=gen)
    return torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1), y


def spirals(n: int, gen: torch.Generator, t_max: float = 10.0, jitter: float = 0.9) -> tuple[Tensor, Tensor]:
    """((y+1) t cos t, (y+1) t sin t), each coordinate plus uniform noise on [0, jitter * t)."""
    y = _balanced_labels(n, gen)
    t = t_max * torch.rand(n, generator=gen)
    arm = (y.float() + 1) * t
    x = torch.stack([arm * t.cos(), arm * t.sin()], dim=1)
    return x + jitter * t[:, None] * torch.rand(n, 2, generator=gen), y


DATASETS = {"two_gaussians": two_gaussians, "gaussians": gaussians, "circles": circles, "spirals": spirals}


def draw(name: str, n_train: int, n_test: int, seed: int, **options: float
         ) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """A training set and an independent test set of the named distribution, both fixed by `seed`."""
    check_choice("dataset", name, DATASETS)
    check_range("n_train", n_train, 2, integer=True)
    check_range("n_test", n_test, 2, integer=True)
    gen = torch.Generator().manual_seed(seed)
    make = DATASETS[name]
    return make(n_train, gen, **options), make(n_test, gen, **options)


def noisy_copies(x: Tensor, y: Tensor, copies: int, scale: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """A toy augmentation: the points plus `copies` replicas of each, moved by Gaussian noise."""
    jittered = [x + scale * torch.randn(x.shape, generator=gen) for _ in range(copies)]
    return torch.cat([x, *jittered], dim=-2), torch.cat([y] * (copies + 1), dim=-1)
