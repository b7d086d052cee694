import torch
from torch import nn

from badminima.core import convnets
from badminima.core.metrics import fgsm_accuracy, frobenius_norm, path_norm


def test_path_norms_of_a_two_layer_net_by_hand():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    w1, w2 = net[0].weight.detach(), net[2].weight.detach()
    assert abs(path_norm(net, (3,), 1) - float((w2.abs() @ w1.abs()).sum())) < 1e-5
    assert abs(path_norm(net, (3,), 2) - float(((w2 ** 2) @ (w1 ** 2)).sum().sqrt())) < 1e-5


def test_path_norm_folds_batch_norm_and_leaves_the_model_alone():
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.BatchNorm1d(2), nn.ReLU(), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 0.0]]))
        net[1].weight.copy_(torch.tensor([2.0, -1.0]))
        net[1].running_var.copy_(torch.tensor([4.0, 1.0]))
        net[3].weight.copy_(torch.tensor([[1.0, 3.0]]))
    before = [p.clone() for p in net.parameters()]
    scale = torch.tensor([2.0, -1.0]) / torch.sqrt(torch.tensor([4.0, 1.0]) + 1e-5)
    expected = float(torch.tensor([1.0, 3.0]).abs() @ (scale.abs()[:, None] * torch.tensor([[1.0, 2.0], [0.5, 0.0]])).sum(1))
    assert abs(path_norm(net, (2,), 1) - expected) < 1e-4
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


def test_frobenius_norm_and_path_norm_of_a_convnet():
    net = convnets.build("resnet18", 10, in_channels=1, width=0.125, seed=0)
    assert abs(frobenius_norm(net) - float(torch.cat([p.detach().flatten() for p in net.parameters()]).norm())) < 1e-3
    assert path_norm(net, (1, 28, 28), 2) > 0


def test_fgsm_lowers_accuracy_and_zero_epsilon_is_clean():
    torch.manual_seed(0)
    x = torch.rand(200, 1, 4, 4)
    w = torch.randn(16)
    y = ((x.flatten(1) @ w) > (0.5 * w.sum())).long()
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    with torch.no_grad():
        net[1].weight.copy_(torch.stack([-w, w]) * 5)
        net[1].bias.copy_(torch.tensor([2.5, -2.5]) * w.sum())
    mean, std = torch.zeros(1), torch.ones(1)
    clean, small, large = fgsm_accuracy(net, x, y, [0.0, 0.02, 0.3], mean, std)
    assert clean == float((net(x).argmax(1) == y).float().mean()) and clean > 0.99
    assert clean >= small > large and large < 0.2
