"""Paper A's image figures. They draw the per-seed tables of badminima.paper_a.experiments (mean line, min-max band over
seeds, as the paper reports min, max and mean) and compute no metric."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from badminima.core.plots import panel_grid, with_spread


def lines(ax: plt.Axes, table: pd.DataFrame, x: str, y: str, hue: list[str]) -> None:
    """One curve per combination of the `hue` columns: the mean of `y` over seeds against `x`, with its range."""
    for key, group in table.dropna(subset=[y]).groupby(hue):
        stats = group.groupby(x)[y].agg(["mean", "min", "max"]).reset_index()
        label = ", ".join(map(str, key if isinstance(key, tuple) else (key,)))
        with_spread(ax, stats[x].to_numpy(), stats["mean"].to_numpy(), stats["min"].to_numpy(),
                    stats["max"].to_numpy(), label, marker="." if len(stats) < 12 else None)


def panels(table: pd.DataFrame, x: str, y: str, hue: list[str], by: str = "model", xlabel: str | None = None,
           logx: bool = False) -> plt.Figure:
    """One panel per value of `by`, each with `lines`."""
    keys = list(dict.fromkeys(table[by]))
    fig, axes = panel_grid(len(keys), 4.6, 3.6)
    for ax, key in zip(axes, keys):
        lines(ax, table[table[by] == key], x, y, hue)
        ax.set(title=f"{by} = {key}", xlabel=xlabel or x, ylabel=y, xscale="log" if logx else "linear")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def one_run(curves: pd.DataFrame, model: str, mode: str, seed: int) -> plt.Figure:
    """One seed's training and test accuracy per epoch from both inits (experiments.curves' rows), side by side."""
    one = curves[(curves["model"] == model) & (curves["mode"] == mode) & (curves["seed"] == seed)]
    fig, axes = panel_grid(2, 4.6, 3.6)
    for ax, y in zip(axes, ("train acc %", "test acc %")):
        lines(ax, one, "epoch", y, ["init"])
        ax.set(title=f"{model}, {mode}, seed {seed}", xlabel="epoch", ylabel=y)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _bar_panel(ax: plt.Axes, table: pd.DataFrame, value: str, group: list[str], by: str) -> None:
    stats = table.groupby([by] + group, sort=False)[value].agg(["mean", "min", "max"]).unstack(group)
    errors = np.stack([(stats["mean"] - stats["min"]).T.values, (stats["max"] - stats["mean"]).T.values], 1)
    stats["mean"].plot.bar(ax=ax, yerr=errors, rot=0, legend=False)


def bars(table: pd.DataFrame, values: list[str], group: list[str], by: str = "model",
         log: tuple[str, ...] = ()) -> plt.Figure:
    """One panel per value column: the mean over seeds per `by` and `group`, with min-max error bars; the columns
    in `log` on a log axis (path norms of different models lie orders of magnitude apart)."""
    fig, axes = panel_grid(len(values), 4.6, 3.6)
    for ax, value in zip(axes, values):
        _bar_panel(ax, table, value, group, by)
        ax.set(title=value, ylabel=value, yscale="log" if value in log else "linear")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def headline(runs: pd.DataFrame) -> plt.Figure:
    """The landing page's figure: test accuracy per model from the random and the adversarial init, one panel per
    recipe (mean over seeds, min-max bars), from experiments.runs_table."""
    modes = list(dict.fromkeys(runs["mode"]))
    fig, axes = panel_grid(len(modes), 4.6, 3.4)
    for ax, mode in zip(axes, modes):
        _bar_panel(ax, runs[runs["mode"] == mode], "test acc %", ["init"], "model")
        ax.set(title=f"{mode} SGD", ylabel="test accuracy %", xlabel="")
    axes[0].legend(title="init", fontsize=8)
    fig.tight_layout()
    return fig
