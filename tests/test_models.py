import torch

from badminima.core.models import MLP, Single, member_params


def test_member_is_independent_of_its_batch():
    batched = MLP([2, 8, 8, 1], seeds=[5, 6, 7])
    alone = MLP([2, 8, 8, 1], seeds=[6])
    assert torch.equal(member_params(batched)[1], member_params(alone)[0])
    x = torch.randn(1, 4, 2)
    assert torch.allclose(batched(x.expand(3, 4, 2))[1], alone(x)[0])
    assert torch.equal(member_params(batched.member(2)), member_params(MLP([2, 8, 8, 1], seeds=[7])))


def test_default_init_bound():
    w = MLP([100, 50], seeds=[0]).weights[0]
    assert w.abs().max() <= 0.1 and w.abs().max() > 0.09


def test_single_wraps_an_ordinary_net():
    linear = torch.nn.Linear(3, 4)
    x = torch.randn(1, 5, 3)
    assert torch.equal(Single(linear)(x), linear(x[0])[None])
    assert Single.members == 1
