"""One Hamiltonian Monte Carlo transition (Neal 2011, "MCMC using Hamiltonian dynamics", Sec. 5.2),
batched over independent chains, with a per-chain step size adapted towards a target acceptance
rate (as the AIS evaluations of Wu et al. 2017 do).

The target is ``exp(-U(x))``; ``U`` and its gradient come from ``potential(x) -> (U: (*batch,),
dU/dx: x.shape)``. States are (*batch, d): the last axis is the one position vector of a chain.
``inside(x) -> (*batch,) bool`` (optional) marks the support: a proposal outside it has density 0
and is rejected (the leapfrog path may leave the support in between; only its end point counts).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

Potential = Callable[[Tensor], tuple[Tensor, Tensor]]


def hmc_step(x: Tensor, potential: Potential, step_size: Tensor, leapfrog: int, generator: torch.Generator,
             inside: Callable[[Tensor], Tensor] | None = None, target_accept: float = 0.65,
             adapt: float = 0.02) -> tuple[Tensor, Tensor, Tensor]:
    """One HMC transition of every chain.

    Args:
        x: (*batch, d) current states.
        potential: ``U`` and ``dU/dx`` (see the module doc).
        step_size: (*batch, 1) leapfrog step per chain.
        leapfrog: steps per trajectory (>= 1).
        inside: support indicator (None: all of R^d).
        target_accept, adapt: the step size is multiplied by ``exp(adapt (accepted - target))``.
    Returns:
        (new states (*batch, d), accepted (*batch,) bool, new step sizes (*batch, 1)).
    """
    def randn(shape) -> Tensor:
        return torch.randn(shape, generator=generator, dtype=x.dtype, device=x.device)

    u0, grad = potential(x)
    p0 = randn(x.shape)
    p = p0 - 0.5 * step_size * grad
    x1 = x
    for k in range(leapfrog):
        x1 = x1 + step_size * p
        u1, grad = potential(x1)
        p = p - (step_size if k < leapfrog - 1 else 0.5 * step_size) * grad
    log_accept = (u0 + 0.5 * p0.square().sum(-1)) - (u1 + 0.5 * p.square().sum(-1))
    log_accept = torch.nan_to_num(log_accept, nan=-math.inf)
    if inside is not None:
        log_accept = torch.where(inside(x1), log_accept, torch.full_like(log_accept, -math.inf))
    u = torch.rand(log_accept.shape, generator=generator, dtype=x.dtype, device=x.device)
    accept = log_accept.exp() > u
    x = torch.where(accept[..., None], x1, x)
    step_size = step_size * torch.exp(adapt * (accept.to(step_size.dtype) - target_accept))[..., None]
    return x, accept, step_size
