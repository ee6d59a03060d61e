"""Full-covariance Gaussian fitted by maximum likelihood in closed form.

``p(z) = N(z; mean, L L^T)`` in model space (standardized data), with ``L`` the Cholesky factor
of the biased (MLE) sample covariance plus ``reg * I``; with no more examples than dimensions
that covariance is singular, so it is first shrunk toward a multiple of I by the Ledoit-Wolf
amount (``shrinkage``). Because the preprocessing is affine for
continuous data, this is exactly the MLE Gaussian in data space too (up to ``reg``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from ..taxonomy import BASELINE
from ..objectives.shards import my_rows, total
from ..protocol import register, Batch, Density, GaussianMixtureForm, GenerativeModel, Loss, Objective


@dataclass
class GaussianConfig:
    added: ClassVar[dict[str, Any]] = {"shrinkage": "off"}  # runs saved before shrinkage existed

    reg: float = field(default=1e-6, metadata={"min": 0,
        "help": "added to the covariance diagonal (model space) so that it stays positive "
                "definite, like scikit-learn's reg_covar"})
    shrinkage: Literal["auto", "ledoit-wolf", "off"] = field(default="auto", metadata={
        "help": "shrink the covariance toward a multiple of I by the Ledoit-Wolf amount: auto does "
                "so when there are no more examples than dimensions (the sample covariance is then "
                "singular and its likelihood of new data meaningless), ledoit-wolf always, off never"})


def fit_gaussian(z: Tensor, reg: float, shrinkage: str = "off") -> tuple[Tensor, Tensor]:
    """MLE mean and Cholesky factor of the biased covariance (+ ``reg`` I); under
    `genlab.objectives.shards.sharded`, of the rows of all processes together.

    Args:
        z: (n, D) examples.
        reg: diagonal regulariser.
    Returns:
        mean (D,), scale_tril (D, D) lower triangular with ``L L^T = cov + reg I``.
    """
    z64 = z.to(torch.float64)  # covariance and Cholesky in float64: cheap, and stable in float32 models
    n, sums = total(z64.new_tensor(float(len(z64))), z64.sum(0))
    mean = sums / n
    d = z64 - mean
    cov = total(d.T @ d)[0] / n
    if shrinkage == "ledoit-wolf" or (shrinkage == "auto" and n <= z.shape[1]):
        cov = ledoit_wolf(cov, total(d.square().sum(1).square().sum())[0], n)
    cov.diagonal().add_(reg)
    return mean.to(z.dtype), psd_cholesky(cov).to(z.dtype)


def ledoit_wolf(cov: Tensor, sum_norm4: Tensor, n: Tensor | float) -> Tensor:
    """``(1 - a) S + a mu I`` with ``mu = tr(S) / D`` and the Ledoit-Wolf (2004) shrinkage ``a``
    (as scikit-learn's ``ledoit_wolf``), from the biased covariance ``S`` (D, D) of ``n`` centred
    rows ``d_k`` and ``sum_norm4 = sum_k ||d_k||^4``."""
    D = cov.shape[0]
    mu = cov.diagonal().mean()
    fro2 = cov.square().sum()
    delta = (fro2 - D * mu**2) / D
    beta = torch.minimum((sum_norm4 / n - fro2) / (D * n), delta)
    a = (beta / delta).clamp(0, 1) if delta > 0 else cov.new_tensor(0.0)
    out = (1 - a) * cov
    out.diagonal().add_(a * mu)
    return out


def psd_cholesky(cov: Tensor, tries: int = 6) -> Tensor:
    """Cholesky factor of (a batch of) covariances (..., D, D), computed in float64; where
    rounding left a matrix not quite positive definite, retry with diagonal jitter growing
    tenfold from 1e-10 times its mean variance."""
    c = cov.to(torch.float64)
    scale = c.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1e-300)[..., None]
    for i in range(tries):
        L, info = torch.linalg.cholesky_ex(c)
        if not info.any():
            return L.to(cov.dtype)
        c = c + torch.diag_embed((1e-10 * 10**i * scale).expand(c.shape[:-1]))
    raise ValueError("covariance is not positive definite even with jitter; increase reg")


def gaussian_log_prob(z: Tensor, mean: Tensor, scale_tril: Tensor) -> Tensor:
    """log N(z; mean, L L^T) = -||L^{-1}(z - mean)||^2 / 2 - sum log diag L - D/2 log 2 pi.

    Args:
        z: (n, D); mean: (D,); scale_tril: (D, D) lower triangular.
    Returns:
        (n,) log-densities.
    """
    y = torch.linalg.solve_triangular(scale_tril, (z - mean).T, upper=False)  # (D, n)
    D = z.shape[1]
    return (-0.5 * y.square().sum(0) - scale_tril.diagonal().log().sum()
            - 0.5 * D * math.log(2 * math.pi))


@register("gaussian")
class Gaussian(GenerativeModel, GaussianMixtureForm):
    """A single full-covariance Gaussian over the flattened model-space example.

    Buffers: ``mean`` (D,) and ``scale_tril`` (D, D), the Cholesky factor of the covariance.
    One full-batch objective sets both to the maximum-likelihood estimate in one call.
    """
    taxonomy = BASELINE

    in_default_compare = True  # one of `genlab compare`'s default families

    Config = GaussianConfig
    density = Density.EXACT
    sampling = "fast"
    training = "closed form (MLE)"

    def __init__(self, spec, config: GaussianConfig | None = None):
        super().__init__(spec, config or GaussianConfig())
        D = spec.dim
        self.register_buffer("mean", torch.zeros(D))
        self.register_buffer("scale_tril", torch.eye(D))

    def objectives(self) -> list[Objective]:
        return [Objective("mle", [], self._fit, full_batch=True)]

    @torch.no_grad()
    def _fit(self, batch: Batch) -> Loss:
        """Set mean and covariance to their MLE on ``batch.x`` (all training data); done."""
        z, logdet = self.pre(batch.x, batch.generator)
        n, z, logdet = len(z), my_rows(z), my_rows(logdet)  # this process's share (all rows alone)
        mean, tril = fit_gaussian(z.reshape(len(z), -1), self.config.reg, self.config.shrinkage)
        self.mean.copy_(mean)
        self.scale_tril.copy_(tril)
        nll = -total((self._log_prob(z) + logdet).sum())[0] / n
        return Loss(nll, {"nll": nll.item()}, done=True)

    def mixture(self) -> tuple[Tensor, Tensor, Tensor]:
        """A one-component mixture: (log weights (1,), means (1, D), scale_tril (1, D, D))."""
        return self.mean.new_zeros(1), self.mean[None], self.scale_tril[None]

    def _log_prob(self, z: Tensor, *, condition: Tensor | None = None,
                  generator: torch.Generator | None = None) -> Tensor:
        return gaussian_log_prob(z.reshape(len(z), -1), self.mean, self.scale_tril)

    def _sample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        eps = torch.randn(n, self.spec.dim, generator=generator,
                          dtype=self.mean.dtype, device=self.mean.device)
        z = self.mean + eps @ self.scale_tril.T
        return z.reshape(n, *self.spec.event_shape)
