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


@pytest.mark.parametrize("name", NAMES)
def test_full_width_parameter_counts(name):
    count = describe(build(name, 10))["parameters"]
    assert count == pytest.approx(FULL_WIDTH_PARAMETERS[name], rel=0.01)


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
