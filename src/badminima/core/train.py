"""THE training loop. Every experiment in the book is a configuration of `train`: plain or momentum SGD with l2,
minibatches or full batch, a step schedule, optional batch-wise augmentation, stopping at a perfect fit or a cap,
per-member stopping for batched ensembles (a member whose loss becomes non-finite stops there, as diverged), and
resumable checkpoints."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from badminima.core import layout
from badminima.core.config import check_range
from badminima.core.metrics import accuracy, predict

Tensor = torch.Tensor
log = logging.getLogger(__name__)
DataSet = tuple[Tensor, Tensor]  # x: (1 or members, n, ...), y: (1 or members, n)


@dataclass(frozen=True)
class TrainConfig:
    lr: float = 0.01
    batch_size: int | None = None      # None: full-batch gradient descent
    momentum: float = 0.0
    weight_decay: float = 0.0
    max_epochs: int = 1000
    until_fit: bool = True             # stop (member by member) once the fit set is classified correctly
    fit_target: float = 1.0            # the accuracy that counts as fitted (the authors' code uses 0.9999)
    patience: int | None = None        # also stop when the best fit accuracy has not improved for this many epochs
    lr_drops: tuple[int, ...] = ()     # after each of these epochs the learning rate is divided by 10
    eval_every: int = 1                # test accuracy is recorded every this many epochs, and at the end

    def __post_init__(self) -> None:
        check_range("lr", self.lr, 0)
        check_range("momentum", self.momentum, 0, 1)
        check_range("weight_decay", self.weight_decay, 0)
        check_range("max_epochs", self.max_epochs, 1, integer=True)
        check_range("eval_every", self.eval_every, 1, integer=True)
        check_range("fit_target", self.fit_target, 0, 1)
        if self.patience is not None:
            check_range("patience", self.patience, 1, integer=True)
        if self.batch_size is not None:
            check_range("batch_size", self.batch_size, 1, integer=True)

    def lr_at(self, epoch: int) -> float:
        return self.lr * 0.1 ** sum(epoch > d for d in self.lr_drops)


@dataclass
class Run:
    """What a training run did. Lists indexed by member hold one value per ensemble member."""
    history: dict[str, list] = field(default_factory=lambda: {
        "epoch": [], "step": [], "lr": [], "loss": [], "train_acc": [], "test_acc": []})
    fit_epoch: list[int | None] = field(default_factory=list)
    fit_step: list[int | None] = field(default_factory=list)
    epochs: int = 0
    steps: int = 0
    # Per member: the epoch at whose end its weights gave a non-finite loss (None: never). Empty in runs stored
    # before divergence was recorded, and left out of `as_dict` while no member diverged, so those keep their bytes.
    diverge_epoch: list[int | None] = field(default_factory=list)

    @property
    def diverged(self) -> list[bool]:
        return [e is not None for e in self.diverge_epoch] or [False] * len(self.fit_epoch)

    @property
    def fitted(self) -> list[bool]:
        """Members that reached the fit target and never diverged."""
        return [e is not None and not d for e, d in zip(self.fit_epoch, self.diverged)]

    @property
    def best_train_acc(self) -> list[float]:
        """Each member's highest fit-set accuracy over the recorded epochs (Algorithm 1 reports it when 100% is not
        reached)."""
        return [max(col) for col in zip(*self.history["train_acc"])] if self.history["train_acc"] else []

    def stalled(self, patience: int) -> bool:
        """No member improved its best fit accuracy during the last `patience` epochs."""
        accs = self.history["train_acc"]
        if len(accs) <= patience:
            return False
        before = [max(col) for col in zip(*accs[:-patience])]
        return all(max(col) <= b for col, b in zip(zip(*accs[-patience:]), before))

    @property
    def cap_hit(self) -> bool:
        """True when some member stopped at max_epochs without fitting its training set (and without diverging)."""
        return any(not f and not d for f, d in zip(self.fitted, self.diverged))

    def as_dict(self) -> dict:
        """A plain dict of the run, sharing its lists (no deep copy: a million-step history is large)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "diverge_epoch" or any(self.diverged)}

    @classmethod
    def from_dict(cls, d: dict) -> "Run":
        return cls(**d)

    def to_json(self) -> str:
        """The run as JSON, for checkpoints: pickling the history's nested lists object by object (as torch.save
        does) takes seconds once they hold thousands of entries; JSON text is written in one piece."""
        return json.dumps(self.as_dict())

    @classmethod
    def from_json(cls, text: str) -> "Run":
        return cls.from_dict(json.loads(text))


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


History = int | frozenset   # which epochs a run's history keeps: every k-th, or these (and the last, always)


def recorded(epoch: int, history: History) -> bool:
    """Whether the history keeps `epoch` (the last epoch is kept in any case)."""
    return epoch in history if isinstance(history, frozenset) else epoch % history == 0


def loss_per_member(logits: Tensor, y: Tensor) -> Tensor:
    """Mean loss of each member over its batch: logistic loss for one logit, cross-entropy otherwise."""
    if logits.shape[-1] == 1:
        return F.binary_cross_entropy_with_logits(logits[..., 0], y.float(), reduction="none").mean(1)
    return F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(1)


def _expand(data: DataSet, members: int, device: torch.device) -> DataSet:
    x, y = data
    if x.shape[0] not in (1, members) or y.shape[:2] != x.shape[:2]:
        raise ValueError(f"data of shape {tuple(x.shape)}, {tuple(y.shape)} does not fit {members} members")
    x, y = x.to(device), y.to(device)
    return x.expand(members, *x.shape[1:]), y.expand(members, *y.shape[1:])


def _differs_in_eval(model: nn.Module) -> bool:
    return any(isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.Dropout)) for m in model.modules())


def save_checkpoint(state: dict, path: Path) -> None:
    """Write a checkpoint durably, keeping the previous one (at `previous(path)`) until the new one is in place, so
    a crash at any moment leaves at least one whole checkpoint to resume from."""
    tmp = path.with_name(path.name + ".tmp")
    layout.write_durably(tmp, lambda f: torch.save(state, f))
    if path.exists():
        os.replace(path, previous(path))
    os.replace(tmp, path)


def previous(path: Path) -> Path:
    """Where the checkpoint before the newest is kept: a name ending as the checkpoint's does, so the store
    clears it with the checkpoints when the run is stored."""
    return path.with_suffix(".prev" + path.suffix)


def read_checkpoint(path: Path) -> dict | None:
    """The newest checkpoint at `path` that loads (or its previous one), None when there is none. One that does
    not load (truncated, say) gets a warning line and is moved aside, so the run resumes from the previous one or
    starts over instead of failing on every rerun."""
    for candidate in (path, previous(path)):
        if not candidate.exists():
            continue
        try:
            # Loaded on the CPU: a checkpoint written on a GPU resumes where there is none (the generators' states
            # must be CPU tensors anyway); load_state_dict moves the rest onto the model's device.
            state = torch.load(candidate, weights_only=False, map_location="cpu")
            if not isinstance(state, dict):
                raise TypeError(f"it holds a {type(state).__name__}, not a dict")
            return state
        except Exception as err:   # any damage: a truncated zip, a wrong pickle, a file of another kind
            aside = candidate.with_suffix(".unreadable" + candidate.suffix)
            os.replace(candidate, aside)
            then = "trying the previous one" if candidate == path and previous(path).exists() else "starting over"
            log.warning("badminima: checkpoint %s is unreadable (%s: %s); moved to %s, %s", candidate,
                        type(err).__name__, " ".join(str(err).split()).split(". ")[0][:120], aside.name, then)
    return None


class Ledger:
    """Per member, what both loops book at the end of an epoch (`train`'s and its fast path's, core/fastmlp.py): who
    fitted and who diverged at which epoch and step, the history, and whether training is over; and the part of a
    checkpoint they share (the generators' states, the run, who is done). Defined once so that the fast path books
    a run exactly as `train` does."""

    def __init__(self, model: nn.Module, cfg: TrainConfig, gens: list[torch.Generator], test: DataSet | None,
                 history_every: History, device: torch.device):
        self.model, self.cfg, self.gens, self.test, self.history_every = model, cfg, gens, test, history_every
        members = len(gens)
        self.run = Run(fit_epoch=[None] * members, fit_step=[None] * members, diverge_epoch=[None] * members)
        self.done = torch.zeros(members, dtype=torch.bool, device=device)   # fitted or diverged
        self.diverged = torch.zeros(members, dtype=torch.bool, device=device)

    def resume(self, state: dict) -> None:
        for g, s in zip(self.gens, state["gens"]):
            g.set_state(s)
        self.run = Run.from_json(state["run"])
        if not self.run.diverge_epoch:   # a checkpoint written before divergence was recorded
            self.run.diverge_epoch = [None] * len(self.gens)
        self.done = state["done"].to(self.done.device)
        self.diverged = torch.tensor(self.run.diverged, device=self.done.device)

    @property
    def finished(self) -> bool:
        """Every member diverged, or (with until_fit) every member fitted or diverged."""
        return bool(self.diverged.all()) or (self.cfg.until_fit and bool(self.done.all()))

    def mark_diverged(self, members: list[int], epochs: list[int]) -> None:
        """Members whose loss became non-finite at the end of these epochs: they stop there."""
        for m, epoch in zip(members, epochs):
            self.run.diverge_epoch[m] = epoch
        self.diverged[members] = True
        self.done[members] = True

    def mark_fitted(self, members: list[int], epochs: list[int], steps: list[int]) -> None:
        """Members that reached the fit target at the end of these epochs, after these steps."""
        for m, epoch, step in zip(members, epochs, steps):
            self.run.fit_epoch[m], self.run.fit_step[m] = epoch, step
        self.done[members] = True

    def record(self, epoch: int, loss: list[float], acc: list[float], last: bool) -> None:
        """The history's entry for epoch `epoch` (the model holds the weights it ended with); test accuracy every
        eval_every epochs and at the last."""
        h, cfg = self.run.history, self.cfg
        h["epoch"].append(epoch)
        h["step"].append(self.run.steps)
        h["lr"].append(cfg.lr_at(epoch))
        h["loss"].append(loss)
        h["train_acc"].append(acc)
        h["test_acc"].append(accuracy(self.model, *self.test).tolist()
                             if self.test is not None and (epoch % cfg.eval_every == 0 or last) else None)


class _Epochs(Ledger):
    """`train`'s end of each epoch: the Ledger, members that fitted held at their weights, the progress bar, the
    checkpoint, and whether to stop."""

    def __init__(self, model: nn.Module, opt: torch.optim.Optimizer, params: list[nn.Parameter], cfg: TrainConfig,
                 gens: list[torch.Generator], test: DataSet | None, checkpoint: Path | None, checkpoint_every: int,
                 history_every: History, device: torch.device):
        super().__init__(model, cfg, gens, test, history_every, device)
        self.opt, self.checkpoint, self.checkpoint_every = opt, checkpoint, checkpoint_every
        members = len(gens)
        # Members that fitted are put back to their weights at that moment after every later step, so a batched
        # member stops where it would have stopped alone; with them the buffers that hold one row per member (a
        # packed network's batch-norm statistics), which a forward pass in training mode moves.
        self.held = params + [b for b in model.buffers() if b.dim() and b.shape[0] == members] if members > 1 else []
        self.frozen = [t.detach().clone() for t in self.held] if cfg.until_fit else []
        state = read_checkpoint(checkpoint) if checkpoint else None
        if state is not None:
            self.model.load_state_dict(state["model"])
            self.opt.load_state_dict(state["opt"])
            self.resume(state)
            self.frozen = [f.to(device) for f in state["frozen"]]

    def diverge(self, epoch: int, finite: Tensor) -> None:
        """Members whose loss is not `finite` stop at `epoch` as diverged, held (when members are held) at the
        weights that gave it."""
        bad = ~finite.to(self.done.device) & ~self.diverged
        if not bool(bad.any()):
            return
        members = bad.nonzero().flatten().tolist()
        if self.frozen:
            with torch.no_grad():
                for p, f in zip(self.held, self.frozen):
                    f[bad] = p[bad]
        self.mark_diverged(members, [epoch] * len(members))

    def hold_fitted(self) -> None:
        if self.frozen and bool(self.done.any()):
            with torch.no_grad():
                for p, f in zip(self.held, self.frozen):
                    p.copy_(torch.where(self.done.view(-1, *[1] * (p.dim() - 1)), f, p))

    def _show(self, loss: Tensor, fit_acc: Tensor, bar: tqdm) -> None:
        shown = {"loss": f"{float(loss.mean()):.3g}", "train": f"{float(fit_acc.mean()):.4f}"}
        tested = self.run.history["test_acc"][-1]
        if tested is not None:
            shown["test"] = f"{sum(tested) / len(self.gens):.4f}"
        bar.set_postfix(shown)

    def close(self, epoch: int, loss: Tensor, fit_acc: Tensor, finite: Tensor, bar: tqdm) -> bool:
        """Records epoch `epoch` (the model holds the weights it ended with; `finite`: whether each member's loss
        on the fit set is finite there); True when training should stop."""
        run, cfg = self.run, self.cfg
        run.epochs = epoch
        self.diverge(epoch, finite)
        newly = (fit_acc.to(self.done.device) >= cfg.fit_target) & ~self.done
        if self.frozen and bool(newly.any()):
            with torch.no_grad():
                for p, f in zip(self.held, self.frozen):
                    f[newly] = p[newly]
        members = newly.nonzero().flatten().tolist()
        self.mark_fitted(members, [epoch] * len(members), [run.steps] * len(members))
        stalled = cfg.patience is not None and run.stalled(cfg.patience)
        last = epoch == cfg.max_epochs or self.finished or stalled
        if recorded(epoch, self.history_every) or last:
            self.record(epoch, loss.cpu().tolist(), fit_acc.cpu().tolist(), last)
            if not bar.disable:
                self._show(loss, fit_acc, bar)
        if self.checkpoint and (epoch % self.checkpoint_every == 0 or last):
            save_checkpoint({"model": self.model.state_dict(), "opt": self.opt.state_dict(),
                             "gens": [g.get_state() for g in self.gens], "run": run.to_json(),
                             "done": self.done.cpu(), "frozen": [f.cpu() for f in self.frozen]}, self.checkpoint)
        return self.finished or stalled


def train(model: nn.Module, train_set: DataSet, cfg: TrainConfig, seeds: Sequence[int], *,
          fit_set: DataSet | None = None, test_set: DataSet | None = None,
          params: Sequence[nn.Parameter] | None = None,
          augment: Callable[[Tensor, torch.Generator], Tensor] | None = None,
          checkpoint: str | Path | None = None, checkpoint_every: int = 1, history_every: History = 1,
          device: torch.device | None = None, progress: bool = False, amp: bool = True) -> Run:
    """Train `model` (members, batch, ...) -> logits in place and return what happened.

    `seeds` (one per member) fix each member's batch order and augmentation, so member m follows the same
    trajectory whether trained alone or in a batch. `fit_set` (default: the training set) is the set on which
    100% accuracy ends training. `params` restricts training to some parameters (the rest stay frozen).
    A `checkpoint` file is written every `checkpoint_every` epochs and resumed from when present. The history
    keeps every `history_every`-th epoch (a frozenset: those epochs) and the last (a run of a million steps need not
    keep a million entries).
    On CUDA the forward pass runs under bf16 autocast unless `amp` is False (on CPU everything is float32)."""
    device = device or default_device()
    members = len(seeds)
    if getattr(model, "members", 1) != members:
        raise ValueError(f"{members} seeds given for a model of {model.members} members")
    if history_every != 1 and cfg.patience is not None:
        raise ValueError("patience reads every epoch's accuracy from the history: it needs history_every=1")
    model.to(device).train()
    x, y = _expand(train_set, members, device)
    fit_x, fit_y = _expand(fit_set, members, device) if fit_set is not None else (x, y)
    test = _expand(test_set, members, device) if test_set is not None else None
    params = list(params) if params is not None else [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    n = x.shape[1]
    batch = cfg.batch_size or n
    autocast = amp and device.type == "cuda"
    # Full-batch gradient descent on the fit set: each step's forward pass also tells how the weights before the
    # step classify the fit set, so epoch e is closed during epoch e + 1's step instead of by a pass of its own.
    shared_pass = (batch >= n and fit_set is None and augment is None and not autocast
                   and not _differs_in_eval(model))
    rows = torch.arange(members, device=device)[:, None]
    epochs = _Epochs(model, opt, params, cfg, gens, test, Path(checkpoint) if checkpoint else None,
                     checkpoint_every, history_every, device)
    run = epochs.run
    loss = torch.zeros(members, device=device)   # the mean loss of the last epoch not yet closed

    # Closed on the way out of an exception too, so it never redraws after a command's last line.
    with tqdm(range(run.epochs + 1, cfg.max_epochs + 1), disable=not progress, desc="train", leave=False) as bar:
        for epoch in bar:
            if epochs.finished:
                break
            for group in opt.param_groups:
                group["lr"] = cfg.lr_at(epoch)
            if batch >= n:
                order = torch.arange(n, device=device).expand(members, n)
            else:
                order = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(device)
            total = torch.zeros(members, device=device)
            for start in range(0, n, batch):
                idx = order[:, start:start + batch]
                xb, yb = (x, y) if batch >= n else (x[rows, idx], y[rows, idx])
                if augment is not None:  # each member's draws come from its own generator, as when it trains alone
                    xb = torch.cat([augment(xb[m:m + 1], g) for m, g in enumerate(gens)]) if members > 1 else \
                        augment(xb, gens[0])
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                    logits = model(xb).float()
                losses = loss_per_member(logits, yb)
                finite = torch.isfinite(losses.detach())
                if shared_pass and epoch - 1 > run.epochs and epochs.close(
                        epoch - 1, loss, (predict(logits.detach()) == yb).float().mean(1), finite, bar):
                    return run
                if not shared_pass and not bool(finite.all()):   # stop at once once every member has diverged
                    epochs.diverge(epoch, finite)
                    if epochs.finished:
                        epochs.close(epoch, losses.detach(), *fit_pass(model, fit_x, fit_y), bar)
                        return run
                opt.zero_grad(set_to_none=True)
                losses.sum().backward()
                opt.step()
                epochs.hold_fitted()
                total += losses.detach() * idx.shape[1]
                run.steps += 1
            loss = total / n
            if not shared_pass and epochs.close(epoch, loss, *fit_pass(model, fit_x, fit_y), bar):
                return run
        if shared_pass and run.epochs < cfg.max_epochs and not epochs.finished:
            epochs.close(run.epochs + 1, loss, *fit_pass(model, fit_x, fit_y), bar)
        return run


@torch.no_grad()
def fit_pass(model: nn.Module, x: Tensor, y: Tensor, chunk: int = 500) -> tuple[Tensor, Tensor]:
    """Each member's accuracy on (x, y) (as metrics.accuracy measures it: eval mode, in chunks) and whether its
    loss there is finite."""
    was_training = model.training
    model.eval()
    correct, finite = 0, torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
    for i in range(0, x.shape[1], chunk):
        logits = model(x[:, i:i + chunk]).float()
        correct = correct + (predict(logits) == y[:, i:i + chunk]).sum(1)
        finite &= torch.isfinite(loss_per_member(logits, y[:, i:i + chunk]))
    model.train(was_training)
    return correct.float().cpu() / x.shape[1], finite
