"""i-ResNet: an invertible residual network flow (Behrmann, Grathwohl, Chen, Duvenaud & Jacobsen 2019).

``f = B_K o A_K o ... o B_1 o A_1`` where ``A_k`` is a learnable elementwise affine (ActNorm-like,
Kingma & Dhariwal 2018) and ``B_k(x) = x + g_k(x)`` with ``g_k`` a spectrally normalised MLP
(``Lip(g_k) < 1``, so ``B_k`` is invertible, Behrmann et al. 2019, Thm. 1). The base
distribution is N(0, I), so ``log p(z) = log N(f(z); 0, I) + sum_k log|det(I + J_{g_k})|``.

**Which log-likelihood is exact.** For ``D <= 4`` (2-D toys) the log-determinant is computed
exactly from the full Jacobian (forward-mode accumulation through the MLP, then ``slogdet``), in
training and in `log_prob`: the reported NLL is exact. For ``D > 4`` (images) it is the power series truncated
at ``n_terms`` with a Hutchinson trace estimator (Behrmann et al. 2019, Eq. 7): the family's
density is still EXACT (the model defines a normalised ``p``), but the *figure* returned by
`log_prob` is a stochastic estimate of it (random vectors from the ``generator``, a fixed seed
by default; unbiased per term, biased by the truncation). ``logdet="exact"`` / ``"series"``
forces either mode.

**Images** are flattened and modelled with MLP residual blocks (spectral norm of a dense matrix is
exact to compute and check; for 8x8 or 28x28 images this is affordable), not spectral-normalised
convolutions. Sampling inverts every block by fixed-point iteration (slow: tens of iterations).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from ..data.spec import DataSpec, Kind
from ..nn.spectral import InvertibleResBlock
from ..protocol import register, Batch, Bijective, Density, GenerativeModel, Latent, Loss, Objective
from .realnvp import ElementwiseAffine

EXACT_MAX_DIM = 4  # full Jacobians up to this dimension (D backward passes per block)


@dataclass
class IResNetConfig:
    n_blocks: int = field(default=8, metadata={"max": 1_000, "help": "number of invertible residual blocks"})
    hidden: int = field(default=128, metadata={"help": "hidden width of each residual MLP g"})
    depth: int = field(default=2, metadata={"max": 100, "help": "hidden layers of each residual MLP g"})
    coeff: float = field(default=0.9, metadata={
        "help": "spectral bound c < 1 of every layer: W / max(1, sigma(W)/c), so Lip(g) < 1"})
    power_iters: int = field(default=1, metadata={
        "help": "power iterations per training step for each layer's sigma (Miyato et al. 2018)"})
    logdet: Literal["auto", "exact", "series"] = field(default="auto", metadata={
        "help": "auto (exact Jacobian for D <= 4, else power series) | exact | series"})
    n_terms: int = field(default=8, metadata={"help": "terms of the log-det power series (series mode)"})
    trace_samples: int = field(default=1, metadata={
        "help": "Hutchinson vectors per example in training (series mode)"})
    eval_trace_samples: int = field(default=8, metadata={
        "help": "Hutchinson vectors per example in log_prob (series mode)"})
    inverse_tol: float = field(default=1e-5, metadata={
        "help": "fixed-point inverse stops when max |x_{k+1} - x_k| <= tol"})
    inverse_max_iter: int = field(default=500, metadata={
        "help": "fixed-point iterations before the inverse reports non-convergence"})


@register("iresnet")
class IResNet(GenerativeModel, Latent, Bijective):
    """Invertible residual flow: exact log p (D <= 4) or its power-series estimate; fixed-point sampling."""
    taxonomy = "flow"

    Config = IResNetConfig
    density = Density.EXACT
    data_kinds = frozenset({Kind.CONTINUOUS, Kind.DISCRETE, Kind.BINARY})  # ordered values
    sampling = "slow, fixed-point inverse"
    training = "MLE"
    latent_kind = "R^D"
    # 2-D toys (16,000 points): 60 epochs of 256 = 3,780 steps (their time: bench/README.md)
    default_epochs = 60
    default_train = {"batch_size": 256, "lr": 2e-3, "lr_schedule": "cosine", "patience": 30}

    def __init__(self, spec: DataSpec, config: IResNetConfig):
        super().__init__(spec, config)
        c = config
        if c.n_blocks < 1 or c.hidden < 1 or c.depth < 0 or c.power_iters < 1:
            raise ValueError("iresnet: n_blocks, hidden and power_iters must be >= 1, depth >= 0")
        if not 0 < c.coeff < 1:
            raise ValueError(f"iresnet.coeff must lie in (0, 1) (it bounds Lip(g)), got {c.coeff}")
        if c.n_terms < 1 or c.trace_samples < 1 or c.eval_trace_samples < 1:
            raise ValueError("iresnet: n_terms, trace_samples and eval_trace_samples must be >= 1")
        if c.inverse_tol <= 0 or c.inverse_max_iter < 1:
            raise ValueError("iresnet: inverse_tol must be > 0 and inverse_max_iter >= 1")
        d = spec.dim
        self.exact = c.logdet == "exact" or (c.logdet == "auto" and d <= EXACT_MAX_DIM)
        self.norms = nn.ModuleList(ElementwiseAffine((d,)) for _ in range(c.n_blocks))
        self.blocks = nn.ModuleList(InvertibleResBlock(d, (c.hidden,) * c.depth, c.coeff)
                                    for _ in range(c.n_blocks))
        self.power_iteration(50)  # start from accurate sigma estimates, so Lip(g) < 1 from step 0

    # -- the flow, model space (batch, D) -> base space ----------------------------------------
    def forward_and_log_det(self, z: Tensor, condition: Tensor | None = None, *,
                            generator: torch.Generator | None = None,
                            n_samples: int | None = None) -> tuple[Tensor, Tensor]:
        """z: (batch, *event_shape) -> (u: (batch, D), log|det du/dz|: (batch,)).

        Differentiable (for training) when grad mode is on; otherwise each block's input is
        detached and only the values are returned. ``n_samples``: Hutchinson vectors (series mode;
        default: the config's training value). ``condition`` must be None (not conditional).
        """
        self._check_condition(condition, len(z))
        create_graph = torch.is_grad_enabled()
        n_samples = n_samples or self.config.trace_samples
        x = z.reshape(len(z), -1)
        log_det = x.new_zeros(len(x))
        # the series' vector-Jacobian products need autograd even when scoring
        with torch.set_grad_enabled(create_graph or not self.exact):
            for norm, block in zip(self.norms, self.blocks):
                x, ld = norm(x)
                log_det = log_det + ld
                if self.exact:
                    x, ld = block.forward_exact(x)
                else:
                    if not create_graph:
                        x = x.detach().requires_grad_(True)
                    x, ld = block.forward_series(x, self.config.n_terms, n_samples, generator, create_graph)
                log_det = log_det + ld
        if not create_graph:
            x, log_det = x.detach(), log_det.detach()
        return x, log_det

    @torch.no_grad()
    def inverse(self, u: Tensor, condition: Tensor | None = None) -> Tensor:
        """Base space -> model space by fixed-point iteration: (batch, D) -> (batch, *event_shape).
        Raises `genlab.nn.spectral.FixedPointError` if a block does not converge."""
        self._check_condition(condition, len(u))
        x = u.reshape(len(u), -1)
        for norm, block in zip(reversed(self.norms), reversed(self.blocks)):
            x = norm.inverse(block.inverse(x, self.config.inverse_tol, self.config.inverse_max_iter))
        return x.reshape(len(u), *self.spec.event_shape)

    def _log_prob(self, z: Tensor, *, condition: Tensor | None = None,
                  generator: torch.Generator | None = None) -> Tensor:
        u, log_det = self.forward_and_log_det(z, generator=generator, n_samples=self.config.eval_trace_samples)
        return -0.5 * u.pow(2).sum(1) - 0.5 * self.spec.dim * math.log(2 * math.pi) + log_det

    def _sample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        p = next(self.parameters())
        u = torch.randn(n, self.spec.dim, generator=generator, dtype=p.dtype, device=p.device)
        return self.inverse(u)

    # -- training -------------------------------------------------------------------------------
    def power_iteration(self, n: int | None = None) -> None:
        """Refine every layer's singular-vector estimate (``n`` iterations; default: config)."""
        for block in self.blocks:
            block.power_iteration(n or self.config.power_iters)

    def _loss(self, batch: Batch) -> Loss:
        """Mean NLL (nats, data space), after refining the spectral norms of the current weights."""
        self.power_iteration()
        z, logdet = self.pre(batch.x, batch.generator)
        u, ld = self.forward_and_log_det(z, generator=batch.generator)
        lp = -0.5 * u.pow(2).sum(1) - 0.5 * self.spec.dim * math.log(2 * math.pi) + ld + logdet
        return Loss(-lp.mean())

    def objectives(self) -> list[Objective]:
        return [Objective("nll", list(self.parameters()), self._loss)]

    # -- Latent: the base space R^D --------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return self.spec.dim

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """Base-space codes: x: (batch, *event_shape) data space -> (batch, D). Discrete data are
        dequantized with fixed-seed noise, so a code is reproducible."""
        x = self.check_input(x)
        z, _ = self.pre(x, torch.Generator(device=x.device).manual_seed(0))
        u = z.reshape(len(z), -1)
        for norm, block in zip(self.norms, self.blocks):
            u = block(norm(u)[0])
        return u

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        """Data-space examples from base-space codes: (batch, D) -> (batch, *event_shape)."""
        p = next(self.parameters())
        u = torch.as_tensor(codes, dtype=p.dtype, device=p.device).reshape(-1, self.spec.dim)
        return self.pre.inverse(self.inverse(u))
