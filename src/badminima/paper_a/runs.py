"""Paper A's image runs: a configuration per training run, Algorithm 1's adversarial initialization (phase 1)
and the training from a random or adversarial init (phase 2), each trained once through the one training loop
and stored with its weights."""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field

import torch
from torch import nn

from badminima.core import convnets
from badminima.paper_a.algorithm1 import algorithm1_set
from badminima.core.config import ParameterError, check_range
from badminima.core.data import images
from badminima.core.metrics import table1_distances
from badminima.core.models import Single
from badminima.core.store import Store, Stored
from badminima.core.train import TrainConfig, default_device, train

MIN_WIDTH = 0.01   # the narrowest width multiplier accepted: the first layers are down to one channel there


@dataclass(frozen=True)
class DataSpec:
    dataset: str = "fashion_mnist"
    per_class: int | None = None      # training images per class; None: the whole training set
    test_size: int | None = None      # the first test images; None: the whole test set
    subset_seed: int = 0              # which images a subset holds (fixed across seeds, as in the paper)

    def __post_init__(self) -> None:
        if self.per_class is not None:
            check_range("per_class", self.per_class, 1, integer=True)
        if self.test_size is not None:
            check_range("test_size", self.test_size, 1, integer=True)

    def check_sizes(self, data: images.ImageData) -> None:
        """Refuse a test size or a per-class count beyond what the data set holds (never train on fewer silently)."""
        tests = len(data.y_test)
        if self.test_size is not None and self.test_size > tests:
            raise ParameterError(f"test_size={self.test_size} is more than the test set's {tests} images; allowed: "
                                 f"an integer in [1, {tests}]")
        if self.per_class is not None:
            counts = torch.bincount(data.y_train, minlength=data.classes)
            short = int(counts.argmin())
            fewest = int(counts[short])
            if self.per_class > fewest:
                raise ParameterError(f"per_class={self.per_class} is more than class {short}'s {fewest} training "
                                     f"images; allowed: an integer in [1, {fewest}]")


@dataclass(frozen=True)
class Adversarial:
    """Algorithm 1: R noisy randomly labelled copies of every training image, fitted by vanilla SGD. Its training
    has no default: the paper's is protocol.adversarial's."""
    replication: int = 1               # R
    noise_percent: float = 10.0        # N: % of each copy's values zeroed
    whole_pixels: bool = False         # zero whole pixels instead of single colour values
    train: TrainConfig = field(kw_only=True)

    def __post_init__(self) -> None:
        check_range("R", self.replication, 1, integer=True)
        check_range("N", self.noise_percent, 0, 100, open_high=True)


@dataclass(frozen=True)
class ImageRun:
    data: DataSpec = DataSpec()
    model: str = "resnet18"
    width: float = 1.0
    seed: int = 0
    adversarial: Adversarial | None = None   # None: the framework's random init
    augment: bool = False                    # random crop (padding 4) and horizontal flip
    train: TrainConfig = field(kw_only=True)  # no default: the paper's recipes are in protocol.py

    def __post_init__(self) -> None:
        check_range("width", self.width, MIN_WIDTH)
        check_range("seed", self.seed, 0, integer=True)


def heuristics(augment: bool, l2: float, momentum: float, base: ImageRun) -> ImageRun:
    """`base` with Table 2's three switches set."""
    return dataclasses.replace(base, augment=augment,
                               train=dataclasses.replace(base.train, weight_decay=l2, momentum=momentum))


@dataclass
class Prepared:
    """A data set held as normalised float tensors on the training device, with a leading members dim of 1."""
    raw: images.ImageData
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    uint8_train: torch.Tensor = field(repr=False)


@functools.lru_cache(maxsize=4)
def prepare(spec: DataSpec, device: torch.device) -> Prepared:
    data = images.load(spec.dataset)
    spec.check_sizes(data)
    x, y = data.x_train, data.y_train
    if spec.per_class is not None:
        x, y = images.subset(x, y, spec.per_class, spec.subset_seed)
    xt, yt = data.x_test, data.y_test
    if spec.test_size is not None:
        xt, yt = xt[:spec.test_size], yt[:spec.test_size]
    to = lambda u: images.to_float(u, data.mean, data.std, device)[None]
    return Prepared(data, to(x), y[None].to(device), to(xt), yt[None].to(device), x)


def build_model(run: ImageRun, data: images.ImageData) -> nn.Module:
    """The run's architecture at its random init (fixed by the seed)."""
    return convnets.build(run.model, data.classes, in_channels=data.x_train.shape[1], width=run.width,
                          seed=run.seed)


def _with_prefix(state: dict, prefix: str) -> dict:
    return {f"{prefix}.{k}": v for k, v in state.items()}


def _without_prefix(state: dict, prefix: str) -> dict:
    return {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}


def _augment(enabled: bool):
    return (lambda xb, gen: images.crop_flip(xb, gen, padding=4)) if enabled else None


def phase1_key(run: ImageRun) -> dict:
    return {"data": run.data, "model": run.model, "width": run.width, "seed": run.seed,
            "adversarial": run.adversarial}


def adversarial_init(run: ImageRun, store: Store, device: torch.device | None = None,
                     progress: bool = True, compile_: bool = False) -> Stored:
    """Phase 1 (Algorithm 1) for the run's data, model, width and seed. Weights: 'init.*' is the random init it
    started from (W0R), 'final.*' the adversarial init (W0A). The set C is drawn once from the seed."""
    device = device or default_device()
    adv = run.adversarial

    def fit_random_labels(workdir):
        data = prepare(run.data, device)
        x_c, y_c = algorithm1_set(data.uint8_train, data.raw.classes, adv.replication, adv.noise_percent,
                                  seed=run.seed, whole_pixels=adv.whole_pixels)
        c_set = (images.to_float(x_c, data.raw.mean, data.raw.std, device)[None], y_c[None].to(device))
        model = build_model(run, data.raw)
        init = {k: v.clone() for k, v in model.state_dict().items()}
        result = train(for_device(model, device, compile_), c_set, adv.train, [run.seed],
                       test_set=(data.x_test, data.y_test),
                       checkpoint=workdir / "phase1.ckpt", device=device, progress=progress)
        metrics = {**result.as_dict(), "best_train_acc": result.best_train_acc[0]}
        return metrics, {**_with_prefix(init, "init"), **_with_prefix(model.state_dict(), "final")}

    return store.load_or_run("adversarial", phase1_key(run), fit_random_labels,
                             data=images.fingerprint(run.data.dataset))


def for_device(model: nn.Module, device: torch.device, compile_: bool) -> nn.Module:
    """The network wrapped for the loop; on CUDA in channels_last layout and, if asked, compiled. Compiled in place
    (`Module.compile`), so its state_dict keeps the plain names and a checkpoint written by a compiled run resumes
    in an uncompiled one (on another machine, say)."""
    if device.type == "cuda":
        model = model.to(device, memory_format=torch.channels_last)
        if compile_:
            model.compile()
    return Single(model)


def run_image(run: ImageRun, store: Store | None = None, device: torch.device | None = None,
              progress: bool = True, compile_: bool = False) -> Stored:
    """Train (or load) one run: from the random init, or from the adversarial init of the same seed.
    `compile_` (CUDA only) does not change the configuration's key: it changes speed, not the numbers' meaning."""
    store = store or Store()
    device = device or default_device()

    def fit_true_labels(workdir):
        data = prepare(run.data, device)
        model = build_model(run, data.raw)
        if run.adversarial is not None:   # phase 1 is read (or trained) only when phase 2 has to be trained
            phase1 = adversarial_init(run, store, device, progress, compile_)
            model.load_state_dict(_without_prefix(phase1.weights, "final"))
        result = train(for_device(model, device, compile_), (data.x_train, data.y_train), run.train, [run.seed],
                       test_set=(data.x_test, data.y_test), augment=_augment(run.augment),
                       checkpoint=workdir / "train.ckpt", device=device, progress=progress)
        h = result.history
        metrics = {**result.as_dict(), "train_acc": h["train_acc"][-1][0], "test_acc": h["test_acc"][-1][0]}
        return metrics, model.state_dict()

    return store.load_or_run("image", run, fit_true_labels, data=images.fingerprint(run.data.dataset))


def load_model(run: ImageRun, weights: dict) -> nn.Module:
    """A stored run's network (eval mode, CPU)."""
    model = build_model(run, images.load(run.data.dataset))
    model.load_state_dict(weights)
    return model.eval()


def parameter_vector(run: ImageRun, state: dict, prefix: str | None = None) -> torch.Tensor:
    """The trainable parameters (not batch-norm statistics) of a stored state, flattened in model order."""
    state = _without_prefix(state, prefix) if prefix else state
    names = [n for n, _ in build_model(run, images.load(run.data.dataset)).named_parameters()]
    return torch.cat([state[n].flatten().float() for n in names])


def seed_distances(vanilla: ImageRun, sota: ImageRun, store: Store | None = None) -> dict[str, float]:
    """Table 1's seven distances for one seed. `vanilla` and `sota` are the adversarially initialised runs of
    that seed (same data, model, width, seed and Algorithm 1); their random-init twins drop `adversarial`."""
    store = store or Store()
    phase1 = adversarial_init(vanilla, store)
    w = {"0R": parameter_vector(vanilla, phase1.weights, "init"),
         "0A": parameter_vector(vanilla, phase1.weights, "final")}
    runs = {"VR": dataclasses.replace(vanilla, adversarial=None), "SR": dataclasses.replace(sota, adversarial=None),
            "VA": vanilla, "SA": sota}
    for key, r in runs.items():
        w[key] = parameter_vector(r, run_image(r, store).weights)
    return table1_distances(w)
