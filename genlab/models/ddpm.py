"""Denoising diffusion probabilistic models (Ho et al. 2020), sampled with DDPM or DDIM (Song et
al. 2021), with classifier-free guidance (Ho & Salimans 2022).

Training: the simple loss ``|| eps - eps_theta(x_t, t) ||^2`` (Ho et al. Eq. 14), ``t ~ U{1..T}``.
``log_prob``: minus the variational bound (Eq. 5) over all T timesteps, a lower bound on
``log p(x)``. Discrete data are mapped to bin centres on [-1, 1] and ``L_0`` is the discretized
Gaussian of Sec. 3.3, so the bound is on the probability of the discrete values themselves; continuous data are standardized
(the log-determinant is added) and ``L_0`` is a Gaussian density. Latents: the deterministic DDIM
encoding ``x_0 -> x_T`` (Song et al. Sec. 4.3), a code in R^D.

On discrete data the network outputs (``denoiser="levels"``) logits over the L levels of each
entry; ``p(x_0 = v | x_t)`` is their softmax plus the exact log-likelihood
``-(x_t - sqrt(abar_t) v)^2 / (2 (1 - abar_t))`` of each level, and ``eps_hat`` follows from the
posterior mean. Any ``eps_hat`` gives a valid bound; this one is exact where the noise is small
next to the gap between levels (there the bound's terms would otherwise cost ~0.5 nat per entry
per unit of log-SNR for a network that cannot learn to round), which with ``variance="posterior"``
brings the bound on digits from ~9.5 to ~2.1 bits/dim at a CPU-minute budget (bench/ddpm.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from ..data.preprocess import Preprocess, Rescale, default_preprocess
from ..data.spec import DataSpec, Kind
from ..nn.unet import TimeMLP, UNet
from ..objectives.diffusion import simple_loss, variational_bound
from ..protocol import register, Batch, Conditional, Density, Diffusion, GenerativeModel, Latent, Loss, NotSupported, Objective
from ..samplers.diffusion import DDIMSampler, DDPMSampler, NoiseSchedule, make_sampler


MLP_MAX_DIM = 256  # images up to this many entries go through the MLP: on 8x8 it is 3x faster per step than the U-Net at the same bound


@dataclass
class DDPMConfig:
    # runs saved before `denoiser` existed predicted the noise: they rebuild as such
    added: ClassVar[dict[str, Any]] = {"denoiser": "eps"}

    timesteps: int = field(default=1000, metadata={"max": 100_000, "help": "number of diffusion steps T"})
    # auto: cosine where predictions are clipped to the data's range (discrete data); linear otherwise,
    # since the cosine schedule's alpha_bar_T ~ 0 makes DDIM's first x0 prediction explode unclipped
    # (moons, DDIM 20 steps: sample std 41 against the data's 1.7)
    schedule: Literal["auto", "linear", "cosine"] = field(default="auto", metadata={
        "help": "noise schedule: linear (Ho et al. 2020) | cosine (Nichol & Dhariwal 2021) | auto "
                "(cosine for discrete data, linear for continuous)"})
    sampler: Literal["ddpm", "ddim"] = field(default="ddim", metadata={
        "help": "sampler: ddpm (ancestral) | ddim (Song et al. 2021; see eta, sample_steps)"})
    # 20: on digits classifier-FID, precision and recall are flat from 10 to 100 DDIM steps
    # (bench/README.md); ancestral sampling over all T: sampler=ddpm, sample_steps=none
    sample_steps: int | None = field(default=20, metadata={
        "help": "network evaluations per sample, at most timesteps (none: all T); also used by encode/decode"})
    eta: float = field(default=0.0, metadata={"help": "DDIM noise scale: 0 deterministic, 1 like DDPM"})
    # auto: posterior with the levels denoiser, whose x0_hat is exact at small noise, so the bound's
    # terms vanish there (digits: 2.08 against 2.44 bits/dim with beta, same network); beta otherwise,
    # which is the tighter bound for an eps predictor (1-D Gaussian, optimal predictor, T = 100:
    # 0.001 nats from log p against 0.78 with posterior)
    variance: Literal["auto", "beta", "posterior"] = field(default="auto", metadata={
        "help": "reverse-process variance sigma_t^2: beta (beta_t) | posterior (tilde beta_t) | auto "
                "(posterior with denoiser=levels on discrete data, else beta)"})
    bound_timesteps: int | None = field(default=None, metadata={
        "help": "timesteps per example in log_prob's bound: all T (none) or an unbiased stratified "
                "Monte-Carlo estimate over this many"})
    val_timesteps: int = field(default=16, metadata={
        "help": "timesteps of the Monte-Carlo bound used for validation / early stopping"})
    hidden: int = field(default=256, metadata={"help": "width of the time-conditioned MLP (vectors, small images)"})
    depth: int = field(default=3, metadata={"max": 100, "help": "residual blocks of the MLP (vectors)"})
    channels: int | None = field(default=None, metadata={
        "help": "U-Net channels at full resolution for images (none: the MLP for images of up to "
                f"{MLP_MAX_DIM} entries, such as 8x8 digits, else a U-Net of 32)"})
    denoiser: Literal["eps", "levels"] = field(default="levels", metadata={
        "help": "network output on discrete data: eps (the noise) | levels (logits over the grey levels "
                "per entry, added to the exact log-likelihood of x_t under each level; continuous data: eps)"})
    unet_levels: int | None = field(default=None, metadata={
        "help": "U-Net down/up levels (none: one per halving of an even side down to >= 4 pixels)"})
    p_uncond: float = field(default=0.1, metadata={
        "help": "probability of replacing a label by the null label in training (classifier-free guidance)"})
    guidance: float = field(default=0.0, metadata={
        "help": "guidance weight w at sampling: eps = (1 + w) eps(x, y) - w eps(x, null)"})


@register("ddpm")
class DDPM(GenerativeModel, Latent, Conditional, Diffusion):
    """Gaussian diffusion with a time-conditioned MLP (vectors, small images) or U-Net (images).

    With labelled data (``spec.num_classes``) the network also takes a class label, with a null
    label for the unconditional model; ``log_prob(x)`` without a condition uses the null label.
    """
    in_default_compare = True  # stands for its row in `genlab compare`'s default set
    taxonomy = "diffusion"
    compare_minutes = 1.5  # its 100 default epochs on digits at ~800 steps/min on one thread

    Config = DDPMConfig
    density = Density.BOUND
    data_kinds = frozenset({Kind.CONTINUOUS, Kind.DISCRETE, Kind.BINARY})  # ordered values
    sampling = "slow"
    training = "ELBO / denoising"
    latent_kind = "R^D"
    # digits: 100 epochs = 1,200 steps of 128, about 1.5 minutes on one CPU thread (bench/ddpm.py:
    # 2.08 bits/dim; lr 2e-3 beat 4e-3). An EMA of the weights (Ho et al. App. B) smooths the
    # iterates; 0.995 averages over ~200 steps, so that short CPU runs benefit too
    default_epochs = 100
    default_train = {"batch_size": 128, "lr": 2e-3, "lr_schedule": "cosine", "ema": 0.995, "patience": None}

    def __init__(self, spec: DataSpec, config: DDPMConfig):
        super().__init__(spec, config)
        c = config
        if c.timesteps < 1 or c.hidden < 1 or c.depth < 0 or (c.channels or 1) < 1 or c.val_timesteps < 1:
            raise ValueError("ddpm: timesteps, hidden, channels and val_timesteps must be >= 1, depth >= 0")
        if not 0 <= c.p_uncond <= 1 or c.guidance < 0:
            raise ValueError(f"ddpm: p_uncond must lie in [0, 1] and guidance be >= 0, "
                             f"got {c.p_uncond} and {c.guidance}")
        if c.sample_steps is not None and c.sample_steps < 1:
            raise ValueError(f"ddpm.sample_steps must be >= 1 (or none: all T), got {c.sample_steps}")
        if c.bound_timesteps is not None and not 1 <= c.bound_timesteps <= c.timesteps:
            raise ValueError(f"ddpm.bound_timesteps must lie in 1..timesteps ({c.timesteps}), got {c.bound_timesteps}")
        schedule = c.schedule if c.schedule != "auto" else ("cosine" if spec.is_discrete else "linear")
        self.schedule = NoiseSchedule.make(schedule, c.timesteps)
        levels_out = spec.is_discrete and c.denoiser == "levels"
        self.variance = c.variance if c.variance != "auto" else ("posterior" if levels_out else "beta")
        self.clip = (-1.0, 1.0) if spec.is_discrete else None  # discrete data live on [-1, 1]
        self.sampler  # noqa: B018  (an unknown sampler name fails here, not at the first sample)
        self.num_classes = spec.num_classes
        # per entry, one output per grey level (levels) or one (eps)
        self.n_out = spec.levels if levels_out else 1
        if self.n_out > 1:
            self.register_buffer("grid", torch.linspace(-1.0, 1.0, self.n_out), persistent=False)
        if spec.is_image and (c.channels is not None or spec.dim > MLP_MAX_DIM):
            ch = spec.event_shape[0]
            self.net = UNet(ch, spec.event_shape[1:], c.channels or 32, c.unet_levels, self.num_classes, ch * self.n_out)
        else:
            self.net = TimeMLP(spec.dim, c.hidden, c.depth, self.num_classes, spec.dim * self.n_out)

    def make_preprocess(self, spec: DataSpec) -> Preprocess:
        # discrete levels -> bin centres on [-1, 1]; the discretized decoder scores the levels
        return Rescale(spec) if spec.is_discrete else default_preprocess(spec)

    # -- the noise predictor --------------------------------------------------------------------
    @property
    def conditioned(self) -> bool:
        return self.num_classes is not None

    def _labels(self, condition: Tensor | None, n: int, device) -> Tensor | None:
        if self.num_classes is None:
            if condition is not None:
                raise NotSupported("ddpm: this model was built for data without labels; drop condition=")
            return None
        if condition is None:
            return torch.full((n,), self.num_classes, dtype=torch.long, device=device)
        return condition

    def predict_eps(self, x_t: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        """eps_theta: x_t (batch, *event) model space, t (batch,) int64 in 1..T, y labels (the null
        label ``num_classes`` for unconditional) -> (batch, *event)."""
        tt = t.to(x_t.dtype) * (1000.0 / self.schedule.T)  # the embedding sees the same range for any T
        unet = isinstance(self.net, UNet)
        out = self.net(x_t if unet else x_t.flatten(1), tt, y)
        if self.n_out == 1:
            return out.reshape(x_t.shape)
        L = self.n_out
        # (batch, C * L, H, W) or (batch, D * L) -> (batch, *event, L)
        logits = out.unflatten(1, (-1, L)).movedim(2, -1) if unet else out.unflatten(1, (-1, L))
        logits = logits.reshape(*x_t.shape, L)
        ab = self.schedule.at("abar", t, x_t)
        a, s2 = ab.sqrt()[..., None], (1 - ab)[..., None]
        # p(x_0 = level | x_t) with the network's logits as the prior: at high signal-to-noise the
        # exact likelihood term dominates and x0_hat snaps to the nearest level, which an
        # unconstrained eps network can only approximate
        loglik = -(x_t[..., None] - a * self.grid).pow(2) / (2 * s2)
        x0 = torch.softmax(logits + loglik, -1) @ self.grid.to(x_t.dtype)
        return (x_t - a[..., 0] * x0) / s2[..., 0].sqrt()

    def eps_fn(self, condition: Tensor | None, n: int, device, guidance: float = 0.0):
        """``model_fn(x_t, t)`` for the samplers: conditional, unconditional or guided (Ho & Salimans Eq. 6)."""
        y = self._labels(condition, n, device)
        if condition is None or guidance == 0:
            return lambda x, t: self.predict_eps(x, t, y)
        null = torch.full_like(y, self.num_classes)
        return lambda x, t: (1 + guidance) * self.predict_eps(x, t, y) - guidance * self.predict_eps(x, t, null)

    # -- training -------------------------------------------------------------------------------
    def denoising_loss(self, batch: Batch) -> Loss:
        """Mean simple loss (Ho et al. Eq. 14); labels are replaced by the null label with
        probability ``p_uncond`` (Ho & Salimans 2022, Alg. 1)."""
        z, _ = self.pre(batch.x, batch.generator)
        y = None
        if self.num_classes is not None:
            y = batch.y if batch.y is not None else self._labels(None, len(z), z.device)
            drop = torch.rand(len(z), generator=batch.generator, device=z.device) < self.config.p_uncond
            y = torch.where(drop, torch.full_like(y, self.num_classes), y)
        loss = simple_loss(lambda x, t: self.predict_eps(x, t, y), self.schedule, z, batch.generator).mean()
        return Loss(loss)

    def objectives(self) -> list[Objective]:
        return [Objective("denoising", list(self.parameters()), self.denoising_loss)]

    # -- density --------------------------------------------------------------------------------
    def bound(self, z: Tensor, condition: Tensor | None = None, generator: torch.Generator | None = None,
              timesteps: int | None = None) -> Tensor:
        """Minus Ho et al. Eq. 5 in model space: z (batch, *event) -> (batch,), over ``timesteps``
        strata of 1..T (None: all T, exact sum). x0_hat is clipped as the samplers clip it: without
        that, an eps network's x0_hat = (x_T - sqrt(1 - abar_T) eps_hat) / sqrt(abar_T) at the cosine
        schedule's abar_T ~ 2e-9 turns an eps error of 0.1 into an x0 error of ~2000, and the step
        t = T alone cost 6.6 bits/dim on digits."""
        y = self._labels(condition, len(z), z.device)
        return variational_bound(lambda x, t: self.predict_eps(x, t, y), self.schedule, z,
                                 levels=self.spec.levels if self.spec.is_discrete else None,
                                 variance=self.variance, timesteps=timesteps, generator=generator, clip=self.clip)

    def _log_prob(self, z: Tensor, *, condition: Tensor | None = None,
                  generator: torch.Generator | None = None) -> Tensor:
        return self.bound(z, condition, generator, self.config.bound_timesteps).to(z.dtype)

    @property
    def bound_terms(self) -> int:
        """Terms of the bound's sum per example: the T timesteps, one network pass each."""
        return self.schedule.T

    def log_prob_terms(self, x: Tensor, terms: int, *, condition: Tensor | None = None,
                       generator: torch.Generator | None = None) -> Tensor:
        """`log_prob` (data space, nats: (batch,)) with the bound's sum over the T timesteps
        estimated from ``terms`` strata of them: unbiased for the full bound, with the strata's
        Monte-Carlo noise on top of the one ``x_t`` draw per term that the full sum has; ``terms =
        T``: the full sum (`log_prob` with ``bound_timesteps`` none)."""
        x = self.check_input(x)
        condition = self._check_condition(condition, len(x))
        g = generator if generator is not None else torch.Generator(x.device).manual_seed(0)
        z, logdet = self.pre(x, g)
        return self.bound(z, condition, g, terms).to(z.dtype) + logdet

    def val_loss(self, x: Tensor, y: Tensor | None = None) -> float | None:
        """Minus the bound (nats, data space) with ``val_timesteps`` strata and a fixed seed, so that
        epochs are compared on the same draws."""
        with torch.no_grad():
            x = self.check_input(x)
            g = torch.Generator(device=x.device).manual_seed(0)
            z, logdet = self.pre(x, g)
            k = min(self.config.val_timesteps, self.schedule.T)
            return float(-(self.bound(z, y if self.num_classes else None, g, k) + logdet).mean())

    # -- sampling -------------------------------------------------------------------------------
    @property
    def sampler(self) -> DDPMSampler | DDIMSampler:
        """The sampler the config names (rebuilt from the config, so a changed setting applies)."""
        c = self.config
        return make_sampler(c.sampler, self.schedule, eta=c.eta, variance=self.variance, clip=self.clip)

    @property
    def sample_steps(self) -> int:
        """Network evaluations per sample: ``config.sample_steps`` capped at T (none: T)."""
        k = self.config.sample_steps
        return self.schedule.T if k is None else min(k, self.schedule.T)

    def _sample(self, n: int, *, condition: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        p = self.out_weight()
        fn = self.eps_fn(condition, n, p.device, self.config.guidance)
        return self.sampler.sample(fn, (n, *self.spec.event_shape), generator, self.sample_steps,
                                   dtype=p.dtype, device=p.device)

    def out_weight(self) -> Tensor:
        return next(self.parameters())

    # -- Latent: the DDIM encoding ----------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return self.spec.dim

    @torch.no_grad()
    def encode(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """x_0 -> x_T by the deterministic DDIM update run forwards (``sample_steps`` steps):
        (batch, *event_shape) data space -> (batch, D)."""
        x = self.check_input(x)
        condition = self._check_condition(condition, len(x))
        z, _ = self.pre(x, torch.Generator(device=x.device).manual_seed(0))
        ddim = DDIMSampler(self.schedule, eta=0.0)
        return ddim.encode(self.eps_fn(condition, len(x), x.device), z, self.sample_steps).reshape(len(x), -1)

    @torch.no_grad()
    def decode(self, codes: Tensor, condition: Tensor | None = None) -> Tensor:
        """x_T -> x_0 by deterministic DDIM (eta = 0): (batch, D) -> (batch, *event_shape) data space."""
        p = self.out_weight()
        u = torch.as_tensor(codes, dtype=p.dtype, device=p.device).reshape(-1, *self.spec.event_shape)
        condition = self._check_condition(condition, len(u))
        ddim = DDIMSampler(self.schedule, eta=0.0, clip=self.clip)
        fn = self.eps_fn(condition, len(u), p.device, self.config.guidance)
        return self.pre.inverse(ddim.sample(fn, tuple(u.shape), None, self.sample_steps, x_T=u))
