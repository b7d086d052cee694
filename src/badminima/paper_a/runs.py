"""Paper A's image runs: a configuration per training run, Algorithm 1's adversarial initialization (phase 1)
and the training from a random or adversarial init (phase 2), each trained once through the one training loop
and stored with its weights."""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from badminima.core import convnets
from badminima.paper_a.algorithm1 import algorithm1_set
from badminima.core.config import ADDED_LATER, ParameterError, check_range
from badminima.core.data import images, transforms
from badminima.core.metrics import accuracy, table1_distances
from badminima.core.models import Single
from badminima.core.packed import Packed
from badminima.core.repairs import FRESH_SEED, Repair, repaired
from badminima.core.store import Store, Stored
from badminima.core.train import Run, TrainConfig, default_device, train

MIN_WIDTH = 0.01   # the narrowest width multiplier accepted: the first layers are down to one channel there
LAST_LAYER = ("classifier",)   # every convnets architecture ends in it


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
    augment: bool = False                    # random crop (padding: transforms.crop_padding) and horizontal flip
    train: TrainConfig = field(kw_only=True)  # no default: the paper's recipes are in protocol.py
    repair: Repair | None = field(default=None, kw_only=True, metadata=ADDED_LATER)   # a change of the init
    flip: bool = field(default=True, kw_only=True, metadata=ADDED_LATER)   # the augmentation flips (off: crop only)

    def __post_init__(self) -> None:
        check_range("width", self.width, MIN_WIDTH)
        check_range("seed", self.seed, 0, integer=True)
        if self.flip not in (False, True):
            raise ParameterError(f"flip={self.flip!r} is not allowed; allowed: True or False")


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
        x, y = transforms.subset(x, y, spec.per_class, spec.subset_seed)
    xt, yt = data.x_test, data.y_test
    if spec.test_size is not None:
        xt, yt = xt[:spec.test_size], yt[:spec.test_size]
    to = lambda u: transforms.to_float(u, data.mean, data.std, device)[None]
    return Prepared(data, to(x), y[None].to(device), to(xt), yt[None].to(device), x)


def build_model(run: ImageRun, data: images.ImageData) -> nn.Module:
    """The run's architecture at its random init (fixed by the seed)."""
    return convnets.build(run.model, data.classes, in_channels=data.x_train.shape[1], width=run.width,
                          seed=run.seed)


def _with_prefix(state: dict, prefix: str) -> dict:
    return {f"{prefix}.{k}": v for k, v in state.items()}


def _without_prefix(state: dict, prefix: str) -> dict:
    return {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}


def _augment(run: ImageRun, data: images.ImageData):
    """The run's augmentation: a crop with padding scaled to the images (4 pixels at 28 and 32) and, if the run
    flips, a horizontal flip."""
    if not run.augment:
        return None
    padding = transforms.crop_padding(*data.x_train.shape[-2:])
    return lambda xb, gen: transforms.crop_flip(xb, gen, padding=padding, flip=run.flip)


def phase1_key(run: ImageRun) -> dict:
    return {"data": run.data, "model": run.model, "width": run.width, "seed": run.seed,
            "adversarial": run.adversarial}


# Seeds of one configuration train as one packed network (core.packed) for these models, where packing gains on
# the CPU (scripts/bench_images.py, one thread, batch 25, cpu widths: VGG16 1.10x, ResNet18 1.12x). The others train
# one seed at a time: packed, DenseNet-40 ran 0.45x as fast and ResNet50 0.87x (its evaluation 0.63x).
PACKED_MODELS = ("vgg16", "resnet18")


def for_device(nets: list[nn.Module], device: torch.device, compile_: bool = False) -> nn.Module:
    """The networks as one model for the loop: several packed, one wrapped as an ensemble of one; in channels_last
    layout on CUDA only. On the CPU channels_last measured faster (1.1-1.4x at one thread) but torch 2.13 gave a
    packed ResNet18's first convolution (one input channel per group) gradients 1e-2 away from the unpacked
    network's on real images (1e-6 in the contiguous layout) and crashed in the backward pass of a channels_last
    ResNet18 at width 0.0625. Compiled in place (`Module.compile`) if asked on CUDA, so the state_dict keeps the plain
    names and a checkpoint written by a compiled run resumes in an uncompiled one (on another machine, say)."""
    cuda = device.type == "cuda"
    if len(nets) > 1:
        model = Packed(nets, channels_last=cuda).to(device)
    else:
        model = Single(nets[0].to(device, memory_format=torch.channels_last if cuda else torch.contiguous_format))
    if compile_ and cuda:
        model.compile()
    return model


def member_states(model: nn.Module) -> list[dict]:
    """Each member's state dict under the names of its own network."""
    if isinstance(model, Packed):
        return [model.member_state(m) for m in range(model.members)]
    return [model.net.state_dict()]


def member_run(run: Run, m: int, until_fit: bool, test_acc: Callable[[], float]) -> Run:
    """Member m's part of a packed run, as if it had trained alone: its history up to the epoch at which it
    diverged or fitted (when it did and training stops there), ending with a test accuracy (`test_acc()` measures it
    on the member's final weights, which a stopped member has held since then, when the pack did not record one at
    that epoch)."""
    diverged = run.diverge_epoch[m] if run.diverge_epoch else None
    fitted = until_fit and run.fit_epoch[m] is not None and diverged is None
    end = diverged or (run.fit_epoch[m] if fitted else run.epochs)
    keep = [i for i, e in enumerate(run.history["epoch"]) if e <= end]
    # Per-member entries are lists (test_acc: None where not measured); the member keeps a list of one.
    history = {k: [[v[i][m]] if isinstance(v[i], list) else v[i] for i in keep] for k, v in run.history.items()}
    if history["test_acc"][-1] is None:
        history["test_acc"][-1] = [test_acc()]
    steps = history["step"][-1] if diverged else run.fit_step[m] if fitted else run.steps
    return Run(history, [run.fit_epoch[m]], [run.fit_step[m]], end, steps, diverge_epoch=[diverged])


def adversarial_inits(runs: list[ImageRun], store: Store, device: torch.device | None = None,
                      progress: bool = True, compile_: bool = False) -> list[Stored]:
    """Phase 1 (Algorithm 1) for runs that differ in their seed alone, the missing ones trained together. Weights:
    'init.*' is the random init it started from (W0R), 'final.*' the adversarial init (W0A). Each seed draws its
    set C once."""
    device = device or default_device()
    adv = runs[0].adversarial

    def fit_random_labels(workdir, todo):
        group = [runs[i] for i in todo]
        data = prepare(group[0].data, device)
        sets = [algorithm1_set(data.uint8_train, data.raw.classes, adv.replication, adv.noise_percent,
                               seed=r.seed, whole_pixels=adv.whole_pixels) for r in group]
        c_set = (torch.stack([transforms.to_float(x, data.raw.mean, data.raw.std, device) for x, _ in sets]),
                 torch.stack([y for _, y in sets]).to(device))
        nets = [build_model(r, data.raw) for r in group]
        inits = [{k: v.clone() for k, v in n.state_dict().items()} for n in nets]
        model = for_device(nets, device, compile_)
        result = train(model, c_set, adv.train, [r.seed for r in group], test_set=(data.x_test, data.y_test),
                       checkpoint=workdir / "phase1.ckpt", device=device, progress=progress)
        finals = member_states(model)
        out = []
        for m, (init, final) in enumerate(zip(inits, finals)):
            alone = member_run(result, m, adv.train.until_fit, lambda: _test_acc(group[m], final, data))
            out.append(({**alone.as_dict(), "best_train_acc": alone.best_train_acc[0]},
                        {**_with_prefix(init, "init"), **_with_prefix(final, "final")}))
        return out

    return store.load_or_run_many("adversarial", [phase1_key(r) for r in runs], fit_random_labels,
                                  data=images.fingerprint(runs[0].data.dataset))


def adversarial_init(run: ImageRun, store: Store, device: torch.device | None = None,
                     progress: bool = True, compile_: bool = False) -> Stored:
    """Phase 1 for one run (see adversarial_inits)."""
    return adversarial_inits([run], store, device, progress, compile_)[0]


def _test_acc(run: ImageRun, state: dict, data: Prepared) -> float:
    net = build_model(run, data.raw).to(data.x_test.device)
    net.load_state_dict(state)
    return float(accuracy(Single(net), data.x_test, data.y_test)[0])


def _repair(net: nn.Module, run: ImageRun, data: images.ImageData) -> None:
    """Apply the run's repair (all but its warm-up epochs) to the init loaded in `net`."""
    fresh = build_model(dataclasses.replace(run, seed=FRESH_SEED + run.seed), data).state_dict()
    net.load_state_dict(repaired(run.repair, net.state_dict(), fresh, LAST_LAYER))


def run_images(runs: list[ImageRun], store: Store | None = None, device: torch.device | None = None,
               progress: bool = True, compile_: bool = False) -> list[Stored]:
    """Train (or load) runs that differ in their seed alone, the missing ones together as one packed network:
    each from its random init, or from the adversarial init of its seed. `compile_` (CUDA only) does not change
    the configurations' keys: it changes speed, not the numbers' meaning."""
    store = store or Store()
    device = device or default_device()
    if len({dataclasses.replace(r, seed=0) for r in runs}) > 1:
        raise ValueError("runs trained together must differ in their seed alone")

    def fit_true_labels(workdir, todo):
        group = [runs[i] for i in todo]
        data = prepare(group[0].data, device)
        nets = [build_model(r, data.raw) for r in group]
        if group[0].adversarial is not None:   # phase 1 is read (or trained) only when phase 2 has to be trained
            for net, phase1 in zip(nets, adversarial_inits(group, store, device, progress, compile_)):
                net.load_state_dict(_without_prefix(phase1.weights, "final"))
        for r, net in zip(group, nets):
            if r.repair is not None:
                _repair(net, r, data.raw)
        model = for_device(nets, device, compile_)
        repair = group[0].repair
        if repair is not None and repair.warm_epochs:
            warm = dataclasses.replace(group[0].train, lr=repair.warm_lr, max_epochs=repair.warm_epochs,
                                       until_fit=False, lr_drops=())
            train(model, (data.x_train, data.y_train), warm, [r.seed for r in group],
                  augment=_augment(group[0], data.raw),
                  checkpoint=workdir / "warm.ckpt", device=device, progress=progress)
        result = train(model, (data.x_train, data.y_train), group[0].train, [r.seed for r in group],
                       test_set=(data.x_test, data.y_test), augment=_augment(group[0], data.raw),
                       checkpoint=workdir / "train.ckpt", device=device, progress=progress)
        out = []
        for m, state in enumerate(member_states(model)):
            alone = member_run(result, m, group[0].train.until_fit, lambda: _test_acc(group[m], state, data))
            h = alone.history
            out.append(({**alone.as_dict(), "train_acc": h["train_acc"][-1][0], "test_acc": h["test_acc"][-1][0]},
                        state))
        return out

    return store.load_or_run_many("image", runs, fit_true_labels, data=images.fingerprint(runs[0].data.dataset))


def run_image(run: ImageRun, store: Store | None = None, device: torch.device | None = None,
              progress: bool = True, compile_: bool = False) -> Stored:
    """Train (or load) one run (see run_images)."""
    return run_images([run], store, device, progress, compile_)[0]


def load_model(run: ImageRun, weights: dict) -> nn.Module:
    """A stored run's network (eval mode, CPU)."""
    model = build_model(run, images.load(run.data.dataset))
    model.load_state_dict(weights)
    return model.eval()


def start_state(run: ImageRun, store: Store) -> dict:
    """The weights a run started from: its seed's random init, or its adversarial init (phase 1's final state)."""
    if run.adversarial is None:
        return build_model(run, images.load(run.data.dataset)).state_dict()
    return _without_prefix(adversarial_init(run, store, progress=False).weights, "final")


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
