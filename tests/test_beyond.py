"""The chapter beyond both papers: its summaries on tables with known answers, and its measurements on the smoke
runs (stored once, never retrained)."""
import math
import shutil

import numpy as np
import pandas as pd
import pytest

from badminima.beyond import minima
from badminima.beyond import protocol as beyond
from badminima.core import grid, stats
from badminima.core.config import ParameterError
from badminima.core.store import Store


def test_the_path_summary_finds_the_barrier_and_where_test_accuracy_falls():
    alpha = np.linspace(0, 1, 5)
    paths = pd.DataFrame({"alpha": alpha, "train loss": [0.1, 0.5, 0.9, 0.4, 0.2],
                          "train acc %": [100, 80, 40, 90, 100], "test acc %": [60, 58, 45, 41, 40],
                          "model": "m", "mode": "vanilla", "seed": 0})
    row = minima.path_summary(paths).iloc[0]
    assert row["barrier"] == pytest.approx(0.7) and row["lowest train acc %"] == 40
    assert (row["test acc % at 0"], row["test acc % at 1"], row["half-way alpha"]) == (60, 40, 0.5)


def test_flip_medians_count_images_that_never_flip():
    flips = pd.DataFrame({"model": "m", "seed": 0, "init": "random", "mode": "vanilla", "attack": "PGD",
                          "image": range(4), "epsilon": [0.01, 0.03, math.inf, math.inf]})
    row = minima.flip_medians(flips).iloc[0]
    assert row["median epsilon"] == math.inf and row["flipped %"] == 50


def test_layer_thirds_average_by_depth():
    layers = pd.DataFrame({"model": "m", "seed": 0, "init": "random", "mode": "vanilla", "depth": range(6),
                           "distance": [1.0, 3.0, 5.0, 5.0, 10.0, 20.0]})
    row = minima.layer_thirds(layers).iloc[0]
    assert (row["first third"], row["middle third"], row["last third"]) == (2.0, 5.0, 15.0)


def test_findings_compare_paired_seeds_and_say_how_sure():
    rows = []
    for seed in range(5):
        for init, top in (("random", 1.0 + 0.01 * seed), ("adversarial", 3.0 + 0.02 * seed)):
            rows.append({"model": "m", "mode": "vanilla", "seed": seed, "init": init, "top eigenvalue": top,
                         "trace": top})
    sharp = pd.DataFrame(rows)
    table = minima.compare(sharp, ["model", "mode"], "top eigenvalue", "init", "random", "adversarial")
    assert table.iloc[0]["higher"] == 5 and table.iloc[0]["ratio"] == pytest.approx(3.04 / 1.02)
    alpha = np.linspace(0, 1, 3)
    paths = pd.concat([pd.DataFrame({"alpha": alpha, "train loss": [0.1, 1 + 0.1 * s, 0.1], "train acc %": 100,
                                     "test acc %": [60, 50, 40], "model": "m", "mode": "vanilla", "seed": s})
                       for s in range(1, 4)])
    flips = pd.DataFrame([{"model": "m", "seed": s, "init": i, "mode": "vanilla", "attack": "PGD", "image": 0,
                           "epsilon": e + 0.001 * s} for s in range(3) for i, e in (("random", 0.05), ("adversarial", 0.01))])
    found = minima.image_findings(sharp, flips, paths, eps_max=0.1)
    assert [v.verdict for vs in found.values() for v in vs] == [stats.HOLDS] * 4
    sentence = minima.suggests(found["the adversarial-init minimum is sharper (top eigenvalue)"], "sharper")
    assert sentence == "*sharper*: supported in 1 of 1 (m, vanilla)."
    reversed_ = minima.image_findings(sharp.assign(init=sharp["init"].map({"random": "adversarial",
                                                                          "adversarial": "random"})),
                                      flips, paths, eps_max=0.1)
    assert reversed_["the adversarial-init minimum is sharper (top eigenvalue)"][0].verdict == stats.FAILS


def test_a_bad_setting_is_one_line():
    with pytest.raises(ParameterError, match="datasets='vmnist' is not allowed"):
        beyond.config_for("cpu", datasets=["vmnist"])
    with pytest.raises(ParameterError, match="path_points=1 is out of range"):
        beyond.config_for("cpu", path_points=1)


def test_the_measurements_read_the_stored_runs_and_are_stored_once(tmp_path, monkeypatch):
    store, cfg = Store(tmp_path / "alone"), beyond.config_for("smoke")
    image = minima.image_measures(cfg, store)
    paths = minima.image_paths(cfg, store)
    nets = minima.net_measures(cfg, store)
    assert len(image["sharpness"]) == 4 and (image["sharpness"]["top eigenvalue"] > 0).all()
    assert set(image["flips"]["attack"]) == {"FGSM", "PGD"} and len(image["flips"]) == 4 * 2 * cfg.margin_size
    assert len(paths) == 2 * cfg.path_points and paths["alpha"].tolist()[:3] == [0.0, 0.5, 1.0]
    assert set(nets["experiment"]) == {"Exp 1", "Exp 2"} and set(nets["seed"]) == set(cfg.net_seeds)
    assert (nets["first layer"] > 0).all() and (nets["distance min"] <= nets["distance median"]).all()
    # a second reading loads every measurement: nothing is measured, nothing trained
    from badminima.core import landscape
    from badminima.core.journal import JOURNAL
    monkeypatch.setattr(landscape, "top_eigenvalue", lambda *a, **k: pytest.fail("measured again"))
    monkeypatch.setattr(landscape, "between", lambda *a, **k: pytest.fail("measured again"))
    monkeypatch.setenv(JOURNAL, str(tmp_path / "journal"))
    again = minima.image_measures(cfg, store)
    pd.testing.assert_frame_equal(again["sharpness"], image["sharpness"])
    pd.testing.assert_frame_equal(minima.image_paths(cfg, store), paths)
    pd.testing.assert_frame_equal(minima.net_measures(cfg, store), nets)
    events = (tmp_path / "journal").read_text().split("\n")
    assert events[0].startswith("loaded") and not [e for e in events if e.startswith("trained")]
    # The chapter computes them as jobs over processes (measure_jobs): the same numbers, nothing left to the kernel.
    pooled = Store(tmp_path / "pooled")
    for kind in ("image", "adversarial", "widths"):   # the runs measured, so that only the measures are computed
        shutil.copytree(tmp_path / "alone" / kind, tmp_path / "pooled" / kind)
    shutil.copy(tmp_path / "alone" / ".badminima-store", tmp_path / "pooled")
    grid.run(minima.measure_jobs(cfg), pooled, workers=2)
    pooled_image = minima.image_measures(cfg, pooled)
    for kind, table in image.items():
        pd.testing.assert_frame_equal(pooled_image[kind], table, check_exact=True)
    pd.testing.assert_frame_equal(minima.image_paths(cfg, pooled), paths, check_exact=True)
    pd.testing.assert_frame_equal(minima.net_measures(cfg, pooled), nets, check_exact=True)


def test_paper_bs_identity_repair_is_exp_2_and_a_shrink_is_not(tmp_path):
    from badminima.paper_b import datasets as paper_b_datasets
    from badminima.paper_b import runs as paper_b_runs
    from badminima.paper_b import protocol as paper_b_protocol
    from badminima.core.repairs import Repair

    store = Store(tmp_path)
    problem = paper_b_datasets.problem_of(paper_b_protocol.config_for("smoke", datasets=["circles"]), "circles")
    k = len(problem.seeds)
    exp2 = paper_b_runs.run_problem(problem, 4, store)["retrain"].metrics
    same = paper_b_runs.run_repaired(problem, 4, Repair(), store).metrics
    assert same["test_acc"] == exp2["test_acc"][:k] and same["fit_step"] == exp2["fit_step"][:k]
    shrunk = paper_b_runs.run_repaired(problem, 4, Repair(shrink=0.3, perturb=0.1), store).metrics
    assert shrunk["init_norm"] != exp2["init_norm"][:k]


def test_repair_findings_compare_with_both_inits_paired_over_seeds():
    from badminima.beyond import repairs

    rows, noise = [], [1.0, -1.0, 1.0, -1.0, 1.0, -0.9]
    for seed in range(6):
        for start, acc in ((repairs.RANDOM, 60.0), (repairs.ADVERSARIAL, 45.0), ("good", 59.5),
                           ("useless", 45.0 + noise[seed]), ("warm", 63.0), (repairs.CONTROL, 63.5)):
            rows.append({"model": "m", "seed": seed, "start": start, "test acc %": acc + 0.3 * (seed % 3),
                         "fitted": True, "cost": 10})
    found = repairs.findings(pd.DataFrame(rows), "model", tolerance=2.0, warm="warm")
    assert [v.verdict for v in found["a random init gains from the warm-up too"]] == [stats.HOLDS]
    assert [v.verdict for v in found["the warm-up repair ends where its control ends"]] == [stats.HOLDS]
    beats = {v.claim: v.verdict for v in found["the repair beats the adversarial init"] if "warm" not in v.claim}
    recovers = {v.claim: v.verdict for v in found["the repair recovers the random init"]}
    assert not any(repairs.CONTROL in claim for claim in beats | recovers), "the control is not a repair"
    assert beats == {"m, good: beats the adversarial init": stats.HOLDS,
                     "m, useless: beats the adversarial init": stats.UNCLEAR}
    assert recovers["m, good: recovers the random init's test accuracy (within 2 points)"] == stats.HOLDS
    assert recovers["m, useless: recovers the random init's test accuracy (within 2 points)"] == stats.FAILS
    table = repairs.summary(pd.DataFrame(rows), "model", "cost")
    assert table.loc[("m", "good"), "fitted"] == "6 of 6"


def test_the_chapter_says_how_far_each_finding_is_supported_and_what_the_papers_did():
    verdict = stats.Verdict("circles, 10: Exp 2's minimum sharper", minima.NOT_CLAIMED, "", stats.HOLDS, "")
    m = minima.Measured(beyond.config_for("smoke"), {}, pd.DataFrame(), pd.DataFrame(),
                        {"Exp 2's minimum is sharper": [verdict]})
    assert m.says("Exp 2's minimum is sharper") == ("*Exp 2's minimum is sharper than Exp 1's*: supported in 1 of 1 "
                                                    "(circles, 10). Neither paper measures it.")
    assert m.verdicts() == [verdict]


def test_the_configurations_hold_the_protocols_of_the_runs_they_read_at_their_scale():
    import dataclasses

    from badminima.paper_a import protocol as paper_a_protocol
    from badminima.paper_b import protocol as paper_b_protocol

    for cfg in (beyond.config_for("smoke"), beyond.repairs_config_for("cpu", models=["resnet18"])):
        assert cfg.paper_a == paper_a_protocol.config_for(cfg.scale, models=cfg.models, seeds=cfg.seeds)
        assert cfg.paper_b == paper_b_protocol.config_for(cfg.scale, datasets=cfg.datasets)
    changed = dataclasses.replace(beyond.config_for("smoke"), seeds=(1,))
    assert changed.paper_a.seeds == (1,), "a replaced field resolves the protocols again"
    assert set(beyond.NET_DATASETS) <= set(paper_b_protocol.config_for("cpu").datasets), "the widths chapter's runs"
    with pytest.raises(ParameterError, match="tolerance=0 is out of range"):
        beyond.repairs_config_for("cpu", tolerance=0)


def test_the_repairs_chapter_says_each_finding_with_its_tolerance_and_the_settings_names():
    from badminima.beyond import repairs

    verdict = stats.Verdict("circles, reset readout: recovers", minima.NOT_CLAIMED, "", stats.HOLDS, "")
    r = repairs.Repaired(beyond.repairs_config_for("smoke"), pd.DataFrame(), pd.DataFrame(),
                         {"the repair beats the adversarial init": [verdict]},
                         {"the repair recovers the random init": [verdict]})
    assert r.image_says() == ("*The repair beats the adversarial init's test accuracy*: supported in 1 of 1 (circles, "
                              "reset readout).")
    assert r.net_says() == ("*The repair recovers Exp 1's test accuracy (within 1 point)*: supported in 1 of 1 "
                            "(circles, reset readout).")
    assert r.verdicts() == [verdict, verdict]
    assert r.setting() == "Scale `smoke`: Paper A's resnet18 at seeds [0]; Paper B's circles at width 4."
