"""Variational autoencoder (Kingma & Welling 2014; beta-VAE, Higgins et al. 2017; KL annealing,
Bowman et al. 2016).

``q(z|x) = N(mu(x), diag(exp(logvar(x))))``, ``p(z) = N(0, I)``, and a decoder likelihood chosen
from the data: Gaussian (continuous, learned per-entry scale), Bernoulli (binary), or a logistic
discretized to the data's levels on [-1, 1] (discrete, PixelCNN++; Salimans et al. 2017).
``log_prob`` is the one-sample ELBO ``log p(x|z) - KL(q(z|x) || p(z)) <= log p(x)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..data.preprocess import Preprocess, Rescale, default_preprocess
from ..data.spec import DataSpec, Kind
from ..nn import MLP, ConvDecoder, ConvEncoder
from ..objectives.elbo import (bernoulli_log_lik, discretized_logistic_log_lik, gaussian_kl,
                               gaussian_log_lik, reparameterize, sum_event)
from ..protocol import Batch, Density, GenerativeModel, Latent, Loss, NotSupported, Objective
from ..registry import register

LOG_SCALE_MIN = -7.0  # lower bound on decoder log-scales (as in PixelCNN++)


@dataclass
class VAEConfig:
    latent_dim: int = field(default=16, metadata={"help": "size of the latent code z"})
    hidden: int = field(default=256, metadata={"help": "width of the encoder / decoder hidden layers"})
    beta: float = field(default=1.0, metadata={"help": "weight of the KL term in training (beta-VAE)"})
    kl_warmup_steps: int = field(default=0, metadata={
        "help": "anneal the KL weight linearly from 0 to beta over this many training steps"})
    likelihood: str = field(default="auto", metadata={
        "help": "decoder likelihood: auto | gaussian | bernoulli | logistic (auto: gaussian for "
                "continuous, bernoulli for binary, discretized logistic for discrete data)"})
    sample_mean: bool = field(default=False, metadata={
        "help": "sample() returns decoder means instead of draws from the likelihood"})


def resolve_likelihood(spec: DataSpec, choice: str) -> str:
    """The decoder likelihood for ``spec``; raises for a choice the data cannot have."""
    if spec.kind in (Kind.CATEGORICAL, Kind.TEXT):
        raise NotSupported(f"vae: no decoder likelihood for {spec.kind.value} data; use an "
                           "autoregressive family")
    if choice == "auto":
        return {Kind.CONTINUOUS: "gaussian", Kind.BINARY: "bernoulli"}.get(spec.kind, "logistic")
    if choice not in ("gaussian", "bernoulli", "logistic"):
        raise ValueError(f"vae.likelihood must be auto, gaussian, bernoulli or logistic, got {choice!r}")
    if choice == "bernoulli" and spec.levels != 2:
        raise ValueError("vae.likelihood='bernoulli' needs binary data (2 levels)")
    if choice == "logistic" and not spec.is_discrete:
        raise ValueError("vae.likelihood='logistic' needs discrete data; use 'gaussian'")
    return choice


@register("vae")
class VAE(GenerativeModel, Latent):
    """VAE with an MLP (vectors) or convolutional (images) encoder and decoder."""

    Config = VAEConfig
    density = Density.BOUND
    sampling = "fast"
    training = "ELBO"
    default_epochs = 200  # digits: -ELBO 1.95 bits/dim after 200 epochs (2.11 after 50)

    def __init__(self, spec: DataSpec, config: VAEConfig):
        super().__init__(spec, config)
        if config.latent_dim < 1 or config.hidden < 1 or config.beta < 0 or config.kl_warmup_steps < 0:
            raise ValueError("vae: latent_dim and hidden must be >= 1, beta and kl_warmup_steps >= 0")
        self.likelihood = resolve_likelihood(spec, config.likelihood)
        self.latent_dim = L = config.latent_dim
        h = config.hidden
        self.register_buffer("steps_done", torch.zeros(()))  # training steps, for KL annealing
        if spec.is_image:
            self.encoder = ConvEncoder(spec.event_shape, 2 * L, hidden=h)
            self.decoder = ConvDecoder(L, spec.event_shape, hidden=h)
        else:
            self.encoder = MLP(spec.dim, 2 * L, (h, h))
            self.decoder = MLP(L, spec.dim, (h, h))
        if self.likelihood != "bernoulli":
            # standardized data have unit scale; bins on [-1, 1] start with a scale near the bin width
            init = 0.0 if self.likelihood == "gaussian" else math.log(4.0 / (spec.levels - 1))
            y = init - LOG_SCALE_MIN  # raw = MIN + softplus^-1(y), so that log_scale() = init
            raw = LOG_SCALE_MIN + y + math.log(-math.expm1(-y))
            self.raw_log_scale = nn.Parameter(torch.full(spec.event_shape, raw))

    def make_preprocess(self, spec: DataSpec) -> Preprocess:
        lik = resolve_likelihood(spec, self.config.likelihood)
        if lik == "logistic":
            return Rescale(spec)  # the likelihood scores the discrete levels itself
        if lik == "bernoulli":
            return Preprocess()
        return default_preprocess(spec)

    # -- pieces ---------------------------------------------------------------------------------
    def log_scale(self) -> Tensor:
        """(*event_shape) decoder log-scales, ``>= LOG_SCALE_MIN`` (smooth softplus bound)."""
        return LOG_SCALE_MIN + nn.functional.softplus(self.raw_log_scale - LOG_SCALE_MIN)

    def posterior(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Model-space z: (batch, *event_shape) -> mu, logvar: (batch, latent_dim) each."""
        h = self.encoder(z if self.spec.is_image else z.flatten(1))
        mu, logvar = h.chunk(2, dim=-1)
        return mu, logvar.clamp(-20.0, 10.0)

    def _decode(self, code: Tensor) -> Tensor:
        """(batch, latent_dim) -> decoder output (means; logits for Bernoulli), (batch, *event_shape)."""
        return self.decoder(code).reshape(len(code), *self.spec.event_shape)

    def _mean(self, out: Tensor) -> Tensor:
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def _log_lik(self, z: Tensor, out: Tensor) -> Tensor:
        """log p(z | code) per example: (batch,)."""
        if self.likelihood == "bernoulli":
            return sum_event(bernoulli_log_lik(z, out))
        if self.likelihood == "gaussian":
            return sum_event(gaussian_log_lik(z, out, self.log_scale()))
        return sum_event(discretized_logistic_log_lik(z, out, self.log_scale(), self.spec.levels))

    def elbo_terms(self, z: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """One-sample ``(log p(z | code), KL(q || p))`` per example for model-space ``z``."""
        mu, logvar = self.posterior(z)
        code = reparameterize(mu, logvar, generator)
        return self._log_lik(z, self._decode(code)), gaussian_kl(mu, logvar)

    def kl_weight(self) -> float:
        """The annealed beta: ``beta * min(1, steps_done / kl_warmup_steps)``."""
        w = self.config.kl_warmup_steps
        return self.config.beta * (min(1.0, float(self.steps_done) / w) if w > 0 else 1.0)

    # -- protocol ------------------------------------------------------------------------------
    def _log_prob(self, z: Tensor, *, condition: Tensor | None = None,
                  generator: torch.Generator | None = None) -> Tensor:
        log_lik, kl = self.elbo_terms(z, generator)
        return log_lik - kl  # beta = 1: the true bound

    def _sample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        p = self.steps_done
        code = torch.randn(n, self.latent_dim, generator=generator, dtype=p.dtype, device=p.device)
        out = self._decode(code)
        if self.config.sample_mean:
            return self._mean(out)
        if self.likelihood == "bernoulli":
            return torch.bernoulli(torch.sigmoid(out), generator=generator)
        scale = self.log_scale().exp()
        if self.likelihood == "gaussian":
            return out + scale * torch.randn(out.shape, generator=generator, dtype=out.dtype, device=out.device)
        eps = torch.finfo(out.dtype).eps  # a logistic draw; Rescale.inverse rounds it to a bin
        u = torch.rand(out.shape, generator=generator, dtype=out.dtype, device=out.device).clamp(eps, 1 - eps)
        return out + scale * (u.log() - (-u).log1p())

    def elbo_loss(self, batch: Batch) -> Loss:
        """Mean ``-(log p(x|z) - beta_t KL)`` in nats (data space), ``beta_t`` annealed; logs the
        true bound ``neg_elbo`` (beta = 1)."""
        z, logdet = self.pre(batch.x, batch.generator)
        log_lik, kl = self.elbo_terms(z, batch.generator)
        beta = self.kl_weight()
        loss = -(log_lik - beta * kl + logdet).mean()
        with torch.no_grad():
            self.steps_done += 1
            logs = {"neg_elbo": float(-(log_lik - kl + logdet).mean()), "kl": float(kl.mean()), "beta": beta}
        return Loss(loss, logs)

    def objectives(self) -> list[Objective]:
        return [Objective("elbo", list(self.parameters()), self.elbo_loss)]

    # -- Latent --------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """Posterior means: x: (batch, *event_shape) data space -> (batch, latent_dim)."""
        x = self.check_input(x)
        z, _ = self.pre(x, torch.Generator(device=x.device).manual_seed(0))
        return self.posterior(z)[0]

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        """Decoder means in data space: codes: (batch, latent_dim) -> (batch, *event_shape)."""
        p = self.steps_done
        codes = torch.as_tensor(codes, dtype=p.dtype, device=p.device).reshape(-1, self.latent_dim)
        return self.pre.inverse(self._mean(self._decode(codes)))
