"""Packed networks compute, for each member, what the member computes alone."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from badminima.core import convnets
from badminima.core.packed import Packed, packable

pytestmark = pytest.mark.equivalence


@pytest.mark.parametrize("name", convnets.NAMES)
def test_each_member_of_a_packed_network_has_its_own_outputs_gradients_and_statistics(name):
    # In float64, so that what is compared is the arithmetic, not float32 rounding (which deep batch norm turns
    # into gradients 1e-2 apart, relative to a layer's largest, in either of two equivalent summation orders).
    nets = [convnets.build(name, 10, 1, 0.125, seed=s).double() for s in (0, 1, 2)]
    packed = Packed(nets)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 8, 1, 28, 28, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 10, (3, 8), generator=gen)
    out = packed(x)
    F.cross_entropy(out.transpose(1, 2), y, reduction="none").mean(1).sum().backward()
    for m, net in enumerate(nets):
        alone = net(x[m])
        F.cross_entropy(alone, y[m]).backward()
        assert torch.allclose(out[m], alone, atol=1e-10)
        grads = {n: p.grad[m] for n, p in packed.net.named_parameters()}
        scale = max(float(p.grad.abs().max()) for p in net.parameters())
        for n, p in net.named_parameters():
            # The floor is for the biases before a batch norm, whose gradient is zero up to rounding.
            assert torch.allclose(grads[n], p.grad, rtol=1e-8, atol=1e-10 * scale), n
        state, want = packed.member_state(m), net.state_dict()
        assert state.keys() == want.keys()
        assert all(torch.allclose(state[k].float(), want[k].float(), atol=1e-10) for k in want), "running statistics"
    assert not torch.allclose(out[0], out[1]), "the members are different networks"


def test_networks_with_modules_it_cannot_pack_are_refused():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.LayerNorm(26), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
    assert not packable(net)
    with pytest.raises(ValueError, match="LayerNorm"):
        Packed([net, net])
    assert all(packable(convnets.build(n, 10, 1, 0.125)) for n in convnets.NAMES)
