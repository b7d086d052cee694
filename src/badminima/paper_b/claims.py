"""Paper B's claims (PROTOCOL.md, B4) as verdicts on the tidy tables of badminima.paper_b.experiments: one row per data set,
width, experiment and seed, with the columns dataset, name, width, experiment, seed, "test acc %", steps, cap, ..."""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from badminima.core.stats import UNCLEAR, Verdict, all_reach, greater, within

def _runs(table: pd.DataFrame, dataset: str, experiment: str, column: str, widths: Sequence[int] | None = None
          ) -> list[float]:
    """One value per (width, seed), in the same order for every experiment, so that lists pair up."""
    rows = table[(table.dataset == dataset) & (table.experiment == experiment)]
    if widths is not None:
        rows = rows[rows.width.isin(list(widths))]
    rows = rows.sort_values(["width", "seed"])
    if column == "steps":  # a run that hit the cap took at least the cap: count it there
        return rows["steps"].astype("Float64").fillna(rows["cap"].astype(float)).astype(float).tolist()
    return rows[column].astype(float).tolist()


def _names(table: pd.DataFrame) -> dict[str, str]:
    return dict(zip(table.dataset, table.name))


def _widths(table: pd.DataFrame, dataset: str) -> list[int]:
    return sorted(table[table.dataset == dataset].width.unique().tolist())


def _noting_caps(verdict: Verdict, table: pd.DataFrame, dataset: str, experiments: Sequence[str],
                 widths: Sequence[int] | None = None) -> Verdict:
    """Adds to `ours` how many of the compared runs stopped at the step cap instead of at zero training error."""
    hits = [f"{e} {int(sum(_runs(table, dataset, e, 'hit cap', widths)))}" for e in experiments]
    runs = len(_runs(table, dataset, experiments[0], "hit cap", widths))
    verdict.ours += f"; runs at the step cap (of {runs}): {', '.join(hits)}"
    return verdict


def widths_phase1_fits(table: pd.DataFrame) -> list[Verdict]:
    """Exp 2 and 3 start where phase 1 fitted the random labels: did it, in every run?"""
    return [all_reach(f"Phase 1 fits the random labels ({name})", "zero training error (how Exp 2 and 3 are defined)",
                      _runs(table, d, "Exp 2", "phase-1 acc %"), f"phase 1 on {name}, all widths")
            for d, name in _names(table).items()]


def widths_exp2_worse(table: pd.DataFrame) -> list[Verdict]:
    """Figures 1 and 4: the adversarial init (Exp 2) ends at a lower test accuracy than the random init (Exp 1)."""
    verdicts = []
    for d, name in _names(table).items():
        for p in _widths(table, d):
            exp1, exp2 = (_runs(table, d, e, "test acc %", [p]) for e in ("Exp 1", "Exp 2"))
            verdict = greater(f"Exp 2 generalizes worse than Exp 1 ({name}, p = {p})",
                              "a statistically significant gap in all cases (Fig. 1, 4)", exp1, exp2,
                              ("Exp 1", "Exp 2"))
            verdicts.append(_noting_caps(verdict, table, d, ("Exp 1", "Exp 2"), [p]))
    return verdicts


def widths_exp3_matches(table: pd.DataFrame, tolerance: float = 1.0) -> list[Verdict]:
    """Figure 1a: on the linearly separable Gaussians, adversarial features with a fresh readout (Exp 3) do as well
    as the baseline; tested within `tolerance` points of test accuracy, pooled over widths."""
    if "gaussians" not in set(table.dataset):
        return []
    verdict = within("Exp 3 matches Exp 1 on Gaussians (all widths pooled)",
                     "as well as the baseline, all close to perfect (Fig. 1a)",
                     _runs(table, "gaussians", "Exp 3", "test acc %"), _runs(table, "gaussians", "Exp 1", "test acc %"),
                     ("Exp 3", "Exp 1"), tolerance)
    return [_noting_caps(verdict, table, "gaussians", ("Exp 3", "Exp 1"))]


def widths_norm_between(table: pd.DataFrame) -> list[Verdict]:
    """Section 2's norm hypothesis: a random init at the adversarial init's norm ends between the baseline and the
    adversarial init (the paper saw this on VGG16; here on N_p), pooled over widths."""
    verdicts = []
    for d, name in _names(table).items():
        exp1, norm, exp2 = (_runs(table, d, e, "test acc %") for e in ("Exp 1", "Norm", "Exp 2"))
        verdicts += [
            _noting_caps(greater(f"Norm-matched init is worse than the baseline ({name}, widths pooled)",
                                 "higher than adversarial but below the baseline (VGG16, Sec. 2)", exp1, norm,
                                 ("Exp 1", "Norm")), table, d, ("Exp 1", "Norm")),
            _noting_caps(greater(f"Norm-matched init is better than the adversarial init ({name}, widths pooled)",
                                 "higher than adversarial but below the baseline (VGG16, Sec. 2)", norm, exp2,
                                 ("Norm", "Exp 2")), table, d, ("Norm", "Exp 2")),
        ]
    return verdicts


def _fewer_steps(claim: str, paper: str, table: pd.DataFrame, dataset: str, slow: str, fast: str,
                 widths: Sequence[int] | None = None) -> Verdict:
    """Claim that `fast` reaches zero training error in fewer steps than `slow`: greater() on the step counts, a
    run that hit the cap counted at the cap. When every run of both hit the cap there is nothing to compare."""
    verdict = greater(claim, paper, _runs(table, dataset, slow, "steps", widths),
                      _runs(table, dataset, fast, "steps", widths), (slow, fast))
    _noting_caps(verdict, table, dataset, (slow, fast), widths)
    hits = [sum(_runs(table, dataset, e, "hit cap", widths)) for e in (slow, fast)]
    runs = len(_runs(table, dataset, slow, "hit cap", widths))
    if hits == [runs, runs]:
        verdict.verdict, verdict.test = UNCLEAR, "every run of both hit the step cap: nothing to compare"
    return verdict


def widths_training_time(table: pd.DataFrame) -> list[Verdict]:
    """Figure 3: steps to zero training error (a run that hit the cap counts at the cap, a lower bound)."""
    verdicts = []
    names = _names(table)
    if "gaussians" in names:
        widest = [_widths(table, "gaussians")[-1]]
        verdicts.append(_fewer_steps(f"Gaussians: Exp 2 takes more steps than Exp 1 (p = {widest[0]})",
                                     "longer from the adversarial init at large widths (Fig. 3a)", table,
                                     "gaussians", "Exp 2", "Exp 1", widest))
    for d in ("spirals", "vmnist"):
        if d in names:
            verdicts += [
                _fewer_steps(f"{names[d]}: Exp 2 takes fewer steps than Exp 1 (widths pooled)",
                             "shorter from the adversarial init (Fig. 3c-d)", table, d, "Exp 1", "Exp 2"),
                _fewer_steps(f"{names[d]}: Exp 3 takes more steps than Exp 1 (widths pooled)",
                             "much longer with adversarial features and a zero readout (Sec. 3.3)", table, d,
                             "Exp 3", "Exp 1"),
            ]
    return verdicts


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
    return [_noting_caps(verdict, table, "vmnist", ("Exp 3", "Exp 2"), smallest)]


def widths_verdicts(table: pd.DataFrame) -> list[Verdict]:
    """Every Paper B claim that the width sweeps test."""
    return (widths_phase1_fits(table) + widths_exp2_worse(table) + widths_exp3_matches(table)
            + widths_small_mnist(table) + widths_training_time(table) + widths_norm_between(table))


def boundary_verdicts(lengths: pd.DataFrame) -> list[Verdict]:
    """Figure 2's reading, from the boundary lengths of badminima.paper_b.experiments.boundary_table: the adversarial init
    leaves a jagged boundary (longer than Exp 1's) and resetting the readout smooths it (Exp 3 shorter than
    Exp 2)."""
    verdicts = []
    for (d, p), rows in lengths.groupby(["dataset", "width"], sort=False):
        length = lambda e: rows[rows.experiment == e].sort_values("seed")["boundary length"].tolist()
        name = rows["name"].iloc[0] if "name" in rows else d
        verdicts += [
            greater(f"Exp 2 leaves a more jagged boundary than Exp 1 ({name}, p = {p})",
                    "jagged boundaries from the adversarial init (Fig. 2)", length("Exp 2"), length("Exp 1"),
                    ("Exp 2 length", "Exp 1 length")),
            greater(f"Resetting the readout smooths the boundary: Exp 3 shorter than Exp 2 ({name}, p = {p})",
                    "resetting the readout weights smoothens them (Fig. 2)", length("Exp 2"), length("Exp 3"),
                    ("Exp 2 length", "Exp 3 length")),
        ]
    return verdicts
