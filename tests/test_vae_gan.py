"""Identities of the VAE pieces (discretized logistic, Gaussian KL; ELBO <= IWAE_k <= log p is in
test_latent_models.py) and the structure of the GAN objectives (their formulas: test_gans.py)."""
import math

import pytest
import torch

from genlab import NotSupported
from genlab.data.preprocess import Preprocess, Rescale, Standardize
from genlab.data.spec import DataSpec, Kind
from genlab.models.gan import GAN, GANConfig
from genlab.models.vae import VAE, VAEConfig
from genlab.objectives import discretized_logistic_log_lik, gaussian_kl, normal_log_prob, reparameterize
from genlab.protocol import Batch

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------ VAE pieces
@pytest.mark.parametrize("levels", [2, 3, 17, 256])
def test_discretized_logistic_sums_to_one_over_all_levels(levels):
    x = torch.linspace(-1, 1, levels, dtype=F64)[:, None]  # every bin centre
    mean = torch.randn(1, 64, generator=gen(0), dtype=F64) * 1.5
    log_scale = torch.empty(1, 64, dtype=F64).uniform_(-7, 2, generator=gen(1))
    logp = discretized_logistic_log_lik(x, mean, log_scale, levels)
    assert torch.isfinite(logp).all()
    torch.testing.assert_close(logp.exp().sum(0), torch.ones(64, dtype=F64), atol=1e-12, rtol=0)


def test_discretized_logistic_matches_cdf_differences():
    levels, x = 5, torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0], dtype=F64)
    mean, s = torch.tensor(0.2, dtype=F64), torch.tensor(0.3, dtype=F64)
    cdf = lambda v: torch.sigmoid((v - mean) / s)  # noqa: E731
    d = 1.0 / (levels - 1)
    p = cdf(x + d) - cdf(x - d)
    p[0], p[-1] = cdf(x[0] + d), 1 - cdf(x[-1] - d)
    torch.testing.assert_close(discretized_logistic_log_lik(x, mean, s.log(), levels), p.log())


def test_gaussian_kl_closed_form_and_monte_carlo():
    mu = torch.tensor([[0.5, -1.0, 2.0]], dtype=F64)
    logvar = torch.tensor([[0.3, -0.7, 0.1]], dtype=F64)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    closed = torch.distributions.kl_divergence(q, p).sum(-1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), closed)
    z = reparameterize(mu.expand(200_000, 3), logvar.expand(200_000, 3), gen(2))
    mc = (normal_log_prob(z, mu, logvar) - normal_log_prob(z)).mean()
    assert abs(float(mc) - float(closed)) < 0.02


def tiny_vae(**cfg) -> VAE:
    torch.manual_seed(0)
    model = VAE(DataSpec((2,)), VAEConfig(latent_dim=1, hidden=16, **cfg)).double()
    with torch.no_grad():
        model.raw_log_scale.fill_(-1.0)  # a sharp decoder: the posterior is far from the prior
    return model


@pytest.mark.parametrize("kind,lik,pre", [(Kind.DISCRETE, "logistic", Rescale),
                                          (Kind.BINARY, "bernoulli", Preprocess),
                                          (Kind.CONTINUOUS, "gaussian", Standardize)])
def test_vae_likelihood_and_preprocessing_follow_the_data(kind, lik, pre):
    spec = DataSpec((1, 8, 8), kind, levels=None if kind is Kind.CONTINUOUS else (17 if kind is Kind.DISCRETE else 2))
    torch.manual_seed(0)
    model = VAE(spec, VAEConfig(latent_dim=3, hidden=32))
    assert model.likelihood == lik and type(model.pre) is pre
    if lik != "bernoulli":  # decoder scales start at unit scale / a few bins, not at a bound
        expected = 0.0 if lik == "gaussian" else math.log(4 / 16)
        torch.testing.assert_close(model.log_scale(), torch.full((1, 8, 8), expected))
    levels = spec.levels or 4
    x = torch.randint(0, levels, (6, 1, 8, 8), generator=gen(6)).float()
    model.setup(x)
    lp = model.log_prob(x)
    assert lp.shape == (6,) and torch.isfinite(lp).all()
    if spec.is_discrete:
        assert (lp < 0).all()  # a bound on the log of a probability
    s = model.sample(5, generator=gen(7))
    assert s.shape == (5, 1, 8, 8)
    if spec.is_discrete:
        assert (s == s.round()).all() and s.min() >= 0 and s.max() <= levels - 1
    assert model.encode(x).shape == (6, 3) and model.decode(torch.zeros(2, 3)).shape == (2, 1, 8, 8)


def test_kl_warmup_counts_steps_in_a_saved_buffer():
    model = tiny_vae(beta=2.0, kl_warmup_steps=4)
    x = torch.randn(8, 2, dtype=F64)
    betas = [model.elbo_loss(Batch(x, generator=gen(i))).logs["beta"] for i in range(6)]
    assert betas == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0]
    assert float(model.state_dict()["steps_done"]) == 6
    with pytest.raises(NotSupported):
        VAE(DataSpec((3,), Kind.CATEGORICAL, levels=4), VAEConfig())


# ------------------------------------------------------------------------------ GAN
@pytest.mark.parametrize("spec", [DataSpec((2,)), DataSpec((1, 8, 8), Kind.DISCRETE, levels=17)],
                         ids=["vector", "image"])
def test_gan_objectives_touch_only_their_own_player(spec):
    torch.manual_seed(0)
    model = GAN(spec, GANConfig(latent_dim=4, hidden=16, n_critic=3))
    x = torch.randint(0, spec.levels or 3, (10, *spec.event_shape)).float()
    model.setup(x)
    critic, generator = model.objectives()
    assert (critic.name, generator.name) == ("critic", "generator")
    assert {id(p) for p in critic.parameters} == {id(p) for p in model.critic.parameters()}
    assert {id(p) for p in generator.parameters} == {id(p) for p in model.generator.parameters()}
    assert len(critic.parameters) + len(generator.parameters) == len(list(model.parameters()))
    assert generator.every == 3 and critic.every == 1
    assert critic.lr == generator.lr == model.config.lr and critic.betas == tuple(model.config.betas)
    for obj, other in ((critic, generator), (generator, critic)):
        model.zero_grad(set_to_none=True)
        obj.loss(Batch(x, generator=gen(1))).value.backward()
        assert all(p.grad is None for p in other.parameters), obj.name
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in obj.parameters), obj.name
    assert all(p.requires_grad for p in model.parameters())  # the critic is unfrozen again
    s = model.sample(6, generator=gen(2))
    assert s.shape == (6, *spec.event_shape) and torch.isfinite(s).all()
    torch.testing.assert_close(s, model.sample(6, generator=gen(2)))
    assert model.decode(torch.zeros(3, 4)).shape == (3, *spec.event_shape)
    with pytest.raises(NotSupported, match="no encoder"):
        model.encode(x)
    with pytest.raises(NotSupported, match="density"):
        model.log_prob(x)
