"""User files, loaded by path: ``.npy``, ``.npz`` (``x`` and optional ``y``), ``.csv`` (numeric
columns; a ``label``/``y``/``target``/``class`` column becomes the class), ``.txt`` (characters,
`genlab.data.text`) or a folder of PNG/JPEG images (one level of subfolders = class labels).

Nothing is unpickled. The spec is inferred from the values: booleans or integers 0/1 are binary,
other non-negative integers discrete with ``max + 1`` levels, anything else continuous.
"""
from __future__ import annotations

import csv
import os
import zipfile
from typing import Sequence

import numpy as np
import torch

from .dataset import Dataset, as_float32, as_int64, first_n
from .spec import DataSpec, Kind
from .text import load_text_file

LABEL_COLUMNS = ("label", "y", "target", "class")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
FILE_SUFFIXES = (".npy", ".npz", ".csv", ".txt")


def looks_like_path(s: str) -> bool:
    """Whether ``s`` names a file or folder rather than a built-in data set."""
    return (os.path.exists(s) or os.sep in s or "/" in s
            or s.lower().endswith(FILE_SUFFIXES + IMAGE_SUFFIXES))


def load_path(path: str, n: int | None) -> Dataset:
    """The first ``n`` (or all) examples of an existing user file or image folder.

    Raises:
        ValueError: an empty, unreadable or unsupported file (the message says how to fix it).
    """
    full = os.path.expanduser(path)
    if os.path.isdir(full):
        x, y, classes = _read_image_folder(full, n)
        spec = DataSpec(x.shape[1:], Kind.DISCRETE, levels=256,
                        num_classes=None if classes is None else len(classes))
        return Dataset(as_float32(x), None if y is None else as_int64(y), spec, path, classes)
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
    elif suffix == ".txt":  # character-level text
        return load_text_file(full, n)
    else:
        raise ValueError(f"{path}: unsupported file type {suffix or '(none)'!r}; save the data as "
                         f".npy, .npz (keys x and y) or .csv, or pass a folder of PNG/JPEG images")
    x, y = first_n(n, x, y)
    return from_arrays(x, y, path, feature_names)


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


def from_arrays(x: np.ndarray, y: np.ndarray | None, name: str,
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
    return Dataset(as_float32(x), labels, spec, name)


def _labels(y: np.ndarray, n: int, name: str) -> torch.Tensor:
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"{name}: y has shape {y.shape} but x has {n} examples; save y as a 1-d "
                         f"array of {n} class labels")
    if y.dtype.kind in "USO":
        return as_int64(np.unique(y.astype(str), return_inverse=True)[1])
    if y.dtype.kind not in "biuf":
        raise ValueError(f"{name}: y has dtype {y.dtype}; save class labels as integers 0..K-1")
    _check_finite(y, name, "y")
    if np.any(y < 0) or np.any(y != np.round(y)):
        raise ValueError(f"{name}: y must hold class labels 0..K-1 (integers >= 0); found "
                         f"{y[(y < 0) | (y != np.round(y))][0].item()!r}; map the labels to 0..K-1 first")
    return as_int64(y)


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
