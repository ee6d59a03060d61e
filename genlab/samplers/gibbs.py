"""Gibbs samplers (Geman & Geman 1984) with one shape: a state in, a state out, randomness from
a ``torch.Generator``.

* `block_gibbs`: alternate two conditionally independent blocks, as in a restricted Boltzmann
  machine (``h ~ p(h | v)``, then ``v ~ p(v | h)``; Hinton 2002).
* `site_gibbs`: systematic-scan single-site updates of a discrete field (Ising / Potts models):
  each sweep visits sites ``0 .. D-1`` and redraws ``x_i ~ p(x_i | x_-i)`` in every chain.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def block_gibbs(v: Tensor, sample_h: Callable[[Tensor, torch.Generator | None], Tensor],
                sample_v: Callable[[Tensor, torch.Generator | None], Tensor], steps: int,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """``steps`` rounds of ``h ~ sample_h(v)``, ``v ~ sample_v(h)``.

    Args:
        v: (chains, D) start; sample_h / sample_v: draw one block given the other.
    Returns:
        the last ``v`` (chains, D) and the ``h`` it was drawn from (chains, H).
    """
    if steps < 1:
        raise ValueError(f"block_gibbs: steps must be >= 1, got {steps}")
    for _ in range(steps):
        h = sample_h(v, generator)
        v = sample_v(h, generator)
    return v, h


def categorical(logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One draw per row of unnormalized log-probabilities: (n, K) -> (n,) int64 (Gumbel-max)."""
    u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype, device=logits.device)
    tiny = torch.finfo(logits.dtype).tiny
    return (logits - torch.log(-torch.log(u.clamp_min(tiny)))).argmax(-1)


def site_gibbs(x: Tensor, site_logits: Callable[[Tensor, int], Tensor], sweeps: int,
               generator: torch.Generator | None = None) -> Tensor:
    """Systematic-scan Gibbs sweeps over the sites of a discrete field.

    Args:
        x: (chains, D) int64 start (modified copy is returned).
        site_logits: ``f(x, i) -> (chains, K)`` log-potentials of site ``i`` given the rest
            (``-inf`` for impossible states).
        sweeps: full passes over the sites.
    Returns:
        (chains, D) int64 state after the sweeps.
    """
    x = x.clone()
    for _ in range(sweeps):
        for i in range(x.shape[1]):
            x[:, i] = categorical(site_logits(x, i), generator)
    return x
