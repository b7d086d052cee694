import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sp

from badminima.core import stats

NAMES = ("a", "b")
NONE = stats.no_number()
SEEDS = range(5)


def by_seed(values) -> dict[int, float | None]:
    return {s: None if v is None else float(v) for s, v in enumerate(values)}


# Pinned against scipy on random inputs

@pytest.mark.parametrize("draw", range(5))
def test_greater_is_scipys_paired_t_test(draw):
    rng = np.random.default_rng(draw)
    a, b = rng.normal(1, 1, 6), rng.normal(0, 1, 6)
    v = stats.greater("c", "p", by_seed(a), by_seed(b), NAMES, stats.Smallest(0.4, "why"))
    assert v.p == pytest.approx(sp.ttest_rel(a, b, alternative="greater").pvalue, rel=1e-9)
    assert v.p_against == pytest.approx(sp.ttest_1samp(a - b, 0.4, alternative="less").pvalue, rel=1e-9)
    low, high = sp.t.interval(0.95, 5, loc=np.mean(a - b), scale=sp.sem(a - b))
    assert (v.low, v.high) == pytest.approx((low, high), rel=1e-9) and v.n == 6


@pytest.mark.parametrize("draw", range(5))
def test_within_is_scipys_two_one_sided_tests(draw):
    rng = np.random.default_rng(10 + draw)
    a, b = rng.normal(0.3, 1, 7), rng.normal(0, 1, 7)
    d = a - b
    v = stats.within("c", "p", by_seed(a), by_seed(b), NAMES, tolerance=1.5)
    tost = max(sp.ttest_1samp(d, -1.5, alternative="greater").pvalue, sp.ttest_1samp(d, 1.5, alternative="less").pvalue)
    outside = min(sp.ttest_1samp(d, 1.5, alternative="greater").pvalue,
                  sp.ttest_1samp(d, -1.5, alternative="less").pvalue)
    assert v.p == pytest.approx(tost, rel=1e-9) and v.p_against == pytest.approx(outside, rel=1e-9)


def test_fewer_is_scipys_sign_test():
    fast = by_seed([10, 20, 30, 40, 50, 60, 70, 80, 90])
    slow = by_seed([20, 30, 40, 50, 60, 70, 10, 20, None])   # 6 for, 2 against, 1 fast under a capped slow one
    v = stats.fewer("c", "p", fast, slow, {s: 1000 for s in fast}, ("fast", "slow"))
    assert v.p == pytest.approx(sp.binomtest(7, 9, alternative="greater").pvalue)
    assert v.p_against == pytest.approx(sp.binomtest(2, 9, alternative="greater").pvalue)


def test_holm_on_a_known_example():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> raised to 0.06 (monotone)
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


# Pairing by seed identity

def test_pairs_by_seed_not_by_position():
    a = {0: 5.0, 1: 6.0, 2: 7.5}
    b = {2: 6.5, 0: 4.0, 1: 5.2}   # same seeds, another order
    v = stats.greater("c", "p", a, b, NAMES, NONE)
    assert v.effect == pytest.approx(np.mean([1.0, 0.8, 1.0]))


def test_a_seed_missing_on_one_side_is_an_error_that_names_it():
    with pytest.raises(ValueError, match=r"b has no run for \[3\]"):
        stats.greater("c", "p", {0: 1.0, 1: 2.0, 3: 3.0}, {0: 1.0, 1: 2.0}, NAMES, NONE)
    with pytest.raises(ValueError, match=r"a has no run for \[7\]"):
        stats.within("c", "p", {0: 1.0, 1: 2.0}, {0: 1.0, 1: 2.0, 7: 0.0}, NAMES, 1.0)
    with pytest.raises(ValueError, match="no run for"):
        stats.fewer("c", "p", {0: 1.0, 1: 2.0}, {0: 1.0, 2: 2.0}, {0: 9, 1: 9}, NAMES)


def test_a_pooled_claim_tests_one_value_per_seed():
    index = pd.MultiIndex.from_product([[10, 50, 100], range(4)], names=["width", "seed"])
    rng = np.random.default_rng(3)
    a, b = pd.Series(rng.normal(1, 1, 12), index), pd.Series(rng.normal(0, 1, 12), index)
    v = stats.greater("c", "p", a, b, NAMES, NONE)
    per_seed = (a - b).groupby(level="seed").mean()
    assert v.n == 4 and "one value per seed" in v.test
    assert v.p == pytest.approx(sp.ttest_1samp(per_seed, 0, alternative="greater").pvalue, rel=1e-9)


# The four verdicts

def test_greater_holds_fails_and_is_inconclusive():
    assert stats.greater("c", "p", by_seed([5, 6, 7.5]), by_seed([1, 2, 3]), NAMES, NONE).verdict == stats.HOLDS
    assert stats.greater("c", "p", by_seed([1, 2.5, 3]), by_seed([5, 6, 7]), NAMES, NONE).verdict == stats.FAILS
    noisy = stats.greater("c", "p", by_seed([5, 1, 6]), by_seed([1, 5, 2]), NAMES, NONE)
    assert noisy.verdict == stats.UNCLEAR and "95% CI" in noisy.ours
    # a clear effect, but well below the smallest that counts as the paper's claim
    small = stats.greater("c", "p", by_seed([1.1, 1.2, 1.05, 1.15]), by_seed([1, 1, 1, 1]), NAMES,
                          stats.Smallest(5.0, "a quarter of the paper's 20"))
    assert small.verdict == stats.FAILS and "a quarter of the paper's 20" in small.test


def test_one_seed_never_does_not_hold():
    v = stats.greater("c", "p", {0: 1.0}, {0: 9.0}, NAMES, stats.Smallest(5.0, "why"))
    assert v.verdict == stats.UNCLEAR and v.p is None and v.test.startswith("one seed")
    assert stats.within("c", "p", {0: 9.0}, {0: 1.0}, NAMES, 1.0).verdict == stats.UNCLEAR


def test_within_holds_fails_and_is_inconclusive():
    same = stats.within("c", "p", by_seed([90.0, 91.0, 92.0]), by_seed([90.2, 90.9, 92.1]), NAMES, 1.0)
    assert same.verdict == stats.HOLDS
    apart = stats.within("c", "p", by_seed([95.0, 96.5, 97.0]), by_seed([90.0, 91.0, 92.0]), NAMES, 1.0)
    assert apart.verdict == stats.FAILS
    noisy = stats.within("c", "p", by_seed([90.0, 93.0, 90.0]), by_seed([91.0, 90.0, 91.5]), NAMES, 1.0)
    assert noisy.verdict == stats.UNCLEAR and "±1" in noisy.test


def test_a_precondition_leaves_out_its_seeds_and_can_leave_a_claim_not_tested():
    a, b = by_seed([5, 6, 7.5, 6, 5.5]), by_seed([1, 2, 3, 2.5, 1])
    some = stats.Precondition("phase 1 fitted", {0: True, 1: True, 2: True, 3: False, 4: True})
    v = stats.greater("c", "p", a, b, NAMES, NONE, precondition=some)
    assert v.verdict == stats.HOLDS and v.n == 4 and "phase 1 fitted in 4 of 5 runs" in v.ours
    few = stats.Precondition("phase 1 fitted", {0: False, 1: True, 2: False, 3: False, 4: False})
    v = stats.greater("c", "p", a, b, NAMES, NONE, precondition=few)
    assert v.verdict == stats.UNTESTED and "phase 1 fitted in 1 of 5 runs" in v.test and v.p is None


def test_all_reach_is_not_tested_when_the_short_runs_hit_their_cap():
    assert stats.all_reach("c", "p", [100, 100], "x").verdict == stats.HOLDS
    failing = stats.all_reach("c", "p", [100, 99.5], "x")
    assert failing.verdict == stats.FAILS and "1 of 2" in failing.ours
    capped = stats.all_reach("c", "p", [100, 99.5, 98], "x", capped=[False, True, True])
    assert capped.verdict == stats.UNTESTED and "2 of 3 runs hit their cap" in capped.test


CAP = 1000


def test_fewer_steps_counts_a_capped_slow_run_as_at_least_the_cap():
    v = stats.fewer("c", "p", by_seed([10.0] * 8), dict.fromkeys(range(8)), dict.fromkeys(range(8), CAP),
                    ("fast", "slow"))
    assert v.verdict == stats.HOLDS and v.p == pytest.approx(1 / 256) and "slow 8" in v.ours


def test_fewer_steps_is_inconclusive_where_capped_runs_could_flip_it():
    # Half the pairs hit the cap on both sides: censored, they could have gone either way.
    fast = {**dict.fromkeys(range(4)), **{s: 10.0 for s in range(4, 8)}}
    slow = {**dict.fromkeys(range(4)), **{s: 20.0 for s in range(4, 8)}}
    v = stats.fewer("c", "p", fast, slow, dict.fromkeys(range(8), CAP), ("fast", "slow"))
    assert v.verdict == stats.UNCLEAR and "undecided (both at the cap) in 4" in v.ours
    # a fast run that fitted exactly at the cap is not known to be faster than a capped slow one
    at_cap = stats.fewer("c", "p", by_seed([CAP] * 8), dict.fromkeys(range(8)), dict.fromkeys(range(8), CAP), NAMES)
    assert at_cap.verdict == stats.UNTESTED or at_cap.verdict == stats.UNCLEAR


def test_fewer_steps_does_not_hold_only_as_a_finding():
    caps = dict.fromkeys(range(8), CAP)
    slower = stats.fewer("c", "p", dict.fromkeys(range(8)), by_seed([500.0] * 8), caps, NAMES)
    assert slower.verdict == stats.FAILS and slower.p_against == pytest.approx(1 / 256)
    # more pairs against than for (plus the undecided), but not significantly so: inconclusive, not a failure
    mixed = stats.fewer("c", "p", by_seed([30, 30, 30, 10, 10]), by_seed([20, 20, 20, 20, 20]), caps, NAMES)
    assert mixed.verdict == stats.UNCLEAR
    everything_capped = stats.fewer("c", "p", dict.fromkeys(range(8)), dict.fromkeys(range(8)), caps, NAMES)
    assert everything_capped.verdict == stats.UNTESTED and "all 8 pairs" in everything_capped.test


def test_pooled_step_counts_give_one_sign_per_seed():
    index = pd.MultiIndex.from_product([[10, 50], range(6)], names=["width", "seed"])
    fast, slow = pd.Series([10.0] * 12, index), pd.Series([20.0] * 12, index)
    v = stats.fewer("c", "p", fast, slow, pd.Series(CAP, index), NAMES)
    assert v.n == 6 and v.p == pytest.approx(1 / 64) and "one sign per seed" in v.test


# Holm's correction, the same for both directions

def made(p, p_against):
    return stats.Verdict("c", "p", "o", stats.decide(p, p_against), "t", p=p, p_against=p_against)


def test_a_family_corrects_both_directions_alike():
    # alone each would decide; in a family of 3 neither direction's smallest p survives (0.02 x 3 > 0.025)
    holds = stats.family([made(0.02, 0.9), made(0.5, 0.5), made(0.6, 0.4)])
    fails = stats.family([made(0.9, 0.02), made(0.5, 0.5), made(0.4, 0.6)])
    assert [v.verdict for v in holds] == [stats.UNCLEAR] * 3 == [v.verdict for v in fails]
    assert holds[0].p == pytest.approx(0.06) and fails[0].p_against == pytest.approx(0.06)
    strong = stats.family([made(0.001, 0.99), made(0.99, 0.001), made(0.5, 0.5)])
    assert [v.verdict for v in strong] == [stats.HOLDS, stats.FAILS, stats.UNCLEAR]
    assert strong[0].family == 3 and "family of 3 tests" in strong[0].test


def test_a_family_leaves_counts_and_untested_claims_alone():
    count = stats.all_reach("c", "p", [100, 99], "x")
    skipped = stats.untested("c", "p", "o", "phase 1 did not fit in 5 of 5 runs")
    together = stats.family([count, skipped, made(0.001, 0.9), made(0.01, 0.9)])
    assert [v.verdict for v in together] == [stats.FAILS, stats.UNTESTED, stats.HOLDS, stats.HOLDS]
    assert stats.tests_in(together) == 2


# Calibration on a small fixed simulation (scripts/bench_verdicts.py runs it at the book's sizes)

REPS = 400
MARGIN = 0.04   # above the nominal 2.5%: at 400 draws a rate's standard error is under 1 point


def rates(make, effect: float, seeds: int = 5, draw: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(draw)
    found = [make(rng, effect, seeds).verdict for _ in range(REPS)]
    return {v: found.count(v) / REPS for v in stats.VERDICTS}


def greater_draw(rng, effect, seeds, paper=2.0):
    a = rng.normal(effect, 1, seeds)
    return stats.greater("c", "p", by_seed(a), by_seed(np.zeros(seeds)), NAMES, stats.Smallest(paper / 2, "half"))


def within_draw(rng, difference, seeds, tolerance=1.0):
    return stats.within("c", "p", by_seed(rng.normal(difference, 1, seeds)), by_seed(np.zeros(seeds)), NAMES, tolerance)


def fewer_draw(rng, effect, seeds, cap=3.0):
    slow = rng.normal(2.0, 1, seeds)
    fast = slow - effect + rng.normal(0, 1, seeds)
    censor = lambda x: {s: (None if v >= cap else float(v)) for s, v in enumerate(x)}
    return stats.fewer("c", "p", censor(fast), censor(slow), dict.fromkeys(range(seeds), cap), NAMES)


def test_greater_is_calibrated():
    assert rates(greater_draw, 0.0)[stats.HOLDS] <= 0.025 + MARGIN
    assert rates(greater_draw, 2.0, draw=1)[stats.FAILS] <= 0.025 + MARGIN
    assert rates(greater_draw, 3.0, draw=2)[stats.HOLDS] >= 0.8   # power at 3 standard deviations, 5 seeds


def test_within_is_calibrated():
    assert rates(within_draw, 1.0, seeds=10)[stats.HOLDS] <= 0.025 + MARGIN    # at the tolerance: not the same
    assert rates(within_draw, 0.0, seeds=10, draw=1)[stats.FAILS] <= 0.025 + MARGIN
    assert rates(within_draw, 0.0, seeds=40, draw=2)[stats.HOLDS] >= 0.8


def test_fewer_is_calibrated():
    assert rates(fewer_draw, 0.0, seeds=10)[stats.HOLDS] <= 0.025 + MARGIN
    assert rates(fewer_draw, 2.0, seeds=10, draw=1)[stats.FAILS] <= 0.025 + MARGIN
    assert rates(fewer_draw, 3.0, seeds=10, draw=2)[stats.HOLDS] >= 0.5


def test_pooled_greater_is_calibrated_with_errors_shared_across_widths():
    # each seed's runs share a draw at every width: pooling (width, seed) pairs as independent would be too bold
    def draw(rng, effect, seeds):
        index = pd.MultiIndex.from_product([range(4), range(seeds)], names=["width", "seed"])
        shared = np.tile(rng.normal(0, 1, seeds), 4)
        a = pd.Series(effect + shared + rng.normal(0, 0.3, 4 * seeds), index)
        return stats.greater("c", "p", a, 0 * a, NAMES, NONE)
    assert rates(draw, 0.0)[stats.HOLDS] <= 0.025 + MARGIN


def test_verdict_table_shows_the_effect_beside_the_papers_number():
    v = stats.greater("c", "p", by_seed([5, 6, 7.5]), by_seed([1, 2, 3]), NAMES, stats.Smallest(1, "why"), 28.8)
    table = stats.verdict_table([v])
    assert list(table.columns[:6]) == stats.COLUMNS
    assert "95% CI" in table["effect (95% CI)"][0] and "paper 28.8" in table["effect (95% CI)"][0]
    assert math.isclose(table["effect"][0], v.effect) and table["n"][0] == 3
    assert "0 are not tested" in stats.headline([v], "cpu")
