"""The comparisons that turn stored results into verdicts on the papers' claims. Four verdicts, defined here once
and stated in RULES, which the pages render: no verdict is written by hand, the papers' claims modules build every
one from these functions.

Runs are paired by seed identity: every comparison takes its two sides keyed by seed (a dict, or a Series whose
index is the seed or has a level named "seed"), and a seed present on one side only is an error."""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Mapping, Sequence

import pandas as pd
from scipy import stats as sp

HOLDS, FAILS, UNCLEAR, UNTESTED = "holds", "does not hold", "inconclusive", "not tested"
VERDICTS = (HOLDS, FAILS, UNCLEAR, UNTESTED)
LEVEL = 0.95               # every interval shown is a 95% confidence interval
ALPHA = (1 - LEVEL) / 2    # each one-sided test's level, after Holm: a verdict then reads off its interval's side

Values = Mapping | pd.Series   # one value per seed (or per seed and width, for a pooled claim)

RULES = (
    f"**How a verdict is reached.** Every comparison pairs the runs of the two sides by seed (a seed missing on one "
    f"side is an error, never a silent mispairing) and estimates the effect in the claimed direction with its "
    f"{LEVEL:.0%} confidence interval. Each claim states the *smallest effect* that would still count as the "
    f"paper's claim, and why (a fraction of the paper's own number, or, where the paper gives no number, no effect "
    f"at all). A claim **{HOLDS}** when the data reject \"no effect\" in the claimed direction; it **{FAILS}** when "
    f"the data reject the claim: the effect is significantly below its smallest effect (so also when it is "
    f"significantly opposite). Both are one-sided tests at level {ALPHA:g}, so that for a claim tested alone, "
    f"{HOLDS} means the {LEVEL:.0%} interval lies above no effect and {FAILS} that it lies below the smallest "
    f"effect; an effect significant in the claimed direction but also significantly below the smallest effect "
    f"{FAILS} (the paper's claim is about its size). A claim is **{UNCLEAR}** when neither test rejects, and "
    f"always with a single seed: a point estimate alone never decides. A claim is **{UNTESTED}** when the paper's "
    f"precondition was not met (phase 1 did not fit its random labels, a run hit a cap where the claim needs a "
    f"finished run, there is no gap to recover): its row says which precondition failed, in how many runs. Seeds "
    f"whose runs missed the precondition are left out of the test; with fewer than two seeds left it is "
    f"{UNTESTED}. "
    f"*A beats B*: a paired t-test on the per-seed differences A − B. *A and B are the same (within a tolerance)*: "
    f"two one-sided paired t-tests; it {HOLDS} when both put the difference inside the tolerance, and {FAILS} when "
    f"one puts it outside. *A takes fewer steps than B* (steps to zero training error; a run at its step cap is "
    f"censored, known only to need at least the cap): an exact sign test over seeds. A pair counts for the claim "
    f"when A took fewer steps whatever the capped runs would have taken, against it when A took at least as many, "
    f"and is undecided otherwise; the claim {HOLDS} when the test finds A faster with every undecided pair counted "
    f"against it, and {FAILS} when it finds A slower with every undecided pair counted for it. "
    f"*Claims pooled over widths* (or data sets) test what is independent: the runs of one seed share its data, "
    f"labels and random-label draw at every width, so each seed gives one value (its mean difference over the "
    f"widths; for step counts, the sign of its pairs' balance), and the test names it. "
    f"**Many tests.** A claim tested at several widths, data sets or models is one family; the p-values of both "
    f"directions are adjusted by Holm's step-down correction over it, so that the chance of any false \"{HOLDS}\", "
    f"and of any false \"{FAILS}\", in a family stays at most {ALPHA:g}. The intervals shown are not adjusted. "
    f"Each verdict's test names its family's size.")


@dataclass(frozen=True)
class Smallest:
    """The smallest effect that would still count as the paper's claim, in the effect's units, and why."""
    value: float
    why: str


def no_number(why: str = "the paper gives no number for it") -> Smallest:
    """A claim the paper states without a size: only an effect significantly opposite to it contradicts it."""
    return Smallest(0.0, f"no effect: {why}")


@dataclass(frozen=True)
class Precondition:
    """What the paper's claim presupposes of every run (e.g. phase 1 fitted its random labels), and whether each
    run met it, keyed like the values it guards."""
    what: str
    met: Values


@dataclass
class Verdict:
    claim: str
    paper: str                      # what the paper reports
    ours: str                       # what our runs gave
    verdict: str                    # one of VERDICTS
    test: str                       # how the verdict was reached
    effect: float | None = None     # the estimate, in the claimed direction
    low: float | None = None        # its 95% confidence interval
    high: float | None = None
    paper_effect: float | None = None   # the paper's own number for the effect, where it gives one
    n: int = 0                      # independent units tested (seeds)
    p: float | None = None          # one-sided p that the effect is in the claimed direction (None: no test)
    p_against: float | None = None  # one-sided p that the data reject the claim
    family: int = 1                 # how many tests share Holm's correction with this one


def untested(claim: str, paper: str, ours: str, why: str) -> Verdict:
    """A claim whose precondition failed: `why` names it and in how many runs."""
    return Verdict(claim, paper, ours, UNTESTED, f"not tested: {why}")


def decide(p: float | None, p_against: float | None) -> str:
    """The verdict from the (adjusted) p-values of the two directions; see RULES."""
    if p is None:
        return UNCLEAR
    if p_against is not None and p_against <= ALPHA:
        return FAILS
    return HOLDS if p <= ALPHA else UNCLEAR


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: the i-th smallest p times (m - i + 1), made
    non-decreasing along the sorted order and capped at 1."""
    m = len(pvalues)
    adjusted, running = [1.0] * m, 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda j: pvalues[j])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def family(verdicts: list[Verdict]) -> list[Verdict]:
    """Treats the verdicts that carry a test as one family: both directions' p-values become Holm's adjusted ones
    over it, and each verdict is decided again from them. Verdicts without a test are left as they are."""
    tested = [v for v in verdicts if v.p is not None]
    if len(tested) < 2:
        return verdicts
    for v, p, against in zip(tested, holm([v.p for v in tested]), holm([v.p_against for v in tested])):
        v.family, v.p, v.p_against = len(tested), p, against
        v.test += f"; Holm-adjusted over a family of {len(tested)} tests: p = {p:.2g}, against: p = {against:.2g}"
        v.verdict = decide(p, against)
    return verdicts


def tests_in(verdicts: list[Verdict]) -> int:
    """How many statistical tests a list of verdicts holds (a count such as "every run fitted" is not one)."""
    return sum(v.p is not None for v in verdicts)


# Pairing by seed

def _series(values: Values) -> pd.Series:
    s = values.copy() if isinstance(values, pd.Series) else pd.Series(dict(values), dtype=float)
    if s.index.nlevels == 1 and s.index.name is None:
        s.index.name = "seed"
    if "seed" not in s.index.names:
        raise ValueError(f"values must be keyed by seed; their index has the levels {list(s.index.names)}")
    if not s.index.is_unique:
        raise ValueError(f"a key appears twice: {sorted(set(s.index[s.index.duplicated()]))}")
    return s


def pair(a: Values, b: Values, names: tuple[str, str]) -> tuple[pd.Series, pd.Series]:
    """The two sides aligned by seed (and by any other key, such as the width). Raises ValueError naming the keys
    that one side has and the other lacks."""
    a, b = _series(a), _series(b)
    for mine, other, name in ((a, b, names[1]), (b, a, names[0])):
        missing = mine.index.difference(other.index)
        if len(missing):
            raise ValueError(f"{name} has no run for {list(missing)} (index {list(mine.index.names)}): runs are "
                             "paired by seed, so both sides need the same seeds")
    return a.astype(float), b.reindex(a.index).astype(float)


def _per_seed(diffs: pd.Series) -> tuple[pd.Series, str]:
    """One value per seed, and what it is: the difference itself, or the seed's mean over its other keys."""
    if diffs.index.nlevels == 1:
        return diffs, "seeds"
    others = [n for n in diffs.index.names if n != "seed"]
    count = len(diffs) // max(1, diffs.index.get_level_values("seed").nunique())
    return (diffs.groupby(level="seed").mean(),
            f"seeds, one value per seed: its mean difference over its {count} {'/'.join(map(str, others))}s")


def _keep(a: pd.Series, b: pd.Series, pre: Precondition | None) -> tuple[pd.Series, pd.Series, str, int]:
    """The pairs whose seed met the precondition in every run, a note on those left out, and the seeds left out."""
    if pre is None:
        return a, b, "", 0
    met = _series(pre.met).astype(bool)
    failed = met[~met]
    bad = set(failed.index.get_level_values("seed"))
    keep = ~a.index.get_level_values("seed").isin(list(bad))
    note = f"{pre.what} in {int(met.sum())} of {len(met)} runs" + (
        f"; the {len(bad)} seed(s) with a run that did not are left out" if bad else "")
    return a[keep], b[keep], note, len(bad)


def _fmt(values: pd.Series) -> str:
    return f"{values.mean():.3g} ± {values.std():.2g}" if len(values) > 1 else f"{values.mean():.3g}"


def _interval(mean: float, se: float, k: int) -> tuple[float, float]:
    half = float(sp.t.ppf(1 - ALPHA, k - 1)) * se
    return mean - half, mean + half


def _t_sf(excess: float, se: float, k: int) -> float:
    """One-sided p that a mean of k values, with standard error se, exceeds its null by `excess`. Identical
    values (se = 0, where scipy's t would divide by zero) decide by the sign of the excess alone."""
    if se == 0:
        return 0.0 if excess > 0 else 1.0
    return float(sp.t.sf(excess / se, k - 1))


def _describe(a: pd.Series, b: pd.Series, names: tuple[str, str]) -> str:
    return f"{names[0]} {_fmt(a)} vs {names[1]} {_fmt(b)}"


def _mean_test(claim: str, paper: str, diffs: pd.Series, ours: str, smallest: Smallest | None, tolerance: float | None,
               paper_effect: float | None, note: str, dropped: int) -> Verdict:
    """The t-tests behind `greater` (smallest given) and `within` (tolerance given) on per-seed differences."""
    per_seed, unit = _per_seed(diffs)
    k = len(per_seed)
    if note:
        ours += f"; {note}"
    if dropped and k < 2:
        return untested(claim, paper, ours, f"{note}, which leaves {k} seed(s) to test")
    mean = float(per_seed.mean())
    if k < 2:
        return Verdict(claim, paper, ours + f"; difference {mean:.3g}", UNCLEAR,
                       "one seed: no spread to test against, and a point estimate alone decides nothing",
                       mean, paper_effect=paper_effect, n=k)
    se = float(per_seed.std() / math.sqrt(k))
    low, high = _interval(mean, se, k)
    ours += f"; difference {mean:.3g} ({LEVEL:.0%} CI {low:.3g} to {high:.3g})"
    if tolerance is None:
        p, against = _t_sf(mean, se, k), _t_sf(smallest.value - mean, se, k)
        test = (f"one-sided paired t-tests over {k} {unit}: that the difference exceeds 0, p = {p:.2g}; that it "
                f"is below the smallest effect that counts as the claim, {smallest.value:.3g} ({smallest.why}), "
                f"p = {against:.2g}")
    else:
        p = max(_t_sf(mean + tolerance, se, k), _t_sf(tolerance - mean, se, k))
        against = min(_t_sf(mean - tolerance, se, k), _t_sf(-tolerance - mean, se, k))
        test = (f"two one-sided paired t-tests over {k} {unit} that the difference lies within ±{tolerance:g}: "
                f"p = {p:.2g}; that it lies outside: p = {against:.2g}")
    return Verdict(claim, paper, ours, decide(p, against), test, mean, low, high, paper_effect, k, p, against)


def greater(claim: str, paper: str, a: Values, b: Values, names: tuple[str, str], smallest: Smallest,
            paper_effect: float | None = None, precondition: Precondition | None = None) -> Verdict:
    """Claim that a > b, paired by seed; `smallest` is the least a − b that would still count as the claim (see
    RULES). Values keyed by seed and width are pooled: one mean difference per seed."""
    a, b = pair(a, b, names)
    a, b, note, dropped = _keep(a, b, precondition)
    return _mean_test(claim, paper, a - b, _describe(a, b, names), smallest, None, paper_effect, note, dropped)


def within(claim: str, paper: str, a: Values, b: Values, names: tuple[str, str], tolerance: float,
           precondition: Precondition | None = None) -> Verdict:
    """Claim that a and b are the same up to `tolerance`, paired by seed (see RULES); pooled as `greater`."""
    a, b = pair(a, b, names)
    a, b, note, dropped = _keep(a, b, precondition)
    return _mean_test(claim, paper, a - b, _describe(a, b, names), None, tolerance, 0.0, note, dropped)


def _balance(x: float | None, y: float | None, cap: float) -> tuple[int, int, int, int]:
    """One pair of step counts as (for, against, tie, undecided) for "x takes fewer steps than y"; None is a run
    that hit the cap (it needed at least the cap)."""
    if x is None and y is None:
        return 0, 0, 0, 1
    if x is None:                  # x >= cap >= y
        return 0, 1, 0, 0
    if y is None:                  # y >= cap >= x: fewer for certain only when x is below the cap
        return (1, 0, 0, 0) if x < cap else (0, 0, 0, 1)
    if x == y:
        return 0, 0, 1, 0
    return (1, 0, 0, 0) if x < y else (0, 1, 0, 0)


def _steps(values: Values) -> pd.Series:
    s = _series(values).astype(object)
    return s.where(s.notna(), None)


def fewer(claim: str, paper: str, a: Values, b: Values, caps: Values, names: tuple[str, str],
          precondition: Precondition | None = None) -> Verdict:
    """Claim that a takes fewer steps than b, paired by seed; None (or NaN) is a run that hit its pair's cap. Values
    keyed by seed and width are pooled: each seed's pairs are summed into the sign of its balance (see RULES)."""
    a, b = _steps(a), _steps(b)
    pair(a.notna(), b.notna(), names)      # only to check that both sides have the same keys
    b, caps = b.reindex(a.index), _series(caps).reindex(a.index)
    counts = pd.DataFrame([_balance(x, y, c) for x, y, c in zip(a, b, caps)], index=a.index,
                          columns=["for", "against", "tie", "undecided"])
    counts, _, note, dropped = _keep(counts, counts, precondition)
    plus, minus, ties, undecided = (int(counts[c].sum()) for c in counts.columns)
    capped = lambda side: int(side.reindex(counts.index).isna().sum())
    ours = (f"{names[0]} fewer in {plus} of {len(counts)} pairs, at least as many in {minus}, tied in {ties}, "
            f"undecided (both at the cap) in {undecided}; runs at the step cap: {names[0]} {capped(a)}, {names[1]} "
            f"{capped(b)} of {len(counts)}" + (f"; {note}" if note else ""))
    if dropped and counts.index.get_level_values("seed").nunique() < 2:
        return untested(claim, paper, ours, f"{note}, which leaves fewer than two seeds to test")
    if len(counts) and undecided == len(counts):
        return untested(claim, paper, ours, f"both runs hit the step cap in all {undecided} pairs")
    by_seed = counts.groupby(level="seed").sum() if counts.index.nlevels > 1 else counts
    worst = by_seed["for"] - by_seed["against"] - by_seed["undecided"]    # every undecided pair against the claim
    best = by_seed["for"] - by_seed["against"] + by_seed["undecided"]     # every undecided pair for it
    untied = int(((worst != 0) | (best != 0)).sum())
    p = float(sp.binomtest(int((worst > 0).sum()), untied, alternative="greater").pvalue) if untied else 1.0
    against = float(sp.binomtest(int((best < 0).sum()), untied, alternative="greater").pvalue) if untied else 1.0
    unit = "pairs" if counts.index.nlevels == 1 else "seeds, one sign per seed: its pairs' balance over widths"
    test = (f"exact one-sided sign tests over {untied} untied {unit}: that {names[0]} takes fewer steps, undecided "
            f"pairs counted against it, p = {p:.2g}; that it takes more, undecided pairs counted for it, p = "
            f"{against:.2g}")
    effect = (plus - minus) / max(1, plus + minus + undecided)
    return Verdict(claim, paper, ours, decide(p, against), test, effect, n=untied, p=p, p_against=against)


def all_reach(claim: str, paper: str, accuracies: Sequence[float], what: str, target: float = 100.0,
              capped: Sequence[bool] | None = None) -> Verdict:
    """Claim that every run reached `target` (e.g. 100% training accuracy): a count, not a test. A run that stopped
    short because it hit its cap makes the claim not tested (a longer run might have reached it); one that stopped
    short without a cap makes it fail."""
    accuracies = list(accuracies)
    capped = list(capped) if capped is not None else [False] * len(accuracies)
    short = [c for a, c in zip(accuracies, capped) if a < target]
    ours = f"{what}: {len(accuracies) - len(short)} of {len(accuracies)} runs reached {target:g}% (lowest " \
           f"{min(accuracies):.2f}%)"
    test = f"every run at or above {target:g}%"
    if short and all(short):
        return untested(claim, paper, ours, f"{len(short)} of {len(accuracies)} runs hit their cap before "
                                            f"{target:g}%")
    return Verdict(claim, paper, ours, FAILS if short else HOLDS, test, n=len(accuracies))


# Tables and sentences

def effect_text(v: Verdict) -> str:
    """The effect with its interval beside the paper's number, and the sample size."""
    if v.effect is None:
        return ""
    interval = f" ({LEVEL:.0%} CI {v.low:.3g} to {v.high:.3g})" if v.low is not None else ""
    paper = f"; paper {v.paper_effect:.3g}" if v.paper_effect is not None else ""
    return f"{v.effect:.3g}{interval}{paper}; n = {v.n}"


COLUMNS = ["claim", "paper", "ours", "effect (95% CI)", "verdict", "test"]


def verdict_table(verdicts: list[Verdict]) -> pd.DataFrame:
    """One row per verdict: the columns the pages show, then the record's numbers."""
    numbers = ["effect", "low", "high", "paper_effect", "n", "p", "p_against", "family"]
    rows = [{**{f.name: getattr(v, f.name) for f in fields(v)}, "effect (95% CI)": effect_text(v)} for v in verdicts]
    return pd.DataFrame(rows, columns=[*COLUMNS, *numbers])


def counts(verdicts: Sequence[str]) -> dict[str, int]:
    """How many of each of the four verdicts, in RULES' order."""
    verdicts = list(verdicts)
    return {v: verdicts.count(v) for v in VERDICTS}


def headline(verdicts: list[Verdict], scale: str) -> str:
    """One line for a chapter: how many claims reached each verdict, and how many tests that took."""
    c = counts(v.verdict for v in verdicts)
    return (f"**At scale `{scale}`, of {len(verdicts)} claims {c[HOLDS]} hold, {c[FAILS]} do not, {c[UNCLEAR]} are "
            f"inconclusive and {c[UNTESTED]} are not tested (the paper's precondition was not met); the table holds "
            f"{tests_in(verdicts)} statistical tests.**")


def short_of_holding(verdicts: list[Verdict]) -> str:
    """One sentence for each claim short of "holds" (what a chapter says below its table): the claim, its verdict
    and our numbers."""
    return " ".join(f"*{v.claim}*: {v.verdict} ({v.ours})." for v in verdicts if v.verdict != HOLDS)
