"""Image tiling shared by the figures written to files (`figures`) and the PNGs of the HTML
report (`plots`): one place, so that neither module needs the other for it."""
from __future__ import annotations

import math

import numpy as np
import torch

from ..data.spec import DataSpec


def image_grid(x: torch.Tensor, spec: DataSpec, ncol: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile images into one uint8 array.

    Args:
        x: (n, C, H, W) images in data space (integer levels for discrete data).
        spec: the data's spec: discrete levels map to 0..255, continuous values are stretched to
            their observed range.
        ncol: images per row (default: a square-ish grid).
        pad: white pixels between images.
    Returns:
        (rows, cols) for one channel, else (rows, cols, 3).
    """
    x = x.detach().cpu().float()
    n, c, h, w = x.shape
    top = (spec.levels - 1) if spec.levels else 1.0
    if spec.levels is None:  # continuous: stretch to the observed range
        lo, hi = float(x.min()), float(x.max())
        x, top = (x - lo) / max(hi - lo, 1e-12), 1.0
    x = (x / top).clamp(0, 1)
    ncol = ncol or math.ceil(math.sqrt(n))
    nrow = math.ceil(n / ncol)
    grid = torch.ones(c, nrow * (h + pad) + pad, ncol * (w + pad) + pad)
    for i in range(n):
        r, k = divmod(i, ncol)
        grid[:, pad + r * (h + pad):pad + r * (h + pad) + h, pad + k * (w + pad):pad + k * (w + pad) + w] = x[i]
    arr = (grid.numpy() * 255).round().astype(np.uint8)
    return arr[0] if c == 1 else arr[:3].transpose(1, 2, 0)
