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


def test_a_packed_member_that_diverges_stops_alone_and_the_others_train_as_if_alone():
    """Member 1's classifier scaled far up: its logits overflow at once. It stops as diverged; member 0 trains as
    it does alone (to float tolerance: a grouped convolution sums in another order)."""
    from badminima.core.models import Single
    from badminima.core.train import TrainConfig, train

    def nets():
        out = [convnets.build("resnet18", 10, 1, 0.0625, seed=s) for s in (0, 1, 2)]
        with torch.no_grad():
            out[1].classifier.weight.mul_(1e38)
        return out

    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(1, 16, 1, 8, 8, generator=gen), torch.randint(0, 10, (1, 16), generator=gen)
    # One epoch of two steps: member 1 diverges at the first, the others take both.
    cfg = TrainConfig(lr=0.01, batch_size=8, max_epochs=1, until_fit=False)
    packed = Packed(nets())
    run = train(packed, (x, y), cfg, [0, 1, 2], device=torch.device("cpu"))
    assert run.diverged == [False, True, False] and run.diverge_epoch[1] == 1 and run.steps == 2
    alone = Single(nets()[0])
    run0 = train(alone, (x, y), cfg, [0], device=torch.device("cpu"))
    assert run0.diverged == [False]
    assert run.history["loss"][0][0] == pytest.approx(run0.history["loss"][0][0], rel=1e-4)
    state = packed.member_state(0)
    worst = max(float((state[k].float() - v.float()).abs().max() / v.float().abs().max().clamp(min=1e-12))
                for k, v in alone.net.state_dict().items() if v.is_floating_point())
    assert worst < 1e-3, "each tensor as alone, relative to its largest entry"
