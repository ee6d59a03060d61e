"""Deterministic train / validation / test splits of a `Dataset`."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .dataset import Dataset


@dataclass
class Splits:
    """Three disjoint parts of one data set that together hold every example once."""

    train: Dataset
    val: Dataset
    test: Dataset


def split(ds: Dataset, *, seed: int = 0, val: float = 0.1, test: float = 0.1) -> Splits:
    """Split ``ds`` by a permutation seeded with ``seed``.

    Sizes: ``n_test = round(test * n)``, ``n_val = round(val * n)``, the rest is train. The same
    data set and seed always give the same splits; each split keeps the permuted order. A data set
    whose examples are cut from larger units (a ``split_units`` method: text chunks of whole
    entries, `genlab.data.text.EntryText`) is split by unit instead, so no unit is in two splits.

    Args:
        ds: the data set, ``x: (n, *event_shape)``.
        seed: seeds the ``torch.Generator`` of the permutation.
        val: fraction of examples for validation, in (0, 1).
        test: fraction of examples for testing, in (0, 1); ``val + test < 1``.

    Raises:
        ValueError: a fraction outside (0, 1), or a split that would hold no example.
    """
    n = len(ds)
    for what, frac in (("val", val), ("test", test)):
        if not 0 < frac < 1:
            raise ValueError(f"split: {what}={frac} must be a fraction in (0, 1), e.g. 0.1")
    if val + test >= 1:
        raise ValueError(f"split: val + test = {val + test:g} leaves nothing to train on; "
                         f"use fractions that sum to less than 1")
    own = getattr(ds, "split_units", None)
    if own is not None:  # examples cut from larger units (text entries): each unit goes to one split whole
        return own(seed=seed, val=val, test=test)
    n_test, n_val = round(test * n), round(val * n)
    n_train = n - n_val - n_test
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    empty = [k for k, v in sizes.items() if v < 1]
    if empty:
        raise ValueError(f"split: {ds.name!r} has {n} examples, so val={val:g}, test={test:g} give "
                         f"{sizes}: the {' and '.join(empty)} split(s) would be empty; use more data "
                         f"or larger val/test fractions")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return Splits(train=ds.subset(perm[n_test + n_val:]), val=ds.subset(perm[n_test:n_test + n_val]),
                  test=ds.subset(perm[:n_test]))
