"""Random labels, the ingredient both papers' adversarial initializations share."""
from __future__ import annotations

import torch


def random_labels(shape: tuple[int, ...] | int, classes: int, seed: int) -> torch.Tensor:
    """Labels drawn uniformly from `classes`, fixed by `seed`."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return torch.randint(0, classes, shape, generator=torch.Generator().manual_seed(seed))
