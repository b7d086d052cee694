"""Paper B's boundaries chapter (Figures 2 and 6): the trained networks of a 2-D data set and width per
experiment, rebuilt from the stored weights, the panels the chapter draws, the length of each boundary and what the
chapter says about them; and Figure 6's two sweeps of one data set (each seed its own draw, or one draw for all),
their configurations, tables and sentence. Apart from the widths chapter's tables (experiments.py) because
Figure 2 reads the runs' weights, not their stored metrics."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from badminima.core.config import ParameterError, check_range
from badminima.core.jobs import Job
from badminima.core.metrics import boundary_length
from badminima.core.models import MLP, member_logits
from badminima.core.plots import extent_of
from badminima.paper_b import protocol
from badminima.paper_b import experiments
from badminima.paper_b.datasets import dataset_name, problem_of
from badminima.paper_b.runs import MEMBERS, members_of, net_of, per_member, run_problem, width_jobs
from badminima.core.store import Store

Tensor = torch.Tensor


@dataclass
class Trained:
    dataset: str
    width: int
    x: Tensor                    # (seeds, n, 2) training points of each seed
    y: Tensor                    # (seeds, n) their true labels
    models: dict[str, MLP]       # experiment -> one member per seed


def trained(cfg: protocol.WidthsConfig, dataset: str, width: int, store: Store | None = None) -> Trained:
    """The trained networks of one 2-D data set and width, per experiment."""
    if dataset == "vmnist":
        raise ParameterError("dataset='vmnist' has no decision boundary to draw; choose a 2-D data set")
    runs = problem_of(cfg, dataset)
    groups = run_problem(runs, width, store)
    k, sizes = len(cfg.seeds), runs.sizes(width)
    models = {e: net_of(sizes, cfg.seeds, members_of(groups[g].weights, block * k, (block + 1) * k))
              for e, (g, block) in MEMBERS.items()}
    data = runs.data
    return Trained(dataset, width, per_member(data.x, 1, k), per_member(data.y, 1, k), models)


def panels(result: Trained, members: list[int], seeds: tuple[int, ...],
           experiments: tuple[str, ...] = protocol.EXPERIMENTS, resolution: int = 300) -> list[list[dict]]:
    """Decision-boundary panels (plots.decision_boundary's arguments): one row per member (seed), one column per
    experiment."""
    extent = extent_of(result.x)
    return [[{"logit_fn": member_logits(result.models[e], m), "x": result.x[m], "y": result.y[m],
              "extent": extent, "resolution": resolution, "title": f"{e}, p = {result.width}, seed {seeds[m]}"}
             for e in experiments] for m in members]


def seed_panels(cfg: protocol.WidthsConfig, dataset: str, width: int, seed: int,
                experiments: tuple[str, ...] = protocol.EXPERIMENTS) -> list[list[dict]]:
    """The panels of one data set, width and seed (the boundaries chapter's widget)."""
    return panels(trained(cfg, dataset, width), [cfg.seeds.index(seed)], cfg.seeds, experiments)


def width_frames(cfg: protocol.WidthsConfig, datasets: tuple[str, ...],
                 experiments: tuple[str, ...] = protocol.EXPERIMENTS, resolution: int = 120
                 ) -> list[list[list[dict]]]:
    """One frame per width of the sweep: the first seed's panels, one row per data set (the widget's static
    stand-in, an animation over the widths)."""
    return [[panels(trained(cfg, d, w), [0], cfg.seeds, experiments, resolution)[0] for d in datasets]
            for w in cfg.widths]


def boundary_table(cfg: protocol.WidthsConfig, datasets: tuple[str, ...], width: int, store: Store | None = None,
                   resolution: int = 200) -> pd.DataFrame:
    """Length of each run's decision boundary inside its data set's plotting box, per experiment and seed."""
    rows = []
    for dataset in datasets:
        result = trained(cfg, dataset, width, store)
        extent = extent_of(result.x)
        for experiment, model in result.models.items():
            for m, seed in enumerate(cfg.seeds):
                length = boundary_length(member_logits(model, m), extent, resolution)
                rows.append({"dataset": dataset, "name": dataset_name(cfg, dataset), "width": width,
                             "experiment": experiment, "seed": seed, "boundary length": length})
    return pd.DataFrame(rows)


def describe(cfg: protocol.WidthsConfig) -> str:
    """The chapter's setting in one sentence, for its opening."""
    return (f"{len(cfg.seeds)} seeds, Figure 2 at p = {cfg.boundary_width}, widths {list(cfg.widths)} for the "
            f"sweeps, a cap of {cfg.max_steps} steps per phase.")


# Figure 2 and the boundary lengths

def figure2_panels(cfg: protocol.WidthsConfig, experiments: tuple[str, ...] = protocol.EXPERIMENTS,
                   store: Store | None = None) -> list[list[dict]]:
    """Figure 2: one row per data set of `cfg` at its boundary width, the first seed's panel of each experiment."""
    return [panels(trained(cfg, d, cfg.boundary_width, store), [0], cfg.seeds, experiments)[0] for d in cfg.datasets]


def frame_titles(cfg: protocol.WidthsConfig) -> list[str]:
    """The title of each frame of width_frames (the first seed's boundaries at each width)."""
    return [f"width p = {w}, seed {cfg.seeds[0]}" for w in cfg.widths]


def boundary_summary(lengths: pd.DataFrame) -> pd.DataFrame:
    """boundary_table's lengths per data set (by name, rows) and experiment (columns): mean and standard deviation
    over seeds."""
    per_run = lengths.groupby(["name", "experiment"], sort=False)["boundary length"]
    return pd.DataFrame({"mean": per_run.mean(), "std": per_run.std()}).unstack("experiment")


def boundary_lines(lengths: pd.DataFrame) -> str:
    """boundary_table's mean length of each experiment's boundary, one sentence per data set."""
    means = lengths.groupby(["dataset", "experiment"])["boundary length"].mean().unstack()
    names = dict(zip(lengths["dataset"], lengths["name"]))
    return " ".join(
        f"On {name}, the mean boundary length is {means.loc[d, 'Exp 1']:.1f} for Exp 1, {means.loc[d, 'Exp 2']:.1f} "
        f"for Exp 2 and {means.loc[d, 'Exp 3']:.1f} for Exp 3 (0: no boundary inside the box)."
        for d, name in names.items())


# Figure 6: one data set's sweep averaged over draws of the data, against one fixed draw

ONE_DRAW = "fixed"   # the "dataset" of the fixed draw's rows in figure6_summary


@dataclass(frozen=True)
class Figure6:
    """Figure 6's two sweeps of its data set (protocol.FIGURE6_DATASETS): `averaged`, where each seed draws its own
    data as everywhere else, and `one_draw`, where one draw (its `data_seed`) is shared by every seed and width."""
    averaged: protocol.WidthsConfig
    one_draw: protocol.WidthsConfig

    @property
    def data_seed(self) -> int:
        return self.one_draw.data_seed


def config_for(scale: str, fixed_draw: int | None = None, **overrides) -> protocol.WidthsConfig:
    """The chapter's configuration: the width sweep's at a scale on Figure 2's data sets, with the overrides (None
    keeps the default). `fixed_draw` is Figure 6's (figure6_configs), checked here so that the chapter refuses it
    before anything trains."""
    if fixed_draw is not None:
        check_range("fixed_draw", fixed_draw, 0, integer=True)
    if overrides.get("datasets") is not None:
        raise ParameterError(f"datasets={overrides['datasets']!r} is fixed by this chapter (Figure 2's data sets, "
                             "Figure 6's); allowed: leave it out")
    return protocol.config_for(scale, **{**overrides, "datasets": protocol.BOUNDARY_DATASETS})


def figure6_configs(scale: str, fixed_draw: int | None = None, **overrides) -> Figure6:
    """Figure 6's configurations at a scale, with the chapter's overrides (None keeps the default); `fixed_draw`:
    the data seed of the one draw (None: protocol.FIXED_DRAW)."""
    fixed = protocol.FIXED_DRAW if fixed_draw is None else fixed_draw
    averaged = protocol.config_for(scale, **{**overrides, "datasets": protocol.FIGURE6_DATASETS})
    one_draw = protocol.config_for(scale, **{**overrides, "datasets": protocol.FIGURE6_DATASETS, "data_seed": fixed})
    return Figure6(averaged, one_draw)


def chapter_jobs(cfg: protocol.WidthsConfig, figure6: Figure6) -> list[Job]:
    """The boundaries chapter's work: Figure 2's data sets at the boundary width and over the sweep's widths (the
    animation), and Figure 6's two sweeps."""
    return (width_jobs(cfg, (cfg.boundary_width,)) + width_jobs(cfg) + width_jobs(figure6.averaged)
            + width_jobs(figure6.one_draw))


def figure6_sweeps(figure6: Figure6, store: Store | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The sweep tables (experiments.sweep) averaged over draws and on the one draw."""
    return experiments.sweep(figure6.averaged, store), experiments.sweep(figure6.one_draw, store)


def figure6_summary(averaged: pd.DataFrame, one_draw: pd.DataFrame) -> pd.DataFrame:
    """Both sweeps' summaries (experiments.summary) in one table, the one draw's rows under the data set
    ONE_DRAW."""
    return pd.concat([experiments.summary(averaged), experiments.summary(one_draw).assign(dataset=ONE_DRAW)])


def figure6_panels(figure6: Figure6) -> list[tuple[str, str]]:
    """Figure 6's panels of figure6_summary: (data set, title)."""
    return [(figure6.averaged.datasets[0], "(a) averaged over draws"),
            (ONE_DRAW, f"(b) one draw (data seed {figure6.data_seed})")]


def figure6_gaps(averaged: pd.DataFrame, one_draw: pd.DataFrame) -> pd.DataFrame:
    """The gap Exp 1 - Exp 2 (experiments.gaps) per width (rows), averaged over draws and on the one draw
    (columns)."""
    gaps = pd.concat({"averaged": experiments.gaps(averaged), "one draw": experiments.gaps(one_draw)}, names=["data"])
    return gaps.droplevel(1).set_index("width", append=True)[["mean gap", "s.e.", "significant"]].unstack("data")


def gap_signs(table: pd.DataFrame) -> str:
    """The sign of the gap Exp 1 - Exp 2 at each width of a one-data-set sweep, in order: "+" where Exp 1 is
    ahead, "-" elsewhere."""
    return experiments.gaps(table)["mean gap"].gt(0).map({True: "+", False: "-"}).str.cat()


def figure6_line(figure6: Figure6, averaged: pd.DataFrame, one_draw: pd.DataFrame) -> str:
    """Figure 6 in words: the signs of the gap over the widths, averaged over draws and on the one draw."""
    return (f"Across the widths {list(figure6.averaged.widths)}, the sign of the gap reads `{gap_signs(averaged)}` "
            f"averaged over draws and `{gap_signs(one_draw)}` on the one draw. The paper's point, that the two can "
            "differ, is shown here rather than tested: it makes no claim about which way they should differ.")
