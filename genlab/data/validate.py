"""Validation of examples and labels against a `DataSpec`: shape, dtype, finite values, levels.

Every model's public methods pass their input through `check_input`
(``GenerativeModel.check_input``), so a bad array is refused with the reason before any maths.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from .. import settings
from .spec import DataSpec


def check_input(x: Tensor | np.ndarray, spec: DataSpec, like: Tensor | None = None) -> Tensor:
    """Validate examples against a spec: shape, dtype, finite values, discrete levels."""
    if isinstance(x, np.ndarray):
        x = native_array(x)
        check_memory(x.size, 4, f"an array of shape {x.shape}")
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a torch.Tensor or numpy array, got {type(x).__name__}")
    if x.is_complex():
        raise ValueError("expected real-valued data, got complex numbers")
    dtype = like.dtype if like is not None and like.is_floating_point() else torch.float32
    device = like.device if like is not None else x.device
    x = x.to(device=device, dtype=dtype)
    shape = tuple(spec.event_shape)
    if x.ndim == 0:
        raise ValueError(f"expected a batch of shape (batch, {', '.join(map(str, shape))}), got a scalar")
    if tuple(x.shape[1:]) != shape:
        if x[0].numel() == spec.dim and x.ndim >= 2:
            x = x.reshape(len(x), *shape)
        else:
            raise ValueError(f"expected shape (batch, {', '.join(map(str, shape))}) or (batch, {spec.dim}), "
                             f"got {tuple(x.shape)}; this model was built for {spec.dim} values per example")
    if len(x) == 0:
        raise ValueError("got an empty batch (0 examples)")
    lo, hi = (float(v) for v in torch.aminmax(x))  # one pass: NaN and +-Inf show in the extremes
    if not (math.isfinite(lo) and math.isfinite(hi)):
        rows = (~torch.isfinite(x)).reshape(len(x), -1).any(1).nonzero().flatten()
        raise ValueError(f"data contain NaN or Inf in {len(rows)} example(s), first at row {int(rows[0])}; "
                         "drop or impute them first (genlab impute fills missing values)")
    if spec.is_discrete:
        if lo < 0 or hi > spec.levels - 1 or not torch.equal(x, torch.round(x)):
            raise ValueError(f"{spec.kind.value} data must hold integers 0..{spec.levels - 1}; "
                             f"got values in [{lo:g}, {hi:g}]")
    return x


def native_array(x: np.ndarray) -> np.ndarray:
    """A numeric array in native byte order (big-endian input is converted, not refused).

    Raises:
        ValueError: strings, objects or complex numbers, with the fix.
    """
    if x.dtype == object or x.dtype.kind in "USOV":
        raise ValueError(f"expected numeric data, got an array of dtype {x.dtype}; "
                         "convert strings to numbers first")
    if x.dtype.kind == "c":
        raise ValueError(f"expected real-valued data, got complex numbers ({x.dtype}); pass x.real, or the "
                         "real and imaginary parts as separate features")
    return x if x.dtype.isnative else x.astype(x.dtype.newbyteorder("="))


def check_memory(count: int, itemsize: int, what: str) -> None:
    """Refuse, before allocating, ``count`` values of ``itemsize`` bytes that exceed the memory
    available (`genlab.settings.memory_available`); ``what`` names the data in the message."""
    need, have = count * itemsize, settings.memory_available()
    if need > have:
        raise ValueError(f"{what} needs {need / 2**30:,.1f} GiB of memory, more than the {have / 2**30:,.1f} "
                         "GiB available; load fewer examples (e.g. --n) or smaller ones")


def check_labels(labels: Tensor | None, n: int, spec: DataSpec, device: torch.device) -> Tensor | None:
    """``labels`` as (n,) int64 on ``device`` (a scalar is repeated), checked against
    ``spec.num_classes``; None stays None. Raises ValueError for a wrong shape or range."""
    if labels is None:
        return None
    labels = torch.as_tensor(labels, dtype=torch.long, device=device)
    if labels.ndim == 0:
        labels = labels.expand(n)
    if labels.shape != (n,):
        raise ValueError(f"condition must have shape ({n},), got {tuple(labels.shape)}")
    k = spec.num_classes
    if k is not None and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"condition labels must lie in 0..{k - 1}")
    return labels
