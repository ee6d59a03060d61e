"""Unpaired image domains: several image sets joined into one data set on the first one's grid.

``load_dataset("digits+mnist5k")`` (see `genlab.data.datasets`) loads each named set and calls
`join_domains`: the examples of every domain after the first are put onto the first domain's
shape and grey levels (`resize_domain`), all examples are concatenated in domain order, and an
example's label is the index of its domain (``spec.domains`` names them, and
``spec.num_classes == len(spec.domains)``). Class labels of the parts are dropped: in an
unpaired set the label says which domain an example comes from, which is what a translator
between domains (CycleGAN) needs to read, through the trainer's normal ``(x, y)`` path.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .dataset import Dataset
from .spec import DataSpec


def resize_domain(x: Tensor, levels: int | None, shape: tuple[int, int, int], to_levels: int | None) -> Tensor:
    """Images ``x: (n, C', H', W')`` with ``levels`` grey levels -> (n, *shape) on ``to_levels``
    levels (None: continuous values in [0, 1]); channels are averaged or repeated, the size is
    changed with an antialiased bilinear resize."""
    c, h, w = shape
    v = x / (levels - 1) if levels else x
    if v.shape[1] != c:
        v = v.mean(1, keepdim=True).expand(-1, c, -1, -1)
    if tuple(v.shape[2:]) != (h, w):
        v = F.interpolate(v, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    v = v.clamp(0, 1)
    return torch.round(v * (to_levels - 1)) if to_levels else v


def join_domains(parts: Sequence[Dataset], name: str) -> Dataset:
    """One unpaired data set of several image sets (two or more), labelled by domain.

    Args:
        parts: the domains, first one first; each a set of images ``(n_k, C, H, W)``.
        name: what `load_dataset` was given, so the joined set can be loaded again.

    Returns:
        ``x``: every part on the first part's ``(C, H, W)`` and levels, in domain order; ``y``:
        the domain index of each example; ``spec.domains``: the parts' names.

    Raises:
        ValueError: fewer than two parts, a part that is not a set of images, or two parts with
            the same name.
    """
    if len(parts) < 2:
        raise ValueError(f"{name}: an unpaired data set joins two or more image sets, e.g. digits+mnist5k")
    names = tuple(p.name for p in parts)
    if len(set(names)) != len(names):
        raise ValueError(f"{name}: the same data set twice ({', '.join(names)}); join different image sets")
    not_images = [p.name for p in parts if not p.spec.is_image]
    if not_images:
        raise ValueError(f"{name}: {', '.join(not_images)} holds vectors, not images (channels, "
                         f"height, width); unpaired domains are image sets such as digits, mnist5k, "
                         f"fashion-mnist or a folder of images")
    first = parts[0].spec
    xs = [parts[0].x] + [resize_domain(p.x, p.spec.levels, first.event_shape, first.levels)
                         for p in parts[1:]]
    y = torch.cat([torch.full((len(p),), k, dtype=torch.int64) for k, p in enumerate(parts)])
    spec = DataSpec(first.event_shape, first.kind, levels=first.levels, num_classes=len(parts),
                    domains=names)
    return Dataset(torch.cat(xs).float(), y, spec, name, names)
