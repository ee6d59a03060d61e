"""Diffusion objectives (Ho et al. 2020): the simple noise-prediction loss and the variational bound.

``eps_fn(x_t, t) -> eps_hat`` predicts the noise; ``t: (batch,)`` int64 in 1..T. The bound
(Ho et al. Eq. 5; Sohl-Dickstein et al. 2015) is
``-log p(x_0) <= L_T + sum_{t=2}^T L_{t-1} + L_0`` with
``L_T = KL(q(x_T | x_0) || N(0, I))``,
``L_{t-1} = E_q KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))`` and ``L_0 = -E_q log p(x_0 | x_1)``.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from ..samplers.diffusion import NoiseSchedule

EpsFn = Callable[[Tensor, Tensor], Tensor]


def _sum(t: Tensor) -> Tensor:
    return t.flatten(1).sum(1)


def _log1mexp(c: Tensor) -> Tensor:
    """``log(1 - exp(-c))`` for ``c > 0`` (Maechler 2012)."""
    return torch.where(c < math.log(2), torch.log(-torch.expm1(-c)), torch.log1p(-torch.exp(-c)))


def simple_loss(eps_fn: EpsFn, schedule: NoiseSchedule, x0: Tensor,
                generator: torch.Generator | None = None) -> Tensor:
    """Ho et al. Eq. 14: ``|| eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t) ||^2``,
    averaged over entries, with ``t ~ U{1..T}`` per example. x0: (batch, *event) -> (batch,)."""
    t = torch.randint(1, schedule.T + 1, (len(x0),), generator=generator, device=x0.device)
    eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    return (eps - eps_fn(schedule.q_sample(x0, t, eps), t)).pow(2).flatten(1).mean(1)


def normal_kl(mean1: Tensor, var1: Tensor, mean2: Tensor, var2: Tensor) -> Tensor:
    """Elementwise ``KL(N(mean1, var1) || N(mean2, var2))`` (broadcasting)."""
    return 0.5 * (var1 / var2 - 1 + torch.log(var2 / var1) + (mean1 - mean2).pow(2) / var2)


def discretized_gaussian_log_lik(x: Tensor, mean: Tensor, std: Tensor, levels: int) -> Tensor:
    """Ho et al. (2020, Eq. 13): a Gaussian integrated over the bin of ``x``, with ``levels``
    bins centred at ``-1 + 2k / (levels - 1)`` on [-1, 1]; the edge bins take the tails, so the
    probabilities of the levels sum to 1. Computed in float64, in log space on the side of the
    smaller tail, so no bin underflows to log 0. All arguments broadcast; returns x's shape."""
    x, mean, std = (v.to(torch.float64) for v in (x, mean, std))
    half = 1.0 / (levels - 1)
    a = (x - mean + half) / std  # upper edge, standardized
    b = (x - mean - half) / std  # lower edge
    right = (a + b) > 0  # use 1 - Phi on the right so both CDFs stay far from 1
    hi, lo = torch.where(right, -b, a), torch.where(right, -a, b)
    log_hi, log_lo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
    mid = log_hi + _log1mexp((log_hi - log_lo).clamp(min=1e-300))
    low_edge, high_edge = x < -1 + half, x > 1 - half
    return torch.where(low_edge, torch.special.log_ndtr(a),
                       torch.where(high_edge, torch.special.log_ndtr(-b), mid))


def _strata(T: int, K: int, n: int, generator: torch.Generator | None, device) -> list[tuple[Tensor, int]]:
    """K strata of 1..T (sizes differing by at most 1); per stratum a uniform draw for each of n
    examples and the stratum size: ``sum_k size_k f(t_k)`` is unbiased for ``sum_t f(t)``."""
    edges = torch.linspace(0, T, K + 1, dtype=torch.float64).round().long().tolist()
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        size = hi - lo
        if size == 1:
            t = torch.full((n,), hi, dtype=torch.long, device=device)
        else:
            t = lo + 1 + torch.randint(0, size, (n,), generator=generator, device=device)
        out.append((t, size))
    return out


def variational_bound(eps_fn: EpsFn, schedule: NoiseSchedule, x0: Tensor, *, levels: int | None = None,
                      variance: str = "beta", timesteps: int | None = None,
                      generator: torch.Generator | None = None,
                      clip: tuple[float, float] | None = None) -> Tensor:
    """A lower bound on ``log p(x_0)`` per example (nats, in the space of ``x0``): minus Ho et al. Eq. 5.

    Each ``L_{t-1}`` uses one draw ``x_t ~ q(x_t | x_0)``. With ``timesteps = K < T`` the sum over
    ``t`` is estimated without bias by stratified sampling (one uniform ``t`` in each of K equal
    strata, weighted by the stratum size); ``K = T`` (default) sums every term exactly.

    Args:
        eps_fn: the noise predictor.
        schedule: the diffusion's schedule.
        x0: (batch, *event) data; on [-1, 1] bin centres when ``levels`` is given.
        levels: discrete data with this many levels: ``L_0`` is the discretized Gaussian of Ho et
            al. Sec. 3.3; None: a Gaussian density ``N(x_0; mu_theta(x_1, 1), beta_1)``.
        variance: reverse-process variance ``sigma_t^2``: ``"beta"`` (beta_t) or ``"posterior"``
            (tilde beta_t); ``L_0`` uses ``beta_1`` in both cases (tilde beta_1 = 0).
        timesteps: K, the number of timesteps evaluated per example (None: all T).
        generator: randomness of the ``t`` and ``x_t`` draws.
        clip: range the reverse process clips ``x0_hat`` to (as `DDPMSampler` does with its
            ``clip``), so that the bound is that of the model the sampler draws from; None: no clipping.
    Returns:
        (batch,) ``-(L_T + sum_t L_{t-1} + L_0)``, float64.
    """
    T, n = schedule.T, len(x0)
    K = T if timesteps is None else int(timesteps)
    if not 1 <= K <= T:
        raise ValueError(f"bound_timesteps must lie in 1..{T} (the number of diffusion steps), got {K}")
    if variance not in ("beta", "posterior"):
        raise ValueError(f"variance must be 'beta' or 'posterior', got {variance!r}")
    x64 = x0.to(torch.float64)
    abar_T = schedule.abar[-1].to(x0.device)
    prior = _sum(normal_kl(abar_T.sqrt() * x64, 1 - abar_T, torch.zeros_like(x64), torch.ones_like(x64)))
    total = -prior
    for t, size in _strata(T, K, n, generator, x0.device):
        eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        eps_hat = eps_fn(schedule.q_sample(x0, t, eps), t).to(torch.float64)
        ab = schedule.at("abar", t, x64)
        # x0 - x0_hat with x_t fixed, without subtracting two large numbers
        err = ((1 - ab) / ab).sqrt() * (eps_hat - eps.to(torch.float64))
        if clip is not None:  # x0_hat = clip(x0 - err), written as a clamp of err to stay exact inside
            err = torch.minimum(torch.maximum(err, x64 - clip[1]), x64 - clip[0])
        first = t == 1
        # t >= 2: KL between q(x_{t-1} | x_t, x_0) and p(x_{t-1} | x_t); the means differ by c0 * err
        post_var = schedule.at("post_var", t.clamp(min=2), x64)
        var = post_var if variance == "posterior" else schedule.at("betas", t.clamp(min=2), x64)
        c0 = schedule.at("post_c0", t.clamp(min=2), x64)
        kl = _sum(normal_kl(torch.zeros_like(err), post_var, c0 * err, var))
        term = -kl
        if first.any():  # t = 1: the decoder log-likelihood of x_0 at mean x0_hat = x0 - err
            std = schedule.betas[0].sqrt().to(x0.device)
            if levels is None:
                ll = -0.5 * (err / std).pow(2) - torch.log(std) - 0.5 * math.log(2 * math.pi)
            else:
                ll = discretized_gaussian_log_lik(x64, x64 - err, std, levels)
            term = torch.where(first, _sum(ll), term)
        total = total + size * term
    return total
