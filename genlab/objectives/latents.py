"""Latent distributions of a VAE: the posterior family q(z|x) and its prior p(z).

Each takes the encoder's raw output ``params: (batch, n_params)`` and supports draws with a
leading sample axis: codes are ``(k, batch, code_dim)``, log-densities ``(k, batch)``.

* `GaussianLatent`: ``q = N(mu, diag(exp(logvar)))``, ``p = N(0, I)``; reparameterized draws
  (Kingma & Welling 2014).
* `BernoulliLatent`: ``L`` independent bits, ``q = Bern(sigmoid(logits))``, ``p = Bern(1/2)``.
* `CategoricalLatent`: ``L`` one-hot variables of ``K`` categories (code_dim ``L*K``),
  uniform prior; draws by the Gumbel-max trick.

Discrete draws carry no gradient: they are trained with the score function (`..reinforce`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .elbo import gaussian_kl, normal_log_prob


class GaussianLatent:
    discrete = False

    def __init__(self, latent_dim: int):
        self.L = latent_dim
        self.n_params, self.code_dim = 2 * latent_dim, latent_dim

    def split(self, params: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = params.chunk(2, dim=-1)
        return mu, logvar.clamp(-20.0, 10.0)

    def sample(self, params: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
        """(batch, 2L) -> (k, batch, L), ``mu + sigma * eps`` (differentiable in params)."""
        mu, logvar = self.split(params)
        eps = torch.randn((k, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device)
        return mu + (0.5 * logvar).exp() * eps

    def log_q(self, params: Tensor, codes: Tensor) -> Tensor:
        mu, logvar = self.split(params)
        return normal_log_prob(codes, mu, logvar)

    def log_prior(self, codes: Tensor) -> Tensor:
        return normal_log_prob(codes)

    def kl(self, params: Tensor) -> Tensor:
        """(batch,) ``KL(q || p)`` in closed form."""
        return gaussian_kl(*self.split(params))

    def mean(self, params: Tensor) -> Tensor:
        return self.split(params)[0]

    def prior_sample(self, n: int, generator: torch.Generator | None, like: Tensor) -> Tensor:
        return torch.randn(n, self.L, generator=generator, dtype=like.dtype, device=like.device)


class BernoulliLatent:
    discrete = True

    def __init__(self, latent_dim: int):
        self.L = self.n_params = self.code_dim = latent_dim

    def sample(self, params: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
        """(batch, L) logits -> (k, batch, L) bits (no gradient)."""
        u = torch.rand((k, *params.shape), generator=generator, dtype=params.dtype, device=params.device)
        return (u < torch.sigmoid(params.detach())).to(params.dtype)

    def log_q(self, params: Tensor, codes: Tensor) -> Tensor:
        return -F.binary_cross_entropy_with_logits(params.expand_as(codes), codes, reduction="none").sum(-1)

    def log_prior(self, codes: Tensor) -> Tensor:
        return codes.new_full(codes.shape[:-1], -self.L * math.log(2.0))

    def kl(self, params: Tensor) -> Tensor:
        """``sum_l [p log p + (1-p) log(1-p)] + L log 2`` with ``p = sigmoid(logit)``."""
        p = torch.sigmoid(params)
        return (p * F.logsigmoid(params) + (1 - p) * F.logsigmoid(-params)).sum(-1) + self.L * math.log(2.0)

    def mean(self, params: Tensor) -> Tensor:
        return torch.sigmoid(params)

    def prior_sample(self, n: int, generator: torch.Generator | None, like: Tensor) -> Tensor:
        u = torch.rand(n, self.L, generator=generator, dtype=like.dtype, device=like.device)
        return (u < 0.5).to(like.dtype)


class CategoricalLatent:
    discrete = True

    def __init__(self, latent_dim: int, categories: int):
        if categories < 2:
            raise ValueError(f"a categorical latent needs categories >= 2, got {categories}")
        self.L, self.K = latent_dim, categories
        self.n_params = self.code_dim = latent_dim * categories

    def _logp(self, params: Tensor) -> Tensor:
        return F.log_softmax(params.unflatten(-1, (self.L, self.K)), dim=-1)

    def sample(self, params: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
        """(batch, L*K) logits -> (k, batch, L*K) one-hot blocks, by Gumbel-max (no gradient)."""
        logits = params.detach().unflatten(-1, (self.L, self.K))
        u = torch.rand((k, *logits.shape), generator=generator, dtype=params.dtype, device=params.device)
        u = u.clamp(torch.finfo(u.dtype).tiny, 1.0)
        idx = (logits - (-u.log()).log()).argmax(-1)
        return F.one_hot(idx, self.K).to(params.dtype).flatten(-2)

    def log_q(self, params: Tensor, codes: Tensor) -> Tensor:
        return (codes.unflatten(-1, (self.L, self.K)) * self._logp(params)).sum((-2, -1))

    def log_prior(self, codes: Tensor) -> Tensor:
        return codes.new_full(codes.shape[:-1], -self.L * math.log(self.K))

    def kl(self, params: Tensor) -> Tensor:
        logp = self._logp(params)
        return (logp.exp() * (logp + math.log(self.K))).sum((-2, -1))

    def mean(self, params: Tensor) -> Tensor:
        return self._logp(params).exp().flatten(-2)

    def prior_sample(self, n: int, generator: torch.Generator | None, like: Tensor) -> Tensor:
        idx = torch.randint(0, self.K, (n, self.L), generator=generator, device=like.device)
        return F.one_hot(idx, self.K).to(like.dtype).flatten(-2)


def make_latent(kind: str, latent_dim: int, categories: int = 10):
    if kind == "gaussian":
        return GaussianLatent(latent_dim)
    if kind == "bernoulli":
        return BernoulliLatent(latent_dim)
    if kind == "categorical":
        return CategoricalLatent(latent_dim, categories)
    raise ValueError(f"latent must be gaussian, bernoulli or categorical, got {kind!r}")
