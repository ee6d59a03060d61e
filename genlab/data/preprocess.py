"""Invertible preprocessing that a model carries with it, so that scores stay in data space.

A model works in a *model space* ``z = f(x)``; its public ``log_prob(x)`` adds the change of
variables ``log|det df/dx|`` so that every likelihood is reported for the data as given:

* continuous data: per-feature standardization ``z = (x - mean) / std``.
* discrete data with ``L`` levels (uniform dequantization, Theis et al. 2016):
  ``y = (x + u) / L, u ~ U[0,1)^D``, then standardization of ``y``. Because
  ``P(x) = ∫_cube p(y) dy`` over a cube of volume ``L^-D``, Jensen gives
  ``log P(x) >= E_u[log p_y((x+u)/L)] - D log L``: the returned figure is a lower bound on the
  discrete log-probability (an upper bound on NLL and bits/dim), in the discrete data's own space.
* ``Identity``: for models with their own discrete likelihood (discretized logistic, Bernoulli).

Statistics are buffers, so they are saved with the model in ``model.safetensors``.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .spec import DataSpec, Kind


class Preprocess(nn.Module):
    """Base: identity. ``forward(x, generator) -> (z, logdet)``; ``inverse(z) -> x``.

    ``lower_bound`` is True when a log-density computed through this map is only a lower bound
    on the data's log-probability (dequantization: Jensen's inequality over the noise).
    """

    lower_bound: bool = False

    def fit(self, x: Tensor) -> None:
        """Set statistics from training data ``x: (n, *event_shape)`` (data space)."""

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        return x, x.new_zeros(x.shape[0])

    def inverse(self, z: Tensor) -> Tensor:
        return z


Identity = Preprocess


class Standardize(Preprocess):
    """``z = (x - mean) / std`` per entry; log|det| = -sum(log std).

    Args:
        spec: the data's spec; entries with zero variance get std 1 (so nothing divides by 0).
        dequantize: add ``u ~ U[0,1)`` and divide by ``levels`` first (discrete data).
    """

    def __init__(self, spec: DataSpec, dequantize: bool = False):
        super().__init__()
        self.spec = spec
        self.dequantize = dequantize
        self.lower_bound = dequantize
        if dequantize and not spec.is_discrete:
            raise ValueError("dequantization needs discrete data (spec.kind != continuous)")
        self.register_buffer("mean", torch.zeros(spec.event_shape))
        self.register_buffer("std", torch.ones(spec.event_shape))

    def fit(self, x: Tensor) -> None:
        x = x.detach().to(torch.float64)
        mean, var = x.mean(0), x.var(0, unbiased=False)
        if self.dequantize:  # moments of (x + u) / L with u ~ U[0,1) independent of x
            L = self.spec.levels
            mean, var = (mean + 0.5) / L, var / L**2 + 1.0 / (12 * L**2)
        std = var.sqrt()
        std = torch.where(std > 1e-8 * (1 + mean.abs()), std, torch.ones_like(std))
        self.mean.copy_(mean.to(self.mean.dtype))
        self.std.copy_(std.to(self.std.dtype))

    def _offset(self) -> float:
        return -self.spec.dim * math.log(self.spec.levels) if self.dequantize else 0.0

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        if self.dequantize:
            u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            x = (x + u) / self.spec.levels
        z = (x - self.mean) / self.std
        logdet = -self.std.log().sum() + self._offset()
        return z, logdet.expand(x.shape[0]).to(x.dtype)

    def inverse(self, z: Tensor) -> Tensor:
        x = z * self.std + self.mean
        if self.dequantize:
            L = self.spec.levels
            x = torch.floor(x * L).clamp(0, L - 1)
        return x


class Rescale(Preprocess):
    """Discrete levels ``0..L-1`` -> bin centres in ``[-1, 1]`` (for discretized likelihoods).

    Not a density transform: models that use it score the discrete values themselves, so the
    log-determinant is zero by construction.
    """

    def __init__(self, spec: DataSpec):
        super().__init__()
        self.levels = spec.levels

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        return 2 * x / (self.levels - 1) - 1, x.new_zeros(x.shape[0])

    def inverse(self, z: Tensor) -> Tensor:
        return torch.round((z.clamp(-1, 1) + 1) * (self.levels - 1) / 2)


def default_preprocess(spec: DataSpec) -> Preprocess:
    """Dequantize + standardize discrete data, standardize continuous data."""
    if spec.kind is Kind.CONTINUOUS:
        return Standardize(spec)
    if spec.kind in (Kind.DISCRETE, Kind.BINARY):
        return Standardize(spec, dequantize=True)
    # categorical / text: models handle these with their own categorical likelihoods
    return Preprocess()
