"""A fast path of the one training loop for Paper B's networks: ensembles of one-hidden-layer ReLU nets (`MLP`
with sizes (d, p, k)), trained by plain or momentum SGD with hand-derived gradients, members leaving the batch
as they fit.

It keeps `train`'s contract for the runs it accepts (`supports`): each member's batch order comes from its own
seed as in `train`; a member stops at the first epoch its training accuracy reaches `cfg.fit_target` and keeps the
weights it had then; with `until_fit` training ends when every member has; the history holds the epochs
`history_every` names and the last, with the same values; a checkpoint every `checkpoint_every` epochs is resumed
from when present; the returned `Run` is the same. Its sums run in another order than autograd's, so weights agree
with `train`'s to float tolerance, not bit for bit.

Why gradients by hand: for a net this small, the generic loop's autograd graph, optimizer and per-member freezing
cost more per step than the arithmetic (about 0.35 ms a step for one net at any width on two cores), and a member
that has fitted is still computed there; here a step is a handful of batched tensor operations over the members
still training (or, on the CPU, a compiled loop per member), and a finished member costs nothing."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, Sequence

import numba
import numpy as np
import torch
import torch.nn.functional as F

from badminima.core import runtime
from badminima.core.metrics import accuracy, predict
from badminima.core.models import MLP
from badminima.core.train import (DataSet, History, Run, TrainConfig, default_device, loss_per_member,
                                  read_checkpoint, recorded, save_checkpoint)

Tensor = torch.Tensor
# Every process compiles the kernels itself (about 5 s): under fastmath the object code numba caches on disk and the
# code it compiles in the process sum in different orders (measured: a process that loaded the cache and one that
# compiled ended 1e-7 apart in the weights), and the book's processes (chapters, workers) must agree bit for bit.
CACHE = False
_NOBODY = torch.zeros(0, dtype=torch.bool)   # close's answer when no member stops


def supports(model: torch.nn.Module, cfg: TrainConfig, *, fit_set: DataSet | None = None, augment=None,
             patience_ok: bool = False) -> bool:
    """Whether `train_mlp` takes this run: a one-hidden-layer MLP, the training set as the fit set, no
    augmentation, and no patience (which reads every epoch's accuracy from a full history)."""
    return (isinstance(model, MLP) and len(model.weights) == 2 and fit_set is None and augment is None
            and (cfg.patience is None or patience_ok))


class _Members:
    """The parameters (and momentum buffers) of the members still training, gathered from the model's full
    tensors; `scatter` writes them back."""

    def __init__(self, model: MLP, active: Tensor, buffers: list[Tensor] | None):
        self.full = [model.weights[0], model.biases[0], model.weights[1], model.biases[1]]
        self.full_buffers = buffers
        self.gather(active)

    def gather(self, active: Tensor) -> None:
        self.active = active
        self.params = [p.detach()[active] for p in self.full]
        self.buffers = [b[active] for b in self.full_buffers] if self.full_buffers is not None else None

    def scatter(self) -> None:
        with torch.no_grad():
            for p, a in zip(self.full, self.params):
                p[self.active] = a
            if self.buffers is not None:
                for b, a in zip(self.full_buffers, self.buffers):
                    b[self.active] = a


class _Workspace:
    """Preallocated tensors for the hidden layer and the gradients, reused every step as views of their first
    members. Why: a step's hidden activations are megabytes, and a fresh tensor of that size is memory the
    allocator maps anew (and the kernel zero-fills) at every step, which costs more than the arithmetic."""

    def __init__(self, params: list[Tensor], rows: int):
        members, _, width = params[0].shape
        self.hidden = torch.empty(members * rows * width, device=params[0].device)
        self.spare = torch.empty_like(self.hidden) if params[2].shape[2] > 1 else None
        # The readout's gradient is made transposed, (members, k, p): a row times the hidden layer is a fast
        # product where the hidden layer times a column is not (several times slower on CPU).
        self.grads = [torch.empty_like(p) for p in params]
        self.grads[2] = params[2].new_empty(params[2].transpose(1, 2).shape)

    @staticmethod
    def _view(flat: Tensor, *shape: int) -> Tensor:
        return flat[:torch.Size(shape).numel()].view(*shape)

    def hidden_for(self, members: int, rows: int, width: int, spare: bool = False) -> Tensor:
        return self._view(self.spare if spare else self.hidden, members, rows, width)

    def grad(self, i: int, members: int) -> Tensor:
        g = self.grads[i]
        return self._view(g.view(-1), members, *g.shape[1:])


def _forward(params: list[Tensor], x: Tensor, ws: _Workspace) -> tuple[Tensor, Tensor]:
    """(hidden activations, logits) for x of shape (members, n, d)."""
    w1, b1, w2, b2 = params
    h = ws.hidden_for(x.shape[0], x.shape[1], w1.shape[2])
    torch.baddbmm(b1, x, w1, out=h).relu_()
    return h, torch.baddbmm(b2, h, w2)


def _correct(out: Tensor, y: Tensor) -> Tensor:
    return (predict(out) == y).float().mean(1)


def _finite(out: Tensor) -> Tensor:
    """Whether each member's logits are all finite (its loss is finite exactly when they are)."""
    return torch.isfinite(out).flatten(1).all(1)


def _gradients(params: list[Tensor], x: Tensor, y: Tensor, h: Tensor, out: Tensor, ws: _Workspace,
               readout_only: bool) -> list[Tensor | None]:
    """Gradients of the sum over members of each member's mean loss, for w1, b1, w2, b2 (None where frozen).
    Overwrites h (with ReLU's derivative)."""
    w1, b1, w2, b2 = params
    members, n, d = x.shape
    one_logit = out.shape[-1] == 1
    if one_logit:
        g = (torch.sigmoid(out) - y.unsqueeze(-1)) / n                        # (M, n, 1)
    else:
        g = (torch.softmax(out, -1) - F.one_hot(y, out.shape[-1])) / n        # (M, n, k)
    gw2 = torch.bmm(g.transpose(1, 2), h, out=ws.grad(2, members)).transpose(1, 2)
    gb2 = torch.sum(g, 1, keepdim=True, out=ws.grad(3, members))
    if readout_only:
        return [None, None, gw2, gb2]
    relu_grad = h.sign_()
    gw1, gb1 = ws.grad(0, members), ws.grad(1, members)
    if one_logit:
        # With one logit, d loss / d pre[i, j] = g[i] * w2[j] * relu'(pre[i, j]), so both first-layer gradients
        # come from one product of (x_i g_i, g_i) with relu' (one pass over the hidden layer, not three),
        # scaled by w2 afterwards.
        s = torch.bmm(torch.cat([x * g, g], -1).transpose(1, 2), relu_grad)   # (M, d + 1, p)
        w2t = w2.transpose(1, 2)
        torch.mul(s[:, :d], w2t, out=gw1)
        torch.mul(s[:, d:], w2t, out=gb1)
    else:
        gh = torch.bmm(g, w2.transpose(1, 2), out=ws.hidden_for(members, n, w1.shape[2], spare=True))
        gh.mul_(relu_grad)
        torch.bmm(x.transpose(1, 2), gh, out=gw1)
        torch.sum(gh, 1, keepdim=True, out=gb1)
    return [gw1, gb1, gw2, gb2]


@numba.njit(fastmath=True, cache=CACHE)
def _forward_by_unit(m, xt, w1, b1, w2, b2, out, pre):  # pragma: no cover (compiled)
    """Member m's logits (out) of its n points, any input dimension: one hidden unit at a time, each a few loops
    over the points (contiguous in xt, which is x transposed to (members, d, n))."""
    d, n, p = xt.shape[1], xt.shape[2], w1.shape[2]
    zero = np.float32(0.0)
    for i in range(n):
        out[i] = b2[m]
    for j in range(p):
        for i in range(n):
            pre[i] = b1[m, j]
        for k in range(d):
            wk = w1[m, k, j]
            for i in range(n):
                pre[i] += xt[m, k, i] * wk
        wj = w2[m, j]
        for i in range(n):
            out[i] += wj * max(pre[i], zero)


@numba.njit(fastmath=True, cache=CACHE)
def _step_by_unit(m, xt, w1, b1, w2, lr, train_first, g, gx, pre):  # pragma: no cover (compiled)
    """The step of member m's hidden layer and readout weights given g (d loss / d logit, per point) and gx (g
    times each input coordinate, (d, n)), one unit at a time."""
    d, n, p = xt.shape[1], xt.shape[2], w1.shape[2]
    zero = np.float32(0.0)
    for j in range(p):
        bj = b1[m, j]
        for i in range(n):
            pre[i] = bj
        for k in range(d):
            wk = w1[m, k, j]
            for i in range(n):
                pre[i] += xt[m, k, i] * wk
        s = zero
        for i in range(n):
            s += g[i] if pre[i] > zero else zero
        # relu(pre) = pre on the active points, so the readout's gradient sum_i g_i relu(pre_ij) is
        # b_j s + sum_k w_kj c_k, from the sums the first layer needs anyway.
        a = bj * s
        wj = w2[m, j]
        for k in range(d):
            c = zero
            for i in range(n):
                c += gx[k, i] if pre[i] > zero else zero
            a += w1[m, k, j] * c
            if train_first:
                w1[m, k, j] -= lr * wj * c
        if train_first:
            b1[m, j] = bj - lr * wj * s
        w2[m, j] = wj - lr * a


@numba.njit(fastmath=True, cache=CACHE)
def _forward_by_point(m, xt, w1, b1, w2, b2, out):  # pragma: no cover (compiled)
    """`_forward_by_unit` for 2-D inputs, four points at a time, each a loop over the units (contiguous in the
    weights): the weights are read once per four points and the sums stay in registers."""
    n, p = xt.shape[2], w1.shape[2]
    zero = np.float32(0.0)
    u, v = xt[m, 0], xt[m, 1]
    a0, a1, b, w = w1[m, 0], w1[m, 1], b1[m], w2[m]
    for i in range(0, n - n % 4, 4):
        # The points' coordinates as scalars: read once, not at every unit.
        u0, u1, u2, u3, v0, v1, v2, v3 = u[i], u[i + 1], u[i + 2], u[i + 3], v[i], v[i + 1], v[i + 2], v[i + 3]
        s0 = s1 = s2 = s3 = zero
        for j in range(p):
            s0 += w[j] * max(b[j] + u0 * a0[j] + v0 * a1[j], zero)
            s1 += w[j] * max(b[j] + u1 * a0[j] + v1 * a1[j], zero)
            s2 += w[j] * max(b[j] + u2 * a0[j] + v2 * a1[j], zero)
            s3 += w[j] * max(b[j] + u3 * a0[j] + v3 * a1[j], zero)
        out[i], out[i + 1], out[i + 2], out[i + 3] = s0, s1, s2, s3
    for i in range(n - n % 4, n):
        u0, v0 = u[i], v[i]
        s0 = zero
        for j in range(p):
            s0 += w[j] * max(b[j] + u0 * a0[j] + v0 * a1[j], zero)
        out[i] = s0
    for i in range(n):
        out[i] += b2[m]


@numba.njit(fastmath=True, cache=CACHE)
def _step_by_point(m, xt, w1, b1, w2, lr, train_first, g, gx, sums):  # pragma: no cover (compiled)
    """`_step_by_unit` for 2-D inputs: for every unit the sums over the active points (sums: (3, p) of work
    space), four points at a time, then the update."""
    n, p = xt.shape[2], w1.shape[2]
    zero = np.float32(0.0)
    u, v = xt[m, 0], xt[m, 1]
    a0, a1, b, w = w1[m, 0], w1[m, 1], b1[m], w2[m]
    s, c0, c1 = sums[0], sums[1], sums[2]
    for j in range(p):
        s[j] = c0[j] = c1[j] = zero
    for i in range(0, n - n % 4, 4):
        # Every value of the four points as a scalar: the stores into the sums could alias the arrays they come
        # from, so in the loop they would be read again at every unit, and the loop would not vectorize.
        u0, u1, u2, u3, v0, v1, v2, v3 = u[i], u[i + 1], u[i + 2], u[i + 3], v[i], v[i + 1], v[i + 2], v[i + 3]
        g0, g1, g2, g3 = g[i], g[i + 1], g[i + 2], g[i + 3]
        h0, h1, h2, h3 = gx[0, i], gx[0, i + 1], gx[0, i + 2], gx[0, i + 3]
        k0, k1, k2, k3 = gx[1, i], gx[1, i + 1], gx[1, i + 2], gx[1, i + 3]
        for j in range(p):
            on0 = b[j] + u0 * a0[j] + v0 * a1[j] > zero
            on1 = b[j] + u1 * a0[j] + v1 * a1[j] > zero
            on2 = b[j] + u2 * a0[j] + v2 * a1[j] > zero
            on3 = b[j] + u3 * a0[j] + v3 * a1[j] > zero
            s[j] += ((g0 if on0 else zero) + (g1 if on1 else zero)) + ((g2 if on2 else zero) + (g3 if on3 else zero))
            c0[j] += ((h0 if on0 else zero) + (h1 if on1 else zero)) + ((h2 if on2 else zero) + (h3 if on3 else zero))
            c1[j] += ((k0 if on0 else zero) + (k1 if on1 else zero)) + ((k2 if on2 else zero) + (k3 if on3 else zero))
    for i in range(n - n % 4, n):
        u0, v0, g0, h0, k0 = u[i], v[i], g[i], gx[0, i], gx[1, i]
        for j in range(p):
            on0 = b[j] + u0 * a0[j] + v0 * a1[j] > zero
            s[j] += g0 if on0 else zero
            c0[j] += h0 if on0 else zero
            c1[j] += k0 if on0 else zero
    for j in range(p):
        wj = w[j]
        a = b[j] * s[j] + a0[j] * c0[j] + a1[j] * c1[j]   # the readout's gradient, as in _step_by_unit
        if train_first:
            b[j] -= lr * wj * s[j]
            a0[j] -= lr * wj * c0[j]
            a1[j] -= lr * wj * c1[j]
        w[j] = wj - lr * a


@numba.njit(cache=CACHE)
def _non_finite(values):  # pragma: no cover (compiled)
    """Whether a float32 array holds an infinity or a NaN, read from the exponent bits: under fastmath a float
    comparison may assume every value finite and be folded away."""
    bits = values.view(np.int32)
    for i in range(len(bits)):
        if (bits[i] & 0x7F800000) == 0x7F800000:
            return True
    return False


@numba.njit(fastmath=True, cache=CACHE)
def _member_steps(m, xt, y, w1, b1, w2, b2, lrs, fit_target, freeze, train_first, logits, acc, fit, bad,
                  work):  # pragma: no cover (compiled)
    """Up to len(lrs) full-batch gradient steps of member m of a one-logit net (step t at lrs[t]), then a pass
    that reads the fit of the weights reached. Pass t (before step t) writes the logits to logits[t % 2, m] and
    the accuracy to acc[m]; fit[m] receives the first t >= 1 at which the accuracy reached fit_target (-1:
    never), and with `freeze` the member stops there, unstepped (`train` holds a fitted member). bad[m] receives
    the first t >= 1 at which a logit is not finite (-1: never), where the member stops, diverged. Returns the
    number of passes."""
    d, n, p = xt.shape[1], xt.shape[2], w1.shape[2]
    # 2-D inputs (the paper's) take the by-point loops: at every width measured (10 to 500) a step is faster
    # that way, up to 3x; other dimensions the by-unit loops.
    by_point = d == 2
    zero = np.float32(0.0)
    inv_n = np.float32(1.0) / np.float32(n)
    g, gx = work[0, :n], work[1:1 + d, :n]
    fit[m] = -1
    bad[m] = -1
    for t in range(len(lrs) + 1):
        out = logits[t % 2, m]
        if by_point:
            _forward_by_point(m, xt, w1, b1, w2, b2, out)
        else:
            _forward_by_unit(m, xt, w1, b1, w2, b2, out, work[1 + d, :n])
        if t > 0 and _non_finite(out):
            bad[m] = t
            return t + 1
        correct = 0
        for i in range(n):
            correct += (out[i] > zero) == (y[m, i] > np.float32(0.5))
        acc[m] = correct / n
        if t > 0 and fit[m] < 0 and acc[m] >= fit_target:
            fit[m] = t
            if freeze:
                return t + 1
        if t == len(lrs):
            return t + 1
        gb2 = zero
        for i in range(n):
            # exp's argument kept within float32's range: under fastmath an infinite exp gave NaN where the
            # sigmoid is 0 (and a sigmoid below e^-88 is a denormal, flushed to 0 here anyway).
            g[i] = (np.float32(1.0) / (np.float32(1.0) + np.exp(min(-out[i], np.float32(88.0)))) - y[m, i]) * inv_n
            gb2 += g[i]
        for k in range(d):
            for i in range(n):
                gx[k, i] = xt[m, k, i] * g[i]
        if by_point:
            _step_by_point(m, xt, w1, b1, w2, lrs[t], train_first, g, gx, work[1 + d:4 + d])
        else:
            _step_by_unit(m, xt, w1, b1, w2, lrs[t], train_first, g, gx, work[1 + d, :n])
        b2[m] -= lrs[t] * gb2
    return len(lrs) + 1


@numba.njit(parallel=True, fastmath=True, cache=CACHE)
def _fused_steps(xt, y, w1, b1, w2, b2, lrs, fit_target, freeze, train_first, logits, acc, fit, bad,
                 passes):  # pragma: no cover (compiled)
    """`_member_steps` for every member, the members in parallel, each on its own until its steps are done or it
    fits: no member waits for another between two events of the loop. passes[m]: its number of passes.
    Why by hand, compiled with numba: as tensor operations a step moves the n x p hidden layer through memory
    about eight times and returns to Python; here no n x p array is stored and the steps run without Python."""
    members, d, n = xt.shape
    work = np.empty((members, 4 + d, max(n, w1.shape[2])), np.float32)
    for m in numba.prange(members):
        passes[m] = _member_steps(m, xt, y, w1, b1, w2, b2, lrs, fit_target, freeze, train_first, logits, acc,
                                  fit, bad, work[m])


@numba.njit(parallel=True, cache=CACHE)
def _denormal_products(a, out):  # pragma: no cover (compiled)
    for m in numba.prange(out.shape[0]):
        out[m] = a[m] * a[m]


@functools.cache
def _pool_flushes() -> bool:
    """Whether numba's worker threads flush denormals to zero. Each keeps the flag it was created with (at the
    first parallel call in the process) while the calling thread has its own: mixed, a member's weights depended
    on which thread ran it and on what ran first (seen: a Ray worker and the local executor ended with equal
    accuracies and weights a few bits apart). Asked once, under flushing: the first parallel call, when it is this
    one, creates the threads flushing; where they were created otherwise, the fused kernel runs on the calling
    thread alone."""
    with runtime.flush_denormal(True):
        out = np.ones(64, np.float32)
        _denormal_products(np.full(64, 1e-20, np.float32), out)
        can_flush = runtime.flush_denormal_enabled()   # where the CPU cannot, no thread does: consistent
    return bool((out == 0).all()) or not can_flush


def _fused(params: list[Tensor], xt: Tensor, y: Tensor, lrs: list[float], fit_target: float, freeze: bool,
           readout_only: bool) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """`_fused_steps` on the members' tensors (updated in place), xt being x transposed to (members, d, n).
    Returns per member its passes, the pass at which it fitted (-1: none), the pass at which it diverged (-1:
    none), its accuracy at its last pass, and the logits (2, members, n) of the passes (pass t in [t % 2])."""
    members, _, n = xt.shape
    logits, acc = xt.new_empty(2, members, n), xt.new_empty(members)
    fit, bad, passes = (torch.empty(members, dtype=torch.int64) for _ in range(3))
    # The kernels take the biases and the readout flat, (members, p) and (members,), and the width padded with
    # zero units to a multiple of 8. Why: numba compiles a loop over a contiguous row into vector instructions
    # and over a strided one it does not (3x slower), and a width that is a multiple of the vector length spares
    # every loop a scalar remainder (10-15% a step). A zero unit is inert: no point activates it, so its
    # gradients are zero and it stays zero.
    w1, b1, w2, b2 = params
    width = w1.shape[2]
    pad = -width % 8
    flat = [w1, b1.reshape(members, width), w2.reshape(members, width), b2.reshape(members)]
    work = [F.pad(t, (0, pad)) for t in flat[:3]] + flat[3:] if pad else flat
    # Denormals flushed on every thread that runs a member (see _pool_flushes), else a member's weights depend on
    # which thread ran it. Flushing is what the width sweeps ran with anyway (paper_b.runs.cpu_settings).
    with runtime.flush_denormal(True):
        threads = numba.get_num_threads()
        if not _pool_flushes():
            numba.set_num_threads(1)
        try:
            _fused_steps(xt.numpy(), y.numpy(), *(t.numpy() for t in work), np.asarray(lrs, np.float32),
                         np.float32(fit_target), freeze, not readout_only, logits.numpy(), acc.numpy(),
                         fit.numpy(), bad.numpy(), passes.numpy())
        finally:
            numba.set_num_threads(threads)
    if pad:
        for t, w in zip(flat[:3], work[:3]):
            t.copy_(w[..., :width])
    return passes, fit, bad, acc, logits


def fused_ok(cfg: TrainConfig, x: Tensor, classes: int, batch: int) -> bool:
    """Whether the fused CPU step applies: one logit, full batch, plain gradient descent, on the CPU."""
    return (classes == 1 and batch >= x.shape[1] and x.device.type == "cpu" and not cfg.momentum
            and not cfg.weight_decay)


def _update(members: _Members, grads: list[Tensor | None], cfg: TrainConfig, lr: float, first: bool) -> None:
    """torch.optim.SGD's update: weight decay, then momentum, whose buffer starts at the first step's gradient."""
    for i, (p, g) in enumerate(zip(members.params, grads)):
        if g is None:
            continue
        if cfg.weight_decay:
            g.add_(p, alpha=cfg.weight_decay)   # g is the workspace's: free to overwrite
        if members.buffers is not None:
            buf = members.buffers[i]
            buf.copy_(g) if first else buf.mul_(cfg.momentum).add_(g)
            g = buf
        p.add_(g, alpha=-lr)


class _Book:
    """The end-of-epoch bookkeeping of `train` for members that leave the batch: who fitted when, each member's
    last loss and accuracy (a fitted member keeps those of its final weights), the history, the checkpoint."""

    def __init__(self, model: MLP, members: int, cfg: TrainConfig, gens: list[torch.Generator],
                 test: DataSet | None, checkpoint: Path | None, checkpoint_every: int, history_every: History):
        self.model, self.cfg, self.gens, self.test = model, cfg, gens, test
        self.checkpoint, self.checkpoint_every, self.history_every = checkpoint, checkpoint_every, history_every
        self.run = Run(fit_epoch=[None] * members, fit_step=[None] * members, diverge_epoch=[None] * members)
        self.done = torch.zeros(members, dtype=torch.bool)   # fitted, or diverged
        self.loss = torch.zeros(members)
        self.acc = torch.zeros(members)
        # in _Members' order: w1, b1, w2, b2
        self.buffers = ([torch.zeros_like(p.detach()) for p in (model.weights[0], model.biases[0], model.weights[1],
                                                                model.biases[1])] if cfg.momentum else None)
        state = read_checkpoint(checkpoint) if checkpoint else None
        if state is not None:
            model.load_state_dict(state["model"])
            for g, s in zip(gens, state["gens"]):
                g.set_state(s)
            self.run, self.done = Run.from_json(state["run"]), state["done"]
            if not self.run.diverge_epoch:   # a checkpoint written before divergence was recorded
                self.run.diverge_epoch = [None] * members
            self.loss, self.acc, self.buffers = state["loss"], state["acc"], state["buffers"]
        self.diverged = torch.tensor(self.run.diverged)
        if self.buffers is not None:
            self.buffers = [b.to(model.weights[0].device) for b in self.buffers]

    @property
    def finished(self) -> bool:
        """As in `train`: every member diverged, or (with until_fit) every member fitted or diverged."""
        return bool(self.diverged.all()) or (self.cfg.until_fit and bool(self.done.all()))

    def diverge(self, members: Tensor, epochs: list[int]) -> None:
        """Books members whose loss became non-finite at the end of these epochs: they stop there."""
        for m, epoch in zip(members.tolist(), epochs):
            self.run.diverge_epoch[m] = epoch
        self.diverged[members] = True
        self.done[members] = True

    def fitted(self, members: Tensor, epochs: list[int], steps: list[int], acc: Tensor, loss: Tensor) -> None:
        """Books members that reached the target at epochs that close nothing else: their fit epoch and step and,
        when they stop there (`until_fit`), the accuracy and loss of the weights they keep."""
        for m, epoch, step in zip(members.tolist(), epochs, steps):
            self.run.fit_epoch[m], self.run.fit_step[m] = epoch, step
        self.done[members] = True
        if self.cfg.until_fit:
            self.acc[members], self.loss[members] = acc, loss

    def next_stop(self, epoch: int) -> int:
        """The first epoch after `epoch` whose closing reads the weights (a record, a checkpoint, the last)."""
        h, every = self.history_every, self.checkpoint_every
        stops = [self.cfg.max_epochs, *(e for e in h if e > epoch)] if isinstance(h, frozenset) else [
            self.cfg.max_epochs, (epoch // h + 1) * h]
        if self.checkpoint is not None:
            stops.append((epoch // every + 1) * every)
        return min(stops)

    def close(self, epoch: int, members: _Members, acc: Tensor, loss: Callable[[], Tensor],
              now: Callable[[], Tensor], finite: Tensor) -> Tensor | None:
        """Closes epoch `epoch` given the active members' accuracy at its end and whether their logits there are
        `finite` (a member whose are not stops here, diverged); `loss` gives their mean loss during it, `now` their
        loss at its end, which a member that stops here keeps in later records (in `train` a fitted member is held
        at these weights, so every later epoch computes this loss). Both are called only when needed. Returns the
        mask of active members that stop here (empty when none), or None when training ends."""
        run, cfg = self.run, self.cfg
        run.epochs = epoch
        reached = acc >= cfg.fit_target
        bad = ~finite
        due = self.checkpoint is not None and epoch % self.checkpoint_every == 0
        if not (epoch == cfg.max_epochs or recorded(epoch, self.history_every) or due or self.finished
                or bool((reached | bad).any())):
            return _NOBODY   # the common step: nothing fitted or diverged, nothing to record
        active = members.active.cpu()
        bad = bad.cpu()
        self.loss[active], self.acc[active] = loss().cpu(), acc.cpu()
        if bool(bad.any()):
            self.diverge(active[bad], [epoch] * int(bad.sum()))
        # As in `train`: the first epoch at the target is recorded even without until_fit, which alone stops.
        fitted = reached.cpu() & ~self.done[active]
        for m in active[fitted].tolist():
            run.fit_epoch[m], run.fit_step[m] = epoch, run.steps
        self.done[active[fitted]] = True
        last = epoch == cfg.max_epochs or self.finished
        keep_record = recorded(epoch, self.history_every) or last
        if keep_record or due or last:
            members.scatter()
        if keep_record:
            self._record(epoch)
        held = (fitted | bad) if cfg.until_fit else bad   # later records show the loss of the weights they keep
        if bool(held.any()):
            self.loss[active[held]] = now().cpu()[held]
        if self.checkpoint and (due or last):
            save_checkpoint({"model": self.model.state_dict(), "gens": [g.get_state() for g in self.gens],
                             "run": run.to_json(), "done": self.done, "loss": self.loss, "acc": self.acc,
                             "buffers": [b.cpu() for b in self.buffers] if self.buffers is not None else None},
                            self.checkpoint)
        if last:
            return None
        stop = (fitted | bad) if cfg.until_fit else bad
        return stop.to(acc.device) if bool(stop.any()) else _NOBODY

    def _record(self, epoch: int) -> None:
        h, cfg = self.run.history, self.cfg
        h["epoch"].append(epoch)
        h["step"].append(self.run.steps)
        h["lr"].append(cfg.lr_at(epoch))
        h["loss"].append(self.loss.tolist())
        h["train_acc"].append(self.acc.tolist())
        last = epoch == cfg.max_epochs or self.finished
        h["test_acc"].append(accuracy(self.model, *self.test).tolist()
                             if self.test is not None and (epoch % cfg.eval_every == 0 or last) else None)


def _leave(members: _Members, book: _Book, stop: Tensor, tensors: list[Tensor]) -> list[Tensor]:
    """Members that fitted leave the batch: their weights go back to the model, the rest are gathered anew."""
    members.scatter()
    keep = ~stop
    members.gather(members.active[keep])
    return [t[keep] for t in tensors]


def train_mlp(model: MLP, train_set: DataSet, cfg: TrainConfig, seeds: Sequence[int], *,
              test_set: DataSet | None = None, readout_only: bool = False,
              checkpoint: str | Path | None = None, checkpoint_every: int = 1, history_every: History = 1,
              device: torch.device | None = None) -> Run:
    """`train(model, train_set, cfg, seeds, ...)` for a one-hidden-layer `MLP` (see `supports`), trained in place.
    `readout_only` trains the last layer alone (as `train` with `params=model.readout()`)."""
    if not supports(model, cfg):
        raise ValueError("train_mlp takes one-hidden-layer MLPs without patience; use train")
    device = device or default_device()
    members = len(seeds)
    if model.members != members:
        raise ValueError(f"{members} seeds given for a model of {model.members} members")
    model.to(device)
    x, y = train_set
    if x.shape[0] not in (1, members) or y.shape[:2] != x.shape[:2]:
        raise ValueError(f"data of shape {tuple(x.shape)}, {tuple(y.shape)} does not fit {members} members")
    x = x.to(device).flatten(2).expand(members, -1, -1)
    y = y.to(device).expand(members, -1)
    test = None
    if test_set is not None:
        test = (test_set[0].to(device).expand(members, *test_set[0].shape[1:]),
                test_set[1].to(device).expand(members, -1))
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    book = _Book(model, members, cfg, gens, test, Path(checkpoint) if checkpoint else None, checkpoint_every,
                 history_every)
    run = book.run
    # The members still training: a fitted one trains on without until_fit (a resumed run once left it out).
    active = (~(book.done if cfg.until_fit else book.diverged)).nonzero().flatten().to(device)
    if book.finished or run.epochs >= cfg.max_epochs:
        return run
    group = _Members(model, active, book.buffers)
    xa, ya = x[active], y[active]
    n = x.shape[1]
    batch = cfg.batch_size or n
    with torch.no_grad():
        if fused_ok(cfg, xa, model.sizes[-1], batch):
            return _fused_full_batch(group, book, xa, ya, readout_only)
        ws = _Workspace(group.params, n)   # n rows: the full-batch step and every epoch's fit check
        if batch >= n:
            return _full_batch(group, book, xa, ya, ws, readout_only)
        return _minibatch(group, book, xa, ya, batch, ws, readout_only)


def _full_batch(group: _Members, book: _Book, x: Tensor, y: Tensor, ws: _Workspace, readout_only: bool) -> Run:
    """Gradient descent on the whole training set. Each step's forward pass also tells how the weights before the
    step classify the training set, so epoch e is closed in epoch e + 1's step, as `train` does."""
    run, cfg = book.run, book.cfg
    loss = None   # the mean loss of the last epoch not yet closed (from its step's forward pass), when asked
    for epoch in range(run.epochs + 1, cfg.max_epochs + 1):
        h, out = _forward(group.params, x, ws)
        if loss is not None:
            stop = book.close(epoch - 1, group, _correct(out, y), loss, functools.partial(loss_per_member, out, y),
                              _finite(out))
            if stop is None:
                return run
            if bool(stop.any()):
                x, y, h, out = _leave(group, book, stop, [x, y, h, out])
        loss = functools.partial(loss_per_member, out, y)
        _update(group, _gradients(group.params, x, y, h, out, ws, readout_only), cfg, cfg.lr_at(epoch),
                run.steps == 0)
        run.steps += 1
    if run.epochs < cfg.max_epochs:   # the last epoch, closed by a pass of its own
        _, out = _forward(group.params, x, ws)
        book.close(run.epochs + 1, group, _correct(out, y), loss, functools.partial(loss_per_member, out, y),
                   _finite(out))
    group.scatter()
    return run


def _fused_full_batch(group: _Members, book: _Book, x: Tensor, y: Tensor, readout_only: bool) -> Run:
    """`_full_batch` with the fused steps. A call runs every member from the last closed epoch to the next one
    whose closing records or checkpoints the weights, each member on its own; one that fits on the way stops there
    (with `until_fit`) and its fit is booked at its own epoch, as `train` books it. No other event falls between
    two such epochs, so they close silently."""
    run, cfg = book.run, book.cfg
    xt, yf = x.transpose(1, 2).contiguous(), y.float()
    while True:
        start, steps = run.epochs, run.steps
        stop_at = book.next_stop(start)
        passes, fit, bad, acc, logits = _fused(group.params, xt, yf,
                                               [cfg.lr_at(e) for e in range(start + 1, stop_at + 1)],
                                               cfg.fit_target, cfg.until_fit, readout_only)
        rows = torch.arange(len(passes))
        now, during = logits[(passes - 1) % 2, rows], logits[passes % 2, rows]   # its last pass, the one before
        fitted = (fit > 0) & ~book.done[group.active]
        diverged = bad > 0
        ends, div_ends = start + fit, start + bad
        end = stop_at
        stopped = diverged | fitted if cfg.until_fit else diverged
        if bool(stopped.all()):   # all stopped: training ends at the last of them
            end = int(torch.where(diverged, div_ends, ends).max())
        early = fitted & (ends < end)
        if bool(early.any()):
            book.fitted(group.active[early], ends[early].tolist(), (steps + fit[early]).tolist(), acc[early],
                        loss_per_member(now[early].unsqueeze(-1), y[early]))
        if bool(diverged.any()):   # as `train` books them: the accuracy and loss of the weights that diverged
            book.diverge(group.active[diverged], div_ends[diverged].tolist())
            book.acc[group.active[diverged]] = _correct(now[diverged].unsqueeze(-1), y[diverged])
            book.loss[group.active[diverged]] = loss_per_member(now[diverged].unsqueeze(-1), y[diverged])
        leaving = diverged | (early if cfg.until_fit else torch.zeros_like(early))
        if bool(leaving.any()):
            xt, y, yf, now, during, acc = _leave(group, book, leaving, [xt, y, yf, now, during, acc])
        run.steps = steps + end - start
        stop = book.close(end, group, acc, functools.partial(loss_per_member, during.unsqueeze(-1), y),
                          functools.partial(loss_per_member, now.unsqueeze(-1), y),
                          torch.ones_like(acc, dtype=torch.bool))   # the kernel stopped those that diverged
        if stop is None:
            return run
        if bool(stop.any()):
            xt, y, yf = _leave(group, book, stop, [xt, y, yf])


def _minibatch(group: _Members, book: _Book, x: Tensor, y: Tensor, batch: int, ws: _Workspace,
               readout_only: bool) -> Run:
    """Minibatch SGD, each member's batches in the order its own generator draws, as `train` does; the fit is
    checked by a pass over the training set at the end of each epoch."""
    run, cfg = book.run, book.cfg
    n = x.shape[1]
    for epoch in range(run.epochs + 1, cfg.max_epochs + 1):
        lr = cfg.lr_at(epoch)
        # Every member's generator draws its order each epoch, as in `train`, fitted members' too.
        orders = torch.stack([torch.randperm(n, generator=g) for g in book.gens])
        order = orders[group.active.cpu()].to(x.device)
        rows = torch.arange(len(order), device=x.device)[:, None]
        total = torch.zeros(len(order), device=x.device)
        for start in range(0, n, batch):
            idx = order[:, start:start + batch]
            xb, yb = x[rows, idx], y[rows, idx]
            h, out = _forward(group.params, xb, ws)
            losses = loss_per_member(out, yb)
            _update(group, _gradients(group.params, xb, yb, h, out, ws, readout_only), cfg, lr, run.steps == 0)
            total += losses * idx.shape[1]
            run.steps += 1
        _, out = _forward(group.params, x, ws)
        stop = book.close(epoch, group, _correct(out, y), lambda: total / n, functools.partial(loss_per_member, out, y),
                          _finite(out))
        if stop is None:
            return run
        if bool(stop.any()):
            x, y = _leave(group, book, stop, [x, y])
    group.scatter()
    return run
