"""The boundaries chapter's library (Figures 2 and 6): its configurations, its work, and its tables and sentences."""
import dataclasses

import matplotlib
import pandas as pd
import pytest
import torch

from badminima.paper_b import boundaries, datasets, experiments, plots, protocol, runs
from badminima.core.store import Store

matplotlib.use("Agg")


def _lengths() -> pd.DataFrame:
    """A boundary_table by hand: gaussians before circles (the table's order, not the alphabet's), two seeds."""
    values = {("gaussians", "Exp 1"): (2.0, 2.0), ("gaussians", "Exp 2"): (5.0, 7.0),
              ("gaussians", "Exp 3"): (4.0, 6.0),
              ("circles", "Exp 1"): (1.0, 3.0), ("circles", "Exp 2"): (10.0, 14.0), ("circles", "Exp 3"): (0.0, 0.0)}
    names = {"circles": "concentric circles", "gaussians": "Gaussians"}
    return pd.DataFrame([{"dataset": d, "name": names[d], "width": 16, "experiment": e, "seed": s,
                          "boundary length": v} for (d, e), pair in values.items() for s, v in zip((0, 1), pair)])


def test_the_boundary_summary_gives_each_experiments_mean_and_std_over_seeds():
    out = boundaries.boundary_summary(_lengths())
    assert list(out.index) == ["Gaussians", "concentric circles"], "data sets by name, in the table's order"
    assert list(out.columns.get_level_values(0).unique()) == ["mean", "std"]
    assert out.loc["concentric circles", ("mean", "Exp 2")] == 12.0
    assert out.loc["concentric circles", ("std", "Exp 1")] == pytest.approx(2 ** 0.5), "sample std (ddof 1)"
    assert out.loc["Gaussians", ("std", "Exp 1")] == 0.0 and out.loc["Gaussians", ("mean", "Exp 3")] == 5.0


def test_the_boundary_sentence_quotes_each_data_sets_mean_lengths_in_the_tables_order():
    text = boundaries.boundary_lines(_lengths())
    assert text == ("On Gaussians, the mean boundary length is 2.0 for Exp 1, 6.0 for Exp 2 and 5.0 for Exp 3 (0: no "
                    "boundary inside the box). On concentric circles, the mean boundary length is 2.0 for Exp 1, 12.0 "
                    "for Exp 2 and 0.0 for Exp 3 (0: no boundary inside the box).")


def test_figure_6_compares_its_data_set_over_its_own_draws_and_one_shared_draw():
    assert protocol.FIGURE6_DATASETS == ("spirals_2pi",)
    figure6 = boundaries.figure6_configs("smoke", widths=(4, 8), seeds=None)
    assert figure6.averaged == protocol.config_for("smoke", datasets=("spirals_2pi",), widths=(4, 8))
    assert figure6.one_draw == dataclasses.replace(figure6.averaged, data_seed=protocol.FIXED_DRAW)
    assert figure6.data_seed == protocol.FIXED_DRAW
    assert boundaries.figure6_configs("smoke", 3).data_seed == 3
    assert boundaries.figure6_panels(boundaries.figure6_configs("smoke", 3)) == [
        ("spirals_2pi", "(a) averaged over draws"), (boundaries.ONE_DRAW, "(b) one draw (data seed 3)")]


def test_the_chapters_work_is_figure_2_at_its_width_the_sweep_and_both_figure_6_sweeps():
    cfg = protocol.config_for("smoke", datasets=protocol.BOUNDARY_DATASETS)
    figure6 = boundaries.figure6_configs("smoke", 5)
    jobs = boundaries.chapter_jobs(cfg, figure6)
    expected = (runs.width_jobs(cfg, (cfg.boundary_width,)) + runs.width_jobs(cfg) + runs.width_jobs(figure6.averaged)
                + runs.width_jobs(figure6.one_draw))
    assert [j.outputs for j in jobs] == [j.outputs for j in expected]
    assert len(jobs) == len(cfg.datasets) * (1 + len(cfg.widths)) + 2 * len(cfg.widths)
    averaged, one_draw = ([repr(o) for j in runs.width_jobs(c) for o in j.outputs]
                          for c in (figure6.averaged, figure6.one_draw))
    assert averaged and one_draw and not set(averaged) & set(one_draw), "the one draw's runs are stored apart"
    assert boundaries.frame_titles(cfg) == ["width p = 4, seed 0", "width p = 16, seed 0"]
    assert boundaries.describe(cfg) == ("2 seeds, Figure 2 at p = 16, widths [4, 16] for the sweeps, a cap of 30 "
                                        "steps per phase.")


def _sweep(gaps_by_width: dict[int, float], dataset: str = "spirals_2pi") -> pd.DataFrame:
    """A sweep table by hand: Exp 1 at 80% on both seeds, Exp 2 below it by the given gap (+-1 between seeds)."""
    rows = []
    for width, gap in gaps_by_width.items():
        for seed, jitter in ((0, 1.0), (1, -1.0)):
            for experiment, acc in (("Exp 1", 80.0), ("Exp 2", 80.0 - gap + jitter), ("Exp 3", 70.0)):
                rows.append({"dataset": dataset, "name": "spirals (t ≤ 2π)", "width": width, "experiment": experiment,
                             "seed": seed, "test acc %": acc, "steps": 10, "cap": 30, "hit cap": False,
                             "phase-1 hit cap": False})
    table = pd.DataFrame(rows)
    table["steps"] = table["steps"].astype("Int64")
    return table


def test_figure_6s_tables_and_sentence_follow_both_sweeps():
    averaged, one_draw = _sweep({4: 5.0, 16: -3.0}), _sweep({4: -2.0, 16: -4.0})
    figure6 = boundaries.figure6_configs("smoke", widths=(4, 16))
    summary = boundaries.figure6_summary(averaged, one_draw)
    assert len(summary) == 2 * 2 * 3 and set(summary.dataset) == {"spirals_2pi", boundaries.ONE_DRAW}
    one = summary[(summary.dataset == boundaries.ONE_DRAW) & (summary.width == 4) & (summary.experiment == "Exp 2")]
    assert one["test mean"].item() == 82.0, "the one draw's rows are its own sweep's"
    gaps = boundaries.figure6_gaps(averaged, one_draw)
    assert list(gaps.index) == [4, 16]
    assert gaps.loc[4, ("mean gap", "averaged")] == 5.0 and gaps.loc[16, ("mean gap", "one draw")] == -4.0
    assert gaps.loc[4, ("s.e.", "one draw")] == pytest.approx(1.0) and gaps.loc[4, ("significant", "averaged")]
    assert boundaries.gap_signs(averaged) == "+-" and boundaries.gap_signs(one_draw) == "--"
    assert boundaries.figure6_line(figure6, averaged, one_draw).startswith(
        "Across the widths [4, 16], the sign of the gap reads `+-` averaged over draws and `--` on the one draw.")
    fig = plots.accuracy_figure(summary, boundaries.figure6_panels(figure6))
    left, right = fig.axes[:2]
    assert right.get_title() == f"(b) one draw (data seed {protocol.FIXED_DRAW})"
    exp2 = [line for line in right.get_lines() if line.get_label() == "Exp 2"][0]
    assert list(exp2.get_ydata()) == [82.0, 84.0], "panel (b) plots the one draw's test mean"


def test_figure_2_shows_the_first_seed_of_each_data_set_at_the_boundary_width(tmp_path):
    cfg = protocol.config_for("smoke", datasets=("gaussians",), widths=(4,), boundary_width=6, max_steps=40, n_test=50)
    store = Store(tmp_path)
    rows = boundaries.figure2_panels(cfg, store=store)
    assert len(rows) == 1 and [p["title"] for p in rows[0]] == [f"{e}, p = 6, seed 0" for e in protocol.EXPERIMENTS]
    result = boundaries.trained(cfg, "gaussians", 6, store)
    points = torch.randn(7, 2)
    for panel, experiment in zip(rows[0], protocol.EXPERIMENTS):
        assert torch.equal(panel["x"], result.x[0])
        assert torch.allclose(panel["logit_fn"](points), result.models[experiment](points.expand(2, 7, 2))[0, :, 0])
