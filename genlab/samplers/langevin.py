"""Unadjusted Langevin dynamics for an energy ``E(x)``, ``p(x) ∝ exp(-E(x))``.

``x_{t+1} = x_t - step_size * grad E(x_t) + noise_scale * eps_t``, ``eps_t ~ N(0, I)``
(Welling & Teh 2011; Du & Mordatch 2019, Eq. 3). With ``noise_scale = sqrt(2 * step_size)`` (the
default) this is the Euler-Maruyama discretisation of the Langevin diffusion whose stationary law
is ``p`` (as ``step_size -> 0``); EBM training often uses a smaller noise scale (Du & Mordatch
2019, Nijkamp et al. 2019), which samples a lower-temperature ``p``.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

EnergyFn = Callable[[Tensor], Tensor]


class Langevin:
    """A Langevin sampler: ``sampler(energy, x0, generator=g) -> x``.

    Args:
        step_size: ``eta`` in ``x - eta * grad E``.
        n_steps: number of updates.
        noise_scale: standard deviation of the injected noise; ``None``: ``sqrt(2 * step_size)``.
        grad_clip: clamp each gradient entry to ``[-grad_clip, grad_clip]`` (None: off); keeps
            short-run chains of an untrained energy from exploding.
        init: distribution of fresh chains for `init_noise`: ``"uniform"`` on ``[-init_scale,
            init_scale]`` or ``"normal"`` with std ``init_scale``.
        init_scale: see ``init``.
    """

    def __init__(self, step_size: float, n_steps: int, noise_scale: float | None = None,
                 grad_clip: float | None = None, init: str = "uniform", init_scale: float = 1.0):
        if step_size <= 0 or n_steps < 0:
            raise ValueError(f"Langevin: step_size must be > 0 and n_steps >= 0, got {step_size}, {n_steps}")
        if noise_scale is not None and noise_scale < 0:
            raise ValueError(f"Langevin: noise_scale must be >= 0, got {noise_scale}")
        if init not in ("uniform", "normal"):
            raise ValueError(f"Langevin: init must be 'uniform' or 'normal', got {init!r}")
        if init_scale <= 0 or (grad_clip is not None and grad_clip <= 0):
            raise ValueError("Langevin: init_scale and grad_clip must be > 0")
        self.step_size, self.n_steps = step_size, n_steps
        self.noise_scale = math.sqrt(2 * step_size) if noise_scale is None else noise_scale
        self.grad_clip, self.init, self.init_scale = grad_clip, init, init_scale

    def init_noise(self, n: int, shape: tuple[int, ...], *, generator: torch.Generator | None = None,
                   dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Tensor:
        """Fresh chain starts: (n, *shape) from the ``init`` distribution."""
        if self.init == "uniform":
            u = torch.rand(n, *shape, generator=generator, dtype=dtype, device=device)
            return (2 * u - 1) * self.init_scale
        return torch.randn(n, *shape, generator=generator, dtype=dtype, device=device) * self.init_scale

    def __call__(self, energy: EnergyFn, x0: Tensor, *, generator: torch.Generator | None = None,
                 n_steps: int | None = None, bounds: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """Run the chains.

        Args:
            energy: ``E: (batch, *shape) -> (batch,)``; only its gradient in ``x`` is used (the
                parameters of the network get no gradient from this call).
            x0: (batch, *shape) starting points.
            generator: source of the injected noise.
            n_steps: overrides the sampler's ``n_steps``.
            bounds: ``(low, high)`` broadcastable to ``x0``: every state is clamped into this box
                (Du & Mordatch 2019 clamp images to the data domain), so chains of an untrained
                energy cannot run off to where no data are.
        Returns:
            (batch, *shape) the chains' last states, detached.
        """
        x = x0.detach().clone()
        for _ in range(self.n_steps if n_steps is None else n_steps):
            with torch.enable_grad():
                x.requires_grad_(True)
                grad = torch.autograd.grad(energy(x).sum(), x)[0]
            if self.grad_clip is not None:
                grad = grad.clamp(-self.grad_clip, self.grad_clip)
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            x = (x.detach() - self.step_size * grad + self.noise_scale * noise).detach()
            if bounds is not None:
                x = torch.maximum(torch.minimum(x, bounds[1]), bounds[0])
        return x
