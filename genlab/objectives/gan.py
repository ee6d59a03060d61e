"""GAN losses as pure functions of the critic's logits; later variants (WGAN, LSGAN, hinge)
add theirs here with the same signatures.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def critic_loss_ns(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator loss of the original GAN (Goodfellow et al. 2014, Eq. 1), as a minimisation:
    ``-E[log D(x)] - E[log(1 - D(G(z)))]`` with ``D = sigmoid(logits)``.

    Args:
        real_logits: (batch,) or (batch, 1) critic outputs on data.
        fake_logits: critic outputs on generated samples (detached from the generator).
    Returns:
        scalar.
    """
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss_ns(fake_logits: Tensor) -> Tensor:
    """Non-saturating generator loss ``-E[log D(G(z))]`` (Goodfellow et al. 2014, Sec. 3): the
    same fixed point as ``E[log(1 - D(G(z)))]`` but strong gradients when D rejects the samples.
    """
    return F.softplus(-fake_logits).mean()
