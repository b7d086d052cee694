import math

import nbformat
import pandas as pd
import pytest

from badminima.book import summary
from badminima.core import stats
from badminima.paper_a import claims as paper_a_claims
from badminima.paper_a import experiments as paper_a
from badminima.paper_a import sketch
from badminima.paper_b import claims as paper_b_claims
from badminima.paper_a import protocol as paper_a_protocol
from badminima.paper_b import protocol as paper_b_protocol


def test_greater_holds_fails_and_is_inconclusive():
    assert stats.greater("c", "p", [5, 6, 7], [1, 2, 3], ("a", "b")).verdict == stats.HOLDS
    assert stats.greater("c", "p", [1, 2, 3], [5, 6, 7], ("a", "b")).verdict == stats.FAILS
    noisy = stats.greater("c", "p", [5, 1, 6], [1, 5, 2], ("a", "b"))
    assert noisy.verdict == stats.UNCLEAR and "s.e." in noisy.ours
    assert stats.greater("c", "p", [5, 6], [4, 5], ("a", "b"), min_gap=2).verdict == stats.FAILS
    one_seed = stats.greater("c", "p", [2], [1], ("a", "b"))
    assert one_seed.verdict == stats.UNCLEAR and one_seed.test.startswith("one seed") and one_seed.p is None


def test_t_tail_matches_tabled_critical_values():
    # two-sided 5% critical values of Student's t (df 1, 2, 4, 30) and a one-sided 5% one (df 10)
    for t, df in ((12.706, 1), (4.303, 2), (2.776, 4), (2.042, 30)):
        assert math.isclose(2 * stats.t_sf(t, df), 0.05, abs_tol=2e-4)
    assert math.isclose(stats.t_sf(1.812, 10), 0.05, abs_tol=2e-4)
    assert math.isclose(stats.t_sf(-1.812, 10), 0.95, abs_tol=2e-4) and stats.t_sf(0.0, 7) == 0.5


def test_sign_test_is_the_binomial_tail():
    assert stats.sign_test_p(8, 0) == 1 / 256
    assert stats.sign_test_p(6, 2) == (28 + 8 + 1) / 256
    assert stats.sign_test_p(0, 0) == 1.0


def test_holm_on_a_known_example():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> raised to 0.06 (monotone)
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_a_family_holds_fewer_claims_than_its_members_alone():
    made = lambda p, verdict=stats.HOLDS: stats.Verdict("c", "p", "o", verdict, "t", p)
    alone = [made(0.03), made(0.04), made(0.2, stats.UNCLEAR), made(0.7, stats.FAILS), made(None, stats.HOLDS)]
    together = stats.family(alone)
    assert [v.verdict for v in together] == [stats.UNCLEAR, stats.UNCLEAR, stats.UNCLEAR, stats.FAILS, stats.HOLDS]
    assert together[0].family == 4 and "family of 4 tests" in together[0].test
    assert stats.tests_in(together) == 4
    strong = stats.family([made(0.001), made(0.02)])
    assert [v.verdict for v in strong] == [stats.HOLDS, stats.HOLDS]   # 0.002 and 0.02 after adjusting


CAP = 1000


def test_fewer_steps_counts_a_capped_slow_run_as_at_least_the_cap():
    verdict = stats.fewer("c", "p", [10.0] * 8, [None] * 8, [CAP] * 8, ("fast", "slow"))
    assert verdict.verdict == stats.HOLDS and verdict.p == 1 / 256 and "slow 8" in verdict.ours


def test_fewer_steps_is_inconclusive_where_capped_runs_could_flip_it():
    # Half the pairs hit the cap on both sides. Counted at the cap they would tie and the rest would carry the
    # claim; censored, they could have gone either way, so the claim cannot hold.
    fast, slow = [None] * 4 + [10.0] * 4, [None] * 4 + [20.0] * 4
    at_the_cap = stats.greater("c", "p", [s or CAP for s in slow], [f or CAP for f in fast], ("slow", "fast"))
    assert at_the_cap.verdict == stats.HOLDS
    censored = stats.fewer("c", "p", fast, slow, [CAP] * 8, ("fast", "slow"))
    assert censored.verdict == stats.UNCLEAR and "undecided (both at the cap) in 4" in censored.ours
    everything_capped = stats.fewer("c", "p", [None] * 8, [None] * 8, [CAP] * 8, ("fast", "slow"))
    assert everything_capped.verdict == stats.UNCLEAR


def test_fewer_steps_fails_when_even_the_undecided_pairs_cannot_carry_it():
    assert stats.fewer("c", "p", [None] * 8, [500.0] * 8, [CAP] * 8, ("a", "b")).verdict == stats.FAILS
    half = stats.fewer("c", "p", [None] * 4 + [30.0] * 4, [None] * 4 + [20.0] * 4, [CAP] * 8, ("a", "b"))
    assert half.verdict == stats.FAILS
    # a fast run that fitted exactly at the cap is not known to be faster than a capped slow one
    assert stats.fewer("c", "p", [CAP] * 8, [None] * 8, [CAP] * 8, ("a", "b")).verdict == stats.UNCLEAR


def test_all_reach():
    assert stats.all_reach("c", "p", [100, 100], "x").verdict == stats.HOLDS
    failing = stats.all_reach("c", "p", [100, 99.5], "x")
    assert failing.verdict == stats.FAILS and "1 of 2" in failing.ours


def sketch_table(margins, tests):
    rows = []
    for setting in (1, 2, 3, 4):
        for seed in (0, 1, 2):
            rows.append({"setting": setting, "seed": seed, "train acc %": 100.0,
                         "margin": margins[setting] + 0.01 * seed, "test acc %": tests[setting] + 0.1 * seed})
    return pd.DataFrame(rows)


def test_sketch_verdicts_follow_the_numbers():
    good = sketch_table({1: 2.0, 2: 0.01, 3: 0.1, 4: 1.5}, {1: 99.0, 2: 50.0, 3: 90.0, 4: 99.0})
    assert all(v.verdict == stats.HOLDS for v in paper_a_claims.figure1(good))
    bad = sketch_table({1: 0.1, 2: 0.5, 3: 2.0, 4: 0.05}, {1: 90.0, 2: 50.0, 3: 99.0, 4: 99.0})
    verdicts = {v.claim: v.verdict for v in paper_a_claims.figure1(bad)}
    assert list(verdicts.values()).count(stats.FAILS) == 4
    table = stats.verdict_table(paper_a_claims.figure1(bad))
    assert list(table.columns) == ["claim", "paper", "ours", "verdict", "test"]


def test_within_holds_fails_and_is_inconclusive():
    assert stats.within("c", "p", [90.0, 91.0, 92.0], [90.2, 90.9, 92.1], ("a", "b"), 1.0).verdict == stats.HOLDS
    assert stats.within("c", "p", [95.0, 96.0, 97.0], [90.0, 91.0, 92.0], ("a", "b"), 1.0).verdict == stats.FAILS
    noisy = stats.within("c", "p", [90.0, 93.0, 90.0], [91.0, 90.0, 91.5], ("a", "b"), 1.0)
    assert noisy.verdict == stats.UNCLEAR and "tolerance of 1" in noisy.test


SEEDS = (0, 1, 2)


def main_runs(vanilla_adv: float, sota_adv: float, train: float = 100.0) -> pd.DataFrame:
    """Per-seed main-grid results: random init at 90 (vanilla) / 93 (SOTA), the adversarial init as given."""
    test = {("random", "vanilla"): 90.0, ("random", "SOTA"): 93.0,
            ("adversarial", "vanilla"): vanilla_adv, ("adversarial", "SOTA"): sota_adv}
    return pd.DataFrame([{"model": "resnet18", "seed": s, "init": i, "mode": m, "train acc %": train,
                          "test acc %": t + 0.1 * s} for (i, m), t in test.items() for s in SEEDS])


def verdicts_of(found):
    return [v.verdict for v in found]


def test_paper_a_claims_1_to_3():
    good, bad = main_runs(80.0, 93.0), main_runs(89.8, 85.0, train=99.0)
    assert verdicts_of(paper_a_claims.claim1_fit(good)) == [stats.HOLDS]
    assert verdicts_of(paper_a_claims.claim1_fit(bad)) == [stats.FAILS]
    assert verdicts_of(paper_a_claims.claim2_drop(good)) == [stats.HOLDS]
    assert verdicts_of(paper_a_claims.claim2_drop(bad)) == [stats.FAILS]
    assert verdicts_of(paper_a_claims.claim3_sota(good)) == [stats.HOLDS]
    assert verdicts_of(paper_a_claims.claim3_sota(bad)) == [stats.FAILS]


def distances(vanilla_adv: float, sota_adv: float) -> pd.DataFrame:
    return pd.DataFrame([{"model": "vgg16", "seed": s, "d(W0R, WVR)": 0.9 + 0.01 * s,
                          "d(W0A, WVA)": vanilla_adv + 0.01 * s, "d(W0A, WSA)": sota_adv + 0.02 * s} for s in SEEDS])


def test_paper_a_claim_4():
    assert verdicts_of(paper_a_claims.claim4_distance(distances(0.2, 10.0))) == [stats.HOLDS] * 2
    assert verdicts_of(paper_a_claims.claim4_distance(distances(1.5, 1.0))) == [stats.FAILS] * 2


def table2_runs(adversarial: dict[str, float]) -> pd.DataFrame:
    rows = []
    for mode in paper_a.TABLE2_ROWS:
        for s in SEEDS:
            rows.append({"mode": mode, "init": "random", "seed": s, "test acc %": 90.0 + 0.1 * s})
            rows.append({"mode": mode, "init": "adversarial", "seed": s,
                         "test acc %": adversarial.get(mode, 90.0) + 0.1 * s})
    return pd.DataFrame(rows)


def test_paper_a_claim_5():
    paper_like = table2_runs({"Vanilla SGD": 60.0, "DA": 86.0, "l2": 85.0, "Momentum": 88.0})
    assert verdicts_of(paper_a_claims.claim5_heuristics(paper_like)) == [stats.HOLDS] * 6
    failing = table2_runs({"Vanilla SGD": 60.0, "DA": 65.0, "l2": 62.0, "Momentum": 61.0, "DA+l2": 80.0,
                           "DA+Momentum": 82.0, "l2+Momentum": 70.0})
    assert verdicts_of(paper_a_claims.claim5_heuristics(failing)) == [stats.FAILS] * 6


def measures(adv_norm: float, adv_fgsm: float) -> pd.DataFrame:
    rows = []
    for s in SEEDS:
        for init, norm, fgsm in (("random", 10.0, 60.0), ("adversarial", adv_norm, adv_fgsm)):
            for eps, drop in ((0.0, 0.0), (0.05, 20.0)):
                rows.append({"model": "resnet18", "seed": s, "init": init, "mode": "vanilla", "epsilon": eps,
                             "frobenius": norm + s, "path l1": 10 * norm + s, "path l2": norm / 2 + 0.1 * s,
                             "fgsm acc %": fgsm - drop + s})
    return pd.DataFrame(rows)


def test_paper_a_claim_6():
    assert verdicts_of(paper_a_claims.claim6_complexity(measures(15.0, 40.0))) == [stats.HOLDS] * 4
    assert verdicts_of(paper_a_claims.claim6_complexity(measures(8.0, 70.0))) == [stats.FAILS] * 4


def r_table(vanilla_slope, sota_slope) -> pd.DataFrame:
    """Figure 4's runs: test accuracy 90 (vanilla) / 93 (SOTA) at R = 0, changing by slope(seed) per unit of R."""
    return pd.DataFrame([{"model": "resnet18", "seed": s, "R": R, "mode": mode,
                          "test acc %": base + slope(s) * R + 0.05 * s}
                         for mode, base, slope in (("vanilla", 90.0, vanilla_slope), ("SOTA", 93.0, sota_slope))
                         for s in SEEDS for R in (0, 1, 2, 4)])


def test_figure4_holds_when_vanilla_degrades_with_R_and_SOTA_stays():
    degrading, flat = (lambda s: -3.0 - 0.2 * s), (lambda s: 0.02 * (s - 1))
    verdicts = paper_a_claims.figure4(r_table(degrading, flat))
    assert verdicts_of(verdicts) == [stats.HOLDS, stats.HOLDS] and "R = 0 to 4" in verdicts[0].claim
    assert "fitted drop 12" in verdicts[0].ours   # 3 points per unit of R over R = 0..4 (seed 0)


def test_figure4_does_not_hold_for_flat_vanilla_or_degrading_SOTA():
    flat, degrading = (lambda s: 0.02 * (s - 1)), (lambda s: -3.0 - 0.2 * s)
    assert verdicts_of(paper_a_claims.figure4(r_table(flat, flat))) == [stats.FAILS, stats.HOLDS]
    assert verdicts_of(paper_a_claims.figure4(r_table(degrading, degrading))) == [stats.HOLDS, stats.FAILS]
    # a fall smaller than the clear-gap threshold over the whole sweep is not "clearly" a fall
    small = lambda s: -0.5 * paper_a_claims.CLEAR_GAP / 4 - 0.01 * s
    assert verdicts_of(paper_a_claims.figure4(r_table(small, flat)))[0] == stats.FAILS


def widths_table(test: dict, steps: dict | None = None, phase1: float = 100.0, datasets=("gaussians",),
                 widths=(10, 100), cap: int = 1000, seeds=(0, 1, 2), phase1_capped=()):
    """A tidy table as badminima.paper_b.experiments.sweep writes it; test/steps map an experiment to its value at every
    width, plus a small per-seed wobble (None steps: the run hit the cap); phase 1 hit its cap for phase1_capped."""
    rows = []
    for dataset in datasets:
        for width in widths:
            for experiment in ("Exp 1", "Exp 2", "Exp 3", "Norm"):
                for seed in seeds:
                    step = (steps or {}).get(experiment, 100)
                    rows.append({"dataset": dataset, "name": dataset.title(), "width": width,
                                 "experiment": experiment, "seed": seed,
                                 "test acc %": test[experiment] + 0.1 * seed,
                                 "steps": None if step is None else step + seed, "hit cap": step is None, "cap": cap,
                                 "phase-1 acc %": float("nan") if experiment == "Exp 1" else phase1,
                                 "phase-1 hit cap": experiment != "Exp 1" and seed in phase1_capped})
    table = pd.DataFrame(rows)
    table["steps"] = table["steps"].astype("Int64")
    return table


GOOD = {"Exp 1": 95.0, "Exp 2": 80.0, "Exp 3": 95.2, "Norm": 88.0}
BAD = {"Exp 1": 80.0, "Exp 2": 95.0, "Exp 3": 60.0, "Norm": 99.0}


def verdicts_from(fn, table):
    return [v.verdict for v in fn(table)]


def test_widths_phase1_fits():
    assert verdicts_from(paper_b_claims.widths_phase1_fits, widths_table(GOOD)) == [stats.HOLDS]
    failing = paper_b_claims.widths_phase1_fits(widths_table(GOOD, phase1=71.0))
    assert [v.verdict for v in failing] == [stats.FAILS] and "0 of 6" in failing[0].ours


def test_widths_exp2_worse_at_each_width_is_one_family():
    table = widths_table(GOOD, widths=(10, 100, 500), phase1_capped=(1,))
    verdicts = paper_b_claims.widths_exp2_worse(table)
    assert [v.verdict for v in verdicts] == [stats.HOLDS] * 3
    assert "p = 500" in verdicts[-1].claim and verdicts[0].family == 3
    assert "phase 1 fitted the random labels in 2 of 3 runs" in verdicts[0].ours
    assert verdicts_from(paper_b_claims.widths_exp2_worse, widths_table(BAD)) == [stats.FAILS] * 2


def test_widths_exp3_matches_on_gaussians_only():
    assert verdicts_from(paper_b_claims.widths_exp3_matches, widths_table(GOOD)) == [stats.HOLDS]
    assert verdicts_from(paper_b_claims.widths_exp3_matches, widths_table(BAD)) == [stats.FAILS]
    assert paper_b_claims.widths_exp3_matches(widths_table(GOOD, datasets=("spirals",))) == []


def test_widths_norm_between():
    assert verdicts_from(paper_b_claims.widths_norm_between, widths_table(GOOD)) == [stats.HOLDS, stats.HOLDS]
    assert verdicts_from(paper_b_claims.widths_norm_between, widths_table(BAD)) == [stats.FAILS, stats.HOLDS]


def test_widths_training_time_treats_capped_runs_as_censored():
    seeds = tuple(range(8))
    slow_adversarial = {"Exp 1": 50, "Exp 2": None, "Exp 3": 20}
    table = widths_table(GOOD, slow_adversarial, datasets=("gaussians", "spirals"), seeds=seeds)
    verdicts = paper_b_claims.widths_training_time(table)
    # Exp 2 capped, Exp 1 fitted: Exp 2 took more steps whatever it would have taken
    assert [v.verdict for v in verdicts] == [stats.HOLDS, stats.FAILS, stats.FAILS]
    assert "Exp 2 8 of 8" in verdicts[0].ours and "phase 1 fitted the random labels in 8 of 8" in verdicts[0].ours
    fast_adversarial = {"Exp 1": 500, "Exp 2": 40, "Exp 3": None}
    table = widths_table(GOOD, fast_adversarial, datasets=("gaussians", "spirals"), seeds=seeds)
    assert verdicts_from(paper_b_claims.widths_training_time, table) == [stats.FAILS, stats.HOLDS, stats.HOLDS]
    both_capped = widths_table(GOOD, {"Exp 1": None, "Exp 2": None, "Exp 3": None}, datasets=("spirals",))
    verdicts = paper_b_claims.widths_training_time(both_capped)
    assert [v.verdict for v in verdicts] == [stats.UNCLEAR] * 2 and "undecided (both at the cap) in 6" in verdicts[0].ours


def test_widths_small_mnist():
    table = widths_table({"Exp 1": 80.0, "Exp 2": 60.0, "Exp 3": 70.0, "Norm": 70.0}, datasets=("vmnist",))
    verdicts = paper_b_claims.widths_small_mnist(table)
    assert [v.verdict for v in verdicts] == [stats.HOLDS] and "p = 10" in verdicts[0].claim
    assert verdicts_from(paper_b_claims.widths_small_mnist, widths_table(BAD, datasets=("vmnist",))) == [stats.FAILS]
    assert paper_b_claims.widths_small_mnist(widths_table(GOOD)) == []


def test_sweep_claims_gather_every_check():
    table = widths_table(GOOD, datasets=("gaussians", "vmnist"))
    verdicts = paper_b_claims.sweep_claims(table)
    assert len(verdicts) == 2 + 4 + 1 + 1 + 3 + 4
    assert stats.tests_in(verdicts) == len(verdicts) - 2   # the two phase-1 counts are not tests
    assert list(stats.verdict_table(verdicts).columns) == ["claim", "paper", "ours", "verdict", "test"]


def lengths_table(lengths: dict):
    return pd.DataFrame([{"dataset": "gaussians", "name": "Gaussians", "width": 10, "experiment": e, "seed": s,
                          "boundary length": length + 0.5 * s} for e, length in lengths.items() for s in (0, 1, 2)])


def test_boundary_claims():
    runs = widths_table(GOOD, phase1_capped=(0, 2))
    jagged = lengths_table({"Exp 1": 20.0, "Exp 2": 60.0, "Exp 3": 25.0, "Norm": 22.0})
    verdicts = paper_b_claims.boundary_claims(jagged, runs)
    assert [v.verdict for v in verdicts] == [stats.HOLDS, stats.HOLDS]
    assert "phase 1 fitted the random labels in 1 of 3 runs" in verdicts[0].ours
    smooth = lengths_table({"Exp 1": 40.0, "Exp 2": 20.0, "Exp 3": 30.0, "Norm": 22.0})
    assert [v.verdict for v in paper_b_claims.boundary_claims(smooth, runs)] == [stats.FAILS, stats.FAILS]


def executed(tmp_path, name: str, defaults: str, injected: dict | None) -> None:
    """A notebook as chapters.execute leaves it: the parameters cell, and papermill's record of what it injected."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(defaults, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("cfg = ...")]
    if injected is not None:
        nb.metadata["papermill"] = {"parameters": injected}
    nbformat.write(nb, tmp_path / f"{name}.ipynb")


def test_the_summary_rebuilds_the_configuration_a_chapter_ran_with(tmp_path):
    executed(tmp_path, "paper_a_training", 'scale = "cpu"\nseeds = None\nR = None\nlr = None',
             {"scale": "smoke", "seeds": [3, 4], "R": 2})
    parameters, cfg = summary.chapter_config("paper_a_training", tmp_path)
    assert parameters == {"scale": "smoke", "seeds": [3, 4], "R": 2, "lr": None}
    assert cfg == paper_a_protocol.config_for("smoke", seeds=(3, 4), R=2)
    executed(tmp_path, "paper_a_sketch", 'scale = "cpu"\nseeds = None', None)   # run without parameters
    assert summary.chapter_config("paper_a_sketch", tmp_path)[1] == sketch.config_for("cpu")
    executed(tmp_path, "paper_b_boundaries", 'scale = "cpu"\nfixed_draw = None', {"scale": "smoke", "fixed_draw": 3})
    assert summary.chapter_config("paper_b_boundaries", tmp_path)[1] == paper_b_protocol.config_for(
        "smoke", datasets=paper_b_protocol.BOUNDARY_DATASETS)
    with pytest.raises(FileNotFoundError, match="not executed"):
        summary.chapter_config("paper_b_widths", tmp_path)


def test_the_summary_says_what_each_chapter_lacks_and_trains_nothing(tmp_path):
    chapters, results = tmp_path / "chapters", tmp_path / "results"
    chapters.mkdir()
    executed(chapters, "paper_a_training", 'scale = "cpu"', {"scale": "smoke"})
    table, sources, absent = summary.gather(chapters, results)
    assert table.empty and sources.empty and set(absent) == set(summary.CHAPTERS)
    assert "runs are not in the store" in absent["paper_a_training"]
    assert "not executed" in absent["paper_a_sketch"]
    assert not results.exists() or not any(results.iterdir())
