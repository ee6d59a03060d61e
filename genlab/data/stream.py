"""Streaming data: examples read from their files on demand, never the whole set in memory.

A `StreamDataset` is a map-style ``torch.utils.data.Dataset`` over a `Source` (an image folder,
a ``.npy`` file, a CSV file or a text file: `genlab.data.sources`) and a list of the source's
rows. It carries the same ``spec``, ``name`` and ``class_names`` as an in-memory `Dataset`,
and its ``x`` is itself, so ``Trainer.fit(splits.train.x, ...)`` takes either without a branch.

The trainer's one interface for both (`Feed`): each epoch's order is the same permutation of
(seed, epoch) for tensors and for streams, cut into the same index batches from the resume
point on; a tensor is indexed (the fast path), a stream goes through a ``DataLoader`` whose
``batch_sampler`` is those index batches, with ``num_workers`` processes, ``pin_memory`` on
CUDA and persistent workers. So a stream gives the same batches, in the same order, as a tensor
holding the same examples, whatever the number of workers, and a resumed run continues mid-epoch
at the same batch.

What is gathered into memory, and why (both documented limits, independent of the data's size):

* ``setup`` (preprocessing statistics, data-dependent initialisation): the whole training set
  when it has at most `SETUP_SAMPLE` examples, else `SETUP_SAMPLE` examples drawn by a permutation
  seeded with the training seed (`setup_sample`), in file order. Below the limit a stream and a
  tensor therefore give identical models.
* validation: the first `VAL_LIMIT` examples of a streamed validation split (which `split` has
  already shuffled), gathered once (`in_memory`): the figure only ranks epochs for early stopping.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset as TorchDataset, default_collate

from .dataset import Dataset
from .spec import DataSpec
from .splits import Splits

SETUP_SAMPLE = 10_000
VAL_LIMIT = 10_000
GATHER_CHUNK = 1024  # examples decoded per read when gathering: bounds the transient memory
PASS_BYTES = 16 * 2**20  # bytes a source reads per step of its one pass over a file


class Source:
    """A file format's reader: ``n`` rows, each one example of ``spec`` (and a label when
    ``class_names`` or ``spec.num_classes`` says the source has them). Subclasses implement `read`.

    Attributes:
        name: what the data were loaded as (a path, with its options).
        spec: the `DataSpec` of one example, from one pass over the source.
        n: number of rows.
        class_names: names of the classes, indexed by label, or None.
        labelled: whether `read` returns labels.
    """

    name: str
    spec: DataSpec
    n: int
    class_names: tuple[str, ...] | None = None
    labelled: bool = False

    def read(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Rows ``rows`` (k,) int64 as ``x: (k, *spec.event_shape)`` float32 and ``y: (k,)`` int64
        (None without labels), in the order asked."""
        raise NotImplementedError


class StreamDataset(TorchDataset):
    """The rows ``rows`` of a `Source` (all of them by default), read on demand.

    ``ds[i]`` is a float32 tensor of ``spec.event_shape``, or ``(tensor, label)`` for a labelled
    source; ``ds[a:b]`` the examples of a slice as one tensor (as ``x[a:b]`` of a `Dataset`);
    ``__getitems__`` reads a whole batch in one call (a ``DataLoader`` uses it).
    """

    def __init__(self, source: Source, rows: np.ndarray | None = None):
        self.source = source
        self.rows = np.arange(source.n, dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
        self.reads = 0  # examples decoded through this object in this process (a check that nothing more is)

    spec = property(lambda self: self.source.spec, doc="The `DataSpec` of one example.")
    name = property(lambda self: self.source.name, doc="The name or path the data were loaded as.")
    class_names = property(lambda self: self.source.class_names, doc="Class names, indexed by label, or None.")
    x = property(lambda self: self, doc="The examples: this dataset itself (what `Trainer.fit` takes).")
    y = property(lambda self: None, doc="None: labels come with the examples (``ds[i] == (x, label)``).")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int | slice) -> Tensor | tuple[Tensor, Tensor]:
        if isinstance(i, slice):  # as ``x[:k]`` of an in-memory Dataset: those examples, as one tensor
            return gather(self, range(len(self))[i])[0]
        return self.__getitems__([i])[0]

    def __getitems__(self, idx: Sequence[int]) -> list[Any]:
        x, y = self.source.read(self.rows[np.asarray(idx, dtype=np.int64)])
        self.reads += len(x)
        xs = torch.from_numpy(x).unbind(0)
        return list(xs) if y is None else list(zip(xs, torch.from_numpy(y).unbind(0)))

    def subset(self, idx: Tensor | Sequence[int]) -> "StreamDataset":
        """The examples at ``idx`` (indices into this dataset), still streamed."""
        return StreamDataset(self.source, self.rows[np.asarray(torch.as_tensor(idx).cpu(), dtype=np.int64)])

    def split_units(self, *, seed: int = 0, val: float = 0.1, test: float = 0.1) -> Splits:
        """Train / validation / test as index subsets, by the permutation `genlab.data.split`
        uses for in-memory data (same seed, same examples in each split); all three stream."""
        n = len(self)
        n_test, n_val = round(test * n), round(val * n)
        sizes = {"train": n - n_val - n_test, "val": n_val, "test": n_test}
        empty = [k for k, v in sizes.items() if v < 1]
        if empty:
            raise ValueError(f"split: {self.name!r} has {n} examples, so val={val:g}, test={test:g} give "
                             f"{sizes}: the {' and '.join(empty)} split(s) would be empty; use more data "
                             f"or larger val/test fractions")
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        return Splits(train=self.subset(perm[n_test + n_val:]), val=self.subset(perm[n_test:n_test + n_val]),
                      test=self.subset(perm[:n_test]))

    def materialize(self, n: int | None = None) -> Dataset:
        """The first ``n`` (or all) examples as an in-memory `Dataset` (e.g. a test split to evaluate)."""
        x, y = gather(self, range(len(self) if n is None else min(n, len(self))))
        return Dataset(x, y, self.spec, self.name, self.class_names)

    def __repr__(self) -> str:
        return f"StreamDataset({self.name!r}, n={len(self)}, event_shape={self.spec.event_shape}, " \
               f"kind={self.spec.kind.value})"


def streamed(x: Any) -> bool:
    """Whether ``x`` is a map-style dataset to stream (anything but a tensor or an array)."""
    return isinstance(x, TorchDataset) and not isinstance(x, (Tensor, np.ndarray))


def _x_and_y(out: Any) -> tuple[Tensor, Tensor | None]:
    """A collated batch as (x, labels or None): items are a tensor or (tensor, label)."""
    if isinstance(out, Tensor):
        return out, None
    if isinstance(out, (list, tuple)) and len(out) in (1, 2) and isinstance(out[0], Tensor):
        return out[0], (out[1] if len(out) == 2 else None)
    raise TypeError(f"a streamed dataset's items must be a tensor or (tensor, label), got {type(out).__name__}; "
                    "return torch.Tensor examples from __getitem__")


def gather(ds: TorchDataset, idx: Sequence[int] | range) -> tuple[Tensor, Tensor | None]:
    """The examples at ``idx`` of a map-style dataset as one tensor (and labels), read in chunks."""
    idx = list(idx)
    if not idx:
        raise ValueError("gather: no examples asked")
    many = getattr(ds, "__getitems__", None)
    xs, ys = [], []
    for s in range(0, len(idx), GATHER_CHUNK):
        part = idx[s:s + GATHER_CHUNK]
        x, y = _x_and_y(default_collate(many(part) if many else [ds[i] for i in part]))
        xs.append(x.float())
        ys.append(y)
    y = None if ys[0] is None else torch.cat([torch.as_tensor(t, dtype=torch.int64) for t in ys])
    return torch.cat(xs), y


def setup_sample(ds: TorchDataset, y: Tensor | None = None, *, seed: int = 0,
                 limit: int = SETUP_SAMPLE) -> tuple[Tensor, Tensor | None]:
    """The examples a model's ``setup`` sees from a stream: all of them (in order) up to
    ``limit``, else ``limit`` of them drawn by a permutation seeded with ``seed``, in file order."""
    n = len(ds)
    if n <= limit:
        rows = np.arange(n)
    else:
        rows = np.sort(torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:limit].numpy())
    x, labels = gather(ds, rows.tolist())
    if y is not None:
        labels = torch.as_tensor(y)[torch.from_numpy(rows).to(torch.as_tensor(y).device)]
    return x, labels


def in_memory(x: Any, y: Tensor | None, limit: int = VAL_LIMIT) -> tuple[Any, Tensor | None]:
    """A streamed (validation) set as tensors of its first ``limit`` examples; tensors, arrays
    and None are returned as they are."""
    if not streamed(x):
        return x, y
    rows = range(min(limit, len(x)))
    xs, labels = gather(x, rows)
    return xs, (labels if y is None else torch.as_tensor(y)[: len(rows)])


class _Batches(torch.utils.data.Sampler):
    """The index batches of the current epoch; `Feed` sets them before each epoch, and a
    persistent ``DataLoader`` re-reads them each time it starts over."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class Feed:
    """The trainer's batches, from in-memory tensors or from a map-style dataset.

    Args:
        x: ``(n, *event_shape)`` tensor (already checked and on the device), or a map-style
            dataset whose items are a tensor or ``(tensor, label)``.
        y: (n,) labels or None (for a dataset: None takes the labels its items carry).
        workers: ``DataLoader`` worker processes for a dataset (0: read in this process).
        device: where batches go (pinned host memory and non-blocking copies on CUDA).
        check: validates a streamed batch and puts it on the model's device and dtype.
        seed: seeds the ``DataLoader``'s own generator, so it never draws from torch's global one.
        whole: the model updates on the whole data at once (closed forms, EM): refused for a stream.
    """

    def __init__(self, x: Any, y: Tensor | None, *, workers: int = 0, device: torch.device | str = "cpu",
                 check: Callable[[Tensor], Tensor] = lambda t: t, seed: int = 0, whole: bool = False,
                 name: str = "this family"):
        self.x, self.y, self.check, self.device = x, y, check, torch.device(device)
        self.loader: DataLoader | None = None
        if not streamed(x):
            return
        if whole:
            refuse_whole(name)
        if y is not None and len(y) != len(x):
            raise ValueError(f"y has {len(y)} labels but the streamed dataset has {len(x)} examples")
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        self.sampler = _Batches()
        self.loader = DataLoader(x, batch_sampler=self.sampler, num_workers=workers,
                                 pin_memory=self.device.type == "cuda", persistent_workers=workers > 0,
                                 generator=torch.Generator().manual_seed(seed))

    def batches(self, order: Tensor, start: int, n_batches: int, bs: int
                ) -> Iterator[tuple[int, Tensor, Tensor | None]]:
        """``(b, x_b, y_b)`` for batches ``start .. n_batches-1`` of the epoch's ``order``: batch b
        holds the examples ``order[b*bs:(b+1)*bs]`` (empty ones are skipped)."""
        if self.loader is None:  # in memory: plain indexing, the fast path
            for b in range(start, n_batches):
                idx = order[b * bs:(b + 1) * bs]
                if len(idx):
                    yield b, self.x[idx], (self.y[idx] if self.y is not None else None)
            return
        order = order.cpu()
        plan = [(b, order[b * bs:(b + 1) * bs]) for b in range(start, n_batches)]
        plan = [(b, idx) for b, idx in plan if len(idx)]
        self.sampler.batches = [idx.tolist() for _, idx in plan]
        for (b, idx), out in zip(plan, self.loader):
            xb, yb = _x_and_y(out)
            if self.y is not None:
                yb = self.y[idx.to(self.y.device)]
            xb = self.check(xb.to(self.device, non_blocking=True))
            yield b, xb, (None if yb is None else yb.to(self.device, dtype=torch.int64, non_blocking=True))

    def close(self) -> None:
        """Stop the worker processes (they persist across epochs while the feed lives)."""
        self.loader = None


def refuse_whole(name: str) -> None:
    """Raise the error for a family that updates on all the data at once, given a stream."""
    raise ValueError(f"{name} updates on the whole training set at once (closed form / EM), so it needs "
                     "the data in memory; load it without streaming (drop ':stream', or stream=False)")
