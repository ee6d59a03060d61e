"""Exact ancestral imputation for autoregressive models whose missing entries come last.

With ``p(x) = prod_i p(x_{o_i} | x_{o_<i})`` in the model's order ``o``, and the missing entries
of an example all after its observed ones in that order, ``p(x_m | x_o)`` is the product of the
remaining conditionals: drawing them one by one, in order, given the observed entries and the
ones already drawn, is an exact draw (the same loop as sampling, started after the prefix).

Models with ``K`` orderings whose density is the ensemble ``(1/K) sum_k p_k(x)`` (MADE's
order-agnostic mode) have ``p(x_m | x_o) = sum_k w_k p_k(x_m | x_o)`` with
``w_k ∝ p_k(x_o)``; when the missing entries come last in every ordering, ``p_k(x_o)`` is the
product of the prefix conditionals, so an ordering is drawn from ``w`` and then the entries.

Capability (`ar_view`): the `genlab.protocol.Autoregressive` mixin (made, pixelcnn, transformer):
its orderings ``ar_orders()`` (K, D) and ``entry_params(z, k)`` giving the parameters of every
``p_k(z_d | earlier entries)`` in one pass, (batch, D, P) on flattened input.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..protocol import Autoregressive, Density, GenerativeModel

ParamsFn = Callable[[Tensor, int], Tensor]  # (z (b, D) model space, ordering k) -> (b, D, P)


def ar_view(model: GenerativeModel) -> tuple[Tensor, ParamsFn] | None:
    """(orders (K, D) int64, params_fn) of an `Autoregressive` model, or None if it is not one."""
    if not isinstance(model, Autoregressive) or model.density is not Density.EXACT:
        return None
    return model.ar_orders().long(), model.entry_params


def missing_last(orders: Tensor, miss: Tensor) -> Tensor:
    """(n,) bool: rows whose missing entries all come after their observed ones in every ordering.

    Args:
        orders: (K, D) orderings (``orders[k, i]`` is the i-th entry drawn under ordering k).
        miss: (n, D) bool, True where missing.
    """
    ok = torch.ones(len(miss), dtype=torch.bool)
    for order in orders:
        m = miss[:, order].long()  # in drawing order: must be 0...0 1...1
        ok &= (m[:, 1:] >= m[:, :-1]).all(1)
    return ok


@torch.no_grad()
def ancestral(model: GenerativeModel, z: Tensor, miss: Tensor, generator: torch.Generator | None) -> Tensor:
    """Exact draws of the missing entries of rows whose missing entries come last.

    Args:
        z: (n, D) model-space examples (observed entries are read, missing ones overwritten).
        miss: (n, D) bool; every row must satisfy `missing_last`.
    Returns:
        (n, D) model-space draws.
    """
    view = ar_view(model)
    if view is None:
        raise ValueError(f"{model.name}: not an autoregressive model (no head / conditionals)")
    orders, params_fn = view
    orders = orders.to(z.device)
    if not bool(missing_last(orders.cpu(), miss.cpu()).all()):
        raise ValueError("ancestral imputation needs the missing entries of every row to come last in "
                         "the model's order(s); use method='mcmc' for the others")
    out = z.clone()
    K = len(orders)
    if K == 1:
        which = torch.zeros(len(z), dtype=torch.long)
    else:  # w_k ∝ p_k(x_o): the prefix conditionals under each ordering
        head = model.head
        lw = torch.stack([torch.where(~miss, head.log_prob(z, params_fn(z, k)), torch.zeros((), dtype=z.dtype))
                          .sum(1).double() for k in range(K)], 1)
        which = torch.multinomial(torch.softmax(lw, 1), 1, generator=generator).flatten().cpu()
    for k in which.unique().tolist():
        rows = (which == k).nonzero().flatten().to(z.device)
        zk, mk = out[rows], miss[rows]
        for d in orders[k].tolist():
            need = mk[:, d]
            if not bool(need.any()):
                continue
            params = params_fn(zk, k)[:, d]
            draw = model.head.sample(params, generator, 1.0).to(zk.dtype)
            zk[:, d] = torch.where(need, draw, zk[:, d])
        out[rows] = zk
    return out
