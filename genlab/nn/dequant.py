"""Variational dequantization (Ho, Chen, Srinivas, Duan & Abbeel 2019, "Flow++", Sec. 3.1).

Discrete data x in {0..L-1}^D are lifted to y = (x + u) / L with noise u in [0, 1)^D drawn from a
learned conditional flow q(u | x) instead of the uniform distribution. Since
``P(x) = L^-D * E_q[p_y((x + u) / L) / q(u | x)]``, Jensen gives the bound

    log P(x) >= E_{u ~ q}[ log p_y((x + u) / L) - log q(u | x) ] - D log L        (Flow++, Eq. 12)

which equals the uniform-dequantization bound when q is uniform and is tighter when q
matches the model's density inside each cube. q is: eps ~ N(0, I), affine couplings whose
conditioners also see x, then a sigmoid onto (0, 1)^D.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..data.preprocess import Preprocess, Standardize
from ..data.spec import DataSpec
from .flows import conditioner


class ConditionalDequantizer(nn.Module):
    """q(u | x) on (0, 1)^D: ``u = sigmoid(g_x(eps))``, eps ~ N(0, I), with ``g_x`` a stack of
    masked affine couplings (checkerboard masks for images, alternating entries for vectors)
    whose networks see the masked noise and the scaled data ``2 x / (L-1) - 1``.

    Args:
        spec: the discrete data's spec. layers: couplings. hidden, depth: conditioner size.
    """

    def __init__(self, spec: DataSpec, layers: int = 4, hidden: int = 32, depth: int = 1):
        super().__init__()
        self.spec, self.image = spec, spec.is_image
        shape = spec.event_shape if self.image else (spec.dim,)
        if self.image:
            c, h, w = shape
            base = ((torch.arange(h)[:, None] + torch.arange(w)[None]) % 2 == 0).float().expand(c, h, w)
        else:
            base = (torch.arange(shape[0]) % 2 == 0).float()
        self.register_buffer("masks", torch.stack([base if k % 2 == 0 else 1 - base for k in range(layers)]),
                             persistent=False)
        feat = shape[0]
        self.nets = nn.ModuleList(conditioner(2 * feat, 2 * feat, self.image, hidden, depth) for _ in range(layers))

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw u ~ q(u | x). x: (batch, *event_shape) integers -> u (same shape), log q(u|x): (batch,)."""
        shape = x.shape
        xs = (2 * x / (self.spec.levels - 1) - 1).reshape(len(x), *self.masks.shape[1:])
        eps = torch.randn(xs.shape, generator=generator, device=x.device, dtype=x.dtype)
        log_q = -0.5 * eps.flatten(1).pow(2).sum(1) - 0.5 * eps[0].numel() * math.log(2 * math.pi)
        v = eps
        for mask, net in zip(self.masks, self.nets):
            m = mask.to(x.dtype)
            raw_s, t = net(torch.cat([v * m, xs], 1)).chunk(2, 1)
            s = 2.0 * torch.tanh(raw_s / 2.0) * (1 - m)
            v = v * s.exp() + t * (1 - m)
            log_q = log_q - s.flatten(1).sum(1)
        # log sigmoid'(v) = -softplus(v) - softplus(-v)
        log_q = log_q + (F.softplus(v) + F.softplus(-v)).flatten(1).sum(1)
        return torch.sigmoid(v).reshape(shape), log_q


class VariationalDequantize(Preprocess):
    """Preprocessing with a learned dequantizer: ``z = ((x + u) / L - mean) / std``, u ~ q(u|x);
    the returned log-det is ``-sum(log std) - D log L - log q(u | x)``, so that a model's
    ``log p(z) + logdet`` is the Flow++ bound above (a lower bound on log P(x), in the discrete
    data's own space). Its parameters train with the model's. ``inverse`` rounds down.
    """

    lower_bound = True  # Jensen's gap over q(u|x), as for uniform dequantization

    def __init__(self, spec: DataSpec, layers: int = 4, hidden: int = 32, depth: int = 1):
        super().__init__()
        self.stats = Standardize(spec, dequantize=True)  # mean/std of uniformly dequantized data
        self.q = ConditionalDequantizer(spec, layers, hidden, depth)
        self.spec = spec

    def fit(self, x: Tensor) -> None:
        self.stats.fit(x)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        u, log_q = self.q(x, generator)
        z = ((x + u) / self.spec.levels - self.stats.mean) / self.stats.std
        logdet = -self.stats.std.log().sum() - self.spec.dim * math.log(self.spec.levels)
        return z, logdet.to(x.dtype) - log_q

    def inverse(self, z: Tensor) -> Tensor:
        return self.stats.inverse(z)
