"""What the image-to-image translators (``pix2pix``, ``cyclegan``) share: the `Translator`
capability, the data they accept, and their model space.

Both work on grey-level images rescaled to [-1, 1] (`Rescale`: the generators end in tanh, as in
pix2pix and CycleGAN); vectors have no edges, resolution or domains to translate between.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..data.preprocess import Preprocess, Rescale
from ..data.spec import DataSpec
from ..protocol import NotSupported


class Translator:
    """Mixin: ``translate(inputs, direction=None)`` maps data-space images (n, C, H, W) to
    data-space images of the model's spec; ``directions`` names the ways it can translate
    (the first is the default)."""

    directions: tuple[str, ...] = ("forward",)

    def translate(self, inputs: Tensor, direction: str | None = None) -> Tensor:  # pragma: no cover
        raise NotImplementedError


def check_image_spec(spec: DataSpec, name: str) -> None:
    """Raise NotSupported unless ``spec`` describes discrete (grey-level) images."""
    if not spec.is_image:
        raise NotSupported(f"{name}: translates images (channels, height, width); got vectors of shape "
                           f"{spec.event_shape}, which have no edges, resolution or image domains")
    if not spec.is_discrete:
        raise NotSupported(f"{name}: needs grey-level images (discrete levels), which are rescaled to "
                           "[-1, 1] for the tanh output; quantize continuous images first")


def image_preprocess(spec: DataSpec) -> Preprocess:
    """Levels 0..L-1 -> [-1, 1] (deterministic; no dequantization)."""
    return Rescale(spec) if spec.is_discrete and spec.is_image else Preprocess()


def pick(bank: Tensor, count: int, n: int, generator: torch.Generator | None, name: str) -> Tensor:
    """``n`` rows drawn with replacement from the first ``count`` rows of ``bank``."""
    if count < 1:
        raise ValueError(f"{name}: the model holds no stored images yet; train it first (setup fills them)")
    idx = torch.randint(count, (n,), generator=generator, device=bank.device)
    return bank[idx]


def read_images(path: str, spec: DataSpec) -> Tensor:
    """Images for ``translate`` from a file, in the data space of ``spec``: (n, *event_shape).

    ``.npy``: values on the data's levels, shaped (H, W), (C, H, W), (n, H, W) or (n, C, H, W).
    ``.png`` / ``.jpg``: one image; grey (C = 1) or RGB (C = 3), resized to (H, W) when it
    differs, 0..255 mapped onto the data's levels.
    """
    import numpy as np

    c, h, w = spec.event_shape
    lower = path.lower()
    if lower.endswith(".npy"):
        a = torch.from_numpy(np.load(path, allow_pickle=False)).float()
        if a.ndim == 2:
            a = a[None, None]
        elif a.ndim == 3:
            a = a[None] if tuple(a.shape) == (c, h, w) else a[:, None]
        if a.ndim != 4 or tuple(a.shape[1:]) != (c, h, w):
            raise ValueError(f"{path}: expected an array of shape ({h}, {w}), ({c}, {h}, {w}) or "
                             f"(n, {c}, {h}, {w}) on 0..{spec.levels - 1}; got {tuple(a.shape)}")
        return a
    if lower.endswith((".png", ".jpg", ".jpeg")):
        from PIL import Image

        img = Image.open(path).convert("L" if c == 1 else "RGB")
        if img.size != (w, h):
            img = img.resize((w, h), Image.BILINEAR)
        a = torch.from_numpy(np.asarray(img, dtype=np.float32))
        a = a[None] if c == 1 else a.permute(2, 0, 1)
        return torch.round(a / 255 * (spec.levels - 1))[None]
    raise ValueError(f"{path}: give a .png, .jpg or .npy file")
