"""Paper B's figures over the width sweeps. They draw what they are given; they compute no metric."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd

from badminima.core.plots import with_spread


# Paper B's width sweeps: the paper's colours (Exp 1 black, Exp 2 red, Exp 3 blue), the norm-matched init in green.
EXPERIMENT_STYLES = {"Exp 1": dict(color="black", marker="o"), "Exp 2": dict(color="tab:red", marker="s"),
                     "Exp 3": dict(color="tab:blue", marker="^"),
                     "Norm": dict(color="tab:green", marker="D", linestyle="--")}


def width_curves(ax: plt.Axes, summary: pd.DataFrame, dataset: str, center: str, low: str, high: str,
                 experiments: Sequence[str], ylabel: str, title: str = "") -> None:
    """One curve per experiment over the width p (log axis), with a band from column `low` to column `high` of
    badminima.paper_b.experiments.summary."""
    rows = summary[summary.dataset == dataset]
    for experiment in experiments:
        r = rows[rows.experiment == experiment].sort_values("width")
        with_spread(ax, r.width.to_numpy(), r[center].to_numpy(float), r[low].to_numpy(float),
                    r[high].to_numpy(float), label=experiment, **EXPERIMENT_STYLES[experiment])
    ax.set(xscale="log", xlabel="width p", ylabel=ylabel, title=title)
    ax.set_xticks(sorted(rows.width.unique()), [str(p) for p in sorted(rows.width.unique())])
    ax.grid(alpha=0.3)


def cap_marks(ax: plt.Axes, summary: pd.DataFrame, dataset: str, experiments: Sequence[str],
              y: str = "steps median") -> None:
    """The step cap as a dotted line, and beside each point the number of its runs that hit the cap."""
    rows = summary[summary.dataset == dataset]
    ax.axhline(float(rows["cap"].iloc[0]), color="grey", linestyle=":", linewidth=1, label="step cap")
    for experiment in experiments:
        hits = rows[(rows.experiment == experiment) & (rows["cap hits"] > 0)]
        for width, value, count, runs in zip(hits.width, hits[y], hits["cap hits"], hits.runs):
            ax.annotate(f"{count}/{runs}", (width, value), textcoords="offset points", xytext=(4, 4), fontsize=7,
                        color=EXPERIMENT_STYLES[experiment]["color"])


def width_figure(summary: pd.DataFrame, panels: Sequence[tuple[str, str]], center: str, low: str, high: str,
                 experiments: Sequence[str], ylabel: str, steps: bool = False, size: float = 3.8) -> plt.Figure:
    """A row of width_curves panels, one per (data set, title); `steps` adds the cap line and cap-hit counts."""
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size * 0.85), squeeze=False)
    for ax, (dataset, title) in zip(axes[0], panels):
        width_curves(ax, summary, dataset, center, low, high, experiments, ylabel, title)
        if steps:
            ax.set_yscale("log")
            cap_marks(ax, summary, dataset, experiments, center)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def curve_figure(curves: pd.DataFrame, panels: Sequence[tuple[str, str]], labels: str = "random",
                 size: float = 3.4) -> plt.Figure:
    """Mean training accuracy against steps (log scale), one line per width, one panel per (data set, title)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size * 0.85), squeeze=False)
    for ax, (dataset, title) in zip(axes[0], panels):
        rows = curves[(curves.dataset == dataset) & (curves.labels == labels)]
        for width, g in rows.groupby("width"):
            mean = g.groupby("step")["train acc %"].mean()
            ax.plot(mean.index, mean.values, label=f"p = {width}")
        ax.axhline(100, color="grey", linestyle=":", linewidth=1)
        ax.set(xscale="log", title=title, xlabel="step", ylabel=f"train acc % ({labels} labels)")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig
