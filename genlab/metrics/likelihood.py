"""Likelihood figures with their standard errors (pure functions of a model and data)."""
from __future__ import annotations

import math
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from ..data.spec import Kind
from ..protocol import Density, Estimate, GenerativeModel, NotSupported, Partition, takes_labels
from .text import text_figures


@runtime_checkable
class TermBound(Protocol):
    """Capability: ``log_prob`` is a bound whose cost per example is a sum of ``bound_terms``
    terms (a diffusion bound's timesteps, one network pass each), and ``log_prob_terms(x, k,
    condition=, generator=)`` estimates it without bias from ``k`` of them (``k = bound_terms``:
    ``log_prob`` itself), so that a caller with a time cap can trade precision for time."""

    bound_terms: int

    def log_prob_terms(self, x: Tensor, terms: int, *, condition: Tensor | None = None,
                       generator: torch.Generator | None = None) -> Tensor: ...


def mean_se(values: Tensor) -> Estimate:
    """Mean and standard error of the mean of per-example values: (n,) -> Estimate."""
    v = values.detach().double().flatten()
    se = float(v.std(unbiased=True) / math.sqrt(len(v))) if len(v) > 1 else float("nan")
    return Estimate(float(v.mean()), se, len(v))


@torch.no_grad()
def log_likelihoods(model: GenerativeModel, x: Tensor, condition: Tensor | None = None,
                    batch_size: int = 1024, generator: torch.Generator | None = None,
                    terms: int | None = None) -> Tensor:
    """Per-example ``log p(x)`` (or its bound) in nats, computed in batches: (n,); ``terms``: a
    `TermBound`'s bound estimated from that many of its terms per example (None: all)."""
    if model.density in (Density.NONE, Density.UNNORMALIZED):
        raise NotSupported(f"{model.name}: density is {model.density.value}, so it has no likelihood; "
                           "use sample-based metrics instead")
    if terms is not None and not isinstance(model, TermBound):
        raise TypeError(f"log_likelihoods: terms= needs a TermBound model; {model.name} is not one")
    g = generator if generator is not None else torch.Generator().manual_seed(0)

    def one(xb: Tensor, cb: Tensor | None) -> Tensor:
        if terms is None:
            return model.log_prob(xb, condition=cb, generator=g)
        return model.log_prob_terms(xb, terms, condition=cb, generator=g)
    out = [one(x[i:i + batch_size], None if condition is None else condition[i:i + batch_size])
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


def likelihood_figures(model: GenerativeModel, x: Tensor, y: Tensor | None = None, *, ais_steps: int = 0,
                       seed: int = 0, terms: int | None = None, log_z: tuple[Estimate, str] | None = None,
                       note: str | None = None) -> dict[str, Any]:
    """The unconditional NLL of ``x`` (nats and bits/dim), comparable across families, whether it
    is exact or a bound, and, for a model that takes labels, ``nll_given_label_nats`` beside it
    (never in its place). An energy model with a `Partition` gets `normalized_energy_figures`
    (``log_z``, ``note``: see there). ``terms``: a `TermBound`'s bound estimated from that many of
    its ``bound_terms`` per example (an unbiased estimate whose noise is in the standard error;
    ``nll_estimate`` says so); None: all of them."""
    if model.density is Density.UNNORMALIZED and isinstance(model, Partition):
        return normalized_energy_figures(model, x, ais_steps=ais_steps, seed=seed, log_z=log_z, note=note)
    sub = terms is not None and terms < model.bound_terms
    e = nll(model, x, terms=terms if sub else None)
    bound = model.density is Density.BOUND or model.pre.lower_bound
    out: dict[str, Any] = {"nll_nats": e.to_dict(), "bits_per_dim": bits_per_dim(e, model.spec.dim).to_dict(),
                           "nll_is": "upper bound" if bound else "exact"}
    if sub:
        out["nll_estimate"] = (f"{terms} of {model.bound_terms} terms per example (stratified, unbiased for "
                               "the full bound; the standard error includes this noise)")
    if model.spec.kind is Kind.TEXT:  # one dimension per character
        out.update(text_figures(e, model.spec.dim))
    if takes_labels(model) and y is not None:
        out["nll_given_label_nats"] = nll(model, x, condition=y, terms=terms if sub else None).to_dict()
    return out


# An AIS log Z whose standard error (over chains) is above this is not reported: the importance
# weights have collapsed onto a few chains and the estimate can be off by far more than its error bar.
MAX_AIS_LOG_Z_SE = 0.5


def normalized_energy_figures(model: Partition, x: Tensor, *, ais_steps: int = 0, seed: int = 0,
                              log_z: tuple[Estimate, str] | None = None, note: str | None = None) -> dict[str, Any]:
    """NLL of ``x`` under ``log p = -E - log Z``, with ``Z`` enumerated, integrated or estimated by
    AIS with ``ais_steps`` steps (refused with `NotSupported` when AIS is needed and ``ais_steps``
    is 0), and ``log Z`` itself; ``examples_outside_support`` counts examples of infinite NLL.
    ``log_z``: ``(log Z, method)`` computed before (with fewer AIS steps under a time cap: ``note``
    says so in a refusal), instead of computing it here."""
    method = model.partition_method()
    if log_z is None and method == "ais" and ais_steps <= 0:
        raise NotSupported(f"{model.name}: log Z needs annealed importance sampling here; pass --log-z-steps N "
                           "(e.g. 1000)")
    log_z, how = log_z or model.log_partition(steps=ais_steps if method == "ais" else None,
                                              generator=torch.Generator().manual_seed(seed))
    more = note or "try more --log-z-steps"
    if how == "ais" and not log_z.stderr <= MAX_AIS_LOG_Z_SE:
        raise NotSupported(f"{model.name}: the AIS estimate of log Z did not converge (log Z = {log_z.value:.4g} "
                           f"± {log_z.stderr:.3g} nats: a few chains carry the weight), so no NLL is reported; "
                           + more)
    lp, _ = model.log_prob_estimate(x, log_z=log_z)
    if model.spec.is_discrete and float(lp[torch.isfinite(lp)].mean()) > 0:  # P(x) <= 1 for discrete data
        raise NotSupported(f"{model.name}: log Z = {log_z.value:.4g} ({how}) gives a negative mean NLL on "
                           "discrete data, which no normalized model can: log Z is underestimated, so no NLL "
                           "is reported; " + more)
    out: dict[str, Any] = {}
    if not torch.isfinite(lp).all():  # an ebm puts no mass outside its box: the NLL is then infinite
        out["examples_outside_support"] = int((~torch.isfinite(lp)).sum())
    e = mean_se(-lp)
    out.update(nll_nats=e.to_dict(), bits_per_dim=bits_per_dim(e, model.spec.dim).to_dict(),
               nll_is={"exact": "exact", "quadrature": "exact up to quadrature error",
                       "ais": "estimate (AIS log Z is low in expectation: optimistic)"}[how],
               log_partition={**log_z.to_dict(), "method": how})
    return out

