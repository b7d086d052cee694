"""Paper A's experiments with your own network on your own images: `experiments(model_factory, x_train, y_train,
x_test, y_test, seeds)` runs the chapters' main grid (badminima.paper_a.experiments.main_grid) through the same
runs (badminima.paper_a.runs: the same training loop, the same result store) and returns the chapters' tidy table.

Per seed, from the network `model_factory(classes, in_channels)` returns after `torch.manual_seed(seed)` (the
random init):
- phase 1 (Algorithm 1) trains it on R copies of the training images, N % of each copy's values zeroed, with
  random labels drawn from the seed, by plain SGD until 99.99% training accuracy or cfg.phase1_epochs; its weights
  are the adversarial init (trained once per seed, stored);
- phase 2 trains on the true labels from the random init and from the adversarial init, each with the vanilla
  recipe (plain SGD until 100% training accuracy, at most cfg.vanilla_cap epochs) and the SOTA one (random crop
  with a padding of an eighth of the image side, the paper's 4 pixels of 32, at least 1; horizontal flip unless
  `flip=False`; l2 and momentum; cfg.epochs epochs).
Images are scaled to [0, 1] and normalised by x_train's per-channel mean and std, as the built-in sets are.

The returned table carries each run's preconditions (phase 1's accuracy on its random labels and whether it met
Algorithm 1's stopping rule, whether phase 2 fitted its training set, whether it diverged) and its augmentation;
one warning says when any precondition failed, since a gap between runs that did not fit means little.

Each run is stored under a key holding, besides its recipe and seed, a SHA-256 of the four arrays (uint8 images,
int64 labels: their bytes, dtype and shape) and the model's identity: `name` and a SHA-256 of the network's repr
and its state's names and shapes at seed 0. Calling again with the same arrays, name and architecture loads the
results; other arrays, another architecture or another name never does. A change that neither the repr nor the
shapes show (a new `forward`, say) keeps the key: give such a network another name."""
from __future__ import annotations

import dataclasses
import hashlib
import warnings
from typing import Any, Callable, Iterable

import pandas as pd
import torch
from torch import nn

from badminima.core import arrays, convnets
from badminima.core.config import ParameterError, check_seeds
from badminima.core.data import images, transforms
from badminima.core.store import Store
from badminima.paper_a import experiments as grids
from badminima.paper_a import protocol
from badminima.paper_a.runs import DataSpec

Tensor = torch.Tensor
Factory = Callable[[int, int], nn.Module]
_FACTORY = "a function (classes, in_channels) -> a new torch.nn.Module mapping (batch, C, H, W) to logits"


def experiments(model_factory: Factory, x_train: Any, y_train: Any, x_test: Any, y_test: Any, seeds: Iterable[int],
                *, cfg: protocol.PaperAConfig | None = None, name: str = "my model", flip: bool = True,
                store: Store | None = None) -> pd.DataFrame:
    """Paper A's main grid for your network on your images: per seed, vanilla and SOTA from the random and the
    adversarial init.

    model_factory: `model_factory(classes, in_channels)` returns a new network mapping (batch, C, H, W) float
        images to (batch, classes) logits; it is called after `torch.manual_seed(seed)`, so the seed fixes the
        random init (the global random state is restored afterwards).
    x_train, x_test: uint8 images of shape (N, C, H, W), numpy arrays or torch tensors; x_test's (C, H, W) as
        x_train's.
    y_train, y_test: integer labels 0 .. k-1, k >= 2 (every class present in y_train), one per image.
    seeds: the seeds (distinct integers >= 0); each fixes the init, phase 1's set and random labels and the batch
        order.
    cfg: the protocol (default: protocol.config_for("cpu")). Its R, N and whole_pixels (Algorithm 1), phase-1 and
        phase-2 learning rates, epochs and vanilla_cap, lr_drops, l2, momentum, batch_size and eval_every apply.
        Its models, width, per_class, test_size, seeds and the sweeps' fields do not (your factory, all your
        images and `seeds` do); its dataset only picks the paper's lr drops when lr_drops is on.
    name: the table's "model" column, and part of the model's identity in the store.
    flip: whether SOTA's augmentation flips images horizontally (the paper's does; digits and text, say, are not
        symmetric). Its crop's padding is an eighth of the images' shorter side (4 pixels at 32), at least 1.
    store: where results are kept (default: the project's store).

    Returns one row per seed, init ("random", "adversarial") and mode ("vanilla", "SOTA"), with the columns of
    badminima.paper_a.experiments.runs_table (model, seed, init, mode, train acc %, test acc %, epochs, hit cap,
    fitted, diverged, phase-1 acc %, phase-1 fitted, ...) and "augmentation" (the crop and flip, or "none"). A
    warning says in one line when phase 1 missed Algorithm 1's stopping rule, or a run did not fit or diverged.
    badminima.paper_a.experiments.gaps(table, ["model", "mode"]) and spread take it as it is."""
    cells = _grid(model_factory, x_train, y_train, x_test, y_test, seeds, cfg, name, flip)
    table = grids.runs_table(cells, store or Store())
    side = transforms.crop_padding(*images.load(cells[0][1].data.dataset).x_train.shape[-2:])
    table["augmentation"] = [f"crop (padding {side}){' + flip' if run.flip else ''}" if run.augment else "none"
                             for _, run in cells]
    failed = preconditions_failed(table)
    if failed:
        warnings.warn(f"badminima: {failed}", stacklevel=2)
    return table


def preconditions_failed(table: pd.DataFrame) -> str:
    """One line on the runs of a bring-your-own table whose preconditions failed (empty when none did)."""
    parts = []
    phase1 = table[table["phase-1 fitted"].notna()].drop_duplicates("seed")
    short = phase1[~phase1["phase-1 fitted"].astype(bool)]
    if len(short):
        parts.append(f"phase 1 missed Algorithm 1's stopping rule ({100 * protocol.PHASE1_FIT:g}% on its random "
                     f"labels) for {len(short)} of {len(phase1)} seeds (best {short['phase-1 acc %'].min():.1f}%), "
                     f"so their 'adversarial' runs did not start from an adversarial init")
    for mode in table["mode"].unique():
        rows = table[table["mode"] == mode]
        unfit = rows[~rows["fitted"].astype(bool)]
        if len(unfit):
            parts.append(f"{len(unfit)} of {len(rows)} {mode} runs did not fit their training set (lowest "
                         f"{unfit['train acc %'].min():.1f}%)")
    lost = int(table["diverged"].astype(bool).sum())
    if lost:
        parts.append(f"{lost} diverged (non-finite loss)")
    if not parts:
        return ""
    return ("preconditions failed: " + "; ".join(parts)
            + "; the columns 'phase-1 fitted', 'fitted' and 'diverged' say which rows, and a gap between runs that "
              "did not fit says little")


def _grid(model_factory: Any, x_train: Any, y_train: Any, x_test: Any, y_test: Any, seeds: Any, cfg: Any,
          name: Any, flip: Any = True) -> list[grids.Cell]:
    """The main grid's cells on your arrays and network, both registered under names holding their digests, so
    the runs' keys (and phase 1's) tell other data and other architectures apart. Every check comes first."""
    cfg = protocol.config_for("cpu") if cfg is None else cfg
    if not isinstance(cfg, protocol.PaperAConfig):
        raise ParameterError(f"cfg={type(cfg).__name__} is not allowed; allowed: a "
                             f"badminima.paper_a.protocol.PaperAConfig, e.g. protocol.config_for('cpu')")
    if not isinstance(name, str) or not name.strip():
        raise ParameterError(f"name={name!r} is not allowed; allowed: a non-empty string")
    if flip not in (False, True):
        raise ParameterError(f"flip={flip!r} is not allowed; allowed: True or False")
    x, x_test_ = _images("x_train", x_train), _images("x_test", x_test)
    if x_test_.shape[1:] != x.shape[1:]:
        raise ParameterError(f"x_test=array of shape {tuple(x_test_.shape)} does not fit x_train; allowed: images of "
                             f"shape {tuple(x.shape[1:])}, as in x_train")
    _check_channels(x)
    y = arrays.labels("y_train", y_train, len(x), "x_train")
    y_test_ = arrays.labels("y_test", y_test, len(x_test_), "x_test")
    classes = arrays.classes(y, y_test_)
    try:
        seeds = check_seeds(arrays.integers(seeds))
    except ParameterError:
        raise ParameterError(f"seeds={seeds!r} is not allowed; allowed: a non-empty list of distinct non-negative "
                             f"integers") from None
    model_id = f"{name}-{_model_digest(model_factory, classes, x)}"

    dataset = f"arrays-{arrays.digest(x, y, x_test_, y_test_)}"
    images.register_arrays(dataset, x, y, x_test_, y_test_, classes)
    convnets.register(model_id, lambda classes, in_channels, width: model_factory(classes, in_channels))
    spec = DataSpec(dataset)
    # One of cfg's models stands in for yours: only the recipes main_grid builds from cfg are kept.
    own = dataclasses.replace(cfg, models=cfg.models[:1], seeds=seeds)
    # Only an augmented run flips: the others keep the key they have either way.
    return [({**labels, "model": name}, dataclasses.replace(run, data=spec, model=model_id, width=1.0,
                                                            flip=bool(flip) or not run.augment))
            for labels, run in grids.main_grid(own)]


def _model_digest(model_factory: Any, classes: int, x: Tensor) -> str:
    """SHA-256 of the seed-0 network's repr and state names and shapes, once it has been checked to be a network
    that maps two of the images to (2, classes) logits."""
    if not callable(model_factory):
        raise ParameterError(f"model_factory={model_factory!r} is not callable; allowed: {_FACTORY}")
    shown = getattr(model_factory, "__qualname__", type(model_factory).__name__)
    call = f"model_factory({classes}, {x.shape[1]})"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            model = model_factory(classes, x.shape[1])
        except Exception as err:   # the user's code: any failure is a bad argument, said in one line
            raise ParameterError(f"model_factory={shown} raised {type(err).__name__} ({_one_line(err)}) as {call}; "
                                 f"allowed: {_FACTORY}") from err
    if not isinstance(model, nn.Module):
        raise ParameterError(f"model_factory={shown} returned {type(model).__name__} from {call}, not a "
                             f"torch.nn.Module; allowed: {_FACTORY}")
    if not any(p.requires_grad for p in model.parameters()):
        raise ParameterError(f"model_factory={shown} returned a network without trainable parameters; allowed: "
                             f"{_FACTORY}")
    try:
        with torch.no_grad():
            out = model.eval()(x[:2].float() / 255)
    except Exception as err:
        raise ParameterError(f"model_factory={shown} returned a network that raised {type(err).__name__} "
                             f"({_one_line(err)}) on images of shape {tuple(x[:2].shape)}; allowed: "
                             f"{_FACTORY}") from err
    expected = (len(x[:2]), classes)
    if not isinstance(out, Tensor) or tuple(out.shape) != expected:
        got = f"shape {tuple(out.shape)}" if isinstance(out, Tensor) else type(out).__name__
        raise ParameterError(f"model_factory={shown} returned a network whose output for images of shape "
                             f"{tuple(x[:2].shape)} is {got}; allowed: logits of shape {expected}")
    digest = hashlib.sha256(repr(model).encode())
    for key, value in model.state_dict().items():
        digest.update(f"{key} {tuple(value.shape)}".encode())
    return digest.hexdigest()


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__






def _images(name: str, value: Any) -> Tensor:
    """Images as uint8 (N, C, H, W). An array whose channel axis is not shorter than its width, (N, 28, 28, 1) or
    (N, 3, 3, 3) say, is refused: channels-last images would train as if channels-first, and no one can tell
    which a square one is."""
    t = arrays.as_tensor(name, value)
    if t.dim() != 4 or 0 in t.shape:
        raise ParameterError(f"{name}=array of shape {tuple(t.shape)} is not allowed; allowed: images of shape "
                             f"(N, C, H, W), every size >= 1")
    _, c, _, w = t.shape
    if c > 1 and c >= w:
        looks = "channels-last (N, H, W, C)" if c > w else "ambiguous (its channel axis is as long as its width)"
        raise ParameterError(f"{name}=array of shape {tuple(t.shape)} looks {looks}; allowed: channels-first images "
                             f"(N, C, H, W) with fewer channels C than pixels across W (from channels-last: "
                             f"x.transpose(0, 3, 1, 2))")
    if t.dtype != torch.uint8:
        raise ParameterError(f"{name}=array of dtype {str(t.dtype).removeprefix('torch.')} is not allowed; "
                             f"allowed: uint8 images (values 0 .. 255)")
    return t.contiguous()


def _check_channels(x: Tensor) -> None:
    """Refuse a channel with one value throughout: normalising by its std (0) would divide by zero."""
    flat = x.transpose(0, 1).flatten(1)
    constant = (flat.amin(1) == flat.amax(1)).nonzero().flatten().tolist()
    if constant:
        c = constant[0]
        raise ParameterError(f"x_train=array whose channel {c} holds the value {int(flat[c, 0])} in every pixel of "
                             f"every image; allowed: images whose every channel varies (it is divided by its std)")







