"""Figures of the chapters beyond both papers. They draw the tables of badminima.beyond and compute no metric."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from badminima.core.plots import panel_grid
from badminima.paper_a import plots as paper_a_plots

COLOURS = {"random": "#1f77b4", "adversarial": "#d62728"}


def seed_bars(table: pd.DataFrame, value: str, ylabel: str, log: bool = False) -> plt.Figure:
    """One panel per recipe: per model, a bar per init (the mean over seeds) with each seed as a dot."""
    modes = list(dict.fromkeys(table["mode"]))
    fig, axes = panel_grid(len(modes), 4.6, 3.4)
    models = list(dict.fromkeys(table["model"]))
    for ax, mode in zip(axes, modes):
        for j, init in enumerate(("random", "adversarial")):
            for i, model in enumerate(models):
                v = table[(table["mode"] == mode) & (table["init"] == init) & (table["model"] == model)][value]
                x = i + (j - 0.5) * 0.38
                ax.bar(x, v.mean(), 0.36, color=COLOURS[init], alpha=0.55, label=f"{init} init" if i == 0 else None)
                ax.scatter(np.full(len(v), x), v, s=10, color=COLOURS[init], zorder=3)
        ax.set(xticks=range(len(models)), xticklabels=models, ylabel=ylabel, title=mode,
               yscale="log" if log else "linear")
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def flip_curves(flips: pd.DataFrame, attack: str, eps_max: float) -> plt.Figure:
    """One panel per model: the share of test images whose prediction an attack flips within each l-infinity
    radius, per init and recipe (all seeds' images together)."""
    models = list(dict.fromkeys(flips["model"]))
    fig, axes = panel_grid(len(models), 4.6, 3.4)
    radii = np.linspace(0, eps_max, 101)
    for ax, model in zip(axes, models):
        for (init, mode), g in flips[(flips["model"] == model) & (flips["attack"] == attack)].groupby(["init", "mode"]):
            e = g["epsilon"].to_numpy()
            share = [(e <= r).mean() * 100 for r in radii]
            ax.plot(radii, share, color=COLOURS[init], ls="-" if mode == "vanilla" else "--", label=f"{init}, {mode}")
        ax.set(title=f"{model}, {attack}", xlabel="l-infinity radius (pixels on [0, 1])",
               ylabel="test images flipped %", ylim=(0, 100))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def layer_distances(layers: pd.DataFrame) -> plt.Figure:
    """One panel per model: each layer's distance from where its run started against its depth, a line per init and
    recipe (mean and range over seeds)."""
    runs = layers.assign(run=layers["init"] + " init, " + layers["mode"])
    return paper_a_plots.panels(runs, "depth", "distance", ["run"], xlabel="layer (input to output)")


def start_bars(table: pd.DataFrame, by: str, cost: str, cost_label: str) -> plt.Figure:
    """One panel per value of `by`: for each start (random init, adversarial init, each repair) a bar of the mean
    test accuracy over seeds, each seed a dot, and the mean cost of the runs that fitted beside the start's name."""
    groups = list(dict.fromkeys(table[by]))
    starts = list(dict.fromkeys(table["start"]))
    fig, axes = panel_grid(len(groups), 5.2, 0.42 * len(starts) + 1.2, per_row=1)
    for ax, group in zip(axes, groups):
        part = table[table[by] == group]
        labels = []
        for i, start in enumerate(starts):
            rows = part[part["start"] == start]
            colour = {"random init": COLOURS["random"], "adversarial init": COLOURS["adversarial"]}.get(start, "#777777")
            ax.barh(i, rows["test acc %"].mean(), color=colour, alpha=0.55)
            ax.scatter(rows["test acc %"], np.full(len(rows), i), s=10, color=colour, zorder=3)
            spent = rows[cost].dropna()
            labels.append(f"{start}: {spent.mean():,.0f}" if len(spent) else f"{start}: none fitted")
        ax.set(yticks=range(len(starts)), yticklabels=labels, xlabel="test accuracy %",
               title=f"{group} (after each start: mean {cost_label})")
        ax.invert_yaxis()
        ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig
