"""Gaussian mixture with full covariances, fitted by expectation-maximisation.

``p(z) = sum_k w_k N(z; mu_k, L_k L_k^T)`` in model space. Initialised like scikit-learn's
``init_params='kmeans'`` (k-means++ seeding, Arthur & Vassilvitskii 2007, then Lloyd
iterations); each full-batch objective call is one E step and one M step (Dempster et al. 1977).

The covariance jitter ``reg`` (scikit-learn's ``reg_covar``) is chosen by default, like KDE's
bandwidth, on the validation split: each value of `REG_GRID` is fitted from the same k-means
start by a few EM iterations and the one with the highest mean validation log-likelihood is kept
(buffer ``reg_used``). 1e-6 lets full covariances collapse onto the training points in high
dimension (64-D digits); a large value blurs a low-dimensional density (2-D moons).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from ..taxonomy import BASELINE
from ..protocol import register, Batch, Density, GaussianMixtureForm, GenerativeModel, Loss, Objective
from ..objectives.shards import my_rows, total
from .gaussian import psd_cholesky

_CHUNK = 1 << 23  # elements of the (rows, K, D) temporaries: keeps memory near 64 MB in float64

# reg values tried when reg is None. Model space has unit variance per coordinate, so a value is the
# share of a coordinate's variance added to every component: up to 1e-3 the fits barely differ
# (grid coarse), 1e-2 to 1 is where the choice matters when components have few points per dimension.
REG_GRID = (1e-6, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)
# without a validation split there is nothing to choose on (the train likelihood always prefers the
# smallest value): scikit-learn's reg_covar, as every gmm fitted before the search
REG_FALLBACK = 1e-6
# EM iterations per candidate: the candidates' validation ranking on digits and moons is already
# that of the converged fits after 0-5 iterations, and 8 x 5 iterations cost about one full EM fit
SEARCH_ITERS = 5


@dataclass
class GMMConfig:
    n_components: int = field(default=5, metadata={"max": 100_000, "help": "number of mixture components"})
    reg: float | None = field(default=None, metadata={
        "min": 0, "help": "added to each covariance diagonal (model space: unit variance per coordinate), like "
        "scikit-learn's reg_covar; None chooses it by validation likelihood among 1e-6, 1e-4, 1e-3, 1e-2, "
        "0.03, 0.1, 0.3, 1 (1e-6 without validation data)"})
    tol: float = field(default=1e-4, metadata={
        "help": "stop EM when the mean train log-likelihood (nats/example) improves by less"})
    kmeans_iters: int = field(default=20, metadata={"help": "Lloyd iterations of the k-means init"})
    init_seed: int = field(default=0, metadata={
        "help": "seed of the k-means++ initialisation and of the dequantization noise EM fits on"})
    renamed: ClassVar[dict[str, str]] = {"seed": "init_seed"}  # its name in runs saved before the rename


def component_log_prob(z: Tensor, means: Tensor, scale_tril: Tensor) -> Tensor:
    """log N(z_n; mu_k, L_k L_k^T) for every example and component, in row chunks.

    Args:
        z: (n, D); means: (K, D); scale_tril: (K, D, D) lower triangular.
    Returns:
        (n, K) log-densities.
    """
    K, D = means.shape
    eye = torch.eye(D, dtype=z.dtype, device=z.device).expand(K, D, D)
    inv = torch.linalg.solve_triangular(scale_tril, eye, upper=False)  # L_k^{-1}: (K, D, D)
    shift = torch.einsum("kd,ked->ke", means, inv)
    const = -scale_tril.diagonal(dim1=1, dim2=2).log().sum(1) - 0.5 * D * math.log(2 * math.pi)
    step = max(1, _CHUNK // (K * D))
    out = [-0.5 * (torch.einsum("nd,ked->nke", c, inv) - shift).square().sum(2) + const
           for c in z.split(step)]
    return torch.cat(out)


def m_step(z: Tensor, resp: Tensor, reg: float) -> tuple[Tensor, Tensor, Tensor]:
    """Maximum-likelihood weights, means and covariance Cholesky factors given responsibilities.

    Under `genlab.objectives.shards.sharded` the rows are this process's share and the sums
    run over all processes.

    Args:
        z: (n, D) examples; resp: (n, K) responsibilities (rows sum to 1); reg: diagonal jitter.
    Returns:
        weights (K,), means (K, D), scale_tril (K, D, D).
    """
    nk, sums = total(resp.sum(0), resp.T @ z)
    nk = nk + 10 * torch.finfo(resp.dtype).eps  # as scikit-learn: no empty component
    means = sums / nk[:, None]
    cov = torch.empty(len(nk), z.shape[1], z.shape[1], dtype=z.dtype, device=z.device)
    for k in range(len(nk)):  # centred per component: avoids an (n, K, D) temporary
        d = z - means[k]
        cov[k] = (resp[:, k, None] * d).T @ d
    cov = total(cov)[0] / nk[:, None, None]
    cov.diagonal(dim1=1, dim2=2).add_(reg)
    return nk / nk.sum(), means, psd_cholesky(cov)


def kmeans(z: Tensor, k: int, iters: int, generator: torch.Generator) -> Tensor:
    """k-means++ seeding then Lloyd iterations. z: (n, D). Returns (n,) int64 labels."""
    sq = z.square().sum(1)
    centers = z[torch.randint(len(z), (1,), generator=generator, device=z.device)]
    d2 = (sq - 2 * z @ centers[0] + centers[0].square().sum()).clamp_min(0)
    for _ in range(1, k):  # next centre drawn with probability proportional to D(x)^2
        p = d2 if d2.sum() > 0 else torch.ones_like(d2)
        c = z[torch.multinomial(p, 1, generator=generator)]
        centers = torch.cat([centers, c])
        d2 = torch.minimum(d2, (sq - 2 * z @ c[0] + c[0].square().sum()).clamp_min(0))
    for _ in range(iters + 1):
        labels = (centers.square().sum(1) - 2 * z @ centers.T).argmin(1)  # + sq is constant per row
        counts = torch.bincount(labels, minlength=k).to(z.dtype)
        sums = torch.zeros_like(centers).index_add_(0, labels, z)
        centers = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centers)
    return labels


@register("gmm")
class GMM(GenerativeModel, GaussianMixtureForm):
    """Gaussian mixture over the flattened model-space example (full covariances, EM).

    Buffers: ``weights`` (K,), ``means`` (K, D), ``scale_tril`` (K, D, D), ``reg_used`` () the
    covariance jitter EM uses (``config.reg``, or the value chosen in `setup` when that is None).
    """
    taxonomy = BASELINE

    in_default_compare = True  # one of `genlab compare`'s default families

    Config = GMMConfig
    density = Density.EXACT
    sampling = "fast"
    training = "EM"

    def __init__(self, spec, config: GMMConfig | None = None):
        super().__init__(spec, config or GMMConfig())
        K, D = self.config.n_components, spec.dim
        if K < 1:
            raise ValueError(f"gmm: n_components must be >= 1, got {K}")
        reg = self.config.reg
        if reg is not None and not reg >= 0:
            raise ValueError(f"gmm: reg must be >= 0 (or None to choose it on validation data), got {reg}")
        self.register_buffer("weights", torch.full((K,), 1.0 / K))
        self.register_buffer("means", torch.zeros(K, D))
        self.register_buffer("scale_tril", torch.eye(D).repeat(K, 1, 1))
        # mean train log-likelihood of the previous E step (a buffer, so resume continues EM exactly)
        self.register_buffer("last_ll", torch.tensor(-math.inf, dtype=torch.float64))
        # float64: the value EM adds is exactly the grid's (or the user's) float
        self.register_buffer("reg_used", torch.tensor(self._fixed_reg(), dtype=torch.float64))
        self.reg_scores: dict[float, float] = {}  # candidate -> mean validation log-lik of the last search (not saved)

    def _fixed_reg(self) -> float:
        return REG_FALLBACK if self.config.reg is None else float(self.config.reg)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "reg_used"
        if key not in state_dict:  # a run saved before the search: EM used config.reg (always a number then)
            state_dict[key] = torch.tensor(self._fixed_reg(), dtype=torch.float64)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def setup(self, x: Tensor, y: Tensor | None = None, x_val: Tensor | None = None) -> None:
        """k-means initialisation: hard responsibilities from k-means labels, then an M step.

        With ``config.reg`` None and ``x_val`` given, the jitter is chosen first (`choose_reg`). Under
        torchrun every process runs this on all rows (outside `sharded`, so `total` sums nothing):
        the same data and seeds give every rank the same choice.
        """
        super().setup(x, y, x_val)
        x = self.check_input(x)
        K = self.config.n_components
        if len(x) < K:
            raise ValueError(f"gmm: {len(x)} examples cannot initialise {K} components")
        g = torch.Generator(device=x.device).manual_seed(self.config.init_seed)
        z, _ = self.pre(x, g)
        z = z.reshape(len(z), -1)
        labels = kmeans(z, K, self.config.kmeans_iters, g)
        resp = torch.nn.functional.one_hot(labels, K).to(z.dtype)
        self.reg_scores = {}
        reg = self._fixed_reg() if self.config.reg is not None or x_val is None else self.choose_reg(z, resp, x_val)
        self.reg_used.fill_(reg)
        self._set(*m_step(z, resp, reg))
        self.last_ll.fill_(-math.inf)

    @torch.no_grad()
    def choose_reg(self, z: Tensor, resp: Tensor, x_val: Tensor) -> float:
        """The value of `REG_GRID` whose fit scores the highest mean validation log-likelihood.

        Each candidate starts from the same responsibilities and runs `SEARCH_ITERS` EM iterations
        on ``z``; ``x_val`` is dequantized with ``init_seed``, as EM dequantizes the training data.
        The scores (nats per example, data space) are left in ``self.reg_scores``.

        Args:
            z: (n, D) training examples in model space; resp: (n, K) initial responsibilities;
            x_val: (m, *event_shape) validation examples in data space.
        """
        g = torch.Generator(device=x_val.device).manual_seed(self.config.init_seed)
        z_val, logdet = self.pre(self.check_input(x_val), g)
        z_val, logdet = z_val.reshape(len(z_val), -1).to(z), logdet.to(z)
        scores = {}
        for reg in REG_GRID:
            weights, means, scale_tril = m_step(z, resp, reg)
            for _ in range(SEARCH_ITERS):
                joint = component_log_prob(z, means, scale_tril) + weights.log()
                weights, means, scale_tril = m_step(z, (joint - torch.logsumexp(joint, 1, keepdim=True)).exp(), reg)
            ll = torch.logsumexp(component_log_prob(z_val, means, scale_tril) + weights.log(), 1) + logdet
            scores[reg] = ll.mean().item()
        self.reg_scores = scores
        return max(REG_GRID, key=lambda r: scores[r] if math.isfinite(scores[r]) else -math.inf)

    def _set(self, weights: Tensor, means: Tensor, scale_tril: Tensor) -> None:
        self.weights.copy_(weights)
        self.means.copy_(means)
        self.scale_tril.copy_(scale_tril)

    def objectives(self) -> list[Objective]:
        return [Objective("em", [], self._em_step, full_batch=True)]

    @torch.no_grad()
    def _em_step(self, batch: Batch) -> Loss:
        """One EM iteration on all training data; the loss is the NLL before the update.

        Discrete data are dequantized with the same seeded noise at every iteration, so that EM
        climbs one fixed likelihood (fresh noise per epoch makes the tol test meaningless).
        """
        g = torch.Generator(device=batch.x.device).manual_seed(self.config.init_seed)
        z, logdet = self.pre(batch.x, g)  # all rows, then this process's share: the same noise as alone
        n, z, logdet = len(z), my_rows(z.reshape(len(z), -1)), my_rows(logdet)
        joint = component_log_prob(z, self.means, self.scale_tril) + self.weights.log()
        ll = torch.logsumexp(joint, 1)  # (n,) log p(z_n) under the current parameters
        self._set(*m_step(z, (joint - ll[:, None]).exp(), float(self.reg_used)))
        sum_ll, sum_lp = total(ll.sum(), (ll + logdet).sum())
        mean_ll = (sum_ll / n).item()
        gain = mean_ll - float(self.last_ll)
        self.last_ll.fill_(mean_ll)
        nll = -sum_lp / n
        logs = {"nll": nll.item(), "reg": float(self.reg_used)} | ({"gain": gain} if math.isfinite(gain) else {})
        return Loss(nll, logs, done=gain < self.config.tol)

    def mixture(self) -> tuple[Tensor, Tensor, Tensor]:
        """(log weights (K,), means (K, D), scale_tril (K, D, D)) in model space."""
        return self.weights.log(), self.means, self.scale_tril

    def _log_prob(self, z: Tensor, *, condition: Tensor | None = None,
                  generator: torch.Generator | None = None) -> Tensor:
        joint = component_log_prob(z.reshape(len(z), -1), self.means, self.scale_tril)
        return torch.logsumexp(joint + self.weights.log(), 1)

    def _sample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.spec.dim, generator=generator,
                          dtype=self.means.dtype, device=self.means.device)
        z = torch.empty_like(eps)
        for k in range(len(self.weights)):  # per component: avoids gathering n (D, D) factors
            idx = comp == k
            z[idx] = self.means[k] + eps[idx] @ self.scale_tril[k].T
        return z.reshape(n, *self.spec.event_shape)
