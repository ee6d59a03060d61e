"""Wasserstein autoencoder with the MMD penalty (WAE-MMD; Tolstikhin, Bousquet, Gelly & Schoelkopf
2018, Algorithm 2).

A deterministic encoder ``c = enc(x)`` and decoder; the loss is
``c(x, dec(enc(x))) + lambda * MMD^2_u(Q_Z, P_Z)``: the squared reconstruction error (model space,
averaged over entries; the paper's ``||x - y||^2`` up to a constant that rescales lambda) plus the
unbiased MMD between the batch's codes and as many draws of the prior ``P_Z = N(0, I)``, with the
inverse multiquadratic kernel summed over several scales (`..objectives.mmd`). Samples decode
prior draws. There is no density.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from ..data.spec import DataSpec
from ..objectives.mmd import WAE_SCALES, imq_kernel, mmd2_unbiased
from ..protocol import register, Batch, Loss, Objective
from .ae import DeterministicAutoencoder


@dataclass
class WAEConfig:
    latent_dim: int = field(default=8, metadata={"help": "size of the code (prior N(0, I))"})
    hidden: int = field(default=256, metadata={"help": "width of the encoder / decoder hidden layers"})
    net: Literal["auto", "mlp", "conv"] = field(default="auto", metadata={"help": "auto (conv for images, mlp for vectors) | mlp | conv"})
    mmd_weight: float = field(default=10.0, metadata={"help": "lambda, the weight of the MMD penalty"})
    kernel_scales: tuple[float, ...] = field(default=WAE_SCALES, metadata={
        "help": "IMQ kernel scales s (C = 2 * latent_dim * s), summed"})


@register("wae")
class WAE(DeterministicAutoencoder):
    """WAE-MMD with the IMQ kernel; samples decode draws of the N(0, I) prior."""

    Config = WAEConfig
    training = "reconstruction + MMD"

    def __init__(self, spec: DataSpec, config: WAEConfig):
        super().__init__(spec, config)
        if config.mmd_weight < 0 or not config.kernel_scales or min(config.kernel_scales) <= 0:
            raise ValueError("wae: mmd_weight must be >= 0 and kernel_scales a non-empty list of positive numbers")
        self.register_buffer("_ref", torch.zeros(()))  # carries dtype / device for prior draws

    def sample_codes(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """(n, L) draws of the prior N(0, I)."""
        return torch.randn(n, self.latent_dim, generator=generator, dtype=self._ref.dtype, device=self._ref.device)

    def mmd(self, codes: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Unbiased MMD^2 between codes (n, L), n >= 2, and n prior draws."""
        prior = torch.randn(codes.shape, generator=generator, dtype=codes.dtype, device=codes.device)
        kernel = lambda a, b: imq_kernel(a, b, self.config.kernel_scales)  # noqa: E731
        return mmd2_unbiased(codes, prior, kernel)

    def loss(self, batch: Batch) -> Loss:
        z, _ = self.pre(batch.x, batch.generator)
        codes = self._encode(z)
        cost = self.reconstruction_cost(z, self._decode(codes)).mean()
        if len(codes) < 2:  # a lone example has no MMD estimate; train its reconstruction only
            return Loss(cost, {"mse": float(cost.detach())})
        mmd = self.mmd(codes, batch.generator)
        return Loss(cost + self.config.mmd_weight * mmd, {"mse": float(cost.detach()), "mmd": float(mmd.detach())})

    def objectives(self) -> list[Objective]:
        return [Objective("wae", list(self.parameters()), self.loss)]
