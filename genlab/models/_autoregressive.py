"""Shared pieces of the autoregressive families (made, pixelcnn, transformer).

An autoregressive model writes ``p(x) = prod_i p(x_i | x_<i)``; each conditional is a small
distribution whose parameters a network computes from the earlier entries. The *head* turns
those parameters into a log-probability and a draw:

* `CategoricalHead`: a softmax over the ``levels`` values (discrete, binary, text data);
* `GaussianMixtureHead`: a mixture of ``K`` Gaussians per entry (continuous data, in the
  standardized model space; the public ``log_prob`` adds the standardization's log-det);
* `DiscretizedLogisticMixtureHead`: a mixture of logistics discretized to the levels on
  [-1, 1] (PixelCNN++, Salimans et al. 2017, Sec. 2.1).

Every ``log_prob`` is exact and normalized per entry, so the product is a normalized density.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.preprocess import Preprocess, Rescale, Standardize
from ..data.spec import DataSpec, Kind
from ..objectives.elbo import discretized_logistic_log_lik

LOG_SCALE_MIN = -7.0  # soft lower bound on log-scales (as in PixelCNN++)


def _bounded_log_scale(raw: Tensor) -> Tensor:
    return LOG_SCALE_MIN + F.softplus(raw - LOG_SCALE_MIN)


def _categorical(logits: Tensor, generator: torch.Generator | None) -> Tensor:
    """One draw per row of ``logits: (..., K)`` -> (...,) int64."""
    probs = torch.softmax(logits.reshape(-1, logits.shape[-1]).double(), -1)
    return torch.multinomial(probs, 1, generator=generator).reshape(logits.shape[:-1])


class CategoricalHead:
    """``p(x_i = k) = softmax(params)_k`` over ``levels`` values; params: (..., levels)."""

    def __init__(self, levels: int):
        self.levels = self.n_params = levels

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        """x: (...) integer values (as floats), params: (..., levels) -> (...) log-probabilities."""
        return torch.log_softmax(params, -1).gather(-1, x.long().unsqueeze(-1)).squeeze(-1)

    def sample(self, params: Tensor, generator: torch.Generator | None, temperature: float = 1.0) -> Tensor:
        """params: (..., levels) -> (...) draws from ``softmax(params / temperature)``."""
        return _categorical(params / temperature, generator).to(params.dtype)


class _MixtureHead:
    """A ``K``-component location-scale mixture per entry; params: (..., 3K) = (logits, means,
    raw log-scales), split into log-weights, means and bounded log-scales."""

    def __init__(self, components: int):
        self.k = components
        self.n_params = 3 * components

    def _split(self, params: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        logits, mu, raw = params.unflatten(-1, (3, self.k)).unbind(-2)
        return torch.log_softmax(logits, -1), mu, _bounded_log_scale(raw)


class GaussianMixtureHead(_MixtureHead):
    """``p(x_i) = sum_k pi_k N(x_i; mu_k, s_k^2)``; params: (..., 3K) = (logits, means, raw scales)."""

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        """x: (...) real values, params: (..., 3K) -> (...) log-densities."""
        log_pi, mu, log_s = self._split(params)
        z = (x.unsqueeze(-1) - mu) * (-log_s).exp()
        return torch.logsumexp(log_pi - 0.5 * z.pow(2) - log_s - 0.5 * math.log(2 * math.pi), -1)

    def sample(self, params: Tensor, generator: torch.Generator | None, temperature: float = 1.0) -> Tensor:
        """A component from ``softmax(logits / T)``, then ``mu_k + T s_k eps`` (T = temperature)."""
        log_pi, mu, log_s = self._split(params)
        k = _categorical(log_pi / temperature, generator).unsqueeze(-1)
        eps = torch.randn(mu.shape[:-1], generator=generator, dtype=mu.dtype, device=mu.device)
        return mu.gather(-1, k).squeeze(-1) + temperature * log_s.gather(-1, k).squeeze(-1).exp() * eps


class DiscretizedLogisticMixtureHead(_MixtureHead):
    """Mixture of ``K`` discretized logistics on the bin centres of [-1, 1] (Salimans et al. 2017,
    Eq. 2); params: (..., 3K) = (logits, means, raw log-scales)."""

    def __init__(self, components: int, levels: int):
        super().__init__(components)
        self.levels = levels

    def log_prob(self, x: Tensor, params: Tensor) -> Tensor:
        """x: (...) bin centres in [-1, 1], params: (..., 3K) -> (...) log-probabilities."""
        log_pi, mu, log_s = self._split(params)
        lp = discretized_logistic_log_lik(x.unsqueeze(-1).expand_as(mu), mu, log_s, self.levels)
        return torch.logsumexp(log_pi + lp, -1)

    def sample(self, params: Tensor, generator: torch.Generator | None, temperature: float = 1.0) -> Tensor:
        """A component, a logistic draw, then the centre of the bin it falls in: (...)."""
        log_pi, mu, log_s = self._split(params)
        k = _categorical(log_pi / temperature, generator).unsqueeze(-1)
        eps = torch.finfo(mu.dtype).eps
        u = torch.rand(mu.shape[:-1], generator=generator, dtype=mu.dtype, device=mu.device).clamp(eps, 1 - eps)
        scale = temperature * log_s.gather(-1, k).squeeze(-1).exp()
        v = mu.gather(-1, k).squeeze(-1) + scale * (u.log() - (-u).log1p())
        half_steps = self.levels - 1
        return torch.round((v.clamp(-1, 1) + 1) * half_steps / 2) * 2 / half_steps - 1


Head = CategoricalHead | GaussianMixtureHead | DiscretizedLogisticMixtureHead


def make_head(spec: DataSpec, components: int, output: str = "softmax") -> Head:
    """The per-entry head for ``spec``: a Gaussian mixture for continuous data, else a softmax
    (or, with ``output="logistic_mixture"``, a discretized logistic mixture)."""
    if components < 1:
        raise ValueError(f"the number of mixture components must be >= 1, got {components}")
    if spec.kind is Kind.CONTINUOUS:
        return GaussianMixtureHead(components)
    if output == "logistic_mixture":
        if spec.kind not in (Kind.DISCRETE, Kind.BINARY):
            raise ValueError(f"output='logistic_mixture' needs ordered discrete data, got "
                             f"{spec.kind.value}; use output='softmax'")
        return DiscretizedLogisticMixtureHead(components, spec.levels)
    if output != "softmax":
        raise ValueError(f"output must be 'softmax' or 'logistic_mixture', got {output!r}")
    return CategoricalHead(spec.levels)


def make_preprocess(spec: DataSpec, output: str = "softmax") -> Preprocess:
    """Standardize continuous data; discrete values stay integers (softmax) or go to bin centres
    on [-1, 1] (logistic mixture). Neither discrete map changes the likelihood (log-det 0)."""
    if spec.kind is Kind.CONTINUOUS:
        return Standardize(spec)
    return Rescale(spec) if output == "logistic_mixture" else Preprocess()


def input_features(spec: DataSpec, z: Tensor, output: str = "softmax") -> Tensor:
    """What a network reads of model-space ``z: (batch, *shape)``: continuous values as they are,
    ordered levels scaled to [-1, 1], categorical / text values one-hot (a new last axis)."""
    if spec.kind is Kind.CONTINUOUS or output == "logistic_mixture":
        return z
    if spec.kind in (Kind.CATEGORICAL, Kind.TEXT):
        return F.one_hot(z.long(), spec.levels).to(z.dtype)
    return 2 * z / (spec.levels - 1) - 1


def check_temperature(t: float) -> None:
    if not t > 0:
        raise ValueError(f"temperature must be > 0, got {t}")
