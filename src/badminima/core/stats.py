"""The comparisons that turn stored results into verdicts on the papers' claims, each verdict with its numbers and
the test used. No verdict is written by hand: the papers' claims modules build every one from these.

Only the standard library: the t distribution's tail for integer degrees of freedom has a closed form, and the
sign test is a binomial sum."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import pandas as pd

HOLDS, FAILS, UNCLEAR = "holds", "does not hold", "inconclusive"
ALPHA = 0.05   # the level at which a claim "holds", after Holm's correction over its family

# The rules every verdict follows, stated once; the "Does it reproduce?" page and the chapters render this text.
RULES = (
    f"**How a verdict is reached.** Every comparison is paired: run *i* of one side against run *i* of the other "
    f"(same seed, same width). "
    f"*A beats B (by more than g)*: a one-sided paired t-test that the mean difference A − B exceeds g; the claim "
    f"**{HOLDS}** when its p-value is at most {ALPHA:g}, **{FAILS}** when the mean difference is at most g, and is "
    f"**{UNCLEAR}** otherwise. "
    f"*A and B are the same (within a tolerance)*: two one-sided paired t-tests that the mean difference is above "
    f"minus the tolerance and below it; the claim {HOLDS} when both p-values are at most {ALPHA:g}, {FAILS} when a "
    f"one-sided t-test finds the mean difference outside the tolerance at that level, and is {UNCLEAR} otherwise. "
    f"With one seed there is no spread to test against: such a comparison is {UNCLEAR} unless its estimate alone "
    f"already contradicts the claim. "
    f"*A takes fewer steps than B* (steps to zero training error): a run that hit its step cap is censored, known "
    f"only to need at least the cap. A pair counts for the claim when A took fewer steps than B whatever the capped "
    f"runs would have taken, against it when A took at least as many, and is undecided when both hit the cap. An "
    f"exact one-sided sign test counts undecided pairs against the claim: it {HOLDS} only when it would hold whatever "
    f"the capped runs would have taken (p at most {ALPHA:g}), {FAILS} when even counting every undecided pair for "
    f"it, the pairs for it are not a majority, and is {UNCLEAR} otherwise. "
    f"**Many tests.** A claim tested at several widths, data sets or models is one family of tests; its p-values "
    f"are adjusted by Holm's step-down correction, so that the chance of any false \"{HOLDS}\" in a family stays at "
    f"most {ALPHA:g}. Each verdict's test names the size of its family.")


@dataclass
class Verdict:
    claim: str
    paper: str      # what the paper reports
    ours: str       # what our runs gave
    verdict: str    # holds / does not hold / inconclusive
    test: str       # how the verdict was reached
    p: float | None = None   # the p-value behind "holds" (None: no test, e.g. a count, or one seed)
    family: int = 1          # how many tests share Holm's correction with this one


def t_sf(t: float, df: int) -> float:
    """P(T >= t) for Student's t with `df` (a positive integer) degrees of freedom, from the closed forms of
    P(|T| <= t) for odd and even df (Abramowitz and Stegun 26.7.3 and 26.7.4)."""
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    theta = math.atan(abs(t) / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    first = math.cos(theta) if df % 2 else 1.0   # the series runs over odd powers of cos for odd df, even for even
    term = total = first
    for k in range(3 if df % 2 else 2, df - 1, 2):
        term *= c2 * (k - 1) / k
        total += term
    if df % 2:
        central = 2 / math.pi * (theta + (math.sin(theta) * total if df > 1 else 0.0))
    else:
        central = math.sin(theta) * total
    tail = max(0.0, (1 - central) / 2)
    return tail if t >= 0 else 1 - tail


def sign_test_p(successes: int, failures: int) -> float:
    """Exact one-sided sign test: P(X >= successes) for X ~ Binomial(successes + failures, 1/2)."""
    n = successes + failures
    return sum(math.comb(n, i) for i in range(successes, n + 1)) / 2 ** n


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
    """Treats the verdicts that carry a p-value as one family: each p becomes Holm's adjusted p, and a verdict
    that has not failed holds only when that is at most ALPHA. Verdicts without a test are left as they are."""
    tested = [v for v in verdicts if v.p is not None]
    for v, adjusted in zip(tested, holm([v.p for v in tested])):
        v.family = len(tested)
        if len(tested) > 1:
            v.test += f"; Holm-adjusted over a family of {len(tested)} tests: p = {adjusted:.2g}"
        v.p = adjusted
        if v.verdict != FAILS:
            v.verdict = HOLDS if adjusted <= ALPHA else UNCLEAR
    return verdicts


def tests_in(verdicts: list[Verdict]) -> int:
    """How many statistical tests a list of verdicts holds (a count such as "every run fitted" is not one)."""
    return sum(v.p is not None for v in verdicts)


def _fmt(values: Sequence[float]) -> str:
    s = pd.Series(list(values), dtype=float)
    return f"{s.mean():.3g} ± {s.std():.2g}" if len(s) > 1 else f"{s.mean():.3g}"


def _paired(a: Sequence[float], b: Sequence[float]) -> tuple[int, float, float]:
    """Number of pairs, mean difference a - b and its standard error (0 with one pair)."""
    diffs = pd.Series([x - y for x, y in zip(a, b)], dtype=float)
    k = len(diffs)
    return k, float(diffs.mean()), float(diffs.std() / math.sqrt(k)) if k > 1 else 0.0


def _t_p(excess: float, se: float, k: int) -> float:
    """One-sided p-value that a mean exceeds its null value by `excess`, with standard error `se` over k pairs.
    Identical differences (se = 0) decide by the sign of the excess alone."""
    if se == 0:
        return 0.0 if excess > 0 else 1.0 if excess < 0 else 0.5
    return t_sf(excess / se, k - 1)


def greater(claim: str, paper: str, a: Sequence[float], b: Sequence[float], names: tuple[str, str],
            min_gap: float = 0.0) -> Verdict:
    """Claim that a > b by more than `min_gap`, paired over seeds (see RULES)."""
    k, mean, se = _paired(a, b)
    ours = f"{names[0]} {_fmt(a)} vs {names[1]} {_fmt(b)} (gap {mean:.3g}" + (f", s.e. {se:.2g})" if k > 1 else ")")
    if k < 2:
        verdict = FAILS if mean <= min_gap else UNCLEAR
        return Verdict(claim, paper, ours, verdict, f"one seed: gap against {min_gap:g}, no spread to test against")
    p = _t_p(mean - min_gap, se, k)
    verdict = FAILS if mean <= min_gap else HOLDS if p <= ALPHA else UNCLEAR
    test = f"one-sided paired t-test over {k} seeds that the mean gap exceeds {min_gap:g}: p = {p:.2g}"
    return Verdict(claim, paper, ours, verdict, test, p)


def within(claim: str, paper: str, a: Sequence[float], b: Sequence[float], names: tuple[str, str],
           tolerance: float) -> Verdict:
    """Claim that a and b are the same up to `tolerance`, paired over seeds (see RULES)."""
    k, mean, se = _paired(a, b)
    ours = (f"{names[0]} {_fmt(a)} vs {names[1]} {_fmt(b)} (|gap| {abs(mean):.3g}"
            + (f", s.e. {se:.2g})" if k > 1 else ")"))
    if k < 2:
        verdict = FAILS if abs(mean) > tolerance else UNCLEAR
        return Verdict(claim, paper, ours, verdict,
                       f"one seed: |gap| against a tolerance of {tolerance:g}, no spread to test against")
    p_inside = max(_t_p(mean + tolerance, se, k), _t_p(tolerance - mean, se, k))
    p_outside = _t_p(abs(mean) - tolerance, se, k)
    verdict = HOLDS if p_inside <= ALPHA else FAILS if p_outside <= ALPHA else UNCLEAR
    test = (f"two one-sided paired t-tests over {k} seeds against a tolerance of {tolerance:g}: p = {p_inside:.2g}"
            f" (outside it: p = {p_outside:.2g})")
    return Verdict(claim, paper, ours, verdict, test, p_inside)


def fewer(claim: str, paper: str, a: Sequence[float | None], b: Sequence[float | None], caps: Sequence[float],
          names: tuple[str, str]) -> Verdict:
    """Claim that a takes fewer steps than b, paired; None is a run that hit its pair's cap (censored: it needed
    at least the cap). See RULES for how censored pairs count."""
    plus = minus = ties = undecided = 0
    for x, y, cap in zip(a, b, caps):
        if x is None and y is None:
            undecided += 1
        elif x is None:                # x >= cap >= y
            minus += 1
        elif y is None:                # y >= cap >= x: fewer for certain only when x is below the cap
            plus, undecided = (plus + 1, undecided) if x < cap else (plus, undecided + 1)
        elif x == y:
            ties += 1
        else:
            plus, minus = (plus + 1, minus) if x < y else (plus, minus + 1)
    n = len(caps)
    p = sign_test_p(plus, minus + undecided)
    if plus + undecided <= minus:
        verdict = FAILS
    else:
        verdict = HOLDS if p <= ALPHA else UNCLEAR
    capped = lambda values: sum(v is None for v in values)
    ours = (f"{names[0]} fewer in {plus} of {n} pairs, at least as many in {minus}, tied in {ties}, undecided "
            f"(both at the cap) in {undecided}; runs at the step cap: {names[0]} {capped(a)}, {names[1]} {capped(b)} "
            f"of {n}")
    test = (f"exact one-sided sign test over {n - ties} untied pairs, undecided pairs counted against the claim: "
            f"p = {p:.2g}")
    return Verdict(claim, paper, ours, verdict, test, p)


def all_reach(claim: str, paper: str, accuracies: Sequence[float], what: str, target: float = 100.0) -> Verdict:
    """Claim that every run reached `target` (e.g. 100% training accuracy): a count, not a test."""
    reached = sum(a >= target for a in accuracies)
    verdict = HOLDS if reached == len(accuracies) else FAILS
    ours = f"{what}: {reached} of {len(accuracies)} runs reached {target:g}% (lowest {min(accuracies):.2f}%)"
    return Verdict(claim, paper, ours, verdict, f"every run at or above {target:g}%")


def verdict_table(verdicts: list[Verdict]) -> pd.DataFrame:
    columns = ["claim", "paper", "ours", "verdict", "test"]
    return pd.DataFrame([v.__dict__ for v in verdicts], columns=[*columns, "p", "family"])[columns]


def headline(verdicts: list[Verdict], scale: str) -> str:
    """One line for a chapter: how many claims hold, fail and are inconclusive, and how many tests that took."""
    count = lambda what: sum(v.verdict == what for v in verdicts)
    return (f"**At scale `{scale}`, {count(HOLDS)} of {len(verdicts)} claims hold, {count(FAILS)} do not, and "
            f"{count(UNCLEAR)} are inconclusive; the table holds {tests_in(verdicts)} statistical tests.**")
