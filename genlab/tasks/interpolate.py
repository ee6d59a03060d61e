"""Latent interpolation and attribute arithmetic for `Latent` families (ae, vae, wae, flows, ...).

* `lerp` / `slerp`: paths between two codes. Spherical interpolation (Shoemake 1985; White
  2016, "Sampling generative networks") keeps the norm of Gaussian codes near its typical
  value, where a straight line passes through the low-norm, atypical centre.
* `attribute_vector`: mean code of class ``a`` minus mean code of class ``b`` (White 2016;
  Larsen et al. 2016); `apply_attribute` decodes ``encode(x) + alpha * v``.

Codes are (latent_dim,) or (n, latent_dim); decoded examples are in data space. The functions
return tensors; pictures of them are drawn by the caller (`genlab.report.save_strips`).
"""
from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor

from ..protocol import Decoder, GenerativeModel, Latent, NotSupported
from ..registry import families, get_family

PathKind = Literal["slerp", "lerp"]
PATHS: tuple[str, ...] = get_args(PathKind)


def _latent(model: GenerativeModel) -> None:
    if not isinstance(model, Latent):
        latent = [f for f in families() if issubclass(get_family(f), Latent)]
        raise NotSupported(f"{model.name} has no latent space; interpolation needs a Latent family "
                           f"({', '.join(latent)})")


def lerp(z0: Tensor, z1: Tensor, steps: int) -> Tensor:
    """(d,), (d,) -> (steps, d): ``(1 - t) z0 + t z1`` for t = 0 .. 1."""
    t = torch.linspace(0, 1, steps, dtype=z0.dtype, device=z0.device)[:, None]
    return (1 - t) * z0 + t * z1


def slerp(z0: Tensor, z1: Tensor, steps: int) -> Tensor:
    """(d,), (d,) -> (steps, d): ``sin((1-t) w) / sin w z0 + sin(t w) / sin w z1`` with ``w``
    the angle between z0 and z1 (falls back to `lerp` for (anti)parallel codes)."""
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm()).clamp_min(1e-12)
    w = torch.arccos(cos.clamp(-1, 1))
    if float(torch.sin(w).abs()) < 1e-6:
        return lerp(z0, z1, steps)
    t = torch.linspace(0, 1, steps, dtype=z0.dtype, device=z0.device)[:, None]
    return (torch.sin((1 - t) * w) * z0 + torch.sin(t * w) * z1) / torch.sin(w)


@torch.no_grad()
def interpolate(model: GenerativeModel, x0: Tensor, x1: Tensor, steps: int = 8, kind: PathKind = "slerp") -> Tensor:
    """Decode the path between the codes of pairs of examples.

    Args:
        x0, x1: (pairs, *event_shape) examples in data space.
        steps: points along each path, ends included.
        kind: ``slerp`` (spherical) or ``lerp`` (straight line).
    Returns:
        (pairs, steps, *event_shape) decoded examples.
    """
    _latent(model)
    if kind not in PATHS:
        raise ValueError(f"kind must be one of {list(PATHS)}, got {kind!r}")
    path = lerp if kind == "lerp" else slerp
    z0, z1 = model.encode(model.check_input(x0)), model.encode(model.check_input(x1))
    codes = torch.stack([path(a.flatten(), b.flatten(), steps) for a, b in zip(z0, z1)])  # (pairs, steps, d)
    out = model.decode(codes.reshape(-1, *z0.shape[1:]))
    return out.reshape(len(z0), steps, *model.spec.event_shape)


@torch.no_grad()
def decode_path(model: GenerativeModel, z0: Tensor, z1: Tensor, steps: int = 8, kind: PathKind = "slerp") -> Tensor:
    """Decode the path between two codes (latent_dim,) of a `Decoder` (a GAN's noise vectors
    too: no encoder needed): (steps, *event_shape), data space."""
    if not isinstance(model, Decoder):
        decoders = [f for f in families() if issubclass(get_family(f), Decoder)]
        raise NotSupported(f"{model.name} has no latent space; decode_path needs a family that decodes codes "
                           f"({', '.join(decoders)})")
    if kind not in PATHS:
        raise ValueError(f"kind must be one of {list(PATHS)}, got {kind!r}")
    codes = (lerp if kind == "lerp" else slerp)(z0.flatten(), z1.flatten(), steps)
    return model.decode(codes).reshape(steps, *model.spec.event_shape)


@torch.no_grad()
def attribute_vector(model: GenerativeModel, x: Tensor, y: Tensor, a: int, b: int) -> Tensor:
    """Mean code of the examples labelled ``a`` minus that of those labelled ``b``: (latent_dim,)."""
    _latent(model)
    y = torch.as_tensor(y)
    if not (y == a).any() or not (y == b).any():
        raise ValueError(f"attribute_vector needs examples of both classes {a} and {b} in y")
    z = model.encode(model.check_input(x))
    return z[y == a].mean(0) - z[y == b].mean(0)


@torch.no_grad()
def apply_attribute(model: GenerativeModel, x: Tensor, vector: Tensor, alphas: list[float]) -> Tensor:
    """Decode ``encode(x) + alpha * vector`` for each alpha: (n, len(alphas), *event_shape)."""
    _latent(model)
    z = model.encode(model.check_input(x))
    codes = torch.stack([z + a * vector for a in alphas], 1)  # (n, n_alphas, d)
    out = model.decode(codes.reshape(-1, *z.shape[1:]))
    return out.reshape(len(z), len(alphas), *model.spec.event_shape)

