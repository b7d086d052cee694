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


# A small per-seed wobble, different for each side of a comparison, so that no test rests on identical
# differences (whose spread is zero up to the last bit).
JITTER = ((0.0, 0.2, -0.15), (0.1, -0.2, 0.05), (-0.1, 0.0, 0.25), (0.05, 0.15, -0.2))


def jitter(side: int, seed: int, scale: float = 1.0) -> float:
    return scale * JITTER[side % len(JITTER)][seed % 3]


def sketch_table(margins, tests, setting2_fits: bool = True):
    rows = []
    for setting in (1, 2, 3, 4):
        for seed in (0, 1, 2):
            fitted = setting != 2 or setting2_fits
            rows.append({"setting": setting, "seed": seed, "train acc %": 100.0 if fitted else 90.0,
                         "hit cap": not fitted, "margin": margins[setting] + jitter(setting, seed, 0.01),
                         "test acc %": tests[setting] + jitter(setting, seed)})
    return pd.DataFrame(rows)


def test_sketch_verdicts_follow_the_numbers():
    good = sketch_table({1: 2.0, 2: 0.01, 3: 0.1, 4: 1.5}, {1: 99.0, 2: 50.0, 3: 90.0, 4: 99.0})
    assert all(v.verdict == stats.HOLDS for v in paper_a_claims.figure1(good))
    bad = sketch_table({1: 0.1, 2: 0.5, 3: 2.0, 4: 0.05}, {1: 90.0, 2: 50.0, 3: 99.0, 4: 99.0})
    verdicts = {v.claim: v.verdict for v in paper_a_claims.figure1(bad)}
    assert list(verdicts.values()).count(stats.FAILS) == 4
    table = stats.verdict_table(paper_a_claims.figure1(bad))
    assert list(table.columns[:6]) == stats.COLUMNS


def test_sketch_claims_from_setting_2_are_not_tested_when_it_did_not_fit():
    unfitted = sketch_table({1: 2.0, 2: 0.01, 3: 0.1, 4: 1.5}, {1: 99.0, 2: 50.0, 3: 90.0, 4: 99.0},
                            setting2_fits=False)
    verdicts = {v.claim: v for v in paper_a_claims.figure1(unfitted)}
    assert [v.verdict for v in verdicts.values()].count(stats.UNTESTED) == 4   # setting 2's count and 3 from it
    from_setting2 = verdicts["Started at the setting-2 model, SGD ends at a small-margin model (setting 1 margin > "
                             "setting 3)"]
    assert "setting 2 fitted its random labels in 0 of 3 runs" in from_setting2.test


SEEDS = (0, 1, 2)


def main_runs(vanilla_adv: float, sota_adv: float, train: float = 100.0, fitted: tuple = SEEDS) -> pd.DataFrame:
    """Per-seed main-grid results: random init at 90 (vanilla) / 93 (SOTA), the adversarial init as given; phase 1
    fitted its random labels for the seeds in `fitted`."""
    test = {("random", "vanilla"): 90.0, ("random", "SOTA"): 93.0,
            ("adversarial", "vanilla"): vanilla_adv, ("adversarial", "SOTA"): sota_adv}
    return pd.DataFrame([{"model": "resnet18", "seed": s, "init": i, "mode": m, "train acc %": train,
                          "test acc %": t + jitter(k, s), "hit cap": train < 100,
                          "phase-1 fitted": s in fitted if i == "adversarial" else None}
                         for k, ((i, m), t) in enumerate(test.items()) for s in SEEDS])


def verdicts_of(found):
    return [v.verdict for v in found]


def test_paper_a_claims_1_to_3():
    good, bad = main_runs(60.0, 93.0), main_runs(94.0, 85.0, train=99.0)
    assert verdicts_of(paper_a_claims.claim1_fit(good)) == [stats.HOLDS]
    assert verdicts_of(paper_a_claims.claim2_drop(good)) == [stats.HOLDS]
    assert verdicts_of(paper_a_claims.claim2_drop(bad)) == [stats.FAILS]
    assert verdicts_of(paper_a_claims.claim3_sota(good)) == [stats.HOLDS]
    assert verdicts_of(paper_a_claims.claim3_sota(bad)) == [stats.FAILS]


def test_paper_a_claim_1_is_not_tested_when_runs_hit_their_cap():
    verdict = paper_a_claims.claim1_fit(main_runs(60.0, 93.0, train=99.0))[0]
    assert verdict.verdict == stats.UNTESTED and "6 of 6 runs hit their cap" in verdict.test


def test_paper_a_diverged_runs_count_as_not_fitted_and_their_seeds_leave_the_comparisons():
    runs = main_runs(60.0, 93.0).assign(diverged=False)
    lost = (runs["seed"] == 1) & (runs["init"] == "adversarial") & (runs["mode"] == "vanilla")
    runs.loc[lost, ["train acc %", "diverged"]] = [10.0, True]
    fit = paper_a_claims.claim1_fit(runs)[0]
    assert fit.verdict == stats.FAILS and "1 diverged (non-finite loss), counted as not fitted" in fit.ours
    drop = paper_a_claims.claim2_drop(runs)[0]
    assert drop.n == 2 and "no compared run diverged (non-finite loss) in 2 of 3 runs" in drop.ours
    sota = paper_a_claims.claim3_sota(runs)[0]
    assert sota.n == 3 and "diverged" not in sota.ours, "SOTA's runs all finished: its comparison keeps every seed"


def test_a_drop_smaller_than_the_smallest_that_counts_does_not_hold():
    # a clear drop of 2 points, far below a quarter of Table 2's 28.8
    verdict = paper_a_claims.claim2_drop(main_runs(88.0, 93.0))[0]
    assert verdict.verdict == stats.FAILS and verdict.high < paper_a_claims.DROP.value and verdict.low > 0
    assert verdict.paper_effect == pytest.approx(28.814)


def test_paper_a_claims_need_a_phase_1_that_fitted():
    one_fitted = main_runs(60.0, 93.0, fitted=(1,))
    for verdict in paper_a_claims.claim2_drop(one_fitted) + paper_a_claims.claim3_sota(one_fitted):
        assert verdict.verdict == stats.UNTESTED and "fitted its randomly labelled set in 1 of 3 runs" in verdict.test
    two_fitted = paper_a_claims.claim2_drop(main_runs(60.0, 93.0, fitted=(0, 2)))[0]
    assert two_fitted.verdict != stats.UNTESTED and two_fitted.n == 2


def distances(vanilla_adv: float, sota_adv: float) -> pd.DataFrame:
    return pd.DataFrame([{"model": "vgg16", "seed": s, "d(W0R, WVR)": 0.9 + jitter(0, s, 0.01),
                          "d(W0A, WVA)": vanilla_adv + jitter(1, s, 0.01), "d(W0A, WSA)": sota_adv + jitter(2, s, 0.1)}
                         for s in SEEDS])


def test_paper_a_claim_4():
    assert verdicts_of(paper_a_claims.claim4_distance(distances(0.2, 30.0))) == [stats.HOLDS] * 2
    assert verdicts_of(paper_a_claims.claim4_distance(distances(1.5, 1.0))) == [stats.FAILS] * 2


def table2_runs(adversarial: dict[str, float], control: bool = False) -> pd.DataFrame:
    rows = []
    for k, mode in enumerate([*paper_a.TABLE2_ROWS, *[paper_a.FIXED_VANILLA] * control]):
        for s in SEEDS:
            rows.append({"mode": mode, "init": "random", "seed": s, "test acc %": 90.0 + jitter(k, s, 0.2),
                         "phase-1 fitted": None})
            rows.append({"mode": mode, "init": "adversarial", "seed": s, "phase-1 fitted": True,
                         "test acc %": adversarial.get(mode, 90.0) + jitter(k + 1, s, 0.2)})
    return pd.DataFrame(rows)


def test_paper_a_claim_5():
    paper_like = table2_runs({"Vanilla SGD": 60.0, "DA": 86.0, "l2": 85.0, "Momentum": 88.0})
    assert verdicts_of(paper_a_claims.claim5_heuristics(paper_like)) == [stats.HOLDS] * 6
    failing = table2_runs({"Vanilla SGD": 60.0, "DA": 65.0, "l2": 62.0, "Momentum": 61.0, "DA+l2": 80.0,
                           "DA+Momentum": 82.0, "l2+Momentum": 70.0})
    assert verdicts_of(paper_a_claims.claim5_heuristics(failing)) == [stats.FAILS] * 6


def test_paper_a_claim_5_measures_the_gap_on_the_fixed_schedule_where_there_is_the_control():
    # Vanilla until a fit shows a gap that vanilla on the heuristics' schedule does not: nothing to recover.
    runs = table2_runs({"Vanilla SGD": 60.0, "DA": 86.0, "l2": 85.0, "Momentum": 88.0}, control=True)
    verdicts = paper_a_claims.claim5_heuristics(runs)
    assert verdicts_of(verdicts)[:3] == [stats.UNTESTED] * 3 and f"the gap of {paper_a.FIXED_VANILLA}" in \
        verdicts[0].test
    with_gap = table2_runs({"Vanilla SGD": 60.0, paper_a.FIXED_VANILLA: 60.0, "DA": 86.0, "l2": 85.0,
                            "Momentum": 88.0}, control=True)
    assert verdicts_of(paper_a_claims.claim5_heuristics(with_gap)) == [stats.HOLDS] * 6


def test_paper_a_claim_5_is_not_tested_without_a_gap_to_recover():
    no_gap = paper_a_claims.claim5_heuristics(table2_runs({"Vanilla SGD": 90.0, "DA": 80.0}))
    assert verdicts_of(no_gap)[:3] == [stats.UNTESTED] * 3 and "no gap to recover: the gap of Vanilla SGD" in no_gap[0].test


def measures(adv_norm: float, adv_fgsm: float) -> pd.DataFrame:
    rows = []
    for s in SEEDS:
        for side, (init, norm, fgsm) in enumerate((("random", 10.0, 60.0), ("adversarial", adv_norm, adv_fgsm))):
            for eps, drop in ((0.0, 0.0), (0.05, 20.0)):
                rows.append({"model": "resnet18", "seed": s, "init": init, "mode": "vanilla", "epsilon": eps,
                             "frobenius": norm + jitter(side, s), "path l1": 1e40 * norm * (1 + jitter(side, s, 0.05)),
                             "path l2": norm / 2 + jitter(side + 2, s), "fgsm acc %": fgsm - drop + jitter(side, s)})
    return pd.DataFrame(rows)


def test_paper_a_claim_6():
    assert verdicts_of(paper_a_claims.claim6_complexity(measures(15.0, 40.0))) == [stats.HOLDS] * 5
    assert verdicts_of(paper_a_claims.claim6_complexity(measures(6.0, 70.0))) == [stats.FAILS] * 5


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
    assert "fitted drop 12.8" in verdicts[0].ours   # 3 to 3.4 points per unit of R over R = 0..4, averaged


def test_figure4_does_not_hold_for_rising_vanilla_or_degrading_SOTA():
    rising, flat, degrading = (lambda s: 1.0 + 0.2 * s), (lambda s: 0.02 * (s - 1)), (lambda s: -3.0 - 0.2 * s)
    assert verdicts_of(paper_a_claims.figure4(r_table(rising, flat))) == [stats.FAILS, stats.HOLDS]
    assert verdicts_of(paper_a_claims.figure4(r_table(degrading, degrading))) == [stats.HOLDS, stats.FAILS]
    # flat: neither a fall nor a significant rise, so it cannot be decided
    assert verdicts_of(paper_a_claims.figure4(r_table(flat, flat)))[0] == stats.UNCLEAR


def widths_table(test: dict, steps: dict | None = None, phase1: float = 100.0, datasets=("gaussians",),
                 widths=(10, 100), cap: int = 1000, seeds=(0, 1, 2), phase1_capped=()):
    """A tidy table as badminima.paper_b.experiments.sweep writes it; test/steps map an experiment to its value at every
    width, plus a small per-seed wobble (None steps: the run hit the cap); phase 1 hit its cap for phase1_capped."""
    rows = []
    for dataset in datasets:
        for width in widths:
            for k, experiment in enumerate(("Exp 1", "Exp 2", "Exp 3", "Norm")):
                for seed in seeds:
                    step = (steps or {}).get(experiment, 100)
                    capped = experiment != "Exp 1" and seed in phase1_capped
                    rows.append({"dataset": dataset, "name": dataset.title(), "width": width,
                                 "experiment": experiment, "seed": seed,
                                 "test acc %": test[experiment] + jitter(k, seed, 0.3),
                                 "steps": None if step is None else step + seed, "hit cap": step is None, "cap": cap,
                                 "phase-1 acc %": float("nan") if experiment == "Exp 1" else
                                 phase1 if not capped else 71.0,
                                 "phase-1 hit cap": capped})
    table = pd.DataFrame(rows)
    table["steps"] = table["steps"].astype("Int64")
    return table


GOOD = {"Exp 1": 95.0, "Exp 2": 80.0, "Exp 3": 95.2, "Norm": 88.0}
BAD = {"Exp 1": 80.0, "Exp 2": 95.0, "Exp 3": 60.0, "Norm": 99.0}


def verdicts_from(fn, table):
    return [v.verdict for v in fn(table)]


def test_widths_phase1_fits():
    assert verdicts_from(paper_b_claims.widths_phase1_fits, widths_table(GOOD)) == [stats.HOLDS]
    capped = paper_b_claims.widths_phase1_fits(widths_table(GOOD, phase1_capped=(0, 1, 2)))
    assert [v.verdict for v in capped] == [stats.UNTESTED] and "0 of 6" in capped[0].ours
    assert "6 of 6 runs hit their cap" in capped[0].test


def test_widths_exp2_worse_at_each_width_is_one_family():
    table = widths_table(GOOD, widths=(10, 100, 500), phase1_capped=(1,))
    verdicts = paper_b_claims.widths_exp2_worse(table)
    assert [v.verdict for v in verdicts] == [stats.HOLDS] * 3
    assert "p = 500" in verdicts[-1].claim and verdicts[0].family == 3 and verdicts[0].n == 2
    assert "phase 1 fitted the random labels and Exp 1 and Exp 2 reached zero training error in 2 of 3 runs" in \
        verdicts[0].ours
    assert verdicts_from(paper_b_claims.widths_exp2_worse, widths_table(BAD)) == [stats.FAILS] * 2


def test_paper_b_diverged_runs_leave_their_seeds_out_of_the_comparisons_and_say_so():
    table = widths_table(GOOD, widths=(10,)).assign(diverged=False, **{"phase-1 diverged": False})
    table.loc[(table["experiment"] == "Exp 2") & (table["seed"] == 2), "diverged"] = True
    verdict = paper_b_claims.widths_exp2_worse(table)[0]
    assert verdict.n == 2
    assert "no compared run diverged (non-finite loss) in 2 of 3 runs" in verdict.ours
    quiet = paper_b_claims.widths_exp2_worse(widths_table(GOOD, widths=(10,)).assign(diverged=False))[0]
    assert quiet.n == 3 and "diverged" not in quiet.ours


def test_claims_on_phase_1_are_not_tested_when_it_never_fitted():
    table = widths_table(GOOD, phase1_capped=(0, 1, 2))
    verdicts = paper_b_claims.widths_exp2_worse(table) + paper_b_claims.widths_norm_between(table)
    assert verdicts_of(verdicts) == [stats.UNTESTED] * 4
    assert "in 0 of 3 runs" in verdicts[0].test and "in 0 of 6 runs" in verdicts[2].test


def test_widths_exp3_matches_on_gaussians_only():
    assert verdicts_from(paper_b_claims.widths_exp3_matches, widths_table(GOOD)) == [stats.HOLDS]
    assert verdicts_from(paper_b_claims.widths_exp3_matches, widths_table(BAD)) == [stats.FAILS]
    assert paper_b_claims.widths_exp3_matches(widths_table(GOOD, datasets=("spirals",))) == []


def test_widths_norm_between():
    verdicts = paper_b_claims.widths_norm_between(widths_table(GOOD))
    assert verdicts_of(verdicts) == [stats.HOLDS, stats.HOLDS] and "one value per seed" in verdicts[0].test
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
    assert [v.verdict for v in verdicts] == [stats.UNTESTED] * 2
    assert "undecided (both at the cap) in 6" in verdicts[0].ours


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
    assert list(stats.verdict_table(verdicts).columns[:6]) == stats.COLUMNS


def lengths_table(lengths: dict):
    return pd.DataFrame([{"dataset": "gaussians", "name": "Gaussians", "width": 10, "experiment": e, "seed": s,
                          "boundary length": length + jitter(k, s, 5.0)}
                         for k, (e, length) in enumerate(lengths.items()) for s in (0, 1, 2)])


def test_boundary_claims():
    jagged = lengths_table({"Exp 1": 20.0, "Exp 2": 60.0, "Exp 3": 25.0, "Norm": 22.0})
    verdicts = paper_b_claims.boundary_claims(jagged, widths_table(GOOD))
    assert [v.verdict for v in verdicts] == [stats.HOLDS, stats.HOLDS]
    smooth = lengths_table({"Exp 1": 40.0, "Exp 2": 20.0, "Exp 3": 30.0, "Norm": 22.0})
    assert [v.verdict for v in paper_b_claims.boundary_claims(smooth, widths_table(GOOD))] == [stats.FAILS] * 2
    unfitted = paper_b_claims.boundary_claims(jagged, widths_table(GOOD, phase1_capped=(0, 2)))
    assert [v.verdict for v in unfitted] == [stats.UNTESTED] * 2 and "in 1 of 3 runs" in unfitted[0].test


def executed(tmp_path, name: str, defaults: str, injected: dict | None) -> None:
    """A notebook as chapters.execute leaves it: the parameters cell, and papermill's record of what it injected."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(defaults, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("cfg = ...")]
    if injected is not None:
        nb.metadata["papermill"] = {"parameters": injected}
    nbformat.write(nb, tmp_path / f"{name}.ipynb")


def test_the_summary_rebuilds_the_configuration_a_chapter_ran_with(tmp_path):
    cell = 'scale = "cpu"\noverrides = {}\nexecutor = "local"'
    executed(tmp_path, "paper_a_training", cell, {"scale": "smoke", "overrides": {"seeds": [3, 4], "R": 2}})
    parameters, cfg = summary.chapter_config("paper_a_training", tmp_path)
    assert parameters == {"scale": "smoke", "overrides": {"seeds": [3, 4], "R": 2}, "executor": "local"}
    assert cfg == paper_a_protocol.config_for("smoke", seeds=(3, 4), R=2)
    executed(tmp_path, "paper_a_sketch", cell, None)   # run without parameters
    assert summary.chapter_config("paper_a_sketch", tmp_path)[1] == sketch.config_for("cpu")
    executed(tmp_path, "paper_b_boundaries", cell, {"scale": "smoke", "overrides": {"fixed_draw": 3}})
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
