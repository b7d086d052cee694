"""Beyond both papers: cheap repairs of the adversarial init. Phase 2 (vanilla SGD to 100% training accuracy for
Paper A, full-batch gradient descent to zero training error for Paper B) starts from the adversarial init changed
by one repair, beside the same training from the adversarial init as it is and from the random init (the other
chapters' stored runs). Which repairs recover the random init's test accuracy, and at what cost?"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd

from badminima.beyond.minima import NOT_CLAIMED, UNSIZED, suggests
from badminima.beyond.protocol import RepairsConfig
from badminima.core import stats
from badminima.core.repairs import Repair
from badminima.core.store import Store
from badminima.paper_a import experiments as paper_a
from badminima.paper_a import protocol as paper_a_protocol
from badminima.paper_b import datasets as paper_b_datasets
from badminima.paper_b import runs as paper_b_runs

RANDOM, ADVERSARIAL = "random init", "adversarial init"
CONTROL = "random init, same warm-up"   # the warm-up's control: is it a repair, or the larger learning rate?


def image_repairs(cfg: RepairsConfig) -> dict[str, Repair]:
    """The repairs tried on Paper A's models, by name."""
    out = {f"shrink {s:g}, perturb {p:g}": Repair(shrink=s, perturb=p) for s in cfg.shrinks for p in cfg.perturbs}
    out["reset last layer"] = Repair(reset_last=True)
    out["reset batch-norm statistics"] = Repair(reset_batch_norm=True)
    out[warm_name(cfg)] = _warm_up(cfg)
    return out


def _warm_up(cfg: RepairsConfig) -> Repair:
    return Repair(warm_epochs=cfg.warm_epochs, warm_lr=cfg.warm_lr)


def warm_name(cfg: RepairsConfig) -> str:
    return f"{cfg.warm_epochs} epochs at lr {cfg.warm_lr:g}"


def net_repairs(cfg: RepairsConfig) -> dict[str, Repair]:
    """The repairs tried on Paper B's nets, by name (no batch norm there; a warm-up epoch is a full-batch step)."""
    out = {f"shrink {s:g}, perturb {p:g}": Repair(shrink=s, perturb=p) for s in cfg.shrinks for p in cfg.perturbs}
    out["reset readout"] = Repair(reset_last=True)
    out[f"{cfg.warm_steps:,} steps at step {cfg.net_warm_lr:g}"] = Repair(warm_epochs=cfg.warm_steps,
                                                                          warm_lr=cfg.net_warm_lr)
    return out


def image_cells(cfg: RepairsConfig) -> list[paper_a.Cell]:
    """Paper A's vanilla runs from the random and the adversarial init (the training chapter's), from the random
    init after the warm-up repair's epochs (its control), and from each repaired adversarial init, per model and
    seed."""
    cells = []
    for model in cfg.models:
        for seed in cfg.seeds:
            adversarial = paper_a_protocol.vanilla(cfg.paper_a, model, seed, "adversarial")
            cells.append(({"model": model, "seed": seed, "start": RANDOM},
                          paper_a_protocol.vanilla(cfg.paper_a, model, seed, "random")))
            cells.append(({"model": model, "seed": seed, "start": ADVERSARIAL}, adversarial))
            cells.append(({"model": model, "seed": seed, "start": CONTROL},
                          dataclasses.replace(cells[-2][1], repair=_warm_up(cfg))))
            cells += [({"model": model, "seed": seed, "start": name}, dataclasses.replace(adversarial, repair=r))
                      for name, r in image_repairs(cfg).items()]
    return cells


def image_table(cfg: RepairsConfig, store: Store | None = None) -> pd.DataFrame:
    """One row per model, seed and start: training and test accuracy (%), epochs of the vanilla recipe, whether it
    fitted, and its cost in epochs (warm-up epochs included)."""
    cells = image_cells(cfg)
    table = paper_a.runs_table(cells, store)
    warm = {**{name: r.warm_epochs for name, r in image_repairs(cfg).items()}, CONTROL: cfg.warm_epochs}
    return table.assign(fitted=table["train acc %"] >= 100,
                        cost=table["epochs"] + table["start"].map(warm).fillna(0).astype(int))


def net_table(cfg: RepairsConfig, store: Store | None = None) -> pd.DataFrame:
    """One row per data set, seed and start of Paper B's nets at cfg.width: test accuracy (%), steps to zero
    training error (None: the cap), whether it fitted, and the cost in steps (warm-up steps included)."""
    store = store or Store()
    rows = []
    for dataset in cfg.datasets:
        problem = paper_b_datasets.problem_of(cfg.paper_b, dataset)
        groups = paper_b_runs.run_problem(problem, cfg.width, store)
        # Exp 1 and Exp 2 are the first members of their groups: member i is seed i
        starts = {RANDOM: (groups["start"].metrics, 0), ADVERSARIAL: (groups["retrain"].metrics, 0)}
        for name, repair in net_repairs(cfg).items():
            starts[name] = (paper_b_runs.run_repaired(problem, cfg.width, repair, store).metrics,
                            repair.warm_epochs)
        for name, (m, warm) in starts.items():
            for i, seed in enumerate(problem.seeds):
                steps = m["fit_step"][i]
                rows.append({"dataset": dataset, "seed": seed, "start": name,
                             "test acc %": round(100 * m["test_acc"][i], 4), "steps": steps,
                             "fitted": steps is not None, "cost": None if steps is None else steps + warm})
    return pd.DataFrame(rows)


def summary(table: pd.DataFrame, by: str, cost: str) -> pd.DataFrame:
    """Per group and start (the index): mean and range over seeds of the test accuracy, runs that fitted, and the
    mean cost."""
    g = table.groupby([by, "start"], sort=False)
    out = g["test acc %"].agg(["mean", "min", "max"]).add_prefix("test acc % ")
    out["fitted"] = g["fitted"].apply(lambda f: f"{int(f.sum())} of {len(f)}")
    out[f"mean {cost}"] = g["cost"].mean()
    return out


def findings(table: pd.DataFrame, by: str, tolerance: float,
             warm: str | None = None) -> dict[str, list[stats.Verdict]]:
    """Paired over seeds; each question one family over the groups (models or data sets) and repairs: does the
    repair beat the adversarial init's test accuracy, and does it come within `tolerance` points of the random
    init's? With `warm` (the warm-up repair's name) and its control in the table: does the random init gain from
    the same warm-up, and does the warm-up repair end within `tolerance` of its control?"""
    wide = table.pivot_table(index=[by, "seed"], columns="start", values="test acc %").reset_index(by)
    better, recovers = [], []
    for group, g in wide.groupby(by):
        for name in [c for c in dict.fromkeys(table["start"]) if c not in (RANDOM, ADVERSARIAL, CONTROL)]:
            better.append(stats.greater(f"{group}, {name}: beats the adversarial init", NOT_CLAIMED, g[name],
                                        g[ADVERSARIAL], (name, ADVERSARIAL), UNSIZED))
            recovers.append(stats.within(f"{group}, {name}: recovers the random init's test accuracy "
                                         f"(within {tolerance:g} points)", NOT_CLAIMED, g[name], g[RANDOM],
                                         (name, RANDOM), tolerance))
    out = {"the repair beats the adversarial init": stats.family(better),
           "the repair recovers the random init": stats.family(recovers)}
    if warm is not None and CONTROL in wide.columns:
        groups = list(wide.groupby(by))
        out["a random init gains from the warm-up too"] = stats.family(
            [stats.greater(f"{group}: a random init given the warm-up beats the random init", NOT_CLAIMED,
                           g[CONTROL], g[RANDOM], (CONTROL, RANDOM), UNSIZED) for group, g in groups])
        out["the warm-up repair ends where its control ends"] = stats.family(
            [stats.within(f"{group}: the warm-up from the adversarial init ends within {tolerance:g} points of "
                          "the same warm-up from the random init", NOT_CLAIMED, g[warm], g[CONTROL],
                          (warm, CONTROL), tolerance) for group, g in groups])
    return out


SAYS = {   # family -> the statement it tests; {random} and {adversarial} name the two inits as the setting does
    "the repair beats the adversarial init": "The repair beats {adversarial}'s test accuracy",
    "the repair recovers the random init": "The repair recovers {random}'s test accuracy (within {points})",
    "a random init gains from the warm-up too": "The warm-up helps a random init too (its control)",
    "the warm-up repair ends where its control ends":
        "From the adversarial init, the warm-up ends where it ends from the random init",
}


def says(found: dict[str, list[stats.Verdict]], tolerance: float, random: str, adversarial: str) -> str:
    """For each family of `found` (see findings), how far the data support its statement."""
    points = f"{tolerance:g} point{'' if tolerance == 1 else 's'}"
    return " ".join(suggests(verdicts, SAYS[family].format(random=random, adversarial=adversarial, points=points))
                    for family, verdicts in found.items())


@dataclass
class Repaired:
    cfg: RepairsConfig
    images: pd.DataFrame                          # image_table
    nets: pd.DataFrame                            # net_table
    image_found: dict[str, list[stats.Verdict]]   # findings on images
    net_found: dict[str, list[stats.Verdict]]     # findings on nets

    def setting(self) -> str:
        c = self.cfg
        return (f"Scale `{c.scale}`: Paper A's {', '.join(c.models)} at seeds {list(c.seeds)}; Paper B's "
                f"{', '.join(c.datasets)} at width {c.width}.")

    def image_says(self) -> str:
        return says(self.image_found, self.cfg.tolerance, "the random init", "the adversarial init")

    def net_says(self) -> str:
        return says(self.net_found, self.cfg.net_tolerance, "Exp 1", "Exp 2")   # Paper B's names for the two inits

    def verdicts(self) -> list[stats.Verdict]:
        return [v for found in (self.image_found, self.net_found) for vs in found.values() for v in vs]


def measure(cfg: RepairsConfig, executor: str = "local", store: Store | None = None) -> Repaired:
    """The chapter's runs, tables and findings; the runs missing from the store are trained first (Paper A's on
    `executor`)."""
    store = store or Store()
    paper_a.train_all(image_cells(cfg), store, executor=executor)
    images, nets = image_table(cfg, store), net_table(cfg, store)
    return Repaired(cfg, images, nets, findings(images, "model", cfg.tolerance, warm=warm_name(cfg)),
                    findings(nets, "dataset", cfg.net_tolerance))
