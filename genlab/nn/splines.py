"""Rational-quadratic splines with linear tails, and the flow layers built on them
(Durkan, Bekasov, Murray & Papamakarios 2019, "Neural Spline Flows", Sec. 3.1 and App. A).

A monotone map of [-B, B] onto itself made of K rational-quadratic segments between knots
``(x_k, y_k)`` with positive derivatives ``d_k`` at the knots; outside [-B, B] it is the
identity (the "linear tails", with ``d_0 = d_K = 1`` so the map is C^1 at +-B). Parameters come
unconstrained from a network: widths and heights through a softmax (plus a minimum), interior
derivatives through a softplus shifted so that raw zeros give slope 1: a network whose last
layer starts at zero starts the spline as the identity.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .flows import MADE, conditioner, with_context

MIN_BIN = 1e-3
MIN_DERIVATIVE = 1e-3
_SHIFT = math.log(math.expm1(1.0 - MIN_DERIVATIVE))  # softplus(0 + shift) + MIN_DERIVATIVE == 1


def _knots(raw: Tensor, bound: float) -> tuple[Tensor, Tensor]:
    """Unnormalised bin sizes (..., K) -> knot positions (..., K+1) from -B to B, and sizes (..., K)."""
    k = raw.shape[-1]
    size = MIN_BIN + (1 - MIN_BIN * k) * torch.softmax(raw, -1)
    knots = F.pad(torch.cumsum(size, -1), (1, 0)) * 2 * bound - bound
    knots = torch.cat([knots.new_full((*knots.shape[:-1], 1), -bound), knots[..., 1:-1],
                       knots.new_full((*knots.shape[:-1], 1), bound)], -1)
    return knots, knots[..., 1:] - knots[..., :-1]


def rational_quadratic_spline(x: Tensor, raw_widths: Tensor, raw_heights: Tensor, raw_derivatives: Tensor,
                              *, inverse: bool = False, bound: float = 3.0) -> tuple[Tensor, Tensor]:
    """Elementwise RQ spline (Durkan et al. 2019, Eq. 4-8) and its log-derivative.

    Args:
        x: (...) inputs (outputs of the spline when ``inverse``).
        raw_widths, raw_heights: (..., K) unconstrained bin widths and heights.
        raw_derivatives: (..., K-1) unconstrained derivatives at the interior knots.
        inverse: evaluate the inverse map (solving the quadratic of Eq. 6).
        bound: B; the spline maps [-B, B] onto itself, the identity outside.
    Returns:
        y: (...) outputs; log_abs_det: (...) ``log|dy/dx|`` (forward) or ``log|dx/dy|`` (inverse).
    """
    inside = (x > -bound) & (x < bound)
    xc = x.clamp(-bound, bound)  # evaluate everywhere, keep the tails' values (no NaN gradients)
    xk, w = _knots(raw_widths, bound)
    yk, h = _knots(raw_heights, bound)
    ones = raw_derivatives.new_ones((*raw_derivatives.shape[:-1], 1))
    d = torch.cat([ones, MIN_DERIVATIVE + F.softplus(raw_derivatives + _SHIFT), ones], -1)
    knots = yk if inverse else xk
    idx = (xc[..., None] >= knots[..., 1:-1]).sum(-1, keepdim=True)  # bin of each entry: 0..K-1

    def at(t: Tensor) -> Tensor:
        return t.gather(-1, idx).squeeze(-1)

    x0, y0, wk, hk, d0, d1 = at(xk), at(yk), at(w), at(h), at(d[..., :-1]), at(d[..., 1:])
    s = hk / wk
    if inverse:
        dy = xc - y0
        a = hk * (s - d0) + dy * (d1 + d0 - 2 * s)
        b = hk * d0 - dy * (d1 + d0 - 2 * s)
        c = -s * dy
        disc = (b * b - 4 * a * c).clamp_min(0)
        xi = (2 * c / (-b - disc.sqrt())).clamp(0, 1)
        out = x0 + xi * wk
    else:
        xi = ((xc - x0) / wk).clamp(0, 1)
        out = y0 + hk * (s * xi**2 + d0 * xi * (1 - xi)) / (s + (d1 + d0 - 2 * s) * xi * (1 - xi))
    denom = s + (d1 + d0 - 2 * s) * xi * (1 - xi)
    deriv = s**2 * (d1 * xi**2 + 2 * s * xi * (1 - xi) + d0 * (1 - xi) ** 2) / denom**2
    logdet = deriv.log()
    if inverse:
        logdet = -logdet
    return torch.where(inside, out, x), torch.where(inside, logdet, torch.zeros_like(logdet))


def _spline_params(raw: Tensor, bins: int) -> tuple[Tensor, Tensor, Tensor]:
    """Split (..., 3K-1) network outputs into widths (K), heights (K), interior derivatives (K-1)."""
    return raw[..., :bins], raw[..., bins:2 * bins], raw[..., 2 * bins:]


class SplineCoupling(nn.Module):
    """RQ-spline coupling (Durkan et al. 2019, Sec. 3.2): ``x_b`` goes through a spline whose
    parameters are ``net(x_a, ctx)``; ``x_a`` (the first ``features // 2``) passes unchanged.

    Args:
        features: D or C (at least 2); image: the input is (batch, C, H, W).
        bins: K; bound: B; hidden, depth: conditioner size; ctx_dim: context size (0: none).
    """

    def __init__(self, features: int, image: bool, hidden: int, depth: int, ctx_dim: int = 0,
                 bins: int = 8, bound: float = 3.0):
        super().__init__()
        if features < 2:
            raise ValueError(f"a coupling layer needs at least 2 features, got {features}")
        self.na, self.nb = features // 2, features - features // 2
        self.bins, self.bound = bins, bound
        self.net = conditioner(self.na + ctx_dim, self.nb * (3 * bins - 1), image, hidden, depth)

    def _transform(self, x: Tensor, ctx: Tensor | None, inverse: bool) -> tuple[Tensor, Tensor]:
        xa, xb = x[:, :self.na], x[:, self.na:]
        raw = self.net(with_context(xa, ctx))
        raw = raw.reshape(len(x), self.nb, 3 * self.bins - 1, *x.shape[2:]).movedim(2, -1)
        yb, ld = rational_quadratic_spline(xb, *_spline_params(raw, self.bins), inverse=inverse, bound=self.bound)
        return torch.cat([xa, yb], 1), ld.flatten(1).sum(1)

    def forward(self, x: Tensor, ctx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self._transform(x, ctx, inverse=False)

    def inverse(self, y: Tensor, ctx: Tensor | None = None) -> Tensor:
        return self._transform(y, ctx, inverse=True)[0]


class SplineAutoregressive(nn.Module):
    """Autoregressive RQ-spline layer (Durkan et al. 2019, Sec. 3.2): entry ``i``'s spline
    parameters come from a `MADE` on the entries before it in ``order``. Density in one pass,
    inversion in D sequential passes. Vectors (batch, D) only.
    """

    def __init__(self, dim: int, hidden: int, depth: int, order: Sequence[int], ctx_dim: int = 0,
                 bins: int = 8, bound: float = 3.0):
        super().__init__()
        self.bins, self.bound = bins, bound
        self.made = MADE(dim, 3 * bins - 1, hidden, depth, order, ctx_dim)

    def forward(self, x: Tensor, ctx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        raw = self.made(x, ctx)
        y, ld = rational_quadratic_spline(x, *_spline_params(raw, self.bins), bound=self.bound)
        return y, ld.sum(1)

    def inverse(self, y: Tensor, ctx: Tensor | None = None) -> Tensor:
        x = torch.zeros_like(y)
        for i in torch.argsort(self.made.degrees).tolist():
            raw = self.made(x, ctx)[:, i]
            xi, _ = rational_quadratic_spline(y[:, i], *_spline_params(raw, self.bins), inverse=True,
                                              bound=self.bound)
            x = x.clone()
            x[:, i] = xi
        return x
