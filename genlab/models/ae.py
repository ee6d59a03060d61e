"""Deterministic autoencoder (Rumelhart, Hinton & Williams 1986; Hinton & Salakhutdinov 2006),
made generative by a Gaussian fitted to its codes (as in the "RAE" baseline of Ghosh et al. 2020).

``c = enc(x)``, ``x_hat = dec(c)``; training minimises the squared reconstruction error in model
space (standardized, dequantized for discrete data), averaged over entries. There is no density
(``log_prob`` raises `NotSupported`).

Sampling draws codes from ``N(m, S)``, a full-covariance Gaussian of the training codes, and
decodes them. The moments live in buffers (saved with the model). They are fitted exactly on the
training set in ``setup`` and then tracked during training by exponential moving averages of the
first and second moments of each batch's codes (momentum ``code_momentum``, like batch-norm running
statistics), so they follow the encoder as it learns without a second pass over the data;
``fit_code_gaussian(x)`` refits them exactly on any data.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from ..data.spec import DataSpec
from ..nn import MLP, ConvDecoder, ConvEncoder
from ..protocol import register, Batch, Density, GenerativeModel, Latent, Loss, Objective


class DeterministicAutoencoder(GenerativeModel, Latent):
    """Encoder and decoder shared by `ae` and `wae` (not registered itself).

    Subclasses add the training loss and how codes are drawn (`sample_codes`).
    """

    density = Density.NONE
    sampling = "fast"
    default_epochs = 200

    def __init__(self, spec: DataSpec, config):
        super().__init__(spec, config)
        if config.latent_dim < 1 or config.hidden < 1:
            raise ValueError(f"{type(self).__name__}: latent_dim and hidden must be >= 1")
        if config.net == "conv" and not spec.is_image:
            raise ValueError(f"{self.name}.net='conv' needs images; use 'mlp' or 'auto'")
        self.latent_dim = L = config.latent_dim
        h = config.hidden
        if config.net == "conv" or (config.net == "auto" and spec.is_image):
            self.encoder = ConvEncoder(spec.event_shape, L, hidden=h)
            self.decoder = ConvDecoder(L, spec.event_shape, hidden=h)
            self.conv = True
        else:
            self.encoder, self.decoder, self.conv = MLP(spec.dim, L, (h, h)), MLP(L, spec.dim, (h, h)), False

    def _encode(self, z: Tensor) -> Tensor:
        """Model-space z: (batch, *event_shape) -> codes (batch, latent_dim)."""
        return self.encoder(z if self.conv else z.flatten(1))

    def _decode(self, codes: Tensor) -> Tensor:
        """(batch, latent_dim) -> model-space reconstructions (batch, *event_shape)."""
        return self.decoder(codes).reshape(len(codes), *self.spec.event_shape)

    def reconstruction_cost(self, z: Tensor, z_hat: Tensor) -> Tensor:
        """(batch,) squared error averaged over entries: ``||z - z_hat||^2 / D``."""
        return (z - z_hat).pow(2).flatten(1).mean(1)

    def sample_codes(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError

    def _sample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        return self._decode(self.sample_codes(n, generator))

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """x: (batch, *event_shape) data space -> codes (batch, latent_dim)."""
        x = self.check_input(x)
        z, _ = self.pre(x, torch.Generator(device=x.device).manual_seed(0))
        return self._encode(z)

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        """codes: (batch, latent_dim) -> reconstructions in data space (batch, *event_shape)."""
        p = self._some_tensor()
        codes = torch.as_tensor(codes, dtype=p.dtype, device=p.device).reshape(-1, self.latent_dim)
        return self.pre.inverse(self._decode(codes))


@dataclass
class AEConfig:
    latent_dim: int = field(default=8, metadata={"help": "size of the code"})
    hidden: int = field(default=256, metadata={"help": "width of the encoder / decoder hidden layers"})
    net: Literal["auto", "mlp", "conv"] = field(default="auto", metadata={"help": "auto (conv for images, mlp for vectors) | mlp | conv"})
    code_momentum: float = field(default=0.99, metadata={
        "help": "momentum of the running code mean / covariance that sampling draws from"})


@register("ae")
class AE(DeterministicAutoencoder):
    """Deterministic autoencoder; samples decode draws from a Gaussian fitted to the codes."""

    Config = AEConfig
    training = "reconstruction"

    def __init__(self, spec: DataSpec, config: AEConfig):
        super().__init__(spec, config)
        if not 0 <= config.code_momentum < 1:
            raise ValueError(f"ae.code_momentum must lie in [0, 1), got {config.code_momentum}")
        L = config.latent_dim
        self.register_buffer("code_mean", torch.zeros(L))
        self.register_buffer("code_second", torch.eye(L))  # E[c c^T]

    def code_covariance(self) -> Tensor:
        """(L, L) covariance ``E[c c^T] - m m^T`` of the fitted code Gaussian."""
        return self.code_second - torch.outer(self.code_mean, self.code_mean)

    @torch.no_grad()
    def fit_code_gaussian(self, x: Tensor, batch_size: int = 1024) -> None:
        """Fit the code Gaussian exactly (maximum likelihood) to the codes of ``x`` (data space)."""
        c = torch.cat([self.encode(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
        self.code_mean.copy_(c.mean(0))
        self.code_second.copy_(c.T @ c / len(c))

    def setup(self, x: Tensor, y: Tensor | None = None, x_val: Tensor | None = None) -> None:
        super().setup(x, y, x_val)
        self.fit_code_gaussian(x)

    def sample_codes(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """(n, L) draws ``m + chol(S) eps`` from the fitted code Gaussian."""
        cov = self.code_covariance().double()
        scale = cov.diagonal().mean().clamp_min(1e-12)
        jitter = 1e-6 * scale * torch.eye(len(cov), dtype=cov.dtype, device=cov.device)
        chol = torch.linalg.cholesky(0.5 * (cov + cov.T) + jitter).to(self.code_mean.dtype)
        eps = torch.randn(n, self.latent_dim, generator=generator, dtype=chol.dtype, device=chol.device)
        return self.code_mean + eps @ chol.T

    def loss(self, batch: Batch) -> Loss:
        """Mean reconstruction cost; updates the running code moments (no gradient)."""
        z, _ = self.pre(batch.x, batch.generator)
        codes = self._encode(z)
        cost = self.reconstruction_cost(z, self._decode(codes)).mean()
        with torch.no_grad():
            m = self.config.code_momentum
            c = codes.detach()
            self.code_mean.mul_(m).add_(c.mean(0), alpha=1 - m)
            self.code_second.mul_(m).add_(c.T @ c / len(c), alpha=1 - m)
        return Loss(cost, {"mse": float(cost.detach())})

    def objectives(self) -> list[Objective]:
        return [Objective("reconstruction", list(self.parameters()), self.loss)]
