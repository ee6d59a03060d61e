"""RePaint-style conditioning of a Gaussian diffusion model (Lugmayr et al. 2022, "RePaint:
Inpainting using Denoising Diffusion Probabilistic Models", Algorithm 1).

At every reverse step ``x_i -> x_{i-1}`` of the ancestral sampler (Ho et al. 2020, Alg. 2; on the
respaced chain of ``steps`` positions, Nichol & Dhariwal 2021, sec. 4):

* the unknown entries come from the model's reverse step ``p(x_{i-1} | x_i)``;
* the known entries are a forward-noised copy of the observed values,
  ``x_{i-1} ~ q(x_{i-1} | x_0) = N(sqrt(abar_{i-1}) x_0, (1 - abar_{i-1}) I)`` (Eq. 8), and
  ``x_0`` itself at the last step.

Resampling (RePaint sec. 4.2): after reaching position ``i`` the chain may go back up ``jump``
positions by the forward process ``q(x_{i+1} | x_i) = N(sqrt(1 - beta_{i+1}) x_i, beta_{i+1} I)``
and come down again, ``resample - 1`` extra times, so that the unknown entries can harmonize
with the known ones. ``resample = 1`` is plain replacement.

The reverse step is DDPM's ancestral one (RePaint needs a stochastic step) whatever the model's
``sampler``; its ``variance`` (beta or posterior) and ``clip`` are the model's.

Capability (`is_diffusion`): the `genlab.protocol.Diffusion` mixin (ddpm): a `NoiseSchedule`
``schedule`` and ``eps_fn(condition, n, device)`` giving ``eps(x_t, t)``; the predicted ``x_0`` is
clipped to ``model.clip`` when the model sets it (data on [-1, 1]).
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..protocol import Diffusion, GenerativeModel
from ..samplers.diffusion import NoiseSchedule


def is_diffusion(model: GenerativeModel) -> bool:
    """True for a Gaussian diffusion model (the `genlab.protocol.Diffusion` capability)."""
    return isinstance(model, Diffusion)


def repaint_path(n: int, jump: int = 1, resample: int = 1) -> list[int]:
    """Positions visited by the RePaint chain on ``n`` respaced steps: from ``n`` down to 0, with
    consecutive entries differing by one. After arriving at a position ``p`` with ``p < n - jump``
    and ``p % jump == 0``, the chain goes up ``jump`` positions and down again, ``resample - 1``
    times (the schedule of RePaint's reference code, ``get_schedule_jump``)."""
    if n < 1 or jump < 1 or resample < 1:
        raise ValueError(f"RePaint needs steps, jump and resample >= 1, got {n}, {jump}, {resample}")
    left = {p: resample - 1 for p in range(0, n - jump, jump)}
    path, p = [n], n
    while p > 0:
        p -= 1
        path.append(p)
        if left.get(p, 0) > 0:
            left[p] -= 1
            for _ in range(jump):
                p += 1
                path.append(p)
    return path


@torch.no_grad()
def repaint(model: GenerativeModel, z0: Tensor, miss: Tensor, generator: torch.Generator | None,
            steps: int | None = None, jump: int = 1, resample: int = 1) -> Tensor:
    """Draw the missing entries of model-space examples by RePaint.

    Args:
        z0: (n, D) model-space examples; only the observed entries are read.
        miss: (n, D) bool, True where missing.
        steps: positions of the respaced chain (None: the model's ``sample_steps``, else all T).
        jump, resample: the resampling schedule (`repaint_path`); 1, 1 is plain replacement.
    Returns:
        (n, D) model-space draws, the observed entries equal to ``z0``'s.
    """
    schedule: NoiseSchedule = model.schedule
    if steps is None:
        steps = getattr(getattr(model, "config", None), "sample_steps", None)
    ts = schedule.timesteps(None if steps is None else min(steps, schedule.T))
    sub = schedule.respace(ts)
    shape = (len(z0), *model.spec.event_shape)
    x0 = z0.reshape(shape)
    m = miss.reshape(shape)
    fn = model.eps_fn(None, len(z0), z0.device)
    clip = model.clip
    variance = getattr(getattr(model, "config", None), "variance", "beta")

    def noise() -> Tensor:
        return torch.randn(shape, generator=generator, dtype=z0.dtype, device=z0.device)

    def known(i: int) -> Tensor:  # a draw of q(x_i | x_0); x_0 itself at i = 0
        if i == 0:
            return x0
        ab = float(sub.abar[i - 1])
        return ab ** 0.5 * x0 + (1 - ab) ** 0.5 * noise()

    path = repaint_path(len(ts), jump, resample)
    x = torch.where(m, noise(), known(path[0]))
    for a, b in zip(path[:-1], path[1:]):
        if b == a + 1:  # forward: q(x_b | x_a), one respaced step
            beta = float(sub.betas[b - 1])
            x = (1 - beta) ** 0.5 * x + beta ** 0.5 * noise()
            continue
        t = ts[a - 1].expand(len(x)).to(x.device)
        ab, c0, ct = (float(v[a - 1]) for v in (sub.abar, sub.post_c0, sub.post_ct))
        x0_hat = (x - (1 - ab) ** 0.5 * fn(x, t)) / ab ** 0.5          # Ho et al. Eq. 4 inverted
        if clip is not None:
            x0_hat = x0_hat.clamp(*clip)
        mean = c0 * x0_hat + ct * x                                     # posterior mean, Eq. 7
        if b > 0:
            var = float((sub.post_var if variance == "posterior" else sub.betas)[a - 1])
            mean = mean + var ** 0.5 * noise()
        x = torch.where(m, mean, known(b))
    return x.reshape(len(z0), -1)
