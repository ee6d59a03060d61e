"""What the image-to-image translators (``pix2pix``, ``cyclegan``) share: the data they accept
and their model space (the `Translator` capability itself lives in `genlab.protocol`).

Both work on grey-level images rescaled to [-1, 1] (`Rescale`: the generators end in tanh, as in
pix2pix and CycleGAN); vectors have no edges, resolution or domains to translate between.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..data.preprocess import Preprocess, Rescale
from ..data.spec import DataSpec
from ..protocol import NotSupported


def check_image_spec(spec: DataSpec, name: str) -> None:
    """Raise NotSupported unless ``spec`` describes images (the family's ``data_kinds`` say which levels)."""
    if not spec.is_image:
        raise NotSupported(f"{name}: translates images (channels, height, width); got vectors of shape "
                           f"{spec.event_shape}, which have no edges, resolution or image domains")


def image_preprocess(spec: DataSpec) -> Preprocess:
    """Levels 0..L-1 -> [-1, 1] (deterministic; no dequantization)."""
    return Rescale(spec) if spec.is_discrete and spec.is_image else Preprocess()


def pick(images: Tensor, count: int, n: int, generator: torch.Generator | None, name: str) -> Tensor:
    """``n`` rows drawn with replacement from the first ``count`` rows of ``images``."""
    if count < 1:
        raise ValueError(f"{name}: the model holds no stored images yet; train it first (setup fills them)")
    idx = torch.randint(count, (n,), generator=generator, device=images.device)
    return images[idx]


def size_stored_images(module: torch.nn.Module, state_dict: dict[str, Tensor], prefix: str,
                       names: tuple[str, ...], old_names: dict[str, str]) -> None:
    """Before ``module`` loads ``state_dict`` (from ``_load_from_state_dict``): read buffers saved
    under an old name (``old_names``: old -> new), give a buffer of ``names`` that the save lacks
    no images, and size each buffer of ``names`` to its saved images."""
    for old, new in old_names.items():
        if prefix + old in state_dict and prefix + new not in state_dict:
            state_dict[prefix + new] = state_dict.pop(prefix + old)
    for name in names:
        mine = getattr(module, name)
        saved = state_dict.setdefault(prefix + name, mine.new_zeros(0, *mine.shape[1:]))
        setattr(module, name, mine.new_empty(saved.shape))


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
