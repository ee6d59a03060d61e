"""Invertible layers shared by the flow families (glow, maf, nsf).

Every layer maps ``x -> y`` in the *normalizing* direction (data towards the base space) and
returns ``(y, log|det dy/dx|)`` with the log-determinant per example, shape (batch,);
``inverse(y, ctx)`` undoes it. ``ctx`` is an optional (batch, ctx_dim) context vector (a label
embedding) that layers without a conditioner ignore. Inputs are (batch, D) vectors or
(batch, C, H, W) images; "features" means D or C.

* `ActNorm`: per-feature affine with data-dependent initialisation (Kingma & Dhariwal 2018, Sec. 3.1).
* `LULinear`: dense invertible linear map / invertible 1x1 convolution with an LU parametrisation
  ``W = P L (U + diag(sign * exp(log_s)))`` (Kingma & Dhariwal 2018, Sec. 3.2).
* `Permutation`: a fixed permutation of the features.
* `AffineCoupling`: ``y_b = x_b * exp(s(x_a, ctx)) + t(x_a, ctx)`` (Dinh et al. 2017, Eq. 9).
* `MaskedLinear`, `MADE`: masked autoencoder for distribution estimation (Germain et al. 2015).
* `MaskedAffineAutoregressive`: one MAF layer (Papamakarios et al. 2017, Eq. 3-5).
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .conv import ConvNet
from .mlp import MLP


def _spatial(x: Tensor) -> int:
    """Number of positions that share one per-feature parameter: H*W for images, 1 for vectors."""
    return x[0, 0].numel()


def _per_feature(p: Tensor, x: Tensor) -> Tensor:
    """Reshape a (features,) parameter to broadcast against ``x``."""
    return p.reshape(1, -1, *([1] * (x.ndim - 2)))


class ActNorm(nn.Module):
    """``y = (x + bias) * exp(log_scale)`` per feature; log|det| = H*W * sum(log_scale).

    Initialised as the identity; inside `data_dependent_init` the first forward pass sets bias
    and scale so that the batch's output has zero mean and unit variance per feature.

    Args:
        features: D for vectors, C for images.
    """

    def __init__(self, features: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(features))
        self.log_scale = nn.Parameter(torch.zeros(features))
        self.init_pending = False

    @torch.no_grad()
    def _init_from(self, x: Tensor) -> None:
        dims = [d for d in range(x.ndim) if d != 1]
        mean, std = x.mean(dims), x.std(dims, unbiased=False)
        self.bias.copy_(-mean)
        self.log_scale.copy_(-torch.log(std + 1e-6))
        self.init_pending = False

    def forward(self, x: Tensor, ctx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self.init_pending:
            self._init_from(x)
        y = (x + _per_feature(self.bias, x)) * _per_feature(self.log_scale, x).exp()
        return y, (self.log_scale.sum() * _spatial(x)).expand(len(x))

    def inverse(self, y: Tensor, ctx: Tensor | None = None) -> Tensor:
        return y * _per_feature(-self.log_scale, y).exp() - _per_feature(self.bias, y)


@contextlib.contextmanager
def data_dependent_init(module: nn.Module) -> Iterator[None]:
    """Within this block, each `ActNorm` in ``module`` initialises itself from its next input."""
    layers = [m for m in module.modules() if isinstance(m, ActNorm)]
    for m in layers:
        m.init_pending = True
    try:
        with torch.no_grad():
            yield
    finally:
        for m in layers:
            m.init_pending = False


class LULinear(nn.Module):
    """Invertible ``y = W x`` over features (a 1x1 convolution for images), with
    ``W = P L (U + diag(sign * exp(log_s)))``: log|det| = H*W * sum(log_s), O(n) instead of O(n^3).

    Initialised from a random rotation (QR of a Gaussian matrix), as in Glow. ``P`` and ``sign``
    are fixed buffers, saved with the model.
    """

    def __init__(self, features: int):
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(features, features))
        p, lower, upper = torch.linalg.lu(q)
        s = torch.diagonal(upper)
        self.register_buffer("perm", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.lower = nn.Parameter(torch.tril(lower, -1))
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(s.abs().log())
        self.register_buffer("eye", torch.eye(features), persistent=False)

    def _factors(self) -> tuple[Tensor, Tensor]:
        lower = torch.tril(self.lower, -1) + self.eye
        upper = torch.triu(self.upper, 1) + torch.diag(self.sign_s * self.log_s.exp())
        return lower, upper

    def weight(self) -> Tensor:
        """The (features, features) matrix W."""
        lower, upper = self._factors()
        return self.perm @ lower @ upper

    def forward(self, x: Tensor, ctx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        y = torch.einsum("ij,bj...->bi...", self.weight(), x)
        return y, (self.log_s.sum() * _spatial(x)).expand(len(x))

    def inverse(self, y: Tensor, ctx: Tensor | None = None) -> Tensor:
        lower, upper = self._factors()
        flat = y.movedim(1, -1).reshape(-1, y.shape[1]).T  # (features, batch * H * W)
        v = torch.linalg.solve_triangular(lower, self.perm.T @ flat, upper=False, unitriangular=True)
        x = torch.linalg.solve_triangular(upper, v, upper=True)
        return x.T.reshape(*y.movedim(1, -1).shape).movedim(-1, 1)


class Permutation(nn.Module):
    """``y = x[:, perm]`` over features; log|det| = 0. ``perm`` is a saved buffer."""

    def __init__(self, perm: Tensor):
        super().__init__()
        self.register_buffer("perm", perm.long())
        self.register_buffer("inv", torch.argsort(perm.long()))

    @classmethod
    def reverse(cls, features: int) -> "Permutation":
        return cls(torch.arange(features - 1, -1, -1))

    @classmethod
    def random(cls, features: int) -> "Permutation":
        return cls(torch.randperm(features))

    def forward(self, x: Tensor, ctx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return x[:, self.perm], x.new_zeros(len(x))

    def inverse(self, y: Tensor, ctx: Tensor | None = None) -> Tensor:
        return y[:, self.inv]


def with_context(h: Tensor, ctx: Tensor | None) -> Tensor:
    """Append ctx (batch, k) to h: as k features for vectors, k constant channels for images."""
    if ctx is None:
        return h
    if h.ndim == 4:
        ctx = ctx[:, :, None, None].expand(-1, -1, *h.shape[2:])
    return torch.cat([h, ctx], 1)


def conditioner(in_features: int, out_features: int, image: bool, hidden: int, depth: int) -> nn.Module:
    """A zero-initialised network for coupling layers: ConvNet (3x3, ``depth`` residual blocks,
    ``hidden`` channels) for images, MLP with ``depth`` hidden layers of width ``hidden`` for
    vectors. Its output starts at 0, so the layer built on it starts as the identity."""
    if image:
        return ConvNet(in_features, out_features, hidden=hidden, blocks=depth, zero_last=True)
    return MLP(in_features, out_features, (hidden,) * depth, zero_last=True)


class AffineCoupling(nn.Module):
    """Affine coupling over features: x = (x_a, x_b), x_a the first ``features // 2`` (``swap``:
    x_b is the first ``features // 2`` and x_a the rest, so alternating ``swap`` moves every
    feature); ``y_b = x_b * exp(s) + t``, ``(raw_s, t) = net(x_a, ctx)``,
    ``s = bound * tanh(raw_s / bound)``; log|det| = sum(s) (Dinh et al. 2017, Eq. 6-9; Kingma &
    Dhariwal 2018, Table 1). The conditioner sees only x_a (not a masked full-width input).

    Args:
        features: D (vectors) or C (images), at least 2.
        image: the input is (batch, C, H, W).
        hidden, depth: conditioner size (see `conditioner`).
        ctx_dim: size of the context vector (0: none).
        bound: bound on the log-scale.
        swap: transform the first half, conditioned on the second.
    """

    def __init__(self, features: int, image: bool, hidden: int, depth: int, ctx_dim: int = 0, bound: float = 2.0,
                 swap: bool = False):
        super().__init__()
        if features < 2:
            raise ValueError(f"a coupling layer needs at least 2 features, got {features}")
        self.first, self.swap = features // 2, swap
        na = features - self.first if swap else self.first
        self.net = conditioner(na + ctx_dim, 2 * (features - na), image, hidden, depth)
        self.bound = bound

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(x_a, x_b): the conditioning and the transformed features."""
        head, tail = x[:, :self.first], x[:, self.first:]
        return (tail, head) if self.swap else (head, tail)

    def _join(self, a: Tensor, b: Tensor) -> Tensor:
        return torch.cat([b, a] if self.swap else [a, b], 1)

    def _scale_shift(self, xa: Tensor, ctx: Tensor | None) -> tuple[Tensor, Tensor]:
        raw_s, t = self.net(with_context(xa, ctx)).chunk(2, dim=1)
        return self.bound * torch.tanh(raw_s / self.bound), t

    def forward(self, x: Tensor, ctx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        xa, xb = self._split(x)
        s, t = self._scale_shift(xa, ctx)
        return self._join(xa, torch.addcmul(t, xb, s.exp())), s.flatten(1).sum(1)

    def inverse(self, y: Tensor, ctx: Tensor | None = None) -> Tensor:
        ya, yb = self._split(y)
        s, t = self._scale_shift(ya, ctx)
        return self._join(ya, (yb - t) * (-s).exp())


class MaskedLinear(nn.Linear):
    """``y = x (W * mask)^T + b`` with a fixed 0/1 ``mask`` of shape (out, in)."""

    def __init__(self, in_features: int, out_features: int, mask: Tensor):
        super().__init__(in_features, out_features)
        self.register_buffer("mask", mask.to(self.weight.dtype), persistent=False)  # rebuilt from the order

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """Masked autoencoder (Germain et al. 2015): (batch, D) -> (batch, D, k), where output
    ``[:, i, :]`` depends only on inputs that come before ``i`` in ``order``.

    Hidden unit degrees cycle through 1..D-1; a connection from degree a to degree b exists
    for hidden layers when ``b >= a`` and for the output when ``b > a`` (Eq. 12-13). The
    context (a label embedding) enters the first hidden layer unmasked: it may inform every
    output. The last layer starts at zero.

    Args:
        dim: D.
        params: k, outputs per input dimension.
        hidden, depth: width and number of hidden layers (depth >= 1).
        order: (D,) a permutation of 0..D-1 giving the autoregressive order.
        ctx_dim: size of the context vector (0: none).
    """

    def __init__(self, dim: int, params: int, hidden: int, depth: int, order: Sequence[int], ctx_dim: int = 0):
        super().__init__()
        if depth < 1:
            raise ValueError(f"MADE needs depth >= 1 hidden layers, got {depth}")
        order = torch.as_tensor(list(order), dtype=torch.long)
        if sorted(order.tolist()) != list(range(dim)):
            raise ValueError(f"order must be a permutation of 0..{dim - 1}, got {order.tolist()}")
        self.dim, self.params = dim, params
        deg_in = torch.empty(dim, dtype=torch.long)
        deg_in[order] = torch.arange(1, dim + 1)  # the degree of input j is its position in the order
        self.register_buffer("degrees", deg_in, persistent=False)
        degs = [deg_in]
        layers = []
        for _ in range(depth):
            d = torch.arange(hidden) % max(dim - 1, 1) + 1
            layers.append(MaskedLinear(degs[-1].numel(), hidden, (d[:, None] >= degs[-1][None]).float()))
            degs.append(d)
        deg_out = deg_in.repeat_interleave(params)  # output index i * params + p belongs to input i
        self.hidden = nn.ModuleList(layers)
        self.out = MaskedLinear(hidden, dim * params, (deg_out[:, None] > degs[-1][None]).float())
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.ctx = nn.Linear(ctx_dim, hidden) if ctx_dim else None

    def forward(self, x: Tensor, ctx: Tensor | None = None) -> Tensor:
        h = self.hidden[0](x)
        if self.ctx is not None and ctx is not None:
            h = h + self.ctx(ctx)
        h = F.silu(h)
        for layer in self.hidden[1:]:
            h = F.silu(layer(h))
        return self.out(h).reshape(len(x), self.dim, self.params)


class MaskedAffineAutoregressive(nn.Module):
    """One MAF layer (Papamakarios et al. 2017, Eq. 3-5): ``u_i = (x_i - mu_i) * exp(-alpha_i)``
    with ``(mu_i, alpha_i) = MADE(x_{<i})``; log|det du/dx| = -sum(alpha). Density in one pass,
    inversion (sampling) in D sequential passes. ``alpha = bound * tanh(raw / bound)``.

    Args: as `MADE` (``params`` is 2), and ``bound``.
    """

    def __init__(self, dim: int, hidden: int, depth: int, order: Sequence[int], ctx_dim: int = 0, bound: float = 3.0):
        super().__init__()
        self.made = MADE(dim, 2, hidden, depth, order, ctx_dim)
        self.bound = bound

    def _params(self, x: Tensor, ctx: Tensor | None) -> tuple[Tensor, Tensor]:
        out = self.made(x, ctx)
        return out[..., 0], self.bound * torch.tanh(out[..., 1] / self.bound)

    def forward(self, x: Tensor, ctx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        mu, alpha = self._params(x, ctx)
        return (x - mu) * (-alpha).exp(), -alpha.sum(1)

    def inverse(self, u: Tensor, ctx: Tensor | None = None) -> Tensor:
        x = torch.zeros_like(u)
        for i in torch.argsort(self.made.degrees).tolist():  # dimension i needs only earlier ones
            mu, alpha = self._params(x, ctx)
            x = x.clone()
            x[:, i] = u[:, i] * alpha[:, i].exp() + mu[:, i]
        return x
