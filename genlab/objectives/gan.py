"""GAN losses and regularizers as pure functions of critic outputs, critics and weights.

Losses (``critic_loss(name, real, fake)`` / ``generator_loss(name, fake)`` dispatch by name):

* ``minimax``: the original game (Goodfellow et al. 2014, Eq. 1); G minimises ``E[log(1 - D(G(z)))]``
  (saturating: vanishing gradients when D rejects the fakes).
* ``ns``: the same critic, G minimises ``-E[log D(G(z))]`` (Goodfellow et al. 2014, Sec. 3).
* ``wgan`` / ``wgan-gp``: ``max_D E[D(x)] - E[D(G(z))]`` over 1-Lipschitz D (Arjovsky et al. 2017),
  Lipschitz by weight clipping (WGAN) or the gradient penalty on interpolates (Gulrajani et al. 2017).
* ``hinge``: ``E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]``, G: ``-E[D(G(z))]`` (Lim & Ye 2017;
  Miyato et al. 2018).
* ``lsgan``: least squares with targets 1/0 (Mao et al. 2017), the loss of CycleGAN.

Critic outputs are logits of any shape (batch, ...), e.g. PatchGAN maps; means run over all entries.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LOSSES = ("minimax", "ns", "wgan", "wgan-gp", "hinge", "lsgan")


def critic_loss_ns(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator loss of the original GAN (Goodfellow et al. 2014, Eq. 1), as a minimisation:
    ``-E[log D(x)] - E[log(1 - D(G(z)))]`` with ``D = sigmoid(logits)``.

    Args:
        real_logits: (batch, ...) critic outputs on data.
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


def generator_loss_minimax(fake_logits: Tensor) -> Tensor:
    """Saturating generator loss ``E[log(1 - D(G(z)))] = -E[softplus(logits)]`` (Eq. 1)."""
    return -F.softplus(fake_logits).mean()


def critic_loss_wgan(real: Tensor, fake: Tensor) -> Tensor:
    """``-(E[D(x)] - E[D(G(z))])``: minus the critic's estimate of W1 (Arjovsky et al. 2017, Eq. 3)."""
    return fake.mean() - real.mean()


def generator_loss_wgan(fake: Tensor) -> Tensor:
    """``-E[D(G(z))]`` (also the hinge GAN's generator loss)."""
    return -fake.mean()


def critic_loss_hinge(real: Tensor, fake: Tensor) -> Tensor:
    """``E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]`` (Lim & Ye 2017, Eq. 5)."""
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def critic_loss_lsgan(real: Tensor, fake: Tensor) -> Tensor:
    """``E[(D(x) - 1)^2] + E[D(G(z))^2]`` (Mao et al. 2017, Eq. 9 with a=0, b=c=1; halves dropped)."""
    return (real - 1).pow(2).mean() + fake.pow(2).mean()


def generator_loss_lsgan(fake: Tensor) -> Tensor:
    """``E[(D(G(z)) - 1)^2]``."""
    return (fake - 1).pow(2).mean()


_CRITIC = {"minimax": critic_loss_ns, "ns": critic_loss_ns, "wgan": critic_loss_wgan,
           "wgan-gp": critic_loss_wgan, "hinge": critic_loss_hinge, "lsgan": critic_loss_lsgan}
_GENERATOR = {"minimax": generator_loss_minimax, "ns": generator_loss_ns, "wgan": generator_loss_wgan,
              "wgan-gp": generator_loss_wgan, "hinge": generator_loss_wgan, "lsgan": generator_loss_lsgan}


def check_loss(name: str, where: str) -> str:
    if name not in LOSSES:
        raise ValueError(f"{where}.loss must be one of {', '.join(LOSSES)}; got {name!r}")
    return name


def critic_loss(name: str, real: Tensor, fake: Tensor) -> Tensor:
    """The critic's loss ``name`` (see `LOSSES`) on outputs for data and (detached) fakes."""
    return _CRITIC[name](real, fake)


def generator_loss(name: str, fake: Tensor) -> Tensor:
    """The generator's loss ``name`` on the critic's outputs for fakes."""
    return _GENERATOR[name](fake)


# ------------------------------------------------------------------------------ regularizers
def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor,
                     generator: torch.Generator | None = None) -> Tensor:
    """WGAN-GP's two-sided penalty ``E[(||grad_x D(x_hat)||_2 - 1)^2]`` on random interpolates
    ``x_hat = eps x + (1 - eps) x~``, ``eps ~ U[0, 1]`` per example (Gulrajani et al. 2017, Alg. 1).

    Args:
        critic: maps (batch, *shape) to outputs (batch, ...); outputs are summed per example.
        real, fake: (batch, *shape); ``fake`` detached from the generator.
    Returns:
        scalar, differentiable in the critic's parameters (``create_graph=True``).
    """
    eps = torch.rand((len(real),) + (1,) * (real.ndim - 1), generator=generator, dtype=real.dtype,
                     device=real.device)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    out = critic(x_hat).reshape(len(x_hat), -1).sum(1)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def r1_penalty(critic: Callable[[Tensor], Tensor], real: Tensor) -> Tensor:
    """R1: ``E_data[||grad_x D(x)||^2]`` on real data only (Mescheder et al. 2018, Eq. 9; the
    caller multiplies by gamma / 2)."""
    x = real.detach().requires_grad_(True)
    out = critic(x).reshape(len(x), -1).sum(1)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()


def orthogonal_penalty(module: nn.Module, off_diagonal: bool = True) -> Tensor:
    """Orthogonal regularisation summed over the weight matrices of ``module`` (Linear / Conv,
    reshaped to (out, in * k * k)): ``||W W^T (.) (1 - I)||_F^2`` (BigGAN, Brock et al. 2019,
    Eq. 3) or, with ``off_diagonal=False``, ``||W W^T - I||_F^2`` (Brock et al. 2017).
    Weights under spectral normalisation are penalised through their normalised value."""
    total = None
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            w = m.weight.flatten(1)
            gram = w @ w.T
            eye = torch.eye(len(gram), dtype=gram.dtype, device=gram.device)
            term = (gram * (1 - eye)).pow(2).sum() if off_diagonal else (gram - eye).pow(2).sum()
            total = term if total is None else total + term
    if total is None:
        raise ValueError("orthogonal_penalty: the module has no Linear or Conv layers")
    return total


def spectral_normalize(module: nn.Module) -> nn.Module:
    """Put spectral normalisation (Miyato et al. 2018) on every Linear / Conv layer of ``module``
    (``torch.nn.utils.parametrizations.spectral_norm``: one power iteration per forward in
    training mode; conv weights are normalised as (out, in * k * k) matrices). Returns ``module``."""
    from torch.nn.utils.parametrizations import spectral_norm

    for m in list(module.modules()):
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            spectral_norm(m, dim=1 if isinstance(m, nn.ConvTranspose2d) else 0)
    return module


def clip_weights(module: nn.Module, bound: float) -> None:
    """Project every parameter of ``module`` onto ``[-bound, bound]`` in place (WGAN, Alg. 1).

    Parameters already within the bound are not written to, so calling this between two
    forward passes of one graph (a forward pre-hook) leaves autograd's saved tensors valid."""
    with torch.no_grad():
        for p in module.parameters():
            if p.abs().max() > bound:
                p.clamp_(-bound, bound)
