"""Generic imputation chains (data space, flattened rows ``(n, D)``, ``miss`` True where missing).

* `mcmc`: Metropolis-within-Gibbs on ``log p`` (exact densities), the bound (other bound
  densities, e.g. dequantized flows: a fixed-seed surrogate of ``log p``) or ``-E`` (energies):
  one missing coordinate at a time, symmetric random-walk proposals.
* `projection`: the decode(encode(x)) fixed point of latent models without a likelihood.
* `start`: the chains' starting points.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..protocol import Density, GenerativeModel


def start(model: GenerativeModel, x: Tensor, miss: Tensor, g: torch.Generator) -> Tensor:
    """Fill missing entries with random observed values of the same column (or 0 if none)."""
    out = x.clone()
    for j in torch.nonzero(miss.any(0)).flatten().tolist():
        seen = x[~miss[:, j], j]
        k = int(miss[:, j].sum())
        out[miss[:, j], j] = seen[torch.randint(len(seen), (k,), generator=g)] if len(seen) else 0.0
    return out


def target(model: GenerativeModel, x: Tensor) -> Tensor:
    """The chain's log target of rows x: (n, D) data space -> (n,) float64."""
    x = x.reshape(len(x), *model.spec.event_shape)
    if model.density in (Density.EXACT, Density.BOUND):
        return model.log_prob(x).double()
    return -model.energy(x).double()


def mcmc(model: GenerativeModel, x: Tensor, miss: Tensor, g: torch.Generator, sweeps: int) -> Tensor:
    """Metropolis-within-Gibbs: per sweep, per missing coordinate j, a symmetric random-walk
    proposal (±1..k levels for discrete data, N(0, s_j^2) for continuous data, with s_j adapted
    towards 44% acceptance during the first half of the sweeps, then frozen)."""
    spec = model.spec
    discrete = spec.is_discrete
    scale = torch.ones(x.shape[1], dtype=torch.float64)  # start: the observed values' spread
    for j in range(x.shape[1]):
        v = x[~miss[:, j], j]
        if len(v) > 1 and float(v.std()) > 0:
            scale[j] = float(v.std())
    k = max(1, (spec.levels or 2) // 8) if discrete else 0
    cur, lp = x.clone(), target(model, x)
    cols = torch.nonzero(miss.any(0)).flatten().tolist()
    for sweep in range(sweeps):
        for j in cols:
            rows = torch.nonzero(miss[:, j]).flatten()
            prop = cur[rows].clone()
            if discrete:
                step = torch.randint(1, k + 1, (len(rows),), generator=g) * (2 * torch.randint(0, 2, (len(rows),), generator=g) - 1)
                prop[:, j] += step.to(prop.dtype)
                ok = (prop[:, j] >= 0) & (prop[:, j] <= spec.levels - 1)
                prop[~ok, j] = cur[rows[~ok], j]
            else:
                prop[:, j] += float(scale[j]) * torch.randn(len(rows), generator=g, dtype=prop.dtype)
                ok = torch.ones(len(rows), dtype=torch.bool)
            lp_new = target(model, prop)
            acc = ok & (torch.rand(len(rows), generator=g, dtype=torch.float64).log() < lp_new - lp[rows])
            cur[rows[acc]] = prop[acc]
            lp[rows[acc]] = lp_new[acc]
            if not discrete and sweep < sweeps // 2:
                scale[j] *= math.exp(float(acc.double().mean()) - 0.44)
    return cur


def projection(model: GenerativeModel, x: Tensor, miss: Tensor, g: torch.Generator, sweeps: int) -> Tensor:
    """Deterministic fixed-point iteration for latent models without a likelihood (autoencoders,
    GANs with an encoder): ``x_miss <- decode(encode(x))`` restricted to the missing entries, in
    data space. Not a draw from a distribution: every draw from the same start is the same."""
    cur = x.clone()
    for _ in range(sweeps):
        rec = model.decode(model.encode(cur.reshape(len(cur), *model.spec.event_shape)))
        cur = torch.where(miss, rec.reshape(len(cur), -1).to(cur.dtype), x)
    return cur
