"""Paper B's data sets as its runs see them: the built-in 2-D sets and vectorized MNIST of a configuration
(`problem_of`), each a `Problem`: its data, how every phase trains, its seeds and what names it in the key of every
stored run. Apart from the runs so that the runs, the chapters' tables and a user's arrays (badminima.paper_b.byo)
share one definition of what a run trains on."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from badminima.core.config import check_choice
from badminima.core.data import images, toy
from badminima.paper_b import protocol
from badminima.core.train import TrainConfig

Tensor = torch.Tensor

def dataset_name(cfg: protocol.WidthsConfig, dataset: str) -> str:
    if dataset == "vmnist" and cfg.image_source == "fashion_mnist":
        return "vectorized Fashion-MNIST"
    return protocol.REGISTRY[dataset].name


def widths_of(cfg: protocol.WidthsConfig, dataset: str) -> tuple[int, ...]:
    return cfg.image_widths if dataset == "vmnist" else cfg.widths


def names_of(cfg: protocol.WidthsConfig) -> dict[str, str]:
    """Each data set of `cfg` by the name the chapters print."""
    return {d: dataset_name(cfg, d) for d in cfg.datasets}


def in_group(cfg: protocol.WidthsConfig, group: str) -> list[tuple[str, str]]:
    """The data sets of `cfg` in a figure group (protocol.DataSet.groups), each with its name: a figure's panels."""
    return [(d, dataset_name(cfg, d)) for d in protocol.group(group) if d in cfg.datasets]


@dataclass(eq=False)
class Data:
    x: Tensor        # (seeds or 1, n, d) float32: one draw per seed, or one shared draw
    y: Tensor        # (seeds or 1, n) int64 labels 0 .. classes-1
    x_test: Tensor
    y_test: Tensor
    classes: int


@dataclass(eq=False)
class Problem:
    """One data set as the runs see it: its data, how every phase trains, its seeds, and what identifies it in the
    key of each stored run. The built-in data sets (`problem_of`) and a user's arrays (badminima.paper_b.byo) run
    through the same functions with one of these."""
    dataset: str             # the tables' "dataset" column
    name: str                # the tables' "name" column
    data: Data
    train: TrainConfig
    seeds: tuple[int, ...]
    key: dict                # what names the data in every run's key
    fingerprint: dict | None = None   # checked against a stored run's: for data the key names by source only

    @property
    def cap(self) -> int:
        """The most steps a phase can take."""
        n, batch = self.data.x.shape[1], self.train.batch_size
        return self.train.max_epochs * (math.ceil(n / batch) if batch else 1)

    def sizes(self, width: int) -> tuple[int, int, int]:
        """The net's layer sizes: one logit (logistic loss) for two classes, else one per class (cross-entropy)."""
        return self.data.x.shape[-1], width, 1 if self.data.classes == 2 else self.data.classes


def _toy_options(cfg: protocol.WidthsConfig, dataset: str) -> dict:
    row = protocol.REGISTRY[dataset]
    return {**row.fixed, **{option: getattr(cfg, field) for option, field in row.tunable.items()}}


def _data_key(cfg: protocol.WidthsConfig, dataset: str) -> dict:
    if dataset == "vmnist":
        return {"source": cfg.image_source, "train": cfg.image_train, "test": cfg.image_test}
    return {"n_train": cfg.n_train, "n_test": cfg.n_test, "data_seed": cfg.data_seed,
            "options": _toy_options(cfg, dataset)}


@functools.lru_cache(maxsize=8)
def load_data(cfg: protocol.WidthsConfig, dataset: str) -> Data:
    """The data set's training and test sets, as every run of `cfg` on it sees them."""
    if dataset == "vmnist":
        return _image_data(cfg)
    seeds = (cfg.data_seed,) if cfg.data_seed is not None else cfg.seeds
    draws = [toy.draw(protocol.REGISTRY[dataset].kind, cfg.n_train, cfg.n_test, s, **_toy_options(cfg, dataset))
             for s in seeds]
    stack = lambda i, j: torch.stack([d[i][j] for d in draws])
    return Data(stack(0, 0), stack(0, 1), stack(1, 0), stack(1, 1), 2)


def _image_data(cfg: protocol.WidthsConfig) -> Data:
    # The first images of each split: the same 128 training images in every run, as in the paper.
    data = images.load(cfg.image_source)
    flat = lambda x, k: x[:k].flatten(1).float()[None] / 255
    return Data(flat(data.x_train, cfg.image_train), data.y_train[None, :cfg.image_train],
                flat(data.x_test, cfg.image_test), data.y_test[None, :cfg.image_test], data.classes)


def problem_of(cfg: protocol.WidthsConfig, dataset: str) -> Problem:
    """A built-in data set of `cfg` as its runs see it."""
    check_choice("dataset", dataset, protocol.REGISTRY)
    if dataset == "vmnist":
        train = TrainConfig(lr=cfg.image_lr, batch_size=cfg.image_batch, max_epochs=cfg.image_max_epochs)
        # The key names the image source, not its pixels: a run is checked against the files it read.
        fingerprint = images.fingerprint(cfg.image_source)
    else:   # drawn from seeds, which the key holds
        train, fingerprint = TrainConfig(lr=cfg.lr, batch_size=None, max_epochs=cfg.max_steps), None
    return Problem(dataset, dataset_name(cfg, dataset), load_data(cfg, dataset), train, cfg.seeds,
                   {"dataset": dataset, "data": _data_key(cfg, dataset)}, fingerprint)
