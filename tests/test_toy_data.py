import pytest
import torch

from badminima.core.config import ParameterError
from badminima.core.data.toy import DATASETS, draw, noisy_copies


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_shapes_classes_and_seeds(name):
    (x, y), (xt, yt) = draw(name, 100, 40, seed=3)
    assert x.shape == (100, 2) and y.shape == (100,) and xt.shape == (40, 2) and yt.shape == (40,)
    assert x.dtype == torch.float32 and set(y.tolist()) == {0, 1}
    assert int((y == 1).sum()) == 50, "training classes are balanced"
    (x2, y2), (xt2, _) = draw(name, 100, 40, seed=3)
    assert torch.equal(x, x2) and torch.equal(y, y2) and torch.equal(xt, xt2)
    (x3, _), _ = draw(name, 100, 40, seed=4)
    assert not torch.equal(x, x3)
    assert not torch.equal(x[:40], xt), "the test set is a separate draw"


def test_paper_b_gaussian_means():
    (x, y), _ = draw("gaussians", 4000, 2, seed=0)
    assert torch.allclose(x[y == 1].mean(0), torch.tensor([2.5, 2.5]), atol=0.1)
    assert torch.allclose(x[y == 0].mean(0), torch.tensor([-2.5, -2.5]), atol=0.1)
    assert torch.allclose(x[y == 1].std(0), torch.ones(2), atol=0.1)


def test_circles_inner_disc_and_outer_ring():
    (x, y), _ = draw("circles", 4000, 2, seed=0, noise=0.0)
    r = x.norm(dim=1)
    assert r[y == 0].max() <= 5.0 + 1e-4 and r[y == 1].min() >= 5.0 - 1e-4


def test_spiral_radius_grows_with_class():
    (x, y), _ = draw("spirals", 4000, 2, seed=0, jitter=0.0)
    assert float(x[y == 1].norm(dim=1).mean()) == pytest.approx(2 * float(x[y == 0].norm(dim=1).mean()), rel=0.1)
    assert x.norm(dim=1).max() <= 20.0 + 1e-4


def test_unknown_dataset_is_one_line_error():
    with pytest.raises(ParameterError, match="dataset='moons' is not allowed; choose one of") as err:
        draw("moons", 10, 10, seed=0)
    assert "\n" not in str(err.value)


def test_noisy_copies_keep_originals_and_labels():
    (x, y), _ = draw("two_gaussians", 10, 2, seed=0)
    xa, ya = noisy_copies(x[None], y[None], 2, 0.5, torch.Generator().manual_seed(0))
    assert xa.shape == (1, 30, 2) and torch.equal(xa[0, :10], x)
    assert torch.equal(ya[0], y.repeat(3))
    assert 0.3 < (xa[0, 10:] - x.repeat(2, 1)).std() < 0.7
