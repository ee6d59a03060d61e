"""Likelihood figures with their standard errors (pure functions of a model and data)."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..protocol import Estimate, Density, GenerativeModel, NotSupported


def mean_se(values: Tensor) -> Estimate:
    """Mean and standard error of the mean of per-example values: (n,) -> Estimate."""
    v = values.detach().double().flatten()
    se = float(v.std(unbiased=True) / math.sqrt(len(v))) if len(v) > 1 else float("nan")
    return Estimate(float(v.mean()), se, len(v))


@torch.no_grad()
def log_likelihoods(model: GenerativeModel, x: Tensor, condition: Tensor | None = None,
                    batch_size: int = 1024, generator: torch.Generator | None = None) -> Tensor:
    """Per-example ``log p(x)`` (or its bound) in nats, computed in batches: (n,)."""
    if model.density in (Density.NONE, Density.UNNORMALIZED):
        raise NotSupported(f"{model.name}: density is {model.density.value}, so it has no likelihood; "
                           "use sample-based metrics instead")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    out = [model.log_prob(x[i:i + batch_size], condition=None if condition is None else condition[i:i + batch_size],
                          generator=g)
           for i in range(0, len(x), batch_size)]
    return torch.cat(out).cpu()


def nll(model: GenerativeModel, x: Tensor, **kw) -> Estimate:
    """Mean negative log-likelihood in nats per example (an upper bound for BOUND densities
    and for dequantized discrete data)."""
    return mean_se(-log_likelihoods(model, x, **kw))


def bits_per_dim(nll_nats: Estimate | float, dim: int) -> Estimate | float:
    """Convert nats per example to bits per dimension: ``nll / (D ln 2)``.

    For discrete data the likelihood is already the dequantized bound in the discrete data's
    own space (the ``-D log L`` term is included by the model's preprocessing).
    """
    c = 1.0 / (dim * math.log(2))
    if isinstance(nll_nats, Estimate):
        return Estimate(nll_nats.value * c, nll_nats.stderr * c, nll_nats.n)
    return nll_nats * c
