"""Calibration of the verdict functions (badminima.core.stats) at the book's own sample sizes.

    python scripts/bench_verdicts.py [--reps 300] [--seed 0]

Each row runs one verdict function on simulated data, with the seeds, widths, family sizes and caps the `cpu` book
uses (read from the protocol modules), and prints how often it reaches each verdict:
- holds | none: "holds" anywhere in the family when no claim in it has a true effect (at most 5%);
- fails | paper: "does not hold" anywhere in the family when every true effect is the paper's size (at most 5%);
- fails | smallest: the same at the smallest effect that still counts as the claim, the hardest case;
- power 0.5/1/2 sd: how often one claim holds when every effect in its family is that many standard deviations.
Effects are in standard deviations of one run's difference. Pooled claims draw each seed's runs with a shared
error across widths (correlation RHO). Within-tolerance claims: "none" is a true difference at the tolerance, the
paper's size a difference of 0, and power is at a difference of 0 with a tolerance of 0.5, 1 and 2 sd. Step counts:
log steps, the slow side's typical run at a tenth of the cap so that some runs are censored; those claims carry no
number in the paper, so "the paper's size" is taken as 1 sd. A count ("every run fitted") is not a test and is not
here."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from badminima.core import stats
from badminima.paper_a import claims as paper_a_claims
from badminima.paper_a import protocol as paper_a_protocol
from badminima.paper_b import protocol as paper_b_protocol

RHO = 0.5            # correlation of one seed's runs across widths
PAPER = 1.0          # the paper's effect, in sd, where the bench needs one (a small one: the harder case)
POWER_AT = (0.5, 1.0, 2.0)
NAMES = ("a", "b")


@dataclass(frozen=True)
class Case:
    name: str
    seeds: int
    widths: int          # 1: one value per seed; more: a pooled claim
    family: int
    draw: Callable[[np.random.Generator, float, float, int, int], stats.Verdict]   # rng, effect, scale, seeds, widths
    none: float          # the effect at which the claim is false
    paper: float
    smallest: float


def _index(seeds: int, widths: int) -> pd.Index:
    if widths == 1:
        return pd.Index(range(seeds), name="seed")
    return pd.MultiIndex.from_product([range(widths), range(seeds)], names=["width", "seed"])


def _noise(rng: np.random.Generator, seeds: int, widths: int) -> np.ndarray:
    """Unit-variance errors, correlated RHO across one seed's widths."""
    if widths == 1:
        return rng.normal(0, 1, seeds)
    return np.sqrt(RHO) * np.tile(rng.normal(0, 1, seeds), widths) + np.sqrt(1 - RHO) * rng.normal(0, 1, seeds * widths)


def greater_draw(smallest: float):
    def draw(rng, effect, _scale, seeds, widths):
        index = _index(seeds, widths)
        a = pd.Series(effect + _noise(rng, seeds, widths), index)
        return stats.greater("c", "p", a, 0 * a, NAMES, stats.Smallest(smallest, "bench"))
    return draw


def within_draw(rng, difference, tolerance, seeds, widths):
    index = _index(seeds, widths)
    a = pd.Series(difference + _noise(rng, seeds, widths), index)
    return stats.within("c", "p", a, 0 * a, NAMES, tolerance)


def fewer_draw(rng, effect, _scale, seeds, widths):
    """Log steps: the slow side around a tenth of the cap, the fast side `effect` sd below it."""
    index, cap = _index(seeds, widths), 1.0
    slow = np.log(0.1) + _noise(rng, seeds, widths)
    fast = slow - effect + _noise(rng, seeds, widths)
    censor = lambda logs: pd.Series(np.where(logs >= np.log(cap), np.nan, np.exp(logs)), index)
    return stats.fewer("c", "p", censor(fast), censor(slow), pd.Series(cap, index), NAMES)


def cases() -> list[Case]:
    a, b = paper_a_protocol.config_for("cpu"), paper_b_protocol.config_for("cpu")
    models, a_seeds, b_seeds = len(a.models), len(a.seeds), len(b.seeds)
    two_d = [d for d in b.datasets if d in paper_b_protocol.TOY]
    widths = len(b.widths)
    share = paper_a_claims.SHARE * PAPER
    tolerance = 1.0
    return [
        Case("greater: Paper A per model (claims 2, 4, 6, Fig. 4)", a_seeds, 1, models, greater_draw(share),
             0.0, PAPER, share),
        Case("greater: Paper B per data set and width (Exp 2 worse)", b_seeds, 1, len(b.datasets) * widths,
             greater_draw(0.0), 0.0, PAPER, 0.0),
        Case("greater, pooled over widths: Paper B (Norm between)", b_seeds, widths, len(b.datasets),
             greater_draw(0.0), 0.0, PAPER, 0.0),
        Case("greater: Paper B boundaries per 2-D data set", b_seeds, 1, len(two_d), greater_draw(0.0), 0.0, PAPER,
             0.0),
        Case("within: Paper A per model (claim 3, Fig. 4 SOTA)", a_seeds, 1, models, within_draw, tolerance, 0.0,
             tolerance),
        Case("within: Paper A Table 2 pairs (claim 5)", a_seeds, 1, 3, within_draw, tolerance, 0.0, tolerance),
        Case("within, pooled over widths: Paper B (Exp 3 matches)", b_seeds, widths, 1, within_draw, tolerance, 0.0,
             tolerance),
        Case("fewer: Paper B at one width (Gaussians)", b_seeds, 1, 1, fewer_draw, 0.0, PAPER, 0.0),
        Case("fewer, pooled over widths: Paper B (spirals, MNIST)", b_seeds, widths, 2, fewer_draw, 0.0, PAPER, 0.0),
    ]


def _family(case: Case, rng: np.random.Generator, effect: float, scale: float) -> list[str]:
    return [v.verdict for v in stats.family([case.draw(rng, effect, scale, case.seeds, case.widths)
                                             for _ in range(case.family)])]


def rates(case: Case, reps: int, rng: np.random.Generator) -> dict[str, float]:
    """The row of the table for one case."""
    within = case.draw is within_draw
    tolerance = case.none if within else 0.0
    any_of = lambda verdict, effect, scale=tolerance: np.mean(
        [verdict in _family(case, rng, effect, scale) for _ in range(reps)])
    row = {"seeds": case.seeds, "widths": case.widths, "family": case.family,
           "holds | none": any_of(stats.HOLDS, case.none),
           "fails | paper": any_of(stats.FAILS, case.paper),
           "fails | smallest": any_of(stats.FAILS, case.smallest)}
    for sd in POWER_AT:
        effect, scale = (0.0, sd) if within else (sd, 0.0)
        row[f"power {sd:g} sd"] = np.mean([_family(case, rng, effect, scale)[0] == stats.HOLDS for _ in range(reps)])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=300, help="simulated families per cell")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    table = pd.DataFrame({c.name: rates(c, args.reps, rng) for c in cases()}).T
    table = table.astype({"seeds": int, "widths": int, "family": int})
    print(f"Verdict calibration, {args.reps} simulated families per cell (rates; the bounds are 0.05):")
    with pd.option_context("display.width", 220, "display.max_colwidth", 60):
        print(table.to_string(float_format=lambda x: f"{x:.3f}"))
    worst = table[["holds | none", "fails | paper", "fails | smallest"]].max().max()
    print(f"each rate near 0.025 has a standard error of about {np.sqrt(0.025 * 0.975 / args.reps):.3f}")
    print(f"largest error rate: {worst:.3f} ({'within' if worst <= 0.05 else 'OVER'} the 5% bound)")


if __name__ == "__main__":
    main()
