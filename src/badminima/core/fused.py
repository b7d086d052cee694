"""The fast path's fused CPU step (core/fastmlp.py): full-batch gradient descent on one-logit nets, each member a
compiled loop that steps until it fits, diverges or reaches the next epoch that must be closed, the members in
parallel. Apart from fastmlp's tensor step engines because it is its own engine, compiled with numba and pinned
to one summation order, with the rules (denormals, threads) that keep its results the same in every process."""
from __future__ import annotations

import functools

import numba
import numpy as np
import torch
import torch.nn.functional as F

from badminima.core import runtime
from badminima.core.train import TrainConfig

Tensor = torch.Tensor
# Every process compiles the kernels itself (about 5 s): under fastmath the object code numba caches on disk and the
# code it compiles in the process sum in different orders (measured: a process that loaded the cache and one that
# compiled ended 1e-7 apart in the weights), and the book's processes (chapters, workers) must agree bit for bit.
CACHE = False


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


def steps(params: list[Tensor], xt: Tensor, y: Tensor, lrs: list[float], fit_target: float, freeze: bool,
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


def applies(cfg: TrainConfig, x: Tensor, classes: int, batch: int) -> bool:
    """Whether the fused CPU step applies: one logit, full batch, plain gradient descent, on the CPU."""
    return (classes == 1 and batch >= x.shape[1] and x.device.type == "cpu" and not cfg.momentum
            and not cfg.weight_decay)
