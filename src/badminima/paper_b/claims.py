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

from badminima.core.stats import Precondition, Verdict, all_reach, family, fewer, greater, no_number, within
from badminima.core.store import Store
from badminima.paper_b import boundaries, experiments, protocol

if TYPE_CHECKING:
    from badminima.paper_b.protocol import WidthsConfig

EXP3_SAME = 1.0   # test-accuracy points: Exp 3 "does as well as" Exp 1 on the Gaussians when within this
PHASE1 = ("Exp 2", "Exp 3", "Norm")   # the experiments that start from phase 1's weights
NOT_CLAIMED = no_number("neither paper makes this claim")
CURVES = no_number("Paper B shows it as curves or pictures (Figures 1-5), with no number to hold its size to")

THRESHOLDS = (f"Exp 3 *does as well as* Exp 1 on the Gaussians when their test accuracies are within "
              f"{EXP3_SAME:g} point(s). Paper B gives its effects as curves, so only a significantly opposite effect "
              f"contradicts a claim. Every claim on Exp 2, Exp 3 or the Norm run presupposes that phase 1 fitted the "
              f"random labels (zero training error before its cap), and every claim on test accuracy that the "
              f"compared runs reached zero training error before theirs (the paper's runs all do): a seed whose runs "
              f"missed either is left out, and a claim left with fewer than two seeds is not tested. Claims pooled "
              f"over widths test one value per seed.")


def _rows(table: pd.DataFrame, dataset: str, experiment: str, widths: Sequence[int] | None = None) -> pd.DataFrame:
    """The runs of one experiment, indexed by seed (and by width too when more than one width is asked for: the
    comparison is then pooled over widths, one value per seed)."""
    rows = table[(table.dataset == dataset) & (table.experiment == experiment)]
    if widths is not None:
        rows = rows[rows.width.isin(list(widths))]
    return rows.set_index("seed" if widths is not None and len(widths) == 1 else ["width", "seed"])


def _runs(table: pd.DataFrame, dataset: str, experiment: str, column: str, widths: Sequence[int] | None = None
          ) -> pd.Series:
    return _rows(table, dataset, experiment, widths)[column].astype(float)


def _steps(table: pd.DataFrame, dataset: str, experiment: str, widths: Sequence[int] | None = None) -> pd.Series:
    """Steps to zero training error per run; NaN for a run that hit the cap (censored)."""
    return _rows(table, dataset, experiment, widths)["steps"].astype(float)


def _names(table: pd.DataFrame) -> dict[str, str]:
    return dict(zip(table.dataset, table.name))


def _widths(table: pd.DataFrame, dataset: str) -> list[int]:
    return sorted(table[table.dataset == dataset].width.unique().tolist())


def _precondition(table: pd.DataFrame, dataset: str, experiments_: Sequence[str], widths: Sequence[int] | None,
                  finished: bool) -> Precondition | None:
    """Per run: phase 1 fitted (when an experiment starts from it) and, with `finished`, every compared run reached
    zero training error before its cap."""
    rows = {e: _rows(table, dataset, e, widths) for e in experiments_}
    first = rows[experiments_[0]]
    met, parts = pd.Series(True, index=first.index), []
    if any(e in PHASE1 for e in experiments_):
        met &= ~_rows(table, dataset, "Exp 2", widths)["phase-1 hit cap"].astype(bool).reindex(first.index)
        parts.append("phase 1 fitted the random labels")
    if finished:
        for r in rows.values():
            met &= ~r["hit cap"].astype(bool).reindex(first.index)
        parts.append(f"{' and '.join(experiments_)} reached zero training error")
    lost = [r["diverged"] for r in rows.values() if "diverged" in r.columns]
    if any(e in PHASE1 for e in experiments_) and "phase-1 diverged" in table.columns:
        lost.append(_rows(table, dataset, "Exp 2", widths)["phase-1 diverged"])
    if any(bool(d.astype(bool).any()) for d in lost):   # said only where it happened
        for d in lost:
            met &= ~d.astype(bool).reindex(first.index, fill_value=False)
        parts.append("no compared run diverged (non-finite loss)")
    return Precondition(" and ".join(parts), met) if parts else None


def _noting(verdict: Verdict, table: pd.DataFrame, dataset: str, experiments_: Sequence[str],
            widths: Sequence[int] | None = None) -> Verdict:
    """Adds to `ours` how many of the compared runs stopped at the step cap instead of at zero training error."""
    rows = {e: _rows(table, dataset, e, widths) for e in experiments_}
    hits = [f"{e} {int(r['hit cap'].sum())}" for e, r in rows.items()]
    verdict.ours += f"; runs at the step cap (of {len(rows[experiments_[0]])}): {', '.join(hits)}"
    return verdict


def _accuracy(claim: str, paper: str, table: pd.DataFrame, dataset: str, better: str, worse: str,
              widths: Sequence[int] | None = None) -> Verdict:
    """Claim that `better` ends at a higher test accuracy than `worse`."""
    verdict = greater(claim, paper, _runs(table, dataset, better, "test acc %", widths),
                      _runs(table, dataset, worse, "test acc %", widths), (better, worse), CURVES,
                      precondition=_precondition(table, dataset, (better, worse), widths, finished=True))
    return _noting(verdict, table, dataset, (better, worse), widths)


def widths_phase1_fits(table: pd.DataFrame) -> list[Verdict]:
    """Exp 2 and 3 start where phase 1 fitted the random labels: did it, in every run? A run that hit its cap short
    of it leaves this not tested (the paper's phase 1 runs until it fits)."""
    return [all_reach(f"Phase 1 fits the random labels ({name})", "zero training error (how Exp 2 and 3 are defined)",
                      _runs(table, d, "Exp 2", "phase-1 acc %").tolist(), f"phase 1 on {name}, all widths",
                      capped=_rows(table, d, "Exp 2")["phase-1 hit cap"].astype(bool).tolist())
            for d, name in _names(table).items()]


def widths_exp2_worse(table: pd.DataFrame) -> list[Verdict]:
    """Figures 1 and 4: the adversarial init (Exp 2) ends at a lower test accuracy than the random init (Exp 1),
    at every data set and width: one family."""
    return family([_accuracy(f"Exp 2 generalizes worse than Exp 1 ({name}, p = {p})",
                             "a statistically significant gap in all cases (Fig. 1, 4)", table, d, "Exp 1", "Exp 2",
                             [p])
                   for d, name in _names(table).items() for p in _widths(table, d)])


def widths_exp3_matches(table: pd.DataFrame) -> list[Verdict]:
    """Figure 1a: on the linearly separable Gaussians, adversarial features with a fresh readout (Exp 3) do as well
    as the baseline; tested within EXP3_SAME points of test accuracy, pooled over widths (one value per seed)."""
    if "gaussians" not in set(table.dataset):
        return []
    verdict = within("Exp 3 matches Exp 1 on Gaussians (all widths pooled)",
                     "as well as the baseline, all close to perfect (Fig. 1a)",
                     _runs(table, "gaussians", "Exp 3", "test acc %"), _runs(table, "gaussians", "Exp 1", "test acc %"),
                     ("Exp 3", "Exp 1"), EXP3_SAME,
                     _precondition(table, "gaussians", ("Exp 3", "Exp 1"), None, finished=True))
    return [_noting(verdict, table, "gaussians", ("Exp 3", "Exp 1"))]


def widths_norm_between(table: pd.DataFrame) -> list[Verdict]:
    """Section 2's norm hypothesis: a random init at the adversarial init's norm ends between the baseline and the
    adversarial init (the paper saw this on VGG16; here on N_p), pooled over widths. Each of the two claims over
    the data sets is one family."""
    names = _names(table)
    below = family([_accuracy(f"Norm-matched init is worse than the baseline ({name}, widths pooled)",
                              "higher than adversarial but below the baseline (VGG16, Sec. 2)", table, d, "Exp 1",
                              "Norm") for d, name in names.items()])
    above = family([_accuracy(f"Norm-matched init is better than the adversarial init ({name}, widths pooled)",
                              "higher than adversarial but below the baseline (VGG16, Sec. 2)", table, d, "Norm",
                              "Exp 2") for d, name in names.items()])
    return [v for pair in zip(below, above) for v in pair]


def _fewer_steps(claim: str, paper: str, table: pd.DataFrame, dataset: str, slow: str, fast: str,
                 widths: Sequence[int] | None = None) -> Verdict:
    """Claim that `fast` reaches zero training error in fewer steps than `slow`, a run at the cap censored."""
    verdict = fewer(claim, paper, _steps(table, dataset, fast, widths), _steps(table, dataset, slow, widths),
                    _runs(table, dataset, fast, "cap", widths), (fast, slow),
                    _precondition(table, dataset, (fast, slow), widths, finished=False))
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
    return [_accuracy(f"{_names(table)['vmnist']}: Exp 3 beats Exp 2 at the smallest width (p = {smallest[0]})",
                      "Exp 3 outperforms Exp 2 for small widths (Fig. 1c)", table, "vmnist", "Exp 3", "Exp 2",
                      smallest)]


def sweep_claims(table: pd.DataFrame) -> list[Verdict]:
    """Every Paper B claim that a width sweep's table tests."""
    return (widths_phase1_fits(table) + widths_exp2_worse(table) + widths_exp3_matches(table)
            + widths_small_mnist(table) + widths_training_time(table) + widths_norm_between(table))


def boundary_claims(lengths: pd.DataFrame, table: pd.DataFrame) -> list[Verdict]:
    """Figure 2's reading, from the boundary lengths of badminima.paper_b.boundaries.boundary_table: the adversarial
    init leaves a jagged boundary (longer than Exp 1's) and resetting the readout smooths it (Exp 3 shorter than
    Exp 2). `table` (the same runs' sweep table) says which runs met the claims' preconditions. Each of the two
    claims over the data sets and widths is one family."""
    jagged, smooth = [], []
    for (d, p), rows in lengths.groupby(["dataset", "width"], sort=False):
        length = lambda e: rows[rows.experiment == e].set_index("seed")["boundary length"]
        name = rows["name"].iloc[0]
        compare = lambda claim, paper, longer, shorter: _noting(greater(
            claim, paper, length(longer), length(shorter), (f"{longer} length", f"{shorter} length"), CURVES,
            precondition=_precondition(table, d, (longer, shorter), [p], finished=True)),
            table, d, (longer, shorter), [p])
        jagged.append(compare(f"Exp 2 leaves a more jagged boundary than Exp 1 ({name}, p = {p})",
                              "jagged boundaries from the adversarial init (Fig. 2)", "Exp 2", "Exp 1"))
        smooth.append(compare(f"Resetting the readout smooths the boundary: Exp 3 shorter than Exp 2 ({name}, p = {p})",
                              "resetting the readout weights smoothens them (Fig. 2)", "Exp 2", "Exp 3"))
    return [v for pair in zip(family(jagged), family(smooth)) for v in pair]


# One function per chapter: its configuration and the store -> its verdicts.

def widths_verdicts(cfg: WidthsConfig, store: Store | None = None) -> list[Verdict]:
    """The widths chapter: every claim of the width sweeps."""
    return sweep_claims(experiments.sweep(cfg, store or Store()))


def _boundaries(cfg: WidthsConfig, width: int, store: Store) -> list[Verdict]:
    two_d = tuple(d for d in cfg.datasets if d in protocol.TOY)
    runs = pd.concat([experiments.width_table(cfg, d, width, store) for d in two_d], ignore_index=True)
    return boundary_claims(boundaries.boundary_table(cfg, two_d, width, store), runs)


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
        rows = table[table.dataset == dataset].set_index("seed")
        first = rows[rows.budget == rows.budget.min()]
        full = rows[rows.stopped != "budget"]
        b = f"{int(first.budget.iloc[0]):,}"
        smallest.append(greater(f"{names[dataset]}: Exp 2 below Exp 1 after {b} steps of phase 1", "(not in the paper)",
                                first["Exp 1 test %"], first["Exp 2 test %"], ("Exp 1", "Exp 2"), NOT_CLAIMED))
        fitted = f"{int(full['phase-1 fitted'].sum())} of {len(full)} fitted"
        longest.append(greater(f"{names[dataset]}: gap larger from phase 1 to zero error ({fitted}) than after {b} "
                               "steps", "(not in the paper)", full["gap"], first["gap"], ("to zero error", b),
                               NOT_CLAIMED))
    return family(smallest) + family(longest)
