"""Variational autoencoders: VAE (Kingma & Welling 2014), beta-VAE (Higgins et al. 2017), KL
annealing (linear, Bowman et al. 2016; cyclical, Fu et al. 2019), the importance-weighted bound
as a training objective (IWAE, Burda et al. 2016), discrete latents trained with REINFORCE and
control variates (NVIL, Mnih & Gregor 2014), and label conditioning (CVAE, Sohn et al. 2015).

``q(z|x)`` is Gaussian, Bernoulli or categorical (`..objectives.latents`), ``p(z)`` the matching
standard prior, and the decoder likelihood is chosen from the data: Gaussian (continuous, learned
per-entry scale), Bernoulli (binary), or a logistic discretized to the data's levels on [-1, 1]
(discrete, PixelCNN++; Salimans et al. 2017). ``log_prob`` is a lower bound on ``log p(x)``: the
one-sample ELBO ``log p(x|z) - KL(q(z|x) || p(z))``, or IWAE_k with ``objective="iwae"``.

With labels in the data (and ``conditional``), a label embedding is concatenated to the encoder
input (images: as an extra channel) and to the decoder input. Training replaces a share
``label_dropout`` of the labels by a learned "no label" entry (as in Ho & Salimans 2022), so the
same network also is the unconditional model used when ``condition`` is None.
"""
from __future__ import annotations

import math
import torch
from torch import Tensor, nn

from ..data.preprocess import Preprocess, Rescale, default_preprocess
from ..data.spec import DataSpec, Kind
from ..nn import MLP, ConvDecoder, ConvEncoder
from ..objectives.elbo import (discretized_logistic_log_lik, gaussian_log_lik,
                               kl_weight_schedule, log_mean_exp)
from ..objectives.latents import make_latent
from ..objectives.reinforce import make_baseline, reinforce_surrogate
from ..protocol import (Batch, register, Conditional, Density, GenerativeModel, Latent, LatentVariable, Loss,
                        NotSupported, Objective)
from .vae_config import LOG_SCALE_MIN, VAEConfig, _check, resolve_architecture, resolve_likelihood

__all__ = ["LOG_SCALE_MIN", "VAE", "VAEConfig", "resolve_likelihood"]

ACTIVATIONS = {"silu": nn.SiLU, "relu": nn.ReLU, "elu": nn.ELU, "tanh": nn.Tanh}

@register("vae")
class VAE(GenerativeModel, Latent, LatentVariable, Conditional):
    """VAE with MLP or convolutional encoder and decoder (`resolve_architecture`: an MLP for binary
    data and vectors, conv for other images); see the module doc."""
    taxonomy = "VAE"

    in_default_compare = True  # one of `genlab compare`'s default families

    Config = VAEConfig
    density = Density.BOUND
    data_kinds = frozenset({Kind.CONTINUOUS, Kind.DISCRETE, Kind.BINARY})  # ordered values
    sampling = "fast"
    training = "ELBO"
    default_epochs = 200  # digits: -ELBO 1.95 bits/dim after 200 epochs (2.11 after 50)

    def __init__(self, spec: DataSpec, config: VAEConfig):
        super().__init__(spec, config)
        _check(config)
        self.likelihood = resolve_likelihood(spec, config.likelihood)
        arch = resolve_architecture(spec, config)
        self.latent = make_latent(config.latent, arch.latent_dim, config.categories)
        self.latent_dim = D = self.latent.code_dim  # size of the codes that encode / decode use
        self.reparam = config.gradient == "reparam" or (config.gradient == "auto" and not self.latent.discrete)
        self.n_labels = spec.num_classes if config.conditional and spec.num_classes else 0
        E = config.label_dim if self.n_labels else 0
        h, act, self.conv = arch.hidden, ACTIVATIONS[config.activation], arch.conv
        if self.conv and not spec.is_image:
            raise ValueError("vae.net='conv' needs image data (channels, height, width); use net=mlp")
        self.register_buffer("steps_done", torch.zeros(()))  # training steps, for KL annealing
        if self.conv:
            c, hh, ww = spec.event_shape
            self.encoder = ConvEncoder((c + (E > 0), hh, ww), self.latent.n_params, hidden=h, act=act)
            self.decoder = ConvDecoder(D + E, spec.event_shape, hidden=h, act=act)
        else:
            self.encoder = MLP(spec.dim + E, self.latent.n_params, (h,) * arch.depth, act=act)
            self.decoder = MLP(D + E, spec.dim, (h,) * arch.depth, act=act)
        if self.n_labels:  # the extra index n_labels is "no label"
            self.enc_label = nn.Embedding(self.n_labels + 1, spec.event_shape[1] * spec.event_shape[2]
                                          if self.conv else E)
            self.dec_label = nn.Embedding(self.n_labels + 1, E)
        self.baseline = None if self.reparam else make_baseline(config.baseline, spec.dim, 64, config.baseline_decay)
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

    # -- pieces (model space) ------------------------------------------------------------------
    def log_scale(self) -> Tensor:
        """(*event_shape) decoder log-scales, ``>= LOG_SCALE_MIN`` (smooth softplus bound)."""
        return LOG_SCALE_MIN + nn.functional.softplus(self.raw_log_scale - LOG_SCALE_MIN)

    @property
    def conditioned(self) -> bool:
        return bool(self.n_labels)

    def labels(self, condition: Tensor | None, n: int) -> Tensor | None:
        """(n,) label indices for the embeddings ("no label" where condition is None); None if
        the model is not conditional."""
        if not self.n_labels:
            if condition is not None:
                raise NotSupported(f"{self.name}: the training data had no labels, so this model is "
                                   "not conditional; drop condition=")
            return None
        if condition is None:
            return torch.full((n,), self.n_labels, dtype=torch.long, device=self.steps_done.device)
        return condition

    def encoder_params(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Model-space z: (batch, *event_shape) -> raw posterior parameters (batch, n_params)."""
        if self.conv:
            if labels is not None:
                z = torch.cat([z, self.enc_label(labels).reshape(len(z), 1, *z.shape[2:]).to(z.dtype)], 1)
            return self.encoder(z)
        h = z.flatten(1)
        return self.encoder(h if labels is None else torch.cat([h, self.enc_label(labels).to(h.dtype)], 1))

    def posterior(self, z: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Gaussian latents: model-space z -> mu, logvar: (batch, latent_dim) each."""
        if self.config.latent != "gaussian":
            raise NotSupported(f"{self.name}: posterior() is for gaussian latents; use encoder_params()")
        return self.latent.split(self.encoder_params(z, labels))

    def decoder_output(self, code: Tensor, labels: Tensor | None = None) -> Tensor:
        """(*lead, batch, code_dim) -> decoder output (means; logits for Bernoulli),
        (*lead, batch, *event_shape)."""
        if labels is not None:
            e = self.dec_label(labels).to(code.dtype)
            code = torch.cat([code, e.expand(*code.shape[:-1], e.shape[-1])], -1)
        out = self.decoder(code.reshape(-1, code.shape[-1]))
        return out.reshape(*code.shape[:-1], *self.spec.event_shape)

    def _mean(self, out: Tensor) -> Tensor:
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    def decoder_log_lik(self, z: Tensor, out: Tensor) -> Tensor:
        """log p(z | code): z (batch, *event), out (*lead, batch, *event) -> (*lead, batch)."""
        z = z.expand_as(out)
        if self.likelihood == "bernoulli":  # bernoulli_log_lik, negated after the sum: one (batch,) negation
            nll = nn.functional.binary_cross_entropy_with_logits(out, z, reduction="none")
            return -nll.flatten(nll.ndim - len(self.spec.event_shape)).sum(-1)
        if self.likelihood == "gaussian":
            t = gaussian_log_lik(z, out, self.log_scale())
        else:
            t = discretized_logistic_log_lik(z, out, self.log_scale(), self.spec.levels)
        return t.flatten(t.ndim - len(self.spec.event_shape)).sum(-1)

    def elbo_terms(self, z: Tensor, generator: torch.Generator | None = None,
                   labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One-sample ``(log p(z | code), KL(q || p))`` per example for model-space ``z``: (batch,) each."""
        params = self.encoder_params(z, labels)
        codes = self.latent.sample(params, 1, generator)
        return self.decoder_log_lik(z, self.decoder_output(codes, labels))[0], self.latent.kl(params)

    def log_weights(self, z: Tensor, k: int, generator: torch.Generator | None = None,
                    condition: Tensor | None = None) -> Tensor:
        """(k, batch) importance log-weights ``log p(z, c_i) - log q(c_i | z)``, ``c_i ~ q``."""
        labels = self.labels(condition, len(z))
        params = self.encoder_params(z, labels)
        codes = self.latent.sample(params, k, generator)
        return (self.decoder_log_lik(z, self.decoder_output(codes, labels)) + self.latent.log_prior(codes)
                - self.latent.log_q(params, codes))

    def kl_weight(self) -> float:
        """The annealed beta at the current step (`kl_weight_schedule`)."""
        c = self.config
        return kl_weight_schedule(int(self.steps_done), c.beta, c.kl_schedule, c.kl_warmup_steps,
                                  c.kl_total_steps, c.kl_cycles, c.kl_ratio)

    # -- protocol ------------------------------------------------------------------------------
    def _log_prob(self, z: Tensor, *, condition: Tensor | None = None,
                  generator: torch.Generator | None = None) -> Tensor:
        if self.config.objective == "iwae":
            return log_mean_exp(self.log_weights(z, self.config.k, generator, condition), 0)
        log_lik, kl = self.elbo_terms(z, generator, self.labels(condition, len(z)))
        return log_lik - kl  # beta = 1: the true bound

    def _sample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        out = self.decoder_output(self.latent.prior_sample(n, generator, self.steps_done), self.labels(condition, n))
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

    def _train_labels(self, y: Tensor | None, n: int, generator: torch.Generator | None) -> Tensor | None:
        if not self.n_labels:
            return None
        if y is None:
            return self.labels(None, n)
        drop = torch.rand(n, generator=generator, device=y.device) < self.config.label_dropout
        return torch.where(drop, torch.full_like(y, self.n_labels), y)

    def elbo_loss(self, batch: Batch) -> Loss:
        """Mean ``-(bound with the KL weight annealed)`` in nats (data space); logs the true bound
        (``neg_elbo`` or ``neg_iwae``, beta = 1). Discrete latents (or ``gradient=reinforce``) add
        the score-function term with the chosen baseline; its value, and that of the learned
        baseline's regression loss, is zero, so the loss value is the bound itself."""
        g, c = batch.generator, self.config
        z, logdet = self.pre(batch.x, g)
        labels = self._train_labels(batch.y, len(z), g)
        params = self.encoder_params(z, labels)
        codes = self.latent.sample(params, c.k if c.objective == "iwae" else 1, g)
        if not self.reparam:
            codes = codes.detach()
        log_lik = self.decoder_log_lik(z, self.decoder_output(codes, labels))  # (k, batch)
        # log q(c|x) enters only the IWAE weights and the score-function term; the reparameterised
        # ELBO uses the closed-form KL, so it is not computed there
        log_q = self.latent.log_q(params, codes) if c.objective == "iwae" or not self.reparam else None
        beta = self.kl_weight()
        if c.objective == "iwae":  # Burda et al. 2016, Eq. 8; beta weights log p(c) - log q(c|x)
            log_r = self.latent.log_prior(codes) - log_q
            objective = log_mean_exp(log_lik + beta * log_r, 0)
            bound, signal, log_q = log_mean_exp(log_lik + log_r, 0), objective, log_q.sum(0)
            logs = {}
        else:
            kl = self.latent.kl(params)
            objective = log_lik[0] - beta * kl
            bound = objective if beta == 1 else log_lik[0] - kl
            signal, log_q = log_lik[0], log_q[0] if log_q is not None else None
            logs = {"kl": float(kl.detach().mean())}
        extra = None
        if not self.reparam:
            b = self.baseline(signal, z) if self.baseline is not None else 0.0
            objective = objective + reinforce_surrogate(log_q, signal, b)
            if self.baseline is not None:
                fit = self.baseline.loss(signal, z)
                extra = fit - fit.detach()  # trains the learned baseline; adds nothing to the value
                logs["baseline_mse"] = float(fit.detach())
                self.baseline.update(signal)
        loss = -(objective + logdet).mean()
        if extra is not None:
            loss = loss + extra
        with torch.no_grad():
            self.steps_done += 1
            logs[f"neg_{c.objective}"] = float(-(bound + logdet).mean())
            logs["beta"] = beta
        return Loss(loss, logs)

    def objectives(self) -> list[Objective]:
        return [Objective(self.config.objective, list(self.parameters()), self.elbo_loss)]

    # -- Latent --------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """Posterior means (discrete latents: probabilities): x: (batch, *event_shape) in data
        space -> (batch, latent_dim)."""
        x = self.check_input(x)
        condition = self._check_condition(condition, len(x))
        z, _ = self.pre(x, torch.Generator(device=x.device).manual_seed(0))
        return self.latent.mean(self.encoder_params(z, self.labels(condition, len(z))))

    @torch.no_grad()
    def decode(self, codes: Tensor, condition: Tensor | None = None) -> Tensor:
        """Decoder means in data space: codes: (batch, latent_dim) -> (batch, *event_shape)."""
        p = self.steps_done
        codes = torch.as_tensor(codes, dtype=p.dtype, device=p.device).reshape(-1, self.latent_dim)
        condition = self._check_condition(condition, len(codes))
        return self.pre.inverse(self._mean(self.decoder_output(codes, self.labels(condition, len(codes)))))
