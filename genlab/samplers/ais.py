"""Annealed importance sampling (Neal 2001) of an RBM's log partition function, as in
Salakhutdinov & Murray (2008), "On the quantitative analysis of deep belief networks", sec. 4.

The base model has visible biases ``b_A`` and no coupling: ``Z_A = prod_i Z(b_A,i) * 2^H``.
Intermediate distributions ``p_k(v) ∝ p_A(v)^(1 - beta_k) p*_B(v)^beta_k`` are bridged by one
block-Gibbs step each; ``log Z_B ≈ log Z_A + log mean_m w_m``. Since ``E[w] = Z_B / Z_A``, the
estimate of ``Z`` is unbiased and ``log Ẑ`` is biased low by Jensen (so a log-likelihood
computed with it is, in expectation, optimistic); the standard error is by the delta method.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn.functional import softplus

from ..protocol import Estimate


def sm_schedule(n: int, dtype=torch.float64) -> Tensor:
    """``n + 1`` inverse temperatures 0 .. 1, spaced as in Salakhutdinov & Murray (2008): 500 in
    [0, 0.5], 4,000 in [0.5, 0.9] and 10,000 in [0.9, 1] out of 14,500 (scaled to ``n``)."""
    if n < 3:
        return torch.linspace(0, 1, n + 1, dtype=dtype)
    n1, n2 = max(1, round(n * 500 / 14500)), max(1, round(n * 4000 / 14500))
    n3 = max(1, n - n1 - n2)
    return torch.cat([torch.linspace(0, 0.5, n1 + 1, dtype=dtype)[:-1], torch.linspace(0.5, 0.9, n2 + 1, dtype=dtype)[:-1],
                      torch.linspace(0.9, 1.0, n3 + 1, dtype=dtype)])


def sigmoid_schedule(steps: int, delta: float = 4.0, dtype=torch.float64) -> Tensor:
    """``steps + 1`` inverse temperatures from 0 to 1: ``sigmoid(delta (2t/T - 1))`` rescaled to
    start at 0 and end at 1 (Grosse et al. 2013; Wu et al. 2017): dense near both ends."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    s = torch.sigmoid(delta * (2 * torch.arange(steps + 1, dtype=dtype) / steps - 1))
    return (s - s[0]) / (s[-1] - s[0])


def _log_pstar(v: Tensor, beta: float, W: Tensor, b: Tensor, c: Tensor, base: Tensor, gaussian: bool) -> Tensor:
    """log p*_beta(v) of the annealing path (up to the constant shared by all beta): (M,)."""
    hidden = softplus(beta * (v @ W + c)).sum(1)
    if gaussian:
        mean = (1 - beta) * base + beta * b
        quad = (1 - beta) * base.square().sum() + beta * b.square().sum()
        return -0.5 * v.square().sum(1) + v @ mean - 0.5 * quad + hidden
    return v @ ((1 - beta) * base + beta * b) + hidden


@torch.no_grad()
def rbm_ais(W: Tensor, b: Tensor, c: Tensor, base: Tensor, *, gaussian: bool = False, n_betas: int = 10_000,
            n_runs: int = 100, generator: torch.Generator | None = None) -> Estimate:
    """AIS estimate of ``log Z`` of an RBM with energy ``-b.v - c.h - v.W.h`` (Bernoulli visible)
    or ``|v - b|^2 / 2 - c.h - v.W.h`` (unit-variance Gaussian visible).

    Args:
        W: (D, H); b: (D,); c: (H,); base: (D,) visible biases (Bernoulli logits) or means
            (Gaussian) of the base model; n_betas: intermediate distributions; n_runs: chains M.
    Returns:
        `Estimate` with ``value = log Ẑ``, ``stderr`` (delta method) and ``n = n_runs``.
    """
    D, H = W.shape
    dt = W.dtype
    betas = sm_schedule(n_betas, dt).tolist()
    if gaussian:
        v = base + torch.randn(n_runs, D, generator=generator, dtype=dt, device=W.device)
        log_za = 0.5 * D * math.log(2 * math.pi) + H * math.log(2)
    else:
        v = torch.bernoulli(torch.sigmoid(base).expand(n_runs, D), generator=generator)
        log_za = float(softplus(base).sum()) + H * math.log(2)
    logw = torch.zeros(n_runs, dtype=dt, device=W.device)
    for k in range(1, len(betas)):
        bk = betas[k]
        logw += _log_pstar(v, bk, W, b, c, base, gaussian) - _log_pstar(v, betas[k - 1], W, b, c, base, gaussian)
        h = torch.bernoulli(torch.sigmoid(bk * (v @ W + c)), generator=generator)
        mean = (1 - bk) * base + bk * (b + h @ W.T)
        if gaussian:
            v = mean + torch.randn(v.shape, generator=generator, dtype=dt, device=W.device)
        else:
            v = torch.bernoulli(torch.sigmoid(mean), generator=generator)
    m = logw.max()
    w = (logw - m).exp()
    log_z = log_za + float(m + w.mean().log())
    se = float(w.std() / (w.mean() * math.sqrt(n_runs))) if n_runs > 1 else float("nan")
    return Estimate(log_z, se, n_runs)
