"""The comparisons that turn stored results into verdicts on the papers' claims, each verdict with its numbers and
the test used. No verdict is written by hand: paper_a_claims and paper_b_claims build every one from these."""
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
