"""User files, loaded by path: ``.npy``, ``.npz`` (``x`` and optional ``y``), ``.csv`` (numeric
columns; a ``label``/``y``/``target``/``class`` column becomes the class), ``.txt`` (characters,
`genlab.data.text`) or a folder of PNG/JPEG images (subfolders = class labels, images at any depth in them:
`list_images`).

Nothing is unpickled. The spec is inferred from the values: booleans or integers 0/1 are binary,
other non-negative integers discrete with ``max + 1`` levels, anything else continuous.

What is refused, each with the place and the fix: CSV cells that are empty or not numbers (row
and column, 1-based as a spreadsheet counts), values beyond float32's range (the column), a blank
line between rows; image folders that mix grey and colour images, sizes, or hold 16-bit or float
images (genlab reads 8 bits; an alpha channel is dropped); arrays of complex numbers or larger
than the memory available (checked from the .npy header, before the data are read). Big-endian
arrays are read like native ones.
"""
from __future__ import annotations

import csv
import math
import os
import zipfile
from typing import Sequence

import numpy as np
import torch

from .dataset import Dataset, as_float32, as_int64, first_n
from .images import IMAGE_SUFFIXES, image_kind as _image_kind, list_images
from .spec import DataSpec, Kind
from .text import load_text_file
from .validate import check_memory

LABEL_COLUMNS = ("label", "y", "target", "class")
FILE_SUFFIXES = (".npy", ".npz", ".csv", ".txt")
_F32_MAX = float(np.finfo(np.float32).max)


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


def _npy_header(f, path: str, size: int | None) -> None:
    """Check the shape and dtype in a .npy header (at ``f``'s position) against the bytes that
    follow (``size``; None: unknown) and the memory available, before the data are read."""
    try:
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0), (3, 0)):
            raise ValueError(f"unknown format version {version}")
        # version 3 differs from 2 only in allowing UTF-8 in the header; genlab's are ASCII
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as e:
        raise ValueError(f"{path}: not a valid .npy file ({e}); write it with np.save") from None
    if dtype.hasobject:
        return  # np.load refuses it with its own message (no pickles)
    count = math.prod(shape)
    if size is not None and count * dtype.itemsize > size - f.tell():
        raise ValueError(f"{path}: the header describes an array of shape {shape} ({count * dtype.itemsize:,} "
                         f"bytes) but the file holds {max(size - f.tell(), 0):,} bytes after it; the file is "
                         f"truncated or damaged: write it again with np.save")
    check_memory(count, 4, f"{path}: an array of shape {shape}")


def _read_npy(path: str) -> np.ndarray:
    _check_magic(path, b"\x93NUMPY", ".npy", "np.save")
    with open(path, "rb") as f:
        _npy_header(f, path, os.path.getsize(path))
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
            for k in {key, "y"} & set(keys):
                with z.zip.open(k + ".npy") as f:
                    _npy_header(f, f"{path}[{k!r}]", z.zip.getinfo(k + ".npy").file_size)
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
    """Whether a cell reads as a finite or non-finite decimal number (no ``1_000``: a typo in a CSV)."""
    try:
        float(s)
    except ValueError:
        return False
    return "_" not in s


def _csv_cell(path: str, cell: str, row: int, col: int, name: str) -> float:
    """One feature cell as a float, or a ValueError naming the row and column (1-based, as a
    spreadsheet counts; the header is row 1)."""
    named = f"column {col}" + ("" if name == f"column {col}" else f" ({name!r})")
    where = f"{path}: row {row}, {named}"
    c = cell.strip()
    if not c:
        raise ValueError(f"{where} is empty; fill in the value or delete the row (missing values are not "
                         f"loaded: impute them first, e.g. with genlab.estimators.GenerativeImputer)")
    if not _is_number(c):
        raise ValueError(f"{where} holds {cell!r}, which is not a number; correct it, or encode the column as "
                         f"numbers (e.g. category codes), or name a class column one of {'/'.join(LABEL_COLUMNS)}")
    v = float(c)
    if not math.isfinite(v):
        raise ValueError(f"{where} holds {cell!r} (not a finite number); drop or impute that value first")
    if abs(v) > _F32_MAX:
        raise ValueError(f"{path}: {named} holds {cell!r} at row {row}, beyond float32's range "
                         f"(about ±3.4e38), where genlab computes; rescale the column (e.g. to other units or "
                         f"its logarithm)")
    return v


def _read_csv(path: str) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...] | None]:
    """Numeric columns of a CSV (``,``, ``;`` or tab separated; header row optional).

    A first row is a header when every non-empty cell in it is not a number. Blank lines after
    the last row are ignored; a blank line between rows is an error (in a one-column file it is an
    empty cell), as are empty and non-numeric feature cells (named by row and column, 1-based).
    """
    with open(path, newline="", encoding="utf-8-sig") as f:
        text = f.read()
    first = text.split("\n", 1)[0]
    delimiter = max([",", ";", "\t"], key=first.count)
    records = list(csv.reader(text.splitlines(), delimiter=delimiter))
    while records and not any(c.strip() for c in records[-1]):
        records.pop()  # trailing blank lines
    start = next((i for i, r in enumerate(records) if any(c.strip() for c in r)), None)
    if start is None:
        raise ValueError(f"{path}: the file is empty (no rows); write a header line and numeric rows")
    head = records[start]
    has_header = all(not _is_number(c) for c in head if c.strip()) and any(c.strip() for c in head)
    names = [c.strip() for c in head] if has_header else [f"column {j + 1}" for j in range(len(head))]
    body = [(i + 1, r) for i, r in enumerate(records) if i > start or (i == start and not has_header)]
    if not body:
        raise ValueError(f"{path}: no data rows (only a header); add numeric rows below it")
    for row, r in body:
        if not any(c.strip() for c in r):
            raise ValueError(f"{path}: row {row} is blank between data rows; delete it, or fill in its "
                             f"value(s) (in a one-column file a blank line is an empty cell)")
        if len(r) != len(names):
            raise ValueError(f"{path}: line {row} has {len(r)} fields but the file has "
                             f"{len(names)} columns; make every row the same length")
    columns = list(zip(*(r for _, r in body)))
    rows = [row for row, _ in body]
    label_j = next((j for j, c in enumerate(names) if c.lower() in LABEL_COLUMNS), None)
    y = None
    if label_j is not None:
        empty = next((row for row, c in zip(rows, columns[label_j]) if not c.strip()), None)
        if empty is not None:
            raise ValueError(f"{path}: row {empty}, column {label_j + 1} ({names[label_j]!r}) is empty; "
                             f"every example needs its class, or drop the column")
        y = _csv_labels(columns[label_j])
        if y is None:  # a float column named y/target: a feature (e.g. 2-D points with x, y)
            label_j = None
    keep = [j for j in range(len(names)) if j != label_j]
    if not keep:
        raise ValueError(f"{path}: only a label column; add feature columns")
    bad = []
    for j in keep:  # a column of words: name it as a whole (a category to encode or a label)
        words = [c for c in columns[j] if c.strip() and not _is_number(c.strip())]
        if len(words) == len(columns[j]) and len(words) > 1:
            bad.append(f"{names[j]!r} (e.g. {words[0]!r})")
    if bad:
        raise ValueError(f"{path}: non-numeric column(s) {', '.join(bad)}; encode them as numbers "
                         f"(e.g. one-hot or category codes) or drop them, or name a class column "
                         f"one of {'/'.join(LABEL_COLUMNS)}")
    x = np.array([[_csv_cell(path, c, row, j + 1, names[j]) for c, row in zip(columns[j], rows)]
                  for j in keep], dtype=np.float64).T.reshape(len(rows), len(keep))
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
    """The first ``n`` (or all) images (n, C, H, W) uint8 of ``folder`` (`list_images`), with labels
    (n,) and class names when it has class subfolders."""
    files, labels, classes = list_images(folder)
    files = files[:n]
    from PIL import Image, UnidentifiedImageError
    arrays, first, kinds = [], None, {}
    for path in files:
        try:
            with Image.open(path) as im:
                kind = _image_kind(path, im.mode)
                kinds.setdefault(kind, path)
                if len(kinds) > 1:
                    grey, colour = kinds["grey"], kinds["colour"]
                    raise ValueError(f"{folder}: mixes grey and colour images ({grey} is grey, {colour} is "
                                     f"colour); convert them all to one mode first, e.g. with Pillow: "
                                     f"Image.open(f).convert('RGB') (or 'L' for grey), then save")
                im = im.convert("L" if kind == "grey" else "RGB")  # decodes the whole file: truncation shows here
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            if str(e).startswith((folder, path)):
                raise
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
    return x, None if labels is None else labels[:n], classes


def from_arrays(x: np.ndarray, y: np.ndarray | None, name: str,
                feature_names: tuple[str, ...] | None = None) -> Dataset:
    """Infer the spec of an array of examples (see the module docstring) and build a Dataset."""
    x = np.asarray(x)
    if x.dtype.kind == "c":
        raise ValueError(f"{name}: the array holds complex numbers ({x.dtype}); genlab models real values: "
                         f"pass x.real, or the real and imaginary parts as separate features")
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
    check_memory(x.size, 4, f"{name}: an array of shape {x.shape}")  # the float32 copy below
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))  # big-endian files: numbers are numbers
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
