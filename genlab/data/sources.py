"""Streaming readers (`genlab.data.stream.Source`) of user files: an image folder, a ``.npy``
array (here), a CSV table, a ``.txt`` corpus (`genlab.data.sources_text`); `open_stream` opens
any of them. Each builds its `DataSpec` and an index in one pass over
the file(s) at construction, keeping only the index in memory (paths, row byte offsets), and
reads rows on demand, from any process (``DataLoader`` workers included: no shared file offset).

The examples and the spec equal what `genlab.data.files` / `genlab.data.text` load in memory
from the same file, and bad input is refused with the same messages, before training starts.
Differences, by design: an image folder may be resized on read (``resize=(H, W)``), so mixed
sizes are allowed then; a CSV line ends at ``\\n`` or ``\\r\\n`` (the in-memory reader also splits
at a lone ``\\r``); ``.npz`` files are compressed archives that cannot be read by row, so they
load in memory.
"""
from __future__ import annotations

import os

import numpy as np

from .files import _check_magic
from .images import image_kind, list_images
from .spec import DataSpec, Kind
from .sources_text import CsvFile, TextFile
from .stream import PASS_BYTES, Source, StreamDataset



class ImageFolder(Source):
    """PNG/JPEG images of a folder (`genlab.data.images.list_images`: class subfolders as
    torchvision's ImageFolder), decoded one by one; ``resize=(H, W)`` resizes each on read
    (bilinear), otherwise every image must have the first one's size."""

    def __init__(self, folder: str, name: str | None = None, *, resize: tuple[int, int] | None = None,
                 n: int | None = None):
        from PIL import Image, UnidentifiedImageError
        self.root, self.name, self.resize = os.path.expanduser(folder), name or folder, resize
        files, labels, self.class_names = list_images(self.root)
        files = files[:n]
        self.labels = None if labels is None else labels[:n]
        self.labelled = self.labels is not None
        kinds: dict[str, str] = {}
        first = None
        for path in files:  # headers only: the mode and size, without decoding the pixels
            try:
                with Image.open(path) as im:
                    kinds.setdefault(image_kind(path, im.mode), path)
                    size = im.size
            except (UnidentifiedImageError, OSError, SyntaxError) as e:
                raise ValueError(f"{path}: corrupt or unreadable image ({e}); replace or delete the file") from None
            if len(kinds) > 1:
                raise ValueError(f"{self.root}: mixes grey and colour images ({kinds['grey']} is grey, "
                                 f"{kinds['colour']} is colour); convert them all to one mode first, e.g. with "
                                 f"Pillow: Image.open(f).convert('RGB') (or 'L' for grey), then save")
            if first is None:
                first = (path, size)
            elif size != first[1] and resize is None:
                raise ValueError(f"images differ in size: {first[0]} is {first[1][0]}x{first[1][1]} but {path} is "
                                 f"{size[0]}x{size[1]} (width x height); resize all images to one size first, "
                                 f"or stream them resized on read (PATH:stream:resize=HxW)")
        self.mode = "L" if "grey" in kinds else "RGB"
        h, w = resize if resize is not None else (first[1][1], first[1][0])
        self.n = len(files)
        # one bytes array, not a list of str: forked workers would copy every object they touch
        self.files = np.array([os.fsencode(os.path.relpath(f, self.root)) for f in files])
        self.spec = DataSpec((1 if self.mode == "L" else 3, h, w), Kind.DISCRETE, levels=256,
                             num_classes=None if self.class_names is None else len(self.class_names))

    def read(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        from PIL import Image, UnidentifiedImageError
        c, h, w = self.spec.event_shape
        out = np.empty((len(rows), c, h, w), dtype=np.float32)
        for k, r in enumerate(rows):
            path = os.path.join(self.root, os.fsdecode(self.files[r]))
            try:
                with Image.open(path) as im:
                    im = im.convert(self.mode)  # decodes the whole file: truncation shows here
            except (UnidentifiedImageError, OSError, SyntaxError) as e:
                raise ValueError(f"{path}: corrupt or unreadable image ({e}); replace or delete the file") from None
            if self.resize is not None and im.size != (w, h):
                im = im.resize((w, h), Image.BILINEAR)
            if im.size != (w, h):
                raise ValueError(f"{path} is {im.size[0]}x{im.size[1]} but the folder's images are {w}x{h} "
                                 "(it changed since the folder was opened); resize it, or open the folder again")
            a = np.asarray(im, dtype=np.uint8)
            out[k] = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
        return out, (None if self.labels is None else self.labels[rows])


class NpyFile(Source):
    """A ``.npy`` array read by row with ``os.pread`` at the row's offset. Not through a memory
    map: random reads of a mapped 256 MB file raised this process's peak resident memory by
    ~150 MB (mapped file pages count in it, bench.memory), pread's pages stay in the page cache."""

    def __init__(self, path: str, name: str | None = None, *, n: int | None = None):
        self.path, self.name = os.path.expanduser(path), name or path
        _check_magic(self.path, b"\x93NUMPY", ".npy", "np.save")
        with open(self.path, "rb") as f:
            try:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, self.fortran, self.dtype = read(f)
            except (ValueError, OSError, EOFError, SyntaxError, TypeError) as e:
                raise ValueError(f"{path}: not a valid .npy file ({e}); write it with np.save") from None
            self.offset = f.tell()
        if self.dtype.hasobject:
            raise ValueError(f"{path}: holds an object array (strings or Python objects), which is not loaded "
                             f"(no pickles); save a numeric array, e.g. np.save(path, x.astype(np.float32))")
        need = int(np.prod(shape)) * self.dtype.itemsize
        if need > os.path.getsize(self.path) - self.offset:
            raise ValueError(f"{path}: the header describes an array of shape {shape} ({need:,} bytes) but the "
                             f"file holds {max(os.path.getsize(self.path) - self.offset, 0):,} bytes after it; the "
                             f"file is truncated or damaged: write it again with np.save")
        if self.dtype.kind == "c":
            raise ValueError(f"{self.name}: the array holds complex numbers ({self.dtype}); genlab models real "
                             f"values: pass x.real, or the real and imaginary parts as separate features")
        if self.dtype.kind not in "biuf":
            raise ValueError(f"{self.name}: the array has dtype {self.dtype} (not numbers); convert it to a "
                             f"numeric array first, e.g. x.astype(np.float32)")
        if len(shape) == 0 or len(shape) > 4:
            raise ValueError(f"{self.name}: a {len(shape)}-d array {shape}; expected (n,), (n, d), (n, H, W) "
                             f"or (n, C, H, W)")
        if shape[0] == 0 or int(np.prod(shape)) == 0:
            raise ValueError(f"{self.name}: no examples (shape {shape}); the data is empty")
        self.shape, self._fd, self._pid = shape, None, None
        self.n = shape[0] if n is None else min(n, shape[0])
        event = shape[1:] or (1,)
        self.channels_last = len(shape) == 4 and shape[-1] in (1, 3) and shape[1] not in (1, 3)
        if len(shape) == 3:
            event = (1, *shape[1:])
        elif self.channels_last:
            event = (shape[3], shape[1], shape[2])
        self.spec = DataSpec(tuple(event), *self._kind())

    def _rows(self, rows: np.ndarray, span: bool = False) -> np.ndarray:
        """Rows ``rows`` as an array (``span``: rows[0]..rows[-1] are consecutive: one read)."""
        if self.fortran:  # a column-major file has no contiguous rows: read through a short-lived map
            mm = np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset, shape=self.shape, order="F")
            try:
                return np.array(mm[rows])
            finally:
                del mm
        if self._pid != os.getpid():  # pread at absolute offsets: safe to share with forked workers
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        rb = self.dtype.itemsize * int(np.prod(self.shape[1:]))
        if span:
            buf = os.pread(self._fd, rb * len(rows), self.offset + int(rows[0]) * rb)
        else:
            buf = b"".join(os.pread(self._fd, rb, self.offset + int(r) * rb) for r in rows)
        return np.frombuffer(buf, dtype=self.dtype).reshape(len(rows), *self.shape[1:])

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fd": None, "_pid": None}

    def _kind(self) -> tuple[Kind, int | None]:
        """Kind and levels from one pass (as `genlab.data.files.from_arrays` infers them), refusing
        NaN / Inf with their count and first row."""
        if self.dtype.kind == "b":
            return Kind.BINARY, 2
        step = max(1, PASS_BYTES // max(1, int(np.prod(self.shape[1:])) * self.dtype.itemsize))
        lo, hi, n_nan, n_inf, bad_rows, first = np.inf, -np.inf, 0, 0, 0, None
        for s in range(0, self.n, step):
            a = self._rows(np.arange(s, min(s + step, self.n)), span=True).astype(self.dtype.newbyteorder("="), copy=False)
            if self.dtype.kind == "f":
                bad = ~np.isfinite(a)
                if bad.any():
                    rows = bad.reshape(len(a), -1).any(1)
                    n_nan, n_inf = n_nan + int(np.isnan(a).sum()), n_inf + int(np.isinf(a).sum())
                    bad_rows += int(rows.sum())
                    first = s + int(np.argmax(rows)) if first is None else first
                    continue
            lo, hi = min(lo, a.min()), max(hi, a.max())
        if first is not None:
            raise ValueError(f"{self.name}: x holds {n_nan} NaN and {n_inf} Inf value(s) in {bad_rows} example(s), "
                             f"the first at row {first} (0-based, data rows only); drop or impute those values first")
        if self.dtype.kind in "iu" and lo >= 0:
            return (Kind.BINARY, 2) if hi <= 1 else (Kind.DISCRETE, int(hi) + 1)
        return Kind.CONTINUOUS, None

    def read(self, rows: np.ndarray) -> tuple[np.ndarray, None]:
        order = np.argsort(rows, kind="stable")  # ascending reads: the disk and the page cache prefer them
        a = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        a[order] = self._rows(rows[order])
        if self.channels_last:
            a = a.transpose(0, 3, 1, 2)
        return a.astype(np.float32).reshape(len(rows), *self.spec.event_shape), None


STREAM_BYTES = 2 * 2**30  # float32 bytes above which a folder / .npy streams by itself
STREAM_FILE_BYTES = 256 * 2**20  # file bytes above which a CSV / .txt streams by itself


def wants_stream(path: str) -> bool:
    """Whether ``path`` is too large to load in memory by default: a folder or ``.npy`` whose
    float32 tensor would exceed `STREAM_BYTES`, a CSV or ``.txt`` file over `STREAM_FILE_BYTES`.
    Fixed sizes, not the machine's memory, so the same data trains the same way everywhere (below
    them, data that do not fit are refused with the fix: ``:stream``)."""
    full = os.path.expanduser(path)
    limit = STREAM_BYTES
    if os.path.isdir(full):
        from PIL import Image
        try:
            files = list_images(full)[0]
            with Image.open(files[0]) as im:
                per = im.size[0] * im.size[1] * (1 if image_kind(files[0], im.mode) == "grey" else 3)
        except (ValueError, OSError, SyntaxError):
            return False  # the in-memory loader gives the error
        return len(files) * per * 4 > limit
    suffix = os.path.splitext(full)[1].lower()
    if suffix == ".npy":
        try:
            with open(full, "rb") as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape = read(f)[0]
        except (ValueError, OSError, EOFError, SyntaxError, TypeError):
            return False
        return int(np.prod(shape)) * 4 > limit
    return suffix in (".csv", ".txt") and os.path.getsize(full) > STREAM_FILE_BYTES


def open_stream(path: str, name: str | None = None, *, n: int | None = None,
                resize: tuple[int, int] | None = None):
    """A `genlab.data.stream.StreamDataset` of an image folder, ``.npy``, ``.csv`` or ``.txt`` file.

    Args:
        path: the folder or file.
        name: what the data set is called in a run (default: ``path``).
        n: keep at most the first ``n`` examples in file order.
        resize: ``(H, W)`` to resize every image to on read (image folders only).

    Raises:
        ValueError: an unsupported or invalid file (the message says how to fix it).
    """
    full = os.path.expanduser(path)
    if resize is not None and not os.path.isdir(full):
        raise ValueError(f"{path}: resize applies to image folders only; drop it")
    if os.path.isdir(full):
        return StreamDataset(ImageFolder(full, name or path, resize=resize, n=n))
    if os.path.getsize(full) == 0:
        raise ValueError(f"{path}: the file is empty; write the data into it first")
    readers = {".npy": NpyFile, ".csv": CsvFile, ".txt": TextFile}
    suffix = os.path.splitext(full)[1].lower()
    if suffix not in readers:
        raise ValueError(f"{path}: {suffix or 'this file type'} cannot be streamed; stream a folder of PNG/JPEG "
                         f"images, a .npy, .csv or .txt file (a .npz archive is compressed: save its arrays "
                         f"with np.save to stream them), or load it without ':stream'")
    return StreamDataset(readers[suffix](full, name or path, n=n))
