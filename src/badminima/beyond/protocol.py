"""The one definition of the chapters beyond both papers: what they measure, on which of the other chapters' runs,
at each scale. Each configuration holds the protocols of those runs, resolved once at its scale."""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from badminima.core import convnets
from badminima.core.config import ParameterError, check_choice, check_range, check_seeds, scaled
from badminima.paper_a import protocol as paper_a_protocol
from badminima.paper_b import protocol as paper_b_protocol

# The 2-D sets of Paper B's sweep: their runs are the widths chapter's, and in 2-D a point's distance to the decision
# boundary is exact.
NET_DATASETS = tuple(d for d in paper_b_protocol.group("sweep") if d in paper_b_protocol.TOY)


def _check_lists(models: tuple[str, ...], datasets: tuple[str, ...]) -> None:
    paper_a_protocol.check_models("models", models)
    if not datasets or not isinstance(datasets, tuple):
        raise ParameterError(f"datasets={datasets!r} must be a non-empty list of data sets")
    for d in datasets:
        check_choice("datasets", d, NET_DATASETS)


def _resolve(cfg: MinimaConfig | RepairsConfig) -> None:
    """Set cfg.paper_a and cfg.paper_b, the protocols of the runs a chapter reads, at its scale: every step then
    reads the runs the other chapters stored, without resolving the scale again."""
    object.__setattr__(cfg, "paper_a", paper_a_protocol.config_for(cfg.scale, models=cfg.models, seeds=cfg.seeds))
    object.__setattr__(cfg, "paper_b", paper_b_protocol.config_for(cfg.scale, datasets=cfg.datasets))


@dataclass(frozen=True)
class MinimaConfig:
    scale: str                                         # the scale the measured runs were trained at
    models: tuple[str, ...] = ("vgg16", "resnet18")   # Paper A's models measured (their runs: the training chapter's)
    seeds: tuple[int, ...] = (0, 1, 2)                 # Paper A's seeds measured
    datasets: tuple[str, ...] = NET_DATASETS          # Paper B's data sets measured, at every width of its sweep
    net_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)       # Paper B's seeds measured (of the sweep's)
    hessian_tol: float = 1e-3       # power iteration stops when the eigenvalue changes by less (relative)
    hessian_cap: int = 30           # ... or after this many Hessian-vector products
    hutchinson: int = 8             # Rademacher vectors for the trace
    path_points: int = 11           # points on the straight line between two minima, ends included
    margin_size: int = 100          # test images whose flipping perturbation is found
    eps_max: float = 0.1            # largest l-infinity perturbation tried (pixel units on [0, 1])
    pgd_steps: int = 5              # steps of the PGD attack (FGSM: one)
    bisections: int = 8             # halvings of the perturbation interval
    # Resolved from the fields above (so left out of equality and hashing): Paper A's protocol for the measured
    # models and seeds (the training chapter's runs), Paper B's on the measured data sets (the widths chapter's)
    paper_a: paper_a_protocol.PaperAConfig = field(init=False, compare=False)
    paper_b: paper_b_protocol.WidthsConfig = field(init=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("seeds", "net_seeds"):
            check_seeds(getattr(self, name))
        _check_lists(self.models, self.datasets)
        for name in ("hessian_cap", "hutchinson", "margin_size", "pgd_steps", "bisections"):
            check_range(name, getattr(self, name), 1, integer=True)
        check_range("path_points", self.path_points, 2, integer=True)
        check_range("hessian_tol", self.hessian_tol, 0, open_low=True)
        check_range("eps_max", self.eps_max, 0, 1, open_low=True)
        _resolve(self)

    def settings(self, *names: str) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in names}


SCALES = {
    "smoke": dict(models=("resnet18",), seeds=(0,), datasets=("circles",), net_seeds=(0, 1), hessian_cap=4,
                  hutchinson=2, path_points=3, margin_size=8, bisections=3, pgd_steps=2),
    "cpu": dict(),
    "paper": dict(models=convnets.NAMES, seeds=(0, 1, 2, 3, 4), net_seeds=tuple(range(10)),
                  margin_size=1000),
}


def config_for(scale: str, **overrides) -> MinimaConfig:
    """The scale's defaults with the given overrides (None means: keep the default)."""
    return scaled(MinimaConfig, SCALES, scale, {**overrides, "scale": scale}, "the minima chapter")


@dataclass(frozen=True)
class RepairsConfig:
    scale: str                                           # the scale the runs beside the repairs were trained at
    models: tuple[str, ...] = ("vgg16", "resnet18")     # Paper A's models (their adversarial inits: the training
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)             # chapter's), and the seeds
    datasets: tuple[str, ...] = ("circles", "spirals")  # Paper B's 2-D sets
    width: int = 100                                   # Paper B's width
    shrinks: tuple[float, ...] = (0.3, 0.6)            # shrink and perturb: every pair of these
    perturbs: tuple[float, ...] = (0.0, 0.3)
    warm_epochs: int = 3                               # Paper A: epochs at warm_lr before the vanilla recipe
    warm_lr: float = 0.1
    warm_steps: int = 1000                             # Paper B: full-batch steps at net_warm_lr before phase 2
    net_warm_lr: float = 0.1
    tolerance: float = 2.0          # Paper A: a repair "recovers" the random init's test accuracy within these points
    net_tolerance: float = 1.0      # Paper B: the same, of Exp 1's
    # Resolved from the fields above, as MinimaConfig's: Paper A's runs (the training chapter's), Paper B's (the
    # widths chapter's)
    paper_a: paper_a_protocol.PaperAConfig = field(init=False, compare=False)
    paper_b: paper_b_protocol.WidthsConfig = field(init=False, compare=False)

    def __post_init__(self) -> None:
        check_seeds(self.seeds)
        _check_lists(self.models, self.datasets)
        for name in ("shrinks", "perturbs"):
            values = getattr(self, name)
            if not isinstance(values, tuple) or not values or not all(isinstance(v, (int, float)) and v >= 0
                                                                       for v in values):
                raise ParameterError(f"{name}={values!r} must be a non-empty list of numbers >= 0")
        for name in ("width", "warm_epochs", "warm_steps"):
            check_range(name, getattr(self, name), 1, integer=True)
        for name in ("warm_lr", "net_warm_lr", "tolerance", "net_tolerance"):
            check_range(name, getattr(self, name), 0, open_low=True)
        _resolve(self)


REPAIR_SCALES = {
    "smoke": dict(models=("resnet18",), seeds=(0,), datasets=("circles",), width=4, shrinks=(0.5,), perturbs=(0.1,),
                  warm_epochs=1, warm_steps=10),
    "cpu": dict(),
    "paper": dict(models=tuple(convnets.NAMES), width=500, shrinks=(0.2, 0.4, 0.6, 0.8), perturbs=(0.0, 0.01, 0.1, 0.3)),
}


def repairs_config_for(scale: str, **overrides) -> RepairsConfig:
    """The scale's defaults with the given overrides (None means: keep the default)."""
    return scaled(RepairsConfig, REPAIR_SCALES, scale, {**overrides, "scale": scale}, "the repairs chapter")
