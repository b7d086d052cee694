"""Paper B's claims (PROTOCOL.md, B4) as verdicts on the tidy tables of badminima.paper_b.experiments: one row per data
set, width, experiment and seed, with the columns dataset, name, width, experiment, seed, "test acc %", steps, cap,
"hit cap", "phase-1 hit cap", ...

Each chapter's verdicts come from one function of its configuration and the store (`widths_verdicts`,
`boundaries_verdicts`): the chapter shows what it returns and the "Does it reproduce?" page calls
it with the configuration the chapter was executed with. A claim made at several widths or data sets is one family
of tests (Holm's correction, badminima.core.stats.family). Steps to zero training error are censored at the cap
(badminima.core.stats.fewer)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import pandas as pd

from badminima.core.stats import Verdict, all_reach, family, fewer, greater, within
from badminima.core.store import Store
from badminima.paper_b import experiments, protocol

if TYPE_CHECKING:
    from badminima.paper_b.protocol import WidthsConfig

EXP3_SAME = 1.0   # test-accuracy points: Exp 3 "does as well as" Exp 1 on the Gaussians when within this
PHASE1 = ("Exp 2", "Exp 3", "Norm")   # the experiments that start from phase 1's weights

THRESHOLDS = (f"Exp 3 *does as well as* Exp 1 on the Gaussians when their test accuracies are within "
              f"{EXP3_SAME:g} point(s). Every verdict on Exp 2, Exp 3 or the Norm run says in how many of its "
              f"runs phase 1 fitted the random labels (reached zero training error before its cap).")


def _rows(table: pd.DataFrame, dataset: str, experiment: str, widths: Sequence[int] | None = None) -> pd.DataFrame:
    """One row per (width, seed), in the same order for every experiment, so that columns pair up."""
    rows = table[(table.dataset == dataset) & (table.experiment == experiment)]
    if widths is not None:
        rows = rows[rows.width.isin(list(widths))]
    return rows.sort_values(["width", "seed"])


def _runs(table: pd.DataFrame, dataset: str, experiment: str, column: str, widths: Sequence[int] | None = None
          ) -> list[float]:
    return _rows(table, dataset, experiment, widths)[column].astype(float).tolist()


def _steps(table: pd.DataFrame, dataset: str, experiment: str, widths: Sequence[int] | None = None
           ) -> list[float | None]:
    """Steps to zero training error per run; None for a run that hit the cap (censored)."""
    return [None if pd.isna(v) else float(v) for v in _rows(table, dataset, experiment, widths)["steps"]]


def _names(table: pd.DataFrame) -> dict[str, str]:
    return dict(zip(table.dataset, table.name))


def _widths(table: pd.DataFrame, dataset: str) -> list[int]:
    return sorted(table[table.dataset == dataset].width.unique().tolist())


def _noting(verdict: Verdict, table: pd.DataFrame, dataset: str, experiments_: Sequence[str],
            widths: Sequence[int] | None = None) -> Verdict:
    """Adds to `ours` how many of the compared runs stopped at the step cap instead of at zero training error,
    and, when an experiment starts from phase 1, in how many runs phase 1 fitted the random labels."""
    rows = {e: _rows(table, dataset, e, widths) for e in experiments_}
    hits = [f"{e} {int(r['hit cap'].sum())}" for e, r in rows.items()]
    verdict.ours += f"; runs at the step cap (of {len(rows[experiments_[0]])}): {', '.join(hits)}"
    if any(e in PHASE1 for e in experiments_):
        phase1 = _rows(table, dataset, "Exp 2", widths)["phase-1 hit cap"].astype(bool)
        verdict.ours += f"; phase 1 fitted the random labels in {int((~phase1).sum())} of {len(phase1)} runs"
    return verdict


def widths_phase1_fits(table: pd.DataFrame) -> list[Verdict]:
    """Exp 2 and 3 start where phase 1 fitted the random labels: did it, in every run?"""
    return [all_reach(f"Phase 1 fits the random labels ({name})", "zero training error (how Exp 2 and 3 are defined)",
                      _runs(table, d, "Exp 2", "phase-1 acc %"), f"phase 1 on {name}, all widths")
            for d, name in _names(table).items()]


def widths_exp2_worse(table: pd.DataFrame) -> list[Verdict]:
    """Figures 1 and 4: the adversarial init (Exp 2) ends at a lower test accuracy than the random init (Exp 1),
    at every data set and width: one family."""
    verdicts = []
    for d, name in _names(table).items():
        for p in _widths(table, d):
            exp1, exp2 = (_runs(table, d, e, "test acc %", [p]) for e in ("Exp 1", "Exp 2"))
            verdict = greater(f"Exp 2 generalizes worse than Exp 1 ({name}, p = {p})",
                              "a statistically significant gap in all cases (Fig. 1, 4)", exp1, exp2,
                              ("Exp 1", "Exp 2"))
            verdicts.append(_noting(verdict, table, d, ("Exp 1", "Exp 2"), [p]))
    return family(verdicts)


def widths_exp3_matches(table: pd.DataFrame) -> list[Verdict]:
    """Figure 1a: on the linearly separable Gaussians, adversarial features with a fresh readout (Exp 3) do as well
    as the baseline; tested within EXP3_SAME points of test accuracy, pooled over widths."""
    if "gaussians" not in set(table.dataset):
        return []
    verdict = within("Exp 3 matches Exp 1 on Gaussians (all widths pooled)",
                     "as well as the baseline, all close to perfect (Fig. 1a)",
                     _runs(table, "gaussians", "Exp 3", "test acc %"), _runs(table, "gaussians", "Exp 1", "test acc %"),
                     ("Exp 3", "Exp 1"), EXP3_SAME)
    return [_noting(verdict, table, "gaussians", ("Exp 3", "Exp 1"))]


def widths_norm_between(table: pd.DataFrame) -> list[Verdict]:
    """Section 2's norm hypothesis: a random init at the adversarial init's norm ends between the baseline and the
    adversarial init (the paper saw this on VGG16; here on N_p), pooled over widths. Each of the two claims over
    the data sets is one family."""
    names = _names(table)
    acc = lambda d, e: _runs(table, d, e, "test acc %")
    below = family([_noting(greater(f"Norm-matched init is worse than the baseline ({name}, widths pooled)",
                                    "higher than adversarial but below the baseline (VGG16, Sec. 2)",
                                    acc(d, "Exp 1"), acc(d, "Norm"), ("Exp 1", "Norm")), table, d, ("Exp 1", "Norm"))
                    for d, name in names.items()])
    above = family([_noting(greater(f"Norm-matched init is better than the adversarial init ({name}, widths pooled)",
                                    "higher than adversarial but below the baseline (VGG16, Sec. 2)",
                                    acc(d, "Norm"), acc(d, "Exp 2"), ("Norm", "Exp 2")), table, d, ("Norm", "Exp 2"))
                    for d, name in names.items()])
    return [v for pair in zip(below, above) for v in pair]


def _fewer_steps(claim: str, paper: str, table: pd.DataFrame, dataset: str, slow: str, fast: str,
                 widths: Sequence[int] | None = None) -> Verdict:
    """Claim that `fast` reaches zero training error in fewer steps than `slow`, a run at the cap censored."""
    caps = _runs(table, dataset, fast, "cap", widths)
    verdict = fewer(claim, paper, _steps(table, dataset, fast, widths), _steps(table, dataset, slow, widths), caps,
                    (fast, slow))
    return _noting(verdict, table, dataset, (fast, slow), widths)


def widths_training_time(table: pd.DataFrame) -> list[Verdict]:
    """Figure 3: steps to zero training error. Each claim over the data sets is one family."""
    names = _names(table)
    verdicts = []
    if "gaussians" in names:
        widest = [_widths(table, "gaussians")[-1]]
        verdicts += family([_fewer_steps(f"Gaussians: Exp 2 takes more steps than Exp 1 (p = {widest[0]})",
                                         "longer from the adversarial init at large widths (Fig. 3a)", table,
                                         "gaussians", "Exp 2", "Exp 1", widest)])
    others = [d for d in ("spirals", "vmnist") if d in names]
    shorter = family([_fewer_steps(f"{names[d]}: Exp 2 takes fewer steps than Exp 1 (widths pooled)",
                                   "shorter from the adversarial init (Fig. 3c-d)", table, d, "Exp 1", "Exp 2")
                      for d in others])
    longer = family([_fewer_steps(f"{names[d]}: Exp 3 takes more steps than Exp 1 (widths pooled)",
                                  "much longer with adversarial features and a zero readout (Sec. 3.3)", table, d,
                                  "Exp 3", "Exp 1") for d in others])
    return verdicts + [v for pair in zip(shorter, longer) for v in pair]


def widths_small_mnist(table: pd.DataFrame) -> list[Verdict]:
    """Figure 1c: on vectorized MNIST, at small widths the adversarial features with a fresh readout (Exp 3) beat
    the fully adversarial init (Exp 2)."""
    if "vmnist" not in set(table.dataset):
        return []
    smallest = [_widths(table, "vmnist")[0]]
    verdict = greater(f"{_names(table)['vmnist']}: Exp 3 beats Exp 2 at the smallest width (p = {smallest[0]})",
                      "Exp 3 outperforms Exp 2 for small widths (Fig. 1c)",
                      _runs(table, "vmnist", "Exp 3", "test acc %", smallest),
                      _runs(table, "vmnist", "Exp 2", "test acc %", smallest), ("Exp 3", "Exp 2"))
    return [_noting(verdict, table, "vmnist", ("Exp 3", "Exp 2"), smallest)]


def sweep_claims(table: pd.DataFrame) -> list[Verdict]:
    """Every Paper B claim that a width sweep's table tests."""
    return (widths_phase1_fits(table) + widths_exp2_worse(table) + widths_exp3_matches(table)
            + widths_small_mnist(table) + widths_training_time(table) + widths_norm_between(table))


def boundary_claims(lengths: pd.DataFrame, table: pd.DataFrame) -> list[Verdict]:
    """Figure 2's reading, from the boundary lengths of badminima.paper_b.experiments.boundary_table: the adversarial
    init leaves a jagged boundary (longer than Exp 1's) and resetting the readout smooths it (Exp 3 shorter than
    Exp 2). `table` (the same runs' sweep table) says how many of them had a phase 1 that fitted. Each of the two
    claims over the data sets and widths is one family."""
    jagged, smooth = [], []
    for (d, p), rows in lengths.groupby(["dataset", "width"], sort=False):
        length = lambda e: rows[rows.experiment == e].sort_values("seed")["boundary length"].tolist()
        name = rows["name"].iloc[0]
        jagged.append(_noting(greater(f"Exp 2 leaves a more jagged boundary than Exp 1 ({name}, p = {p})",
                                      "jagged boundaries from the adversarial init (Fig. 2)", length("Exp 2"),
                                      length("Exp 1"), ("Exp 2 length", "Exp 1 length")),
                              table, d, ("Exp 2", "Exp 1"), [p]))
        smooth.append(_noting(greater(f"Resetting the readout smooths the boundary: Exp 3 shorter than Exp 2 "
                                      f"({name}, p = {p})", "resetting the readout weights smoothens them (Fig. 2)",
                                      length("Exp 2"), length("Exp 3"), ("Exp 2 length", "Exp 3 length")),
                              table, d, ("Exp 2", "Exp 3"), [p]))
    return [v for pair in zip(family(jagged), family(smooth)) for v in pair]


# One function per chapter: its configuration and the store -> its verdicts.

def widths_verdicts(cfg: WidthsConfig, store: Store | None = None) -> list[Verdict]:
    """The widths chapter: every claim of the width sweeps."""
    return sweep_claims(experiments.sweep(cfg, store or Store()))


def _boundaries(cfg: WidthsConfig, width: int, store: Store) -> list[Verdict]:
    two_d = tuple(d for d in cfg.datasets if d in protocol.TOY)
    runs = pd.concat([experiments.width_table(cfg, d, width, store) for d in two_d], ignore_index=True)
    return boundary_claims(experiments.boundary_table(cfg, two_d, width, store), runs)


def boundaries_verdicts(cfg: WidthsConfig, store: Store | None = None) -> list[Verdict]:
    """The boundaries chapter: Figure 2's reading at the configuration's boundary width."""
    return _boundaries(cfg, cfg.boundary_width, store or Store())


def budget_findings(table: pd.DataFrame) -> list[Verdict]:
    """Beyond the paper, on experiments.budget_table: for each data set, is Exp 2 already below Exp 1 after the
    smallest phase-1 budget, and is the gap larger when phase 1 runs to zero error (or the cap) than after that
    budget? Paired over seeds; each question over the data sets is one family. Not the paper's claims, so not on
    the "Does it reproduce?" page."""
    names = _names(table)
    smallest, longest = [], []
    for dataset in dict.fromkeys(table.dataset):
        rows = table[table.dataset == dataset].sort_values("seed")
        first = rows[rows.budget == rows.budget.min()]
        full = rows[rows.stopped != "budget"]
        b = f"{int(first.budget.iloc[0]):,}"
        smallest.append(greater(f"{names[dataset]}: Exp 2 below Exp 1 after {b} steps of phase 1", "(not in the paper)",
                                first["Exp 1 test %"], first["Exp 2 test %"], ("Exp 1", "Exp 2")))
        fitted = f"{int(full['phase-1 fitted'].sum())} of {len(full)} fitted"
        longest.append(greater(f"{names[dataset]}: gap larger from phase 1 to zero error ({fitted}) than after {b} "
                               "steps", "(not in the paper)", full["gap"], first["gap"], ("to zero error", b)))
    return family(smallest) + family(longest)


