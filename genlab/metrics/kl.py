"""Kullback-Leibler divergence between distributions whose densities are known.

* `kl_gaussians`: the closed form for two multivariate Gaussians.
* `kl_monte_carlo`: ``KL(p || q) = E_p[log p(x) - log q(x)]`` from samples of p, with the
  standard error of the mean; log-densities can be callables, genlab models (exact density)
  or precomputed (n,) tensors.
"""
from __future__ import annotations

import math
from typing import Callable, Union

import torch
from torch import Tensor

from ..protocol import Density, GenerativeModel, NotSupported
from .likelihood import Estimate, mean_se

LogDensity = Union[Callable[[Tensor], Tensor], GenerativeModel]


def kl_gaussians(mu1: Tensor, cov1: Tensor, mu2: Tensor, cov2: Tensor) -> float:
    """``KL(N(mu1, cov1) || N(mu2, cov2))`` in nats:
    ``0.5 [tr(S2^-1 S1) + (mu2-mu1)^T S2^-1 (mu2-mu1) - d + ln det S2 - ln det S1]``.

    Args:
        mu1, mu2: (d,) means; cov1, cov2: (d, d) positive definite covariances.
    """
    mu1, mu2 = torch.as_tensor(mu1, dtype=torch.float64).flatten(), torch.as_tensor(mu2, dtype=torch.float64).flatten()
    cov1 = torch.as_tensor(cov1, dtype=torch.float64).reshape(len(mu1), len(mu1))
    cov2 = torch.as_tensor(cov2, dtype=torch.float64).reshape(len(mu2), len(mu2))
    if len(mu1) != len(mu2):
        raise ValueError(f"kl_gaussians: dimensions differ ({len(mu1)} vs {len(mu2)})")
    try:
        l1, l2 = torch.linalg.cholesky(cov1), torch.linalg.cholesky(cov2)
    except RuntimeError:
        raise ValueError("kl_gaussians: a covariance is not positive definite") from None
    diff = (mu2 - mu1)[:, None]
    a = torch.cholesky_solve(cov1, l2)
    m = torch.cholesky_solve(diff, l2)
    logdet = 2 * (l2.diagonal().log().sum() - l1.diagonal().log().sum())
    return float(0.5 * (a.trace() + (diff * m).sum() - len(mu1) + logdet))


def _log_density(f: LogDensity | Tensor, x: Tensor | None, name: str) -> Tensor:
    if isinstance(f, Tensor):
        return f.detach().double().flatten()
    if isinstance(f, GenerativeModel):
        if f.density is not Density.EXACT:
            raise NotSupported(f"kl: {name} ({f.name}) has a {f.density.value} density; KL needs exact "
                               "log-densities (a bound gives only a bound on KL)")
        with torch.no_grad():
            return f.log_prob(x).detach().double().flatten()
    with torch.no_grad():
        return torch.as_tensor(f(x)).detach().double().flatten()


def kl_monte_carlo(x: Tensor, log_p: LogDensity | Tensor, log_q: LogDensity | Tensor) -> Estimate:
    """Monte-Carlo ``KL(p || q) ≈ mean_i [log p(x_i) - log q(x_i)]`` for ``x_i ~ p``, in nats.

    Args:
        x: (n, ...) samples from p (ignored where both log-densities are given as tensors).
        log_p, log_q: callables ``x -> (n,)``, exact-density genlab models, or (n,) tensors.
    Returns:
        The estimate with its standard error and n.
    """
    lp, lq = _log_density(log_p, x, "p"), _log_density(log_q, x, "q")
    if lp.shape != lq.shape:
        raise ValueError(f"kl_monte_carlo: log_p has {lp.numel()} values, log_q {lq.numel()}")
    d = lp - lq
    if not torch.isfinite(d).all():
        raise ValueError("kl_monte_carlo: a log-density is -inf or NaN at some samples (q has no mass "
                         "where p has): KL(p || q) is infinite")
    if len(d) < 2:
        raise ValueError("kl_monte_carlo needs at least 2 samples for a standard error")
    e = mean_se(d)
    return Estimate(e.value, e.stderr if math.isfinite(e.stderr) else float("nan"), e.n)
