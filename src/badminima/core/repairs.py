"""A repair of an init (beyond both papers): cheap changes to a network's weights before its training, tried on the
adversarial init. One type and one function serve Paper A's image networks and Paper B's batched MLPs alike, since
both hand over a state (name -> tensor) and name their last layer.

Adding a repair: a field of Repair (marked config.ADDED_LATER, so that Paper A's stored runs keep their keys) and a
step in STEPS that reads it; the chapter that tries it builds Repair instances with it (beyond/repairs.py)."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable, Mapping

import torch

from badminima.core.config import ParameterError, check_range

Tensor = torch.Tensor
State = dict[str, Tensor]

FRESH_SEED = 100_000   # a repair's fresh init is seed FRESH_SEED + the run's seed: not the run's own init

# torch's names for a batch-norm layer's statistics: the only entries of these networks' states that are not
# trained parameters, so shrink and perturb leaves them as they are.
BATCH_NORM_STATS = ("running_mean", "running_var", "num_batches_tracked")

# Paper B first keyed a repair as the dict of the settings it was given, under its own names, shrink with perturb
# and the warm-up's steps with its step size: net_form rebuilds that dict, so its stored runs keep their keys.
NET_NAMES = {"reset_last": "reset_readout", "warm_epochs": "warm_steps"}
GIVEN_TOGETHER = (("shrink", "perturb"), ("warm_epochs", "warm_lr"))


@dataclass(frozen=True)
class Repair:
    """Cheap changes to a run's init (the adversarial one, as a repair; the random one, as a control) before its
    training, applied in this order: shrink every weight by `shrink` and add `perturb` times a fresh random init
    (Ash and Adams' shrink and perturb), re-draw the last layer (Paper B: the readout) from that fresh init, reset
    the batch-norm statistics to the fresh init's, and train `warm_epochs` epochs (Paper B's full-batch training:
    steps) at learning rate `warm_lr` before the run's own training. Each paper's runs do the warm-up; `repaired`
    does the rest."""
    shrink: float = 1.0
    perturb: float = 0.0
    reset_last: bool = False
    reset_batch_norm: bool = False
    warm_epochs: int = 0
    warm_lr: float = 0.1

    def __post_init__(self) -> None:
        check_range("shrink", self.shrink, 0)
        check_range("perturb", self.perturb, 0)
        for name in ("reset_last", "reset_batch_norm"):
            if not isinstance(getattr(self, name), bool):   # 1 == True, yet keys apart from it
                raise ParameterError(f"{name}={getattr(self, name)!r} is not allowed; allowed: True or False")
        check_range("warm_epochs", self.warm_epochs, 0, integer=True)
        check_range("warm_lr", self.warm_lr, 0, open_low=True)

    def net_form(self) -> dict[str, Any]:
        """The repair as Paper B's runs key it: the fields off their defaults (with the fields given together with
        them) under Paper B's names. Paper A's runs key the dataclass itself (config.as_dict)."""
        given = {f.name for f in fields(self) if getattr(self, f.name) != f.default}
        for together in GIVEN_TOGETHER:
            if given.intersection(together):
                given.update(together)
        return {NET_NAMES.get(f.name, f.name): getattr(self, f.name) for f in fields(self) if f.name in given}


def is_batch_norm_stat(name: str) -> bool:
    return name.rsplit(".", 1)[-1] in BATCH_NORM_STATS


def in_layer(name: str, layer: tuple[str, ...]) -> bool:
    """Whether the entry `name` belongs to `layer`: its parameters' names, or the modules that hold them."""
    return any(name == n or name.startswith(n + ".") for n in layer)


# A step: (repair, the state so far, the fresh init's state, the last layer's names) -> the state after the step.
Step = Callable[[Repair, State, Mapping[str, Tensor], tuple[str, ...]], State]


def _shrink_and_perturb(repair: Repair, state: State, fresh: Mapping[str, Tensor], last: tuple[str, ...]) -> State:
    # torch.add with alpha (a fused multiply-add on the vectorized kernels) rounds unlike shrink * v + perturb *
    # fresh: it is the arithmetic Paper A's repaired runs were computed with.
    return {n: v if is_batch_norm_stat(n) else torch.add(v * repair.shrink, fresh[n], alpha=repair.perturb)
            for n, v in state.items()}


def _fresh_where(state: State, fresh: Mapping[str, Tensor], names: list[str], refusal: str) -> State:
    """`state` with the fresh init's entries `names`; ParameterError(refusal) if there are none, since a repair
    that changes nothing would still be a run of its own."""
    if not names:
        raise ParameterError(refusal)
    return {**state, **{n: fresh[n] for n in names}}


def _reset_last(repair: Repair, state: State, fresh: Mapping[str, Tensor], last: tuple[str, ...]) -> State:
    if not repair.reset_last:
        return state
    return _fresh_where(state, fresh, [n for n in state if in_layer(n, last)],
                        f"reset_last=True is not allowed: the network has no layer named {', '.join(last)}; "
                        "allowed: False")


def _reset_batch_norm(repair: Repair, state: State, fresh: Mapping[str, Tensor], last: tuple[str, ...]) -> State:
    if not repair.reset_batch_norm:
        return state
    return _fresh_where(state, fresh, [n for n in state if is_batch_norm_stat(n)],
                        "reset_batch_norm=True is not allowed: the network has no batch norm; allowed: False")


STEPS: dict[str, Step] = {"shrink and perturb": _shrink_and_perturb, "reset the last layer": _reset_last,
                          "reset the batch-norm statistics": _reset_batch_norm}


def repaired(repair: Repair, state: Mapping[str, Tensor], fresh: Mapping[str, Tensor],
             last: tuple[str, ...]) -> State:
    """A network's state (parameters and batch-norm statistics, by name; batched members alike) after every step
    of `repair` but its warm-up, in STEPS' order. `fresh` is a fresh init's state under the same names (its
    batch-norm statistics are the reset ones); `last` names the last layer (see in_layer). A reset that finds
    nothing to reset is refused (ParameterError)."""
    out = dict(state)
    for step in STEPS.values():
        out = step(repair, out, fresh, last)
    return out
