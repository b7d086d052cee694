import dataclasses
import math

import pandas as pd
import pytest
import torch

from badminima.paper_b import boundaries, datasets, experiments, protocol, runs
from badminima.core import fastmlp
from badminima.core.config import ParameterError
from badminima.core.data.toy import draw
from badminima.core.metrics import boundary_length
from badminima.core.models import MLP, member_params
from badminima.core.plots import extent_of
from badminima.core.store import Store
from badminima.core.train import TrainConfig, train

CPU = torch.device("cpu")


def tiny(**overrides) -> protocol.WidthsConfig:
    return protocol.config_for("smoke", **{"datasets": ("gaussians",), "widths": (6,), "max_steps": 40,
                                           "n_test": 50, **overrides})


def test_exp3_freezes_the_first_layer_and_starts_from_a_zero_readout(tmp_path):
    cfg = tiny()
    groups = runs.run_width(cfg, "gaussians", 6, Store(tmp_path))
    k = len(cfg.seeds)
    start, readout = groups["start"].weights, groups["readout"].weights
    for name in ("weights.0", "biases.0"):
        assert torch.equal(readout[name], start[name][k:]), "Exp 3 keeps phase 1's first layer"
    first_layer_norm = torch.cat([start["weights.0"][k:].flatten(1), start["biases.0"][k:].flatten(1)], 1).norm(dim=1)
    assert groups["readout"].metrics["init_norm"] == pytest.approx(first_layer_norm.tolist(), rel=1e-6), \
        "the readout started at zero: the whole init norm is the first layer's"
    assert not torch.equal(readout["weights.1"], torch.zeros_like(readout["weights.1"])), "the readout trained"


def test_the_norm_matched_init_has_the_adversarial_norm_and_a_random_direction(tmp_path):
    cfg = tiny()
    groups = runs.run_width(cfg, "gaussians", 6, Store(tmp_path))
    k = len(cfg.seeds)
    start_norm = groups["retrain"].metrics["init_norm"]
    adversarial = torch.cat([v[k:].flatten(1) for v in groups["start"].weights.values()], 1).norm(dim=1)
    assert start_norm[:k] == pytest.approx(adversarial.tolist(), rel=1e-6), "Exp 2 starts at the phase-1 weights"
    assert start_norm[k:] == pytest.approx(adversarial.tolist(), rel=1e-5), "Norm starts at the same norm"
    table = experiments.width_table(cfg, "gaussians", 6, Store(tmp_path))
    norm_rows = table[table.experiment == "Norm"]
    random_init = member_params(MLP((2, 6, 1), cfg.seeds)).norm(dim=1)
    assert not torch.allclose(random_init, torch.tensor(norm_rows["init norm"].tolist())), "it was rescaled"


def test_runs_that_hit_the_cap_are_kept_and_counted(tmp_path):
    cfg = tiny(max_steps=2, widths=(4, 6))
    table = experiments.sweep(cfg, Store(tmp_path))
    assert len(table) == 2 * 4 * len(cfg.seeds), "every width, experiment and seed has its row"
    capped = table[table["hit cap"]]
    assert len(capped) > 0 and capped["steps"].isna().all()
    summary = experiments.summary(table)
    assert summary["cap hits"].sum() == len(capped)
    assert (summary["cap"] == 2).all()
    assert (summary.loc[summary["cap hits"] == summary["runs"], "steps median"] == 2).all(), \
        "a capped run counts at the cap"
    assert table.loc[table.experiment != "Exp 1", "phase-1 hit cap"].all()


def test_curves_record_each_seeds_training_accuracy_up_to_the_last_step(tmp_path):
    cfg = tiny(max_steps=300)
    store = Store(tmp_path)
    curves = experiments.curves(cfg, store)
    start = runs.run_width(cfg, "gaussians", 6, store)["start"].metrics
    k = len(cfg.seeds)
    for labels, block in (("true", 0), ("random", 1)):
        for i, seed in enumerate(cfg.seeds):
            one = curves[(curves.labels == labels) & (curves.seed == seed)].sort_values("step")
            assert one.step.iloc[0] == 1 and one.step.is_monotonic_increasing
            assert one.step.iloc[-1] == start["steps"], "up to the batched run's last step"
            assert one["train acc %"].iloc[-1] == pytest.approx(100 * start["train_acc"][block * k + i])
            fit = start["fit_step"][block * k + i]
            if fit is not None:   # a member that fitted stays where it was
                assert (one.loc[one.step >= fit, "train acc %"] == 100).all()
                assert (one.loc[one.step < fit, "train acc %"] < 100).all()
            assert len(one) <= runs.CURVE_POINTS


@pytest.mark.equivalence
def test_a_width_sweep_batched_equals_its_seeds_run_one_by_one(tmp_path):
    """All seeds of a width in one batched model give each seed's numbers from its own run, to float tolerance."""
    cfg = tiny(seeds=(0, 1, 2), max_steps=60)
    batched = experiments.width_table(cfg, "gaussians", 6, Store(tmp_path / "batched"))
    assert batched["steps"].nunique() > 2, "members stop at different steps, so per-member stopping is exercised"
    for seed in cfg.seeds:
        alone = experiments.width_table(dataclasses.replace(cfg, seeds=(seed,)), "gaussians", 6,
                                        Store(tmp_path / str(seed)))
        same = batched[batched.seed == seed].reset_index(drop=True)
        assert same["steps"].tolist() == alone["steps"].tolist()
        for column in ("test acc %", "train acc %", "phase-1 acc %"):
            assert same[column].tolist() == pytest.approx(alone[column].tolist(), abs=1e-4, nan_ok=True)
        for column in ("init norm", "final norm"):
            assert same[column].tolist() == pytest.approx(alone[column].tolist(), rel=1e-5)


@pytest.mark.equivalence
def test_full_batch_gradient_descent_batched_equals_one_by_one():
    """The loop itself, as the sweeps use it: full batch, one step per epoch, members stopping on their own."""
    seeds = [0, 1, 2, 3]
    draws = [draw("spirals", 60, 2, s, t_max=2 * math.pi)[0] for s in seeds]
    x, y = torch.stack([d[0] for d in draws]), torch.stack([d[1] for d in draws])
    cfg = TrainConfig(lr=0.01, batch_size=None, max_epochs=300)
    batched = MLP([2, 32, 1], seeds)
    run = train(batched, (x, y), cfg, seeds, device=CPU)
    assert run.steps == run.epochs
    for m, s in enumerate(seeds):
        alone = MLP([2, 32, 1], [s])
        run1 = train(alone, (x[m:m + 1], y[m:m + 1]), cfg, [s], device=CPU)
        assert run1.fit_step[0] == run.fit_step[m]
        assert torch.allclose(member_params(alone)[0], member_params(batched)[m], atol=1e-5)


def test_a_rerun_loads_every_group_from_the_store(tmp_path, monkeypatch):
    cfg = tiny(widths=(4, 6))
    first = experiments.sweep(cfg, Store(tmp_path))
    assert len(list((tmp_path / "widths").iterdir())) == 2 * 3, "one stored result per width and group"
    monkeypatch.setattr(fastmlp, "train_mlp", lambda *a, **k: pytest.fail("retrained"))
    assert experiments.sweep(cfg, Store(tmp_path)).equals(first)
    other_width = dataclasses.replace(cfg, widths=(6,))
    assert experiments.sweep(other_width, Store(tmp_path)).equals(first[first.width == 6].reset_index(drop=True))


def test_images_are_the_same_128_and_random_labels_are_reused_at_every_width(tmp_path, monkeypatch):
    cfg = tiny(datasets=("vmnist",), image_widths=(4, 8), image_max_epochs=1)
    data = datasets.load_data(cfg, "vmnist")
    assert data.x.shape == (1, 128, 784) and data.classes == 10
    assert 0.0 <= float(data.x.min()) and float(data.x.max()) <= 1.0
    seen = []
    real_train = fastmlp.train_mlp

    def recording_train(model, train_set, *args, **kwargs):
        seen.append((model.sizes, train_set[0].clone(), train_set[1].clone()))
        return real_train(model, train_set, *args, **kwargs)

    monkeypatch.setattr(fastmlp, "train_mlp", recording_train)
    table = experiments.sweep(cfg, Store(tmp_path))
    starts = [s for s in seen if s[1].shape[0] == 2 * len(cfg.seeds)][::2]   # the start group of each width
    assert [s[0] for s in starts] == [(784, 4, 10), (784, 8, 10)]
    assert torch.equal(starts[0][1], starts[1][1]) and torch.equal(starts[0][2], starts[1][2])
    assert set(table.name) == {datasets.dataset_name(cfg, "vmnist")}


def test_one_fixed_draw_is_shared_by_every_seed():
    own = datasets.load_data(tiny(), "gaussians")
    fixed = datasets.load_data(tiny(data_seed=7), "gaussians")
    assert own.x.shape[0] == 2 and not torch.equal(own.x[0], own.x[1])
    assert fixed.x.shape[0] == 1 and torch.equal(fixed.x[0], draw("gaussians", 100, 50, 7)[0][0])


def test_decision_boundaries_of_each_experiment(tmp_path):
    cfg = tiny()
    result = boundaries.trained(cfg, "gaussians", 6, Store(tmp_path))
    assert set(result.models) == {"Exp 1", "Exp 2", "Exp 3", "Norm"} and result.x.shape == (2, 100, 2)
    grid = boundaries.panels(result, [0, 1], cfg.seeds)
    assert len(grid) == 2 and len(grid[0]) == 3
    points = torch.randn(5, 2)
    for m in (0, 1):
        for column, experiment in enumerate(("Exp 1", "Exp 2", "Exp 3")):
            batched = result.models[experiment](points.expand(len(cfg.seeds), 5, 2))[m, :, 0]
            assert torch.allclose(grid[m][column]["logit_fn"](points), batched), "row m shows member m's net"
            assert torch.equal(grid[m][column]["x"], result.x[m])
    lengths = boundaries.boundary_table(cfg, ("gaussians",), 6, Store(tmp_path), resolution=50)
    assert len(lengths) == 4 * 2
    extent = extent_of(result.x)
    for _, row in lengths.iterrows():
        m, net = cfg.seeds.index(row["seed"]), result.models[row["experiment"]]
        logit = lambda pts: net(pts.expand(len(cfg.seeds), *pts.shape))[m, :, 0]
        assert row["boundary length"] == pytest.approx(boundary_length(logit, extent, 50)), row.to_dict()
    with pytest.raises(ParameterError, match="no decision boundary"):
        boundaries.trained(cfg, "vmnist", 6, Store(tmp_path))


def test_boundary_length():
    box = (-1.0, 1.0, -1.0, 1.0)
    assert boundary_length(lambda p: p[:, 0] - 0.3, box, 101) == pytest.approx(2.0, rel=0.02)
    assert boundary_length(lambda p: torch.ones(len(p)), box) == 0.0
    # The staircase estimate of y = 0.5 sin(8x) is its width plus its total rise, 2 + integral of |4 cos 8x| over [-1, 1].
    wiggly = boundary_length(lambda p: p[:, 1] - 0.5 * torch.sin(8 * p[:, 0]), box, 401)
    xs = torch.linspace(-1, 1, 100_001, dtype=torch.float64)
    assert wiggly == pytest.approx(2 + float(torch.trapezoid((4 * torch.cos(8 * xs)).abs(), xs)), rel=0.02)


def test_the_budgets_are_the_sweeps_runs_at_one_width_with_phase_1_cut_short():
    cpu, sweep = protocol.budget_config_for("cpu"), protocol.config_for("cpu")
    assert len(cpu.sweep.widths) == 1 and cpu.sweep.widths[0] in sweep.widths
    assert set(cpu.sweep.datasets) <= set(protocol.TOY) and cpu.sweep.seeds == sweep.seeds
    assert cpu.sweep.max_steps == sweep.max_steps and max(cpu.budgets) < sweep.max_steps
    cfg = protocol.budget_config_for("smoke", ["spirals"], 8, [50, 5], max_steps=60)
    assert (cfg.sweep.datasets, cfg.sweep.widths, cfg.budgets, cfg.sweep.max_steps) == (("spirals",), (8,), (5, 50), 60)
    with pytest.raises(ParameterError, match="dataset='vmnist' is not allowed"):
        protocol.budget_config_for("cpu", ["vmnist"])
    with pytest.raises(ParameterError, match="width=0"):
        protocol.budget_config_for("cpu", width=0)
    with pytest.raises(ParameterError, match=r"budgets=\(60,\) must be .* \[1, max_steps = 60\)"):
        protocol.budget_config_for("smoke", budgets=(60,), max_steps=60)


def test_a_budget_run_is_the_sweeps_phase_1_cut_short(tmp_path):
    """Phase 1 stopped after b steps is the sweep's phase 1 at step b (same init, labels, data): a member that
    fits within b steps ends where the sweep's does, one that does not is the sweep's at step b; Exp 2 then trains
    from there."""
    cfg = protocol.config_for("smoke", datasets=("circles",), widths=(16,), seeds=(0, 1, 2), max_steps=400)
    store = Store(tmp_path)
    problem = datasets.problem_of(cfg, "circles")
    full = runs.run_problem(problem, 16, store)
    short = runs.run_budget(problem, 16, 50, store)
    k = 3
    assert short["phase 1"].metrics["steps"] == 50
    long_fit = full["start"].metrics["fit_step"][k:]
    for i, step in enumerate(short["phase 1"].metrics["fit_step"]):
        assert step == (long_fit[i] if long_fit[i] is not None and long_fit[i] <= 50 else None)
    budgets = protocol.BudgetConfig(cfg, (50,))
    table = experiments.budget_table(budgets, store)
    assert list(table.stopped.unique()) == ["budget", "zero error or cap"] and len(table) == 2 * k
    exp2_full = experiments.width_table(cfg, "circles", 16, store)
    exp2_full = exp2_full[exp2_full.experiment == "Exp 2"]["test acc %"].tolist()
    assert table[table.stopped != "budget"]["Exp 2 test %"].tolist() == exp2_full
    assert (table.gap == table["Exp 1 test %"] - table["Exp 2 test %"]).all()
    assert len(experiments.budget_lines(table)) == 1


def test_bad_parameters_name_themselves():
    with pytest.raises(ParameterError, match="dataset='moons' is not allowed"):
        protocol.config_for("smoke", datasets=["moons"])
    with pytest.raises(ParameterError, match=r"widths=\(0, 4\) must be a non-empty list of positive integers"):
        protocol.config_for("smoke", widths=[0, 4])
    with pytest.raises(ParameterError, match="scale='huge' is not allowed"):
        protocol.config_for("huge")
    with pytest.raises(ParameterError, match="unknown parameter"):
        protocol.config_for("smoke", depth=3)
    with pytest.raises(ParameterError, match="image_source='cifar10' is not allowed"):
        protocol.config_for("smoke", image_source="cifar10")


def test_the_widths_chapters_sentences_and_tables_follow_the_runs(tmp_path):
    cfg = protocol.config_for("smoke", datasets=("circles", "spirals"), seeds=(0, 1, 2), max_steps=60)
    table = experiments.sweep(cfg, Store(tmp_path))
    summary, names = experiments.summary(table), datasets.names_of(cfg)
    assert names == {"circles": "concentric circles", "spirals": "spirals (t ≤ 10)"}
    assert f"{len(table)} runs in all" in experiments.describe(cfg, len(table))
    phase1 = experiments.phase1_table(table)
    assert phase1["runs"].tolist() == [3] * 4
    assert f"in **{int(phase1['runs at the cap'].sum())} of 12** runs" in experiments.phase1_lines(phase1)
    exp2 = table[table.experiment == "Exp 2"]
    assert phase1["fitted"].sum() == exp2["phase-1 fitted"].sum() == exp2["phase-1 steps"].notna().sum()
    assert (phase1["fitted"] + phase1["runs at the cap"] <= phase1["runs"]).all()
    spirals = summary[(summary.dataset == "spirals") & (summary.width == 4)].set_index("experiment")["test median"]
    assert experiments.median_line(summary, "spirals").startswith(f"p = 4: Exp 1 {spirals['Exp 1']:.1f}%")
    caps = experiments.cap_table(summary, names)
    assert caps.loc[("spirals (t ≤ 10)", 16), "Exp 2"] == table[(table.dataset == "spirals") & (table.width == 16)
                                                             & (table.experiment == "Exp 2")]["hit cap"].sum()
    ratio = experiments.norm_table(table)["adversarial / random"]
    lines = experiments.norm_lines(table, names)
    assert lines[0].startswith(f"Phase 1 changed the norm by a factor between {ratio.min():.2f}") and len(lines) == 3
    gap_lines = experiments.gap_lines(experiments.gaps(table), names)
    assert len(gap_lines) == len(experiments.steps_lines(summary, names)) == 2


def test_the_phase_1_table_gives_the_fits_and_the_median_steps_of_the_runs_that_fitted():
    rows = [("circles", 10, 100, True, False), ("circles", 10, 300, True, False), ("circles", 10, None, False, True),
            ("spirals", 10, None, False, True), ("spirals", 10, None, False, False)]   # the last one diverged
    table = pd.DataFrame([{"name": n, "width": w, "experiment": "Exp 2", "seed": i, "phase-1 acc %": 90.0 - i,
                           "parameters": 41, "points": 100 if n == "spirals" else 40,
                           "phase-1 steps": s, "phase-1 fitted": f, "phase-1 hit cap": c}
                          for i, (n, w, s, f, c) in enumerate(rows)])
    table["phase-1 steps"] = table["phase-1 steps"].astype("Int64")
    phase1 = experiments.phase1_table(pd.concat([table, table.assign(experiment="Exp 3", **{"phase-1 steps": 1})]))
    assert phase1.loc[("circles", 10), ["fitted", "median steps to fit", "runs at the cap", "runs"]].tolist() == [
        2, 200, 1, 3]
    assert phase1.loc[("spirals", 10), "fitted"] == 0 and pd.isna(phase1.loc[("spirals", 10), "median steps to fit"])
    lines = experiments.phase1_lines(phase1)
    assert "fitted them in 2 of 3 runs (1 at the cap)" in lines
    # Fewer parameters than points on the spirals only: said there, with its fits and lowest accuracy.
    assert "At p = 10 on spirals the net has 41 parameters for 100 random labels, fewer than the points; 0 of 2 " \
           "runs fitted them, the lowest reaching 86%." in lines and "on circles the net" not in lines



def test_the_chapters_captions_and_shown_tables_quote_what_they_are_given():
    gaps = pd.DataFrame({"dataset": ["spirals", "circles"], "width": [4, 4], "mean gap": [1.0, -2.0]})
    named = experiments.gap_table(gaps, {"spirals": "spirals (t ≤ 10)", "circles": "concentric circles"})
    assert named.dataset.tolist() == ["spirals (t ≤ 10)", "concentric circles"]
    assert named["mean gap"].tolist() == [1.0, -2.0] and gaps.dataset.tolist() == ["spirals", "circles"]
    summary = pd.DataFrame([{"dataset": "spirals", "width": w, "experiment": e, "test median": m + i}
                            for w, m in ((4, 50.0), (16, 60.0)) for i, e in enumerate(protocol.EXPERIMENTS)])
    assert experiments.median_lines(summary, [("spirals", "spirals (t ≤ 10)")]) == [
        "Median test accuracy on spirals (t ≤ 10): p = 4: Exp 1 50.0%, Exp 2 51.0%, Exp 3 52.0%; p = 16: Exp 1 60.0%, "
        "Exp 2 61.0%, Exp 3 62.0%."]
    assert experiments.cap_heading(protocol.config_for("smoke", seeds=(0, 1, 2))).endswith("(of 3 each):")
    budget = protocol.budget_config_for("smoke", budgets=[1500, 20], max_steps=2000)
    assert experiments.describe_budget(budget) == ("width p = 16, 2 seeds, phase-1 budgets 20, 1,500 steps, a cap of "
                                                   "2,000 steps on every other phase.")
    shown = experiments.budget_shown(pd.DataFrame({"dataset": ["circles"], "name": ["concentric circles"],
                                                   "budget": [10_000], "stopped": ["budget"], "mean gap": [1.5]}))
    assert shown.index.tolist() == [("concentric circles", "10,000", "budget")] and list(shown.columns) == ["mean gap"]


def test_the_named_width_figures_plot_their_columns():
    import matplotlib
    matplotlib.use("Agg")
    from badminima.paper_b import plots
    summary = pd.DataFrame([{"dataset": "circles", "width": w, "experiment": e, "runs": 2, "cap": 100, "cap hits": 0,
                             **{c: float(w + j + 10 * k) for k, c in enumerate(
                                 ("test mean", "test low", "test high", "test median", "test q1", "test q3",
                                  "steps median", "steps q1", "steps q3"))}}
                            for w in (4, 16) for j, e in enumerate(protocol.EXPERIMENTS + ("Norm",))])
    panels = [("circles", "concentric circles")]
    def plotted(fig, experiment):
        return [list(line.get_ydata()) for line in fig.axes[0].get_lines() if line.get_label() == experiment]
    assert plotted(plots.accuracy_figure(summary, panels), "Exp 2") == [[5.0, 17.0]]
    norm = plots.accuracy_figure(summary, panels, protocol.NORM_EXPERIMENTS)
    assert plotted(norm, "Norm") == [[7.0, 19.0]] and plotted(norm, "Exp 3") == []
    assert plotted(plots.median_figure(summary, panels), "Exp 1") == [[34.0, 46.0]]
    steps = plots.steps_figure(summary, panels)
    assert plotted(steps, "Exp 3") == [[66.0, 78.0]] and steps.axes[0].get_yscale() == "log"
    assert plotted(steps, "step cap") == [[100.0, 100.0]]


def test_fit_target_lines_say_where_phase_1_missed_three_quarters_and_whether_its_curve_still_rose():
    phase1 = pd.DataFrame({"name": ["A", "A", "B", "B"], "width": [10, 100, 100, 500], "fitted": [0, 8, 2, 3],
                           "runs": [10, 10, 10, 10]}).set_index(["name", "width"])
    curves = pd.DataFrame([{"dataset": "circles", "name": "A", "width": 100, "labels": "random", "seed": 0,
                            "step": s, "train acc %": 50.0} for s in (10, 20)]
                          + [{"dataset": "gaussians", "name": "B", "width": w, "labels": "random", "seed": 0,
                              "step": s, "train acc %": acc} for w in (100, 500) for s, acc in ((10, 80.0), (20, 90.0))]
                          + [{"dataset": "vmnist", "name": "C", "width": 10, "labels": "random", "seed": 0,
                              "step": 1, "train acc %": 5.0}])
    lines = experiments.fit_target_lines(phase1, curves, 20)
    assert lines[1] == "- **A**: phase 1 fitted 8 of 10 runs at widths >= 100, at least 75% of them."
    assert lines[2].startswith("- **B**: phase 1 fitted 5 of 20 runs at widths >= 100, short of 75%. At p = 500")
    assert lines[2].endswith("from 80.0% at step 10 to 90.0% at 20, still rising, so more steps than the cap of 20 "
                             "would fit more of them: the cap, not the width, keeps it short.") and len(lines) == 3
    flat = curves.assign(**{"train acc %": 90.0})
    assert ", flat, so more steps at this rate would not fit them." in experiments.fit_target_lines(phase1, flat, 20)[2]
