import torch

from badminima.core.data.labels import random_labels
from badminima.paper_a.algorithm1 import algorithm1_set, zero_out


def images(n=6, seed=0):
    return torch.randint(1, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_zero_out_counts_values_per_image():
    x = images()
    out = zero_out(x, 0.10, torch.Generator().manual_seed(0))
    assert out.dtype == torch.uint8 and out.shape == x.shape
    assert (out == 0).flatten(1).sum(1).tolist() == [int(192 * 0.10)] * 6   # int(C*H*W*N/100) values
    kept = out != 0
    assert torch.equal(out[kept], x[kept]), "only zeroing, nothing else changes"
    assert not torch.equal((out[0] == 0), (out[1] == 0)), "each image its own positions"
    assert torch.equal(x, images()), "the input is untouched"


def test_zero_out_whole_pixels_zeroes_every_channel():
    out = zero_out(images(), 0.25, torch.Generator().manual_seed(0), whole_pixels=True)
    zero = out == 0
    assert torch.equal(zero.all(1), zero.any(1)), "a zeroed pixel is zero in all channels"
    assert zero.all(1).flatten(1).sum(1).tolist() == [16] * 6


def test_algorithm1_set_is_fixed_by_its_seed():
    x = images(n=50)
    c, y = algorithm1_set(x, classes=10, replication=3, noise_percent=10, seed=7)
    assert c.shape == (150, 3, 8, 8) and y.shape == (150,)
    assert torch.equal(c[50:100][c[50:100] != 0], x[c[50:100] != 0]), "copy 2 is image-aligned with x"
    assert not torch.equal(c[:50], c[50:100]), "copies differ in their zeroed values"
    assert set(y.tolist()) == set(range(10))
    assert float((y[:50] == y[50:100]).float().mean()) < 0.4, "each copy of an image draws its own label"
    assert (c == 0).flatten(1).sum(1).tolist() == [int(192 * 0.10)] * 150, "every copy has its values zeroed"
    c2, y2 = algorithm1_set(x, classes=10, replication=3, noise_percent=10, seed=7)
    assert torch.equal(c, c2) and torch.equal(y, y2)
    assert not torch.equal(y, algorithm1_set(x, 10, 3, 10, seed=8)[1])


def test_random_labels_uniform_and_seeded():
    y = random_labels(20000, 4, seed=1)
    assert torch.equal(y, random_labels(20000, 4, seed=1))
    counts = torch.bincount(y, minlength=4).float() / 20000
    assert torch.allclose(counts, torch.full((4,), 0.25), atol=0.02)


def test_algorithm1_set_zeroes_noise_percent_of_every_copy_and_whole_pixels_when_asked():
    x = images(n=4)
    c, _ = algorithm1_set(x, classes=10, replication=2, noise_percent=50, seed=0)
    assert (c == 0).flatten(1).sum(1).tolist() == [96] * 8, "int(192 * 50 / 100) values per copy"
    c, _ = algorithm1_set(x, classes=10, replication=2, noise_percent=50, seed=0, whole_pixels=True)
    zero = c == 0
    assert torch.equal(zero.all(1), zero.any(1)), "a zeroed pixel is zero in all channels"
    assert zero.all(1).flatten(1).sum(1).tolist() == [32] * 8, "int(64 * 50 / 100) pixels per copy"


def test_zero_out_draws_the_same_values_whatever_the_chunk():
    """The chunks only bound memory: the last, partial chunk included, every row gets its own k positions and the
    result equals one draw over all rows."""
    x = images(n=10)
    for whole_pixels in (False, True):
        whole = zero_out(x, 0.3, torch.Generator().manual_seed(4), whole_pixels, chunk=10)
        chunked = zero_out(x, 0.3, torch.Generator().manual_seed(4), whole_pixels, chunk=3)
        assert torch.equal(chunked, whole)


def test_algorithm1_set_larger_than_one_chunk_equals_one_draw():
    """The real sets (60,000 images times R) span many of zero_out's 4096-row chunks: here 2 x 2100 copies."""
    x = torch.randint(1, 256, (2100, 1, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    c, y = algorithm1_set(x, classes=10, replication=2, noise_percent=25, seed=3)
    gen = torch.Generator().manual_seed(3)
    one_chunk = zero_out(x.repeat(2, 1, 1, 1), 0.25, gen, chunk=len(c))
    assert len(c) > 4096 and torch.equal(c, one_chunk)
    assert (c == 0).flatten(1).sum(1).eq(4).all(), "int(16 * 25 / 100) values in every copy, both chunks"
    assert torch.equal(y, torch.randint(0, 10, (len(c),), generator=gen)), "the labels follow the noise's draw"
