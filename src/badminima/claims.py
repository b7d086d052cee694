"""Stored results -> verdicts on the papers' claims, each with its numbers and the test used. No verdict is
written by hand: every one comes from a comparison below."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import pandas as pd

HOLDS, FAILS, UNCLEAR = "holds", "does not hold", "inconclusive"


@dataclass
class Verdict:
    claim: str
    paper: str      # what the paper reports
    ours: str       # what our runs gave
    verdict: str    # holds / does not hold / inconclusive
    test: str       # how the verdict was reached


def _fmt(values: Sequence[float]) -> str:
    s = pd.Series(list(values), dtype=float)
    return f"{s.mean():.3g} ± {s.std():.2g}" if len(s) > 1 else f"{s.mean():.3g}"


def greater(claim: str, paper: str, a: Sequence[float], b: Sequence[float], names: tuple[str, str],
            min_gap: float = 0.0) -> Verdict:
    """Claim that a > b (by more than `min_gap`), tested on the paired differences over seeds: it holds when the
    mean difference exceeds min_gap by two standard errors, fails when the mean difference is at most min_gap,
    and is inconclusive in between. With one seed there is no spread: the sign alone decides."""
    diffs = pd.Series([x - y for x, y in zip(a, b)], dtype=float)
    k, mean = len(diffs), diffs.mean()
    se = diffs.std() / math.sqrt(k) if k > 1 else 0.0
    if mean <= min_gap:
        verdict = FAILS
    elif k == 1 or mean - min_gap > 2 * se:
        verdict = HOLDS
    else:
        verdict = UNCLEAR
    ours = f"{names[0]} {_fmt(a)} vs {names[1]} {_fmt(b)} (gap {mean:.3g}" + (f", s.e. {se:.2g})" if k > 1 else ")")
    test = (f"paired over {k} seeds: mean gap > {min_gap:g} + 2 s.e." if k > 1
            else f"one seed: gap > {min_gap:g}, no spread to test against")
    return Verdict(claim, paper, ours, verdict, test)


def all_reach(claim: str, paper: str, accuracies: Sequence[float], what: str, target: float = 100.0) -> Verdict:
    """Claim that every run reached `target` (e.g. 100% training accuracy)."""
    reached = sum(a >= target for a in accuracies)
    verdict = HOLDS if reached == len(accuracies) else FAILS
    ours = f"{what}: {reached} of {len(accuracies)} runs reached {target:g}% (lowest {min(accuracies):.2f}%)"
    return Verdict(claim, paper, ours, verdict, f"every run at or above {target:g}%")


def sketch_verdicts(table: pd.DataFrame) -> list[Verdict]:
    """Paper A's Figure 1 claims from the per-seed table of badminima.sketch."""
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


def verdict_table(verdicts: list[Verdict]) -> pd.DataFrame:
    return pd.DataFrame([v.__dict__ for v in verdicts])[["claim", "paper", "ours", "verdict", "test"]]


def within(claim: str, paper: str, a: Sequence[float], b: Sequence[float], names: tuple[str, str],
           tolerance: float) -> Verdict:
    """Claim that a and b are the same up to `tolerance`, tested on the paired differences over seeds: it holds
    when |mean difference| + 2 s.e. <= tolerance, fails when |mean difference| - 2 s.e. > tolerance, and is
    inconclusive in between. With one seed the difference alone decides."""
    diffs = pd.Series([x - y for x, y in zip(a, b)], dtype=float)
    k, mean = len(diffs), abs(diffs.mean())
    se = diffs.std() / math.sqrt(k) if k > 1 else 0.0
    verdict = HOLDS if mean + 2 * se <= tolerance else FAILS if mean - 2 * se > tolerance else UNCLEAR
    ours = f"{names[0]} {_fmt(a)} vs {names[1]} {_fmt(b)} (|gap| {mean:.3g}" + (f", s.e. {se:.2g})" if k > 1 else ")")
    test = f"paired over {k} seed(s): |mean gap| ± 2 s.e. against a tolerance of {tolerance:g}"
    return Verdict(claim, paper, ours, verdict, test)


# Paper B (badminima.widths). Each function reads the tidy table of widths.sweep: one row per data set, width,
# experiment and seed, with the columns dataset, name, width, experiment, seed, "test acc %", steps, cap, ...

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
    """Figure 2's reading, from the boundary lengths of badminima.widths.boundary_table: the adversarial init
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
