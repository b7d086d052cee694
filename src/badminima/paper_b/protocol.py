"""Paper B's protocol, defined once: the width-sweep configuration, its data sets (one row each in REGISTRY, from
which every list of them is read), and the scales its chapters run at (the sweeps of Experiments 1-3, and the
phase-1 budgets of the chapter beyond the paper). The chapters and the "Does it reproduce?" page build their
configurations here; runs.py runs them."""
from __future__ import annotations

import math
from dataclasses import dataclass

from badminima.core.config import ParameterError, check_choice, check_range, check_seeds, scaled
from badminima.core.data import images


@dataclass(frozen=True)
class DataSet:
    """One data set of Paper B. Its row lives here, not in datasets.py, because the protocol owns the facts the
    configurations are checked against (which data sets exist, Figure 2's sets, the default sweep) and datasets.py
    builds on the protocol, not the other way round."""
    name: str                   # as the chapters print it
    kind: str | None            # its distribution in core/data/toy.py; None: the vectorized images
    fixed: dict[str, float]     # the distribution's options this data set fixes
    tunable: dict[str, str]     # the distribution's option -> the WidthsConfig field that sets it
    # The groups of data sets the chapters' figures read: "sweep" is the widths chapter's default sweep, shown in
    # its figures of every data set (phase 1's curves, Figure 3, the norm hypothesis); "figure 1", "figure 4" and
    # "figure 5" are its panels of the paper's figures, "figure 2" and "figure 6" the boundaries chapter's (Figure 6
    # compares draws of its one data set).
    groups: tuple[str, ...]


REGISTRY = {
    "gaussians": DataSet("Gaussians", "gaussians", {}, {"mu": "mu"}, ("sweep", "figure 1", "figure 2")),
    "circles": DataSet("concentric circles", "circles", {}, {"noise": "circle_noise"},
                       ("sweep", "figure 2", "figure 4")),
    "spirals": DataSet("spirals (t ≤ 10)", "spirals", {"t_max": 10.0}, {"jitter": "spiral_jitter"},
                       ("sweep", "figure 1", "figure 2", "figure 5")),
    "spirals_2pi": DataSet("spirals (t ≤ 2π)", "spirals", {"t_max": 2 * math.pi}, {"jitter": "spiral_jitter"},
                           ("figure 6",)),
    "vmnist": DataSet("vectorized MNIST", None, {}, {}, ("sweep", "figure 1")),
}
IMAGE_SOURCES = ("auto", "mnist", "fashion_mnist")


def group(name: str) -> tuple[str, ...]:
    """The data sets of a figure group, in the registry's order (the order of the figures' panels)."""
    return tuple(d for d, row in REGISTRY.items() if name in row.groups)


TOY = tuple(d for d, row in REGISTRY.items() if row.kind is not None)   # the 2-D sets, drawn from seeds
BOUNDARY_DATASETS = group("figure 2")
FIGURE6_DATASETS = group("figure 6")
FIXED_DRAW = 0   # the data seed of Figure 6b's one draw, unless the chapter's `fixed_draw` says otherwise

# The experiments the figures compare: the paper's three (Figures 1-5), and the norm hypothesis's against the two
# inits it sits between.
EXPERIMENTS = ("Exp 1", "Exp 2", "Exp 3")
NORM_EXPERIMENTS = ("Exp 1", "Exp 2", "Norm")


@dataclass(frozen=True)
class WidthsConfig:
    datasets: tuple[str, ...] = group("sweep")
    widths: tuple[int, ...] = (10, 50, 100, 500)        # hidden units p, 2-D data sets
    image_widths: tuple[int, ...] = (10, 50, 100, 500)  # hidden units p, vectorized MNIST
    boundary_width: int = 500                           # Figure 2's width
    seeds: tuple[int, ...] = tuple(range(10))
    n_train: int = 100
    n_test: int = 1000
    lr: float = 0.01
    max_steps: int = 1_000_000     # cap per phase on the 2-D sets (full batch: one step per epoch)
    data_seed: int | None = None   # None: seed s draws its own data; an int: this one draw for every seed (Fig. 6b)
    mu: float = 2.5                # Gaussians' means are -+[mu, mu]
    circle_noise: float = 0.5      # std of the Gaussian noise added to the circles' radii
    spiral_jitter: float = 0.9     # spirals: each coordinate plus uniform noise on [0, jitter * t)
    image_source: str = "auto"     # "auto": MNIST when its files are in the data folder, else Fashion-MNIST
    image_train: int = 128
    image_test: int = 1000
    image_lr: float = 0.1
    image_batch: int = 32
    image_max_epochs: int = 500    # cap per phase on vectorized MNIST

    def __post_init__(self) -> None:
        check_seeds(self.seeds)
        if isinstance(self.datasets, str) or not isinstance(self.datasets, tuple) or not self.datasets:
            raise ParameterError(f"datasets={self.datasets!r} must be a non-empty list of data sets; choose from "
                                 f"{', '.join(map(repr, REGISTRY))}")
        for name in self.datasets:
            check_choice("dataset", name, REGISTRY)
        for name in ("widths", "image_widths"):
            widths = getattr(self, name)
            if not isinstance(widths, tuple) or not widths or not all(
                    isinstance(p, int) and not isinstance(p, bool) and p > 0 for p in widths):
                raise ParameterError(f"{name}={widths!r} must be a non-empty list of positive integers")
        for name in ("boundary_width", "n_train", "n_test", "max_steps", "image_train", "image_test",
                     "image_batch", "image_max_epochs"):
            check_range(name, getattr(self, name), 1, integer=True)
        for name in ("lr", "image_lr"):
            check_range(name, getattr(self, name), 0, open_low=True)
        for name in ("mu", "circle_noise", "spiral_jitter"):
            check_range(name, getattr(self, name), 0)
        if self.data_seed is not None:
            check_range("data_seed", self.data_seed, 0, integer=True)
        check_choice("image_source", self.image_source, IMAGE_SOURCES)
        if self.image_source == "auto":  # the key of a stored run must name the data that produced it
            object.__setattr__(self, "image_source", "mnist" if images.mnist_present() else "fashion_mnist")


# `cpu` is the paper's setting on n = 100 points: every phase to zero training error or 1,000,000 steps, 10 seeds.
# Why a million steps: at 300,000, phase 1 fitted its random labels in 0 of 40 runs on Gaussians, 12 of 40 on
# circles and 2 of 40 on spirals. A pilot of phase 1 alone at 1,000,000 (scripts/pilot_fit.py b, seeds 0-9,
# one thread while other work ran) fitted circles in 7 of 10 at p = 100 and 9 of 10 at p = 500 (median 258,049 and
# 216,692 steps), spirals in 9 of 10 at p = 100 and 7 of 10 at p = 500 (median 636,884 and 331,525), Gaussians in
# 0 of 10 at p = 100 (84-99%) and 5 of 10 at p = 500 (median 730,016); each data set and width took 15-130 s. p = 10
# fitted none anywhere (59-79%).
SCALES = {
    "smoke": dict(seeds=(0, 1), widths=(4, 16), image_widths=(8,), boundary_width=16, max_steps=30, n_test=200,
                  image_test=100, image_max_epochs=3),
    "cpu": dict(),
    "paper": dict(widths=(10, 20, 50, 100, 200, 500, 1000, 2000), image_widths=(10, 20, 50, 100, 200, 500, 1000, 2000),
                  n_test=10_000, image_test=10_000, image_max_epochs=10_000),
}


def config_for(scale: str, **overrides) -> WidthsConfig:
    """The scale's defaults with the given overrides (None means: keep the default)."""
    return scaled(WidthsConfig, SCALES, scale, overrides, "the width sweeps")


@dataclass(frozen=True)
class BudgetConfig:
    """Beyond the paper: Exp 2 from a phase 1 stopped after each of `budgets` steps (or at zero training error
    when that comes first), beside the sweep's own runs (phase 1 to zero error or the cap)."""
    sweep: WidthsConfig               # its data sets (2-D), its one width, seeds, cap and test set
    budgets: tuple[int, ...]


# The widths chapter's runs at one width (they are reused, not trained again), and phase 1 stopped early.
BUDGET_SCALES = {
    "smoke": dict(sweep=dict(datasets=("circles",), widths=(16,), seeds=(0, 1), max_steps=300, n_test=200),
                  budgets=(10, 100)),
    "cpu": dict(sweep=dict(datasets=BOUNDARY_DATASETS, widths=(100,)), budgets=(1000, 10_000, 100_000)),
    "paper": dict(sweep=dict(datasets=BOUNDARY_DATASETS, widths=(500,), n_test=10_000),
                  budgets=(1000, 10_000, 100_000)),
}


def budget_config_for(scale: str, datasets: tuple[str, ...] | None = None, width: int | None = None,
                      budgets: tuple[int, ...] | None = None, **overrides) -> BudgetConfig:
    """The phase-1 budgets chapter's configuration: 2-D data sets, one width, budgets below the cap."""
    check_choice("scale", scale, tuple(BUDGET_SCALES))
    defaults = BUDGET_SCALES[scale]
    if width is not None:
        check_range("width", width, 1, integer=True)
    given = {k: v for k, v in overrides.items() if v is not None}
    sweep = config_for(scale, **{**defaults["sweep"], **given, "datasets": datasets or defaults["sweep"]["datasets"],
                                 "widths": (width,) if width else defaults["sweep"]["widths"]})
    for name in sweep.datasets:   # the sweep checked the list; the budgets need steps, so 2-D sets only
        check_choice("dataset", name, TOY)
    budgets = defaults["budgets"] if budgets is None else budgets
    if not isinstance(budgets, (tuple, list)) or not budgets or not all(
            isinstance(b, int) and not isinstance(b, bool) and 0 < b < sweep.max_steps for b in budgets):
        raise ParameterError(f"budgets={budgets!r} must be a non-empty list of step counts in [1, max_steps = "
                             f"{sweep.max_steps})")
    return BudgetConfig(sweep, tuple(sorted(set(budgets))))
