"""What a minimum looks like, beyond what either paper measures: its sharpness (the top eigenvalue and the trace of
the training loss's Hessian), the straight line between two networks, the smallest input perturbation that flips
a prediction, the exact distance of 2-D points to a one-hidden-layer ReLU net's decision boundary, and how far each
layer moved.

Hessian-vector products come from torch.func (forward-over-reverse: the jvp of the gradient), which the stack
already has; a Hessian library such as curvlinops would add a dependency for two loops of a few lines."""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, jvp

Tensor = torch.Tensor
Params = dict[str, Tensor]
Loss = Callable[[Params], Tensor]


def training_loss(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Loss, Params]:
    """The model's mean training loss as a function of its parameters (buffers such as batch-norm statistics held
    fixed: the model is put in eval mode), and its parameters. One logit: the logistic loss; several: cross-entropy."""
    model.eval()
    params = {name: p.detach() for name, p in model.named_parameters()}
    buffers = dict(model.named_buffers())

    def loss(p: Params) -> Tensor:
        logits = functional_call(model, (p, buffers), (x,))
        if logits.shape[-1] == 1:
            return F.binary_cross_entropy_with_logits(logits[..., 0], y.float())
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    return loss, params


def hvp(loss: Loss, params: Params, v: Params) -> Params:
    """The Hessian of `loss` at `params` times `v`."""
    return jvp(grad(loss), (params,), (v,))[1]


def _dot(a: Params, b: Params) -> Tensor:
    return sum((a[k] * b[k]).sum() for k in a)


def _random_like(params: Params, gen: torch.Generator, rademacher: bool) -> Params:
    out = {}
    for name, p in params.items():
        r = torch.randn(p.shape, generator=gen, dtype=p.dtype)
        out[name] = (r.sign() if rademacher else r).to(p.device)
    return out


def top_eigenvalue(loss: Loss, params: Params, tol: float = 1e-3, max_iters: int = 50,
                   seed: int = 0) -> tuple[float, int]:
    """The Hessian's eigenvalue of largest magnitude (at a minimum, the largest: the sharpness) by power iteration,
    stopped when the Rayleigh quotient changes by less than `tol` (relative) or after `max_iters`; (value,
    iterations used: max_iters means it stopped at the cap)."""
    v = _random_like(params, torch.Generator().manual_seed(seed), rademacher=False)
    value = math.nan
    for i in range(1, max_iters + 1):
        norm = _dot(v, v).sqrt()
        v = {k: t / norm for k, t in v.items()}
        hv = hvp(loss, params, v)
        new = float(_dot(v, hv))
        if i > 1 and abs(new - value) <= tol * abs(new):
            return new, i
        value, v = new, hv
    return value, max_iters


def hessian_trace(loss: Loss, params: Params, samples: int = 10, seed: int = 0) -> tuple[float, float]:
    """Hutchinson's estimate of the Hessian's trace, the mean of z'Hz over Rademacher vectors z, and its standard
    error over the `samples`."""
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(samples):
        z = _random_like(params, gen, rademacher=True)
        values.append(float(_dot(z, hvp(loss, params, z))))
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std() / math.sqrt(samples)) if samples > 1 else math.nan


def between(a: dict[str, Tensor], b: dict[str, Tensor], alpha: float) -> dict[str, Tensor]:
    """The state (1 - alpha) a + alpha b: floating tensors interpolated, integer ones (batch counts) taken from a."""
    return {k: torch.lerp(a[k], b[k], alpha) if a[k].is_floating_point() else a[k] for k in a}


@torch.no_grad()
def recompute_batch_norm(model: nn.Module, x: Tensor, chunk: int = 500) -> None:
    """Batch-norm running statistics re-estimated on inputs `x` (an interpolated network's statistics are not
    those of its own activations), by a cumulative average over chunks in train mode; the model ends in eval
    mode."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None   # cumulative average
    model.train()
    for i in range(0, len(x), chunk):
        model(x[i:i + chunk])
    model.eval()


def flip_epsilon(logits_of: Callable[[Tensor], Tensor], x: Tensor, eps_max: float, steps: int = 1,
                 bisections: int = 10, low: float | None = None, high: float | None = None) -> Tensor:
    """For each input, the smallest l-infinity radius (to within eps_max / 2^bisections) at which an attack changes
    the model's prediction; inf where none up to eps_max does. The attack: `steps` = 1 is the fast gradient sign
    method, more is projected gradient descent with step 2.5 eps / steps; both ascend the loss of the clean
    prediction, inputs clamped to [low, high] when given. `logits_of` maps (n, ...) inputs to (n, classes) or
    (n, 1) logits."""
    def logits2(z: Tensor) -> Tensor:
        out = logits_of(z)
        return torch.cat([torch.zeros_like(out), out], -1) if out.shape[-1] == 1 else out

    with torch.no_grad():
        clean = logits2(x).argmax(-1)

    def flips(eps: Tensor) -> Tensor:
        r = eps.view(-1, *[1] * (x.dim() - 1))
        z = x.clone()
        for _ in range(steps):
            z.requires_grad_(True)
            g, = torch.autograd.grad(F.cross_entropy(logits2(z), clean, reduction="sum"), z)
            with torch.no_grad():
                z = z + (r if steps == 1 else 2.5 * r / steps) * g.sign()
                z = torch.max(torch.min(z, x + r), x - r)
                if low is not None:
                    z = z.clamp(low, high)
        with torch.no_grad():
            return logits2(z).argmax(-1) != clean

    lo, hi = torch.zeros(len(x)), torch.full((len(x),), float(eps_max))
    ever = flips(hi)
    for _ in range(bisections):
        mid = (lo + hi) / 2
        flipped = flips(mid)
        hi, lo = torch.where(flipped, mid, hi), torch.where(flipped, lo, mid)
    return torch.where(ever, hi, torch.tensor(math.inf))


def boundary_distance_2d(w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, points: Tensor) -> Tensor:
    """Exact l2 distance from each 2-D point to the decision boundary {f = 0} of f(z) = w2 . relu(W1' z + b1) + b2
    (w1: (2, p), b1: (p,), w2: (p,), b2: scalar); inf where f never changes sign.

    f is affine on each cell of the arrangement of the p lines W1_j' z + b1_j = 0, so the boundary is a union of
    segments: in each cell, the zero line of that cell's affine map clipped to the cell. A piece ends on a line
    (or runs off to infinity after crossing one), so the cells that hold one are found on the lines: along line j,
    f is piecewise linear between its crossings with the other lines; where it changes sign, the two cells on
    either side of that stretch hold a piece (so do the points' own cells, where a boundary parallel to every line
    would lie). O(p^3) arithmetic in matrix products, and few cells to clip."""
    w1, b1, w2, b2, points = (t.double() for t in (w1, b1, w2, torch.as_tensor(b2).reshape(()), points))
    p = w1.shape[1]
    normals = w1.T                                                         # (p, 2)
    w1f, b1f, w2f = w1.float(), b1.float(), w2.float()   # float32 is enough to see where f changes sign
    f = lambda z: torch.relu(z.float() @ w1f + b1f) @ w2f + float(b2)
    patterns = []
    for j in range(p):
        n = normals[j]
        if n.norm() == 0:
            continue
        foot = -b1[j] * n / n.dot(n)                                       # a point of line j
        along = torch.stack([-n[1], n[0]])
        rate = normals @ along                                             # other lines' crossings with line j
        cross = -(normals @ foot + b1) / rate
        t = torch.sort(cross[(rate.abs() > 1e-12) & (torch.arange(p) != j)]).values
        far = 1e6 * ((t[-1] - t[0]).abs() + 1) if len(t) else torch.tensor(1e6, dtype=torch.float64)
        knots = torch.cat([t[:1] - far, t, t[-1:] + far]) if len(t) else torch.stack([-far, far])
        g = f(foot + knots[:, None] * along)
        change = (g[:-1] * g[1:]) <= 0                                     # f crosses zero on this stretch
        if not change.any():
            continue
        mids = foot + ((knots[:-1] + knots[1:]) / 2)[change][:, None] * along
        signs = (mids @ w1 + b1) > 0
        for side in (True, False):
            s = signs.clone()
            s[:, j] = side
            patterns.append(s)
    # and the points' own cells, for a boundary that crosses no line (parallel to all of them)
    patterns.append((points @ w1 + b1) > 0)
    cells = torch.unique(torch.cat(patterns), dim=0)                       # (cells, p) activation patterns
    best = torch.full((len(points),), math.inf, dtype=torch.float64)
    for chunk in cells.split(4096):
        best = torch.minimum(best, _distance_to_pieces(chunk.double(), normals, b1, w2, b2, points))
    return best.float()


def _distance_to_pieces(cells: Tensor, normals: Tensor, b1: Tensor, w2: Tensor, b2: Tensor,
                        points: Tensor) -> Tensor:
    """Distance from each point to the nearest boundary piece of these cells (their zero lines clipped to them)."""
    a = (cells * w2) @ normals                                             # (K, 2): f's gradient in each cell
    c = (cells * w2) @ b1 + b2
    keep = a.norm(dim=1) > 1e-12                                           # f constant in a cell: no piece
    a, c, cells = a[keep], c[keep], cells[keep]
    origin = -c[:, None] * a / (a * a).sum(1, keepdim=True)                # a point of each zero line
    d = torch.stack([-a[:, 1], a[:, 0]], 1)                                # its direction
    # inside cell k: sign_j (n_j . (origin + t d) + b1_j) >= 0 for every unit j, i.e. coef t >= rhs
    sgn = 2 * cells - 1
    coef, rhs = sgn * (d @ normals.T), -sgn * (origin @ normals.T + b1)
    inf = torch.tensor(math.inf, dtype=torch.float64)
    t_lo = torch.where(coef > 1e-12, rhs / coef, -inf).max(1).values
    t_hi = torch.where(coef < -1e-12, rhs / coef, inf).min(1).values
    parallel_outside = ((coef.abs() <= 1e-12) & (rhs > 1e-12)).any(1)
    real = (t_lo <= t_hi) & ~parallel_outside
    origin, d, t_lo, t_hi = origin[real], d[real], t_lo[real], t_hi[real]
    if not len(origin):
        return torch.full((len(points),), math.inf, dtype=torch.float64)
    t = ((points[None] - origin[:, None]) * d[:, None]).sum(-1) / (d * d).sum(1, keepdim=True)   # (K, n)
    t = torch.max(torch.min(t, t_hi[:, None]), t_lo[:, None])
    nearest = origin[:, None] + t[..., None] * d[:, None]
    return (points[None] - nearest).norm(dim=-1).min(0).values


def layer_distances(start: dict[str, Tensor], end: dict[str, Tensor]) -> dict[str, float]:
    """||end - start|| / ||start|| for each floating tensor of `start` (parameters and, where given, batch-norm
    statistics): how far training moved each layer, relative to its size at the start."""
    return {k: float((end[k].double() - v.double()).norm() / v.double().norm())
            for k, v in start.items() if v.is_floating_point() and v.double().norm() > 0}
