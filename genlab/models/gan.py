"""Generative adversarial networks: every classic loss and regularizer on one ``gan`` family.

A generator ``G: z ~ N(0, I_L) -> x`` and a critic ``D: x -> R`` trained by the one trainer
through two objectives (critic, then generator every ``n_critic`` steps). The loss is a setting
(``minimax``, ``ns``, ``wgan``, ``wgan-gp``, ``hinge``, ``lsgan``; see `genlab.objectives.gan`), and
so are the regularizers: spectral normalisation (Miyato et al. 2018), orthogonal regularisation
(Brock et al. 2019), the R1 penalty (Mescheder et al. 2018), WGAN's weight clipping and WGAN-GP's
gradient penalty. MLPs for vectors, DCGAN-style convolutional networks (Radford et al. 2016,
without batch normalisation) for images. G works in model space (``self.pre``).

`AdversarialConfig`, `apply_regularizers`, `critic_penalties` and `generator_penalties` are shared
with ``cgan``, ``pix2pix`` and ``cyclegan``.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Callable, Iterator, Literal

import torch
from torch import Tensor, nn

from ..data.spec import DataSpec, Kind
from ..nn import MLP, ConvDecoder, ConvEncoder
from ..objectives.gan import (LOSSES, clip_weights, critic_loss, generator_loss, gradient_penalty,
                              orthogonal_penalty, r1_penalty, spectral_normalize)
from ..protocol import register, Batch, Decoder, Density, GenerativeModel, Loss, NotSupported, Objective


@dataclass
class AdversarialConfig:
    lr: float = field(default=2e-4, metadata={"help": "Adam learning rate of the generator (and of the critic "
                                                      "unless critic_lr is set)"})
    betas: tuple[float, float] = field(default=(0.5, 0.999), metadata={
        "help": "Adam betas of both players (DCGAN: 0.5, 0.999; WGAN-GP: 0.0, 0.9)"})
    n_critic: int = field(default=1, metadata={"help": "critic steps per generator step"})
    loss: Literal[LOSSES] = field(default="ns", metadata={
        "help": "minimax | ns (non-saturating) | wgan (weight clipping) | wgan-gp | hinge | lsgan"})
    clip: float = field(default=0.01, metadata={"help": "wgan: bound c of the critic's weights, [-c, c]"})
    gp_weight: float = field(default=10.0, metadata={"help": "wgan-gp: weight lambda of the gradient penalty"})
    r1: float = field(default=0.0, metadata={
        "help": "R1 penalty gamma: adds gamma/2 E||grad D(x)||^2 on real data to any critic (0: off)"})
    spectral_norm: Literal["none", "critic", "both"] = field(default="none", metadata={
        "help": "spectral normalisation of the layers of: none | critic | both"})
    ortho: float = field(default=0.0, metadata={
        "help": "orthogonal regularisation weight (BigGAN's off-diagonal form; 0: off)"})
    ortho_on: Literal["generator", "critic", "both"] = field(default="generator", metadata={"help": "ortho applies to: generator | critic | both"})
    critic_lr: float | None = field(default=None, metadata={
        "help": "Adam learning rate of the critic, for two time-scale updates (TTUR, Heusel et al. 2017; none: lr)"})


def check_adversarial(c: AdversarialConfig, where: str) -> None:
    """Raise a ValueError naming the bad setting of an adversarial config."""
    if c.n_critic < 1 or c.lr <= 0 or (c.critic_lr is not None and c.critic_lr <= 0):
        raise ValueError(f"{where}: n_critic must be >= 1 and lr, critic_lr > 0")
    if c.clip <= 0 or c.gp_weight < 0 or c.r1 < 0 or c.ortho < 0:
        raise ValueError(f"{where}: clip must be > 0 and gp_weight, r1, ortho >= 0")


def apply_regularizers(c: AdversarialConfig, generators: list[nn.Module], critics: list[nn.Module]) -> None:
    """Spectral normalisation of the chosen players' layers; for ``wgan``, weight clipping as a
    forward pre-hook: the critic's weights are projected onto ``[-clip, clip]`` before every use,
    which is the same as clipping after every update (Arjovsky et al. 2017, Alg. 1, line 7)."""
    if c.spectral_norm in ("critic", "both"):
        for m in critics:
            spectral_normalize(m)
    if c.spectral_norm == "both":
        for m in generators:
            spectral_normalize(m)
    if c.loss == "wgan":
        for m in critics:
            m.register_forward_pre_hook(lambda mod, args, bound=c.clip: clip_weights(mod, bound))


def critic_penalties(c: AdversarialConfig, critic: Callable[[Tensor], Tensor], critic_module: nn.Module,
                     real: Tensor, fake: Tensor, generator: torch.Generator | None) -> tuple[Tensor, dict]:
    """The critic's regularizers for this config: WGAN-GP's penalty, R1, orthogonality.
    Returns (scalar to add to the loss, logs)."""
    total, logs = real.new_zeros(()), {}
    if c.loss == "wgan-gp" and c.gp_weight > 0:
        gp = gradient_penalty(critic, real, fake, generator)
        total, logs["gp"] = total + c.gp_weight * gp, float(gp.detach())
    if c.r1 > 0:
        r1 = r1_penalty(critic, real)
        total, logs["r1"] = total + 0.5 * c.r1 * r1, float(r1.detach())
    if c.ortho > 0 and c.ortho_on in ("critic", "both"):
        o = orthogonal_penalty(critic_module)
        total, logs["ortho"] = total + c.ortho * o, float(o.detach())
    return total, logs


def generator_penalties(c: AdversarialConfig, generator_module: nn.Module) -> tuple[Tensor | float, dict]:
    """The generator's regularizers (orthogonality). Returns (value to add, logs)."""
    if c.ortho > 0 and c.ortho_on in ("generator", "both"):
        o = orthogonal_penalty(generator_module)
        return c.ortho * o, {"ortho": float(o.detach())}
    return 0.0, {}


@contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Build graphs in which the modules' parameters are constants (no gradients reach them)."""
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Run ``module`` in eval mode (spectral norm then leaves its power-iteration state alone)."""
    was = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was)


@dataclass
class GANConfig(AdversarialConfig):
    """`AdversarialConfig` with the defaults of ``gan`` (and ``cgan``, which inherits them): the
    non-saturating loss with R1 (Mescheder et al. 2018) and Adam betas (0, 0.99) as in StyleGAN2.
    R1 keeps the critic smooth on the data, which stops the collapse onto one image. The learning
    rate, R1 weight and network shape left at None are chosen from the data (`resolve_config`);
    bench/gan_modes.py measures both sets."""

    loss: Literal[LOSSES] | None = field(default=None, metadata={
        "help": "minimax | ns (non-saturating) | wgan (weight clipping) | wgan-gp | hinge | lsgan "
                "(none: ns for images, lsgan for vectors)"})
    lr: float | None = field(default=None, metadata={
        "help": "Adam learning rate of the generator (and of the critic unless critic_lr is set; "
                "none: 5e-4 for images, 1e-3 for vectors)"})
    betas: tuple[float, float] = field(default=(0.0, 0.99), metadata={
        "help": "Adam betas of both players (StyleGAN2 / R1: 0.0, 0.99; DCGAN: 0.5, 0.999; WGAN-GP: 0.0, 0.9)"})
    r1: float | None = field(default=None, metadata={
        "help": "R1 penalty gamma: adds gamma/2 E||grad D(x)||^2 on real data to any critic "
                "(0: off; none: 1 for images, 0.1 for vectors)"})
    latent_dim: int | None = field(default=None, metadata={
        "help": "size of the generator's noise z (none: 32 for images; for vectors the data's "
                "dimension, at most 32)"})
    hidden: int | None = field(default=None, metadata={
        "help": "width of the hidden layers of G and D (none: 256 for images, 128 for vectors)"})
    depth: int | None = field(default=None, metadata={"max": 100, 
        "help": "hidden layers of the MLPs, vector data (none: 3; images keep 2, unused by the conv nets)"})


# Images: the settings measured on digits. Vectors: standardized data can have modes far narrower
# than 1 (the 25-Gaussian grid's have std ~0.018), which R1 = 1 smooths away; a light R1, a faster
# lr and a narrower, deeper MLP with a noise as wide as the data cover them, and the least-squares
# loss puts more samples on the modes than ns at equal steps (bench/gan_modes.py).
IMAGE_DEFAULTS = {"loss": "ns", "lr": 5e-4, "r1": 1.0, "hidden": 256, "depth": 2}
VECTOR_DEFAULTS = {"loss": "lsgan", "lr": 1e-3, "r1": 0.1, "hidden": 128, "depth": 3}


def resolve_config(spec: DataSpec, config: GANConfig) -> GANConfig:
    """``config`` with every setting left at None chosen from ``spec`` (`IMAGE_DEFAULTS` for
    images, `VECTOR_DEFAULTS` and a noise of ``min(spec.dim, 32)`` for vectors); settings given
    explicitly win. The model keeps the resolved copy, so a saved run records the values it used."""
    base = dict(IMAGE_DEFAULTS, latent_dim=32) if spec.is_image else \
        dict(VECTOR_DEFAULTS, latent_dim=min(spec.dim, 32))
    return replace(config, **{k: v for k, v in base.items() if getattr(config, k) is None})


def adversarial_objectives(model) -> list[Objective]:
    """The critic objective, then the generator's, stepped every ``config.n_critic`` steps; both
    use the model's ``critic_loss`` / ``generator_loss`` and the config's ``betas``; the critic
    learns at ``critic_lr`` (when set) and the generator at ``lr``."""
    c = model.config
    betas = tuple(c.betas)
    critic_lr = c.lr if c.critic_lr is None else c.critic_lr
    return [Objective("critic", list(model.critic.parameters()), model.critic_loss, lr=critic_lr, betas=betas),
            Objective("generator", list(model.generator.parameters()), model.generator_loss,
                      every=c.n_critic, lr=c.lr, betas=betas)]


class GANBase(GenerativeModel, Decoder):
    """A generator and a critic with a loss and regularizers chosen by config (``gan``, ``cgan``)."""

    Config = GANConfig
    density = Density.NONE
    data_kinds = frozenset({Kind.CONTINUOUS, Kind.DISCRETE, Kind.BINARY})  # ordered values
    sampling = "fast"
    training = "min-max"
    default_epochs = 200
    # batch 64: more updates per second on small data; EMA of the weights (Yazici et al. 2019):
    # the saved generator, hence every sample, is the average over the last ~100 steps
    default_train = {"batch_size": 64, "ema": 0.99, "patience": None}

    def __init__(self, spec: DataSpec, config: GANConfig):
        config = resolve_config(spec, config)
        super().__init__(spec, config)
        check_adversarial(config, self.name or "gan")
        if config.latent_dim < 1 or config.hidden < 1 or config.depth < 1:
            raise ValueError("gan: latent_dim, hidden and depth must be >= 1")
        self.latent_dim = config.latent_dim
        self.generator, self.critic = self._build(spec, config)
        apply_regularizers(config, [self.generator], [self.critic])

    def _build(self, spec: DataSpec, c: GANConfig) -> tuple[nn.Module, nn.Module]:
        h, leaky, L = c.hidden, partial(nn.LeakyReLU, 0.2), c.latent_dim
        if spec.is_image:
            return (ConvDecoder(L, spec.event_shape, channels=(64, 32), hidden=h, act=nn.ReLU),
                    ConvEncoder(spec.event_shape, 1, channels=(32, 64), hidden=h, act=leaky))
        return MLP(L, spec.dim, (h,) * c.depth, act=nn.ReLU), MLP(spec.dim, 1, (h,) * c.depth, act=leaky)

    def _noise(self, n: int, generator: torch.Generator | None) -> Tensor:
        p = next(self.generator.parameters())
        return torch.randn(n, self.latent_dim, generator=generator, dtype=p.dtype, device=p.device)

    def _generate(self, code: Tensor, y: Tensor | None = None) -> Tensor:
        """(batch, latent_dim) -> model-space samples (batch, *event_shape); ``y`` unused here."""
        return self.generator(code).reshape(len(code), *self.spec.event_shape)

    def _logits(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Model-space (batch, *event_shape) -> critic outputs (batch,); ``y`` unused here."""
        return self.critic(z if self.spec.is_image else z.flatten(1)).squeeze(-1)

    def _labels(self, batch: Batch) -> Tensor | None:
        return None

    # -- objectives ----------------------------------------------------------------------------
    def critic_loss(self, batch: Batch) -> Loss:
        """The critic's loss on data and detached fakes, plus its regularizers."""
        c = self.config
        real, _ = self.pre(batch.x, batch.generator)
        y = self._labels(batch)
        with torch.no_grad():
            fake = self._generate(self._noise(len(real), batch.generator), y)
        real_out, fake_out = self._logits(real, y), self._logits(fake, y)
        adv = critic_loss(c.loss, real_out, fake_out)
        reg, logs = critic_penalties(c, lambda v: self._logits(v, y), self.critic, real, fake, batch.generator)
        logs.update(critic=float(adv.detach()), real=float(real_out.detach().mean()),
                    fake=float(fake_out.detach().mean()))
        return Loss(adv + reg, logs)

    def generator_loss(self, batch: Batch) -> Loss:
        """The generator's loss on fresh fakes; the critic is frozen, so D gets no gradient."""
        y = self._labels(batch)
        fake = self._generate(self._noise(len(batch.x), batch.generator), y)
        with frozen(self.critic):
            adv = generator_loss(self.config.loss, self._logits(fake, y))
        reg, logs = generator_penalties(self.config, self.generator)
        return Loss(adv + reg, {"generator": float(adv.detach()), **logs})

    def objectives(self) -> list[Objective]:
        return adversarial_objectives(self)

    # -- sampling -------------------------------------------------------------------------------
    def _sample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        with eval_mode(self.generator):
            return self._generate(self._noise(n, generator), condition)

    @torch.no_grad()
    def decode(self, codes: Tensor, condition: Tensor | None = None) -> Tensor:
        """Noise to data space: codes: (batch, latent_dim), condition: (batch,) labels for a
        `Conditional` subclass (None: unknown) -> (batch, *event_shape)."""
        p = next(self.generator.parameters())
        codes = torch.as_tensor(codes, dtype=p.dtype, device=p.device).reshape(-1, self.latent_dim)
        cond = self._check_condition(condition, len(codes))
        with eval_mode(self.generator):
            return self.pre.inverse(self._generate(codes, cond))


@register("gan")
class GAN(GANBase):
    """GAN with a loss and regularizers chosen by config: density NONE, fast sampling. Its
    generator decodes noise (`Decoder`); it has no encoder, so it is not a `Latent` family."""
    taxonomy = "GAN"
    compare_minutes = 1.5  # ~2,000 steps of batch 64 on digits on one thread

    in_default_compare = True  # one of `genlab compare`'s default families

    def encode(self, x: Tensor) -> Tensor:
        """Not a capability (the class is no `Latent`): says why a GAN cannot map x to a code."""
        raise NotSupported(f"{self.name}: a GAN has no encoder, so x cannot be mapped to a code; use a "
                           "VAE or a flow, or invert G by optimisation")
