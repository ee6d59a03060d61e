"""Imputation with a variational autoencoder: sampling pseudo-Gibbs and Metropolis-within-Gibbs.

Both chains run on the missing entries ``x_m`` of a model-space example whose observed entries
``x_o`` stay fixed; the latent code ``c`` is the auxiliary variable.

* ``pseudo-gibbs`` (Rezende et al. 2014, sec. 5 and app. F): ``c ~ q(c | x_o, x_m)``, then
  ``x_m ~ p(x_m | c)``. It samples both distributions (not their means), but it is exact only
  when the encoder is the true posterior.
* ``mwg`` (Mattei & Frellsen 2018, "Leveraging the exact likelihood of deep latent variable
  models", sec. 4.2, Algorithm 1): the same proposal ``c' ~ q(c | x_o, x_m)``, accepted with
  probability ``min(1, [p(x_o, x_m | c') p(c') q(c | x)] / [p(x_o, x_m | c) p(c) q(c' | x)])``
  (an independence Metropolis-Hastings step targeting ``p(c | x_o, x_m)``), then
  ``x_m ~ p(x_m | c)``: Metropolis-within-Gibbs on ``p(c, x_m | x_o)``, which is asymptotically
  exact for any encoder that covers the posterior.

The chains need the `genlab.protocol.LatentVariable` pieces (vae, iwae; see `decodes_entrywise`):
``encoder_params``, the code distribution ``latent`` (``sample``, ``log_q``, ``log_prior``),
``decoder_output`` (codes -> the likelihood's location) and ``decoder_log_lik``
(``log p(x | c)``), and a ``likelihood`` (``gaussian``, ``bernoulli`` or ``logistic``) that says
how to draw from it.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..protocol import GenerativeModel, LatentVariable


def decodes_entrywise(model: GenerativeModel) -> bool:
    """True for a `LatentVariable` model (vae, iwae) whose decoder likelihood can be drawn from
    and scored entry by entry (Gaussian, Bernoulli, discretized logistic)."""
    return isinstance(model, LatentVariable) and model.likelihood in ("gaussian", "bernoulli", "logistic")


def decoder_draw(model: GenerativeModel, out: Tensor, generator: torch.Generator | None) -> Tensor:
    """One draw from ``p(x | c)`` in model space, given the decoder output ``out``
    (batch, *event_shape): Bernoulli bits, a Gaussian draw, or a logistic draw snapped to the
    nearest bin centre on [-1, 1] (the discretized logistic's value)."""
    if model.likelihood == "bernoulli":
        return torch.bernoulli(torch.sigmoid(out), generator=generator)
    scale = model.log_scale().exp()
    if model.likelihood == "gaussian":
        return out + scale * torch.randn(out.shape, generator=generator, dtype=out.dtype, device=out.device)
    eps = torch.finfo(out.dtype).eps
    u = torch.rand(out.shape, generator=generator, dtype=out.dtype, device=out.device).clamp(eps, 1 - eps)
    v = (out + scale * (u.log() - (-u).log1p())).clamp(-1, 1)
    half = (model.spec.levels - 1) / 2
    return torch.round((v + 1) * half) / half - 1


def latent_chain(model: GenerativeModel, z: Tensor, miss: Tensor, generator: torch.Generator | None,
              sweeps: int, metropolis: bool) -> tuple[Tensor, float]:
    """Run ``sweeps`` steps of pseudo-Gibbs (``metropolis=False``) or Metropolis-within-Gibbs.

    Args:
        z: (n, D) model-space starting points (observed entries are kept as they are).
        miss: (n, D) bool, True where missing.
    Returns:
        the final (n, D) model-space states and the mean acceptance rate of the code proposals
        (1.0 for pseudo-Gibbs).
    """
    if sweeps < 1:
        raise ValueError(f"sweeps must be >= 1, got {sweeps}")
    shape = (len(z), *model.spec.event_shape)
    labels = model.labels(None, len(z))
    cur = z.reshape(shape).clone()
    m = miss.reshape(shape)
    code = out = None
    accepted = 0.0
    for _ in range(sweeps):
        params = model.encoder_params(cur, labels)
        new = model.latent.sample(params, 1, generator)[0]                   # (n, code_dim)
        if not metropolis or code is None:
            code, out = new, model.decoder_output(new[None], labels)[0]
            accepted += 1.0
        else:
            both = torch.stack([code, new])                               # (2, n, code_dim)
            outs = model.decoder_output(both, labels)                            # (2, n, *event)
            # log p(x, c) - log q(c | x) for the current and the proposed code: (2, n)
            lw = model.decoder_log_lik(cur, outs) + model.latent.log_prior(both) - model.latent.log_q(params, both)
            u = torch.rand(len(cur), generator=generator, dtype=lw.dtype, device=lw.device)
            acc = u.log() < lw[1] - lw[0]
            code = torch.where(acc[:, None], new, code)
            out = torch.where(acc.reshape(-1, *[1] * (outs.ndim - 2)), outs[1], outs[0])
            accepted += float(acc.double().mean())
        cur = torch.where(m, decoder_draw(model, out, generator).to(cur.dtype), cur)
    return cur.reshape(len(z), -1), accepted / sweeps
