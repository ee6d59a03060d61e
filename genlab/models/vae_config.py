"""Configuration of the `vae` family (and `iwae`): hyperparameters, their checks, and the
decoder likelihood chosen from the data (see `genlab.models.vae`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..data.spec import DataSpec, Kind
from ..objectives.elbo import kl_weight_schedule
from ..protocol import NotSupported

LOG_SCALE_MIN = -7.0  # lower bound on decoder log-scales (as in PixelCNN++)


def _h(text: str) -> dict:
    return {"help": text}


@dataclass
class VAEConfig:
    latent_dim: int | None = field(default=None, metadata=_h(
        "number of latent variables (categorical: each has `categories` values; none: 32 for binary "
        "data under net=default, else 16)"))
    hidden: int | None = field(default=None, metadata=_h(
        "width of the encoder / decoder hidden layers (none: 512 for binary data under net=default, else 256)"))
    depth: int | None = field(default=None, metadata={"max": 100} | _h(
        "hidden layers of an MLP encoder / decoder (none: 1 for binary data under net=default, else 2)"))
    activation: Literal["silu", "relu", "elu", "tanh"] = field(default="silu", metadata=_h(
        "activation of the encoder and decoder: silu | relu | elu | tanh"))
    beta: float = field(default=1.0, metadata=_h("weight of the KL term in training (beta-VAE)"))
    kl_schedule: Literal["constant", "linear", "cyclical"] = field(default="linear", metadata=_h(
        "KL weight schedule: constant | linear (0 -> beta over kl_warmup_steps; constant if 0) | "
        "cyclical (Fu et al. 2019: kl_cycles ramps over kl_total_steps)"))
    kl_warmup_steps: int = field(default=0, metadata=_h("steps of the linear KL warm-up"))
    kl_total_steps: int = field(default=0, metadata=_h("steps covered by the cyclical schedule (beta afterwards)"))
    kl_cycles: int = field(default=4, metadata=_h("number of cycles of the cyclical schedule"))
    kl_ratio: float = field(default=0.5, metadata=_h("share of each cycle spent rising from 0 to beta"))
    objective: Literal["elbo", "iwae"] = field(default="elbo", metadata=_h(
        "training objective and log_prob bound: elbo | iwae (importance-weighted, k samples)"))
    k: int = field(default=5, metadata=_h("importance samples of the iwae objective / bound"))
    latent: Literal["gaussian", "bernoulli", "categorical"] = field(default="gaussian", metadata=_h("latent distribution: gaussian | bernoulli | categorical"))
    categories: int = field(default=10, metadata=_h("values of each categorical latent variable"))
    gradient: Literal["auto", "reparam", "reinforce"] = field(default="auto", metadata=_h(
        "encoder gradient: auto (reparam for gaussian, reinforce for discrete) | reparam | reinforce"))
    baseline: Literal["none", "moving_average", "learned"] = field(default="moving_average", metadata=_h(
        "REINFORCE control variate: none | moving_average | learned (NVIL: average + net b(x))"))
    baseline_decay: float = field(default=0.9, metadata=_h("decay of the baseline's moving average"))
    net: Literal["default", "auto", "mlp", "conv"] = field(default="default", metadata=_h(
        "networks: default (binary data: an MLP with one hidden layer of 512; other images: conv; "
        "vectors: mlp) | auto (conv for images, mlp for vectors: what runs saved before 'default' "
        "used) | mlp | conv"))
    conditional: bool = field(default=True, metadata=_h("condition on the labels when the data have them"))
    label_dim: int = field(default=16, metadata=_h("size of the label embedding"))
    label_dropout: float = field(default=0.2, metadata=_h("share of training labels replaced by 'no label'"))
    likelihood: Literal["auto", "gaussian", "bernoulli", "logistic"] = field(default="auto", metadata=_h(
        "decoder likelihood: auto | gaussian | bernoulli | logistic (auto: gaussian for continuous, "
        "bernoulli for binary, discretized logistic for discrete data)"))
    sample_mean: bool = field(default=False, metadata=_h("sample() returns decoder means instead of draws"))


def resolve_likelihood(spec: DataSpec, choice: str) -> str:
    """The decoder likelihood for ``spec``; raises for a choice the data cannot have."""
    if spec.kind in (Kind.CATEGORICAL, Kind.TEXT):
        raise NotSupported(f"vae: no decoder likelihood for {spec.kind.value} data; use an "
                           "autoregressive family")
    if choice == "auto":
        return {Kind.CONTINUOUS: "gaussian", Kind.BINARY: "bernoulli"}.get(spec.kind, "logistic")
    if choice == "bernoulli" and spec.levels != 2:
        raise ValueError("vae.likelihood='bernoulli' needs binary data (2 levels)")
    if choice == "logistic" and not spec.is_discrete:
        raise ValueError("vae.likelihood='logistic' needs discrete data; use 'gaussian'")
    return choice


@dataclass(frozen=True)
class Architecture:
    """The latent size and encoder / decoder shape a config resolves to on some data
    (`resolve_architecture`)."""

    conv: bool
    hidden: int
    depth: int
    latent_dim: int


# Binary data under net=default: one hidden layer of 512 (the shape of pythae's default MLP VAE)
# and 32 latents. On binarized MNIST-5k (4,000 training images) this generalizes better than two
# layers of 256 or 16 latents (bench/binarized_vae.py).
BINARY_ARCHITECTURE = Architecture(conv=False, hidden=512, depth=1, latent_dim=32)


def resolve_architecture(spec: DataSpec, config: VAEConfig) -> Architecture:
    """The architecture of ``config`` on ``spec``: ``net=default`` picks `BINARY_ARCHITECTURE` for
    binary data (any shape), conv for other images, an MLP for vectors; ``net=auto`` is the
    earlier rule (conv for every image), kept so that runs saved with it rebuild the same networks.
    Settings given explicitly (``hidden``, ``depth``, ``latent_dim``) win."""
    c = config
    if c.net == "default" and spec.kind is Kind.BINARY:
        base = BINARY_ARCHITECTURE
    else:
        conv = c.net == "conv" or (c.net in ("default", "auto") and spec.is_image)
        base = Architecture(conv=conv, hidden=256, depth=2, latent_dim=16)
    return Architecture(conv=base.conv, hidden=base.hidden if c.hidden is None else c.hidden,
                        depth=base.depth if c.depth is None else c.depth,
                        latent_dim=base.latent_dim if c.latent_dim is None else c.latent_dim)


def _check(config: VAEConfig) -> None:
    c = config
    if c.k < 1 or c.label_dim < 1 or any(v is not None and v < 1 for v in (c.latent_dim, c.hidden, c.depth)):
        raise ValueError("vae: latent_dim, hidden, depth, k and label_dim must be >= 1")
    if c.beta < 0 or c.kl_warmup_steps < 0 or not 0 <= c.label_dropout < 1:
        raise ValueError("vae: beta and kl_warmup_steps must be >= 0, label_dropout in [0, 1)")
    if c.gradient == "reparam" and c.latent != "gaussian":
        raise ValueError(f"vae: {c.latent} latents have no reparameterization; use gradient=reinforce")
    kl_weight_schedule(0, c.beta, c.kl_schedule, c.kl_warmup_steps, c.kl_total_steps, c.kl_cycles, c.kl_ratio)
