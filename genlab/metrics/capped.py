"""The likelihood figures within a time cap, every cost of them included.

A per-example plan (`genlab.metrics.budget.sized`) cannot cut a cost that does not shrink with
the examples, so the two such costs are planned on their own, each from a measured pilot:

* an energy model's ``log Z`` by AIS (computed once, before the examples): at most
  ``LOG_Z_SHARE`` of the cap; a pilot of a few annealing steps measures the cost per step and
  the estimate uses as many steps as fit (`capped_log_partition`). Fewer steps leave ``Ẑ``
  unbiased and widen its standard error, which the figures report (and refuse an NLL on, as
  without a cap, when it is too wide);
* a `TermBound`'s sum over its terms (a diffusion bound's T timesteps): every example, with as
  many terms per example as fit (`genlab.metrics.budget.sized_terms`), an unbiased stratified
  estimate whose noise is inside the standard error over examples.

Each cut says what was cut and why; the figures keep their meaning (``nll_nats`` is the same
quantity, estimated with a wider error bar, and ``nll_estimate`` / ``log_partition.steps`` say how).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..protocol import Density, Estimate, GenerativeModel, NotSupported, Partition
from . import budget
from .likelihood import TermBound, likelihood_figures

LOG_Z_SHARE = 0.8  # of the row's cap; the examples' energies are cheap next to the annealing
PILOT_STEPS = 10  # annealing steps of the log Z pilot


def capped_log_partition(model: Partition, steps: int, seconds: float | None, *,
                         seed: int = 0) -> tuple[tuple[Estimate, str], int, str | None]:
    """``log Z`` of ``model`` within about ``seconds``: enumeration or quadrature as the model
    does it; AIS with ``steps`` steps, or fewer (measured on a pilot of `PILOT_STEPS`) when those
    would not fit.

    Returns:
        ((log Z, method), AIS steps used (0 for other methods), why fewer steps or None).
    """
    if model.partition_method() != "ais":
        return model.log_partition(generator=torch.Generator().manual_seed(seed)), 0, None
    if steps <= 0:
        raise NotSupported(f"{model.name}: log Z needs annealed importance sampling here; pass --log-z-steps N "
                           "(e.g. 1000)")

    def run(k: int) -> tuple[Estimate, str]:
        return model.log_partition(steps=k, generator=torch.Generator().manual_seed(seed))
    return budget.sized(run, steps, seconds, pilot=min(PILOT_STEPS, steps), unit="AIS steps of log Z")


def capped_likelihood(model: GenerativeModel, x: Tensor, y: Tensor | None, *, ais_steps: int, seed: int,
                      cap: float | None) -> tuple[dict[str, Any], str | None]:
    """`likelihood_figures` of ``x`` (labels ``y``) within about ``cap`` seconds (None: no cap):
    the fixed cost first (an energy model's ``log Z``), then as many examples (and, for a
    `TermBound`, terms per example) as the rest of the cap allows.

    Returns:
        (the figures, why less than everything was used, or None).
    Raises:
        NotSupported: as `likelihood_figures`, with ``.cut``: what was cut before the refusal (or None).
    """
    cuts: list[str] = []
    try:
        return _capped(model, x, y, ais_steps, seed, cap, cuts), "; ".join(cuts) or None
    except NotSupported as e:  # a refusal after a cut (log Z from too few AIS steps) says what was cut
        e.cut = "; ".join(cuts) or None
        raise


def _capped(model: GenerativeModel, x: Tensor, y: Tensor | None, ais_steps: int, seed: int, cap: float | None,
            cuts: list[str]) -> dict[str, Any]:
    """`capped_likelihood`'s figures; appends each cut's reason to ``cuts`` as it happens."""
    t0, kw, steps = budget.clock(), {}, 0
    if model.density is Density.UNNORMALIZED and isinstance(model, Partition):
        share = None if cap is None else LOG_Z_SHARE * cap
        log_z, steps, why = capped_log_partition(model, ais_steps, share, seed=seed)
        if why:
            cuts.append(why)
        kw = {"log_z": log_z, "note": None if why is None else
              f"log Z had {steps} of {ais_steps} AIS steps under the time cap: raise --metric-seconds"}
    left = None if cap is None else max(cap - (budget.clock() - t0), 1e-9)

    def part(n: int) -> tuple[Tensor, Tensor | None]:
        return x[:n], None if y is None else y[:n]
    if isinstance(model, TermBound) and model.density is Density.BOUND:
        out, _, _, why = budget.sized_terms(
            lambda n, k: likelihood_figures(model, *part(n), seed=seed, terms=k), len(x), model.bound_terms, left,
            what="terms of the bound")
    else:
        out, _, why = budget.sized(lambda n: likelihood_figures(model, *part(n), ais_steps=ais_steps, seed=seed, **kw),
                                   len(x), left)
    if why:
        cuts.append(why)
    if "log_partition" in out and out["log_partition"].get("method") == "ais":
        out["log_partition"]["steps"] = steps
    return out

