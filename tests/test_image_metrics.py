import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from badminima.core import convnets
from badminima.core.metrics import fgsm_accuracy, frobenius_norm, path_norm


# Brute force for the path norms, independent of path_norm's powered-copy pass: every layer becomes an explicit
# matrix (convolutions by probing them with unit images, pools from their windows written out here, batch norm
# as a diagonal), its entries are raised to |.|^p, and the path sums are carried layer by layer from an all-ones
# input: v <- |M|^p v. A skip connection adds its paths to the branch's, a concatenation stacks them.

def conv_matrix(conv: nn.Conv2d, shape: tuple[int, int, int]) -> tuple[torch.Tensor, tuple[int, int, int]]:
    size = math.prod(shape)
    units = torch.eye(size, dtype=torch.float64).reshape(size, *shape)
    out = F.conv2d(units, conv.weight.double(), None, conv.stride, conv.padding, conv.dilation, conv.groups)
    return out.reshape(size, -1).T, tuple(out.shape[1:])


def windows(n: int, kernel: int, stride: int, ceil_mode: bool = False) -> list[range]:
    """Pooling windows along one axis without padding; with ceil_mode a last partial window that starts inside."""
    count = (n - kernel + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (count - 1) * stride >= n:
        count -= 1
    return [range(i * stride, min(i * stride + kernel, n)) for i in range(count)]


def adaptive_windows(n: int, out: int) -> list[range]:
    return [range(i * n // out, -(-(i + 1) * n // out)) for i in range(out)]


def pool_matrix(rows: list[range], cols: list[range], shape: tuple[int, int, int], divisor: int | None = None):
    """Average pooling of each channel over the windows rows x cols, dividing by `divisor` (default: the
    window's size), as an explicit (outputs, inputs) matrix."""
    c, h, w = shape
    m = torch.zeros(c, len(rows), len(cols), c, h, w, dtype=torch.float64)
    for i, r in enumerate(rows):
        for j, q in enumerate(cols):
            for a in r:
                for b in q:
                    m[range(c), i, j, range(c), a, b] = 1 / (divisor or len(r) * len(q))
    return m.reshape(c * len(rows) * len(cols), -1), (c, len(rows), len(cols))


def max_select(v: torch.Tensor, rows: list[range], cols: list[range], shape: tuple[int, int, int]):
    """Max pooling keeps, per output, the input of its window whose path sum is largest."""
    c, h, w = shape
    grid = v.reshape(c, h, w)
    out = torch.stack([torch.stack([grid[:, r][:, :, q].flatten(1).max(1).values for q in cols]) for r in rows])
    return out.permute(2, 0, 1).flatten(), (c, len(rows), len(cols))


def bn_factor(bn: nn.BatchNorm2d, shape: tuple[int, ...]) -> torch.Tensor:
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    return scale.reshape(-1, *[1] * (len(shape) - 1)).expand(shape).flatten()


def paths(module: nn.Module, v: torch.Tensor, shape: tuple, p: int) -> tuple[torch.Tensor, tuple]:
    """Path sums after `module`, given those before it (v, flat over `shape`)."""
    if isinstance(module, nn.Sequential):
        for m in module:
            v, shape = paths(m, v, shape, p)
        return v, shape
    if isinstance(module, (nn.ReLU, nn.Identity, nn.Flatten)):
        return v, shape if not isinstance(module, nn.Flatten) else (math.prod(shape),)
    if isinstance(module, nn.Linear):
        return module.weight.double().abs() ** p @ v, (module.out_features,)
    if isinstance(module, nn.Conv2d):
        m, shape = conv_matrix(module, shape)
        return m.abs() ** p @ v, shape
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return bn_factor(module, shape).abs() ** p * v, shape
    if isinstance(module, nn.MaxPool2d):
        k, s = module.kernel_size, module.stride
        return max_select(v, windows(shape[1], k, s, module.ceil_mode), windows(shape[2], k, s, module.ceil_mode),
                          shape)
    if isinstance(module, nn.AvgPool2d):
        k, s = module.kernel_size, module.stride
        m, shape = pool_matrix(windows(shape[1], k, s), windows(shape[2], k, s), shape, divisor=k * k)
        return m.abs() ** p @ v, shape
    if isinstance(module, nn.AdaptiveAvgPool2d):
        out = nn.modules.utils._pair(module.output_size)
        m, shape = pool_matrix(adaptive_windows(shape[1], out[0]), adaptive_windows(shape[2], out[1]), shape)
        return m.abs() ** p @ v, shape
    if isinstance(module, (convnets.BasicBlock, convnets.Bottleneck)):
        layers = [module.conv1, module.bn1, module.conv2, module.bn2]
        layers += [module.conv3, module.bn3] if isinstance(module, convnets.Bottleneck) else []
        branch, out = paths(nn.Sequential(*layers), v, shape, p)
        skip, _ = paths(module.shortcut, v, shape, p)
        return branch + skip, out
    if isinstance(module, convnets.DenseLayer):
        new, out = paths(nn.Sequential(module.bn, module.conv), v, shape, p)
        return torch.cat([v, new]), (shape[0] + out[0], *shape[1:])
    if isinstance(module, (convnets.VGG, convnets.ResNet, convnets.DenseNet)):
        body = [module.features] if hasattr(module, "features") else [module.stem, module.stages]
        v, shape = paths(nn.Sequential(*body), v, shape, p)
        # convnets.global_pool: adaptive average pooling to one value per channel
        v, shape = paths(nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten()), v, shape, p)
        return paths(module.classifier, v, shape, p)
    raise TypeError(f"no brute force for {type(module).__name__}")


@torch.no_grad()
def brute_path_norm(net: nn.Module, shape: tuple[int, ...], p: int) -> float:
    v, _ = paths(net.eval(), torch.ones(math.prod(shape), dtype=torch.float64), shape, p)
    return float(v.sum()) ** (1 / p)


def randomise_batch_norms(net: nn.Module, seed: int) -> nn.Module:
    """Batch-norm scales and statistics away from their defaults, so that folding them matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 3 + 0.1)
    return net


def test_brute_force_agrees_with_enumerating_every_path():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.ReLU(), nn.Linear(2, 2))
    w = [m.weight.detach().double() for m in net if isinstance(m, nn.Linear)]
    for p in (1, 2):
        total = sum(float(w[0][h, i].abs() ** p * w[1][k, h].abs() ** p * w[2][o, k].abs() ** p)
                    for i, h, k, o in itertools.product(range(3), range(4), range(2), range(2)))
        assert brute_path_norm(net, (3,), p) == pytest.approx(total ** (1 / p), rel=1e-12)


def test_path_norms_of_a_two_layer_net_by_hand():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    w1, w2 = net[0].weight.detach(), net[2].weight.detach()
    assert abs(path_norm(net, (3,), 1) - float((w2.abs() @ w1.abs()).sum())) < 1e-5
    assert abs(path_norm(net, (3,), 2) - float(((w2 ** 2) @ (w1 ** 2)).sum().sqrt())) < 1e-5


def test_an_average_pool_enters_the_l2_path_norm_squared():
    # One input channel averaged over 2x2 windows of a 2x2 image: four paths of weight 1/4 each, then w = 3.
    net = nn.Sequential(nn.AvgPool2d(2), nn.Flatten(), nn.Linear(1, 1, bias=False))
    with torch.no_grad():
        net[2].weight.fill_(3.0)
    assert path_norm(net, (1, 2, 2), 1) == pytest.approx(4 * 0.25 * 3)
    assert path_norm(net, (1, 2, 2), 2) == pytest.approx(math.sqrt(4 * 0.25 ** 2 * 9))


class Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.branch = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(),
                                    nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.branch(x) + x)


def residual_paths(module, v, shape, p):
    branch, out = paths(module.branch, v, shape, p)
    return branch + v, out


TINY_NETS = {
    "linear stack": (lambda: nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3), nn.Linear(3, 2)), (5,)),
    "conv + relu": (lambda: nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 2, 2, stride=2),
                                          nn.Flatten(), nn.Linear(8, 2)), (2, 4, 4)),
    "max pool": (lambda: nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                       nn.Conv2d(3, 2, 1), nn.MaxPool2d(2, ceil_mode=True), nn.Flatten(),
                                       nn.Linear(8, 2)), (1, 6, 6)),
    "average pool": (lambda: nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                                           nn.Linear(12, 2)), (2, 6, 6)),
    "adaptive average pool": (lambda: nn.Sequential(nn.Conv2d(1, 2, 2), nn.ReLU(), nn.AdaptiveAvgPool2d((3, 2)),
                                                    nn.Flatten(), nn.Linear(12, 2)), (1, 6, 5)),
    "batch norm": (lambda: nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                                         nn.Flatten(), nn.Linear(27, 2)), (2, 3, 3)),
}


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("name", TINY_NETS)
def test_path_norm_of_tiny_networks_matches_brute_force(name, p):
    torch.manual_seed(1)
    make, shape = TINY_NETS[name]
    net = randomise_batch_norms(make(), seed=2)
    assert path_norm(net, shape, p) == pytest.approx(brute_path_norm(net, shape, p), rel=1e-9)


@pytest.mark.parametrize("p", [1, 2])
@torch.no_grad()
def test_path_norm_of_a_residual_block_matches_brute_force(p):
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), Residual(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(2, 2))
    randomise_batch_norms(net, seed=4)
    v, shape = paths(net[0], torch.ones(16, dtype=torch.float64), (1, 4, 4), p)
    v, shape = residual_paths(net[1], v, shape, p)
    v, _ = paths(net[2:], v, shape, p)
    expected = float(v.sum()) ** (1 / p)
    without_skip = brute_path_norm(nn.Sequential(net[0], net[1].branch, *net[2:]), (1, 4, 4), p)
    assert path_norm(net, (1, 4, 4), p) == pytest.approx(expected, rel=1e-9)
    assert expected > without_skip * (1 + 1e-6), "the skip connection's own paths count"


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("name", convnets.NAMES)
def test_path_norm_of_the_real_convnets_at_tiny_width_matches_brute_force(name, p):
    # Widths that leave a few channels; 12x12 inputs leave the ResNets 2x2 maps for their global average pool.
    width = {"vgg16": 1 / 32, "resnet18": 1 / 32, "resnet50": 1 / 64, "densenet40": 1 / 12}[name]
    net = randomise_batch_norms(convnets.build(name, 3, in_channels=1, width=width, seed=0), seed=5)
    assert path_norm(net, (1, 12, 12), p) == pytest.approx(brute_path_norm(net, (1, 12, 12), p), rel=1e-9)


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


def test_frobenius_norm_of_a_convnet():
    net = convnets.build("resnet18", 10, in_channels=1, width=0.125, seed=0)
    assert abs(frobenius_norm(net) - float(torch.cat([p.detach().flatten() for p in net.parameters()]).norm())) < 1e-3


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


class Recorded(nn.Module):
    """Logits (0, w . x + b) of the normalised image x; keeps every batch it is shown."""

    def __init__(self, w: torch.Tensor, b: float):
        super().__init__()
        self.w, self.b, self.seen = w, b, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        z = x.flatten(1) @ self.w.flatten() + self.b
        return torch.stack([torch.zeros_like(z), z], 1)


def test_fgsm_steps_eps_pixels_against_the_label_and_clamps_to_valid_pixels():
    torch.manual_seed(0)
    mean, std = torch.tensor([0.4, 0.5, 0.6]), torch.tensor([0.2, 0.25, 0.3])
    per_pixel = lambda t: t.view(1, 3, 1, 1)
    pixels = torch.rand(64, 3, 2, 2)
    x = (pixels - per_pixel(mean)) / per_pixel(std)
    w, b = 0.3 * torch.randn(3, 2, 2), 0.3   # small enough that no loss saturates to a zero gradient
    y = torch.randint(0, 2, (64,))
    epsilons = [0.0, 0.05, 0.2, 1.0]
    net = Recorded(w, b)
    accuracies = fgsm_accuracy(net, x, y, epsilons, mean, std)
    # By hand: the loss grows with z for label 0 and falls for label 1, so each pixel moves eps (in [0, 1] pixel
    # units) along sign(w) for label 0 and against it for label 1, then is clamped to [0, 1].
    direction = torch.where(y.view(-1, 1, 1, 1) == 0, 1.0, -1.0) * w.sign()
    for eps, accuracy, attacked in zip(epsilons, accuracies, net.seen[1:]):
        expected = (pixels + eps * direction).clamp(0, 1)
        seen = attacked * per_pixel(std) + per_pixel(mean)
        assert torch.allclose(seen, expected, atol=1e-6), f"eps={eps}"
        assert seen.min() >= -1e-6 and seen.max() <= 1 + 1e-6
        z = ((expected - per_pixel(mean)) / per_pixel(std)).flatten(1) @ w.flatten() + b
        assert z.abs().min() > 1e-4, "no decision so close to a tie that rounding could flip it"
        assert accuracy == pytest.approx(float(((z > 0).long() == y).float().mean()))
    assert accuracies[-1] < accuracies[0]
    assert set(net.seen[-1].mul(per_pixel(std)).add(per_pixel(mean)).round(decimals=5).unique().tolist()) == {0.0, 1.0}


def test_fgsm_clamping_can_decide_the_prediction():
    # One pixel at 0.9 (normalised (0.9 - 0.3) / 0.2 = 3), label 0, z = x - 3.6 = -0.6: correct. An eps of 0.2 pushes
    # it up; clamped at 1 it reads 3.5 and z = -0.1 (still correct), unclamped it would read 4 and z = 0.4.
    net = nn.Sequential(nn.Flatten(), nn.Linear(1, 2))
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([[0.0], [1.0]]))
        net[1].bias.copy_(torch.tensor([0.0, -3.6]))
    x = torch.full((1, 1, 1, 1), 3.0)
    assert fgsm_accuracy(net, x, torch.tensor([0]), [0.05, 0.2], torch.tensor([0.3]), torch.tensor([0.2])) == [1.0, 1.0]
    # The same push from 0.7 (normalised 2) is not clamped and must fail: 0.9 reads 3, then 0.2 more reads 4.
    x = torch.full((1, 1, 1, 1), 3.0 - 1.0)
    with torch.no_grad():
        net[1].bias.copy_(torch.tensor([0.0, -2.6]))
    assert fgsm_accuracy(net, x, torch.tensor([0]), [0.2], torch.tensor([0.3]), torch.tensor([0.2])) == [0.0]


def test_fgsm_counts_every_chunk():
    """The same attack in chunks of 7 (the last one partial) as in one chunk: every chunk's hits are added."""
    torch.manual_seed(0)
    mean, std = torch.tensor([0.4, 0.5, 0.6]), torch.tensor([0.2, 0.25, 0.3])
    x = (torch.rand(30, 3, 2, 2) - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)   # valid pixels, normalised
    y = torch.randint(0, 2, (30,))
    net = Recorded(0.3 * torch.randn(3, 2, 2), 0.3)
    whole = fgsm_accuracy(net, x, y, [0.0, 0.1], mean, std)
    assert fgsm_accuracy(net, x, y, [0.0, 0.1], mean, std, chunk=7) == whole
    assert whole[0] == int((net(x).argmax(1) == y).sum()) / 30


class FunctionalPool(nn.Module):
    """An average pool called as a function with its arguments by keyword, as a forward may call it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, kernel_size=2, stride=1)


@pytest.mark.parametrize("p", [1, 2])
def test_path_norm_through_one_and_three_dimensional_pools_and_keyword_arguments(p):
    """By hand: a pool over k inputs gives each of its k paths the weight 1/k, entering as (1/k)^p."""
    def readout(net: nn.Sequential, weights: list[float]) -> nn.Sequential:
        with torch.no_grad():
            net[-1].weight.copy_(torch.tensor([weights]))
        return net

    one_d = readout(nn.Sequential(nn.AvgPool1d(2), nn.Flatten(), nn.Linear(2, 1, bias=False)), [3.0, 4.0])
    # two outputs, each the mean of 2 inputs, read with weights 3 and 4
    assert path_norm(one_d, (1, 4), p) == pytest.approx((2 * 0.5 ** p * (3 ** p + 4 ** p)) ** (1 / p))
    three_d = readout(nn.Sequential(nn.AvgPool3d(2), nn.Flatten(), nn.Linear(1, 1, bias=False)), [3.0])
    assert path_norm(three_d, (1, 2, 2, 2), p) == pytest.approx((8 * (1 / 8) ** p * 3 ** p) ** (1 / p))
    keywords = readout(nn.Sequential(FunctionalPool(), nn.Flatten(), nn.Linear(4, 1, bias=False)), [1.0, 2.0, 3.0, 4.0])
    # a 3x3 image pooled in 2x2 windows at stride 1: four outputs, each the mean of 4 inputs
    assert path_norm(keywords, (1, 3, 3), p) == pytest.approx((4 * 0.25 ** p * (1 + 2 ** p + 3 ** p + 4 ** p)) ** (1 / p))
