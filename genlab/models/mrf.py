"""Pairwise discrete Markov random field (Ising for 2 states, Potts for K), trained by maximum
pseudo-likelihood (Besag 1975), sampled by single-site Gibbs sweeps (Geman & Geman 1984).

``p(x) ∝ exp(-E(x))``, ``E(x) = -sum_i theta_i[x_i] - sum_{i<j} J_ij[x_i, x_j]`` over all pairs
of the flattened example (a fully connected pairwise model; an L2 penalty on ``J`` keeps it
sparse-ish and the pseudo-likelihood well posed). Pseudo-likelihood:
``PL(x) = sum_i log softmax_k(theta_i[k] + sum_{j != i} J_ij[k, x_j])[x_i]``.

Density choice (documented): ``UNNORMALIZED``; ``log_partition`` enumerates every state when
there are at most ``exact_max_states`` of them, and `log_prob_exact` then gives exact
log-probabilities. Continuous data are refused: discretize them first.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor, nn

from ..data.preprocess import Preprocess
from ..data.spec import DataSpec, Kind
from ..protocol import Estimate
from ..protocol import register, Batch, Density, GenerativeModel, Loss, NotSupported, Objective, Partition
from ..samplers.gibbs import site_gibbs


@dataclass
class MRFConfig:
    l2: float = field(default=1e-3, metadata={"help": "L2 penalty on the pairwise couplings J"})
    sample_steps: int = field(default=200, metadata={"help": "Gibbs sweeps per call to sample()"})
    exact_max_states: int = field(default=1 << 20, metadata={
        "help": "enumerate at most this many joint states for the exact log Z"})
    # `sweeps` before the preview (genlab/report/preview.py) learnt to cut every family's sample_steps
    renamed: ClassVar[dict[str, str]] = {"sweeps": "sample_steps"}


@register("mrf")
class MRF(GenerativeModel, Partition):
    """Pairwise Ising / Potts Markov random field: pseudo-likelihood, Gibbs sampling.

    Parameters ``theta`` (D, K) and ``J_raw`` (D, D, K, K); the couplings used are
    ``J = sym(J_raw)`` with ``J_ij[k, l] = J_ji[l, k]`` and ``J_ii = 0``. Impossible states of a
    column with fewer than K values (``spec.cardinalities``) get potential ``-inf``."""
    taxonomy = "undirected graphical model"

    Config = MRFConfig
    density = Density.UNNORMALIZED
    data_kinds = frozenset(Kind) - {Kind.CONTINUOUS}
    sampling = "slow, Gibbs"
    training = "pseudo-likelihood"
    default_epochs = 100
    default_train = {"lr": 1e-2}

    def __init__(self, spec: DataSpec, config: MRFConfig | None = None):
        config = config or MRFConfig()
        super().__init__(spec, config)
        if config.l2 < 0 or config.sample_steps < 1:
            raise ValueError("mrf: l2 must be >= 0 and sample_steps (Gibbs sweeps) >= 1")
        D, K = spec.dim, spec.levels
        self.theta = nn.Parameter(torch.zeros(D, K))
        self.J_raw = nn.Parameter(torch.zeros(D, D, K, K))
        cards = torch.tensor(spec.cardinalities or [K] * D)
        self.register_buffer("valid", torch.arange(K)[None, :] < cards[:, None])  # (D, K)

    def make_preprocess(self, spec: DataSpec) -> Preprocess:
        return Preprocess()

    def couplings(self) -> Tensor:
        """Symmetric couplings with an empty diagonal: (D, D, K, K)."""
        J = 0.5 * (self.J_raw + self.J_raw.permute(1, 0, 3, 2))
        return J * (1 - torch.eye(self.spec.dim, dtype=J.dtype, device=J.device))[:, :, None, None]

    def _unary(self) -> Tensor:
        return self.theta.masked_fill(~self.valid, -math.inf)

    def _onehot(self, z: Tensor) -> Tensor:
        return nn.functional.one_hot(z.reshape(len(z), -1).long(), self.spec.levels).to(self.theta.dtype)

    def conditional_logits(self, z: Tensor) -> Tensor:
        """log-potentials of every site given the others: (n, *event) -> (n, D, K)."""
        D, K = self.theta.shape
        J = self.couplings().permute(1, 3, 0, 2).reshape(D * K, D * K)  # [(j, l), (i, k)]
        return self._unary() + (self._onehot(z).reshape(len(z), D * K) @ J).reshape(len(z), D, K)

    def neg_energy(self, z: Tensor) -> Tensor:
        """-E(z) for model-space (integer) z: (n, *event) -> (n,)."""
        X = self._onehot(z)
        unary = (X * self.theta).sum((1, 2))
        D, K = self.theta.shape
        flat = X.reshape(len(X), D * K)
        pair = 0.5 * ((flat @ self.couplings().permute(0, 2, 1, 3).reshape(D * K, D * K)) * flat).sum(1)
        return unary + pair

    def energy(self, x: Tensor) -> Tensor:
        """E(x) in data space (the identity preprocessing): (n,)."""
        return -self.neg_energy(self.check_input(x))

    # -- training -------------------------------------------------------------------------------
    def pl_loss(self, batch: Batch) -> Loss:
        """Mean negative log pseudo-likelihood per example plus ``l2 |J|^2`` (Besag 1975)."""
        z = batch.x
        logp = self.conditional_logits(z).log_softmax(-1)
        idx = z.reshape(len(z), -1, 1).long()
        npl = -logp.gather(2, idx).squeeze(2).sum(1).mean()
        loss = npl + self.config.l2 * self.couplings().square().sum()
        return Loss(loss, {"neg_pseudo_ll": float(npl.detach())})

    def objectives(self) -> list[Objective]:
        return [Objective("pl", list(self.parameters()), self.pl_loss)]

    def _sample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        J, unary = self.couplings(), self._unary()
        u = torch.rand(n, self.spec.dim, generator=generator, dtype=J.dtype, device=J.device)
        x = (u * self.valid.sum(1)).floor().long()  # uniform over each site's valid states

        D, K = self.theta.shape
        rows = J.permute(0, 1, 3, 2).reshape(D, D * K, K)  # rows[i][(j, l), k] = J_ij[k, l]

        def site(x: Tensor, i: int) -> Tensor:
            X = nn.functional.one_hot(x, K).to(J.dtype).reshape(len(x), D * K)
            return unary[i] + X @ rows[i]

        x = site_gibbs(x, site, self.config.sample_steps, generator)
        return x.to(J.dtype).reshape(n, *self.spec.event_shape)

    # -- normalization --------------------------------------------------------------------------
    def n_states(self) -> int:
        return int(torch.prod(self.valid.sum(1).double()))

    @torch.no_grad()
    def all_states(self) -> Tensor:
        """Every joint state, (prod of cardinalities, D) int64, in row-major order."""
        if self.n_states() > self.config.exact_max_states:
            raise NotSupported(f"mrf: {self.n_states():.3g} joint states exceed exact_max_states="
                               f"{self.config.exact_max_states}; log Z by enumeration is out of reach")
        cards = self.valid.sum(1).tolist()
        grids = torch.meshgrid(*[torch.arange(c, device=self.theta.device) for c in cards], indexing="ij")
        return torch.stack([g.reshape(-1) for g in grids], 1)

    def partition_method(self) -> str:
        return "exact"

    @torch.no_grad()
    def log_partition(self, method: str = "auto", *, steps: int | None = None, chains: int | None = None,
                      generator: torch.Generator | None = None) -> tuple[Estimate, str]:
        """Exact ``log Z = logsumexp_x -E(x)`` by enumeration, in float64 (the only method)."""
        if method not in ("auto", "exact"):
            raise ValueError(f"mrf: log_partition has only the exact method, got {method!r}")
        states = self.all_states()
        log_z = float(torch.logsumexp(torch.cat([self.neg_energy(s).double() for s in states.split(1 << 15)]), 0))
        return Estimate(log_z, 0.0, 0), "exact"

    @torch.no_grad()
    def log_prob_exact(self, x: Tensor) -> Tensor:
        """Exact ``log p(x) = -E(x) - log Z`` (small models only): (n,)."""
        return self.log_prob_estimate(x)[0]
