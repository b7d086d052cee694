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

def test_step_counts_pair_by_seed_not_by_position():
    v = stats.fewer("c", "p", {0: 1.0, 1: 10.0}, {1: 20.0, 0: 2.0}, {1: 99, 0: 99}, NAMES)
    assert v.ours.startswith("a fewer in 2 of 2 pairs, at least as many in 0,")
    capped = stats.fewer("c", "p", {0: 1.0, 1: None}, {1: 5.0, 0: 5.0}, {1: 3, 0: 9}, NAMES)
    assert capped.ours.startswith("a fewer in 1 of 2 pairs, at least as many in 1,"), "each pair's own cap"
    under_its_cap = stats.fewer("c", "p", {0: 4.0, 1: 2.0}, {1: None, 0: None}, {1: 3, 0: 9}, NAMES)
    assert under_its_cap.ours.startswith("a fewer in 2 of 2 pairs")


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
    assert everything_capped.verdict == stats.UNTESTED
    assert everything_capped.test == "not tested: both runs hit the step cap in all 8 pairs"
    assert (everything_capped.claim, everything_capped.paper) == ("c", "p")


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
    assert strong[0].family == 3
    assert strong[0].test == "t; Holm-adjusted over a family of 3 tests: p = 0.003, against: p = 1"


def test_a_family_leaves_counts_and_untested_claims_alone():
    count = stats.all_reach("c", "p", [100, 99], "x")
    skipped = stats.untested("c", "p", "o", "phase 1 did not fit in 5 of 5 runs")
    together = stats.family([count, skipped, made(0.001, 0.9), made(0.01, 0.9)])
    assert [v.verdict for v in together] == [stats.FAILS, stats.UNTESTED, stats.HOLDS, stats.HOLDS]
    assert stats.tests_in(together) == 2
    assert (together[2].family, together[2].p, together[3].p) == (2, 0.002, 0.01), "a family of two is adjusted"


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


# Exact values: every number, interval and line a verdict carries (the tests above pin the p-values; these pin the
# rest, and the paths where the t tail is never reached)

@pytest.mark.parametrize("draw", range(3))
def test_within_interval_and_pooled_within_are_scipys(draw):
    rng = np.random.default_rng(20 + draw)
    a, b = rng.normal(0.2, 1, 6), rng.normal(0, 1, 6)
    v = stats.within("c", "p", by_seed(a), by_seed(b), NAMES, tolerance=0.5)
    low, high = sp.t.interval(0.95, 5, loc=np.mean(a - b), scale=sp.sem(a - b))
    assert (v.low, v.high) == pytest.approx((low, high), rel=1e-9) and v.effect == pytest.approx(np.mean(a - b))
    index = pd.MultiIndex.from_product([range(5), [1, 2, 3]], names=["seed", "width"])
    pa, pb = pd.Series(rng.normal(0, 1, 15), index), pd.Series(rng.normal(0, 1, 15), index)
    pooled = stats.within("c", "p", pa, pb, NAMES, tolerance=0.5)
    d = (pa - pb).groupby(level="seed").mean()
    assert pooled.n == 5 and pooled.p == pytest.approx(max(sp.ttest_1samp(d, -0.5, alternative="greater").pvalue,
                                                           sp.ttest_1samp(d, 0.5, alternative="less").pvalue))
    assert "its mean difference over its 3 widths" in pooled.test
    index = pd.MultiIndex.from_product([["moons", "circles"], [1, 2], range(4)], names=["dataset", "width", "seed"])
    two_keys = stats.within("c", "p", pd.Series(rng.normal(0, 1, 16), index), pd.Series(0.0, index), NAMES, 0.5)
    assert "its mean difference over its 4 dataset/widths" in two_keys.test


@pytest.mark.parametrize("draw", range(4))
def test_fewer_is_scipys_sign_test_on_random_censored_pairs(draw):
    rng = np.random.default_rng(30 + draw)
    cap = 8
    raw_a, raw_b = rng.integers(1, 12, 12), rng.integers(1, 12, 12)
    censor = lambda x: [None if v >= cap else int(v) for v in x]
    a, b = censor(raw_a), censor(raw_b)
    v = stats.fewer("c", "p", by_seed(a), by_seed(b), dict.fromkeys(range(12), cap), NAMES)
    # each pair for, against, tied or undecided as RULES says; the worst case counts undecided against the claim
    sure_for = [x is not None and (y is None or x < y) for x, y in zip(a, b)]
    sure_against = [x is None and y is not None or (x is not None and y is not None and x > y) for x, y in zip(a, b)]
    undecided = [x is None and y is None for x, y in zip(a, b)]
    untied = sum(f or g or u for f, g, u in zip(sure_for, sure_against, undecided))
    assert v.n == untied
    assert v.p == pytest.approx(sp.binomtest(sum(sure_for), untied, alternative="greater").pvalue, rel=1e-12)
    assert v.p_against == pytest.approx(sp.binomtest(sum(sure_against), untied, alternative="greater").pvalue,
                                        rel=1e-12)


def test_identical_differences_decide_by_their_sign_alone():
    """Standard error 0: no t tail, the sign of the excess decides."""
    v = stats.greater("c", "p", by_seed([3, 4, 5]), by_seed([2, 3, 4]), NAMES, stats.Smallest(1.0, "why"))
    assert (v.p, v.p_against, v.low, v.high, v.effect) == (0.0, 1.0, 1.0, 1.0, 1.0) and v.verdict == stats.HOLDS
    below = stats.greater("c", "p", by_seed([3, 4, 5]), by_seed([2, 3, 4]), NAMES, stats.Smallest(1.5, "why"))
    assert (below.p, below.p_against) == (0.0, 0.0) and below.verdict == stats.FAILS
    none = stats.greater("c", "p", by_seed([2, 3]), by_seed([2, 3]), NAMES, NONE)
    assert (none.p, none.p_against) == (1.0, 1.0) and none.verdict == stats.UNCLEAR


def test_a_verdict_states_its_numbers_in_words():
    v = stats.greater("c", "p", by_seed([5, 6, 7.5]), by_seed([1, 2, 3]), NAMES, stats.Smallest(1, "why"), 28.8)
    assert v.ours == "a 6.17 ± 1.3 vs b 2 ± 1; difference 4.17 (95% CI 3.45 to 4.88)"
    assert v.test == ("one-sided paired t-tests over 3 seeds: that the difference exceeds 0, p = 0.0008; that it is "
                      "below the smallest effect that counts as the claim, 1 (why), p = 1")
    assert (v.claim, v.paper, v.paper_effect, v.n, v.family) == ("c", "p", 28.8, 3, 1)
    assert stats.effect_text(v) == "4.17 (95% CI 3.45 to 4.88); paper 28.8; n = 3"
    w = stats.within("c", "p", by_seed([90, 91, 92]), by_seed([90.2, 90.9, 92.1]), NAMES, 1.0)
    assert w.ours == "a 91 ± 1 vs b 91.1 ± 0.96; difference -0.0667 (95% CI -0.446 to 0.313)"
    assert w.test == ("two one-sided paired t-tests over 3 seeds that the difference lies within ±1: p = 0.0044; "
                      "that it lies outside: p = 1")
    assert (w.claim, w.paper, w.paper_effect) == ("c", "p", 0.0)
    two = stats.greater("c", "p", by_seed([1, 2]), by_seed([0, 0]), NAMES, NONE)
    assert two.ours.startswith("a 1.5 ± 0.71 vs b 0 ± 0; difference 1.5")


def test_fewer_states_its_pairs_and_its_effect():
    f = stats.fewer("c", "p", by_seed([10, 20, 30, 40, None]), by_seed([20, 30, 10, None, None]),
                    dict.fromkeys(range(5), 100), ("fast", "slow"))
    assert f.ours == ("fast fewer in 3 of 5 pairs, at least as many in 1, tied in 0, undecided (both at the cap) in "
                      "1; runs at the step cap: fast 1, slow 2 of 5")
    assert f.test == ("exact one-sided sign tests over 5 untied pairs: that fast takes fewer steps, undecided pairs "
                      "counted against it, p = 0.5; that it takes more, undecided pairs counted for it, p = 0.97")
    assert (f.effect, f.n, f.p, f.p_against, f.verdict) == (0.4, 5, 0.5, 31 / 32, stats.UNCLEAR)
    assert (f.claim, f.paper, f.low, f.paper_effect) == ("c", "p", None, None)
    one = stats.fewer("c", "p", {0: 3}, {0: 4}, {0: 9}, NAMES)
    assert (one.verdict, one.n, one.effect, one.p) == (stats.UNCLEAR, 1, 1.0, 0.5), "one seed: tested, undecided"
    tied = stats.fewer("c", "p", by_seed([5, 6]), by_seed([5, 6]), {0: 9, 1: 9}, NAMES)
    assert (tied.effect, tied.n, tied.p, tied.p_against, tied.verdict) == (0.0, 0, 1.0, 1.0, stats.UNCLEAR)
    assert "tied in 2" in tied.ours


@pytest.mark.parametrize("x, y, cap, balance", [
    (None, None, 9, (0, 0, 0, 1)), (None, 5, 9, (0, 1, 0, 0)), (5, None, 9, (1, 0, 0, 0)),
    (9, None, 9, (0, 0, 0, 1)), (5, 5, 9, (0, 0, 1, 0)), (4, 5, 9, (1, 0, 0, 0)), (6, 5, 9, (0, 1, 0, 0)),
])
def test_each_pair_of_step_counts_is_for_against_tied_or_undecided(x, y, cap, balance):
    f = stats.fewer("c", "p", {0: x}, {0: y}, {0: cap}, NAMES)
    assert f.ours.startswith("a fewer in {} of 1 pairs, at least as many in {}, tied in {}, undecided (both at the "
                             "cap) in {};".format(*balance))


def test_step_counts_pooled_over_widths_sum_each_seeds_pairs():
    index = pd.MultiIndex.from_product([[10, 50, 100], range(4)], names=["width", "seed"])
    # seed 0: 2 for, 1 against -> for; seed 1: 1 for, 2 against -> against; seeds 2, 3: all for
    fast = pd.Series([1, 9, 1, 1, 1, 9, 1, 1, 9, 1, 1, 1], index, dtype=float)
    slow = pd.Series(5.0, index)
    v = stats.fewer("c", "p", fast, slow, pd.Series(20, index), NAMES)
    assert v.n == 4 and v.p == pytest.approx(sp.binomtest(3, 4, alternative="greater").pvalue)
    assert v.p_against == pytest.approx(sp.binomtest(1, 4, alternative="greater").pvalue)
    assert v.test.startswith("exact one-sided sign tests over 4 untied seeds, one sign per seed: its pairs' balance "
                             "over widths: that a takes fewer steps")


def test_a_seed_whose_pairs_balance_only_in_the_worst_case_is_untied():
    """Seed 0: one pair for, one undecided: worst case 0, best 2, so it counts among the untied seeds (against
    the claim in the worst case, for it in the best); seed 1's pairs tie: it counts for neither."""
    index = pd.MultiIndex.from_product([[10, 50], range(2)], names=["width", "seed"])
    fast = pd.Series([1.0, 5.0, None, 5.0], index)
    slow = pd.Series([4.0, 5.0, None, 5.0], index)
    v = stats.fewer("c", "p", fast, slow, pd.Series(20, index), NAMES)
    assert (v.n, v.p, v.p_against) == (1, 1.0, 1.0)


def test_decide_at_the_level_itself():
    assert stats.decide(stats.ALPHA, 0.5) == stats.HOLDS
    assert stats.decide(stats.ALPHA * 1.001, 0.5) == stats.UNCLEAR
    assert stats.decide(0.5, stats.ALPHA) == stats.FAILS and stats.decide(0.001, 0.001) == stats.FAILS
    assert stats.decide(None, 0.0) == stats.UNCLEAR and stats.decide(0.001, None) == stats.HOLDS
    assert stats.ALPHA == pytest.approx(0.025)


def test_holm_caps_at_one_and_keeps_the_given_order():
    assert stats.holm([0.6, 0.7]) == [1.0, 1.0]
    assert stats.holm([0.3, 0.01, 0.2]) == pytest.approx([0.4, 0.03, 0.4])
    assert stats.holm([]) == []


def test_a_family_of_one_test_is_left_alone():
    alone = made(0.02, 0.9)
    assert stats.family([alone, stats.untested("c", "p", "o", "why")])[0] is alone
    assert (alone.p, alone.family, alone.test) == (0.02, 1, "t")


def test_no_number_and_untested_read_as_stated():
    assert stats.no_number() == stats.Smallest(0.0, "no effect: the paper gives no number for it")
    assert stats.no_number("reason") == stats.Smallest(0.0, "no effect: reason")
    v = stats.untested("c", "p", "o", "phase 1 did not fit")
    assert (v.claim, v.paper, v.ours) == ("c", "p", "o")
    assert (v.verdict, v.test, v.p, v.effect, v.n) == (stats.UNTESTED, "not tested: phase 1 did not fit", None, None, 0)


def test_one_seed_gives_its_difference_and_no_test():
    v = stats.greater("c", "p", {4: 9.0}, {4: 1.5}, NAMES, NONE, paper_effect=2.0)
    assert (v.claim, v.paper, v.verdict) == ("c", "p", stats.UNCLEAR)
    assert v.ours == "a 9 vs b 1.5; difference 7.5"
    assert v.test == "one seed: no spread to test against, and a point estimate alone decides nothing"
    assert (v.effect, v.n, v.paper_effect, v.low) == (7.5, 1, 2.0, None)


def test_a_precondition_note_names_the_seeds_left_out():
    a, b = by_seed([5, 6, 7.5, 6]), by_seed([1, 2, 3, 2.5])
    pre = stats.Precondition("phase 1 fitted", {0: True, 1: False, 2: False, 3: False})
    v = stats.greater("c", "p", a, b, NAMES, NONE, precondition=pre)
    assert (v.claim, v.paper) == ("c", "p")
    assert v.test == ("not tested: phase 1 fitted in 1 of 4 runs; the 3 seed(s) with a run that did not are left "
                      "out, which leaves 1 seed(s) to test")
    met = stats.Precondition("phase 1 fitted", {s: True for s in range(4)})
    v = stats.greater("c", "p", a, b, NAMES, NONE, precondition=met)
    assert v.ours == "a 6.12 ± 1 vs b 2.12 ± 0.85; phase 1 fitted in 4 of 4 runs; difference 4 (95% CI 3.35 to 4.65)"
    assert v.n == 4
    # a seed left out on either side: only seeds 2 and 3 are tested
    pooled = pd.Series(True, pd.MultiIndex.from_product([[1, 2], range(4)], names=["width", "seed"]))
    pooled[(2, 0)] = pooled[(1, 1)] = False
    v = stats.greater("c", "p", a, b, NAMES, NONE, precondition=stats.Precondition("fitted", pooled))
    assert v.n == 2 and v.effect == pytest.approx(np.mean([4.5, 3.5]))
    f = stats.fewer("c", "p", by_seed([1, 2, None, 4]), by_seed([5, 6, 7, 8]), dict.fromkeys(range(4), 9), NAMES,
                    precondition=pre)
    assert (f.claim, f.paper, f.verdict) == ("c", "p", stats.UNTESTED)
    assert f.ours == ("a fewer in 1 of 1 pairs, at least as many in 0, tied in 0, undecided (both at the cap) in 0; "
                      "runs at the step cap: a 0, b 0 of 1; phase 1 fitted in 1 of 4 runs; the 3 seed(s) with a run "
                      "that did not are left out"), "the capped run of a seed left out is not counted"
    assert f.test == ("not tested: phase 1 fitted in 1 of 4 runs; the 3 seed(s) with a run that did not are left "
                      "out, which leaves fewer than two seeds to test")
    one_out = stats.Precondition("phase 1 fitted", {0: True, 1: True, 2: False, 3: True})
    f = stats.fewer("c", "p", by_seed([1, 2, 3, 4]), by_seed([5, 6, 7, 8]), dict.fromkeys(range(4), 9), NAMES,
                    precondition=stats.Precondition("fitted", {0: True, 1: False, 2: True, 3: False}))
    assert f.verdict == stats.UNCLEAR and f.n == 2, "two seeds left: tested"
    assert stats.fewer("c", "p", by_seed([1, 2, 3, 4]), by_seed([5, 6, 7, 8]), dict.fromkeys(range(4), 9), NAMES,
                       precondition=one_out).n == 3


def test_keys_that_are_not_seeds_or_repeat_are_refused():
    with pytest.raises(ValueError, match=r"^values must be keyed by seed; their index has the levels \['width'\]$"):
        stats.greater("c", "p", pd.Series([1.0], pd.Index([1], name="width")), {0: 1.0}, NAMES, NONE)
    with pytest.raises(ValueError, match=r"^a key appears twice: \[1\]$"):
        stats.greater("c", "p", pd.Series([1.0, 2.0, 3.0], [0, 1, 1]), {0: 1.0, 1: 2.0}, NAMES, NONE)
    with pytest.raises(ValueError, match=r"^b has no run for \[2\] \(index \['seed'\]\): runs are paired by seed, so "
                                         r"both sides need the same seeds$"):
        stats.greater("c", "p", {0: 1.0, 2: 1.0}, {0: 1.0}, NAMES, NONE)


def test_all_reach_counts_the_runs_at_the_target():
    v = stats.all_reach("c", "p", [100, 99.5, 100.0], "phase 1")
    assert v.ours == "phase 1: 2 of 3 runs reached 100% (lowest 99.50%)" and v.test == "every run at or above 100%"
    assert (v.claim, v.paper, v.verdict, v.n) == ("c", "p", stats.FAILS, 3)
    capped = stats.all_reach("c", "p", [100, 99.5], "x", capped=[False, True])
    assert (capped.claim, capped.paper, capped.ours) == ("c", "p", "x: 1 of 2 runs reached 100% (lowest 99.50%)")
    assert stats.all_reach("c", "p", [90, 95], "x", target=90).verdict == stats.HOLDS
    mixed = stats.all_reach("c", "p", [99, 98], "x", capped=[True, False])
    assert mixed.verdict == stats.FAILS, "a short run without a cap fails the claim"


def test_counts_headline_and_the_sentences_below_a_table():
    holds = stats.greater("c1", "p", by_seed([5, 6, 7.5]), by_seed([1, 2, 3]), NAMES, NONE)
    unclear = stats.untested("c2", "p", "ours2", "why")
    assert stats.counts([stats.HOLDS, stats.HOLDS, stats.UNCLEAR]) == {stats.HOLDS: 2, stats.FAILS: 0,
                                                                      stats.UNCLEAR: 1, stats.UNTESTED: 0}
    assert stats.headline([holds, unclear], "cpu") == (
        "**At scale `cpu`, of 2 claims 1 hold, 0 do not, 0 are inconclusive and 1 are not tested (the paper's "
        "precondition was not met); the table holds 1 statistical tests.**")
    assert stats.short_of_holding([holds, unclear]) == "*c2*: not tested (ours2)."
    assert stats.short_of_holding([unclear, holds, unclear]) == "*c2*: not tested (ours2). *c2*: not tested (ours2)."


def test_verdict_table_holds_every_number_of_every_verdict():
    v = stats.greater("c", "p", by_seed([5, 6, 7.5]), by_seed([1, 2, 3]), NAMES, stats.Smallest(1, "why"), 28.8)
    table = stats.verdict_table([v, stats.untested("c2", "p2", "o2", "why")])
    numbers = ["effect", "low", "high", "paper_effect", "n", "p", "p_against", "family"]
    assert list(table.columns) == stats.COLUMNS + numbers
    assert [table[c][0] for c in numbers] == [getattr(v, c) for c in numbers]
    assert table["effect (95% CI)"][1] == "" and table["verdict"][1] == stats.UNTESTED
    bare = stats.Verdict("c", "p", "o", stats.HOLDS, "t", effect=0.5, n=2)
    assert stats.effect_text(bare) == "0.5; n = 2"
