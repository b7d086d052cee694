"""The "Does it reproduce?" page: every chapter's verdicts recomputed from the stored results at one scale, with
the same experiment functions the chapters call, through a store that reads and never trains."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from badminima.core import stats
from badminima.paper_a import experiments as paper_a
from badminima.paper_a import claims as paper_a_claims
from badminima.paper_b import claims as paper_b_claims
from badminima.paper_a import sketch
from badminima.paper_b import experiments as widths
from badminima.core.stats import Verdict
from badminima.core.store import NotStored, ReadOnlyStore, Store


def sketch_verdicts(scale: str, store: Store) -> list[Verdict]:
    result = sketch.run_sketch(sketch.config_for(scale), store)
    return paper_a_claims.sketch_verdicts(sketch.sketch_table(result))


def training_verdicts(scale: str, store: Store) -> list[Verdict]:
    cfg = paper_a.config_for(scale)
    runs = paper_a.runs_table(paper_a.main_grid(cfg), store)
    return (paper_a_claims.claim1_fit(runs) + paper_a_claims.claim2_drop(runs) + paper_a_claims.claim3_sota(runs)
            + paper_a_claims.claim4_distance(paper_a.distances(cfg, store)))


def heuristics_verdicts(scale: str, store: Store) -> list[Verdict]:
    cfg = paper_a.config_for(scale)
    return paper_a_claims.claim5_heuristics(paper_a.runs_table(paper_a.table2_grid(cfg), store))


def complexity_verdicts(scale: str, store: Store) -> list[Verdict]:
    return paper_a_claims.claim6_complexity(paper_a.measures(paper_a.config_for(scale), store))


def widths_verdicts(scale: str, store: Store) -> list[Verdict]:
    return paper_b_claims.widths_verdicts(widths.sweep(widths.config_for(scale), store))


def boundaries_verdicts(scale: str, store: Store) -> list[Verdict]:
    cfg = widths.config_for(scale, datasets=("gaussians", "circles", "spirals"))
    return paper_b_claims.boundary_verdicts(widths.boundary_table(cfg, cfg.datasets, cfg.boundary_width, store))


def long_verdicts(scale: str, store: Store) -> list[Verdict]:
    cfg = widths.long_config_for(scale)
    return (paper_b_claims.widths_verdicts(widths.sweep(cfg, store))
            + paper_b_claims.boundary_verdicts(widths.boundary_table(cfg, cfg.datasets, cfg.widths[0], store)))


# chapter -> (paper, its verdicts at a scale).
VERDICTS: dict[str, tuple[str, Callable[[str, Store], list[Verdict]]]] = {
    "paper_a_sketch": ("A", sketch_verdicts),
    "paper_a_training": ("A", training_verdicts),
    "paper_a_heuristics": ("A", heuristics_verdicts),
    "paper_a_complexity": ("A", complexity_verdicts),
    "paper_b_widths": ("B", widths_verdicts),
    "paper_b_boundaries": ("B", boundaries_verdicts),
    "paper_b_long": ("B", long_verdicts),
}


def gather(scale: str, root: str | Path | None = None) -> tuple[pd.DataFrame, dict[str, str]]:
    """One row per claim of every chapter whose results are stored (paper, chapter, claim, paper's number, ours,
    verdict, test), and for each chapter that is not stored, why."""
    store = ReadOnlyStore(root)
    rows, absent = [], {}
    for chapter, (paper, verdicts) in VERDICTS.items():
        try:
            table = stats.verdict_table(verdicts(scale, store))
        except NotStored as missing:
            absent[chapter] = str(missing)
            continue
        rows.append(table.assign(paper_=paper, chapter=chapter))
    columns = ["paper_", "chapter", "claim", "paper", "ours", "verdict", "test"]
    table = pd.concat(rows, ignore_index=True)[columns] if rows else pd.DataFrame(columns=columns)
    return table.rename(columns={"paper_": "Paper", "paper": "paper's number"}), absent
