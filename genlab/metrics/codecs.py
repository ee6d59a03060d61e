"""Code lengths of standard lossless codecs on a set of discrete examples, in bits per dimension:
the references a learned density must beat (a model's NLL in bits/dim is the length an entropy
coder driven by it would reach).

The whole set is one file, as a user would store it, so a codec's fixed header costs little:
``lzma`` compresses the concatenated bytes (preset 9 | extreme); ``png`` (optimize) and ``webp``
(lossless, method 6) compress the images tiled into one mosaic, one image per cell. The values
are the levels themselves (0 .. levels-1 as bytes), so every byte pattern is the data's own and
the lengths compare with bits/dim of the discrete data (each decodes back exactly).
"""
from __future__ import annotations

import io
import lzma
import math

import numpy as np
import torch
from torch import Tensor

CODECS = ("png", "webp", "lzma")


def _mosaic(images: np.ndarray) -> np.ndarray:
    """(n, C, H, W) uint8 -> one (rows*H, cols*W[, C]) image, cells filled row by row (zeros after the last)."""
    n, c, h, w = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * cols, c, h, w), np.uint8)
    grid[:n] = images
    grid = grid.reshape(rows, cols, c, h, w).transpose(0, 3, 1, 4, 2).reshape(rows * h, cols * w, c)
    return grid[..., 0] if c == 1 else grid


def codec_bits_per_dim(x: Tensor | np.ndarray, levels: int) -> dict[str, float]:
    """Bits per dimension of each codec in `CODECS` on the examples ``x`` (integers in
    ``0 .. levels-1``, ``levels <= 256``). PNG and WebP need images (n, C, H, W) with C in {1, 3};
    for other shapes only ``lzma`` is returned. Raises ValueError for values outside the levels."""
    a = torch.as_tensor(x).detach().cpu().numpy()
    if levels > 256 or a.size == 0:
        raise ValueError(f"codecs: need 1 .. 256 levels and at least one example, got levels={levels}, "
                         f"{len(a)} examples")
    if a.min() < 0 or a.max() >= levels or not np.array_equal(a, np.round(a)):
        raise ValueError(f"codecs: values must be integers in 0 .. {levels - 1}")
    b = a.astype(np.uint8)
    dims = b.size
    out = {"lzma": 8 * len(lzma.compress(b.tobytes(), preset=9 | lzma.PRESET_EXTREME)) / dims}
    if b.ndim == 4 and b.shape[1] in (1, 3):
        from PIL import Image

        img = Image.fromarray(_mosaic(b))
        for codec, kw in (("png", {"format": "PNG", "optimize": True}),
                          ("webp", {"format": "WEBP", "lossless": True, "quality": 100, "method": 6})):
            buf = io.BytesIO()
            img.save(buf, **kw)
            out[codec] = 8 * buf.tell() / dims
    return {k: out[k] for k in CODECS if k in out}
