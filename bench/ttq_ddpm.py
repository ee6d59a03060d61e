"""ddpm on digits for bench/time_to_quality.py: diffusers trained as its unconditional-training
example does by default, and the held-out variational bound (bits/dim) that scores both libraries.

The bound is genlab's ``variational_bound`` (Ho et al. Eq. 5, ``L_0`` the discretized Gaussian over
the 17 grey levels, so it bounds the probability of the discrete images themselves), called with
each library's own noise predictor, noise schedule and reverse-process variance. For diffusers
that is its ``UNet2DModel`` (timestep index ``t - 1``: genlab counts 1..T, diffusers 0..T-1), the
betas of its ``DDPMScheduler`` and the variance its sampler uses by default (``variance_type=
"fixed_small"``, the posterior variance tilde beta_t). ``L_0`` is Ho et al.'s decoder with
variance beta_1 for both (diffusers' last sampling step is deterministic: no likelihood of its
own). Both sides clip their x_0 prediction to [-1, 1] inside the bound, as both samplers do (genlab's
``DDPM.bound`` on discrete data; diffusers' ``DDPMScheduler(clip_sample=True)``, its default).
Evaluating all T = 1000 terms on every test image at every evaluation would cost diffusers' U-Net
minutes, so the bound is the stratified Monte-Carlo estimate over ``timesteps`` strata of 1..T,
on the whole test split (180 images), with one fixed generator: both libraries are scored on the
same t and noise draws at every evaluation.

diffusers' settings are the defaults of ``examples/unconditional_image_generation/
train_unconditional.py`` (https://huggingface.co/docs/diffusers/training/unconditional_training):
``DDPMScheduler`` with 1000 steps and linear betas (``--ddpm_num_steps 1000``,
``--ddpm_beta_schedule linear``), epsilon prediction and the MSE loss, ``t ~ U{0..999}``, batch 16,
AdamW lr 1e-4 with betas (0.95, 0.999), weight decay 1e-6, eps 1e-8, gradient norm clipped at 1,
the "cosine" schedule with 500 warmup steps over ``--num_epochs 100`` epochs, and ``EMAModel``
with warmup (inv_gamma 1, power 3/4, max decay 0.9999; ``--use_ema``, which the guide's command
passes), the EMA weights being what the script saves and what is scored here. Images map to
[-1, 1] as its ``Normalize([0.5], [0.5])`` does. The script's U-Net (six levels of 128-512
channels, attention) cannot take 8x8 images; the network is bench/speed/peers_deep.py's
``UNet2DModel`` for 1x8x8 (one ResNet per block, no attention, block_out_channels (32, 64)).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn

from genlab.objectives.diffusion import variational_bound
from genlab.samplers.diffusion import NoiseSchedule

from .speed.peers_deep import _ddpm_scheduler, _diffusers_unet

UNET_WIDTHS = (32, 64)
EPOCHS, BATCH, WARMUP = 100, 16, 500  # train_unconditional.py's --num_epochs, --train_batch_size, --lr_warmup_steps


def to_model_space(x: Tensor, levels: int) -> Tensor:
    """Grey levels 0..L-1 -> bin centres on [-1, 1] (genlab's ``Rescale``; diffusers' Normalize)."""
    return 2 * x / (levels - 1) - 1


def bound_bits(eps_fn: Callable[[Tensor, Tensor], Tensor], schedule: NoiseSchedule, variance: str,
               z: Tensor, levels: int, timesteps: int, seed: int = 2) -> float:
    """Minus the mean variational bound on ``z`` (model space), in bits per dimension.

    Args:
        eps_fn: the noise predictor ``(x_t, t in 1..T) -> eps_hat``.
        schedule: the library's noise schedule.
        variance: the reverse-process variance its sampler uses ("beta" or "posterior").
        z: (n, *event) test images on [-1, 1] bin centres.
        levels: grey levels of the data.
        timesteps: strata of 1..T evaluated per image (T: the exact sum).
        seed: seed of the t and noise draws (the same for every model scored).
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        lb = variational_bound(eps_fn, schedule, z, levels=levels, variance=variance,
                               timesteps=min(timesteps, schedule.T), generator=g, clip=(-1.0, 1.0))
    return float(-lb.mean()) / (z[0].numel() * math.log(2))


def genlab_bits(model: nn.Module, x_test: Tensor, timesteps: int) -> float:
    """genlab's ddpm scored by ``bound_bits`` (unconditional: the null label if it has labels)."""
    z = model.pre(x_test)[0]  # its Rescale: the same bin centres as to_model_space
    return bound_bits(model.eps_fn(None, len(z), z.device), model.schedule, model.variance, z,
                      model.spec.levels, timesteps)


def diffusers_peer(x: Tensor, x_test: Tensor, levels: int, timesteps: int, seed: int) -> dict:
    """diffusers' model and its training step with the example script's defaults.

    Returns a dict with ``module``, ``step`` (one optimisation step on a batch of grey levels),
    ``nll`` (the EMA weights' bound in bits/dim on ``x_test``), ``batch`` and ``settings``.
    """
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel
    unet = _diffusers_unet(UNET_WIDTHS, seed)
    sched = _ddpm_scheduler()  # = DDPMScheduler(num_train_timesteps=1000)'s linear 1e-4..0.02 betas
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-4, betas=(0.95, 0.999), weight_decay=1e-6, eps=1e-8)
    horizon = math.ceil(len(x) / BATCH) * EPOCHS  # len(train_dataloader) * num_epochs
    lr_sched = get_scheduler("cosine", optimizer=opt, num_warmup_steps=WARMUP, num_training_steps=horizon)
    ema = EMAModel(unet.parameters(), decay=0.9999, use_ema_warmup=True, inv_gamma=1.0, power=3 / 4)
    schedule = NoiseSchedule(sched.betas.to(torch.float64))
    z_test = to_model_space(x_test, levels)
    g = torch.Generator().manual_seed(seed)

    def step(xb: Tensor) -> None:
        clean = to_model_space(xb, levels)
        noise = torch.randn(clean.shape, generator=g)
        t = torch.randint(0, sched.config.num_train_timesteps, (len(clean),), generator=g)
        loss = nn.functional.mse_loss(unet(sched.add_noise(clean, noise, t), t).sample, noise)
        loss.backward()
        nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        lr_sched.step()
        ema.step(unet.parameters())
        opt.zero_grad(set_to_none=True)

    def nll() -> float:
        ema.store(unet.parameters())
        ema.copy_to(unet.parameters())
        unet.eval()
        try:
            return bound_bits(lambda v, t: unet(v, t - 1).sample, schedule, "posterior", z_test, levels, timesteps)
        finally:
            unet.train()
            ema.restore(unet.parameters())

    return {"module": unet, "step": step, "nll": nll, "batch": BATCH,
            "settings": {"lr": 1e-4, "optimizer": "AdamW(0.95, 0.999), wd 1e-6, clip 1", "lr_schedule":
                         f"cosine, {WARMUP} warmup, {horizon} steps", "ema": "warmup, power 3/4, max 0.9999",
                         "unet": list(UNET_WIDTHS)}}
