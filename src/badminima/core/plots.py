"""Figures. Plots draw what they are given; they compute no metric."""
from __future__ import annotations

import re
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap

Tensor = torch.Tensor
CLASS_COLOURS = ("#1f77b4", "#d62728")


def extent_of(points: Tensor, pad: float = 1.5) -> tuple[float, float, float, float]:
    lo = points.reshape(-1, 2).min(0).values - pad
    hi = points.reshape(-1, 2).max(0).values + pad
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


@torch.no_grad()
def decision_boundary(ax: plt.Axes, logit_fn: Callable[[Tensor], Tensor], x: Tensor, y: Tensor,
                      extent: tuple[float, float, float, float] | None = None, resolution: int = 300,
                      title: str = "") -> None:
    """Regions of the binary decision over a grid, the boundary as a black line, and the points by class."""
    x0, x1, y0, y1 = extent or extent_of(x)
    gx, gy = torch.meshgrid(torch.linspace(x0, x1, resolution), torch.linspace(y0, y1, resolution), indexing="xy")
    logits = logit_fn(torch.stack([gx.flatten(), gy.flatten()], 1)).reshape(gx.shape).numpy()
    ax.contourf(gx.numpy(), gy.numpy(), (logits > 0).astype(float), levels=[-0.5, 0.5, 1.5],
                cmap=ListedColormap(["#c6dbef", "#fcbba1"]))
    if logits.min() < 0 < logits.max():
        ax.contour(gx.numpy(), gy.numpy(), logits, levels=[0], colors="k", linewidths=1)
    for c, colour in enumerate(CLASS_COLOURS):
        pts = x[y == c].numpy()
        ax.scatter(pts[:, 0], pts[:, 1], s=12, c=colour, edgecolors="white", linewidths=0.4, label=f"class {c}")
    ax.set(xlim=(x0, x1), ylim=(y0, y1), xticks=[], yticks=[], title=title)
    ax.set_aspect("equal")


PER_ROW = 2   # panels per row: at the book's text width two panels keep their axis labels readable


def panel_grid(n: int, width: float, height: float, per_row: int = PER_ROW) -> tuple[plt.Figure, list[plt.Axes]]:
    """A figure of n panels of width x height inches, wrapped into rows of at most `per_row`; the unused places of
    the last row are left blank."""
    cols = min(n, per_row)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[n:]:
        ax.axis("off")
    return fig, flat[:n]


def boundary_grid(panels: list[list[dict]], size: float = 3.2, per_row: int | None = None) -> plt.Figure:
    """A grid of decision-boundary panels; each panel is a dict of decision_boundary's keyword arguments. With
    `per_row`, each row of panels wraps into rows of at most that many."""
    if per_row:
        panels = [row[i:i + per_row] for row in panels for i in range(0, len(row), per_row)]
    rows, cols = len(panels), max(len(r) for r in panels)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for r, row in enumerate(panels):
        for c in range(cols):
            if c < len(row):
                decision_boundary(axes[r][c], **row[c])
            else:
                axes[r][c].axis("off")
    fig.tight_layout()
    return fig


def with_spread(ax: plt.Axes, x: np.ndarray, mean: np.ndarray, low: np.ndarray, high: np.ndarray,
                label: str, **style) -> None:
    """A curve with a shaded band (e.g. mean +- std, or min-max over seeds)."""
    line, = ax.plot(x, mean, label=label, **style)
    ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)


def boundary_animation(frames: Sequence[list[list[dict]]], titles: Sequence[str], size: float = 2.6):
    """A matplotlib animation whose frame i is the panel grid frames[i] (same layout in every frame), titled
    titles[i]; in a notebook, show it with IPython.display.HTML(animation_html(animation))."""
    from matplotlib.animation import FuncAnimation

    rows, cols = len(frames[0]), max(len(r) for r in frames[0])
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows + 0.4), squeeze=False)

    def draw(i: int) -> None:
        for r, row in enumerate(frames[i]):
            for c, panel in enumerate(row):
                axes[r][c].clear()
                decision_boundary(axes[r][c], **panel)
        fig.suptitle(titles[i])

    draw(0)
    fig.tight_layout()
    animation = FuncAnimation(fig, draw, frames=len(frames), interval=1200)
    plt.close(fig)
    return animation


def animation_html(animation) -> str:
    """The animation as HTML with its play/step controls (matplotlib's to_jshtml), minus the stylesheet link to a
    CDN that it carries for the buttons' icons: the book serves the same Font Awesome 4 icons from its own
    _static/ (see _config.yml), so the page works offline."""
    return re.sub(r'<link rel="stylesheet"\s+href="https?://[^"]*font-awesome[^"]*">', "", animation.to_jshtml())
