"""Paper B's runs (Ravichandran et al. 2023): one-hidden-layer ReLU networks N_p over a sweep of widths p, trained
in the paper's Experiments 1-3 and its norm hypothesis, and beyond the paper with phase 1 cut short (budgets) or
its weights repaired.

Three groups of runs per (data set, width), each one batched MLP through the one training loop and one stored
result: "start" (Exp 1 and Exp 2's phase 1 on random labels, from the same random init), "retrain" (Exp 2's
phase 2 from the phase-1 weights, and the random init rescaled to their norm, both on the true labels) and
"readout" (Exp 3: phase-1 first layer frozen, readout reset to zero and trained alone). This module alone trains
and stores them; the chapters' tables (experiments.py) and decision boundaries (boundaries.py) read them here."""
from __future__ import annotations

import contextlib
import dataclasses
import functools
from typing import Iterator

import torch

from badminima.core.data.labels import random_labels
from badminima.core.config import check_range
from badminima.core.metrics import accuracy
from badminima.core.models import MLP
from badminima.core import fastmlp, runtime
from badminima.core.jobs import Job
from badminima.core.repairs import FRESH_SEED, Repair, repaired
from badminima.paper_b import protocol
from badminima.paper_b.datasets import Problem, problem_of, widths_of
from badminima.core.store import Store, Stored
from badminima.core.train import default_device

Tensor = torch.Tensor

# experiment -> (group, block): its runs are members block*k .. block*k + k-1 of that group's model (k seeds).
MEMBERS = {"Exp 1": ("start", 0), "Exp 2": ("retrain", 0), "Exp 3": ("readout", 0), "Norm": ("retrain", 1)}
RANDOM_LABEL_SEED = 10_000   # seed s draws its random labels from RANDOM_LABEL_SEED + s
CURVE_POINTS = 60            # each run's training history (its stored curve): about this many log-spaced epochs
CHECKPOINTS = 20             # a long run writes about this many checkpoints (each a pass and a write)


def per_member(t: Tensor, copies: int, members: int) -> Tensor:
    """(members or 1, ...) -> (copies * members, ...): one slice per member of each copy."""
    return t.expand(members, *t.shape[1:]).repeat(copies, *[1] * (t.dim() - 1))


def _start_key(problem: Problem, width: int) -> dict:
    return {"group": "start", **problem.key, "width": width, "seeds": problem.seeds, "train": problem.train,
            "curve_points": CURVE_POINTS}


def _after_start(group: str, start: dict) -> dict:
    return {"group": group, "start": start}


def _budget_key(problem: Problem, width: int, budget: int) -> dict:
    short = dataclasses.replace(problem, train=dataclasses.replace(problem.train, max_epochs=budget))
    return {**_start_key(short, width), "group": "phase 1"}


def problem_results(problem: Problem, width: int) -> tuple[tuple[str, dict], ...]:
    """The stored results of run_problem, as Job outputs."""
    start = _start_key(problem, width)
    return tuple(("widths", k) for k in (start, _after_start("retrain", start), _after_start("readout", start)))


def width_jobs(cfg: protocol.WidthsConfig, widths: tuple[int, ...] | None = None) -> list[Job]:
    """A sweep's work (or that of `widths` on every data set): one job per data set and width, its three groups
    trained in turn."""
    jobs = []
    for dataset in cfg.datasets:
        problem = problem_of(cfg, dataset)
        jobs += [Job(functools.partial(run_problem, problem, p), problem_results(problem, p),
                          label=f"{dataset} width {p}", gpus=0.25) for p in widths or widths_of(cfg, dataset)]
    return jobs


def budget_jobs(cfg: protocol.BudgetConfig) -> list[Job]:
    """The budget chapter's work: the sweep's runs at its first width, and one job per data set and budget (phase
    1 cut short, then phase 2 from it)."""
    width = cfg.sweep.widths[0]
    jobs = []
    for dataset in cfg.sweep.datasets:
        problem = problem_of(cfg.sweep, dataset)
        jobs.append(Job(functools.partial(run_problem, problem, width), problem_results(problem, width),
                             label=f"{dataset} width {width}", gpus=0.25))
        for budget in cfg.budgets:
            key = _budget_key(problem, width, budget)
            jobs.append(Job(functools.partial(run_budget, problem, width, budget),
                                 (("widths", key), ("widths", _after_start("retrain", key))),
                                 label=f"{dataset} budget {budget}", gpus=0.25))
    return jobs


def _record_epochs(max_epochs: int) -> frozenset:
    """About CURVE_POINTS log-spaced epochs up to the cap: enough to see whether a run that hit the cap was still
    improving. Why not every k-th epoch: the fast path returns to Python at each recorded epoch, and a record
    every 60th of 300,000 steps cost more than the steps of the narrow nets."""
    return frozenset(round(max_epochs ** (i / (CURVE_POINTS - 1))) for i in range(CURVE_POINTS))


def _curve(history: dict[str, list]) -> dict[str, list]:
    """The fit-set accuracy at each recorded epoch (log-spaced, and the last)."""
    return {"step": history["step"], "train_acc": history["train_acc"]}


@contextlib.contextmanager
def cpu_settings() -> Iterator[None]:
    """The settings every width-sweep run trains under (the benchmark uses them too), restored on the way out."""
    # Denormal floats (from saturated logistic losses) are several times slower on x86 CPUs.
    with runtime.flush_denormal(True):
        yield


def net_of(sizes: tuple[int, ...], seeds: tuple[int, ...], state: dict[str, Tensor] | None = None) -> MLP:
    model = MLP(sizes, seeds)
    if state is not None:
        model.load_state_dict(state)
    return model


def _norms(state: dict[str, Tensor]) -> Tensor:
    """Total l2 norm of every member's parameters."""
    return torch.cat([v.flatten(1) for v in state.values()], dim=1).norm(dim=1)


def members_of(state: dict[str, Tensor], start: int, stop: int) -> dict[str, Tensor]:
    return {k: v[start:stop].clone() for k, v in state.items()}


def _stacked(*states: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: torch.cat([s[k] for s in states]) for k in states[0]}


def _run_group(store: Store, key: dict, problem: Problem, sizes: tuple[int, ...], seeds: tuple[int, ...],
               init: dict[str, Tensor] | None, labels: Tensor, readout_only: bool = False) -> Stored:
    """Train (or load) one batched group: member m starts from init's member m (None: the seeds' random init)
    and trains on its data slice with labels[m]."""
    def run(workdir):
        data, k = problem.data, len(problem.seeds)
        copies = len(labels) // k
        x, x_test = per_member(data.x, copies, k), per_member(data.x_test, copies, k)
        y_test = per_member(data.y_test, copies, k)
        model = net_of(sizes, seeds, init)
        if readout_only:
            with torch.no_grad():
                for p in model.readout():
                    p.zero_()
        start_norm = _norms(model.state_dict())
        device = default_device()
        with cpu_settings():
            tcfg = problem.train
            # The fast path (float32 everywhere: bf16 gains nothing on nets this small), tested against `train`.
            result = fastmlp.train_mlp(model, (x, labels), tcfg, seeds, readout_only=readout_only,
                                       checkpoint=workdir / "train.ckpt",
                                       checkpoint_every=max(1000, tcfg.max_epochs // CHECKPOINTS),
                                       history_every=_record_epochs(tcfg.max_epochs), device=device)
            metrics = {"fit_step": result.fit_step, "steps": result.steps,
                       "train_acc": accuracy(model, x.to(device), labels.to(device)).tolist(),
                       "test_acc": accuracy(model, x_test.to(device), y_test.to(device)).tolist(),
                       "init_norm": start_norm.tolist(), "final_norm": _norms(model.state_dict()).tolist(),
                       "curve": _curve(result.history)}
            if any(result.diverged):   # only then: the metrics of runs that did not diverge keep their bytes
                metrics["diverge_epoch"] = result.diverge_epoch
        # Phase 1's weights start the other groups; the later ones serve only decision boundaries, drawn for 2-D
        # inputs (on vectorized MNIST they would be 3 MB a member at p = 1000).
        keep = data.x.shape[-1] == 2 or key["group"] == "start"
        return metrics, model.state_dict() if keep else {}

    return store.load_or_run("widths", key, run, data=problem.fingerprint)


def run_width(cfg: protocol.WidthsConfig, dataset: str, width: int, store: Store | None = None) -> dict[str, Stored]:
    """Train (or load) the three groups of one data set and width: {"start", "retrain", "readout"}."""
    return run_problem(problem_of(cfg, dataset), width, store)


def random_labels_of(problem: Problem) -> Tensor:
    """Seed s's random labels (every seed's, stacked)."""
    n = problem.data.y.shape[1]
    return torch.stack([random_labels(n, problem.data.classes, RANDOM_LABEL_SEED + s) for s in problem.seeds])


def _retrain(store: Store, start_key: dict, problem: Problem, sizes: tuple[int, ...],
             adversarial: dict[str, Tensor]) -> Stored:
    """Exp 2's phase 2 from the phase-1 weights and the Norm run (the random init rescaled to their norm), both on
    the true labels: members 0 .. k-1 and k .. 2k-1."""
    seeds, k = problem.seeds, len(problem.seeds)
    random_init = MLP(sizes, seeds).state_dict()
    scale = _norms(adversarial) / _norms(random_init)
    rescaled = {name: v * scale.view(-1, *[1] * (v.dim() - 1)) for name, v in random_init.items()}
    true = per_member(problem.data.y, 1, k)
    return _run_group(store, _after_start("retrain", start_key), problem, sizes, seeds * 2,
                      _stacked(adversarial, rescaled), torch.cat([true, true]))


def run_start(problem: Problem, width: int, store: Store | None = None) -> Stored:
    """Train (or load) the "start" group of one problem and width: Exp 1 (members 0 .. k-1, true labels) and phase 1
    (members k .. 2k-1, random labels), from the same random init."""
    store = store or Store()
    check_range("width", width, 1, integer=True)
    true = per_member(problem.data.y, 1, len(problem.seeds))
    return _run_group(store, _start_key(problem, width), problem, problem.sizes(width), problem.seeds * 2, None,
                      torch.cat([true, random_labels_of(problem)]))


def run_problem(problem: Problem, width: int, store: Store | None = None) -> dict[str, Stored]:
    """Train (or load) the three groups of one problem and width: {"start", "retrain", "readout"}."""
    store = store or Store()
    seeds, k = problem.seeds, len(problem.seeds)
    start = run_start(problem, width, store)
    sizes, true, start_key = problem.sizes(width), per_member(problem.data.y, 1, k), _start_key(problem, width)
    adversarial = members_of(start.weights, k, 2 * k)
    retrain = _retrain(store, start_key, problem, sizes, adversarial)
    readout = _run_group(store, _after_start("readout", start_key), problem, sizes, seeds, adversarial, true,
                         readout_only=True)
    return {"start": start, "retrain": retrain, "readout": readout}


READOUT = ("weights.1", "biases.1")   # N_p's last layer: the readout of its one hidden layer


def repaired_start(problem: Problem, width: int, repair: Repair, store: Store | None = None) -> dict[str, Tensor]:
    """The adversarial init of every seed (one member each) after `repair`'s changes, before its warm-up: where
    run_repaired's training starts (the live page starts there too)."""
    k, sizes = len(problem.seeds), problem.sizes(width)
    adversarial = members_of(run_problem(problem, width, store)["start"].weights, k, 2 * k)
    fresh = MLP(sizes, tuple(FRESH_SEED + s for s in problem.seeds)).state_dict()
    return repaired(repair, adversarial, fresh, READOUT)


def run_repaired(problem: Problem, width: int, repair: Repair, store: Store | None = None) -> Stored:
    """Exp 2's phase 2 from a repaired adversarial init (beyond the paper), one member per seed: the repair's
    changes to the init (core.repairs; no batch norm here), then its warm-up, `repair.warm_epochs` full-batch
    steps at step size `repair.warm_lr` (stopped early at zero training error)."""
    store = store or Store()
    seeds, k, sizes = problem.seeds, len(problem.seeds), problem.sizes(width)
    start_key, form = _start_key(problem, width), repair.net_form()
    if repair.perturb:   # shrink and perturb now rounds once, as Paper A's always did (core.repairs); the results
        form = {**form, "rounding": "fused"}   # stored before, rounded twice (1e-9 apart), keep keys of their own
    init = repaired_start(problem, width, repair, store)
    true = per_member(problem.data.y, 1, k)
    if repair.warm_epochs:
        warm = dataclasses.replace(problem, train=dataclasses.replace(problem.train, lr=repair.warm_lr,
                                                                      max_epochs=repair.warm_epochs))
        init = _run_group(store, {"group": "warm", "repair": form, "start": start_key}, warm, sizes, seeds, init,
                          true).weights
    return _run_group(store, {"group": "repaired", "repair": form, "start": start_key}, problem, sizes, seeds,
                      init, true)


def states(problem: Problem, width: int, store: Store | None = None) -> dict[str, dict[str, Tensor]]:
    """Each seed's network (one member per seed) at the start and end of Exp 1 and Exp 2's phase 2, from the stored
    runs: {"random init", "Exp 1", "adversarial init", "Exp 2"}."""
    groups = run_problem(problem, width, store)
    k = len(problem.seeds)
    return {"random init": MLP(problem.sizes(width), problem.seeds).state_dict(),
            "Exp 1": members_of(groups["start"].weights, 0, k),
            "adversarial init": members_of(groups["start"].weights, k, 2 * k),
            "Exp 2": members_of(groups["retrain"].weights, 0, k)}


def training_set(problem: Problem) -> tuple[Tensor, Tensor]:
    """Each seed's training points and true labels: (seeds, n, d) and (seeds, n)."""
    k = len(problem.seeds)
    return per_member(problem.data.x, 1, k), per_member(problem.data.y, 1, k)


def run_budget(problem: Problem, width: int, budget: int, store: Store | None = None) -> dict[str, Stored]:
    """Train (or load) phase 1 alone, stopped after `budget` steps or at zero training error, and then Exp 2's
    phase 2 and the Norm run from its weights (with the problem's own cap): {"phase 1", "retrain"}. Phase 1 is
    the sweep's phase 1 cut short: same init, random labels and data."""
    store = store or Store()
    check_range("budget", budget, 1, integer=True)
    short = dataclasses.replace(problem, train=dataclasses.replace(problem.train, max_epochs=budget))
    key = _budget_key(problem, width, budget)
    phase1 = _run_group(store, key, short, problem.sizes(width), problem.seeds, None, random_labels_of(problem))
    return {"phase 1": phase1, "retrain": _retrain(store, key, problem, problem.sizes(width), phase1.weights)}
