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

import torch
import torch.nn.functional as F

from badminima.core import fused
from badminima.core.metrics import predict
from badminima.core.models import MLP
from badminima.core.train import (DataSet, History, Ledger, Run, TrainConfig, default_device, loss_per_member,
                                  read_checkpoint, recorded, save_checkpoint)

Tensor = torch.Tensor
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


class _Book(Ledger):
    """`train`'s bookkeeping (the Ledger) for members that leave the batch: also each member's last loss and
    accuracy (a fitted member keeps those of its final weights, as `train` holds it at them), the momentum buffers,
    and the checkpoint."""

    def __init__(self, model: MLP, members: int, cfg: TrainConfig, gens: list[torch.Generator],
                 test: DataSet | None, checkpoint: Path | None, checkpoint_every: int, history_every: History):
        super().__init__(model, cfg, gens, test, history_every, torch.device("cpu"))
        self.checkpoint, self.checkpoint_every = checkpoint, checkpoint_every
        self.loss = torch.zeros(members)
        self.acc = torch.zeros(members)
        # in _Members' order: w1, b1, w2, b2
        self.buffers = ([torch.zeros_like(p.detach()) for p in (model.weights[0], model.biases[0], model.weights[1],
                                                                model.biases[1])] if cfg.momentum else None)
        state = read_checkpoint(checkpoint) if checkpoint else None
        if state is not None:
            model.load_state_dict(state["model"])
            self.resume(state)
            self.loss, self.acc, self.buffers = state["loss"], state["acc"], state["buffers"]
        if self.buffers is not None:
            self.buffers = [b.to(model.weights[0].device) for b in self.buffers]

    def fitted(self, members: Tensor, epochs: list[int], steps: list[int], acc: Tensor, loss: Tensor) -> None:
        """Books members that reached the target at epochs that close nothing else: their fit epoch and step and,
        when they stop there (`until_fit`), the accuracy and loss of the weights they keep."""
        self.mark_fitted(members.tolist(), epochs, steps)
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
            self.mark_diverged(active[bad].tolist(), [epoch] * int(bad.sum()))
        # As in `train`: the first epoch at the target is recorded even without until_fit, which alone stops.
        fitted = reached.cpu() & ~self.done[active]
        newly = active[fitted].tolist()
        self.mark_fitted(newly, [epoch] * len(newly), [run.steps] * len(newly))
        last = epoch == cfg.max_epochs or self.finished
        keep_record = recorded(epoch, self.history_every) or last
        if keep_record or due or last:
            members.scatter()
        if keep_record:
            self.record(epoch, self.loss.tolist(), self.acc.tolist(), last)
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
        if fused.applies(cfg, xa, model.sizes[-1], batch):
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
        passes, fit, bad, acc, logits = fused.steps(group.params, xt, yf,
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
            book.mark_diverged(group.active[diverged].tolist(), div_ends[diverged].tolist())
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
