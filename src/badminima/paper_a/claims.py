"""Paper A's claims as verdicts: Figure 1's (on badminima.paper_a.sketch's per-seed table), claims 1-6 (PROTOCOL.md,
A3) and Figure 4's (on the per-seed tables of badminima.paper_a.experiments). The tolerances are stated here once and
printed in every verdict's test.

Each chapter's verdicts come from one function of its configuration and the store (`sketch_verdicts`,
`training_verdicts`, `replication_verdicts`, `heuristics_verdicts`, `complexity_verdicts`): the chapter shows what it
returns and the "Does it reproduce?" page calls it with the configuration the chapter was executed with."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from badminima.core.stats import Verdict, all_reach, family, greater, within
from badminima.core.store import Store
from badminima.paper_a import experiments, sketch

if TYPE_CHECKING:
    from badminima.paper_a.protocol import PaperAConfig
    from badminima.paper_a.sketch import SketchConfig

CLEAR_GAP = 1.0     # test-accuracy points: a drop must exceed this (tested one-sided) to count as clear
SAME = 1.0          # test-accuracy points: two inits count as "the same" when their gap is within this
MOST = 0.5          # "most of the gap": a heuristic leaves less than this fraction of the vanilla gap

THRESHOLDS = (f"A drop in test accuracy counts as *clear* when it exceeds {CLEAR_GAP:g} point(s). Two runs end at "
              f"*the same* test accuracy when their gap is within {SAME:g} point(s). A single heuristic recovers "
              f"*most* of the vanilla gap when the gap it leaves is less than {MOST:g} times the vanilla gap. "
              f"Figure 4's trend is the least-squares line of test accuracy against R (R = 0: the random init), per "
              f"seed: its change from R = 0 to the largest R must be a clear drop for vanilla SGD, and within "
              f"{SAME:g} point(s) of none for SOTA SGD.")


def _col(table: pd.DataFrame, value: str, **where) -> list[float]:
    sel = table
    for k, v in where.items():
        sel = sel[sel[k] == v]
    return sel.sort_values("seed")[value].tolist()


def figure1(table: pd.DataFrame) -> list[Verdict]:
    """Paper A's Figure 1 claims from the per-seed table of badminima.paper_a.sketch."""
    col = lambda setting, name: table[table.setting == setting].sort_values("seed")[name].tolist()
    return [
        all_reach("SGD fits the true labels from a random init (setting 1)", "100% training accuracy",
                  col(1, "train acc %"), "setting 1"),
        all_reach("SGD fits random labels from a random init (setting 2)", "100% training accuracy",
                  col(2, "train acc %"), "setting 2"),
        greater("Fitting random labels leaves a minuscule margin (setting 1 margin > setting 2)",
                "near max margin (a) vs minuscule (b), shown as pictures", col(1, "margin"), col(2, "margin"),
                ("margin 1", "margin 2")),
        all_reach("From the setting-2 model SGD still fits the true labels (setting 3)", "100% training accuracy",
                  col(3, "train acc %"), "setting 3"),
        greater("Started at the setting-2 model, SGD ends at a small-margin model (setting 1 margin > setting 3)",
                "unnatural boundary with small margin (c)", col(1, "margin"), col(3, "margin"),
                ("margin 1", "margin 3")),
        greater("The small-margin model generalizes worse (setting 1 test acc > setting 3)",
                "not measured in the paper (implied)", col(1, "test acc %"), col(3, "test acc %"),
                ("test 1", "test 3")),
        greater("Augmentation, l2 and momentum escape the bad start (setting 4 margin > setting 3)",
                "max-margin boundary again (d)", col(4, "margin"), col(3, "margin"), ("margin 4", "margin 3")),
    ]


def claim1_fit(runs: pd.DataFrame) -> list[Verdict]:
    """Claim 1: vanilla SGD reaches 100% training accuracy from either init (main grid, per model)."""
    return [all_reach(f"{m}: vanilla SGD fits the training set from both inits", "100% (Figure 2)",
                      _col(runs[runs["model"] == m], "train acc %", mode="vanilla"), "vanilla, both inits")
            for m in runs["model"].unique()]


def claim2_drop(runs: pd.DataFrame) -> list[Verdict]:
    """Claim 2: from the adversarial init vanilla SGD ends at clearly lower test accuracy."""
    return family([greater(f"{m}: vanilla SGD generalizes clearly worse from the adversarial init",
                           "drop of up to 40 points; ResNet18 CIFAR-10 84.8 vs 56.0 (Table 2)",
                           _col(runs, "test acc %", model=m, mode="vanilla", init="random"),
                           _col(runs, "test acc %", model=m, mode="vanilla", init="adversarial"),
                           ("random", "adversarial"), min_gap=CLEAR_GAP)
                   for m in runs["model"].unique()])


def claim3_sota(runs: pd.DataFrame) -> list[Verdict]:
    """Claim 3: with augmentation, l2 and momentum both inits end at the same test accuracy."""
    return family([within(f"{m}: SOTA SGD ends at the same test accuracy from both inits",
                          "same test accuracy; ResNet18 CIFAR-10 95.3 vs 95.3 (Table 2)",
                          _col(runs, "test acc %", model=m, mode="SOTA", init="random"),
                          _col(runs, "test acc %", model=m, mode="SOTA", init="adversarial"),
                          ("random", "adversarial"), tolerance=SAME)
                   for m in runs["model"].unique()])


def claim4_distance(distances: pd.DataFrame) -> list[Verdict]:
    """Claim 4: from the adversarial init vanilla SGD moves little (less than from a random init) and SOTA SGD
    moves far (farther than vanilla). Each of the two claims over the models is one family."""
    d = lambda m, col: _col(distances, col, model=m)
    models = distances["model"].unique()
    less = family([greater(f"{m}: from the adversarial init vanilla SGD moves less than from a random init",
                           "d(W0A, WVA) ~0.2 vs d(W0R, WVR) ~0.9 (Table 1)", d(m, "d(W0R, WVR)"), d(m, "d(W0A, WVA)"),
                           ("d(W0R, WVR)", "d(W0A, WVA)")) for m in models])
    farther = family([greater(f"{m}: from the adversarial init SOTA SGD moves farther than vanilla SGD",
                              "d(W0A, WSA) 7 to 83 vs d(W0A, WVA) ~0.2 (Table 1)", d(m, "d(W0A, WSA)"),
                              d(m, "d(W0A, WVA)"), ("d(W0A, WSA)", "d(W0A, WVA)")) for m in models])
    return [v for pair in zip(less, farther) for v in pair]


def _gap(table2_runs: pd.DataFrame, mode: str) -> list[float]:
    rand = _col(table2_runs, "test acc %", mode=mode, init="random")
    adv = _col(table2_runs, "test acc %", mode=mode, init="adversarial")
    return [r - a for r, a in zip(rand, adv)]


def claim5_heuristics(table2_runs: pd.DataFrame) -> list[Verdict]:
    """Claim 5 (Table 2): each single heuristic leaves less than MOST of the vanilla gap; any two close it."""
    vanilla = _gap(table2_runs, "Vanilla SGD")
    singles = family([greater(f"{h} alone recovers most of the vanilla gap",
                              "Table 2: each technique alone largely escapes the bad init",
                              [MOST * g for g in vanilla], _gap(table2_runs, h),
                              (f"{MOST:g} x vanilla gap", f"{h} gap"))
                      for h in ("DA", "l2", "Momentum")])
    pairs = family([within(f"{h}: both inits end at the same test accuracy",
                           "Table 2: with a second technique the test error no longer depends on the init",
                           _col(table2_runs, "test acc %", mode=h, init="random"),
                           _col(table2_runs, "test acc %", mode=h, init="adversarial"),
                           ("random", "adversarial"), tolerance=SAME)
                    for h in ("DA+l2", "DA+Momentum", "l2+Momentum")])
    return singles + pairs


def claim6_complexity(measures: pd.DataFrame) -> list[Verdict]:
    """Claim 6: adversarially initialized vanilla models have larger norms (Figure 5) and lower accuracy under
    FGSM (Figure 6; the mean over the non-zero epsilons). Each of the four claims over the models is one family."""
    vanilla = measures[measures["mode"] == "vanilla"]
    norms = vanilla[vanilla["epsilon"] == vanilla["epsilon"].min()]
    attacked = vanilla[vanilla["epsilon"] > 0].groupby(["model", "seed", "init"], as_index=False)["fgsm acc %"].mean()
    models = measures["model"].unique()
    families = [family([greater(f"{m}: the adversarially initialized vanilla model has a larger {norm} norm",
                                "larger for adversarial init, vanilla SGD (Figure 5, ResNet50)",
                                _col(norms, norm, model=m, init="adversarial"),
                                _col(norms, norm, model=m, init="random"), ("adversarial", "random"))
                        for m in models])
                for norm in ("frobenius", "path l1", "path l2")]
    families.append(family([greater(f"{m}: the adversarially initialized vanilla model is less robust to FGSM",
                                    "lower accuracy under FGSM (Figure 6, ResNet50)",
                                    _col(attacked, "fgsm acc %", model=m, init="random"),
                                    _col(attacked, "fgsm acc %", model=m, init="adversarial"),
                                    ("random", "adversarial")) for m in models]))
    return [v for per_model in zip(*families) for v in per_model]


def _fitted_change(r_table: pd.DataFrame) -> pd.DataFrame:
    """Per model, mode and seed: the least-squares line of test accuracy against R, as its change from R = 0 to
    the largest R (test-accuracy points; negative: accuracy falls as R grows)."""
    def change(rows: pd.DataFrame) -> float:
        r, acc = rows["R"].astype(float), rows["test acc %"].astype(float)
        slope = ((r - r.mean()) * (acc - acc.mean())).sum() / ((r - r.mean()) ** 2).sum()
        return float(slope * r.max())
    return (r_table.groupby(["model", "mode", "seed"])[["R", "test acc %"]].apply(change)
            .rename("change").reset_index())


def figure4(r_table: pd.DataFrame) -> list[Verdict]:
    """Figure 4: as R grows, vanilla SGD from the adversarial init ends at clearly lower test accuracy, and SOTA
    SGD does not move (the change over the R sweep within SAME). Each claim over the models is one family."""
    changes = _fitted_change(r_table)
    models = changes["model"].unique()
    drop = lambda m, mode: [-c for c in _col(changes, "change", model=m, mode=mode)]
    top = int(r_table["R"].max())
    vanilla = family([greater(f"{m}: vanilla SGD's test accuracy falls as R grows (R = 0 to {top})",
                              "falls as R grows, fast at first (Figure 4, CIFAR-10)", drop(m, "vanilla"),
                              [0.0] * len(drop(m, "vanilla")), ("fitted drop", "none"), min_gap=CLEAR_GAP)
                      for m in models])
    sota = family([within(f"{m}: SOTA SGD's test accuracy does not change with R (R = 0 to {top})",
                          "flat in R (Figure 4, CIFAR-10)", drop(m, "SOTA"), [0.0] * len(drop(m, "SOTA")),
                          ("fitted drop", "none"), tolerance=SAME)
                   for m in models])
    return [v for pair in zip(vanilla, sota) for v in pair]


# One function per chapter: its configuration and the store -> its verdicts.

def sketch_verdicts(cfg: SketchConfig, store: Store | None = None) -> list[Verdict]:
    """The sketch chapter (Figure 1)."""
    return figure1(sketch.sketch_table(sketch.run_sketch(cfg, store or Store())))


def training_verdicts(cfg: PaperAConfig, store: Store | None = None) -> list[Verdict]:
    """The training chapter: claims 1-4 on the main grid."""
    store = store or Store()
    return training_claims(experiments.runs_table(experiments.main_grid(cfg), store), experiments.distances(cfg, store))


def training_claims(runs: pd.DataFrame, per_seed: pd.DataFrame | None) -> list[Verdict]:
    """Claims 1-4 on a main grid's runs table and Table 1 per seed (claim 4 left out without it): the chapter's
    own runs, or the tables shipped from a GPU (paper_a.shipped)."""
    return (claim1_fit(runs) + claim2_drop(runs) + claim3_sota(runs)
            + (claim4_distance(per_seed) if per_seed is not None and len(per_seed) else []))


def replication_verdicts(cfg: PaperAConfig, store: Store | None = None) -> list[Verdict]:
    """The replication-factor chapter: Figure 4 on the R sweep."""
    return figure4(experiments.runs_table(experiments.r_grid(cfg), store or Store()))


def heuristics_verdicts(cfg: PaperAConfig, store: Store | None = None) -> list[Verdict]:
    """The heuristics chapter: claim 5 on Table 2's grid."""
    return claim5_heuristics(experiments.runs_table(experiments.table2_grid(cfg), store or Store()))


def complexity_verdicts(cfg: PaperAConfig, store: Store | None = None) -> list[Verdict]:
    """The complexity chapter: claim 6 on the main grid's norms and FGSM accuracies."""
    return claim6_complexity(experiments.measures(cfg, store or Store()))
