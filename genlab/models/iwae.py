"""Importance-weighted autoencoder (Burda, Grosse & Salakhutdinov 2016): a `vae` trained on
``IWAE_k = E[log (1/k) sum_i p(x, z_i) / q(z_i|x)]`` (their Eq. 8) instead of the ELBO, with k = 5
by default; ``log_prob`` is the same IWAE_k bound. Every other `vae` setting applies.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..protocol import register
from .vae import VAE, VAEConfig


@dataclass
class IWAEConfig(VAEConfig):
    objective: Literal["elbo", "iwae"] = field(default="iwae", metadata={
        "help": "training objective and log_prob bound: iwae (k samples) | elbo"})
    k: int = field(default=5, metadata={"help": "importance samples of the bound"})


@register("iwae")
class IWAE(VAE):
    """`VAE` whose objective defaults to IWAE_k (k = 5)."""
    taxonomy = "VAE"

    Config = IWAEConfig
    training = "IWAE bound"
