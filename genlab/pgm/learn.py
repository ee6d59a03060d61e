"""Learning discrete Bayesian networks from data (numpy, float64).

Data are ``(n, D)`` int64 arrays with values ``0 .. cards[i]-1`` (``-1`` marks a missing value
for `em`). References: Koller & Friedman 2009 ch. 17-19; BDeu: Heckerman, Geiger & Chickering
1995; BIC: Schwarz 1978; Chow & Liu 1968; EM: Dempster, Laird & Rubin 1977 / Lauritzen 1995.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree
from scipy.special import gammaln

from .inference import query


def family_counts(x: np.ndarray, i: int, parents: Sequence[int], cards: Sequence[int],
                  weights: np.ndarray | None = None) -> np.ndarray:
    """N[pa, x_i]: (weighted) counts of each parent configuration and state, shape (*cards[pa], cards[i])."""
    shape = tuple(cards[p] for p in parents) + (cards[i],)
    flat = np.ravel_multi_index(tuple(x[:, p] for p in parents) + (x[:, i],), shape)
    return np.bincount(flat, weights=weights, minlength=int(np.prod(shape))).reshape(shape).astype(np.float64)


def estimate_cpt(counts: np.ndarray, prior: str = "mle", ess: float = 1.0) -> np.ndarray:
    """CPT from family counts.

    ``mle``: ``N_jk / N_j`` (a parent configuration never seen gets the uniform row);
    ``bdeu``: posterior mean under Dirichlet(ess / (q r)) (Heckerman et al. 1995);
    ``dirichlet``: posterior mean with ``ess`` pseudo-counts in every cell (Laplace for 1).
    """
    r = counts.shape[-1]
    if prior == "mle":
        alpha = 0.0
    elif prior == "bdeu":
        alpha = ess / (counts.size)  # q * r cells
    elif prior == "dirichlet":
        alpha = ess
    else:
        raise ValueError(f"unknown prior {prior!r}; use mle, bdeu or dirichlet")
    c = counts + alpha
    tot = c.sum(-1, keepdims=True)
    return np.where(tot > 0, c / np.where(tot > 0, tot, 1), 1.0 / r)


def local_score(counts: np.ndarray, score: str = "bic", ess: float = 1.0) -> float:
    """Decomposable score of one family from its counts (higher is better).

    ``bic``: ``sum N_jk log(N_jk / N_j) - (log N / 2) q (r - 1)``;
    ``bdeu``: ``log`` of the BDeu marginal likelihood with equivalent sample size ``ess``.
    """
    r = counts.shape[-1]
    c = counts.reshape(-1, r)
    nj = c.sum(1)
    if score == "bic":
        with np.errstate(divide="ignore", invalid="ignore"):
            ll = np.where(c > 0, c * np.log(c / nj[:, None]), 0.0).sum()
        return float(ll - 0.5 * np.log(max(nj.sum(), 1.0)) * c.shape[0] * (r - 1))
    if score == "bdeu":
        a_jk, a_j = ess / c.size, ess / c.shape[0]
        return float((gammaln(a_j) - gammaln(a_j + nj)).sum() + (gammaln(a_jk + c) - gammaln(a_jk)).sum())
    raise ValueError(f"unknown score {score!r}; use bic or bdeu")


def fit_parameters(x: np.ndarray, parents, cards, prior: str = "mle", ess: float = 1.0) -> list[np.ndarray]:
    """CPTs of every variable from complete data ``x: (n, D)``."""
    return [estimate_cpt(family_counts(x, i, p, cards), prior, ess) for i, p in enumerate(parents)]


# ------------------------------------------------------------------------------------ structure
def mutual_information(x: np.ndarray, cards: Sequence[int]) -> np.ndarray:
    """Empirical mutual information (nats) of every pair of columns: (D, D), zero diagonal."""
    n, d = x.shape
    marg = [np.bincount(x[:, i], minlength=cards[i]) / n for i in range(d)]
    mi = np.zeros((d, d))
    for i in range(d):
        for j in range(i + 1, d):
            joint = np.bincount(x[:, i] * cards[j] + x[:, j], minlength=cards[i] * cards[j]).reshape(cards[i], cards[j]) / n
            nz = joint > 0
            mi[i, j] = mi[j, i] = (joint[nz] * np.log(joint[nz] / np.outer(marg[i], marg[j])[nz])).sum()
    return mi


def chow_liu(x: np.ndarray, cards: Sequence[int], root: int = 0) -> list[list[int]]:
    """The maximum-likelihood tree (Chow & Liu 1968): maximum spanning tree of the pairwise
    mutual information, directed away from ``root``. Returns parent lists (at most one each)."""
    d = x.shape[1]
    if d == 1:
        return [[]]
    mi = mutual_information(x, cards)
    # minimum spanning tree of (max - MI + 1): positive weights, so no edge reads as "absent"
    w = np.triu(mi.max() - mi + 1.0, 1)
    tree = minimum_spanning_tree(w)
    tree = tree + tree.T
    order, pred = breadth_first_order(tree, root, directed=False, return_predecessors=True)
    return [[int(pred[i])] if pred[i] >= 0 else [] for i in range(d)]


def _reaches(parents: list[list[int]], src: int, dst: int) -> bool:
    """True if a directed path src -> ... -> dst exists (walking parents back from dst)."""
    seen, stack = set(), [dst]
    while stack:
        v = stack.pop()
        if v == src:
            return True
        for p in parents[v]:
            if p not in seen:
                seen.add(p)
                stack.append(p)
    return False


def hill_climb(x: np.ndarray, cards: Sequence[int], score: str = "bic", max_parents: int = 3,
               ess: float = 10.0, max_iter: int = 10_000, start: list[list[int]] | None = None,
               tabu: int = 100, eps: float = 1e-4) -> list[list[int]]:
    """Greedy search over DAGs with edge additions, deletions and reversals, from ``start``
    (default: the empty graph), keeping the in-degree at most ``max_parents``; a tabu list of
    the last ``tabu`` operations prevents undoing them (as pgmpy's HillClimbSearch). Stops when
    no operation improves the decomposable ``score`` by more than ``eps``."""
    d = x.shape[1]
    parents = [list(p) for p in (start or [[] for _ in range(d)])]
    cache: dict[tuple[int, tuple[int, ...]], float] = {}

    def ls(i: int, ps: Sequence[int]) -> float:
        key = (i, tuple(sorted(ps)))
        if key not in cache:
            cache[key] = local_score(family_counts(x, i, key[1], cards), score, ess)
        return cache[key]

    recent: list[tuple] = []
    for _ in range(max_iter):
        best, op = eps, None
        for v in range(d):
            for u in range(d):
                if u == v:
                    continue
                if u in parents[v]:
                    rest = [p for p in parents[v] if p != u]
                    gain = ls(v, rest) - ls(v, parents[v])
                    if gain > best and ("-", u, v) not in recent:
                        best, op = gain, ("-", u, v)
                    if len(parents[u]) < max_parents and ("flip", u, v) not in recent:
                        parents[v] = rest
                        ok = not _reaches(parents, u, v)
                        parents[v] = rest + [u]
                        gain2 = gain + ls(u, parents[u] + [v]) - ls(u, parents[u])
                        if ok and gain2 > best:
                            best, op = gain2, ("flip", u, v)
                elif (len(parents[v]) < max_parents and v not in parents[u] and ("+", u, v) not in recent
                      and not _reaches(parents, v, u)):
                    gain = ls(v, parents[v] + [u]) - ls(v, parents[v])
                    if gain > best:
                        best, op = gain, ("+", u, v)
        if op is None:
            break
        kind, u, v = op
        if kind == "+":
            parents[v].append(u)
            recent.append(("-", u, v))
        elif kind == "-":
            parents[v].remove(u)
            recent.append(("+", u, v))
        else:
            parents[v].remove(u)
            parents[u].append(v)
            recent.append(("flip", v, u))
        recent = recent[-tabu:] if tabu > 0 else []
    return [sorted(p) for p in parents]


def structural_hamming_distance(a: list[list[int]], b: list[list[int]]) -> int:
    """Edges to add, delete or reverse to turn DAG ``a`` into ``b`` (a reversal counts once)."""
    ea = {(p, i) for i, ps in enumerate(a) for p in ps}
    eb = {(p, i) for i, ps in enumerate(b) for p in ps}
    und = lambda e: {frozenset(t) for t in e}  # noqa: E731
    return len(und(ea) ^ und(eb)) + sum(1 for (p, i) in ea if (i, p) in eb)


# ------------------------------------------------------------------------------------ EM
def em(x: np.ndarray, parents, cards, cpts: list[np.ndarray], iters: int = 50, tol: float = 1e-6,
       prior: str = "dirichlet", ess: float = 1.0, max_configs: int = 1 << 16) -> tuple[list[np.ndarray], list[float]]:
    """Expectation-maximisation for CPTs when entries of ``x`` are missing (``-1``).

    E step: for each distinct row, the exact posterior over its missing entries by variable
    elimination (`query`), spread over the completions as weighted expected counts; M step:
    `estimate_cpt` of the expected counts (a Dirichlet prior keeps rows away from zero).

    Returns:
        the CPTs and the observed-data log-likelihood before each iteration (non-decreasing for
        ``prior='mle'``; with a prior the MAP objective rises instead).
    """
    rows, mult = np.unique(x, axis=0, return_counts=True)
    history: list[float] = []
    for _ in range(iters):
        done, w_all, ll = [], [], 0.0
        for r, m in zip(rows, mult):
            miss = [i for i in range(len(r)) if r[i] < 0]
            ev = {i: int(r[i]) for i in range(len(r)) if r[i] >= 0}
            if not miss:
                pz = float(np.prod([cpts[i][tuple(r[p] for p in parents[i]) + (r[i],)] for i in range(len(r))]))
                joint, filled = np.asarray(pz), r[None].copy()
            else:
                size = int(np.prod([cards[i] for i in miss]))
                if size > max_configs:
                    raise ValueError(f"em: a row misses {len(miss)} values ({size} completions > {max_configs})")
                joint = query(parents, cpts, miss, ev, normalize=False)
                pz = joint.sum()
                filled = np.repeat(r[None], size, 0)
                filled[:, miss] = np.stack(np.unravel_index(np.arange(size), joint.shape), 1)
            if pz <= 0:
                raise ValueError("em: a row has probability zero under the current CPTs; use prior='dirichlet'")
            ll += m * np.log(pz)
            done.append(filled)
            w_all.append(m * (joint / pz).ravel())
        history.append(float(ll))
        full, w = np.concatenate(done), np.concatenate(w_all)
        cpts = [estimate_cpt(family_counts(full, i, p, cards, w), prior, ess) for i, p in enumerate(parents)]
        if len(history) > 1 and abs(history[-1] - history[-2]) < tol * abs(history[-1]):
            break
    return cpts, history
