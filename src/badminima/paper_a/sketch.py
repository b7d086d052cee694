"""Paper A, Figure 1: the four settings of the 2-D sketch, each trained over all seeds as one batched model."""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import pandas as pd
import torch

from badminima.core.jobs import Job
from badminima.core.data.labels import random_labels
from badminima.core.config import ParameterError, check_range, check_seeds, scaled
from badminima.core.data.toy import draw, noisy_copies
from badminima.core.metrics import accuracy, distance, margin
from badminima.core.models import MLP, member_logits, member_params
from badminima.core.plots import extent_of
from badminima.core.store import Store
from badminima.core.train import Run, TrainConfig, train


@dataclass(frozen=True)
class SketchConfig:
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    n_per_class: int = 50
    n_test: int = 1000
    separation: float = 6.0         # distance between the two unit-variance Gaussian centres
    hidden: tuple[int, ...] = (100, 100)
    batch_size: int = 10
    lr: float = 0.01                # SGD on the true labels (settings 1, 3, 4)
    lr_random_labels: float = 0.05  # SGD on random labels (setting 2)
    max_epochs: int = 20000         # cap per setting; a run that hits it is reported as such
    momentum: float = 0.9           # setting 4 only
    weight_decay: float = 0.1       # setting 4 only
    noise: float = 0.5              # setting 4's augmentation: std of the noise added to each of 2 copies

    def __post_init__(self) -> None:
        check_seeds(self.seeds)
        for name in ("n_per_class", "n_test", "batch_size", "max_epochs"):
            check_range(name, getattr(self, name), 1, integer=True)
        for name in ("lr", "lr_random_labels"):
            check_range(name, getattr(self, name), 0, open_low=True)
        for name in ("separation", "weight_decay", "noise"):
            check_range(name, getattr(self, name), 0)
        check_range("momentum", self.momentum, 0, 0.999)
        if not isinstance(self.hidden, tuple) or not self.hidden or not all(
                isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in self.hidden):
            raise ParameterError(f"hidden={self.hidden!r} must be a non-empty list of positive layer widths")


SCALES = {
    "smoke": dict(seeds=(0, 1), max_epochs=30, hidden=(16, 16), n_test=200),
    "cpu": dict(),
    "paper": dict(seeds=tuple(range(10)), max_epochs=100000),
}

SETTINGS = {
    1: "true labels, random init",
    2: "random labels, random init",
    3: "true labels, init at setting 2",
    4: "as 3 + augmentation, l2, momentum",
}


def config_for(scale: str, **overrides) -> SketchConfig:
    """The scale's defaults with the given overrides (None means: keep the default)."""
    return scaled(SketchConfig, SCALES, scale, overrides, "the sketch")


@dataclass
class Setting:
    model: MLP
    init: torch.Tensor     # (members, P) parameters the setting started from
    run: Run
    labels: torch.Tensor   # (members, n) labels it was trained on


@dataclass
class Sketch:
    config: SketchConfig
    x: torch.Tensor        # (members, n, 2) training points
    y: torch.Tensor        # (members, n) true labels
    x_test: torch.Tensor
    y_test: torch.Tensor
    settings: dict[int, Setting]


def _data(cfg: SketchConfig):
    draws = [draw("two_gaussians", 2 * cfg.n_per_class, cfg.n_test, s, separation=cfg.separation)
             for s in cfg.seeds]
    stack = lambda i, j: torch.stack([d[i][j] for d in draws])
    return stack(0, 0), stack(0, 1), stack(1, 0), stack(1, 1)


def _train_setting(store: Store, key: dict, init: MLP, train_set, tcfg: TrainConfig, fit_set, test_set,
                   seeds) -> tuple[MLP, Run]:
    def run(workdir):
        model = MLP(init.sizes, init.seeds)
        model.load_state_dict(init.state_dict())
        # float32 on every device: these nets are too small for bf16 to gain time, and the margins are small.
        result = train(model, train_set, tcfg, seeds, fit_set=fit_set, test_set=test_set,
                       checkpoint=workdir / "train.ckpt", checkpoint_every=500, amp=False)
        return result.as_dict(), model.state_dict()

    stored = store.load_or_run("sketch", key, run)
    model = MLP(init.sizes, init.seeds)
    model.load_state_dict(stored.weights)
    return model, Run.from_dict(stored.metrics)


def _train_configs(cfg: SketchConfig) -> tuple[TrainConfig, TrainConfig, TrainConfig]:
    """Settings 1 and 3 (plain SGD), 2 (random labels), 4 (momentum, weight decay)."""
    vanilla = TrainConfig(lr=cfg.lr, batch_size=cfg.batch_size, max_epochs=cfg.max_epochs, eval_every=100)
    return (vanilla, dataclasses.replace(vanilla, lr=cfg.lr_random_labels),
            dataclasses.replace(vanilla, momentum=cfg.momentum, weight_decay=cfg.weight_decay))


def _keys(cfg: SketchConfig) -> list[dict]:
    """The store keys of the four settings."""
    data_key = {k: getattr(cfg, k) for k in ("seeds", "n_per_class", "n_test", "separation", "hidden",
                                              "batch_size", "max_epochs")}
    vanilla, random_cfg, regular = _train_configs(cfg)
    key2 = {"setting": 2, **data_key, "train": random_cfg}
    return [{"setting": 1, **data_key, "train": vanilla}, key2, {"setting": 3, "start": key2, "train": vanilla},
            {"setting": 4, "start": key2, "train": regular, "noise": cfg.noise}]


def jobs(cfg: SketchConfig) -> list[Job]:
    """The sketch's work: one job, its four settings trained in turn (each starts from the one before)."""
    return [Job(functools.partial(run_sketch, cfg), tuple(("sketch", k) for k in _keys(cfg)),
                     label="the sketch's four settings", gpus=0.25)]


def run_sketch(cfg: SketchConfig, store: Store | None = None) -> Sketch:
    """Train (or load) the four settings for every seed."""
    store = store or Store()
    x, y, x_test, y_test = _data(cfg)
    seeds = list(cfg.seeds)
    sizes = (2, *cfg.hidden, 1)
    init = MLP(sizes, seeds)
    y_random = torch.stack([random_labels(y.shape[1], 2, 10_000 + s) for s in seeds])
    test = (x_test, y_test)
    (key1, key2, key3, key4), (vanilla, random_cfg, regular) = _keys(cfg), _train_configs(cfg)

    m1, r1 = _train_setting(store, key1, init, (x, y), vanilla, None, test, seeds)
    m2, r2 = _train_setting(store, key2, init, (x, y_random), random_cfg, None, test, seeds)
    m3, r3 = _train_setting(store, key3, m2, (x, y), vanilla, None, test, seeds)
    noisy = noisy_copies(x, y, 2, cfg.noise, torch.Generator().manual_seed(20_000 + seeds[0]))
    m4, r4 = _train_setting(store, key4, m2, noisy, regular, (x, y), test, seeds)
    start = member_params(init)
    adv = member_params(m2)
    settings = {1: Setting(m1, start, r1, y), 2: Setting(m2, start, r2, y_random),
                3: Setting(m3, adv, r3, y), 4: Setting(m4, adv, r4, y)}
    return Sketch(cfg, x, y, x_test, y_test, settings)


def sketch_table(sketch: Sketch) -> pd.DataFrame:
    """One row per setting and seed: accuracies, margin, distance travelled, epochs to 100%, and whether the run hit
    its cap or diverged (its loss became non-finite: it stopped there, not fitted, not at the cap)."""
    rows = []
    for s, setting in sketch.settings.items():
        train_acc = accuracy(setting.model, sketch.x, setting.labels)
        test_acc = accuracy(setting.model, sketch.x_test, sketch.y_test)
        moved = distance(setting.init, member_params(setting.model))
        for m, seed in enumerate(sketch.config.seeds):
            rows.append({
                "setting": s, "description": SETTINGS[s], "seed": seed,
                "train acc %": 100 * float(train_acc[m]), "test acc %": 100 * float(test_acc[m]),
                "margin": float(margin(member_logits(setting.model, m), sketch.x[m]).min()),
                "distance from init": float(moved[m]),
                "epochs to 100%": setting.run.fit_epoch[m] if setting.run.fitted[m] else None,
                "hit cap": setting.run.fit_epoch[m] is None and not setting.run.diverged[m],
                "diverged": setting.run.diverged[m],
            })
    return pd.DataFrame(rows)


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per setting, and how many seeds hit the epoch cap or diverged."""
    numeric = ["train acc %", "test acc %", "margin", "distance from init", "epochs to 100%"]
    grouped = table.astype({"epochs to 100%": float}).groupby(["setting", "description"])
    out = grouped[numeric].agg(["mean", "std"])
    out[("hit cap", "runs")] = grouped["hit cap"].sum()
    out[("diverged", "runs")] = grouped["diverged"].sum()
    return out.round(3)


def panels(sketch: Sketch, members: list[int]) -> list[list[dict]]:
    """Decision-boundary panels: one row per member (seed), one column per setting."""
    extent = extent_of(sketch.x)
    return [[{"logit_fn": member_logits(s.model, m), "x": sketch.x[m], "y": s.labels[m], "extent": extent,
              "title": f"({'abcd'[i - 1]}) setting {i}, seed {sketch.config.seeds[m]}"}
             for i, s in sketch.settings.items()] for m in members]
