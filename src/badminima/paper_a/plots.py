"""Paper A's image figures. They draw the per-seed tables of badminima.paper_a.experiments (mean line, min-max band over
seeds, as the paper reports min, max and mean) and compute no metric."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from badminima.core.plots import with_spread


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
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        lines(ax, table[table[by] == key], x, y, hue)
        ax.set(title=f"{by} = {key}", xlabel=xlabel or x, ylabel=y, xscale="log" if logx else "linear")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def bars(table: pd.DataFrame, values: list[str], group: list[str], by: str = "model") -> plt.Figure:
    """One panel per value column: the mean over seeds per `by` and `group`, with min-max error bars."""
    fig, axes = plt.subplots(1, len(values), figsize=(4.2 * len(values), 3.4), squeeze=False)
    for ax, value in zip(axes[0], values):
        stats = table.groupby([by] + group)[value].agg(["mean", "min", "max"]).unstack(group)
        errors = np.stack([(stats["mean"] - stats["min"]).T.values, (stats["max"] - stats["mean"]).T.values], 1)
        stats["mean"].plot.bar(ax=ax, yerr=errors, rot=0, legend=False)
        ax.set(title=value, ylabel=value)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig
