"""Exact inference and sampling in discrete Bayesian networks (numpy, float64).

A network is given by ``parents`` (list of parent-index lists) and ``cpts`` (``cpts[i]`` of shape
``(*cards of parents, card_i)``), as in `genlab.pgm.bif.Network`. A factor is a pair
``(scope, table)``: a tuple of variable indices and an array with one axis per variable.

* `query`: P(Q | e) by variable elimination (Zhang & Poole 1994) after removing barren nodes
  (variables that are not ancestors of Q or e), with a greedy min-fill elimination order, ties
  broken by min-weight (Koller & Friedman 2009, sec. 9.4.3).
* `map_query`: the most probable joint assignment of Q given e (max-product elimination with
  traceback after summing out the other variables first: exact marginal MAP).
* `ancestral_sample`, `likelihood_weighting`, `rejection_sample`: forward sampling
  (Koller & Friedman sec. 12.1-12.2); every draw comes from a ``torch.Generator``.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from .bif import topological_order

Factor = tuple[tuple[int, ...], np.ndarray]


def _einsum(factors: Sequence[Factor], keep: Sequence[int]) -> np.ndarray:
    """Sum over every variable not in ``keep`` of the product of ``factors``; axes in ``keep`` order."""
    ids = {v: k for k, v in enumerate(dict.fromkeys(v for s, _ in factors for v in s))}
    for v in keep:
        ids.setdefault(v, len(ids))
    args: list = []
    for s, t in factors:
        args += [t, [ids[v] for v in s]]
    return np.einsum(*args, [ids[v] for v in keep], optimize=len(factors) > 2)


def _broadcast_product(factors: Sequence[Factor]) -> Factor:
    """The product of ``factors`` over the union of their scopes (no summation)."""
    scope = tuple(dict.fromkeys(v for s, _ in factors for v in s))
    return scope, _einsum(factors, scope) if factors else np.ones(())


def elimination_order(scopes: Sequence[Sequence[int]], eliminate: Sequence[int], cards: Sequence[int]) -> list[int]:
    """Greedy min-fill order over the interaction graph of ``scopes`` (ties: min-weight, index)."""
    adj: dict[int, set[int]] = {}
    for s in scopes:
        for v in s:
            adj.setdefault(v, set()).update(u for u in s if u != v)
    left, order = set(eliminate), []
    while left:
        def cost(v):
            nb = list(adj.get(v, ()))
            fill = sum(1 for a in range(len(nb)) for b in range(a + 1, len(nb)) if nb[b] not in adj[nb[a]])
            weight = math.prod(cards[u] for u in nb) * cards[v]
            return fill, weight, v
        v = min(left, key=cost)
        nb = adj.pop(v, set())
        for a in nb:
            adj[a].discard(v)
            adj[a].update(nb - {a})
        left.discard(v)
        order.append(v)
    return order


def ancestors(parents: Sequence[Sequence[int]], nodes: Sequence[int]) -> set[int]:
    """``nodes`` and all their ancestors."""
    seen, stack = set(nodes), list(nodes)
    while stack:
        for p in parents[stack.pop()]:
            if p not in seen:
                seen.add(p)
                stack.append(p)
    return seen


def _factors(parents, cpts, keep: set[int], evidence: dict[int, int]) -> list[Factor]:
    """The CPTs of ``keep`` as factors, reduced by ``evidence`` (observed axes sliced away)."""
    out = []
    for i in sorted(keep):
        scope = tuple(parents[i]) + (i,)
        index = tuple(evidence.get(v, slice(None)) for v in scope)
        out.append((tuple(v for v in scope if v not in evidence), cpts[i][index]))
    return out


def _check(cards, query: Sequence[int], evidence: dict[int, int]) -> None:
    for v in query:
        if not 0 <= v < len(cards):
            raise ValueError(f"query variable {v} is not in 0..{len(cards) - 1}")
        if v in evidence:
            raise ValueError(f"variable {v} is both queried and observed")
    for v, k in evidence.items():
        if not 0 <= v < len(cards) or not 0 <= k < cards[v]:
            raise ValueError(f"evidence {v}={k} is out of range (variable {v} has {cards[v] if 0 <= v < len(cards) else '?'} states)")


def query(parents, cpts, variables: Sequence[int], evidence: dict[int, int] | None = None,
          normalize: bool = True) -> np.ndarray:
    """P(variables | evidence) by variable elimination.

    Args:
        parents, cpts: the network; variables: the query variables Q (joint over them).
        evidence: ``{variable: state}``; normalize: False returns the unnormalized
            ``P(Q, e)`` (its sum is ``P(e)``).
    Returns:
        array of shape ``(card of each variable in Q)``.
    """
    evidence = dict(evidence or {})
    cards = [c.shape[-1] for c in cpts]
    variables = list(variables)
    _check(cards, variables, evidence)
    keep = ancestors(parents, variables + list(evidence))
    factors = _factors(parents, cpts, keep, evidence)
    hidden = keep - set(variables) - set(evidence)
    for v in elimination_order([s for s, _ in factors], sorted(hidden), cards):
        touch = [f for f in factors if v in f[0]]
        factors = [f for f in factors if v not in f[0]]
        scope = tuple(dict.fromkeys(u for s, _ in touch for u in s if u != v))
        factors.append((scope, _einsum(touch, scope)))
    table = _einsum(factors, variables) if factors else np.ones([cards[v] for v in variables])
    if normalize:
        z = table.sum()
        if z <= 0:
            raise ValueError("the evidence has probability zero under this network")
        table = table / z
    return table


def marginals(parents, cpts, evidence: dict[int, int] | None = None) -> list[np.ndarray]:
    """P(X_i | evidence) for every variable (observed ones are one-hot): list of (card_i,)."""
    evidence = dict(evidence or {})
    out = []
    for i, c in enumerate(cpts):
        if i in evidence:
            out.append(np.eye(c.shape[-1])[evidence[i]])
        else:
            out.append(query(parents, cpts, [i], evidence))
    return out


def map_query(parents, cpts, variables: Sequence[int] | None = None,
              evidence: dict[int, int] | None = None) -> tuple[dict[int, int], float]:
    """argmax_q P(Q = q | e) and its probability; Q defaults to every unobserved variable.

    The variables outside Q are summed out first, then Q is max-eliminated keeping the argmax
    tables, and the assignment is read back in reverse order (max-product traceback).
    """
    evidence = dict(evidence or {})
    cards = [c.shape[-1] for c in cpts]
    variables = [v for v in range(len(cpts)) if v not in evidence] if variables is None else list(variables)
    _check(cards, variables, evidence)
    keep = ancestors(parents, variables + list(evidence))
    factors = _factors(parents, cpts, keep, evidence)
    pz = query(parents, cpts, [], evidence, normalize=False).sum() if evidence else 1.0
    for v in elimination_order([s for s, _ in factors], sorted(keep - set(variables) - set(evidence)), cards):
        touch = [f for f in factors if v in f[0]]
        factors = [f for f in factors if v not in f[0]]
        scope = tuple(dict.fromkeys(u for s, _ in touch for u in s if u != v))
        factors.append((scope, _einsum(touch, scope)))
    trace = []
    for v in elimination_order([s for s, _ in factors], variables, cards):
        touch = [f for f in factors if v in f[0]]
        factors = [f for f in factors if v not in f[0]]
        scope, table = _broadcast_product(touch) if touch else ((v,), np.ones(cards[v]))
        trace.append((v, scope, table))
        axis = scope.index(v)
        factors.append((scope[:axis] + scope[axis + 1:], table.max(axis)))
    best = float(np.prod([t for _, t in factors])) / pz
    assign: dict[int, int] = {}
    for v, scope, table in reversed(trace):
        index = tuple(slice(None) if u == v else assign[u] for u in scope)
        assign[v] = int(np.argmax(table[index]))
    return {v: assign[v] for v in variables}, best


# ------------------------------------------------------------------------------------ sampling
def _draw(cpt: np.ndarray, config: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws of X given parent configurations, without (n, k) temporaries.

    cpt: (q, k) rows (renormalized here); config: (n,) row indices; u: (n,) uniforms in [0, 1).
    Row j's CDF is shifted to [j, j + 1], so all rows form one increasing array to search.
    """
    q, k = cpt.shape
    cdf = np.cumsum(cpt, 1)
    cdf = cdf / cdf[:, -1:]
    flat = (cdf + np.arange(q)[:, None]).ravel()
    return np.minimum(np.searchsorted(flat, config + u, side="right") - config * k, k - 1)


def _uniform(n: int, generator: torch.Generator | None) -> np.ndarray:
    return torch.rand(n, generator=generator, dtype=torch.float64).numpy()


def ancestral_sample(parents, cpts, n: int, generator: torch.Generator | None = None,
                     evidence: dict[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Forward samples in topological order, observed variables clamped (likelihood weighting).

    Returns:
        samples (n, D) int64 and log-weights (n,) ``sum_{e} log P(x_e | pa_e)`` (zeros without evidence).
    """
    evidence = dict(evidence or {})
    x = np.zeros((n, len(cpts)), dtype=np.int64, order="F")  # columns contiguous: fast gathers
    logw = np.zeros(n)
    for i in topological_order([list(p) for p in parents]):
        shape = cpts[i].shape
        config = (np.ravel_multi_index(tuple(x[:, p] for p in parents[i]), shape[:-1])
                  if parents[i] else np.zeros(n, dtype=np.int64))
        table = cpts[i].reshape(-1, shape[-1])
        if i in evidence:
            x[:, i] = evidence[i]
            with np.errstate(divide="ignore"):
                logw += np.log(table[config, evidence[i]])
        else:
            x[:, i] = _draw(table, config, _uniform(n, generator))
    return x, logw


def likelihood_weighting(parents, cpts, n: int, evidence: dict[int, int],
                         generator: torch.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Weighted samples from P(x | e): (n, D) samples and (n,) normalized weights."""
    x, logw = ancestral_sample(parents, cpts, n, generator, evidence)
    if not np.isfinite(logw).any():
        raise ValueError("every weighted sample has weight zero: the evidence is impossible")
    w = np.exp(logw - logw.max())
    return x, w / w.sum()


def rejection_sample(parents, cpts, n: int, evidence: dict[int, int],
                     generator: torch.Generator | None = None, max_draws: int = 10_000_000) -> np.ndarray:
    """Exact samples from P(x | e): forward samples that disagree with ``e`` are dropped.

    Raises ValueError when fewer than ``n`` are accepted in ``max_draws`` draws (rare evidence:
    use likelihood weighting or `query`).
    """
    kept, got, drawn = [], 0, 0
    vars_, vals = list(evidence), np.array(list(evidence.values()), dtype=np.int64)
    while got < n:
        batch = max(1024, 2 * (n - got))
        if drawn + batch > max_draws:
            raise ValueError(f"rejection sampling accepted {got} of {drawn} draws; the evidence is too rare "
                             "(use likelihood weighting)")
        x, _ = ancestral_sample(parents, cpts, batch, generator)
        drawn += batch
        ok = (x[:, vars_] == vals).all(1) if vars_ else np.ones(batch, bool)
        kept.append(x[ok])
        got += int(ok.sum())
    return np.concatenate(kept)[:n]


def log_prob(parents, cpts, x: np.ndarray) -> np.ndarray:
    """log P(x) of complete rows: x (n, D) int -> (n,) ``sum_i log P(x_i | x_pa(i))``."""
    out = np.zeros(len(x))
    with np.errstate(divide="ignore"):
        for i, p in enumerate(parents):
            out += np.log(cpts[i][tuple(x[:, q] for q in p) + (x[:, i],)])
    return out
