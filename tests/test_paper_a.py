"""Paper A's image grids and tables: sizes, shared runs, the paper's layouts, and reading without training."""

import dataclasses

import pandas as pd
import pytest

from badminima.paper_a import experiments as paper_a
from badminima.core import convnets, stats
from badminima.paper_a import claims as paper_a_claims
from badminima.paper_a import complexity, protocol, reported
from badminima.book import summary
from badminima.core.config import ParameterError
from badminima.core.metrics import TABLE1_COLUMNS, frobenius_norm, path_norm
from badminima.paper_a import runs as image_runs
from badminima.core.store import NotStored, ReadOnlyStore, Store

CFG = protocol.config_for("smoke", seeds=[0, 1], models=["resnet18", "vgg16"])


def runs_of(cells):
    return {run for _, run in cells}


def test_scales_and_overrides():
    cpu = protocol.config_for("cpu")
    assert len(cpu.seeds) >= 3 and cpu.dataset == "fashion_mnist"
    paper = protocol.config_for("paper")
    assert (paper.width, paper.per_class, paper.epochs, len(paper.seeds), paper.batch_size) == (1.0, None, 350, 5, 128)
    assert set(paper.models) == {"vgg16", "resnet18", "resnet50", "densenet40"} and protocol.matches_paper(paper)
    cinic = protocol.config_for("paper", dataset="cinic10")
    assert (cinic.epochs, cinic.l2, protocol.drops(cinic, cinic.epochs)) == (300, 1e-4, (150, 225))
    assert protocol.drops(paper, 350) == (150, 250) and not protocol.matches_paper(cpu)
    assert protocol.config_for("cpu", R=7, seeds=[3]).R == 7
    with pytest.raises(ParameterError, match="unknown parameter"):
        protocol.config_for("cpu", colour="red")
    with pytest.raises(ParameterError, match="models"):
        protocol.config_for("cpu", models=["alexnet"])


def test_densenet_runs_at_the_width_and_lr_its_pilot_fitted_and_the_chapter_quotes_it(monkeypatch):
    cpu = protocol.config_for("cpu")
    run = protocol.vanilla(cpu, "densenet40", 0, "random")
    assert (run.width, run.train.lr) == (0.5, 0.1)
    with_densenet = protocol.config_for("cpu", models=convnets.NAMES)
    assert "nor at width 0.25 with lr 0.1; at width 0.5 and lr 0.1 it fitted in 43 epochs" in protocol.pilots_text(
        with_densenet)
    assert "DenseNet-40" not in protocol.pilots_text(cpu) and "The lr drops" in protocol.pilots_text(cpu)
    # The setting follows the pilot's data: another fitted (width, lr) moves both the runs and the sentence.
    monkeypatch.setattr(protocol, "DENSENET_PILOT", {(0.25, 0.1): 50, (0.5, 0.1): 43})
    monkeypatch.setattr(protocol, "DENSENET_SETTING", (0.25, 0.1))
    assert "at width 0.25 and lr 0.1 it fitted in 50 epochs" in protocol.densenet_choice()


def test_the_cpu_book_leaves_out_what_its_budget_names_and_says_why_in_a_not_tested_row():
    cpu = protocol.config_for("cpu")
    assert "densenet40" not in cpu.models
    assert cpu.models == tuple(m for m in convnets.NAMES if m not in protocol.CPU_LEFT_OUT)
    why = protocol.left_out(cpu)["densenet40"]
    assert "2150 of the training chapter's 3250 core-seconds (66%)" in why and "-p models [" in why
    assert protocol.left_out(protocol.config_for("cpu", models=convnets.NAMES)) == {}
    assert protocol.left_out(protocol.config_for("paper")) == {}
    rows = paper_a_claims._left_out(cpu, "claims 1-4", "Figures 2-3 and Table 1")
    assert [(r.claim, r.verdict, r.test) for r in rows] == [("densenet40: claims 1-4", stats.UNTESTED,
                                                             "not tested: " + why)]


def test_phase_1_runs_each_model_at_the_r_and_cap_the_pilot_gives_it():
    cpu = protocol.config_for("cpu", models=convnets.NAMES)   # DenseNet-40's cpu setting, for -p models
    phase1 = {run.model: run.adversarial for labels, run in paper_a.main_grid(cpu) if labels["init"] == "adversarial"}
    # Twice the slowest pilot seed: ResNet50's 38 epochs for the models at R = 4, DenseNet-40's 65 at R = 1.
    assert {m: (a.replication, a.train.max_epochs) for m, a in phase1.items()} == {
        "vgg16": (4, 76), "resnet18": (4, 76), "resnet50": (4, 76), "densenet40": (1, 130)}
    assert {a.train.lr for a in phase1.values()} == {protocol.PHASE1_LR}
    assert "resnet50 at R = 4: 38, 35 epochs" in protocol.phase1_choice(cpu)
    # R or a phase-1 cap given holds for every model, DenseNet-40 included; the R sweep's R holds for its runs.
    given = protocol.config_for("cpu", R=2, phase1_epochs=5)
    dense = protocol.vanilla(given, "densenet40", 0, "adversarial").adversarial
    assert (dense.replication, dense.train.max_epochs) == (2, 5)
    assert protocol.vanilla(cpu, "densenet40", 0, "adversarial", R=3).adversarial.replication == 3
    for bad in (0, 1.5, True):
        with pytest.raises(ParameterError, match=r"per_model\['vgg16'\]\['R'\]"):
            protocol.config_for("cpu", per_model={"vgg16": {"R": bad}})
    with pytest.raises(ParameterError, match=r"per_model\['vgg16'\]\['phase1_epochs'\]=0"):
        protocol.config_for("cpu", per_model={"vgg16": {"phase1_epochs": 0}})


def test_a_model_departs_from_the_width_and_lr_only_where_per_model_says():
    cpu = protocol.config_for("cpu", models=convnets.NAMES)
    cells = paper_a.main_grid(cpu)
    widths = {run.model: run.width for _, run in cells}
    lrs = {run.model: run.train.lr for _, run in cells}
    dense = cpu.per_model["densenet40"]
    assert widths == {"vgg16": cpu.width, "resnet18": cpu.width, "resnet50": cpu.width, "densenet40": dense["width"]}
    assert lrs["densenet40"] == dense["lr"] != lrs["resnet18"] == cpu.lr
    assert "densenet40 at width 0.5, lr 0.1, R = 1, a phase-1 cap of 130" in protocol.describe(cpu)
    # A width (or lr) given by the user holds for every model; the other per-model value stays.
    narrow = protocol.config_for("cpu", width=0.25)
    assert protocol.model_width(narrow, "densenet40") == 0.25 and protocol.model_lr(narrow, "densenet40") == dense["lr"]
    assert protocol.config_for("cpu", per_model={}).per_model == {}
    with pytest.raises(ParameterError, match="per_model key='alexnet' is not allowed"):
        protocol.config_for("cpu", per_model={"alexnet": {"width": 1.0}})
    with pytest.raises(ParameterError, match=r"per_model\['vgg16'\]\['width'\]=0 is out of range"):
        protocol.config_for("cpu", per_model={"vgg16": {"width": 0}})
    with pytest.raises(ParameterError, match="per_model\\['vgg16'\\] key='depth'"):
        protocol.config_for("cpu", per_model={"vgg16": {"depth": 3}})


def test_main_grid_has_every_model_seed_init_and_recipe():
    cells = paper_a.main_grid(CFG)
    assert len(cells) == len(runs_of(cells)) == 2 * 2 * 2 * 2
    labels = pd.DataFrame([c[0] for c in cells])
    assert labels.groupby(["model", "seed", "init", "mode"]).size().eq(1).all()
    for labels, run in cells:
        assert (run.adversarial is not None) == (labels["init"] == "adversarial")
        sota = labels["mode"] == "SOTA"
        assert run.augment == sota and (run.train.momentum > 0) == sota and (run.train.weight_decay > 0) == sota
        # Vanilla trains to 100% training accuracy (or its cap), the SOTA recipe its fixed epochs.
        assert run.train.until_fit != sota
        assert run.train.max_epochs == (CFG.epochs if sota else CFG.vanilla_cap)


def test_only_vanilla_trains_to_a_fit_and_without_a_cap_it_runs_the_fixed_epochs():
    table2 = paper_a.table2_grid(CFG)
    for labels, run in table2:
        assert run.train.until_fit == (labels["mode"] == "Vanilla SGD")
        if labels["mode"] == paper_a.FIXED_VANILLA:   # the control: vanilla on the schedule of the other rows
            sota = next(r for lab, r in table2 if lab["mode"] == "DA+l2+Momentum (SOTA)")
            assert not (run.augment or run.train.weight_decay or run.train.momentum)
            assert (run.train.max_epochs, run.train.lr_drops) == (sota.train.max_epochs, sota.train.lr_drops)
    fixed = dataclasses.replace(CFG, vanilla_cap=None)   # as at the paper scale
    run = protocol.vanilla(fixed, "resnet18", 0, "random")
    assert not run.train.until_fit and run.train.max_epochs == fixed.epochs
    assert protocol.config_for("paper").vanilla_cap is None, "the paper trains vanilla for its schedule"
    with pytest.raises(ParameterError, match="vanilla_cap=0 is out of range"):
        protocol.config_for("cpu", vanilla_cap=0)


def test_epochs_the_recipe_would_not_train_are_refused_and_those_it_trains_are_honoured():
    cfg = protocol.config_for("smoke", epochs=20)
    with pytest.raises(ParameterError, match=r"^epochs=20 does not apply to the vanilla recipe, which trains until "
                                             r"100% training accuracy within its cap of 2 epochs"):
        protocol.image_run(cfg, "resnet18", 0, "random", "vanilla", epochs=20)
    assert protocol.image_run(cfg, "resnet18", 0, "random", "sota", epochs=20).train.max_epochs == 20
    with_l2 = protocol.image_run(cfg, "resnet18", 0, "random", "vanilla", l2=5e-4, epochs=20)
    assert with_l2.train.max_epochs == 20 and not with_l2.train.until_fit, "a heuristic makes it a fixed schedule"
    capped = protocol.image_run(cfg, "resnet18", 0, "random", "sota", until_fit=True, epochs=20)
    assert capped.train.until_fit and capped.train.max_epochs == 20, "--until-fit keeps the epochs as the cap"
    fixed = protocol.config_for("paper", epochs=20)   # no vanilla cap: vanilla trains the epochs
    assert protocol.image_run(fixed, "resnet18", 0, "random", "vanilla", epochs=20).train.max_epochs == 20


def test_other_grids_sizes_and_shared_runs():
    main = runs_of(paper_a.main_grid(CFG))
    r = paper_a.r_grid(CFG)
    assert len(r) == len(CFG.sweep_models) * 2 * 2 * (1 + len(CFG.R_sweep))
    sweep = paper_a.scale_grid(CFG)
    assert len(sweep) == 2 * 2 * (len(CFG.per_class_sweep) + len(CFG.lr_sweep))
    table2 = paper_a.table2_grid(CFG)
    assert len(table2) == len(runs_of(table2)) == (8 + 1) * 2 * 2, "8 combinations and the fixed-schedule control"
    assert len(paper_a.table2_grid(dataclasses.replace(CFG, vanilla_cap=None))) == 8 * 2 * 2, "no control needed"
    # runs with equal configurations are the same run: the defaults of each sweep are the main grid's runs
    assert {run for lab, run in r if lab["R"] in (0, CFG.R)} <= main
    assert {run for lab, run in sweep if lab["value"] in (CFG.per_class, CFG.lr)} <= main
    shared = {run for lab, run in table2 if lab["mode"] in ("Vanilla SGD", "DA+l2+Momentum (SOTA)")}
    assert len(shared) == 8 and shared <= main


def test_training_once_and_reading_without_training(tmp_path):
    cfg = protocol.config_for("smoke")
    store = Store(tmp_path)
    with pytest.raises(NotStored, match="4 of 4 runs"):
        paper_a.runs_table(paper_a.main_grid(cfg), ReadOnlyStore(tmp_path))
    runs = paper_a.runs_table(paper_a.main_grid(cfg), store)
    assert len(list((tmp_path / "adversarial").iterdir())) == len(cfg.seeds)   # phase 1 once per seed
    assert list(runs.columns) == ["model", "seed", "init", "mode", "train acc %", "test acc %", "epochs",
                                  "last-quarter change", "hit cap", "fitted", "diverged", "phase-1 acc %",
                                  "phase-1 fitted"]
    adversarial = runs["init"] == "adversarial"
    assert runs.loc[adversarial, "phase-1 fitted"].notna().all() and runs.loc[~adversarial, "phase-1 fitted"].isna().all()
    assert runs.loc[adversarial, "phase-1 acc %"].between(0, 100).all()
    assert runs.loc[~adversarial, "phase-1 acc %"].isna().all()
    assert not runs["diverged"].any() and (runs["fitted"] == (runs["train acc %"] >= 100)).all()
    again = paper_a.runs_table(paper_a.main_grid(cfg), ReadOnlyStore(tmp_path))
    pd.testing.assert_frame_equal(runs, again)
    phase1 = paper_a.phase1_table(cfg, ReadOnlyStore(tmp_path))
    assert list(phase1.columns) == ["model", "seed", "R", "epochs", "cap", "best acc on C %", "fitted", "diverged",
                                    "test acc %"]
    assert (phase1["fitted"] == (phase1["best acc on C %"] >= 99.99)).all() and not phase1["diverged"].any()
    assert (phase1["R"] == cfg.R).all() and (phase1["cap"] == cfg.phase1_epochs).all()
    firsts = runs[adversarial].drop_duplicates("seed").set_index("seed")["phase-1 fitted"]
    assert phase1.set_index("seed")["fitted"].equals(firsts.astype(bool)), "the runs table's phase-1 column"
    curves = paper_a.curves(paper_a.main_grid(cfg), store)
    # A run's curve has one row per epoch it trained: vanilla until a fit or its cap, SOTA its epochs.
    assert len(curves) == runs.epochs.sum() and curves["test acc %"].notna().all()
    assert (runs[runs["mode"] == "SOTA"].epochs == cfg.epochs).all()
    assert (runs[runs["mode"] == "vanilla"].epochs <= cfg.vanilla_cap).all()
    per_seed = paper_a.distances(cfg, ReadOnlyStore(tmp_path))
    assert list(paper_a.table1(per_seed).columns) == list(TABLE1_COLUMNS)
    measures = complexity.measures(cfg, store)
    assert len(measures) == 4 * len(cfg.fgsm_epsilons)
    # Each run's measures are those of its own stored network (not of another run, not of the init).
    for labels, run in paper_a.main_grid(cfg):
        model = image_runs.load_model(run, image_runs.run_image(run, store, progress=False).weights)
        row = measures[(measures[list(labels)] == pd.Series(labels)).all(axis=1)].iloc[0]
        assert row["frobenius"] == pytest.approx(frobenius_norm(model))
        assert row["path l2"] == pytest.approx(path_norm(model, (1, 28, 28), 2))


def test_table_layouts_follow_the_paper():
    per_seed = pd.DataFrame([{"model": m, "seed": s, **dict.fromkeys(TABLE1_COLUMNS, 0.5 + s)}
                             for m in ("vgg16", "resnet18") for s in (0, 1)])
    t1 = paper_a.table1(per_seed)
    assert list(t1.columns) == list(TABLE1_COLUMNS) and t1.loc["vgg16", "d(W0R, WVR)"] == 1.0
    assert list(paper_a.table1_paper("cifar10").loc["resnet18"]) == list(reported.TABLE1[("cifar10", "resnet18")])
    assert paper_a.table1_paper("fashion_mnist").empty
    rows = [{"mode": m, "init": i, "seed": s, "train acc %": 100.0, "test acc %": 80.0 + s}
            for m in paper_a.TABLE2_ROWS for i in ("random", "adversarial") for s in (0, 1)]
    t2 = paper_a.table2(pd.DataFrame(rows))
    assert list(t2.index) == list(paper_a.TABLE2_ROWS)
    assert t2.loc["Vanilla SGD", ("ours", "Random Init", "Test Acc")] == "80.500 ± 0.707"
    assert t2.loc["Vanilla SGD", ("paper (ResNet18, CIFAR-10)", "Adversarial Init", "Test Acc")] == "56.024 ± 0.883"


def test_gaps_subtract_the_adversarial_from_the_random_init():
    table = pd.DataFrame([{"model": "m", "seed": s, "init": i, "test acc %": 90.0 if i == "random" else 80.0 + s}
                          for s in (0, 1) for i in ("random", "adversarial")])
    assert paper_a.gaps(table, ["model"])["gap"].tolist() == [10.0, 9.0]
    r = pd.DataFrame([{"model": "m", "seed": 0, "mode": "vanilla", "R": R, "test acc %": 90.0 - R} for R in (0, 1, 4)])
    assert paper_a.r_gaps(r)["gap"].tolist() == [1.0, 4.0]


def test_reproduce_says_what_is_not_executed_and_trains_nothing(tmp_path):
    table, sources, absent = summary.gather(tmp_path / "chapters", tmp_path)
    assert table.empty and sources.empty and set(absent) == set(summary.CHAPTERS)
    assert not any(tmp_path.iterdir())


def test_gap_summary_reads_the_gaps_it_is_given():
    cfg = protocol.config_for("cpu")
    r_gaps = pd.DataFrame({"mode": ["vanilla"] * 4 + ["SOTA"], "R": [cfg.R, cfg.R, 1, 1, cfg.R],
                           "gap": [3.0, 5.0, 1.0, 1.0, 99.0]})
    sweep_gaps = pd.DataFrame({"sweep": ["per class", "per class", "lr"], "value": [5, 20, 0.1],
                               "gap": [2.5, 7.5, 4.0]})
    text = paper_a.gap_summary(cfg, r_gaps, sweep_gaps)
    assert f"(R = {cfg.R}, " in text and "gap is 4.00 ± 1.41 points" in text
    assert "Over R = 1, 4 it is 1.00, 4.00 points." in text and "Over 5.0, 20.0 images per class it is 2.50, 7.50" in text
    assert "learning rates" not in text, "one learning rate is no sweep"


def test_fit_lines_say_which_recipe_fitted_and_which_hit_its_cap():
    runs = pd.DataFrame({"mode": ["vanilla", "vanilla", "SOTA", "SOTA"], "train acc %": [100.0, 97.5, 80.0, 72.0],
                         "epochs": [12, CFG.vanilla_cap, CFG.epochs, CFG.epochs],
                         "last-quarter change": [5.0, 1.0, 0.5, -1.5]})
    text = paper_a.fit_lines(runs, CFG)
    assert "Vanilla reached 100% training accuracy in 1 of 2 runs, after 12 to 12 epochs" in text
    assert f"1 hit the cap of {CFG.vanilla_cap} epochs" in text
    assert "at 76.0% training accuracy on average (72.0% to 80.0%)" in text
    assert "changed by -0.5 points on average (-1.5 to +0.5), so it had plateaued; it had not fitted" in text
    runs.loc[3, "last-quarter change"] = 6.0
    assert "so it was still changing in some runs" in paper_a.fit_lines(runs, CFG)
    assert "diverged" not in text
    lost = paper_a.fit_lines(runs.assign(diverged=[False, True, False, False]), CFG)
    assert "in 1 of 2 runs" in lost and "hit the cap" not in lost, "the run short of 100% diverged, not capped"
    assert "1 run(s) diverged (non-finite loss) and count as not fitted." in lost


def test_table1_stands_beside_the_papers_rows_with_both_settings_stated():
    from badminima.core.metrics import TABLE1_COLUMNS
    per_seed = pd.DataFrame([{"model": m, "seed": s, **{c: 0.5 + s for c in TABLE1_COLUMNS}}
                             for m in ("resnet18", "vgg16") for s in (0, 1)])
    cpu = protocol.config_for("cpu")
    both, setting = paper_a.table1_beside_paper(per_seed, cpu)
    assert list(both.index) == ["resnet18", "vgg16"]
    first = both[TABLE1_COLUMNS[0]]
    assert list(first.columns) == ["ours (fashion_mnist)", "paper (cifar10)"]
    assert first.loc["resnet18"].tolist() == [1.0, 0.953], "our mean over seeds beside the paper's CIFAR-10 row"
    assert "The settings do not match" in setting and "`cifar10`, full width" in setting
    paper = protocol.config_for("paper")
    assert "The settings match." in paper_a.table1_beside_paper(per_seed, paper)[1]
    assert "The settings do not match" in paper_a.table2_setting(cpu)
    assert "The settings match." in paper_a.table2_setting(paper)


def test_the_headline_keeps_both_inits_of_the_seeds_whose_phase_1_met_the_rule():
    rows = []
    for model, fitted in (("vgg16", [True, False]), ("densenet40", [False, False])):
        for seed, ok in enumerate(fitted):
            for mode in ("vanilla", "SOTA"):
                rows += [{"model": model, "seed": seed, "init": "random", "mode": mode, "phase-1 fitted": None},
                         {"model": model, "seed": seed, "init": "adversarial", "mode": mode, "phase-1 fitted": ok}]
    kept, line = paper_a.phase1_met(pd.DataFrame(rows))
    assert set(zip(kept["model"], kept["seed"])) == {("vgg16", 0)} and len(kept) == 4
    assert line.endswith("random labels), vgg16 1 of 2; left out: densenet40 (0 of 2).")
    none, line = paper_a.phase1_met(pd.DataFrame(rows[8:]))
    assert none.empty and line.startswith("Nothing shown: no seed's phase 1") and "densenet40 (0 of 2)." in line


def test_gap_table_and_the_sweep_panels_summarise_the_per_seed_gaps():
    runs = pd.DataFrame([{"model": "m", "mode": mode, "seed": s, "init": init, "test acc %": acc}
                         for mode, base in (("vanilla", 80.0), ("SOTA", 90.0)) for s in (0, 1)
                         for init, acc in (("random", base + s), ("adversarial", base - 10 * (s + 1)))])
    table = paper_a.gap_table(runs, ["mode"])
    assert list(table.index) == ["SOTA", "vanilla"]   # sorted, as the chapters show it
    assert table.loc["vanilla", "mean"] == pytest.approx(15.5) and table.loc["SOTA", "std"] == pytest.approx(
        11 * 2 ** -0.5)
    sweep_gaps = pd.DataFrame({"sweep": ["lr", "lr", "per class"], "value": [0.1, 0.01, 5], "gap": [1.0, 2.0, 3.0]})
    panels = paper_a.sweep_panels(sweep_gaps)
    assert [(list(p["gap"]), label, logx) for p, label, logx in panels] == [
        ([3.0], "training images per class", False), ([1.0, 2.0], "phase-2 learning rate", True)]
    assert set(panels[0][0]["what"]) == {"vanilla gap"}
    assert paper_a.sweep_panels(sweep_gaps[sweep_gaps["sweep"] == "lr"])[0][1] == "phase-2 learning rate"


def test_norms_are_read_once_per_run_and_averaged_per_setting():
    table = pd.DataFrame([{"model": "m", "mode": "vanilla", "init": "random", "seed": s, "epsilon": e,
                           "frobenius": 1.0 + s, "path l1": 2.0, "path l2": 3.0, "fgsm acc %": 50.0 - e}
                          for s in (0, 1) for e in (0.0, 0.1)])
    norms = complexity.norms(table)
    assert list(norms["epsilon"]) == [0.0, 0.0] and list(norms["seed"]) == [0, 1]
    means = complexity.per_setting(norms, complexity.NORMS)
    assert means.loc[("m", "vanilla", "random")].tolist() == [1.5, 2.0, 3.0]


def test_the_cpu_defaults_sentence_quotes_the_protocol():
    cpu = protocol.config_for("cpu")
    line = paper_a.defaults_choice()
    assert f"on {cpu.per_class} images per class" in line and protocol.phase1_choice(cpu) in line
    assert f"over {cpu.per_class * 10} images" in line
