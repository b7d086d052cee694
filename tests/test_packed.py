"""Packed networks compute, for each member, what the member computes alone."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from badminima.core import convnets
from badminima.core.packed import Packed, packable


@pytest.mark.parametrize("name", convnets.NAMES)
def test_each_member_of_a_packed_network_has_its_own_outputs_gradients_and_statistics(name):
    nets = [convnets.build(name, 10, 1, 0.125, seed=s) for s in (0, 1, 2)]
    packed = Packed(nets)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(3, 8, 1, 28, 28, generator=gen), torch.randint(0, 10, (3, 8), generator=gen)
    out = packed(x)
    F.cross_entropy(out.transpose(1, 2), y, reduction="none").mean(1).sum().backward()
    for m, net in enumerate(nets):
        alone = net(x[m])
        F.cross_entropy(alone, y[m]).backward()
        assert torch.allclose(out[m], alone, atol=1e-4)
        grads = {n: p.grad[m] for n, p in packed.net.named_parameters()}
        for n, p in net.named_parameters():
            # Relative to the largest entry (ResNet50 measured up to 3e-3 after 50 batch norms over 8 images), with
            # a floor for the biases before a batch norm, whose gradient is zero up to rounding.
            assert float((grads[n] - p.grad).abs().max()) <= 1e-2 * float(p.grad.abs().max()) + 1e-5, n
        state, want = packed.member_state(m), net.state_dict()
        assert state.keys() == want.keys()
        assert all(torch.allclose(state[k].float(), want[k].float(), atol=1e-5) for k in want), "running statistics"
    assert not torch.allclose(out[0], out[1]), "the members are different networks"


def test_networks_with_modules_it_cannot_pack_are_refused():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.LayerNorm(26), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
    assert not packable(net)
    with pytest.raises(ValueError, match="LayerNorm"):
        Packed([net, net])
    assert all(packable(convnets.build(n, 10, 1, 0.125)) for n in convnets.NAMES)
