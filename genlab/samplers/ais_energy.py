"""The normalizer of an energy model on a box, ``Z = ∫_B exp(-E(z)) dz`` with ``B = [low, high]``
(the support that genlab's `ebm` samples on: its Langevin chains are clamped to it).

* `box_quadrature`: the midpoint rule on a grid of ``points`` per axis (1- and 2-D only); its
  error shrinks as ``O(h^2)`` for a smooth energy, so it serves as the reference in low dimension.
* `box_ais`: annealed importance sampling (Neal 2001) from the uniform density on ``B``
  (``Z_0 = vol(B)``, drawn exactly) along ``f_beta(z) = exp(-beta E(z))`` on ``B``, each step one
  HMC transition (`genlab.samplers.hmc`) that leaves ``f_beta`` invariant (proposals outside ``B``
  are rejected), sigmoid schedule (Wu et al. 2017). ``Ẑ = Z_0 mean_m w_m`` is unbiased, so
  ``log Ẑ`` is low in expectation and ``-E(x) - log Ẑ`` is an *optimistic* log-likelihood; the
  standard error is by the delta method over the chains.

Energies are model-space functions ``(batch, *event_shape) -> (batch,)``.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from .hmc import hmc_step
from .ais import sigmoid_schedule
from ..protocol import Estimate

EnergyFn = Callable[[Tensor], Tensor]


def box_log_volume(low: Tensor, high: Tensor) -> float:
    return float((high.double() - low.double()).log().sum())


@torch.no_grad()
def box_quadrature(energy: EnergyFn, low: Tensor, high: Tensor, points: int = 400, batch: int = 1 << 15) -> float:
    """``log Z`` by the midpoint rule with ``points`` nodes per axis, for 1- or 2-D boxes."""
    d = low.numel()
    if d > 2:
        raise ValueError(f"quadrature over {d} dimensions needs {points}^{d} energy evaluations; use AIS")
    lo, hi = low.flatten().double(), high.flatten().double()
    axes = [lo[i] + (torch.arange(points, dtype=torch.float64) + 0.5) * (hi[i] - lo[i]) / points for i in range(d)]
    grid = torch.cartesian_prod(*axes).reshape(-1, d) if d > 1 else axes[0][:, None]
    neg = torch.cat([-energy(c.to(low.dtype).reshape(len(c), *low.shape)).double() for c in grid.split(batch)])
    return float(torch.logsumexp(neg, 0)) + box_log_volume(low, high) - d * math.log(points)


def box_ais(energy: EnergyFn, low: Tensor, high: Tensor, *, steps: int = 1000, chains: int = 256,
            leapfrog: int = 5, step_size: float = 0.05, generator: torch.Generator | None = None) -> Estimate:
    """AIS estimate of ``log Z`` (see the module doc): `Estimate` (``value = log Ẑ``, its standard
    error, ``n = chains``). ``step_size`` is relative to the box's mean side; each step costs
    ``leapfrog + 1`` energy gradients on ``chains`` states."""
    if steps < 1 or chains < 2 or leapfrog < 1 or step_size <= 0:
        raise ValueError("box_ais: steps and leapfrog must be >= 1, chains >= 2, step_size > 0")
    g = generator if generator is not None else torch.Generator(device=low.device).manual_seed(0)
    shape, lo, hi = low.shape, low.flatten(), high.flatten()

    def e(z: Tensor) -> Tensor:  # (chains, D) -> (chains,)
        return energy(z.reshape(len(z), *shape))

    def potential(beta: float) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
        def f(z: Tensor) -> tuple[Tensor, Tensor]:
            with torch.enable_grad():
                z = z.detach().requires_grad_(True)
                u = beta * e(z)
                (grad,) = torch.autograd.grad(u.sum(), z)
            return u.detach(), grad
        return f

    def inside(z: Tensor) -> Tensor:
        return ((z >= lo) & (z <= hi)).all(-1)

    z = lo + torch.rand(chains, lo.numel(), generator=g, dtype=lo.dtype, device=lo.device) * (hi - lo)
    eps = torch.full((chains, 1), step_size * float((hi - lo).mean()), dtype=lo.dtype, device=lo.device)
    log_w = torch.zeros(chains, dtype=torch.float64, device=lo.device)
    betas = sigmoid_schedule(steps).tolist()
    for prev, beta in zip(betas[:-1], betas[1:]):
        with torch.no_grad():
            log_w -= (beta - prev) * e(z).double()
        z, _, eps = hmc_step(z, potential(beta), eps, leapfrog, g, inside=inside)
    w = (log_w - log_w.max()).exp()
    log_z = float(torch.logsumexp(log_w, 0)) - math.log(chains) + box_log_volume(low, high)
    se = float(w.std(unbiased=True) / (w.mean() * math.sqrt(chains)))
    return Estimate(log_z, se, chains)
