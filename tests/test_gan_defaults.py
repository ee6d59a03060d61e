"""The gan family's defaults as behaviour: the settings chosen from the data (images keep the
digits defaults, vectors get their own, explicit values and saved runs win), the critic's own
learning rate (TTUR), the trainer defaults the family asks for, and that the trained model (what
`sample` draws from) holds the trainer's moving average of the weights. Quality is measured by
bench/gan_modes.py."""
from __future__ import annotations

import torch

from genlab import io, make
from genlab.data.spec import DataSpec, Kind
from genlab.models.gan import GAN, GANConfig, resolve_config
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


IMAGE = DataSpec((1, 8, 8), Kind.DISCRETE, levels=17)
VECTOR = DataSpec((2,))
# every setting of a run saved before the defaults depended on the data (the digits defaults)
SAVED_BEFORE = {"lr": 5e-4, "betas": [0.0, 0.99], "n_critic": 1, "loss": "ns", "clip": 0.01, "gp_weight": 10.0,
                "r1": 1.0, "spectral_norm": "none", "ortho": 0.0, "ortho_on": "generator", "critic_lr": None,
                "latent_dim": 32, "hidden": 256, "depth": 2}


def test_images_keep_the_digits_defaults_and_vectors_get_their_own():
    image, vector = make("gan", IMAGE, seed=0).config, make("gan", VECTOR, seed=0).config
    assert (image.lr, image.betas, image.r1, image.latent_dim, image.hidden, image.depth) == \
        (5e-4, (0.0, 0.99), 1.0, 32, 256, 2)
    assert (vector.lr, vector.betas, vector.r1, vector.latent_dim, vector.hidden, vector.depth) == \
        (1e-3, (0.0, 0.99), 0.1, 2, 128, 3)
    assert (image.loss, vector.loss) == ("ns", "lsgan")
    assert make("gan", DataSpec((100,)), seed=0).config.latent_dim == 32  # the noise is never wider than 32
    model = make("gan", VECTOR, seed=0)
    assert model.generator.in_dim == 2 and model.latent_dim == 2
    assert [m.out_features for m in model.critic.modules() if isinstance(m, torch.nn.Linear)] == [128] * 3 + [1]
    assert {o.lr for o in model.objectives()} == {1e-3}


def test_settings_given_explicitly_win_over_the_data_defaults():
    given = {"lr": 2e-4, "r1": 0.0, "latent_dim": 5, "hidden": 16, "depth": 1}
    for spec in (IMAGE, VECTOR):
        c = make("gan", spec, seed=0, **given).config
        assert {k: getattr(c, k) for k in given} == given
    unset = GANConfig()
    assert (unset.lr, unset.r1, unset.latent_dim, unset.hidden, unset.depth) == (None,) * 5
    resolved = resolve_config(VECTOR, unset)
    assert unset.lr is None and resolved.lr == 1e-3  # resolving copies; the caller's config is unchanged
    assert resolve_config(VECTOR, resolved) == resolved


def test_a_vector_run_saved_with_the_old_explicit_defaults_rebuilds_the_same_model(tmp_path):
    cfg = {"format": io.FORMAT, "family": "gan", "spec": VECTOR.to_dict(), "config": SAVED_BEFORE}
    old = io.build(cfg, seed=0)
    assert io.config_dict(old) == SAVED_BEFORE
    new = make("gan", VECTOR, seed=0)
    assert (old.generator.in_dim, new.generator.in_dim) == (32, 2)
    shapes = lambda m: {k: tuple(v.shape) for k, v in m.state_dict().items()}  # noqa: E731
    assert shapes(old) == shapes(make("gan", VECTOR, seed=0, hidden=256, depth=2, latent_dim=32))
    assert (old.config.lr, old.config.r1) == (5e-4, 1.0)
    assert shapes(old) != shapes(new)
    io.save(new, tmp_path / "run")  # a run made with the data defaults records the values it used
    loaded = io.load(tmp_path / "run")
    assert loaded.config == new.config and shapes(loaded) == shapes(new)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in new.state_dict().items())
