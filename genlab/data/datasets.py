"""`load_dataset`: the one entry point that maps a name or a path to a `Dataset`.

``load_dataset(name_or_path)`` accepts:

* a built-in name (see `dataset_names`): the 2-D toys (`genlab.data.toys`), generated from
  ``seed``; the bundled sets (`genlab.data.bundled`): ``digits``, ``iris``, ``wine``,
  ``breast_cancer``, ``mnist5k``, ``fashion-mnist`` (or ``fashion-mnist:/path/to/idx/dir``),
  ``asia``, ``fortunes``;
* a path (`genlab.data.files`): ``.npy``, ``.npz`` (``x`` and optional ``y``), ``.csv``,
  ``.txt``, or a folder of PNG/JPEG images (one level of subfolders = class labels);
* two or more image sets joined by ``+`` (``digits+mnist5k``): an unpaired multi-domain set
  whose labels are the domain of each example (`genlab.data.domains`), for CycleGAN;
* ``bif:NAME`` (a network of `network_names`, or of an installed pgmpy 1.1.0), ``bif:PATH`` or
  a path to a ``.bif`` / ``.bif.gz`` file: ancestral samples of a Bayesian network
  (`genlab.data.tabular.network_dataset`, seed 0 like ``asia``);
* a folder, ``.npy``, ``.csv`` or ``.txt`` path with ``:stream`` (``photos/:stream``), or with
  ``stream=True``: a `genlab.data.stream.StreamDataset` that reads examples on demand instead of
  loading them (`genlab.data.sources`); an image folder may add ``:resize=HxW`` (or
  ``resize=(H, W)``). Paths too large to load stream by themselves (`genlab.data.sources.wants_stream`:
  a folder / ``.npy`` over 2 GiB as float32, a CSV / text file over 256 MiB) unless
  ``stream=False``;
* any of these with ``:binary`` (``mnist5k:binary``): grey levels made black and white, a pixel
  1 where its level is at least half the scale (``>= (levels - 1) / 2``: 128 of 0..255, 8 of
  0..16), or ``:binary=T`` for the threshold level T (`binarize`).

This module is the registry of named loaders: it imports the loader modules, which never import
it back. Nothing is downloaded and nothing is unpickled. Every example tensor is float32;
discrete data hold the integer values ``0 .. levels-1``.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import re

import numpy as np

from .bundled import BUNDLED, load_fashion_mnist
from .dataset import Dataset
from .domains import join_domains
from .files import load_path, looks_like_path
from .sources import open_stream, wants_stream
from .spec import Kind
from .stream import StreamDataset, streamed
from .tabular import network_dataset
from .toys import TOYS, load_toy

__all__ = ["Dataset", "binarize", "dataset_names", "load_dataset", "network_names"]

DOMAIN_JOIN = "+"
BIF_PREFIX = "bif:"
BIF_SUFFIXES = (".bif", ".bif.gz")
_BINARY = re.compile(r"^(?P<base>.+):binary(?:=(?P<t>[^:=]*))?$", re.IGNORECASE)
_STREAM_OPTS = re.compile(r"^(?P<base>.+?)(?P<opts>(?::(?:stream|resize=[^:]*))+)$", re.IGNORECASE)


def network_names() -> list[str]:
    """The Bayesian networks genlab ships (``bif:NAME``), sorted; the other networks of pgmpy 1.1.0
    load too when pgmpy is installed."""
    from ..pgm.bif import NETWORK_DIR
    return sorted(p.name[:-len(".bif.gz")] for p in NETWORK_DIR.glob("*.bif.gz"))


def binarize(ds: Dataset, threshold: float | None = None, name: str | None = None) -> Dataset:
    """Grey levels made black and white: 1 where ``x >= threshold``, else 0 (a BINARY spec that
    keeps the labels, class names and domains).

    Args:
        ds: data of ordered levels (``Kind.DISCRETE``: grey images, counts).
        threshold: a level in ``(0, levels - 1]``; default ``(levels - 1) / 2``, half the scale.
        name: the new data set's name (default: ``ds.name + ":binary"``).
    Raises:
        ValueError: data that are not of ordered levels, or a threshold off the scale.
    """
    if streamed(ds):
        raise ValueError(f"{ds.name}:binary: binarizing applies to data loaded in memory, not to a stream; "
                         "threshold the files themselves, or drop ':stream'")
    if ds.spec.kind is Kind.BINARY:
        return ds if name is None else dataclasses.replace(ds, name=name)
    if ds.spec.kind is not Kind.DISCRETE:
        raise ValueError(f"{ds.name}:binary: binarizing needs data of ordered levels (grey images), but "
                         f"{ds.name!r} is {ds.spec.kind.value}; drop ':binary'")
    top = ds.spec.levels - 1
    t = top / 2 if threshold is None else threshold
    if not 0 < t <= top:
        raise ValueError(f"{ds.name}:binary={threshold:g}: the threshold must be a level in (0, {top}] "
                         f"(the data's levels are 0..{top}); ':binary' alone takes {top / 2:g}")
    spec = dataclasses.replace(ds.spec, kind=Kind.BINARY, levels=2, cardinalities=None)
    return Dataset((ds.x >= t).float(), ds.y, spec, name or f"{ds.name}:binary", ds.class_names)


def dataset_names() -> list[str]:
    """Every built-in name `load_dataset` accepts, sorted."""
    return sorted([*TOYS, *BUNDLED])


def _canonical(name: str) -> str | None:
    key = name.strip().lower().replace("_", "-")
    for known in dataset_names():
        if known.replace("_", "-") == key:
            return known
    return None


def load_dataset(name_or_path: str, *, seed: int = 0, n: int | None = None, stream: bool | None = None,
                 resize: tuple[int, int] | None = None) -> Dataset | StreamDataset:
    """Load a built-in data set by name, a user file / image folder by path, or unpaired domains.

    Args:
        name_or_path: a name from `dataset_names` (case and ``_``/``-`` insensitive),
            ``fashion-mnist:/dir`` with IDX files, a path to ``.npy`` / ``.npz`` / ``.csv`` /
            ``.txt`` / a folder of PNG/JPEG images, or image sets joined by ``+``
            (``digits+mnist5k``: domain A = digits, domain B = MNIST put onto digits' 8x8 grid
            and 17 levels; labels are the domain indices).
        seed: seeds the 2-D toys' generator (ignored for stored data).
        n: number of toy samples (default 10,000); for stored data, keep at most the first ``n``
            examples in file order (no shuffling; ``mnist5k``, sorted by class in its file, is
            interleaved over the classes first so that a prefix is balanced); for joined
            domains, at most ``n`` examples of each domain.
        stream: for a folder / ``.npy`` / ``.csv`` / ``.txt`` path: True streams it (as the
            ``:stream`` suffix does), False loads it in memory, None streams it when it is too
            large to load (`genlab.data.sources.wants_stream`).
        resize: ``(H, W)``: resize a streamed image folder's images on read (``:resize=HxW``).

    Returns:
        A `Dataset` with ``x: (n, *spec.event_shape)`` float32 and ``y: (n,)`` int64 or None; or
        a `genlab.data.stream.StreamDataset` (same ``spec``, ``name``; ``x`` is itself).

    Raises:
        ValueError: unknown name, unreadable or invalid data (the message says how to fix it).
        FileNotFoundError: a path or the fashion-mnist files do not exist.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
        raise ValueError(f"load_dataset: n must be a positive integer or None, got {n!r}")
    n = None if n is None else int(n)
    exists = os.path.exists(os.path.expanduser(name_or_path))
    opts = None if exists else _STREAM_OPTS.match(name_or_path.strip())
    if opts and os.path.exists(os.path.expanduser(opts.group("base"))):
        return _streamed(opts.group("base"), name_or_path, opts.group("opts"), n, stream, resize)
    if resize is not None and exists:
        return _streamed(name_or_path, name_or_path, ":stream", n, stream, resize)
    m = None if exists else _BINARY.match(name_or_path.strip())
    if m:
        t = m.group("t")
        try:
            threshold = None if t is None else float(t)
        except ValueError:
            raise ValueError(f"{name_or_path!r}: ':binary={t}' needs a number, the threshold level "
                             f"(e.g. {m.group('base')}:binary=128), or ':binary' alone") from None
        return binarize(load_dataset(m.group("base"), seed=seed, n=n), threshold, name=name_or_path)
    if name_or_path.lower().startswith(BIF_PREFIX) or name_or_path.lower().endswith(BIF_SUFFIXES):
        return _network(name_or_path, n)
    name = _canonical(name_or_path)
    if name in TOYS:
        return load_toy(name, seed, n)
    if name in BUNDLED:
        return BUNDLED[name](n)
    if DOMAIN_JOIN in name_or_path and not os.path.exists(os.path.expanduser(name_or_path)):
        parts = [p.strip() for p in name_or_path.split(DOMAIN_JOIN)]
        if not all(parts):
            raise ValueError(f"{name_or_path!r}: an empty name around '{DOMAIN_JOIN}'; join image sets "
                             f"as A{DOMAIN_JOIN}B, e.g. digits{DOMAIN_JOIN}mnist5k")
        return join_domains([load_dataset(p, seed=seed, n=n) for p in parts], name_or_path)
    if name_or_path.lower().startswith("fashion-mnist:"):
        return load_fashion_mnist(os.path.expanduser(name_or_path.split(":", 1)[1]), n)
    if looks_like_path(name_or_path):
        if not os.path.exists(os.path.expanduser(name_or_path)):
            raise FileNotFoundError(f"{name_or_path}: no such file or folder. Check the path, or use a "
                                    f"built-in name: {', '.join(dataset_names())}")
        if stream or (stream is None and wants_stream(name_or_path)):
            return open_stream(name_or_path, n=n)
        return load_path(name_or_path, n)
    close = difflib.get_close_matches(name_or_path.lower(), dataset_names(), n=3)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"unknown data set {name_or_path!r}.{hint} Known names: "
                     f"{', '.join(dataset_names())}, and bif:NAME for a Bayesian network "
                     f"({', '.join(network_names())}). A path to a .npy, .npz or .csv file, or to a "
                     f"folder of PNG/JPEG images, works too; join image sets with "
                     f"'{DOMAIN_JOIN}' (digits{DOMAIN_JOIN}mnist5k) for unpaired domains.")


def _streamed(path: str, name: str, opts: str, n: int | None, stream: bool | None,
              resize: tuple[int, int] | None) -> StreamDataset:
    """``path`` opened as a stream with the options of ``PATH:stream:resize=HxW`` (``opts``)."""
    for opt in opts.lower().split(":")[1:]:
        if opt.startswith("resize="):
            hw = opt[len("resize="):].split("x")
            if len(hw) != 2 or not all(v.isdigit() and int(v) > 0 for v in hw):
                raise ValueError(f"{name!r}: ':{opt}' needs two positive sizes, height x width, e.g. :resize=32x32")
            resize = (int(hw[0]), int(hw[1]))
    if stream is False:
        raise ValueError(f"{name!r} asks for streaming (':stream' or a resize), but stream=False was given")
    return open_stream(path, name, n=n, resize=resize)


def _network(source: str, n: int | None) -> Dataset:
    """Samples of the network ``bif:NAME``, ``bif:PATH`` or ``PATH.bif[.gz]``."""
    rest = source[len(BIF_PREFIX):].strip() if source.lower().startswith(BIF_PREFIX) else source
    path = os.path.expanduser(rest)
    is_path = os.sep in rest or "/" in rest or rest.lower().endswith(BIF_SUFFIXES)
    if is_path and not os.path.isfile(path):
        raise FileNotFoundError(f"{source}: no such BIF file; give the path of a .bif or .bif.gz file, or "
                                f"bif:NAME for a bundled network ({', '.join(network_names())})")
    ds = network_dataset(path if is_path else BIF_PREFIX + rest.lower(), n)
    return dataclasses.replace(ds, name=source)
