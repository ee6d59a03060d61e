"""The `Dataset` type that every loader returns, and the array conversions the loaders share."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .spec import DataSpec


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
        if self.spec.domains is not None:
            labels = f"domains {' + '.join(self.spec.domains)}"
        levels = "" if self.spec.levels is None else f", levels={self.spec.levels}"
        return (f"Dataset({self.name!r}, n={len(self)}, event_shape={self.spec.event_shape}, "
                f"kind={self.spec.kind.value}{levels}, {labels})")



def first_n(n: int | None, *arrays: np.ndarray | None) -> list[np.ndarray | None]:
    """The first ``n`` rows of each array (all rows for ``n=None``); ``None`` stays ``None``."""
    return [a if a is None or n is None else a[:n] for a in arrays]


def as_float32(a: np.ndarray) -> torch.Tensor:
    """A contiguous float32 tensor of ``a`` (the dtype of every example tensor)."""
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def as_int64(a: np.ndarray) -> torch.Tensor:
    """A contiguous int64 tensor of ``a`` (the dtype of every label tensor)."""
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))
