"""Paired image-to-image data built from the shipped image sets (DATA.md).

A pairing maps a target image ``x`` (data space: integers ``0..levels-1``) to the input a
translator sees, deterministically, so that pairs can be computed on the fly from any batch:

* ``edges``: the Sobel gradient magnitude (the operator of ``scipy.ndimage.sobel``, edges
  replicated), divided by its maximum over the image, on the same grey levels;
* ``lowres``: the mean over ``factor x factor`` blocks, shown back at full size (nearest);
* ``masked``: the central square of side ``H // 2`` set to 0 (black).

Unpaired domains (two image sets, for CycleGAN) are in `genlab.data.domains`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .dataset import Dataset
from .datasets import load_dataset

PAIRINGS = ("edges", "lowres", "masked")


def sobel_magnitude(x: Tensor) -> Tensor:
    """``sqrt(sobel_x^2 + sobel_y^2)`` per channel: (n, C, H, W) -> (n, C, H, W).

    The 3x3 Sobel operator (``[1, 2, 1]`` smoothing times ``[-1, 0, 1]`` derivative) with the
    border replicated, as ``scipy.ndimage.sobel(..., mode="reflect")`` on each axis.
    """
    n, c, h, w = x.shape
    d = torch.tensor([-1.0, 0.0, 1.0], dtype=x.dtype, device=x.device)
    s = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype, device=x.device)
    kx, ky = torch.outer(s, d), torch.outer(d, s)  # derivative along W, along H
    k = torch.stack([kx, ky])[:, None]  # (2, 1, 3, 3)
    xp = F.pad(x.reshape(n * c, 1, h, w), (1, 1, 1, 1), mode="replicate")
    g = F.conv2d(xp, k)  # cross-correlation, like scipy's correlate1d
    return g.pow(2).sum(1).sqrt().reshape(n, c, h, w)


def make_inputs(x: Tensor, pairing: str, levels: int, factor: int = 2) -> Tensor:
    """The translator's input for targets ``x: (n, C, H, W)`` in data space (same shape, levels).

    Args:
        x: images with integer values ``0..levels-1``.
        pairing: ``edges`` | ``lowres`` | ``masked``.
        levels: grey levels of the data (256 for MNIST, 17 for digits).
        factor: block size of ``lowres``.
    """
    if x.ndim != 4:
        raise ValueError(f"make_inputs: expected images (n, C, H, W), got shape {tuple(x.shape)}")
    top = levels - 1
    if pairing == "edges":
        mag = sobel_magnitude(x / top)
        peak = mag.flatten(1).amax(1).clamp_min(1e-12)[:, None, None, None]
        return torch.round(mag / peak * top)
    if pairing == "lowres":
        if factor < 1:
            raise ValueError(f"lowres factor must be >= 1, got {factor}")
        small = F.avg_pool2d(x, factor, ceil_mode=True)
        return torch.round(F.interpolate(small, size=x.shape[2:], mode="nearest"))
    if pairing == "masked":
        h, w = x.shape[2:]
        out = x.clone()
        out[:, :, h // 4:h // 4 + h // 2, w // 4:w // 4 + w // 2] = 0
        return out
    raise ValueError(f"pairing must be one of {', '.join(PAIRINGS)}; got {pairing!r}")


def load_paired(name: str, pairing: str, *, n: int | None = None, factor: int = 2) -> tuple[Dataset, Dataset]:
    """(inputs, targets) for a named image set (``digits``, ``mnist5k``, ``fashion-mnist``)."""
    ds = load_dataset(name, n=n)
    if not ds.spec.is_image or ds.spec.levels is None:
        raise ValueError(f"load_paired: {name} is not a set of discrete images")
    inputs = make_inputs(ds.x, pairing, ds.spec.levels, factor)
    return Dataset(inputs, ds.y, ds.spec, f"{name}:{pairing}", ds.class_names), ds
