"""Gaussian diffusion: noise schedules and the samplers that run the reverse process.

Forward process (Ho et al. 2020, Eq. 2-4): ``q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)``,
so ``q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)`` with ``abar_t = prod_{s<=t} (1 - beta_s)``.
Timesteps are ``t = 1..T``; schedule arrays are indexed by ``t - 1`` and ``abar_0 = 1``.

Samplers share one interface, ``sampler.sample(model_fn, shape, generator, steps)``, where
``model_fn(x_t, t) -> eps`` predicts the noise (``x_t: (batch, *event)``, ``t: (batch,)`` int64 in
1..T). `DDPMSampler` is the ancestral sampler (Ho et al. Alg. 2; with ``steps < T`` on the
respaced schedule of Nichol & Dhariwal 2021, Sec. 4); `DDIMSampler` is Song et al. 2021, Eq. 12,
with ``eta`` (0: the deterministic ODE-like sampler, 1: DDPM's posterior variance).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

EpsFn = Callable[[Tensor, Tensor], Tensor]


def linear_betas(T: int, beta_1: float = 1e-4, beta_T: float = 0.02) -> Tensor:
    """Ho et al. (2020, Sec. 4): betas linear from 1e-4 to 0.02 for T = 1000. For other T both
    endpoints are scaled by ``1000 / T`` (as in Nichol & Dhariwal's ``get_named_beta_schedule``),
    so that ``abar_T`` stays near 0; capped at 0.999. Returns (T,) float64."""
    s = 1000.0 / T
    return torch.linspace(beta_1 * s, min(beta_T * s, 0.999), T, dtype=torch.float64)


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """Nichol & Dhariwal (2021, Eq. 17): ``abar_t = f(t) / f(0)``, ``f(t) = cos((t/T + s)/(1 + s) pi/2)^2``,
    ``beta_t = min(1 - abar_t / abar_{t-1}, 0.999)``. Returns (T,) float64."""
    t = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - f[1:] / f[:-1]).clamp(max=max_beta)


class NoiseSchedule:
    """All the per-timestep constants of a variance-preserving diffusion, in float64.

    Args:
        betas: (T,) in (0, 1).
    Attributes (each (T,), entry ``t - 1`` for timestep t):
        betas, alphas = 1 - betas, abar (cumulative product), abar_prev (abar_{t-1}, 1 at t = 1),
        post_var: ``tilde beta_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t`` (Ho et al. Eq. 7),
        post_c0, post_ct: posterior mean ``tilde mu = post_c0 x_0 + post_ct x_t`` (Eq. 7).
    """

    def __init__(self, betas: Tensor):
        betas = torch.as_tensor(betas, dtype=torch.float64)
        if betas.ndim != 1 or len(betas) < 1 or (betas <= 0).any() or (betas >= 1).any():
            raise ValueError("NoiseSchedule: betas must be a non-empty 1-D tensor with values in (0, 1)")
        self.betas = betas
        self.alphas = 1 - betas
        self.abar = torch.cumprod(self.alphas, 0)
        self.abar_prev = torch.cat([betas.new_ones(1), self.abar[:-1]])
        self.post_var = betas * (1 - self.abar_prev) / (1 - self.abar)
        self.post_c0 = betas * self.abar_prev.sqrt() / (1 - self.abar)
        self.post_ct = self.alphas.sqrt() * (1 - self.abar_prev) / (1 - self.abar)

    @classmethod
    def make(cls, kind: str, T: int) -> "NoiseSchedule":
        """``kind``: ``"linear"`` (Ho et al.) or ``"cosine"`` (Nichol & Dhariwal)."""
        if T < 1:
            raise ValueError(f"the number of diffusion steps must be >= 1, got {T}")
        if kind == "linear":
            return cls(linear_betas(T))
        if kind == "cosine":
            return cls(cosine_betas(T))
        raise ValueError(f"unknown noise schedule {kind!r}; use 'linear' or 'cosine'")

    @property
    def T(self) -> int:
        return len(self.betas)

    def at(self, name: str, t: Tensor, like: Tensor) -> Tensor:
        """Constant ``name`` at timesteps ``t: (batch,)`` (1..T), shaped to broadcast with ``like``."""
        v = getattr(self, name).to(like.device)[t - 1].to(like.dtype)
        return v.reshape(-1, *([1] * (like.ndim - 1)))

    def q_sample(self, x0: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        """``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` (Eq. 4); all (batch, *event)."""
        ab = self.at("abar", t, x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * eps

    def predict_x0(self, x_t: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        """Invert Eq. 4 for x_0 given the noise: ``(x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)``."""
        ab = self.at("abar", t, x_t)
        return (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()

    def posterior(self, x0: Tensor, x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and variance of ``q(x_{t-1} | x_t, x_0)`` (Eq. 6-7): (batch, *event), (batch, 1, ...)."""
        mean = self.at("post_c0", t, x_t) * x0 + self.at("post_ct", t, x_t) * x_t
        return mean, self.at("post_var", t, x_t)

    def timesteps(self, steps: int | None) -> Tensor:
        """``steps`` evenly spaced timesteps in 1..T, increasing, always ending at T: (steps,) int64.
        "Trailing" spacing (T, T - T/steps, ..., T/steps; Lin et al. 2024, Table 2): the chain starts
        from pure noise at T; the last step jumps from T/steps to x_0."""
        steps = self.T if steps is None else int(steps)
        if not 1 <= steps <= self.T:
            raise ValueError(f"sample steps must lie in 1..{self.T} (the number of diffusion steps), got {steps}")
        ts = torch.linspace(self.T, 0, steps + 1, dtype=torch.float64)[:-1].round().long()
        return ts.flip(0).clamp(min=1)

    def respace(self, ts: Tensor) -> "NoiseSchedule":
        """The schedule of the subsequence ``ts`` (increasing, in 1..T) with the same abar values:
        ``beta'_i = 1 - abar_{ts_i} / abar_{ts_{i-1}}`` (Nichol & Dhariwal 2021, Sec. 4)."""
        ab = self.abar[ts - 1]
        prev = torch.cat([ab.new_ones(1), ab[:-1]])
        return NoiseSchedule(1 - ab / prev)


def _clip(x0: Tensor, clip: tuple[float, float] | None) -> Tensor:
    return x0 if clip is None else x0.clamp(*clip)


def _noise(like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)


class DDPMSampler:
    """Ancestral sampling of ``p(x_{t-1} | x_t) = N(tilde mu(x0_hat, x_t), sigma_t^2 I)`` (Ho et al. Alg. 2).

    Args:
        schedule: the training schedule.
        variance: ``"beta"`` (``sigma_t^2 = beta_t``) or ``"posterior"`` (``tilde beta_t``), Ho et al. Sec. 3.2.
        clip: range to clip the predicted x_0 to (data on [-1, 1]); None: no clipping.
    """

    def __init__(self, schedule: NoiseSchedule, variance: str = "beta", clip: tuple[float, float] | None = None):
        if variance not in ("beta", "posterior"):
            raise ValueError(f"DDPMSampler.variance must be 'beta' or 'posterior', got {variance!r}")
        self.schedule, self.variance, self.clip = schedule, variance, clip

    @torch.no_grad()
    def sample(self, model_fn: EpsFn, shape: tuple[int, ...], generator: torch.Generator | None = None,
               steps: int | None = None, *, x_T: Tensor | None = None, dtype: torch.dtype = torch.float32,
               device: torch.device | str = "cpu") -> Tensor:
        """Run the reverse chain from ``x_T ~ N(0, I)`` (or the given ``x_T``) to x_0: (shape)."""
        ts = self.schedule.timesteps(steps)
        sub = self.schedule.respace(ts)  # identical to the schedule itself when steps = T
        x = _noise(torch.empty(shape, dtype=dtype, device=device), generator) if x_T is None else x_T
        for i in range(len(ts) - 1, -1, -1):
            t = ts[i].expand(shape[0]).to(x.device)
            j = torch.full_like(t, i + 1)  # position in the respaced chain
            x0 = _clip(sub.predict_x0(x, j, model_fn(x, t)), self.clip)
            mean, post_var = sub.posterior(x0, x, j)
            if i == 0:
                return mean
            var = post_var if self.variance == "posterior" else sub.at("betas", j, x)
            x = mean + var.sqrt() * _noise(x, generator)
        return x


class DDIMSampler:
    """Song et al. (2021, Eq. 12) on ``steps`` evenly spaced timesteps:
    ``x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps_hat + sigma z`` with
    ``sigma = eta sqrt((1 - abar_s) / (1 - abar_t)) sqrt(1 - abar_t / abar_s)`` (Eq. 16).

    Args:
        schedule: the training schedule.
        eta: 0 gives the deterministic sampler (an Euler step of the probability-flow ODE in
            ``x / sqrt(abar)``); 1 gives DDPM with the posterior variance.
        clip: range to clip the predicted x_0 to; eps is then recomputed from the clipped x_0.
    """

    def __init__(self, schedule: NoiseSchedule, eta: float = 0.0, clip: tuple[float, float] | None = None):
        if eta < 0:
            raise ValueError(f"DDIMSampler.eta must be >= 0, got {eta}")
        self.schedule, self.eta, self.clip = schedule, float(eta), clip

    def _step(self, x: Tensor, eps: Tensor, ab_t: Tensor, ab_s: Tensor, generator, eta: float) -> Tensor:
        x0 = (x - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()
        if self.clip is not None:
            x0 = x0.clamp(*self.clip)
            eps = (x - ab_t.sqrt() * x0) / (1 - ab_t).sqrt()
        sigma = eta * ((1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)).sqrt()
        x_s = ab_s.sqrt() * x0 + (1 - ab_s - sigma**2).clamp(min=0).sqrt() * eps
        return x_s + sigma * _noise(x, generator) if eta > 0 and float(sigma.max()) > 0 else x_s

    @torch.no_grad()
    def sample(self, model_fn: EpsFn, shape: tuple[int, ...], generator: torch.Generator | None = None,
               steps: int | None = None, *, x_T: Tensor | None = None, dtype: torch.dtype = torch.float32,
               device: torch.device | str = "cpu") -> Tensor:
        """Run the DDIM chain from ``x_T ~ N(0, I)`` (or the given ``x_T``) to x_0: (shape)."""
        ts = self.schedule.timesteps(steps)
        abar = self.schedule.abar
        x = _noise(torch.empty(shape, dtype=dtype, device=device), generator) if x_T is None else x_T
        for i in range(len(ts) - 1, -1, -1):
            t = ts[i].expand(shape[0]).to(x.device)
            ab_t = abar[ts[i] - 1].to(x.dtype)
            ab_s = abar[ts[i - 1] - 1].to(x.dtype) if i > 0 else torch.ones((), dtype=x.dtype)
            x = self._step(x, model_fn(x, t), ab_t.to(x.device), ab_s.to(x.device), generator, self.eta)
        return x

    @torch.no_grad()
    def encode(self, model_fn: EpsFn, x0: Tensor, steps: int | None = None) -> Tensor:
        """The deterministic DDIM encoding x_0 -> x_T (Song et al. 2021, Sec. 4.3): the eta = 0
        update run forwards in time, ``x_t = sqrt(abar_t) x0_hat(x_s) + sqrt(1 - abar_t) eps(x_s, s)``."""
        ts = self.schedule.timesteps(steps)
        abar = self.schedule.abar
        x = x0
        for i in range(len(ts)):
            s = ts[i - 1] if i > 0 else None  # the eps at x_s is evaluated at the previous timestep
            ab_s = abar[s - 1].to(x.dtype).to(x.device) if s is not None else torch.ones((), dtype=x.dtype)
            ab_t = abar[ts[i] - 1].to(x.dtype).to(x.device)
            # at s = 0 there is no noise in x_0; the first step uses eps predicted at t = ts[0]
            t_eval = (s if s is not None else ts[0]).expand(len(x)).to(x.device)
            eps = model_fn(x, t_eval)
            x0_hat = (x - (1 - ab_s).sqrt() * eps) / ab_s.sqrt()
            x = ab_t.sqrt() * x0_hat + (1 - ab_t).sqrt() * eps
        return x


def make_sampler(name: str, schedule: NoiseSchedule, *, eta: float = 0.0, variance: str = "beta",
                 clip: tuple[float, float] | None = None) -> DDPMSampler | DDIMSampler:
    """The sampler called ``name`` (``"ddpm"`` or ``"ddim"``) for ``schedule``."""
    if name == "ddpm":
        return DDPMSampler(schedule, variance=variance, clip=clip)
    if name == "ddim":
        return DDIMSampler(schedule, eta=eta, clip=clip)
    raise ValueError(f"unknown sampler {name!r}; use 'ddpm' or 'ddim'")
