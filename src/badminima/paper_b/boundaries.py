"""Paper B's decision boundaries on its 2-D data sets (Figure 2): the trained networks of a data set and width per
experiment, rebuilt from the stored weights, the panels the boundaries chapter draws, and the length of each
boundary. Apart from the tables because these read the runs' weights, not their stored metrics."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from badminima.core.config import ParameterError
from badminima.core.metrics import boundary_length
from badminima.core.models import MLP, member_logits
from badminima.core.plots import extent_of
from badminima.paper_b import protocol
from badminima.paper_b.datasets import dataset_name, problem_of
from badminima.paper_b.runs import MEMBERS, _members, _model, _per_member, run_problem
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
    models = {e: _model(sizes, cfg.seeds, _members(groups[g].weights, block * k, (block + 1) * k))
              for e, (g, block) in MEMBERS.items()}
    data = runs.data
    return Trained(dataset, width, _per_member(data.x, 1, k), _per_member(data.y, 1, k), models)


def panels(result: Trained, members: list[int], seeds: tuple[int, ...],
           experiments: tuple[str, ...] = ("Exp 1", "Exp 2", "Exp 3"), resolution: int = 300) -> list[list[dict]]:
    """Decision-boundary panels (plots.decision_boundary's arguments): one row per member (seed), one column per
    experiment."""
    extent = extent_of(result.x)
    return [[{"logit_fn": member_logits(result.models[e], m), "x": result.x[m], "y": result.y[m],
              "extent": extent, "resolution": resolution, "title": f"{e}, p = {result.width}, seed {seeds[m]}"}
             for e in experiments] for m in members]


def seed_panels(cfg: protocol.WidthsConfig, dataset: str, width: int, seed: int,
                experiments: tuple[str, ...] = ("Exp 1", "Exp 2", "Exp 3")) -> list[list[dict]]:
    """The panels of one data set, width and seed (the boundaries chapter's widget)."""
    return panels(trained(cfg, dataset, width), [cfg.seeds.index(seed)], cfg.seeds, experiments)


def width_frames(cfg: protocol.WidthsConfig, datasets: tuple[str, ...],
                 experiments: tuple[str, ...] = ("Exp 1", "Exp 2", "Exp 3"), resolution: int = 120
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
