"""Real image data sets, read from their distributed on-disk formats with numpy and pillow (never torchvision).

`load(name, data_dir)` gives an `ImageData`: uint8 images (N, C, H, W), int64 labels (N,), the class count and the
training set's per-channel mean and std. The data folder is `data_dir`, else the environment variable BADMINIMA_DATA,
else ./data. Layouts looked for (`<data>` is the data folder):

- fashion_mnist: train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte
  (each gzipped or not) in <data>/fashion-mnist/, else in /usr/share/datasets/fashion-mnist/ (Debian package
  dataset-fashion-mnist).
- mnist: the same four IDX files in <data>/mnist/ or <data>/MNIST/raw/ (torchvision's layout).
- cifar10: <data>/cifar-10-batches-py/data_batch_1..5 and test_batch (the python version from the CIFAR page).
- cifar100: <data>/cifar-100-python/train and test, fine labels.
- cinic10: <data>/CINIC-10/{train,test}/<class>/*.png; train (90k) for training, test (90k) for testing.
- restricted_imagenet: <data>/imagenet/{train,val}/<wnid>/*.JPEG (val sorted into wnid folders too), mapped to the
  9 super-classes of Tsipras et al. An ImageNet class index is the wnid's position in the sorted list of all 1000
  wnids: that list is the folder names under train/ when all 1000 are there, else it is read from
  <data>/imagenet/wnids.txt (the first word of each line is a wnid, so LOC_synset_mapping.txt also serves; the
  order of the lines does not matter). Images are squashed to 32x32.

The two folder-of-images sets are decoded once and cached as a .npz beside the data; the cache is rebuilt when the
list of image files changes. Missing files raise MissingDataError, unreadable ones MalformedDataError, each with a
one-line message saying what is expected where.
"""
from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import io
import os
import pickle
import zipfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from badminima.core.config import ParameterError, check_choice

Tensor = torch.Tensor
Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]

FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Robustness library's RestrictedImageNet: inclusive ranges of sorted ImageNet class indices; label = position here.
RESTRICTED_IMAGENET_RANGES = {
    "dog": (151, 268), "cat": (281, 285), "frog": (30, 32), "turtle": (33, 37), "bird": (80, 100),
    "primate": (365, 382), "fish": (389, 397), "crab": (118, 121), "insect": (300, 319),
}
IMAGE_SIZE = 32


class MissingDataError(FileNotFoundError):
    """A data set's files are not where the loader looks; the one-line message says what is expected where."""


class MalformedDataError(ValueError):
    """A data set's file is there but not in its format; the one-line message names the file and the fault."""


@dataclasses.dataclass(frozen=True, eq=False)
class ImageData:
    """Train and test images (uint8, (N, C, H, W)) and labels (int64, (N,)); mean and std are per channel on the
    [0, 1] scale of `to_float`, computed from the training images."""
    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _check_labels(name: str, path: Path, x: np.ndarray, y: np.ndarray, classes: int) -> None:
    if len(x) != len(y):
        raise MalformedDataError(f"{name}: {path} holds {len(x)} images but {len(y)} labels")
    if len(y) and (y.min() < 0 or y.max() >= classes):
        raise MalformedDataError(f"{name}: {path} has labels outside 0..{classes - 1}")


# IDX (MNIST family)

def _idx_path(directory: Path, stem: str) -> Path | None:
    for path in (directory / f"{stem}.gz", directory / stem):
        if path.is_file():
            return path
    return None


def _read_idx(name: str, path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes: magic 0x00000800 + ndim, then ndim big-endian sizes, then the bytes."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise MalformedDataError(f"{name}: {path} is not readable ({_one_line(err)})") from err
    magic = 0x800 + ndim
    found = int.from_bytes(data[:4], "big")
    if len(data) < 4 + 4 * ndim or found != magic:
        raise MalformedDataError(f"{name}: {path} is not an IDX file of {ndim}-dimensional unsigned bytes "
                                 f"(magic number {found:#010x}, expected {magic:#010x})")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != np.prod(shape):
        raise MalformedDataError(f"{name}: {path} has {body.size} data bytes but its header says {shape}")
    return body.reshape(shape).copy()  # writable: torch.from_numpy warns on a read-only buffer


def _find_idx_files(name: str, directories: Sequence[Path]) -> list[Path]:
    """The four IDX files from the first directory that holds any of them. A directory that holds some but not all
    is an error naming the first file missing: reading the rest from the next directory (the system copy, say)
    would train on other data than the folder given."""
    for directory in directories:
        paths = [_idx_path(directory, stem) for stem in IDX_FILES]
        if all(paths):
            return paths
        if any(paths):
            missing = IDX_FILES[paths.index(None)]
            raise MissingDataError(f"{name}: {directory}/ lacks {missing} (gzipped or not) but holds others of its "
                                   f"files; allowed: all four of {', '.join(IDX_FILES)} in that folder")
    where = " or ".join(f"{d}/" for d in directories)
    raise MissingDataError(f"{name}: expected {', '.join(IDX_FILES)} (each gzipped or not) in {where}; not found")


def _load_idx(name: str, directories: Sequence[Path]) -> Arrays:
    paths = _find_idx_files(name, directories)
    arrays = []
    for images, labels in (paths[:2], paths[2:]):
        x, y = _read_idx(name, images, 3)[:, None], _read_idx(name, labels, 1).astype(np.int64)
        _check_labels(name, labels, x, y, 10)
        arrays += [x, y]
    return (*arrays, 10)


def _fashion_mnist_dirs(root: Path) -> list[Path]:
    return [root / "fashion-mnist", FASHION_MNIST_SYSTEM_DIR]


def _fashion_mnist(root: Path) -> Arrays:
    return _load_idx("fashion_mnist", _fashion_mnist_dirs(root))


def _mnist_dirs(root: Path) -> list[Path]:
    return [root / "mnist", root / "MNIST" / "raw"]


def _mnist(root: Path) -> Arrays:
    return _load_idx("mnist", _mnist_dirs(root))


def mnist_present(data_dir: str | os.PathLike | None = None) -> bool:
    """Whether the data folder holds MNIST's four IDX files (by name: reading them is left to `load`)."""
    try:
        _find_idx_files("mnist", _mnist_dirs(data_folder(data_dir)))
    except MissingDataError:
        return False
    return True


# CIFAR python pickles

class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds only containers and numpy arrays: opening a data file must not be able to run code."""
    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")} | {
        (f"numpy.{core}.{module}", name) for core in ("core", "_core")
        for module, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer"))}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _read_cifar(name: str, path: Path, label_key: bytes, classes: int, expected: str
                ) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise MissingDataError(f"{name}: expected {expected}; {path} not found")
    try:
        batch = _ArrayUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except Exception as err:  # unpickling garbage can fail with almost any exception type
        raise MalformedDataError(f"{name}: {path} is not a CIFAR pickle ({_one_line(err)})") from err
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        raise MalformedDataError(f"{name}: {path} is not a dict with keys b'data' and {label_key!r}")
    x = np.array(batch[b"data"])  # a copy: arrays unpickled from protocol 5 buffers are read-only
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3 * IMAGE_SIZE ** 2:
        raise MalformedDataError(f"{name}: {path} b'data' is {x.dtype} {x.shape}, expected uint8 (N, 3072)")
    y = np.array(batch[label_key], dtype=np.int64)
    _check_labels(name, path, x, y, classes)
    return x.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE), y


def _cifar10(root: Path) -> Arrays:
    folder = root / "cifar-10-batches-py"
    expected = f"{folder}/data_batch_1..5 and test_batch (the python version from the CIFAR page)"
    train = [_read_cifar("cifar10", folder / f"data_batch_{i}", b"labels", 10, expected) for i in range(1, 6)]
    x_test, y_test = _read_cifar("cifar10", folder / "test_batch", b"labels", 10, expected)
    return np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), x_test, y_test, 10


def _cifar100(root: Path) -> Arrays:
    folder = root / "cifar-100-python"
    expected = f"{folder}/train and test (the python version from the CIFAR page)"
    x_train, y_train = _read_cifar("cifar100", folder / "train", b"fine_labels", 100, expected)
    x_test, y_test = _read_cifar("cifar100", folder / "test", b"fine_labels", 100, expected)
    return x_train, y_train, x_test, y_test, 100


# Folders of image files

Listing = list[tuple[Path, int]]


def _decode(name: str, path: Path) -> np.ndarray:
    """One image as uint8 (3, 32, 32), squashed to 32x32 if it has another size."""
    try:
        with Image.open(path) as img:
            img.draft("RGB", (IMAGE_SIZE, IMAGE_SIZE))  # JPEG decodes at a reduced scale: far faster, same result size
            img = img.convert("RGB")
            if img.size != (IMAGE_SIZE, IMAGE_SIZE):
                img = img.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
            return np.asarray(img).transpose(2, 0, 1)
    except OSError as err:
        raise MalformedDataError(f"{name}: {path} is not a readable image ({_one_line(err)})") from err


def _decode_all(name: str, listing: Listing) -> tuple[np.ndarray, np.ndarray]:
    x = np.zeros((len(listing), 3, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    for i, (path, _) in enumerate(listing):
        x[i] = _decode(name, path)
    return x, np.array([label for _, label in listing], np.int64)


def _read_cache(cache: Path, key: str) -> tuple[np.ndarray, ...] | None:
    try:
        with np.load(cache) as stored:
            if str(stored["key"]) == key:
                return tuple(stored[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        pass  # an absent or unreadable cache is rebuilt like a stale one
    return None


def _cached_folders(name: str, cache: Path, train: Listing, test: Listing, classes: int) -> Arrays:
    """Decode both listings, or read them from `cache` if it was written for exactly these files and labels."""
    files = [f"{split}\t{path.relative_to(cache.parent)}\t{label}"
             for split, listing in (("train", train), ("test", test)) for path, label in listing]
    # The decoding settings are part of the key, so that changing them retires old caches too.
    key = hashlib.sha256("\n".join([f"{IMAGE_SIZE}x{IMAGE_SIZE} bilinear", *files]).encode()).hexdigest()
    stored = _read_cache(cache, key)
    if stored is not None:
        return (*stored, classes)
    (x_train, y_train), (x_test, y_test) = _decode_all(name, train), _decode_all(name, test)
    partial = cache.with_name(cache.name + ".partial")
    try:
        with open(partial, "wb") as f:  # np.savez would append .npz to a path
            np.savez(f, key=key, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
        os.replace(partial, cache)  # never leave a half-written cache behind
    except OSError:
        partial.unlink(missing_ok=True)  # a read-only or full data folder only loses the speed-up
    return x_train, y_train, x_test, y_test, classes


def _cinic10(root: Path) -> Arrays:
    folder = root / "CINIC-10"
    listings = []
    for split in ("train", "test"):
        listing: Listing = []
        for label, cls in enumerate(CIFAR10_CLASSES):
            if not (folder / split / cls).is_dir():
                raise MissingDataError(f"cinic10: expected {folder}/{{train,test}}/<class>/*.png for the classes "
                                       f"{', '.join(CIFAR10_CLASSES)}; {folder / split / cls} not found")
            listing += [(path, label) for path in sorted((folder / split / cls).glob("*.png"))]
        listings.append(listing)
    return _cached_folders("cinic10", folder / "cinic10_32x32.npz", *listings, 10)


def _imagenet_wnids(folder: Path, expected: str) -> list[str]:
    """The sorted 1000 ImageNet wnids: position in this list is the ImageNet class index."""
    train = folder / "train"
    names = sorted(d.name for d in train.iterdir() if d.is_dir()) if train.is_dir() else []
    if len(names) == 1000:
        return names
    listed = folder / "wnids.txt"
    if not listed.is_file():
        raise MissingDataError(f"restricted_imagenet: expected {expected}; {train} has {len(names)} wnid folders, "
                               f"not 1000, and {listed} not found")
    wnids = [line.split()[0] for line in listed.read_text().splitlines() if line.strip()]
    if len(set(wnids)) != 1000 or len(wnids) != 1000:
        raise MalformedDataError(f"restricted_imagenet: {listed} lists {len(wnids)} wnids ({len(set(wnids))} "
                                 f"distinct), expected the 1000 ImageNet wnids, one per line")
    return sorted(wnids)


def _restricted_imagenet(root: Path) -> Arrays:
    folder = root / "imagenet"
    expected = (f"{folder}/{{train,val}}/<wnid>/*.JPEG, with all 1000 wnid folders under train/ "
                f"or the 1000 wnids listed in {folder}/wnids.txt")
    wnids = _imagenet_wnids(folder, expected)
    labels = {wnids[index]: label for label, (low, high) in enumerate(RESTRICTED_IMAGENET_RANGES.values())
              for index in range(low, high + 1)}
    listings = []
    for split in ("train", "val"):
        listing = [(path, label) for wnid, label in sorted(labels.items())
                   for path in sorted((folder / split / wnid).glob("*.JPEG"))]
        if not listing:
            raise MissingDataError(f"restricted_imagenet: expected {expected}; no images of the 9 super-classes "
                                   f"under {folder / split}")
        listings.append(listing)
    return _cached_folders("restricted_imagenet", folder / "restricted_imagenet_32x32.npz", *listings,
                           len(RESTRICTED_IMAGENET_RANGES))


LOADERS: dict[str, Callable[[Path], Arrays]] = {
    "fashion_mnist": _fashion_mnist, "mnist": _mnist, "cifar10": _cifar10, "cifar100": _cifar100,
    "cinic10": _cinic10, "restricted_imagenet": _restricted_imagenet,
}


def _channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std on the [0, 1] scale, from pixel-value counts: no float copy of a large set."""
    counts = np.zeros((x.shape[1], 256), np.int64)
    for start in range(0, len(x), 8192):
        chunk = x[start:start + 8192]
        for c in range(x.shape[1]):
            counts[c] += np.bincount(chunk[:, c].ravel(), minlength=256)
    values = np.arange(256) / 255
    n = counts.sum(1)
    mean = counts @ values / n
    std = np.sqrt(np.maximum(counts @ values ** 2 / n - mean ** 2, 0))
    return tuple(mean.tolist()), tuple(std.tolist())


def data_folder(data_dir: str | os.PathLike | None = None) -> Path:
    """`data_dir`, else $BADMINIMA_DATA, else ./data."""
    return Path(data_dir if data_dir is not None else os.environ.get("BADMINIMA_DATA", "data"))


# Arrays given in memory (a user's own images) with their fingerprints: `load` and `fingerprint` serve them by name,
# so the runs keyed by a data set's name train on them unchanged.
REGISTERED: dict[str, tuple[ImageData, dict]] = {}


def register_arrays(name: str, x_train: Tensor, y_train: Tensor, x_test: Tensor, y_test: Tensor,
                    classes: int) -> None:
    """Make `load(name)` return these uint8 (N, C, H, W) images and int64 labels 0..classes-1 (kept, not copied),
    and `fingerprint(name)` a SHA-256 of them, for the rest of this process. A built-in data set's name is refused;
    registering a name again replaces its arrays."""
    if name in LOADERS:
        raise ParameterError(f"name={name!r} is a built-in data set; allowed: any other name")
    mean, std = _channel_stats(x_train.numpy())
    arrays = [a.numpy() for a in (x_train, y_train, x_test, y_test)]
    data = ImageData(name, x_train, y_train, x_test, y_test, classes, mean, std)
    REGISTERED[name] = data, {"dataset": name, "train": len(y_train), "test": len(y_test),
                              "sha256": _digest(name, classes, arrays)}


def load(name: str = "fashion_mnist", data_dir: str | os.PathLike | None = None) -> ImageData:
    """The named data set read from the data folder (see the module docstring for the layouts), or the arrays
    registered under `name`."""
    if name in REGISTERED:
        return REGISTERED[name][0]
    check_choice("dataset", name, LOADERS)
    folder = data_folder(data_dir)
    *arrays, classes, mean, std = _decoded(name, folder, _stamp(name, folder))
    # Copies: a caller may change its tensors in place, and the next load must not see that.
    x_train, y_train, x_test, y_test = (torch.from_numpy(a.copy()) for a in arrays)
    return ImageData(name, x_train, y_train, x_test, y_test, classes, mean, std)


def _stamp(name: str, folder: Path) -> tuple | None:
    """What says an IDX set's files are unchanged (each file's path, size and modification time); None for the
    other sets, which are read afresh (their loaders keep caches of their own that follow the files)."""
    search = {"fashion_mnist": _fashion_mnist_dirs, "mnist": _mnist_dirs}.get(name)
    if search is None:
        return None
    paths = _find_idx_files(name, search(folder))
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)


def _decoded(name: str, folder: Path, stamp: tuple | None) -> tuple:
    """A data set's arrays, class count and channel statistics."""
    if stamp is None:
        return _read_set(name, folder)
    return _decoded_idx(name, folder, stamp)


@functools.lru_cache(maxsize=4)
def _decoded_idx(name: str, folder: Path, stamp: tuple) -> tuple:
    """An IDX set decoded once per process while its files are unchanged: the chapters rebuild models of stored
    runs hundreds of times, and decompressing Fashion-MNIST each time cost 0.4 s a model (a minute and a half of the
    training chapter from a full store)."""
    return _read_set(name, folder)


def _read_set(name: str, folder: Path) -> tuple:
    x_train, y_train, x_test, y_test, classes = LOADERS[name](folder)
    return (x_train, y_train, x_test, y_test, classes, *_channel_stats(x_train))


def fingerprint(name: str, data_dir: str | os.PathLike | None = None) -> dict:
    """The identity of what `load(name, data_dir)` reads: the data set, the data folder, the image counts and a
    SHA-256 of the decoded images, labels and class count. Hashing what was decoded, not the files, gives the same
    data one fingerprint wherever it lies and however it is stored (gzipped or not); different pixels or labels
    give another. Computed once per process and folder: a data folder is not expected to change under a run.
    Registered arrays have no folder: their fingerprint is the one `register_arrays` took."""
    if name in REGISTERED:
        return dict(REGISTERED[name][1])
    check_choice("dataset", name, LOADERS)
    return dict(_fingerprint(name, data_folder(data_dir).resolve()))


def source_folder(name: str, folder: Path) -> Path:
    """The folder `load(name)` reads from the data folder `folder`: for the IDX sets, the first of the places
    looked in that holds their files (the system copy of Fashion-MNIST where the data folder has none)."""
    search = {"fashion_mnist": _fashion_mnist_dirs, "mnist": _mnist_dirs}.get(name)
    return _find_idx_files(name, search(folder))[0].parent if search else folder


@functools.lru_cache(maxsize=None)
def _fingerprint(name: str, folder: Path) -> tuple[tuple[str, object], ...]:
    *arrays, classes, _, _ = _decoded(name, folder, _stamp(name, folder))
    return (("dataset", name), ("folder", str(source_folder(name, folder))), ("train", len(arrays[0])),
            ("test", len(arrays[2])), ("sha256", _digest(name, classes, arrays)))


def _digest(name: str, classes: int, arrays: Sequence[np.ndarray]) -> str:
    digest = hashlib.sha256(f"{name} {classes}".encode())
    for array in arrays:
        digest.update(f"{array.dtype} {array.shape}".encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()
