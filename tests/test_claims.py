import pandas as pd

from badminima.core import stats
from badminima.paper_a import experiments as paper_a
from badminima.paper_a import claims as paper_a_claims
from badminima.paper_b import claims as paper_b_claims


def test_greater_holds_fails_and_is_inconclusive():
    assert stats.greater("c", "p", [5, 6, 7], [1, 2, 3], ("a", "b")).verdict == stats.HOLDS
    assert stats.greater("c", "p", [1, 2, 3], [5, 6, 7], ("a", "b")).verdict == stats.FAILS
    noisy = stats.greater("c", "p", [5, 1, 6], [1, 5, 2], ("a", "b"))
    assert noisy.verdict == stats.UNCLEAR and "s.e." in noisy.ours
    assert stats.greater("c", "p", [5, 6], [4, 5], ("a", "b"), min_gap=2).verdict == stats.FAILS
    assert stats.greater("c", "p", [2], [1], ("a", "b")).test.startswith("one seed")


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
    assert all(v.verdict == stats.HOLDS for v in paper_a_claims.sketch_verdicts(good))
    bad = sketch_table({1: 0.1, 2: 0.5, 3: 2.0, 4: 0.05}, {1: 90.0, 2: 50.0, 3: 99.0, 4: 99.0})
    verdicts = {v.claim: v.verdict for v in paper_a_claims.sketch_verdicts(bad)}
    assert list(verdicts.values()).count(stats.FAILS) == 4
    table = stats.verdict_table(paper_a_claims.sketch_verdicts(bad))
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


def widths_table(test: dict, steps: dict | None = None, phase1: float = 100.0, datasets=("gaussians",),
                 widths=(10, 100), cap: int = 1000):
    """A tidy table as badminima.paper_b.experiments.sweep writes it; test/steps map an experiment to its value at every
    width, plus a small per-seed wobble (None steps: the run hit the cap)."""
    rows = []
    for dataset in datasets:
        for width in widths:
            for experiment in ("Exp 1", "Exp 2", "Exp 3", "Norm"):
                for seed in (0, 1, 2):
                    step = (steps or {}).get(experiment, 100)
                    rows.append({"dataset": dataset, "name": dataset.title(), "width": width,
                                 "experiment": experiment, "seed": seed,
                                 "test acc %": test[experiment] + 0.1 * seed,
                                 "steps": None if step is None else step + seed, "hit cap": step is None, "cap": cap,
                                 "phase-1 acc %": float("nan") if experiment == "Exp 1" else phase1})
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


def test_widths_exp2_worse_at_each_width():
    table = widths_table(GOOD, widths=(10, 100, 500))
    assert verdicts_from(paper_b_claims.widths_exp2_worse, table) == [stats.HOLDS] * 3
    assert "p = 500" in paper_b_claims.widths_exp2_worse(table)[-1].claim
    assert verdicts_from(paper_b_claims.widths_exp2_worse, widths_table(BAD)) == [stats.FAILS] * 2


def test_widths_exp3_matches_on_gaussians_only():
    assert verdicts_from(paper_b_claims.widths_exp3_matches, widths_table(GOOD)) == [stats.HOLDS]
    assert verdicts_from(paper_b_claims.widths_exp3_matches, widths_table(BAD)) == [stats.FAILS]
    assert paper_b_claims.widths_exp3_matches(widths_table(GOOD, datasets=("spirals",))) == []


def test_widths_norm_between():
    assert verdicts_from(paper_b_claims.widths_norm_between, widths_table(GOOD)) == [stats.HOLDS, stats.HOLDS]
    assert verdicts_from(paper_b_claims.widths_norm_between, widths_table(BAD)) == [stats.FAILS, stats.HOLDS]


def test_widths_training_time_counts_capped_runs_at_the_cap():
    slow_adversarial = {"Exp 1": 50, "Exp 2": None, "Exp 3": 20}
    table = widths_table(GOOD, slow_adversarial, datasets=("gaussians", "spirals"))
    verdicts = paper_b_claims.widths_training_time(table)
    assert [v.verdict for v in verdicts] == [stats.HOLDS, stats.FAILS, stats.FAILS]
    assert "1e+03" in verdicts[0].ours, "the capped Exp 2 runs count at the cap"
    fast_adversarial = {"Exp 1": 500, "Exp 2": 40, "Exp 3": None}
    table = widths_table(GOOD, fast_adversarial, datasets=("gaussians", "spirals"))
    assert verdicts_from(paper_b_claims.widths_training_time, table) == [stats.FAILS, stats.HOLDS, stats.HOLDS]
    all_capped = widths_table(GOOD, {"Exp 1": None, "Exp 2": None, "Exp 3": None}, datasets=("spirals",))
    verdicts = paper_b_claims.widths_training_time(all_capped)
    assert [v.verdict for v in verdicts] == [stats.UNCLEAR] * 2 and "nothing to compare" in verdicts[0].test


def test_widths_small_mnist():
    table = widths_table({"Exp 1": 80.0, "Exp 2": 60.0, "Exp 3": 70.0, "Norm": 70.0}, datasets=("vmnist",))
    verdicts = paper_b_claims.widths_small_mnist(table)
    assert [v.verdict for v in verdicts] == [stats.HOLDS] and "p = 10" in verdicts[0].claim
    assert verdicts_from(paper_b_claims.widths_small_mnist, widths_table(BAD, datasets=("vmnist",))) == [stats.FAILS]
    assert paper_b_claims.widths_small_mnist(widths_table(GOOD)) == []


def test_widths_verdicts_gather_every_check():
    table = widths_table(GOOD, datasets=("gaussians", "vmnist"))
    verdicts = paper_b_claims.widths_verdicts(table)
    assert len(verdicts) == 2 + 4 + 1 + 1 + 3 + 4
    assert list(stats.verdict_table(verdicts).columns) == ["claim", "paper", "ours", "verdict", "test"]


def lengths_table(lengths: dict):
    return pd.DataFrame([{"dataset": "spirals", "name": "Spirals", "width": 500, "experiment": e, "seed": s,
                          "boundary length": length + 0.5 * s} for e, length in lengths.items() for s in (0, 1, 2)])


def test_boundary_verdicts():
    jagged = lengths_table({"Exp 1": 20.0, "Exp 2": 60.0, "Exp 3": 25.0, "Norm": 22.0})
    assert verdicts_from(paper_b_claims.boundary_verdicts, jagged) == [stats.HOLDS, stats.HOLDS]
    smooth = lengths_table({"Exp 1": 40.0, "Exp 2": 20.0, "Exp 3": 30.0, "Norm": 22.0})
    assert verdicts_from(paper_b_claims.boundary_verdicts, smooth) == [stats.FAILS, stats.FAILS]
