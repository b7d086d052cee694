import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from badminima.core.config import ParameterError
from badminima.core.data import images
from badminima.core.data.images import CIFAR10_CLASSES, MalformedDataError, MissingDataError, load, mnist_present
from badminima.core.data.transforms import crop_flip, crop_padding, subset, to_float

RNG = np.random.default_rng(0)


def write_idx(path: Path, array: np.ndarray, magic: int | None = None) -> None:
    magic = 0x800 + array.ndim if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def write_idx_set(folder: Path, n_train: int = 20, n_test: int = 10) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"train-images-idx3-ubyte": RNG.integers(0, 256, (n_train, 28, 28)),
              "train-labels-idx1-ubyte": np.arange(n_train) % 10,
              "t10k-images-idx3-ubyte": RNG.integers(0, 256, (n_test, 28, 28)),
              "t10k-labels-idx1-ubyte": (np.arange(n_test) + 3) % 10}
    for stem, array in arrays.items():
        write_idx(folder / f"{stem}.gz", array)
    return arrays


def write_pickle(path: Path, data: np.ndarray, labels: list[int], label_key: bytes) -> None:
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"test", b"data": data, label_key: labels}, f)


def write_pngs(folder: Path, count: int, value: int, mode: str = "RGB") -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        color = value + i if mode == "L" else (value + i,) * 3
        Image.new(mode, (32, 32), color).save(folder / f"img_{i}.png")


@pytest.mark.parametrize("name, folder", [("fashion_mnist", "fashion-mnist"), ("mnist", "mnist"),
                                          ("mnist", "MNIST/raw")])
def test_idx_sets_round_trip(tmp_path, name, folder):
    arrays = write_idx_set(tmp_path / folder)
    data = load(name, tmp_path)
    assert data.name == name and data.classes == 10
    assert data.x_train.shape == (20, 1, 28, 28) and data.x_train.dtype == torch.uint8
    assert data.y_train.shape == (20,) and data.y_train.dtype == torch.int64
    assert np.array_equal(data.x_train[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    assert np.array_equal(data.y_test.numpy(), arrays["t10k-labels-idx1-ubyte"])
    pixels = arrays["train-images-idx3-ubyte"] / 255
    assert data.mean == pytest.approx((pixels.mean(),)) and data.std == pytest.approx((pixels.std(),))


def test_idx_files_may_be_uncompressed(tmp_path, monkeypatch):
    arrays = write_idx_set(tmp_path / "mnist")
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    path.with_suffix("").write_bytes(gzip.decompress(path.read_bytes()))
    path.unlink()
    monkeypatch.setenv("BADMINIMA_DATA", str(tmp_path))
    assert np.array_equal(load("mnist").x_test[:, 0].numpy(), arrays["t10k-images-idx3-ubyte"])


def test_mnist_present_needs_all_four_files(tmp_path):
    assert not mnist_present(tmp_path)
    write_idx_set(tmp_path / "MNIST" / "raw")
    assert mnist_present(tmp_path)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").unlink()
    assert not mnist_present(tmp_path)


def test_wrong_idx_magic_is_one_line_error(tmp_path):
    write_idx_set(tmp_path / "mnist")
    write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", np.arange(20) % 10, magic=0x0801 + 0x100)
    with pytest.raises(MalformedDataError, match=r"train-labels-idx1-ubyte.gz is not an IDX file.*0x00000801"
                       ) as err:
        load("mnist", tmp_path)
    assert "\n" not in str(err.value)


def test_truncated_idx_is_malformed(tmp_path):
    write_idx_set(tmp_path / "mnist")
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-5]))
    with pytest.raises(MalformedDataError, match="header says"):
        load("mnist", tmp_path)


def test_missing_idx_set_says_where(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "nowhere")
    with pytest.raises(MissingDataError) as err:
        load("fashion_mnist", tmp_path)
    message = str(err.value)
    assert "\n" not in message and isinstance(err.value, FileNotFoundError)
    assert message.startswith("fashion_mnist: expected train-images-idx3-ubyte")
    assert f"{tmp_path}/fashion-mnist/ or {tmp_path}/nowhere/" in message


def test_cifar10_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = [RNG.integers(0, 256, (4, 3072), dtype=np.uint8) for _ in range(6)]
    for i, batch in enumerate(batches[:5]):
        write_pickle(folder / f"data_batch_{i + 1}", batch, [i, i, 9, 0], b"labels")
    write_pickle(folder / "test_batch", batches[5], [1, 2, 3, 4], b"labels")
    data = load("cifar10", tmp_path)
    assert data.classes == 10 and data.x_train.shape == (20, 3, 32, 32) and data.x_test.shape == (4, 3, 32, 32)
    assert data.y_train.tolist()[:8] == [0, 0, 9, 0, 1, 1, 9, 0] and data.y_test.tolist() == [1, 2, 3, 4]
    # Row-major planes: the first 1024 bytes are the red channel of the 32x32 image.
    assert np.array_equal(data.x_train[4, 0].numpy().ravel(), batches[1][0, :1024])
    assert np.array_equal(data.x_test[3, 2].numpy().ravel(), batches[5][3, 2048:])
    pixels = np.concatenate(batches[:5]).reshape(20, 3, 1024) / 255
    assert data.mean == pytest.approx(tuple(pixels.mean((0, 2)))) and data.std == pytest.approx(tuple(pixels.std((0, 2))))


def test_missing_cifar_batch_is_one_line_error(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    write_pickle(folder / "data_batch_1", np.zeros((1, 3072), np.uint8), [0], b"labels")
    with pytest.raises(MissingDataError) as err:
        load("cifar10", tmp_path)
    assert str(err.value) == (f"cifar10: expected {folder}/data_batch_1..5 and test_batch (the python version from "
                              f"the CIFAR page); {folder}/data_batch_2 not found")


def test_cifar100_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    x = RNG.integers(0, 256, (5, 3072), dtype=np.uint8)
    write_pickle(folder / "train", x, [0, 99, 50, 7, 7], b"fine_labels")
    write_pickle(folder / "test", x[:2], [3, 4], b"fine_labels")
    data = load("cifar100", tmp_path)
    assert data.classes == 100 and data.y_train.tolist() == [0, 99, 50, 7, 7]
    assert np.array_equal(data.x_train.reshape(5, -1).numpy(), x)


@pytest.mark.parametrize("content, match", [
    (b"not a pickle", "is not a CIFAR pickle"),
    (pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]}), "keys b'data' and b'fine_labels'"),
    (pickle.dumps({b"data": np.zeros((1, 100), np.uint8), b"fine_labels": [0]}), r"expected uint8 \(N, 3072\)"),
    (pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"fine_labels": [100]}), "labels outside 0..99"),
    (pickle.dumps(Path("x")), "refusing to load pathlib"),
])
def test_malformed_cifar_pickles(tmp_path, content, match):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    (folder / "train").write_bytes(content)
    with pytest.raises(MalformedDataError, match=match) as err:
        load("cifar100", tmp_path)
    assert "\n" not in str(err.value)


def test_cinic10_png_folders(tmp_path):
    for label, cls in enumerate(CIFAR10_CLASSES):
        write_pngs(tmp_path / "CINIC-10" / "train" / cls, 2, 10 * label)
        write_pngs(tmp_path / "CINIC-10" / "test" / cls, 1, 10 * label + 5, mode="L" if cls == "cat" else "RGB")
    write_pngs(tmp_path / "CINIC-10" / "valid" / "airplane", 1, 0)  # valid is not used
    data = load("cinic10", tmp_path)
    assert data.x_train.shape == (20, 3, 32, 32) and data.x_test.shape == (10, 3, 32, 32) and data.classes == 10
    assert data.y_train.tolist() == [label for label in range(10) for _ in range(2)]
    assert data.x_train[3].unique().tolist() == [11] and data.x_test[3].unique().tolist() == [35]
    assert (tmp_path / "CINIC-10" / "cinic10_32x32.npz").is_file()
    again = load("cinic10", tmp_path)
    assert torch.equal(again.x_train, data.x_train) and torch.equal(again.y_test, data.y_test)


def test_cinic10_cache_follows_the_files(tmp_path):
    for cls in CIFAR10_CLASSES:
        write_pngs(tmp_path / "CINIC-10" / "train" / cls, 1, 0)
        write_pngs(tmp_path / "CINIC-10" / "test" / cls, 1, 0)
    assert len(load("cinic10", tmp_path).x_train) == 10
    Image.new("RGB", (32, 32), 7).save(tmp_path / "CINIC-10" / "train" / "ship" / "new.png")
    assert len(load("cinic10", tmp_path).x_train) == 11
    cache = tmp_path / "CINIC-10" / "cinic10_32x32.npz"
    cache.write_bytes(b"truncated")
    assert len(load("cinic10", tmp_path).x_train) == 11 and cache.stat().st_size > 11 * 3072


def test_missing_cinic_class_folder(tmp_path):
    write_pngs(tmp_path / "CINIC-10" / "train" / "airplane", 1, 0)
    with pytest.raises(MissingDataError, match=r"cinic10: expected .*/CINIC-10/\{train,test\}/<class>/\*\.png .*"
                                               r"automobile not found$"):
        load("cinic10", tmp_path)


def imagenet_tree(root: Path) -> list[str]:
    """A few wnids of an ImageNet tree with the full wnid list in wnids.txt (in an unsorted order)."""
    wnids = [f"n{i:08d}" for i in range(1000)]
    (root / "imagenet").mkdir(parents=True)
    (root / "imagenet" / "wnids.txt").write_text("\n".join(reversed(wnids)) + "\n")
    for split, sizes in (("train", [(500, 375), (40, 90)]), ("val", [(64, 64)])):
        for index in (151, 30, 319, 0, 500):  # dog, frog, insect, and two classes outside the super-classes
            folder = root / "imagenet" / split / wnids[index]
            folder.mkdir(parents=True)
            for i, size in enumerate(sizes):
                Image.new("RGB", size, (index % 256, 100, 200)).save(folder / f"{wnids[index]}_{i}.JPEG")
    return wnids


def test_restricted_imagenet_maps_and_resizes(tmp_path):
    imagenet_tree(tmp_path)
    data = load("restricted_imagenet", tmp_path)
    assert data.classes == 9
    assert data.x_train.shape == (6, 3, 32, 32) and data.x_test.shape == (3, 3, 32, 32)
    assert sorted(data.y_train.tolist()) == [0, 0, 2, 2, 8, 8] and sorted(data.y_test.tolist()) == [0, 2, 8]
    dog = data.x_train[data.y_train == 0].float()
    assert torch.allclose(dog.mean((0, 2, 3)), torch.tensor([151.0, 100.0, 200.0]), atol=3)
    assert (tmp_path / "imagenet" / "restricted_imagenet_32x32.npz").is_file()
    assert torch.equal(load("restricted_imagenet", tmp_path).x_train, data.x_train)


def test_restricted_imagenet_needs_the_wnid_list(tmp_path):
    imagenet_tree(tmp_path)
    (tmp_path / "imagenet" / "wnids.txt").unlink()
    with pytest.raises(MissingDataError, match="has 5 wnid folders, not 1000, and .*wnids.txt not found"):
        load("restricted_imagenet", tmp_path)
    (tmp_path / "imagenet" / "wnids.txt").write_text("n00000001\nn00000002\n")
    with pytest.raises(MalformedDataError, match="lists 2 wnids"):
        load("restricted_imagenet", tmp_path)


def test_broken_image_is_malformed(tmp_path):
    dog = imagenet_tree(tmp_path)[151]
    (tmp_path / "imagenet" / "val" / dog / f"{dog}_0.JPEG").write_bytes(b"junk")
    with pytest.raises(MalformedDataError, match="is not a readable image"):
        load("restricted_imagenet", tmp_path)


def test_unknown_name_and_default_folder(tmp_path, monkeypatch):
    with pytest.raises(ParameterError, match="dataset='svhn' is not allowed"):
        load("svhn", tmp_path)
    monkeypatch.delenv("BADMINIMA_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingDataError, match=r"expected data/cifar-100-python/train and test"):
        load("cifar100")


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="Fashion-MNIST not installed")
def test_real_fashion_mnist(tmp_path):
    data = load(data_dir=tmp_path)
    assert data.name == "fashion_mnist" and data.classes == 10
    assert data.x_train.shape == (60000, 1, 28, 28) and data.x_test.shape == (10000, 1, 28, 28)
    assert torch.bincount(data.y_train).tolist() == [6000] * 10
    assert data.mean[0] == pytest.approx(0.286, abs=1e-3) and data.std[0] == pytest.approx(0.353, abs=1e-3)


def test_subset_is_seeded_and_balanced():
    y = torch.arange(100) % 4
    x = torch.arange(100)
    xs, ys = subset(x, y, 5, seed=1)
    assert torch.bincount(ys).tolist() == [5, 5, 5, 5] and torch.equal(y[xs], ys)
    assert len(set(xs.tolist())) == 20
    assert not torch.equal(ys, ys.sort().values), "the order is shuffled, not grouped by class"
    again, _ = subset(x, y, 5, seed=1)
    other, _ = subset(x, y, 5, seed=2)
    assert torch.equal(xs, again) and not torch.equal(xs, other)


def test_subset_needs_enough_images():
    y = torch.tensor([0, 0, 0, 2, 2, 2])
    with pytest.raises(ParameterError, match=r"per_class=2 is more than class 1 has \(0 images\)"):
        subset(torch.zeros(6), y, 2, seed=0)
    with pytest.raises(ParameterError, match="per_class=4 is more than class 0 has"):
        subset(torch.zeros(6), torch.tensor([0, 0, 0, 1, 1, 1]), 4, seed=0)


def test_crop_flip_shape_and_seed():
    x = torch.rand(1, 16, 3, 8, 8)
    out = crop_flip(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out, crop_flip(x, torch.Generator().manual_seed(0)))
    assert not torch.equal(out, crop_flip(x, torch.Generator().manual_seed(1)))


def test_crop_flip_without_padding_only_flips():
    x = torch.rand(64, 2, 5, 5)
    out = crop_flip(x, torch.Generator().manual_seed(0), padding=0)
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert bool((same | mirrored).all()) and 10 < int(mirrored.sum()) < 54


def test_crop_without_flip_crops_as_the_flipping_one_and_never_mirrors():
    x = torch.rand(64, 2, 5, 5)
    assert torch.equal(crop_flip(x, torch.Generator().manual_seed(0), padding=0, flip=False), x)
    # A left-right asymmetric spot: a crop moves it, a flip would mirror it.
    spot = torch.zeros(64, 1, 9, 9)
    spot[:, 0, 4, 2] = 1
    plain = crop_flip(spot, torch.Generator().manual_seed(0), padding=2, flip=False)
    flipped = crop_flip(spot, torch.Generator().manual_seed(0), padding=2)
    shifts = (plain[:, 0] == 1).nonzero()[:, 1:]
    assert bool(((shifts[:, 1] >= 0) & (shifts[:, 1] <= 4)).all()), "column 2 moved by at most 2 either way"
    mirrored = ~(plain == flipped).flatten(1).all(1)
    assert 10 < int(mirrored.sum()) < 54, "the same crops, about half of them mirrored where flips are on"


@pytest.mark.parametrize("side, padding", [(32, 4), (28, 4), (16, 2), (12, 2), (11, 1), (8, 1), (3, 1)])
def test_the_crop_padding_is_an_eighth_of_the_side_rounded_half_up_and_at_least_one(side, padding):
    assert crop_padding(side, side) == padding
    assert crop_padding(side, 64) == padding, "the shorter side sets it"


def test_crop_flip_offsets_differ_per_image():
    # A single bright pixel shows where each image's crop window landed.
    x = torch.zeros(32, 1, 9, 9)
    x[:, 0, 4, 4] = 1
    out = crop_flip(x, torch.Generator().manual_seed(0), padding=2)
    spots = {tuple(spot) for spot in (out[:, 0] == 1).nonzero()[:, 1:].tolist()}
    assert len(spots) > 5
    assert all(2 <= r <= 6 and 2 <= c <= 6 for r, c in spots) and int(out.sum()) == 32


def test_to_float_normalises_per_channel():
    x = torch.tensor([0, 255], dtype=torch.uint8).reshape(1, 2, 1, 1).expand(1, 2, 2, 2)
    out = to_float(x, mean=(0.0, 0.5), std=(1.0, 0.5), device="cpu")
    assert out.dtype == torch.float32
    assert torch.allclose(out[0, 0], torch.zeros(2, 2)) and torch.allclose(out[0, 1], torch.ones(2, 2))


def test_a_data_folder_missing_one_file_is_one_line_naming_it_never_the_system_copy(tmp_path):
    write_idx_set(tmp_path / "fashion-mnist")
    (tmp_path / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    for read in (lambda: load("fashion_mnist", tmp_path), lambda: images.fingerprint("fashion_mnist", tmp_path)):
        with pytest.raises(MissingDataError) as err:
            read()
        message = str(err.value)
        assert "\n" not in message and f"{tmp_path / 'fashion-mnist'}/ lacks t10k-labels-idx1-ubyte" in message


def test_the_fingerprint_names_the_folder_the_files_were_read_from(tmp_path):
    write_idx_set(tmp_path / "given" / "MNIST" / "raw")
    assert images.fingerprint("mnist", tmp_path / "given")["folder"] == str(tmp_path / "given" / "MNIST" / "raw")
    write_idx_set(tmp_path / "own" / "fashion-mnist")
    assert images.fingerprint("fashion_mnist", tmp_path / "own")["folder"] == str(tmp_path / "own" / "fashion-mnist")


@pytest.mark.skipif(not images.FASHION_MNIST_SYSTEM_DIR.is_dir(), reason="Fashion-MNIST not installed")
def test_a_data_folder_without_fashion_mnist_reads_the_system_copy_and_says_so(tmp_path):
    assert images.source_folder("fashion_mnist", tmp_path) == images.FASHION_MNIST_SYSTEM_DIR


def test_an_idx_set_is_decoded_once_while_its_files_are_unchanged(tmp_path, monkeypatch):
    write_idx_set(tmp_path / "mnist")
    reads = []
    real = images.LOADERS["mnist"]
    monkeypatch.setitem(images.LOADERS, "mnist", lambda folder: reads.append(folder) or real(folder))
    first = load("mnist", tmp_path)
    first.x_train.zero_()   # a caller's change in place is not seen by the next load
    second = load("mnist", tmp_path)
    assert len(reads) == 1 and second.x_train.any()
    rewritten = write_idx_set(tmp_path / "mnist", n_train=30)
    third = load("mnist", tmp_path)
    assert len(reads) == 2 and np.array_equal(third.x_train[:, 0].numpy(), rewritten["train-images-idx3-ubyte"])
