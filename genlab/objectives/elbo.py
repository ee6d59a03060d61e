"""Pieces of the evidence lower bound (Kingma & Welling 2014) and decoder likelihoods.

``ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z)) <= log p(x)``. Likelihood functions return
per-entry log-probabilities (same shape as ``x``); `sum_event` sums them per example.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def sum_event(t: Tensor) -> Tensor:
    """(batch, *event_shape) -> (batch,): sum over everything but the first axis."""
    return t.flatten(1).sum(1)


def reparameterize(mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One draw ``z = mu + exp(logvar / 2) * eps``, ``eps ~ N(0, I)`` from ``generator``."""
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return mu + (0.5 * logvar).exp() * eps


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(mu, diag(exp(logvar))) || N(0, I))`` per example, in closed form.

    ``0.5 * sum(mu^2 + exp(logvar) - 1 - logvar)`` (Kingma & Welling 2014, App. B).

    Args:
        mu, logvar: (batch, latent_dim).
    Returns:
        (batch,) nats.
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def normal_log_prob(z: Tensor, mu: Tensor | None = None, logvar: Tensor | None = None) -> Tensor:
    """``log N(z; mu, diag(exp(logvar)))`` summed over the last axis; standard normal by default."""
    mu = torch.zeros_like(z) if mu is None else mu
    logvar = torch.zeros_like(z) if logvar is None else logvar
    return -0.5 * ((z - mu).pow(2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)


def elbo(log_lik: Tensor, kl: Tensor, beta: float | Tensor = 1.0) -> Tensor:
    """``log_lik - beta * kl`` per example (beta-VAE, Higgins et al. 2017; beta = 1 is the bound)."""
    return log_lik - beta * kl


def gaussian_log_lik(x: Tensor, mean: Tensor, log_scale: Tensor) -> Tensor:
    """Per-entry ``log N(x; mean, exp(log_scale)^2)``; all arguments broadcast to x's shape."""
    return -0.5 * ((x - mean) * (-log_scale).exp()).pow(2) - log_scale - 0.5 * math.log(2 * math.pi)


def bernoulli_log_lik(x: Tensor, logits: Tensor) -> Tensor:
    """Per-entry ``x log sigmoid(l) + (1 - x) log sigmoid(-l)`` for x in {0, 1} (or [0, 1])."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none")


def _log1mexp(a: Tensor) -> Tensor:
    """``log(1 - exp(-a))`` for ``a > 0``, stable at both ends (Maechler 2012)."""
    return torch.where(a < math.log(2), torch.log(-torch.expm1(-a)), torch.log1p(-torch.exp(-a)))


def discretized_logistic_log_lik(x: Tensor, mean: Tensor, log_scale: Tensor, levels: int) -> Tensor:
    """Per-entry log-probability of a logistic discretized to ``levels`` bins on [-1, 1].

    PixelCNN++ (Salimans et al. 2017, Sec. 2.1): bin centres ``x_k = -1 + 2k/(L-1)`` with
    half-width ``d = 1/(L-1)``; ``P(x) = sigmoid((x+d-mean)/s) - sigmoid((x-d-mean)/s)``, with the
    edge bins taking the tails (``x = -1``: the CDF from -inf; ``x = 1``: up to +inf). The
    difference of sigmoids is computed exactly in log space as
    ``log sigmoid(a) + log sigmoid(-b) + log(1 - exp(b - a))``, so no bin underflows to log 0.

    Args:
        x: bin centres in [-1, 1], any shape.
        mean, log_scale: broadcast to x's shape; ``s = exp(log_scale)``.
        levels: L >= 2.
    Returns:
        log P(x), the shape of x; ``sum_k P(x_k) = 1`` exactly for each (mean, scale).
    """
    half = 1.0 / (levels - 1)
    inv_s = (-log_scale).exp()
    a = (x - mean + half) * inv_s  # upper edge of the bin, standardized
    b = (x - mean - half) * inv_s  # lower edge
    low, high = x < -1 + half, x > 1 - half
    log_cdf_a = -F.softplus(-a)  # log sigmoid(a)
    log_sf_b = -F.softplus(b)  # log (1 - sigmoid(b))
    mid = log_cdf_a + log_sf_b + _log1mexp(2 * half * inv_s)  # a - b, without inf - inf
    return torch.where(low, log_cdf_a, torch.where(high, log_sf_b, mid))


def kl_weight_schedule(step: int, beta: float = 1.0, schedule: str = "linear", warmup_steps: int = 0,
                       total_steps: int = 0, cycles: int = 4, ratio: float = 0.5) -> float:
    """The KL weight at training step ``step`` (0-based: the first step has ``step = 0``).

    * ``constant``: ``beta``.
    * ``linear`` (Bowman et al. 2016): ``beta * min(1, step / warmup_steps)``; constant when
      ``warmup_steps = 0``.
    * ``cyclical`` (Fu et al. 2019, Eq. 5): ``total_steps`` split into ``cycles`` periods of
      ``T/M`` steps; within a period ``tau = (step mod (T/M)) / (T/M)`` and the weight is
      ``beta * min(1, tau / ratio)`` (rises for the first ``ratio`` of each period, then holds);
      ``beta`` after ``total_steps``.
    """
    if schedule == "constant":
        return beta
    if schedule == "linear":
        return beta * (min(1.0, step / warmup_steps) if warmup_steps > 0 else 1.0)
    if schedule == "cyclical":
        if total_steps < 1 or cycles < 1 or not 0 < ratio <= 1:
            raise ValueError("the cyclical KL schedule needs kl_total_steps >= 1, kl_cycles >= 1 "
                             f"and 0 < kl_ratio <= 1; got {total_steps}, {cycles}, {ratio}")
        if step >= total_steps:
            return beta
        period = total_steps / cycles
        tau = (step % period) / period
        return beta * min(1.0, tau / ratio)
    raise ValueError(f"kl_schedule must be constant, linear or cyclical, got {schedule!r}")


def log_mean_exp(t: Tensor, dim: int = 0) -> Tensor:
    """``log(mean(exp(t)))`` along ``dim``, stably."""
    return torch.logsumexp(t, dim) - math.log(t.shape[dim])


@torch.no_grad()
def iwae_bound(model, x: Tensor, k: int, generator: torch.Generator | None = None, *,
               condition: Tensor | None = None, max_codes: int = 65536) -> Tensor:
    """The importance-weighted bound IWAE_k per example, in nats, in data space (Burda et al. 2016,
    Eq. 8): ``log (1/k) sum_i p(x, z_i) / q(z_i | x)``, ``z_i ~ q(z|x)``.

    ``ELBO = IWAE_1 <= IWAE_k <= IWAE_{k+1} <= log p(x)`` (their Theorem 1); with k = 1000 or more
    it is the usual importance-sampling estimate of the test log-likelihood. Works for any model
    with ``log_weights(z, k, generator, condition) -> (k, batch)`` in model space (every `vae`
    configuration). The k draws are made in chunks of at most ``max_codes`` codes in all, so
    memory does not grow with k.

    Args:
        model: a `vae`-like model.
        x: (batch, *event_shape) data space.
        k: number of importance samples, >= 1.
        generator: randomness of the draws (and of dequantization); ``None``: seed 0.
        condition: (batch,) labels for a conditional model, or None.
    Returns:
        (batch,) lower bounds on log p(x).
    """
    if k < 1:
        raise ValueError(f"iwae_bound: k must be >= 1, got {k}")
    if not hasattr(model, "log_weights"):
        raise TypeError(f"iwae_bound needs a model with latent importance weights (a vae), got {model.name}")
    x = model.check_input(x)
    condition = model._check_condition(condition, len(x))
    g = generator if generator is not None else torch.Generator(device=x.device).manual_seed(0)
    z, logdet = model.pre(x, g)
    chunk = max(1, min(k, max_codes // len(x)))
    log_w = torch.cat([model.log_weights(z, min(chunk, k - i), g, condition) for i in range(0, k, chunk)])
    return log_mean_exp(log_w, 0) + logdet
