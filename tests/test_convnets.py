import pytest
import torch

from badminima.core.config import ParameterError
from badminima.core.convnets import NAMES, build, describe

# The common pytorch-cifar counts (10 classes, 3 channels); DenseNet-40 (k=12, 24-channel stem) as implemented here.
FULL_WIDTH_PARAMETERS = {
    "vgg16": 14_728_266,
    "resnet18": 11_173_962,
    "resnet50": 23_520_842,
    "densenet40": 1_059_298,
}


# What the classifier sees (its input features) and the stem's output channels (3x3 convolutions, as in pytorch-cifar;
# DenseNet-40's 456 = 24 + 3 blocks x 12 layers x 12): a head or stem of another shape changes the count by a known
# amount.
FEATURES = {"vgg16": 512, "resnet18": 512, "resnet50": 2048, "densenet40": 456}
STEM = {"vgg16": 64, "resnet18": 64, "resnet50": 64, "densenet40": 24}


@pytest.mark.parametrize("name", NAMES)
def test_full_width_parameter_counts(name):
    """Exact: one 3x3 convolution more or less, or a bias, is a different count."""
    assert describe(build(name, 10))["parameters"] == FULL_WIDTH_PARAMETERS[name]


@pytest.mark.parametrize("name", NAMES)
def test_parameter_counts_follow_the_classes_and_the_input_channels(name):
    """100 classes add 90 rows (weights and bias) to the classifier; one input channel instead of three removes two
    3x3 filters from every stem output channel."""
    count = describe(build(name, 100, in_channels=1))["parameters"]
    assert count == FULL_WIDTH_PARAMETERS[name] + 90 * (FEATURES[name] + 1) - 2 * 9 * STEM[name]


@pytest.mark.parametrize("name", NAMES)
def test_forward_shapes(name):
    for in_channels in (1, 3):
        for size in (28, 32):
            for classes in (10, 100):
                net = build(name, classes, in_channels=in_channels, width=0.125, seed=0)
                out = net(torch.randn(2, in_channels, size, size))
                assert out.shape == (2, classes)
                assert torch.isfinite(out).all()


def test_channels_last_gives_the_same_logits():
    net = build("resnet18", 10, width=0.125, seed=0).eval()
    x = torch.randn(2, 3, 32, 32)
    expected = net(x)
    net = net.to(memory_format=torch.channels_last)
    assert torch.allclose(net(x.to(memory_format=torch.channels_last)), expected, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_width_scales_parameters_quadratically(name):
    ratio = describe(build(name, 10, width=0.5))["parameters"] / FULL_WIDTH_PARAMETERS[name]
    assert 0.22 < ratio < 0.28


def test_seed_fixes_weights_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    first = build("densenet40", 10, width=0.125, seed=3).state_dict()
    second = build("densenet40", 10, width=0.125, seed=3).state_dict()
    other = build("densenet40", 10, width=0.125, seed=4).state_dict()
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_unknown_name_is_a_one_line_error():
    with pytest.raises(ParameterError, match="model='alexnet'") as error:
        build("alexnet", 10)
    assert "\n" not in str(error.value)


def test_width_must_be_positive():
    with pytest.raises(ParameterError, match="width"):
        build("vgg16", 10, width=0.0)
