"""Metrics on models and weights. Models follow models.py's convention: (members, batch, ...) -> logits."""
from __future__ import annotations

import copy
import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

Tensor = torch.Tensor


def predict(logits: Tensor) -> Tensor:
    """Class predictions: one logit means a binary model (positive -> class 1), several mean argmax."""
    return (logits[..., 0] > 0).long() if logits.shape[-1] == 1 else logits.argmax(-1)


# Images a forward pass of an evaluation takes at a time. Why not all of them at once: on the CPU the narrow nets are
# bound by memory, not arithmetic, once a chunk's activations leave the caches. Evaluating 500 images at one thread
# (scripts/bench_images.py --batch 25 --batches 20, the cpu widths) in chunks of 50 rather than one of 500: 1.44x the
# images/s for VGG16, 1.20x ResNet18, 2.39x ResNet50, 2.28x DenseNet-40; packed five seeds at a time, as the book
# trains the first three, 1.75x, 2.65x and 3.10x.
EVAL_CHUNK = 50


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor, chunk: int = EVAL_CHUNK) -> Tensor:
    """Fraction of correctly classified points, one value per member. x: (1 or M, n, ...), y: (1 or M, n)."""
    members = getattr(model, "members", 1)
    x, y = x.expand(members, *x.shape[1:]), y.expand(members, *y.shape[1:])
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, x.shape[1], chunk):
        logits = model(x[:, i:i + chunk])
        correct = correct + (predict(logits) == y[:, i:i + chunk]).sum(1)
    model.train(was_training)
    return correct.float().cpu() / x.shape[1]


def distance(w1: Tensor, w2: Tensor) -> Tensor:
    """Paper A's d(W1, W2) = ||W1 - W2||_F / ||W2||_F, row by row for (members, P) parameter matrices."""
    return (w1 - w2).norm(dim=-1) / w2.norm(dim=-1)


def margin(logit_fn: Callable[[Tensor], Tensor], points: Tensor, directions: int = 64, radius: float = 6.0,
           steps: int = 60, refine: int = 20) -> Tensor:
    """Distance from each 2-D point to the nearest point where the binary decision changes, found by walking
    `directions` rays out to `radius` and bisecting the first sign change. Points farther than `radius` from
    the boundary get `radius`. `logit_fn` maps (k, 2) inputs to (k,) logits of one model."""
    angles = torch.arange(directions) * (2 * math.pi / directions)
    rays = torch.stack([angles.cos(), angles.sin()], dim=1)                       # (D, 2)
    radii = torch.linspace(0, radius, steps + 1)[1:]                               # (S,)
    with torch.no_grad():
        side = logit_fn(points) > 0                                                # (n,)
        grid = points[:, None, None] + radii[None, None, :, None] * rays[None, :, None]  # (n, D, S, 2)
        flipped = (logit_fn(grid.reshape(-1, 2)).reshape(grid.shape[:3]) > 0) != side[:, None, None]
        first = torch.where(flipped.any(2), flipped.float().argmax(2), steps)      # (n, D) index of first flip
        hi = torch.where(first < steps, radii[first.clamp(max=steps - 1)], torch.tensor(radius))
        lo = torch.where(first > 0, radii[(first - 1).clamp(min=0)], torch.tensor(0.0))
        lo = torch.where(first == 0, torch.zeros_like(lo), lo)
        crossed = first < steps
        for _ in range(refine):
            mid = (lo + hi) / 2
            at = points[:, None] + mid[..., None] * rays[None]
            flip = (logit_fn(at.reshape(-1, 2)).reshape(mid.shape) > 0) != side[:, None]
            hi = torch.where(flip & crossed, mid, hi)
            lo = torch.where(flip | ~crossed, lo, mid)
        return torch.where(crossed, hi, torch.tensor(radius)).min(1).values


def frobenius_norm(model: nn.Module) -> float:
    """||W||_F over every trainable parameter (weights, biases, batch-norm scales and shifts)."""
    return float(torch.sqrt(sum((p.detach().double() ** 2).sum() for p in model.parameters())))


# average pooling -> the number of spatial dimensions it pools over
AVERAGE_POOLS = {F.avg_pool1d: 1, F.avg_pool2d: 2, F.avg_pool3d: 3,
                 F.adaptive_avg_pool1d: 1, F.adaptive_avg_pool2d: 2, F.adaptive_avg_pool3d: 3}


class _PoweredPools(TorchFunctionMode):
    """Raises each coefficient of every average pooling to the power p: a path through an average of k inputs
    carries (1/k)^p, which the all-ones pass would otherwise see as 1/k. Being a function mode, it also catches
    pools called as functions inside a forward (the convnets' global pooling), not only pooling modules."""

    def __init__(self, p: int):
        super().__init__()
        self.p = p

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in AVERAGE_POOLS:
            return func(*args, **kwargs)
        x, *rest = args
        dims = AVERAGE_POOLS[func]
        spatial = x.shape[-dims:]
        size = math.prod(spatial)
        # The pool is linear and acts on each channel alike: pooling unit images gives its explicit matrix.
        units = torch.eye(size, dtype=x.dtype, device=x.device).reshape(size, 1, *spatial)
        pooled = func(units, *rest, **kwargs)
        coefficients = pooled.reshape(size, -1)                                   # (inputs, outputs)
        out = x.reshape(*x.shape[:-dims], size) @ coefficients ** self.p
        return out.reshape(*x.shape[:-dims], *pooled.shape[2:])


@torch.no_grad()
def path_norm(model: nn.Module, input_shape: tuple[int, ...], p: int) -> float:
    """The l_p path norm: (sum over input-output paths of the product of |w|^p along the path)^(1/p), computed
    as one forward pass of an all-ones input through a copy whose weights are |w|^p and whose biases are 0
    (ReLUs then pass everything, residual sums and concatenations add the paths). An average pool over k inputs
    is a layer of weights 1/k, entering as (1/k)^p. Batch norm in eval mode is the diagonal map
    x * gamma / sqrt(running_var + eps): its factor enters as |gamma / sqrt(var + eps)|^p and its shift is
    dropped like a bias. Max pooling is not linear: each of its outputs keeps the paths through one input of its
    window, the one whose paths sum to the most."""
    net = copy.deepcopy(model).eval().double()
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            scale = module.weight / torch.sqrt(module.running_var + module.eps)
            module.weight.copy_(scale.abs() ** p)
            module.bias.zero_()
            module.running_mean.zero_()
            module.running_var.fill_(1 - module.eps)
        elif isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
            module.weight.copy_(module.weight.abs() ** p)
            if module.bias is not None:
                module.bias.zero_()
    with _PoweredPools(p):
        total = float(net(torch.ones(1, *input_shape, dtype=torch.float64)).sum())
    return total ** (1 / p)


def fgsm_accuracy(model: nn.Module, x: Tensor, y: Tensor, epsilons: list[float], mean: Tensor, std: Tensor,
                  chunk: int = 1000) -> list[float]:
    """Test accuracy under the fast gradient sign attack, one value per epsilon. x holds normalised images
    (n, C, H, W); epsilon is measured in pixel units on [0, 1], so the step in normalised units is eps / std,
    and the attacked image is clamped back to the valid pixel range."""
    model.eval()
    mean, std = mean.view(1, -1, 1, 1).to(x), std.view(1, -1, 1, 1).to(x)
    low, high = (0 - mean) / std, (1 - mean) / std
    correct = [0] * len(epsilons)
    for i in range(0, len(x), chunk):
        xb, yb = x[i:i + chunk].clone().requires_grad_(True), y[i:i + chunk]
        grad, = torch.autograd.grad(F.cross_entropy(model(xb), yb), xb)
        step = grad.sign() / std
        with torch.no_grad():
            for j, eps in enumerate(epsilons):
                attacked = torch.max(torch.min(xb + eps * step, high), low)
                correct[j] += int((model(attacked).argmax(1) == yb).sum())
    return [c / len(x) for c in correct]


TABLE1_COLUMNS = ("d(W0R, WVR)", "d(W0R, WSR)", "d(W0R, W0A)", "d(W0R, WVA)", "d(W0R, WSA)", "d(W0A, WVA)",
                  "d(W0A, WSA)")


def table1_distances(w: dict[str, Tensor]) -> dict[str, float]:
    """Paper A's Table 1 from one seed's six flat parameter vectors, keyed "0R", "VR", "SR", "0A", "VA", "SA"
    (0: an initializer, V/S: after vanilla/SOTA SGD; R/A: from the random/adversarial init)."""
    pairs = [("0R", "VR"), ("0R", "SR"), ("0R", "0A"), ("0R", "VA"), ("0R", "SA"), ("0A", "VA"), ("0A", "SA")]
    return {col: float(distance(w[a], w[b])) for col, (a, b) in zip(TABLE1_COLUMNS, pairs)}


@torch.no_grad()
def boundary_length(logit_fn: Callable[[Tensor], Tensor], extent: tuple[float, float, float, float],
                    resolution: int = 200) -> float:
    """Length of a 2-D binary decision boundary inside the box `extent` (x0, x1, y0, y1): the number of sign
    changes between neighbouring points of a resolution x resolution grid, each weighted by the grid spacing
    across it. A staircase estimate: it reads a straight boundary at angle a as |cos a| + |sin a| times its
    length, the same bias for every model, so it ranks smooth against jagged boundaries."""
    x0, x1, y0, y1 = extent
    gx, gy = torch.meshgrid(torch.linspace(x0, x1, resolution), torch.linspace(y0, y1, resolution), indexing="xy")
    side = logit_fn(torch.stack([gx.flatten(), gy.flatten()], 1)).reshape(gx.shape) > 0
    across_x = (side[:, 1:] != side[:, :-1]).sum() * (y1 - y0) / (resolution - 1)
    across_y = (side[1:] != side[:-1]).sum() * (x1 - x0) / (resolution - 1)
    return float(across_x + across_y)
