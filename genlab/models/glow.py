"""Glow (Kingma & Dhariwal 2018): a flow of steps ``ActNorm -> invertible 1x1 convolution (or a
permutation) -> affine coupling``, arranged multi-scale for images (Dinh et al. 2017, Sec. 3.6).

Images (C, H, W): each level squeezes (C, H, W) -> (4C, H/2, W/2), runs ``steps`` flow steps,
then factors out half of the channels, ``z2``, under a Gaussian whose mean and log-scale come
from the kept half (the learned split prior of Glow, Sec. 3 / code ``split2d``); the last level
keeps everything. As a bijection, ``z2 -> eps = (z2 - mu(h)) * exp(-log_s(h))``, so the base
space is N(0, I) on R^D and `encode`/`decode` are exact. Vectors, and images whose sides are
odd: the same steps on (batch, D) with a dense LU-parametrised linear map for the 1x1
convolution and MLP conditioners. With ``conditional=True``, labels enter every conditioner (see `_flow`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from ..data.spec import DataSpec
from ..nn.flows import ActNorm, AffineCoupling, LULinear, Permutation, with_context
from ..protocol import register
from ._flow import FlowBase, FlowConfig


@dataclass
class GlowConfig(FlowConfig):
    scales: int = field(default=3, metadata={"max": 16, 
        "help": "multi-scale levels (squeeze-split stages) for images (fewer if the sides cannot be halved that often)"})
    steps: int = field(default=8, metadata={"max": 1_000, "help": "flow steps (actnorm, mixing, coupling) per level"})
    hidden: int = field(default=128, metadata={
        "help": "conditioner width: MLP units for vectors, conv channels (hidden // 4) for images"})
    depth: int = field(default=2, metadata={"max": 100, "help": "hidden layers per MLP / residual blocks per conv net"})
    mixing: Literal["lu", "reverse", "shuffle"] = field(default="lu", metadata={
        "help": "lu (invertible 1x1 conv / dense linear, LU-parametrised) | reverse | shuffle (fixed permutations)"})
    scale_bound: float = field(default=2.0, metadata={"help": "coupling log-scales are bound * tanh(raw / bound)"})


def squeeze(x: Tensor) -> Tensor:
    """(batch, C, H, W) -> (batch, 4C, H/2, W/2): each 2x2 patch becomes 4 channels."""
    b, c, h, w = x.shape
    return x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(b, 4 * c, h // 2, w // 2)


def unsqueeze(x: Tensor) -> Tensor:
    """Inverse of `squeeze`: (batch, 4C, H, W) -> (batch, C, 2H, 2W)."""
    b, c, h, w = x.shape
    return x.reshape(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c // 4, 2 * h, 2 * w)


def _halvings(h: int, w: int) -> int:
    n = 0
    while h % 2 == 0 and w % 2 == 0:
        h, w, n = h // 2, w // 2, n + 1
    return n


class Step(nn.Module):
    """One Glow step: ActNorm, mixing (LU 1x1 conv / permutation), affine coupling."""

    def __init__(self, features: int, image: bool, cfg: GlowConfig, ctx_dim: int):
        super().__init__()
        mix = {"lu": LULinear, "reverse": Permutation.reverse, "shuffle": Permutation.random}[cfg.mixing]
        hidden = max(cfg.hidden // 4, 8) if image else cfg.hidden
        self.layers = nn.ModuleList([ActNorm(features), mix(features),
                                     AffineCoupling(features, image, hidden, cfg.depth, ctx_dim, cfg.scale_bound)])

    def forward(self, x: Tensor, ctx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        log_det = x.new_zeros(len(x))
        for layer in self.layers:
            x, ld = layer(x, ctx)
            log_det = log_det + ld
        return x, log_det

    def inverse(self, y: Tensor, ctx: Tensor | None = None) -> Tensor:
        for layer in reversed(self.layers):
            y = layer.inverse(y, ctx)
        return y


@register("glow")
class Glow(FlowBase):
    """Glow; exact ``log p(x)`` (a bound with variational dequantization) and one-pass sampling."""
    taxonomy = "flow"

    Config = GlowConfig
    default_epochs = 300
    default_train = {"lr_schedule": "cosine", "patience": 30}

    def __init__(self, spec: DataSpec, config: GlowConfig):
        super().__init__(spec, config)
        if config.scales < 1 or config.steps < 1 or config.hidden < 1 or config.depth < 0 or config.scale_bound <= 0:
            raise ValueError("glow: scales, steps and hidden must be >= 1, depth >= 0, scale_bound > 0")
        n_levels = min(config.scales, _halvings(*spec.event_shape[1:])) if spec.is_image else 0
        if n_levels == 0 and spec.dim < 2:
            raise ValueError("glow: coupling layers need at least 2 values per example; use maf for 1-D data")
        self.multiscale = n_levels > 0
        if not self.multiscale:  # vectors, or images whose sides are odd: flatten
            self.layers = nn.ModuleList(Step(spec.dim, False, config, self.ctx_dim) for _ in range(config.steps))
            return
        c = spec.event_shape[0]
        self.levels = nn.ModuleList()
        self.splits = nn.ModuleList()
        for level in range(n_levels):
            c = 4 * c
            self.levels.append(nn.ModuleList(Step(c, True, config, self.ctx_dim) for _ in range(config.steps)))
            if level < n_levels - 1:
                keep = c // 2
                prior = nn.Conv2d(keep + self.ctx_dim, 2 * (c - keep), 3, padding=1)
                nn.init.zeros_(prior.weight)
                nn.init.zeros_(prior.bias)
                self.splits.append(prior)
                c = keep

    def _split_prior(self, level: int, h: Tensor, ctx: Tensor | None) -> tuple[Tensor, Tensor]:
        mu, raw = self.splits[level](with_context(h, ctx)).chunk(2, 1)
        return mu, 2.0 * torch.tanh(raw / 2.0)

    def _flow(self, z: Tensor, ctx: Tensor | None) -> tuple[Tensor, Tensor]:
        if not self.multiscale:
            return super()._flow(z, ctx)
        h, log_det, parts = z, z.new_zeros(len(z)), []
        for level, steps in enumerate(self.levels):
            h = squeeze(h)
            for step in steps:
                h, ld = step(h, ctx)
                log_det = log_det + ld
            if level < len(self.splits):
                keep = h.shape[1] // 2
                h, z2 = h[:, :keep], h[:, keep:]
                mu, log_s = self._split_prior(level, h, ctx)
                parts.append(((z2 - mu) * (-log_s).exp()).flatten(1))
                log_det = log_det - log_s.flatten(1).sum(1)
        parts.append(h.flatten(1))
        return torch.cat(parts, 1).reshape(z.shape), log_det

    def _flow_inverse(self, u: Tensor, ctx: Tensor | None) -> Tensor:
        if not self.multiscale:
            return super()._flow_inverse(u, ctx)
        c, hh, ww = self.spec.event_shape
        shapes = []  # (channels, H, W) after each level's steps
        for _ in self.levels:
            c, hh, ww = 4 * c, hh // 2, ww // 2
            shapes.append((c, hh, ww))
            c = c // 2
        flat = u.reshape(len(u), -1)
        sizes = [(s[0] - s[0] // 2) * s[1] * s[2] for s in shapes[:-1]] + [shapes[-1][0] * shapes[-1][1] * shapes[-1][2]]
        pieces = list(flat.split(sizes, 1))
        h = pieces[-1].reshape(len(u), *shapes[-1])
        for level in reversed(range(len(self.levels))):
            if level < len(self.splits):
                cl, hl, wl = shapes[level]
                mu, log_s = self._split_prior(level, h, ctx)
                eps = pieces[level].reshape(len(u), cl - cl // 2, hl, wl)
                h = torch.cat([h, eps * log_s.exp() + mu], 1)
            for step in reversed(self.levels[level]):
                h = step.inverse(h, ctx)
            h = unsqueeze(h)
        return h
