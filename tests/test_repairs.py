"""The one repair of an init (core.repairs) for both papers: the forms their runs key it by, its refusals, and a
repair added in one place applying to Paper A's networks and Paper B's MLPs through the one function."""
import dataclasses

import pytest
import torch

from badminima.beyond import protocol as beyond
from badminima.beyond import repairs as beyond_repairs
from badminima.core import convnets, repairs
from badminima.core.config import ADDED_LATER, ParameterError, as_dict
from badminima.core.models import MLP
from badminima.core.repairs import FRESH_SEED, Repair, repaired
from badminima.paper_a.runs import LAST_LAYER
from badminima.paper_b.runs import READOUT


def image_net(seed: int) -> dict:
    return convnets.build("resnet18", 10, in_channels=1, width=0.0625, seed=seed).state_dict()


def mlp(seeds: tuple[int, ...]) -> dict:
    return MLP((2, 4, 1), seeds).state_dict()


# (state, fresh init's state, last layer) of a Paper A network and of a Paper B batched MLP (two members)
NETWORKS = {"paper A": lambda: (image_net(0), image_net(FRESH_SEED), LAST_LAYER),
            "paper B": lambda: (mlp((0, 1)), mlp((FRESH_SEED, FRESH_SEED + 1)), READOUT)}


def test_each_paper_keys_a_repair_as_it_always_has():
    assert as_dict(Repair(shrink=0.5, perturb=0.1)) == {"shrink": 0.5, "perturb": 0.1, "reset_last": False,
                                                        "reset_batch_norm": False, "warm_epochs": 0, "warm_lr": 0.1}
    forms = [r.net_form() for r in beyond_repairs.net_repairs(beyond.repairs_config_for("cpu")).values()]
    assert forms == [{"shrink": 0.3, "perturb": 0.0}, {"shrink": 0.3, "perturb": 0.3},
                     {"shrink": 0.6, "perturb": 0.0}, {"shrink": 0.6, "perturb": 0.3},
                     {"reset_readout": True}, {"warm_steps": 1000, "warm_lr": 0.1}]
    assert Repair().net_form() == {}


def test_a_misspelt_or_bad_repair_setting_is_refused():
    with pytest.raises(TypeError, match="shrnik"):
        Repair(shrnik=0.5)
    with pytest.raises(TypeError, match="reset_readout"):   # Paper B's name in its keys, not a field
        Repair(reset_readout=True)
    with pytest.raises(ParameterError, match="reset_last=1 is not allowed"):
        Repair(reset_last=1)
    with pytest.raises(ParameterError, match="perturb=-0.1 is out of range"):
        Repair(perturb=-0.1)


@pytest.mark.parametrize("paper", NETWORKS)
def test_the_one_function_repairs_either_papers_network(paper):
    state, fresh, last = NETWORKS[paper]()
    assert all(torch.equal(v, state[n]) for n, v in repaired(Repair(), state, fresh, last).items())
    out = repaired(Repair(shrink=0.5, perturb=0.1, reset_last=True), state, fresh, last)
    for n, v in state.items():
        if repairs.in_layer(n, last):
            assert torch.equal(out[n], fresh[n]), n
        elif repairs.is_batch_norm_stat(n):
            assert torch.equal(out[n], v), n
        else:   # bit for bit the arithmetic the stored runs were computed with
            assert torch.equal(out[n], v.clone().mul_(0.5).add_(fresh[n], alpha=0.1)), n
    with pytest.raises(ParameterError, match="reset_last=True is not allowed"):
        repaired(Repair(reset_last=True), state, fresh, ("head",))


def test_batch_norm_is_reset_where_the_network_has_it_and_refused_where_not():
    state, fresh, last = NETWORKS["paper A"]()
    state = {n: v + 1 if repairs.is_batch_norm_stat(n) else v for n, v in state.items()}
    out = repaired(Repair(reset_batch_norm=True), state, fresh, last)
    means = [v for n, v in out.items() if n.endswith("running_mean")]
    assert means and all((m == 0).all() for m in means)
    with pytest.raises(ParameterError, match="reset_batch_norm=True is not allowed"):
        repaired(Repair(reset_batch_norm=True), *NETWORKS["paper B"]())


@dataclasses.dataclass(frozen=True)
class WithFlip(Repair):
    """A toy repair added as a new one would be: a field (added later) and a step that reads it."""
    flip_last: bool = dataclasses.field(default=False, metadata=ADDED_LATER)


def _flip_last(repair, state, fresh, last):
    return {n: -v if repair.flip_last and repairs.in_layer(n, last) else v for n, v in state.items()}


@pytest.mark.parametrize("paper", NETWORKS)
def test_a_repair_added_in_one_place_applies_to_both_papers_networks(paper, monkeypatch):
    state, fresh, last = NETWORKS[paper]()
    shrunk = repaired(Repair(shrink=0.5), state, fresh, last)
    monkeypatch.setitem(repairs.STEPS, "flip the last layer", _flip_last)
    out = repaired(WithFlip(shrink=0.5, flip_last=True), state, fresh, last)
    flipped = [n for n in state if repairs.in_layer(n, last)]
    assert flipped and all(torch.equal(out[n], -shrunk[n]) for n in flipped)
    assert all(torch.equal(out[n], shrunk[n]) for n in state if n not in flipped)
    assert as_dict(WithFlip(shrink=0.5)) == as_dict(Repair(shrink=0.5)), "at its default it keys as before"
    assert WithFlip(flip_last=True).net_form() == {"flip_last": True}
