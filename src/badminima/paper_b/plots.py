"""Paper B's figures over the width sweeps. They draw what they are given; they compute no metric."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd

from badminima.core.plots import panel_grid, with_spread
from badminima.paper_b.protocol import EXPERIMENTS


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
    """width_curves panels (wrapped into rows), one per (data set, title); `steps` adds the cap line and cap-hit counts."""
    fig, axes = panel_grid(len(panels), size, size * 0.85)
    for ax, (dataset, title) in zip(axes, panels):
        width_curves(ax, summary, dataset, center, low, high, experiments, ylabel, title)
        if steps:
            ax.set_yscale("log")
            cap_marks(ax, summary, dataset, experiments, center)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_figure(summary: pd.DataFrame, panels: Sequence[tuple[str, str]],
                    experiments: Sequence[str] = EXPERIMENTS, size: float = 3.8) -> plt.Figure:
    """width_figure of the test accuracy, mean +- one standard deviation over seeds (Figures 1, 4 and 6, the norm
    hypothesis)."""
    return width_figure(summary, panels, "test mean", "test low", "test high", experiments, "test accuracy %",
                        size=size)


def median_figure(summary: pd.DataFrame, panels: Sequence[tuple[str, str]],
                  experiments: Sequence[str] = EXPERIMENTS) -> plt.Figure:
    """width_figure of the test accuracy, median and inter-quartile range over seeds (Figure 5)."""
    return width_figure(summary, panels, "test median", "test q1", "test q3", experiments,
                        "test accuracy % (median, IQR)")


def steps_figure(summary: pd.DataFrame, panels: Sequence[tuple[str, str]],
                 experiments: Sequence[str] = EXPERIMENTS, size: float = 3.4) -> plt.Figure:
    """width_figure of the steps to zero training error, median and inter-quartile range over seeds, with the cap
    and the runs that hit it (Figure 3)."""
    return width_figure(summary, panels, "steps median", "steps q1", "steps q3", experiments,
                        "steps to zero training error", steps=True, size=size)


def curve_figure(curves: pd.DataFrame, panels: Sequence[tuple[str, str]], labels: str = "random",
                 size: float = 3.4) -> plt.Figure:
    """Mean training accuracy against steps (log scale), one line per width, one panel per (data set, title)."""
    fig, axes = panel_grid(len(panels), size, size * 0.85)
    for ax, (dataset, title) in zip(axes, panels):
        rows = curves[(curves.dataset == dataset) & (curves.labels == labels)]
        for width, g in rows.groupby("width"):
            mean = g.groupby("step")["train acc %"].mean()
            ax.plot(mean.index, mean.values, label=f"p = {width}")
        ax.axhline(100, color="grey", linestyle=":", linewidth=1)
        ax.set(xscale="log", title=title, xlabel="step", ylabel=f"train acc % ({labels} labels)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def budget_figure(summary: pd.DataFrame, table: pd.DataFrame) -> plt.Figure:
    """Left: the gap Exp 1 - Exp 2 (mean +- one standard error over seeds) against the steps phase 1 was given,
    one line per data set, the last point of each being phase 1 to zero error or the cap. Right: each seed's gap
    against the accuracy its phase 1 reached on the random labels (badminima.paper_b.experiments.budget_table and
    budget_summary)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for (dataset, name), rows in summary.groupby(["dataset", "name"], sort=False):
        line = left.errorbar(rows.budget, rows["mean gap"], yerr=rows["s.e."], marker="o", capsize=3, label=name)
        full = rows[rows.stopped != "budget"]
        left.scatter(full.budget, full["mean gap"], s=90, facecolors="none", edgecolors=line[0].get_color())
        seeds = table[table.dataset == dataset]
        right.scatter(seeds["phase-1 acc %"], seeds["gap"], s=14, alpha=0.6, color=line[0].get_color(), label=name)
    left.axhline(0, color="grey", linewidth=0.8)
    left.set(xscale="log", xlabel="phase-1 steps allowed (ringed: to zero error or the cap)",
             ylabel="Exp 1 − Exp 2 test acc (points)", title="gap against phase-1 budget")
    right.axhline(0, color="grey", linewidth=0.8)
    right.set(xlabel="phase-1 train acc on the random labels %", ylabel="Exp 1 − Exp 2 (points)",
              title="gap against how far phase 1 got (one point per seed and budget)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def gap_figure(gaps: pd.DataFrame, names: dict[str, str]) -> plt.Figure:
    """The landing page's figure: the test-accuracy gap Exp 1 - Exp 2 (random minus adversarial init, mean over
    seeds with two standard errors) against the width p, one line per data set (experiments.gaps)."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for dataset, rows in gaps.groupby("dataset", sort=False):
        ax.errorbar(rows["width"], rows["mean gap"], yerr=2 * rows["s.e."].fillna(0), marker="o", capsize=3,
                    label=names.get(dataset, dataset))
    ax.axhline(0, color="grey", linewidth=1)
    ax.set(xscale="log", xlabel="width p", ylabel="Exp 1 - Exp 2, test accuracy points")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
