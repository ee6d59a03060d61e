"""The gan family's defaults as behaviour: the critic's own learning rate (TTUR), the trainer
defaults the family asks for, and that the trained model (what `sample` draws from) holds the
trainer's moving average of the weights. Quality is measured by bench/gan_modes.py."""
from __future__ import annotations

import torch

from genlab import make
from genlab.models.gan import GAN, GANConfig
from genlab.settings import build
from genlab.train import TrainConfig, Trainer


def test_critic_lr_sets_the_critic_optimizer_and_defaults_to_lr(digits):
    model = make("gan", digits.spec, seed=0, hidden=16, latent_dim=2, lr=3e-4, critic_lr=1.2e-3)
    tr = Trainer(model, TrainConfig(epochs=1, progress=False, device="cpu"))
    lrs = {o.name: opt.param_groups[0]["lr"] for o, opt in zip(tr.objectives, tr.optimizers)}
    assert lrs == {"critic": 1.2e-3, "generator": 3e-4}
    same = make("gan", digits.spec, seed=0, hidden=16, latent_dim=2, lr=3e-4)
    assert {o.lr for o in same.objectives()} == {3e-4}


def test_trainer_takes_the_family_defaults_and_the_model_ends_with_the_ema_weights(digits):
    model = make("gan", digits.spec, seed=0, hidden=16, latent_dim=2)
    tr = Trainer(model, TrainConfig(epochs=1, progress=False, device="cpu"))
    assert tr.config.batch_size == GAN.default_train["batch_size"] and tr.config.ema == GAN.default_train["ema"]
    tr.fit(digits.x)
    assert tr.step == -(-len(digits) // tr.config.batch_size)
    state = model.state_dict()
    for k, v in tr.ema.state.items():  # sample() runs the generator held by the model: the average
        assert torch.equal(state[k], v), k
    raw = make("gan", digits.spec, seed=0, hidden=16, latent_dim=2)  # the same run without the average
    Trainer(raw, TrainConfig(epochs=1, progress=False, device="cpu", ema=None)).fit(digits.x)
    assert any(not torch.equal(a, b) for a, b in zip(raw.generator.parameters(), model.generator.parameters()))


def test_a_config_saved_before_critic_lr_loads_with_its_own_values():
    saved = {"lr": 2e-4, "betas": [0.5, 0.999], "n_critic": 1, "loss": "ns", "clip": 0.01, "gp_weight": 10.0,
             "r1": 0.0, "spectral_norm": "none", "ortho": 0.0, "ortho_on": "generator", "latent_dim": 32,
             "hidden": 256, "depth": 2}
    c = build(GANConfig, saved)
    assert (c.lr, c.betas, c.r1, c.critic_lr) == (2e-4, (0.5, 0.999), 0.0, None)
