"""Paper B (Ravichandran et al. 2023): one-hidden-layer ReLU networks N_p over a sweep of widths p, trained in the
paper's Experiments 1-3 and its norm hypothesis.

Three groups of runs per (data set, width), each one batched MLP through the one training loop and one stored
result: "start" (Exp 1 and Exp 2's phase 1 on random labels, from the same random init), "retrain" (Exp 2's
phase 2 from the phase-1 weights, and the random init rescaled to their norm, both on the true labels) and
"readout" (Exp 3: phase-1 first layer frozen, readout reset to zero and trained alone)."""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Iterator

import pandas as pd
import torch

from badminima.core.data.labels import random_labels
from badminima.core.config import ParameterError, check_choice, check_range
from badminima.core.data import images, toy
from badminima.core.metrics import accuracy, boundary_length
from badminima.core.models import MLP, member_logits
from badminima.core import fastmlp, runtime
from badminima.core.jobs import Job
from badminima.core.plots import extent_of
from badminima.paper_b import protocol
from badminima.core.store import Store, Stored
from badminima.core.train import TrainConfig, default_device

Tensor = torch.Tensor

NAMES = {"gaussians": "Gaussians", "circles": "concentric circles", "spirals": "spirals (t ≤ 10)",
         "spirals_2pi": "spirals (t ≤ 2π)", "vmnist": "vectorized MNIST"}
# experiment -> (group, block): its runs are members block*k .. block*k + k-1 of that group's model (k seeds).
MEMBERS = {"Exp 1": ("start", 0), "Exp 2": ("retrain", 0), "Exp 3": ("readout", 0), "Norm": ("retrain", 1)}
RANDOM_LABEL_SEED = 10_000   # seed s draws its random labels from RANDOM_LABEL_SEED + s
FIXED_DRAW = 0               # the data seed of Figure 6b's one draw, unless a notebook says otherwise
CURVE_POINTS = 60            # each run's training history (its stored curve): about this many log-spaced epochs
CHECKPOINTS = 20             # a long run writes about this many checkpoints (each a pass and a write)


def dataset_name(cfg: protocol.WidthsConfig, dataset: str) -> str:
    if dataset == "vmnist" and cfg.image_source == "fashion_mnist":
        return "vectorized Fashion-MNIST"
    return NAMES[dataset]


def widths_of(cfg: protocol.WidthsConfig, dataset: str) -> tuple[int, ...]:
    return cfg.image_widths if dataset == "vmnist" else cfg.widths


# Data

@dataclass(eq=False)
class Data:
    x: Tensor        # (seeds or 1, n, d) float32: one draw per seed, or one shared draw
    y: Tensor        # (seeds or 1, n) int64 labels 0 .. classes-1
    x_test: Tensor
    y_test: Tensor
    classes: int


@dataclass(eq=False)
class Problem:
    """One data set as the runs see it: its data, how every phase trains, its seeds, and what identifies it in the
    key of each stored run. The built-in data sets (`problem_of`) and a user's arrays (badminima.paper_b.byo) run
    through the same functions with one of these."""
    dataset: str             # the tables' "dataset" column
    name: str                # the tables' "name" column
    data: Data
    train: TrainConfig
    seeds: tuple[int, ...]
    key: dict                # what names the data in every run's key
    fingerprint: dict | None = None   # checked against a stored run's: for data the key names by source only

    @property
    def cap(self) -> int:
        """The most steps a phase can take."""
        n, batch = self.data.x.shape[1], self.train.batch_size
        return self.train.max_epochs * (math.ceil(n / batch) if batch else 1)

    def sizes(self, width: int) -> tuple[int, int, int]:
        """The net's layer sizes: one logit (logistic loss) for two classes, else one per class (cross-entropy)."""
        return self.data.x.shape[-1], width, 1 if self.data.classes == 2 else self.data.classes


def _toy_options(cfg: protocol.WidthsConfig, dataset: str) -> dict:
    kind, fixed = protocol.TOY[dataset]
    own = {"gaussians": {"mu": cfg.mu}, "circles": {"noise": cfg.circle_noise},
           "spirals": {"jitter": cfg.spiral_jitter}}[kind]
    return {**fixed, **own}


def _data_key(cfg: protocol.WidthsConfig, dataset: str) -> dict:
    if dataset == "vmnist":
        return {"source": cfg.image_source, "train": cfg.image_train, "test": cfg.image_test}
    return {"n_train": cfg.n_train, "n_test": cfg.n_test, "data_seed": cfg.data_seed,
            "options": _toy_options(cfg, dataset)}


@functools.lru_cache(maxsize=8)
def load_data(cfg: protocol.WidthsConfig, dataset: str) -> Data:
    """The data set's training and test sets, as every run of `cfg` on it sees them."""
    if dataset == "vmnist":
        return _image_data(cfg)
    seeds = (cfg.data_seed,) if cfg.data_seed is not None else cfg.seeds
    draws = [toy.draw(protocol.TOY[dataset][0], cfg.n_train, cfg.n_test, s, **_toy_options(cfg, dataset))
             for s in seeds]
    stack = lambda i, j: torch.stack([d[i][j] for d in draws])
    return Data(stack(0, 0), stack(0, 1), stack(1, 0), stack(1, 1), 2)


def _image_data(cfg: protocol.WidthsConfig) -> Data:
    # The first images of each split: the same 128 training images in every run, as in the paper.
    data = images.load(cfg.image_source)
    flat = lambda x, k: x[:k].flatten(1).float()[None] / 255
    return Data(flat(data.x_train, cfg.image_train), data.y_train[None, :cfg.image_train],
                flat(data.x_test, cfg.image_test), data.y_test[None, :cfg.image_test], data.classes)


def problem_of(cfg: protocol.WidthsConfig, dataset: str) -> Problem:
    """A built-in data set of `cfg` as its runs see it."""
    check_choice("dataset", dataset, protocol.DATASETS)
    if dataset == "vmnist":
        train = TrainConfig(lr=cfg.image_lr, batch_size=cfg.image_batch, max_epochs=cfg.image_max_epochs)
        # The key names the image source, not its pixels: a run is checked against the files it read.
        fingerprint = images.fingerprint(cfg.image_source)
    else:   # drawn from seeds, which the key holds
        train, fingerprint = TrainConfig(lr=cfg.lr, batch_size=None, max_epochs=cfg.max_steps), None
    return Problem(dataset, dataset_name(cfg, dataset), load_data(cfg, dataset), train, cfg.seeds,
                   {"dataset": dataset, "data": _data_key(cfg, dataset)}, fingerprint)


def _per_member(t: Tensor, copies: int, members: int) -> Tensor:
    """(members or 1, ...) -> (copies * members, ...): one slice per member of each copy."""
    return t.expand(members, *t.shape[1:]).repeat(copies, *[1] * (t.dim() - 1))


# Runs

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


def _model(sizes: tuple[int, ...], seeds: tuple[int, ...], state: dict[str, Tensor] | None = None) -> MLP:
    model = MLP(sizes, seeds)
    if state is not None:
        model.load_state_dict(state)
    return model


def _norms(state: dict[str, Tensor]) -> Tensor:
    """Total l2 norm of every member's parameters."""
    return torch.cat([v.flatten(1) for v in state.values()], dim=1).norm(dim=1)


def _members(state: dict[str, Tensor], start: int, stop: int) -> dict[str, Tensor]:
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
        x, x_test = _per_member(data.x, copies, k), _per_member(data.x_test, copies, k)
        y_test = _per_member(data.y_test, copies, k)
        model = _model(sizes, seeds, init)
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


def _random_labels(problem: Problem) -> Tensor:
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
    true = _per_member(problem.data.y, 1, k)
    return _run_group(store, _after_start("retrain", start_key), problem, sizes, seeds * 2,
                      _stacked(adversarial, rescaled), torch.cat([true, true]))


def run_start(problem: Problem, width: int, store: Store | None = None) -> Stored:
    """Train (or load) the "start" group of one problem and width: Exp 1 (members 0 .. k-1, true labels) and phase 1
    (members k .. 2k-1, random labels), from the same random init."""
    store = store or Store()
    check_range("width", width, 1, integer=True)
    true = _per_member(problem.data.y, 1, len(problem.seeds))
    return _run_group(store, _start_key(problem, width), problem, problem.sizes(width), problem.seeds * 2, None,
                      torch.cat([true, _random_labels(problem)]))


def run_problem(problem: Problem, width: int, store: Store | None = None) -> dict[str, Stored]:
    """Train (or load) the three groups of one problem and width: {"start", "retrain", "readout"}."""
    store = store or Store()
    seeds, k = problem.seeds, len(problem.seeds)
    start = run_start(problem, width, store)
    sizes, true, start_key = problem.sizes(width), _per_member(problem.data.y, 1, k), _start_key(problem, width)
    adversarial = _members(start.weights, k, 2 * k)
    retrain = _retrain(store, start_key, problem, sizes, adversarial)
    readout = _run_group(store, _after_start("readout", start_key), problem, sizes, seeds, adversarial, true,
                         readout_only=True)
    return {"start": start, "retrain": retrain, "readout": readout}


FRESH_SEED = 100_000   # a repair's fresh init is seed FRESH_SEED + s: not seed s's own init


def run_repaired(problem: Problem, width: int, repair: dict, store: Store | None = None) -> Stored:
    """Exp 2's phase 2 from a repaired adversarial init (beyond the paper), one member per seed: every parameter
    shrunk by repair["shrink"] plus repair["perturb"] times a fresh random init (Ash and Adams' shrink and
    perturb); with repair["reset_readout"], the readout re-drawn from that fresh init; with repair["warm_steps"],
    that many full-batch steps at step size repair["warm_lr"] first (stopped early at zero training error)."""
    store = store or Store()
    seeds, k, sizes = problem.seeds, len(problem.seeds), problem.sizes(width)
    start_key = _start_key(problem, width)
    adversarial = _members(run_problem(problem, width, store)["start"].weights, k, 2 * k)
    fresh = MLP(sizes, tuple(FRESH_SEED + s for s in seeds)).state_dict()
    init = {n: repair.get("shrink", 1.0) * v + repair.get("perturb", 0.0) * fresh[n] for n, v in adversarial.items()}
    if repair.get("reset_readout"):
        init.update({n: fresh[n] for n in ("weights.1", "biases.1")})
    true = _per_member(problem.data.y, 1, k)
    if repair.get("warm_steps"):
        warm = dataclasses.replace(problem, train=dataclasses.replace(problem.train, lr=repair["warm_lr"],
                                                                      max_epochs=repair["warm_steps"]))
        init = _run_group(store, {"group": "warm", "repair": repair, "start": start_key}, warm, sizes, seeds, init,
                          true).weights
    return _run_group(store, {"group": "repaired", "repair": repair, "start": start_key}, problem, sizes, seeds,
                      init, true)


def states(problem: Problem, width: int, store: Store | None = None) -> dict[str, dict[str, Tensor]]:
    """Each seed's network (one member per seed) at the start and end of Exp 1 and Exp 2's phase 2, from the stored
    runs: {"random init", "Exp 1", "adversarial init", "Exp 2"}."""
    groups = run_problem(problem, width, store)
    k = len(problem.seeds)
    return {"random init": MLP(problem.sizes(width), problem.seeds).state_dict(),
            "Exp 1": _members(groups["start"].weights, 0, k),
            "adversarial init": _members(groups["start"].weights, k, 2 * k),
            "Exp 2": _members(groups["retrain"].weights, 0, k)}


def training_set(problem: Problem) -> tuple[Tensor, Tensor]:
    """Each seed's training points and true labels: (seeds, n, d) and (seeds, n)."""
    k = len(problem.seeds)
    return _per_member(problem.data.x, 1, k), _per_member(problem.data.y, 1, k)


def run_budget(problem: Problem, width: int, budget: int, store: Store | None = None) -> dict[str, Stored]:
    """Train (or load) phase 1 alone, stopped after `budget` steps or at zero training error, and then Exp 2's
    phase 2 and the Norm run from its weights (with the problem's own cap): {"phase 1", "retrain"}. Phase 1 is
    the sweep's phase 1 cut short: same init, random labels and data."""
    store = store or Store()
    check_range("budget", budget, 1, integer=True)
    short = dataclasses.replace(problem, train=dataclasses.replace(problem.train, max_epochs=budget))
    key = _budget_key(problem, width, budget)
    phase1 = _run_group(store, key, short, problem.sizes(width), problem.seeds, None, _random_labels(problem))
    return {"phase 1": phase1, "retrain": _retrain(store, key, problem, problem.sizes(width), phase1.weights)}


# Tables

def _percent(fraction: float) -> float:
    return round(100 * fraction, 4)   # accuracies are counts over float32: drop the float noise


def width_table(cfg: protocol.WidthsConfig, dataset: str, width: int, store: Store | None = None) -> pd.DataFrame:
    """One row per experiment and seed of one data set and width."""
    return problem_table(problem_of(cfg, dataset), width, store)


def diverged(metrics: dict, member: int) -> bool:
    """Whether a member of a stored group diverged (groups stored before it was recorded did not)."""
    epochs = metrics.get("diverge_epoch")
    return bool(epochs) and epochs[member] is not None


def problem_table(problem: Problem, width: int, store: Store | None = None) -> pd.DataFrame:
    """One row per experiment and seed of one problem and width: the columns of every Paper B table. `fitted`: the
    run reached zero training error; a run that diverged (its loss became non-finite) stopped there: not fitted (no
    steps), not at the cap, `diverged`; so for phase 1 (whose columns are empty for Exp 1, which does not start
    from it)."""
    groups = run_problem(problem, width, store)
    k = len(problem.seeds)
    phase1 = groups["start"].metrics
    d, p, out = problem.sizes(width)
    parameters, points = d * p + p + p * out + out, problem.data.x.shape[1]
    rows = []
    for experiment, (group, block) in MEMBERS.items():
        m = groups[group].metrics
        for i, seed in enumerate(problem.seeds):
            j = block * k + i
            lost, lost1 = diverged(m, j), experiment != "Exp 1" and diverged(phase1, k + i)
            rows.append({
                "dataset": problem.dataset, "name": problem.name, "width": width, "parameters": parameters,
                "points": points, "experiment": experiment, "seed": seed,
                "test acc %": _percent(m["test_acc"][j]), "train acc %": _percent(m["train_acc"][j]),
                "steps": m["fit_step"][j] if not lost else None,
                "hit cap": m["fit_step"][j] is None and not lost, "cap": problem.cap,
                "phase-1 acc %": _percent(phase1["train_acc"][k + i]) if experiment != "Exp 1" else math.nan,
                "phase-1 steps": phase1["fit_step"][k + i] if experiment != "Exp 1" and not lost1 else None,
                "phase-1 hit cap": phase1["fit_step"][k + i] is None and not lost1 if experiment != "Exp 1" else False,
                "init norm": m["init_norm"][j], "final norm": m["final_norm"][j],
                "fitted": m["fit_step"][j] is not None and not lost, "diverged": lost,
                "phase-1 fitted": (phase1["fit_step"][k + i] is not None and not lost1) if experiment != "Exp 1"
                else None,
                "phase-1 diverged": lost1,
            })
    table = pd.DataFrame(rows)
    for column in ("steps", "phase-1 steps"):
        table[column] = table[column].astype("Int64")
    return table


def sweep(cfg: protocol.WidthsConfig, store: Store | None = None) -> pd.DataFrame:
    """One row per data set, width, experiment and seed: accuracies, steps to zero training error (None: the
    run hit the cap), norms, and how far phase 1 got on the random labels."""
    store = store or Store()
    tables = [width_table(cfg, d, p, store) for d in cfg.datasets for p in widths_of(cfg, d)]
    return pd.concat(tables, ignore_index=True)


def curves(cfg: protocol.WidthsConfig, store: Store | None = None) -> pd.DataFrame:
    """Training accuracy against steps of the first group of every data set and width: one row per data set,
    width, labels ("true": Exp 1, "random": phase 1), seed and recorded step."""
    store = store or Store()
    rows = []
    k = len(cfg.seeds)
    for dataset in cfg.datasets:
        for width in widths_of(cfg, dataset):
            curve = run_width(cfg, dataset, width, store)["start"].metrics["curve"]
            for step, accs in zip(curve["step"], curve["train_acc"]):
                for j, acc in enumerate(accs):
                    rows.append({"dataset": dataset, "name": dataset_name(cfg, dataset), "width": width,
                                 "labels": "true" if j < k else "random", "seed": cfg.seeds[j % k], "step": step,
                                 "train acc %": _percent(acc)})
    return pd.DataFrame(rows)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per data set, width and experiment: test accuracy (mean, std, median, quartiles), steps to zero training
    error (median and quartiles, a run that hit the cap counted at the cap: a lower bound), and cap hits."""
    steps = table["steps"].astype("Float64").fillna(table["cap"].astype(float)).astype(float)
    grouped = table.assign(steps_or_cap=steps).groupby(["dataset", "width", "experiment"], sort=False)
    acc = grouped["test acc %"]
    out = pd.DataFrame({
        "runs": grouped.size(), "test mean": acc.mean(), "test std": acc.std(ddof=1).fillna(0.0),
        "test median": acc.median(), "test q1": acc.quantile(0.25), "test q3": acc.quantile(0.75),
        "steps median": grouped["steps_or_cap"].median(), "steps q1": grouped["steps_or_cap"].quantile(0.25),
        "steps q3": grouped["steps_or_cap"].quantile(0.75), "cap hits": grouped["hit cap"].sum(),
        "phase-1 cap hits": grouped["phase-1 hit cap"].sum(), "cap": grouped["cap"].first(),
    })
    out["test low"] = out["test mean"] - out["test std"]
    out["test high"] = out["test mean"] + out["test std"]
    return out.reset_index()


def gaps(table: pd.DataFrame, a: str = "Exp 1", b: str = "Exp 2") -> pd.DataFrame:
    """Per data set and width: the test-accuracy gap a - b paired over seeds, its standard error, and whether it
    exceeds two standard errors."""
    wide = table.pivot_table(index=["dataset", "width", "seed"], columns="experiment", values="test acc %")
    diff = (wide[a] - wide[b]).rename("gap")
    grouped = diff.groupby(level=["dataset", "width"], sort=False)
    out = pd.DataFrame({"seeds": grouped.size(), "mean gap": grouped.mean(),
                        "s.e.": grouped.std(ddof=1) / grouped.size().pow(0.5)})
    out["significant"] = out["mean gap"].abs() > 2 * out["s.e."]
    order = list(dict.fromkeys(table["dataset"]))
    return out.reset_index().sort_values(["dataset", "width"], key=lambda c: c.map(order.index)
                                         if c.name == "dataset" else c, kind="stable").reset_index(drop=True)


# What the widths chapter says about its tables

def names_of(cfg: protocol.WidthsConfig) -> dict[str, str]:
    """Each data set of `cfg` by the name the chapters print."""
    return {d: dataset_name(cfg, d) for d in cfg.datasets}


def describe(cfg: protocol.WidthsConfig, runs: int) -> str:
    """The sweep's setting in one paragraph, for the widths chapter's opening."""
    source = ("(MNIST's files were found in the data folder)." if cfg.image_source == "mnist" else
              "(MNIST's files are not in the data folder, so Fashion-MNIST stands in for it: same format, harder).")
    return (f"{len(cfg.seeds)} seeds; widths {list(cfg.widths)} on the 2-D sets and {list(cfg.image_widths)} on the "
            f"images; caps of {cfg.max_steps:,} steps (2-D) and {cfg.image_max_epochs} epochs (images) per phase; "
            f"{runs} runs in all. The image set is **{cfg.image_source}** {source}")


def phase1_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per data set (by name) and width: phase 1's mean and lowest training accuracy on the random labels, how many
    of its runs fitted them (zero training error) and the median steps those took, and how many hit the cap."""
    return table[table.experiment == "Exp 2"].groupby(["name", "width"], sort=False).agg(
        **{"phase-1 train acc % (mean)": ("phase-1 acc %", "mean"), "lowest": ("phase-1 acc %", "min"),
           "fitted": ("phase-1 fitted", "sum"), "median steps to fit": ("phase-1 steps", "median"),
           "runs at the cap": ("phase-1 hit cap", "sum"), "runs": ("seed", "size"),
           "parameters": ("parameters", "first"), "points": ("points", "first")})


def phase1_lines(phase1: pd.DataFrame) -> str:
    """phase1_table in words, saying where a net has fewer parameters than training points (where a fit of random
    labels, if reachable at all, is the hardest)."""
    stuck = int(phase1["runs at the cap"].sum())
    text = f"Phase 1 hit its cap in **{stuck} of {phase1['runs'].sum()}** runs. " + " ".join(
        f"On {d}, phase 1 reached {g['phase-1 train acc % (mean)'].mean():.1f}% on the random labels on average "
        f"and fitted them in {g['fitted'].sum()} of {g['runs'].sum()} runs ({g['runs at the cap'].sum()} at the cap)."
        for d, g in phase1.groupby(level="name", sort=False))
    small = phase1[phase1["parameters"] < phase1["points"]]
    if len(small):
        text += " " + " ".join(
            f"At p = {w} on {d} the net has {r['parameters']} parameters for {r['points']} random labels, fewer "
            f"than the points; {r['fitted']} of {r['runs']} runs fitted them, the lowest reaching "
            f"{r['lowest']:.0f}%."
            for (d, w), r in small.iterrows())
    if stuck:
        text += (" Where phase 1 stops short of 100%, Exp 2 and Exp 3 start from a *partly* adversarial "
                 "initialization: their claims are not tested there.")
    return text


def curve_lines(curves: pd.DataFrame) -> list[str]:
    """Phase 1's mean training accuracy on the random labels at the largest width, halfway and at the end."""
    lines = []
    for _, g in curves[curves.labels == "random"].groupby("dataset", sort=False):
        g = g[g.width == g.width.max()]
        mean = g.groupby("step")["train acc %"].mean()
        half = mean.index[abs(mean.index - mean.index[-1] / 2).argmin()]
        lines.append(f"- **{g.name.iloc[0]}**, p = {g.width.max()}: {mean[half]:.1f}% at step {half:,}, "
                     f"{mean.iloc[-1]:.1f}% at step {mean.index[-1]:,}.")
    return lines


def gap_lines(gaps_: pd.DataFrame, names: dict[str, str]) -> list[str]:
    """Per data set: at how many widths Exp 2 is more than two standard errors below (above) Exp 1, and the
    range of the gap."""
    lines = []
    for d, g in gaps_.groupby("dataset", sort=False):
        worse = g[(g["mean gap"] > 0) & g.significant]
        better = g[(g["mean gap"] < 0) & g.significant]
        lines.append(
            f"- **{names[d]}**: Exp 2 is significantly below Exp 1 at {len(worse)} of {len(g)} widths"
            + (f" (p = {', '.join(map(str, worse.width))})" if len(worse) else "")
            + (f" and significantly above it at {len(better)} (p = {', '.join(map(str, better.width))})"
               if len(better) else "")
            + f"; the gap ranges from {g['mean gap'].min():+.2f} to {g['mean gap'].max():+.2f} points.")
    return lines


def steps_lines(summary_: pd.DataFrame, names: dict[str, str]) -> list[str]:
    """Per data set, at its largest width: the median steps to zero training error of each experiment's last
    phase, with its runs at the cap (their steps are the cap, a lower bound)."""
    lines = []
    for d, g in summary_.groupby("dataset", sort=False):
        g = g[g.width == g.width.max()].set_index("experiment")
        parts = [f"{e} {g.loc[e, 'steps median']:,.0f}" + (f" ({int(g.loc[e, 'cap hits'])} of "
                 f"{int(g.loc[e, 'runs'])} at the cap)" if g.loc[e, "cap hits"] else "")
                 for e in ("Exp 1", "Exp 2", "Exp 3") if e in g.index]
        lines.append(f"- **{names[d]}**, p = {g.width.iloc[0]}: median steps " + ", ".join(parts) + ".")
    return lines


def norm_lines(table: pd.DataFrame, names: dict[str, str]) -> list[str]:
    """How much phase 1 changed the norm and, per data set over all widths and seeds, the mean test accuracy of
    Exp 1, the Norm run and Exp 2, and where the Norm run falls between the two."""
    ratio = norm_table(table)["adversarial / random"]
    lines = [f"Phase 1 changed the norm by a factor between {ratio.min():.2f} and {ratio.max():.2f}. Test accuracy:"]
    for d, g in table.groupby("dataset", sort=False):
        mean = g.groupby("experiment")["test acc %"].mean()
        exp1, norm, exp2 = mean["Exp 1"], mean["Norm"], mean["Exp 2"]
        where = ("between them" if min(exp1, exp2) <= norm <= max(exp1, exp2)
                 else "above both" if norm > max(exp1, exp2) else "below both")
        lines.append(f"- **{names[d]}**: Exp 1 {exp1:.1f}%, Norm {norm:.1f}%, Exp 2 {exp2:.1f}% (mean over widths "
                     f"and seeds): the Norm run is {where}.")
    return lines


def median_line(summary_: pd.DataFrame, dataset: str) -> str:
    """The median test accuracy of Exp 1-3 at each width of one data set (Figure 5)."""
    rows = summary_[summary_.dataset == dataset].pivot(index="width", columns="experiment", values="test median")
    return "; ".join(f"p = {p}: Exp 1 {r['Exp 1']:.1f}%, Exp 2 {r['Exp 2']:.1f}%, Exp 3 {r['Exp 3']:.1f}%"
                     for p, r in rows.iterrows()) + "."


def cap_table(summary_: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Runs that hit the cap per data set (by name), width and experiment."""
    caps = summary_.pivot_table(index=["dataset", "width"], columns="experiment", values="cap hits", aggfunc="sum",
                                sort=False)
    return caps.rename(index=names, level="dataset")


def norm_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per data set and width: the mean total parameter norm of the random init (Exp 1) and of the adversarial
    init (Exp 2's start, the end of phase 1), and their ratio."""
    norms = table[table.experiment.isin(["Exp 1", "Exp 2"])].pivot_table(
        index=["name", "width"], columns="experiment", values="init norm", sort=False)
    norms["adversarial / random"] = norms["Exp 2"] / norms["Exp 1"]
    return norms.rename(columns={"Exp 1": "random init", "Exp 2": "adversarial init"})


# Phase-1 budgets (beyond the paper)

def _budget_rows(problem: Problem, width: int, budget: int, to_fit: bool, phase1: Stored, offset: int,
                 retrain: Stored, exp1: pd.Series) -> list[dict]:
    k = len(problem.seeds)
    p1, re = phase1.metrics, retrain.metrics
    return [{"dataset": problem.dataset, "name": problem.name, "width": width, "budget": budget,
             "stopped": "zero error or cap" if to_fit else "budget", "seed": seed,
             "phase-1 acc %": _percent(p1["train_acc"][offset + i]),
             "phase-1 fitted": p1["fit_step"][offset + i] is not None,
             "phase-1 steps": p1["fit_step"][offset + i] or budget,
             "Exp 1 test %": exp1[seed], "Exp 2 test %": _percent(re["test_acc"][i]),
             "Norm test %": _percent(re["test_acc"][k + i])} for i, seed in enumerate(problem.seeds)]


def budget_table(cfg: protocol.BudgetConfig, store: Store | None = None) -> pd.DataFrame:
    """One row per data set, phase-1 budget and seed: how far phase 1 got on the random labels (accuracy, whether
    it fitted, its steps), the test accuracy of Exp 1, of Exp 2 from there and of the Norm run, and the gap
    Exp 1 - Exp 2. The last budget of each data set is the sweep's own phase 1 (to zero error or the cap)."""
    store = store or Store()
    width, rows = cfg.sweep.widths[0], []
    for dataset in cfg.sweep.datasets:
        problem = problem_of(cfg.sweep, dataset)
        k = len(problem.seeds)
        groups = run_problem(problem, width, store)
        exp1 = pd.Series([_percent(a) for a in groups["start"].metrics["test_acc"][:k]], index=problem.seeds)
        for budget in cfg.budgets:
            short = run_budget(problem, width, budget, store)
            rows += _budget_rows(problem, width, budget, False, short["phase 1"], 0, short["retrain"], exp1)
        rows += _budget_rows(problem, width, problem.cap, True, groups["start"], k, groups["retrain"], exp1)
    table = pd.DataFrame(rows)
    table["gap"] = table["Exp 1 test %"] - table["Exp 2 test %"]
    return table


def budget_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per data set and budget: the mean gap Exp 1 - Exp 2 and its standard error over seeds, the mean phase-1
    accuracy on the random labels, and how many seeds' phase 1 fitted them."""
    grouped = table.groupby(["dataset", "name", "budget", "stopped"], sort=False)
    out = pd.DataFrame({"seeds": grouped.size(), "mean gap": grouped["gap"].mean(),
                        "s.e.": grouped["gap"].sem().fillna(0.0),
                        "phase-1 acc %": grouped["phase-1 acc %"].mean(),
                        "phase-1 fitted": grouped["phase-1 fitted"].sum(),
                        "Exp 1 test %": grouped["Exp 1 test %"].mean(),
                        "Exp 2 test %": grouped["Exp 2 test %"].mean(),
                        "Norm test %": grouped["Norm test %"].mean()})
    return out.reset_index()


def budget_lines(table: pd.DataFrame) -> list[str]:
    """One sentence per data set of budget_table: the gap after each budget and with phase 1 to zero error, and
    the rank correlation (Spearman's, over seeds and budgets) of the gap with phase 1's accuracy."""
    lines = []
    for (dataset, name), rows in table.groupby(["dataset", "name"], sort=False):
        s = budget_summary(rows)
        parts = [f"{r['mean gap']:+.2f} ± {r['s.e.']:.2f} after {int(r.budget):,} steps (phase 1 at "
                 f"{r['phase-1 acc %']:.1f}%)" for _, r in s[s.stopped == "budget"].iterrows()]
        full = s[s.stopped != "budget"].iloc[0]
        parts.append(f"{full['mean gap']:+.2f} ± {full['s.e.']:.2f} with phase 1 run to zero error or the cap "
                     f"({int(full['phase-1 fitted'])} of {int(full.seeds)} seeds fitted, at "
                     f"{full['phase-1 acc %']:.1f}%)")
        ranks = rows[["phase-1 acc %", "gap"]].rank()   # Spearman's rho: Pearson's on the ranks
        rho = ranks["phase-1 acc %"].corr(ranks["gap"])
        lines.append(f"- **{name}**: the gap Exp 1 − Exp 2 is " + "; ".join(parts)
                     + f". Rank correlation of the gap with phase 1's accuracy: {rho:+.2f}.")
    return lines


# Decision boundaries (2-D data sets)

@dataclass
class Trained:
    dataset: str
    width: int
    x: Tensor                    # (seeds, n, 2) training points of each seed
    y: Tensor                    # (seeds, n) their true labels
    models: dict[str, MLP]       # experiment -> one member per seed


def trained(cfg: protocol.WidthsConfig, dataset: str, width: int, store: Store | None = None) -> Trained:
    """The trained networks of one 2-D data set and width, per experiment."""
    if dataset == "vmnist":
        raise ParameterError("dataset='vmnist' has no decision boundary to draw; choose a 2-D data set")
    runs = problem_of(cfg, dataset)
    groups = run_problem(runs, width, store)
    k, sizes = len(cfg.seeds), runs.sizes(width)
    models = {e: _model(sizes, cfg.seeds, _members(groups[g].weights, block * k, (block + 1) * k))
              for e, (g, block) in MEMBERS.items()}
    data = runs.data
    return Trained(dataset, width, _per_member(data.x, 1, k), _per_member(data.y, 1, k), models)


def panels(result: Trained, members: list[int], seeds: tuple[int, ...],
           experiments: tuple[str, ...] = ("Exp 1", "Exp 2", "Exp 3"), resolution: int = 300) -> list[list[dict]]:
    """Decision-boundary panels (plots.decision_boundary's arguments): one row per member (seed), one column per
    experiment."""
    extent = extent_of(result.x)
    return [[{"logit_fn": member_logits(result.models[e], m), "x": result.x[m], "y": result.y[m],
              "extent": extent, "resolution": resolution, "title": f"{e}, p = {result.width}, seed {seeds[m]}"}
             for e in experiments] for m in members]


def seed_panels(cfg: protocol.WidthsConfig, dataset: str, width: int, seed: int,
                experiments: tuple[str, ...] = ("Exp 1", "Exp 2", "Exp 3")) -> list[list[dict]]:
    """The panels of one data set, width and seed (the boundaries chapter's widget)."""
    return panels(trained(cfg, dataset, width), [cfg.seeds.index(seed)], cfg.seeds, experiments)


def width_frames(cfg: protocol.WidthsConfig, datasets: tuple[str, ...],
                 experiments: tuple[str, ...] = ("Exp 1", "Exp 2", "Exp 3"), resolution: int = 120
                 ) -> list[list[list[dict]]]:
    """One frame per width of the sweep: the first seed's panels, one row per data set (the widget's static
    stand-in, an animation over the widths)."""
    return [[panels(trained(cfg, d, w), [0], cfg.seeds, experiments, resolution)[0] for d in datasets]
            for w in cfg.widths]


def boundary_table(cfg: protocol.WidthsConfig, datasets: tuple[str, ...], width: int, store: Store | None = None,
                   resolution: int = 200) -> pd.DataFrame:
    """Length of each run's decision boundary inside its data set's plotting box, per experiment and seed."""
    rows = []
    for dataset in datasets:
        result = trained(cfg, dataset, width, store)
        extent = extent_of(result.x)
        for experiment, model in result.models.items():
            for m, seed in enumerate(cfg.seeds):
                length = boundary_length(member_logits(model, m), extent, resolution)
                rows.append({"dataset": dataset, "name": dataset_name(cfg, dataset), "width": width,
                             "experiment": experiment, "seed": seed, "boundary length": length})
    return pd.DataFrame(rows)
