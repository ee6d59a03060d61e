"""Tabular categorical data: numpy arrays or pandas frames -> integer codes and a `Dataset`.

Every column becomes a categorical variable with codes ``0 .. k_j - 1``; the spec records the
per-column cardinalities (``DataSpec.cardinalities``; ``levels`` is their maximum) and the column
names. Missing entries (``None``, ``NaN``, pandas ``NA``) are coded ``-1`` by `encode_categorical`
(for `BayesNet.fit_em` / `impute`); `categorical_dataset` refuses them with that advice.
Continuous columns are binned by `discretize`. `network_dataset` samples a BIF network.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .dataset import Dataset
from .spec import DataSpec, Kind


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or str(v) in ("<NA>", "nan", "NaT")


def encode_categorical(data: Any, columns: list[str] | None = None) -> tuple[np.ndarray, list[str], list[list[str]]]:
    """Integer codes of a table.

    Args:
        data: a pandas DataFrame (categorical columns keep their category order; other columns
            use their sorted distinct values) or a 2-D numpy array (sorted distinct values).
        columns: names for a numpy array's columns (default ``x0, x1, ...``).
    Returns:
        codes (n, D) int64 with ``-1`` for missing entries, column names, and for each column
        the names of its states (index = code).
    """
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is optional
        pd = None
    if pd is not None and isinstance(data, pd.DataFrame):
        names = [str(c) for c in data.columns]
        cols = []
        for c in data.columns:
            s = data[c]
            cat = s.astype("category") if not isinstance(s.dtype, pd.CategoricalDtype) else s
            cols.append((cat.cat.codes.to_numpy().astype(np.int64), [str(v) for v in cat.cat.categories]))
    else:
        a = np.asarray(data, dtype=object if np.asarray(data).dtype.kind in "OUS" else None)
        if a.ndim != 2:
            raise ValueError(f"encode_categorical: expected a 2-D table (rows, columns), got shape {a.shape}")
        names = list(columns) if columns is not None else [f"x{j}" for j in range(a.shape[1])]
        if len(names) != a.shape[1]:
            raise ValueError(f"encode_categorical: {len(names)} column names for {a.shape[1]} columns")
        cols = []
        for j in range(a.shape[1]):
            miss = np.array([_is_missing(v) for v in a[:, j]])
            vals = sorted({v for v, m in zip(a[:, j].tolist(), miss) if not m}, key=lambda v: (str(type(v)), v))
            index = {v: k for k, v in enumerate(vals)}
            codes = np.array([-1 if m else index[v] for v, m in zip(a[:, j].tolist(), miss)], dtype=np.int64)
            cols.append((codes, [str(v) for v in vals]))
    codes = np.stack([c for c, _ in cols], 1) if cols else np.zeros((0, 0), np.int64)
    return codes, names, [s for _, s in cols]


def categorical_spec(cards: list[int], names: list[str] | None = None, num_classes: int | None = None) -> DataSpec:
    """The spec of a table of categorical columns with cardinalities ``cards`` (each >= 2)."""
    cards = [max(2, int(c)) for c in cards]  # a constant column still gets two states
    return DataSpec((len(cards),), Kind.CATEGORICAL, levels=max(cards), num_classes=num_classes,
                    feature_names=tuple(names) if names else None, cardinalities=tuple(cards))


def categorical_dataset(data: Any, *, name: str = "tabular", columns: list[str] | None = None,
                        label: str | None = None) -> tuple[Dataset, list[list[str]]]:
    """A categorical `Dataset` from a table, and each column's state names.

    Args:
        label: a column to use as class labels instead of a variable.
    """
    codes, names, states = encode_categorical(data, columns)
    if (codes < 0).any():
        r, c = np.argwhere(codes < 0)[0]
        raise ValueError(f"categorical_dataset: missing value at row {r}, column {names[c]!r}; drop those rows, "
                         "or use encode_categorical and BayesNet.fit_em / impute")
    y, num_classes = None, None
    if label is not None:
        if label not in names:
            raise ValueError(f"categorical_dataset: no column {label!r}; columns: {names}")
        j = names.index(label)
        y, num_classes = torch.from_numpy(codes[:, j].copy()), len(states[j])
        codes = np.delete(codes, j, 1)
        names, states = names[:j] + names[j + 1:], states[:j] + states[j + 1:]
    spec = categorical_spec([len(s) for s in states], names, num_classes)
    return Dataset(torch.from_numpy(codes).float(), y, spec, name), states


def discretize(x: np.ndarray, bins: int = 5, strategy: str = "quantile") -> tuple[np.ndarray, list[np.ndarray]]:
    """Bin continuous columns: x (n, D) -> codes (n, D) int64 in ``0 .. bins-1`` and the inner
    bin edges of each column (``quantile``: equal counts; ``uniform``: equal widths)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or bins < 2:
        raise ValueError("discretize: x must be (n, D) and bins >= 2")
    codes, edges = np.zeros(x.shape, np.int64), []
    for j in range(x.shape[1]):
        q = np.linspace(0, 1, bins + 1)[1:-1]
        e = np.quantile(x[:, j], q) if strategy == "quantile" else x[:, j].min() + q * np.ptp(x[:, j])
        if strategy not in ("quantile", "uniform"):
            raise ValueError(f"discretize: strategy must be quantile or uniform, got {strategy!r}")
        codes[:, j] = np.searchsorted(e, x[:, j], side="right")
        edges.append(e)
    return codes, edges


def network_dataset(source: str = "bif:asia", n: int | None = None, seed: int = 0) -> Dataset:
    """``n`` (default 10,000) ancestral samples of a BIF network (``bif:NAME`` or a path)."""
    from ..pgm.inference import ancestral_sample
    from ..pgm.bif import read_bif
    net = read_bif(source)
    g = torch.Generator().manual_seed(seed)
    x, _ = ancestral_sample(net.parents, net.cpts, 10_000 if n is None else n, g)
    spec = categorical_spec(net.cards, net.names)
    return Dataset(torch.from_numpy(np.ascontiguousarray(x)).float(), None, spec, source.split(":")[-1])
