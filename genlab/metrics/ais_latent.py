"""Annealed importance sampling of ``log p(x)`` for decoder-based latent models (Neal 2001;
Wu, Burda, Salakhutdinov & Grosse 2017, "On the quantitative analysis of decoder-based generative
models", sec. 3).

For each example ``x`` the path of unnormalized densities over codes ``c``

    f_beta(c) = p(c) p(x | c)^beta,   0 = beta_0 < beta_1 < ... < beta_T = 1,

runs from the prior (normalizer 1, drawn exactly) to ``p(c) p(x | c)`` (normalizer ``p(x)``).
Each chain starts at ``c ~ p(c)``, adds ``(beta_t - beta_{t-1}) log p(x | c)`` to its log weight
and then moves by one Hamiltonian Monte Carlo transition that leaves ``f_{beta_t}`` invariant
(``leapfrog`` steps; the step size adapted per chain towards 65% acceptance, as Wu et al. do;
the adaptation makes the estimate slightly biased, which more steps remove).
``p̂(x) = mean_m w_m`` is unbiased (``E[w] = p(x)``), so ``log p̂(x)`` is a stochastic *lower*
bound that tightens with more steps: ELBO <= IWAE_k <= AIS <= log p(x) in expectation, with AIS
approaching ``log p(x)`` as ``steps`` grows. The schedule is the sigmoid one of Wu et al. (2017).

Supported: the `genlab.protocol.LatentVariable` capability (vae, iwae) with continuous (Gaussian)
codes: HMC needs a differentiable density over codes; others raise `NotSupported`. Results are in
data space (nats per example), ``log p(x) = log p(z) + log|dz/dx|`` through the model's
preprocessing, as `log_prob` is.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..objectives.latents import GaussianLatent
from ..protocol import GenerativeModel, LatentVariable, NotSupported
from ..samplers.hmc import hmc_step
from ..samplers.ais import sigmoid_schedule


def check(model: GenerativeModel) -> None:
    """Raise `NotSupported` unless AIS over codes applies to ``model``."""
    if not isinstance(model, LatentVariable) or not isinstance(model.latent, GaussianLatent):
        raise NotSupported(f"{model.name}: AIS over codes needs a latent-variable model with Gaussian latents "
                           "(HMC moves need a differentiable density over codes); use log_prob / the IWAE bound "
                           "instead")


def ais_log_prob(model: GenerativeModel, x: Tensor, *, steps: int = 500, chains: int = 16, leapfrog: int = 10,
                 step_size: float = 0.05, condition: Tensor | None = None, batch_size: int = 256,
                 generator: torch.Generator | None = None) -> Tensor:
    """AIS estimates of ``log p(x)`` per example: x (n, *event_shape) data space -> (n,) nats.

    Args:
        steps: intermediate distributions (``T``); cost is ``steps * (leapfrog + 1)`` decoder
            passes with gradients on ``chains * batch`` codes.
        chains: independent chains per example (their weights are averaged).
        leapfrog, step_size: HMC trajectory length and initial step size (adapted per chain).
        condition: labels for a conditional VAE (None: its "no label" p(x)).
        generator: the chains' randomness (prior draws, momenta, accept tests).
    """
    check(model)
    if chains < 1 or leapfrog < 1 or step_size <= 0:
        raise ValueError("chains and leapfrog must be >= 1 and step_size > 0")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    x = model.check_input(x)
    cond = model._check_condition(condition, len(x))
    betas = sigmoid_schedule(steps).tolist()
    training = model.training
    model.eval()
    try:
        out = [_batch(model, x[i:i + batch_size], None if cond is None else cond[i:i + batch_size],
                      betas, chains, leapfrog, step_size, g) for i in range(0, len(x), batch_size)]
    finally:
        model.train(training)
    return torch.cat(out)


def _batch(model: LatentVariable, x: Tensor, cond: Tensor | None, betas: list[float], chains: int, leapfrog: int,
           step_size: float, g: torch.Generator) -> Tensor:
    with torch.no_grad():
        z, logdet = model.pre(x, g)
    labels = model.labels(cond, len(z))

    def log_lik(c: Tensor) -> Tensor:  # (chains, n, L) -> (chains, n)
        return model.decoder_log_lik(z, model.decoder_output(c, labels))

    def energy_and_grad(c: Tensor, beta: float) -> tuple[Tensor, Tensor]:
        with torch.enable_grad():
            c = c.detach().requires_grad_(True)
            u = -(model.latent.log_prior(c) + beta * log_lik(c))
            (grad,) = torch.autograd.grad(u.sum(), c)
        return u.detach(), grad

    def randn(shape) -> Tensor:
        return torch.randn(shape, generator=g, dtype=z.dtype, device=z.device)

    c = randn((chains, len(z), model.latent.code_dim))
    eps = torch.full((chains, len(z), 1), step_size, dtype=z.dtype, device=z.device)
    log_w = torch.zeros(chains, len(z), dtype=z.dtype, device=z.device)
    for prev, beta in zip(betas[:-1], betas[1:]):
        with torch.no_grad():
            log_w += (beta - prev) * log_lik(c)
        # one HMC transition leaving p(c) p(x | c)^beta invariant
        c, _, eps = hmc_step(c, lambda v: energy_and_grad(v, beta), eps, leapfrog, g)
    return torch.logsumexp(log_w, 0) - math.log(chains) + logdet
