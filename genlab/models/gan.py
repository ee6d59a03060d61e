"""Generative adversarial network with the non-saturating loss (Goodfellow et al. 2014).

A generator ``G: z ~ N(0, I_L) -> x`` and a critic ``D: x -> logit`` play
``min_G max_D E[log D(x)] + E[log(1 - D(G(z)))]``; the generator minimises ``-E[log D(G(z))]``
instead (same fixed point, no vanishing gradients early on). MLPs for vectors, DCGAN-style
convolutional networks (Radford et al. 2016, without batch normalisation) for images.
G works in model space: the standardized (and, for discrete data, dequantized) space of ``self.pre``.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Iterator

import torch
from torch import Tensor, nn

from ..data.spec import DataSpec, Kind
from ..nn import MLP, ConvDecoder, ConvEncoder
from ..objectives.gan import critic_loss_ns, generator_loss_ns
from ..protocol import Batch, Density, GenerativeModel, Latent, Loss, NotSupported, Objective
from ..registry import register


@dataclass
class GANConfig:
    latent_dim: int = field(default=32, metadata={"help": "size of the generator's noise z"})
    hidden: int = field(default=256, metadata={"help": "width of the hidden layers of G and D"})
    lr: float = field(default=2e-4, metadata={"help": "Adam learning rate of both players"})
    betas: tuple[float, float] = field(default=(0.5, 0.999), metadata={
        "help": "Adam betas of both players (DCGAN: 0.5, 0.999)"})
    n_critic: int = field(default=1, metadata={"help": "critic steps per generator step"})


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Build graphs in which ``module``'s parameters are constants (no gradients reach them)."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(module.parameters(), flags):
            p.requires_grad_(f)


@register("gan")
class GAN(GenerativeModel, Latent):
    """Non-saturating GAN: density NONE, fast sampling, ``decode`` maps noise to data."""

    Config = GANConfig
    density = Density.NONE
    sampling = "fast"
    training = "min-max"
    default_epochs = 200  # moons: samples on the two moons after ~6,400 steps at lr 2e-4

    def __init__(self, spec: DataSpec, config: GANConfig):
        super().__init__(spec, config)
        if spec.kind in (Kind.CATEGORICAL, Kind.TEXT):
            raise NotSupported(f"gan: {spec.kind.value} data are not differentiable in x; "
                               "use an autoregressive family")
        if config.latent_dim < 1 or config.hidden < 1 or config.n_critic < 1 or config.lr <= 0:
            raise ValueError("gan: latent_dim, hidden and n_critic must be >= 1 and lr > 0")
        self.latent_dim = L = config.latent_dim
        h, leaky = config.hidden, partial(nn.LeakyReLU, 0.2)
        if spec.is_image:
            self.generator = ConvDecoder(L, spec.event_shape, channels=(64, 32), hidden=h, act=nn.ReLU)
            self.critic = ConvEncoder(spec.event_shape, 1, channels=(32, 64), hidden=h, act=leaky)
        else:
            self.generator = MLP(L, spec.dim, (h, h), act=nn.ReLU)
            self.critic = MLP(spec.dim, 1, (h, h), act=leaky)

    def _noise(self, n: int, generator: torch.Generator | None) -> Tensor:
        p = next(self.generator.parameters())
        return torch.randn(n, self.latent_dim, generator=generator, dtype=p.dtype, device=p.device)

    def _generate(self, code: Tensor) -> Tensor:
        """(batch, latent_dim) -> model-space samples (batch, *event_shape)."""
        return self.generator(code).reshape(len(code), *self.spec.event_shape)

    def _logits(self, z: Tensor) -> Tensor:
        """Model-space (batch, *event_shape) -> critic logits (batch,)."""
        return self.critic(z if self.spec.is_image else z.flatten(1)).squeeze(-1)

    # -- objectives ----------------------------------------------------------------------------
    def critic_loss(self, batch: Batch) -> Loss:
        """``-E[log D(x)] - E[log(1 - D(G(z)))]``; the fakes are detached, so G gets no gradient."""
        real, _ = self.pre(batch.x, batch.generator)
        with torch.no_grad():
            fake = self._generate(self._noise(len(real), batch.generator))
        real_logits, fake_logits = self._logits(real), self._logits(fake)
        loss = critic_loss_ns(real_logits, fake_logits)
        d_real, d_fake = torch.sigmoid(real_logits.detach()), torch.sigmoid(fake_logits.detach())
        return Loss(loss, {"critic": loss.item(), "d_real": float(d_real.mean()), "d_fake": float(d_fake.mean())})

    def generator_loss(self, batch: Batch) -> Loss:
        """Non-saturating ``-E[log D(G(z))]``; the critic is frozen, so D gets no gradient."""
        fake = self._generate(self._noise(len(batch.x), batch.generator))
        with frozen(self.critic):
            loss = generator_loss_ns(self._logits(fake))
        return Loss(loss, {"generator": loss.item()})

    def objectives(self) -> list[Objective]:
        c = self.config
        betas = tuple(c.betas)
        return [Objective("critic", list(self.critic.parameters()), self.critic_loss,
                          lr=c.lr, betas=betas),
                Objective("generator", list(self.generator.parameters()), self.generator_loss,
                          every=c.n_critic, lr=c.lr, betas=betas)]

    # -- sampling and latents ------------------------------------------------------------------
    def _sample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        return self._generate(self._noise(n, generator))

    def encode(self, x: Tensor) -> Tensor:
        raise NotSupported("gan: a GAN has no encoder, so x cannot be mapped to a code; use a "
                           "VAE or a flow, or invert G by optimisation")

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        """Noise to data space: codes: (batch, latent_dim) -> (batch, *event_shape)."""
        p = next(self.generator.parameters())
        codes = torch.as_tensor(codes, dtype=p.dtype, device=p.device).reshape(-1, self.latent_dim)
        return self.pre.inverse(self._generate(codes))
