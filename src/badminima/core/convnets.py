"""Convolutional networks for the image experiments: the CIFAR versions of VGG16 (with batch norm), ResNet18 and
ResNet50 that the paper's public code takes from the common pytorch-cifar collection, and the original DenseNet-40
with growth rate 12. Each maps (batch, channels, height, width) images of 28x28 or 32x32 pixels to (batch, classes)
logits, keeps PyTorch's default initialisation (the paper's "random init"), and takes a width multiplier so the cpu
scale can train narrow versions of the same architectures."""
from __future__ import annotations

from functools import partial
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from badminima.core.config import ParameterError, check_choice, check_range

Tensor = torch.Tensor


def scaled(channels: int, width: float) -> int:
    """A channel count under the width multiplier, never below one channel."""
    return max(1, round(channels * width))


def global_pool(x: Tensor) -> Tensor:
    # Averaging whatever spatial size is left lets one classifier serve 28x28 and 32x32 inputs.
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG(nn.Module):
    """VGG with batch norm after every 3x3 convolution and one linear classifier, as in pytorch-cifar."""

    def __init__(self, classes: int, in_channels: int = 3, width: float = 1.0, cfg: tuple = VGG16):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for item in cfg:
            if item == "M":
                # ceil_mode lets 28x28 inputs survive five poolings (28, 14, 7, 4, 2, 1); 32x32 ones are unaffected.
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
                continue
            cout = scaled(item, width)
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(cin, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(global_pool(self.features(x)))


def shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    """Identity where shapes agree, else a strided 1x1 convolution with batch norm (pytorch-cifar's option B)."""
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = shortcut(cin, planes, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = shortcut(cin, cout, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR ResNet: a 3x3 stride-1 stem without max-pool, four stages of widths 64-128-256-512 (each after the
    first halving the resolution), global average pooling and a linear classifier."""

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], blocks: tuple[int, ...], classes: int,
                 in_channels: int = 3, width: float = 1.0):
        super().__init__()
        cin = scaled(64, width)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, cin, 3, padding=1, bias=False), nn.BatchNorm2d(cin),
                                  nn.ReLU())
        stages = []
        for i, (count, planes) in enumerate(zip(blocks, (64, 128, 256, 512))):
            planes = scaled(planes, width)
            stage = []
            for j in range(count):
                stage.append(block(cin, planes, 2 if i > 0 and j == 0 else 1))
                cin = planes * block.expansion
            stages.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*stages)
        self.classifier = nn.Linear(cin, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(global_pool(self.stages(self.stem(x))))


class DenseLayer(nn.Module):
    """BN-ReLU-conv3x3 adding `growth` feature maps to those it was given."""

    members = 1   # networks packed side by side along the channels (core.packed): each concatenates its own maps

    def __init__(self, cin: int, growth: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(cin)
        self.conv = nn.Conv2d(cin, growth, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        new = self.conv(F.relu(self.bn(x)))
        if self.members == 1:
            return torch.cat([x, new], 1)
        by_member = lambda t: t.unflatten(1, (self.members, -1))
        return torch.cat([by_member(x), by_member(new)], 2).flatten(1, 2)


def transition(channels: int) -> nn.Sequential:
    """BN-ReLU-conv1x1-avgpool between dense blocks, keeping the channel count (no compression)."""
    return nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(), nn.Conv2d(channels, channels, 1, bias=False),
                         nn.AvgPool2d(2))


class DenseNet(nn.Module):
    """The original CIFAR DenseNet (no bottleneck, no compression): a 3x3 stem of 2 * growth channels, three dense
    blocks of (depth - 4) / 3 layers joined by transitions, then BN-ReLU, global average pooling and a linear
    classifier. Depth 40 with growth 12 is the paper's DenseNet-40."""

    def __init__(self, classes: int, in_channels: int = 3, width: float = 1.0, depth: int = 40, growth: int = 12):
        super().__init__()
        growth = scaled(growth, width)
        layers_per_block = (depth - 4) // 3
        channels = 2 * growth
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)]
        for block in range(3):
            for _ in range(layers_per_block):
                layers.append(DenseLayer(channels, growth))
                channels += growth
            if block < 2:
                layers.append(transition(channels))
        layers += [nn.BatchNorm2d(channels), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(global_pool(self.features(x)))


ARCHITECTURES = {
    "vgg16": VGG,
    "resnet18": partial(ResNet, BasicBlock, (2, 2, 2, 2)),
    "resnet50": partial(ResNet, Bottleneck, (3, 4, 6, 3)),
    "densenet40": DenseNet,
}
NAMES = tuple(ARCHITECTURES)
# Factories given in memory (a user's own networks): `build` makes them by name, so the runs keyed by a model's name
# train them unchanged. Kept apart from ARCHITECTURES so that NAMES stays the chapters' models.
REGISTERED: dict[str, Callable[..., nn.Module]] = {}


def register(name: str, factory: Callable[..., nn.Module]) -> None:
    """Make `build(name, ...)` return `factory(classes=..., in_channels=..., width=...)`, as it calls the built-in
    architectures, for the rest of this process. A built-in name is refused; registering a name again replaces
    its factory."""
    if name in ARCHITECTURES:
        raise ParameterError(f"name={name!r} is a built-in architecture; allowed: any other name")
    REGISTERED[name] = factory


def build(name: str, classes: int, in_channels: int = 3, width: float = 1.0, seed: int | None = None) -> nn.Module:
    """The network `name` mapping (batch, in_channels, H, W) images to (batch, classes) logits. With `seed`, its
    weights depend on the seed alone and the global random state is left as it was."""
    make = {**ARCHITECTURES, **REGISTERED}[check_choice("model", name, (*NAMES, *REGISTERED))]
    check_range("classes", classes, low=1, integer=True)
    check_range("in_channels", in_channels, low=1, integer=True)
    check_range("width", width)
    if width <= 0:
        raise ParameterError(f"width={width!r} must be positive")
    if seed is None:
        return make(classes=classes, in_channels=in_channels, width=width)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make(classes=classes, in_channels=in_channels, width=width)


def describe(model: nn.Module) -> dict[str, Any]:
    """The architecture's class name and its number of trainable parameters."""
    return {"architecture": type(model).__name__,
            "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad)}
