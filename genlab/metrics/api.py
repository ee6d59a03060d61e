"""The one metrics namespace's functions that are not re-exported as they are: each a thin public
face over the implementation elsewhere in genlab (``objectives/elbo.py``, ``metrics/ais_latent.py``,
``metrics/kl.py``, ``metrics/text.py``), in nats unless the name says bits, returning an `Estimate`
(mean, standard error over examples, n) where one exists."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..objectives.elbo import iwae_bound
from ..protocol import Density, Estimate, GenerativeModel, NotSupported
from . import text
from .ais_latent import ais_log_prob
from .kl import LogDensity, kl_monte_carlo
from .likelihood import log_likelihoods, mean_se


def perplexity(nll_nats_per_token: Estimate | float) -> Estimate | float:
    """``exp(mean NLL per token in nats)``: the effective number of equally likely next tokens (a
    uniform model over V tokens has perplexity V). An `Estimate` in gives an `Estimate` out, its
    standard error by the delta method (``exp(m) * se``); a float gives a float."""
    if isinstance(nll_nats_per_token, Estimate):
        p = text.perplexity(nll_nats_per_token.value)
        return Estimate(p, p * nll_nats_per_token.stderr, nll_nats_per_token.n)
    return text.perplexity(nll_nats_per_token)


def elbo(model: GenerativeModel, x: Tensor, *, condition: Tensor | None = None,
         generator: torch.Generator | None = None) -> Estimate:
    """Mean evidence lower bound ``E_q[log p(x, z) - log q(z | x)]`` per example, in nats (higher is
    better; ``-elbo`` is the ``nll_nats`` that ``genlab eval`` reports for a bound family).

    Args:
        model: a family whose density is a bound (vae, iwae, ddpm: ``Density.BOUND``).
        x: (n, *event_shape) examples in data space.
        condition: (n,) labels for a model that takes them.
        generator: the Monte-Carlo draws; None: seed 0 (reproducible).
    """
    if model.density is not Density.BOUND:
        raise NotSupported(f"elbo: {model.name} has a {model.density.value} density, not a variational bound; "
                           "use nll for exact families")
    return mean_se(log_likelihoods(model, x, condition=condition, generator=generator))


def iwae(model: GenerativeModel, x: Tensor, k: int = 64, *, condition: Tensor | None = None,
         generator: torch.Generator | None = None) -> Estimate:
    """Mean importance-weighted bound IWAE_k per example, in nats (Burda et al. 2016):
    ``ELBO = IWAE_1 <= IWAE_k <= log p(x)``. ``model``: a vae-like model; ``x``: (n, *event_shape)."""
    with torch.no_grad():
        return mean_se(iwae_bound(model, x, k, generator, condition=condition))


def ais(model: GenerativeModel, x: Tensor, *, steps: int = 500, chains: int = 16,
        generator: torch.Generator | None = None, **kw: Any) -> Estimate:
    """Mean NLL per example in nats from annealed importance sampling over a latent-variable model's
    codes (``ais_nll_nats`` in ``genlab eval``): ``-log p(x)`` estimated, tighter than ``-elbo``.
    ``x``: (n, *event_shape); ``kw``: `genlab.metrics.ais_latent.ais_log_prob`'s HMC settings."""
    return mean_se(-ais_log_prob(model, x, steps=steps, chains=chains, generator=generator, **kw))


def kl(x: Tensor, log_p: LogDensity | Tensor, log_q: LogDensity | Tensor) -> Estimate:
    """Monte-Carlo ``KL(p || q) = E_p[log p(x) - log q(x)]`` in nats from samples ``x: (n, ...)``
    of p; ``log_p`` / ``log_q``: exact-density genlab models, callables ``x -> (n,)``, or (n,)
    tensors of log-densities. ``KL(p || p) = 0``."""
    return kl_monte_carlo(x, log_p, log_q)


def bits_per_token(nll_nats_per_token: Estimate | float) -> Estimate | float:
    """``nll / ln 2``: bits per token (per character for character-level text)."""
    return text.bits_per_char(nll_nats_per_token, 1.0)


__all__ = ["ais", "bits_per_token", "elbo", "iwae", "kl", "perplexity"]
