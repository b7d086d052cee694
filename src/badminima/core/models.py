"""Models. Every model maps inputs of shape (members, batch, ...) to logits (members, batch, classes), so the one
training loop treats a single network as an ensemble of one and many small networks as one batched model."""
from __future__ import annotations

import copy
import math
from typing import Sequence

import torch
from torch import nn

Tensor = torch.Tensor


class MLP(nn.Module):
    """`members` independent fully connected ReLU networks with layer sizes `sizes`, evaluated with batched matrix
    products. Member m is initialised from `seeds[m]` alone (PyTorch's default nn.Linear initialisation), so it is
    the same network whether trained in a batch or on its own."""

    def __init__(self, sizes: Sequence[int], seeds: Sequence[int] = (0,)):
        super().__init__()
        self.sizes = tuple(sizes)
        self.seeds = tuple(seeds)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            self.weights.append(nn.Parameter(torch.empty(len(seeds), fan_in, fan_out)))
            self.biases.append(nn.Parameter(torch.empty(len(seeds), 1, fan_out)))
        self._init_members()

    @property
    def members(self) -> int:
        return len(self.seeds)

    def _init_members(self) -> None:
        with torch.no_grad():
            for m, seed in enumerate(self.seeds):
                gen = torch.Generator().manual_seed(seed)
                for w, b in zip(self.weights, self.biases):
                    # nn.Linear's default: weight and bias uniform on +-1/sqrt(fan_in).
                    bound = 1 / math.sqrt(w.shape[1])
                    w[m].copy_(torch.empty(w.shape[2], w.shape[1]).uniform_(-bound, bound, generator=gen).T)
                    b[m].copy_(torch.empty(b.shape[1:]).uniform_(-bound, bound, generator=gen))

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(2)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            # A one-logit layer as multiply-and-sum: batched matrix products with an output of width 1 are
            # several times slower on CPU, forward and backward, and dominate a width sweep's time.
            x = (x * w.transpose(1, 2)).sum(-1, keepdim=True) + b if w.shape[2] == 1 else torch.baddbmm(b, x, w)
            if i < len(self.weights) - 1:
                x = torch.relu(x)
        return x

    def member(self, m: int) -> "MLP":
        """Member m as a model of its own (a copy)."""
        single = copy.deepcopy(self)
        with torch.no_grad():
            for p_single, p in zip(single.parameters(), self.parameters()):
                p_single.data = p[m:m + 1].clone()
        single.seeds = (self.seeds[m],)
        return single

    def readout(self) -> list[nn.Parameter]:
        """The last layer's parameters (Paper B's Experiment 3 trains only these)."""
        return [self.weights[-1], self.biases[-1]]


class Single(nn.Module):
    """Wraps an ordinary network (input (batch, ...)) as an ensemble of one."""

    members = 1

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x[0])[None]


def member_params(model: nn.Module) -> Tensor:
    """All trainable parameters as a (members, P) matrix: one flat vector per member."""
    if isinstance(model, MLP):
        return torch.cat([p.detach().flatten(1) for p in model.parameters()], dim=1)
    return torch.cat([p.detach().flatten() for p in model.parameters()])[None]


def member_logits(model: MLP, m: int):
    """Member m's logit as a function of (k, 2) points, for margins and boundary plots."""
    single = model.member(m).eval()
    return lambda pts: single(pts[None])[0, :, 0]
