"""Discrete Bayesian network: ``P(x) = prod_i P(x_i | x_pa(i))`` (Pearl 1988; Koller & Friedman 2009).

The structure is learned (Chow-Liu tree, or hill climbing on BIC / BDeu with a maximum in-degree)
or read from a BIF file (``network='bif:asia'`` or a path, with ``structure='network'``); the
CPTs are maximum-likelihood or Bayesian (BDeu / Dirichlet posterior mean) estimates from the
counts, or EM estimates when values are missing (`fit_em`). Inference is exact variable
elimination (`genlab.pgm.inference`), so ``log_prob`` is the exact ``log P(x)``.

Continuous data are refused (`NotSupported`): discretize them first
(``genlab.data.tabular.discretize``). An image is treated as a vector of ``C*H*W`` variables.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np
import torch
from torch import Tensor

from ..pgm.bif import Network, read_bif, write_bif
from ..data.preprocess import Preprocess
from ..data.spec import DataSpec, Kind
from ..pgm import inference as inf
from ..pgm import learn
from ..protocol import register, Batch, Density, DiscreteChainRule, GenerativeModel, Imputer, Loss, Objective


@dataclass
class BayesNetConfig:
    structure: Literal["chow-liu", "hill-climb", "empty", "network"] = field(default="chow-liu", metadata={
        "help": "chow-liu | hill-climb | empty | network (the graph of `network`)"})
    network: str = field(default="", metadata={
        "help": "BIF file or bif:NAME (asia, sachs, alarm bundled): variable and state names, and "
                "the graph when structure=network"})
    score: Literal["bic", "bdeu"] = field(default="bic", metadata={"help": "hill-climb score: bic | bdeu"})
    max_parents: int = field(default=3, metadata={"help": "maximum in-degree for hill climbing"})
    prior: Literal["mle", "bdeu", "dirichlet"] = field(default="bdeu", metadata={
        "help": "CPT estimate: mle | bdeu | dirichlet (posterior means; unseen rows stay non-zero)"})
    ess: float = field(default=1.0, metadata={
        "help": "equivalent sample size of the BDeu prior / score, or the Dirichlet pseudo-count"})
    max_iter: int = field(default=10_000, metadata={"help": "maximum hill-climbing moves"})


@register("bayesnet")
class BayesNet(GenerativeModel, Imputer, DiscreteChainRule):
    """Discrete Bayesian network: exact inference, Chow-Liu / hill-climbing structure, BIF.

    Buffers: ``parent_table`` (D, P) int64 parent indices padded with -1, and ``cpt_flat``
    (sum_i q_i r_i,) float64: each CPT of shape (*cards of parents, r_i) flattened, in order."""
    in_default_compare = True  # stands for its row in `genlab compare`'s default set
    taxonomy = "directed graphical model"

    Config = BayesNetConfig
    density = Density.EXACT
    data_kinds = frozenset(Kind) - {Kind.CONTINUOUS}
    sampling = "fast, ancestral"
    training = "MLE / Bayesian (counts), EM"
    default_epochs = 1  # one closed-form fit

    def __init__(self, spec: DataSpec, config: BayesNetConfig | None = None):
        config = config or BayesNetConfig()
        super().__init__(spec, config)
        if config.max_parents < 0 or config.ess <= 0:
            raise ValueError("bayesnet: max_parents must be >= 0 and ess > 0")
        learn.estimate_cpt(np.ones((2, 2)), config.prior)  # validates the prior's name
        self.cards = list(spec.cardinalities or [spec.levels] * spec.dim)
        D = spec.dim
        self.names = list(spec.feature_names or [f"x{i}" for i in range(D)])
        self.states = [[f"s{k}" for k in range(c)] for c in self.cards]
        self.file: Network | None = None
        if config.network:
            self.file = read_bif(config.network)
            if self.file.cards != self.cards:
                raise ValueError(f"bayesnet: the network {config.network!r} has {len(self.file.cards)} variables "
                                 f"with cardinalities {self.file.cards}, but the data have {self.cards}")
            self.names, self.states = list(self.file.names), [list(s) for s in self.file.states]
        self.register_buffer("parent_table", torch.full((D, 1), -1, dtype=torch.int64))
        self.register_buffer("cpt_flat", torch.cat([torch.full((c,), 1.0 / c, dtype=torch.float64) for c in self.cards]))

    @classmethod
    def from_network(cls, net: Network | str, **config) -> "BayesNet":
        """A model holding a network's own CPTs (no training): ``BayesNet.from_network('bif:alarm')``."""
        source = net if isinstance(net, str) else ""
        net = read_bif(net) if isinstance(net, str) else net
        spec = DataSpec((len(net.names),), Kind.CATEGORICAL, levels=max(net.cards),
                        feature_names=tuple(net.names), cardinalities=tuple(net.cards))
        model = cls(spec, BayesNetConfig(**{"structure": "network", "network": source, **config}))
        model.names, model.states, model.file = list(net.names), [list(s) for s in net.states], net
        model.set_network(net.parents, net.cpts)
        return model

    def make_preprocess(self, spec: DataSpec) -> Preprocess:
        return Preprocess()  # the CPTs score the discrete values themselves

    # -- the network as numpy ---------------------------------------------------------------
    def _numpy(self) -> tuple[list[list[int]], list[np.ndarray]]:
        """Parent lists and CPT views, cached until a buffer is replaced or changed in place."""
        key = tuple((id(t), t._version) for t in (self.parent_table, self.cpt_flat))
        if getattr(self, "_cache", (None,))[0] != key:
            parents = [[int(p) for p in row if p >= 0] for row in self.parent_table.tolist()]
            flat, cpts, at = self.cpt_flat.detach().cpu().numpy().copy(), [], 0
            for i, ps in enumerate(parents):
                shape = tuple(self.cards[p] for p in ps) + (self.cards[i],)
                size = int(np.prod(shape))
                cpts.append(flat[at:at + size].reshape(shape))
                at += size
            self._cache = (key, parents, cpts)
        return self._cache[1], self._cache[2]

    @property
    def parents(self) -> list[list[int]]:
        return [list(p) for p in self._numpy()[0]]

    @property
    def cpts(self) -> list[np.ndarray]:
        return list(self._numpy()[1])

    def set_network(self, parents: Sequence[Sequence[int]], cpts: Sequence[np.ndarray]) -> None:
        """Store a graph and its CPTs (shapes are checked, the graph must be acyclic)."""
        Network(self.names, self.states, [list(p) for p in parents], [np.asarray(c, float) for c in cpts]).check()
        width = max(1, max(len(p) for p in parents))
        table = torch.full((len(parents), width), -1, dtype=torch.int64)
        for i, ps in enumerate(parents):
            table[i, :len(ps)] = torch.tensor(list(ps), dtype=torch.int64)
        self.parent_table = table.to(self.cpt_flat.device)
        self.cpt_flat = torch.from_numpy(np.concatenate([np.asarray(c, np.float64).ravel() for c in cpts])).to(self.cpt_flat.device)

    def network(self) -> Network:
        """The fitted network (names, state names, parents, CPTs)."""
        return Network(list(self.names), [list(s) for s in self.states], self.parents, self.cpts)

    def to_bif(self, path: str) -> None:
        """Write the fitted network as a BIF file (``.bif`` or ``.bif.gz``)."""
        write_bif(self.network(), path)

    # -- learning -----------------------------------------------------------------------------
    def _codes(self, x: Tensor | np.ndarray) -> np.ndarray:
        x = self.check_input(x).reshape(len(x), -1)
        codes = x.detach().cpu().numpy().astype(np.int64)
        over = codes >= np.asarray(self.cards)
        if over.any():
            j = int(np.argwhere(over)[0, 1])
            raise ValueError(f"bayesnet: column {j} ({self.names[j]}) has value {codes[over][0]}, but only "
                             f"{self.cards[j]} states 0..{self.cards[j] - 1}")
        return codes

    def learn_structure(self, codes: np.ndarray) -> list[list[int]]:
        """Parent lists from complete data ``codes: (n, D)`` with the configured method."""
        c = self.config
        if c.structure == "network":
            if self.file is None:
                raise ValueError("bayesnet: structure='network' needs network='bif:NAME' or a BIF path")
            return [list(p) for p in self.file.parents]
        if c.structure == "empty":
            return [[] for _ in self.cards]
        if c.structure == "chow-liu":
            return learn.chow_liu(codes, self.cards)
        return learn.hill_climb(codes, self.cards, c.score, c.max_parents, c.ess, c.max_iter)

    def fit_complete(self, x: Tensor | np.ndarray) -> "BayesNet":
        """Structure (as configured) and CPTs from complete data ``x: (n, *event_shape)``."""
        codes = self._codes(x)
        parents = self.learn_structure(codes)
        self.set_network(parents, learn.fit_parameters(codes, parents, self.cards, self.config.prior, self.config.ess))
        return self

    def fit_em(self, x: Tensor | np.ndarray, missing: Tensor | np.ndarray, iters: int = 50,
               tol: float = 1e-6) -> list[float]:
        """CPTs by EM when entries are missing; the structure is learned from the complete rows
        (or taken from the network file). Args: x (n, *event_shape) with any value where
        ``missing`` (same shape, bool) is True. Returns the observed-data log-likelihood per
        iteration."""
        miss = torch.as_tensor(missing, dtype=torch.bool).reshape(len(x), -1).cpu().numpy()
        x = torch.as_tensor(x, dtype=torch.float64).reshape(len(x), -1).clone()
        x[torch.from_numpy(miss)] = 0
        codes = self._codes(x)
        codes[miss] = -1
        full = codes[~miss.any(1)]
        if self.config.structure != "network" and len(full) == 0:
            raise ValueError("bayesnet.fit_em: no complete row to learn the structure from; use structure='network'")
        parents = self.learn_structure(full) if len(full) else self.learn_structure(codes)
        start = learn.fit_parameters(full, parents, self.cards, "dirichlet", 1.0) if len(full) else \
            [np.full(tuple(self.cards[p] for p in ps) + (self.cards[i],), 1.0 / self.cards[i]) for i, ps in enumerate(parents)]
        prior = self.config.prior if self.config.prior != "mle" else "dirichlet"  # EM needs non-zero rows
        cpts, history = learn.em(codes, parents, self.cards, start, iters, tol, prior, self.config.ess)
        self.set_network(parents, cpts)
        return history

    def objectives(self) -> list[Objective]:
        return [Objective("fit", [], self._fit_step, full_batch=True)]

    @torch.no_grad()
    def _fit_step(self, batch: Batch) -> Loss:
        self.fit_complete(batch.x)
        nll = -self._log_prob(batch.x).mean()
        return Loss(nll, {"nll": float(nll), "edges": float(sum(map(len, self.parents)))}, done=True)

    # -- protocol -------------------------------------------------------------------------------
    def _log_prob(self, z: Tensor, *, condition: Tensor | None = None,
                  generator: torch.Generator | None = None) -> Tensor:
        lp = inf.log_prob(self.parents, self.cpts, self._codes(z))
        return torch.from_numpy(lp).to(device=z.device, dtype=self.cpt_flat.dtype)

    def _sample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        x, _ = inf.ancestral_sample(self.parents, self.cpts, n, generator)
        return self._tensor(x)

    def _tensor(self, codes: np.ndarray) -> Tensor:
        t = torch.from_numpy(np.ascontiguousarray(codes)).to(device=self.cpt_flat.device, dtype=self.cpt_flat.dtype)
        return t.reshape(len(codes), *self.spec.event_shape)

    # -- inference ------------------------------------------------------------------------------
    def _index(self, v: int | str) -> int:
        if isinstance(v, str):
            if v not in self.names:
                raise ValueError(f"bayesnet: unknown variable {v!r}; variables: {self.names}")
            return self.names.index(v)
        return int(v)

    def _evidence(self, evidence: dict | None) -> dict[int, int]:
        out = {}
        for k, s in (evidence or {}).items():
            i = self._index(k)
            out[i] = self.states[i].index(s) if isinstance(s, str) else int(s)
        return out

    def query(self, variables: Sequence[int | str], evidence: dict | None = None) -> np.ndarray:
        """P(variables | evidence) (joint table, one axis per variable) by variable elimination.
        Variables and evidence take indices or names; evidence states take indices or names."""
        return inf.query(self.parents, self.cpts, [self._index(v) for v in variables], self._evidence(evidence))

    def marginals(self, evidence: dict | None = None) -> list[np.ndarray]:
        """P(X_i | evidence) for every variable: list of (card_i,) arrays."""
        return inf.marginals(self.parents, self.cpts, self._evidence(evidence))

    def map(self, evidence: dict | None = None, variables: Sequence[int | str] | None = None) -> tuple[dict[int, int], float]:
        """The most probable assignment of ``variables`` (default: all unobserved) given evidence,
        and its conditional probability."""
        vs = None if variables is None else [self._index(v) for v in variables]
        return inf.map_query(self.parents, self.cpts, vs, self._evidence(evidence))

    @torch.no_grad()
    def sample_given(self, n: int, evidence: dict, method: str = "rejection",
                     generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Samples from P(x | evidence): (n, *event_shape) and (n,) weights (uniform for
        ``rejection``; normalized importance weights for ``likelihood`` weighting)."""
        ev = self._evidence(evidence)
        if method == "rejection":
            x, w = inf.rejection_sample(self.parents, self.cpts, n, ev, generator), np.full(n, 1.0 / n)
        elif method == "likelihood":
            x, w = inf.likelihood_weighting(self.parents, self.cpts, n, ev, generator)
        else:
            raise ValueError(f"sample_given: method must be rejection or likelihood, got {method!r}")
        return self._tensor(x), torch.from_numpy(w)

    # -- DiscreteChainRule: CPT rows given the parents, in a topological order ---------------------
    def chain_order(self) -> list[int]:
        """Variables in a topological order: repeated scans in index order, each taking every
        variable whose parents are placed (compressed files record no order: keep this one)."""
        parents = self.parents
        order, done = [], set()
        while len(order) < len(parents):
            for i, ps in enumerate(parents):
                if i not in done and all(p in done for p in ps):
                    order.append(i)
                    done.add(i)
        return order

    def chain_conditional(self, partial: np.ndarray, d: int) -> np.ndarray:
        """``P(x_d = k | parents)``: partial (n, D) int64 states -> (n, levels) float64 CPT rows
        (zero past the variable's own cardinality)."""
        parents, cpt = self.parents[d], self.cpts[d]
        rows = cpt[tuple(partial[:, p] for p in parents)] if parents else np.broadcast_to(cpt, (len(partial), len(cpt)))
        out = np.zeros((len(partial), self.spec.levels))
        out[:, :rows.shape[1]] = rows
        return out

    @torch.no_grad()
    def impute(self, x: Tensor | np.ndarray, missing: Tensor | np.ndarray, method: str = "mode",
               generator: torch.Generator | None = None) -> Tensor:
        """Fill the entries where ``missing`` is True: ``mode`` gives the joint posterior mode of
        each row's missing entries given its observed ones (exact MAP); ``sample`` draws them
        exactly from the posterior, one variable at a time (chain rule with exact marginals).

        Args:
            x: (n, *event_shape); values under the mask are ignored. missing: same shape, bool.
        Returns:
            (n, *event_shape) completed examples.
        """
        if method not in ("mode", "sample"):
            raise ValueError(f"impute: method must be mode or sample, got {method!r}")
        miss = torch.as_tensor(missing, dtype=torch.bool).reshape(len(x), -1).cpu().numpy()
        xt = torch.as_tensor(x, dtype=torch.float64).reshape(len(x), -1).clone()
        xt[torch.from_numpy(miss)] = 0
        codes = self._codes(xt)
        parents, cpts = self.parents, self.cpts
        for r in np.flatnonzero(miss.any(1)):
            ev = {i: int(codes[r, i]) for i in np.flatnonzero(~miss[r])}
            hidden = [int(i) for i in np.flatnonzero(miss[r])]
            if method == "mode":
                assign, _ = inf.map_query(parents, cpts, hidden, ev)
            else:
                assign = {}
                for i in hidden:
                    p = inf.query(parents, cpts, [i], {**ev, **assign})
                    u = float(torch.rand((), generator=generator, dtype=torch.float64))
                    assign[i] = int(min(np.searchsorted(np.cumsum(p), u * p.sum(), side="right"), len(p) - 1))
            for i, k in assign.items():
                codes[r, i] = k
        return self._tensor(codes)
