"""Latent-variable families (vae / iwae, ae, wae) and their objectives: bounds against a closed-form
log p, REINFORCE against analytic gradients, baselines, KL schedules, code Gaussians, MMD."""
import math

import pytest
import torch
from torch import nn

from genlab import NotSupported
from genlab.data.spec import DataSpec, Kind
from genlab.models.ae import AE, AEConfig
from genlab.models.iwae import IWAE, IWAEConfig
from genlab.models.vae import LOG_SCALE_MIN, VAE, VAEConfig
from genlab.metrics.ais_latent import ais_log_prob
from genlab.models.wae import WAE, WAEConfig
from genlab.objectives.elbo import iwae_bound, kl_weight_schedule
from genlab.objectives.latents import BernoulliLatent, CategoricalLatent, GaussianLatent
from genlab.objectives.mmd import imq_kernel, mmd2_unbiased
from genlab.objectives.reinforce import LearnedBaseline, MovingAverageBaseline, reinforce_surrogate
from genlab.protocol import Batch

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------ bounds on a linear-Gaussian model
def linear_gaussian_vae(D=4, L=2, sigma=0.5):
    """p(z) = N(0, I), p(x|z) = N(Wz + b, sigma^2 I), so p(x) = N(b, W W^T + sigma^2 I); the encoder
    is linear with the exact posterior mean shifted and its variance doubled (an imperfect q)."""
    torch.manual_seed(0)
    model = VAE(DataSpec((D,)), VAEConfig(latent_dim=L, hidden=8, net="mlp")).double()
    W = torch.randn(D, L, generator=gen(1), dtype=F64)
    b = torch.randn(D, generator=gen(2), dtype=F64)
    M = torch.eye(L, dtype=F64) + W.T @ W / sigma**2  # posterior precision
    A = torch.linalg.solve(M, W.T) / sigma**2  # posterior mean = A (x - b)
    model.decoder, model.encoder = nn.Linear(L, D).double(), nn.Linear(D, 2 * L).double()
    with torch.no_grad():
        model.decoder.weight.copy_(W)
        model.decoder.bias.copy_(b)
        y = math.log(sigma) - LOG_SCALE_MIN
        model.raw_log_scale.fill_(LOG_SCALE_MIN + math.log(math.expm1(y)))
        model.encoder.weight.copy_(torch.cat([A, torch.zeros(L, D, dtype=F64)]))
        post_var = torch.linalg.inv(M).diagonal()
        model.encoder.bias.copy_(torch.cat([-A @ b + 0.3, (2 * post_var).log()]))
    exact = torch.distributions.MultivariateNormal(b, W @ W.T + sigma**2 * torch.eye(D, dtype=F64))
    return model, exact


def test_elbo_below_iwae_k_which_tightens_with_k_towards_the_exact_log_p():
    model, exact = linear_gaussian_vae()
    x = exact.sample((8,))  # global RNG seeded in linear_gaussian_vae
    torch.testing.assert_close(model.log_scale(), torch.full((4,), math.log(0.5), dtype=F64))
    reps = 400
    xr = x.repeat(reps, 1)
    log_p = exact.log_prob(x)
    with torch.no_grad():
        elbo = model.log_prob(xr, generator=gen(3)).reshape(reps, 8).mean(0)  # analytic KL, 1 draw
        bounds = {k: iwae_bound(model, xr, k, gen(4 + k)).reshape(reps, 8) for k in (1, 5, 50)}
    mean = {k: v.mean(0) for k, v in bounds.items()}
    se = {k: v.std(0) / math.sqrt(reps) for k, v in bounds.items()}
    gap = {k: float((log_p - mean[k]).mean()) for k in mean}
    # E[IWAE_1] = ELBO (Burda et al. 2016); then IWAE_1 < IWAE_5 < IWAE_50 <= log p
    assert ((elbo - mean[1]).abs() < 4 * se[1] + 1e-3).all(), (elbo, mean[1])
    assert (mean[1] < mean[5] - 3 * se[5]).all() and (mean[5] < mean[50] - 3 * se[50]).all()
    assert (mean[50] < log_p + 3 * se[50]).all()
    assert gap[1] > 0.2 and gap[50] < gap[1] / 5, gap  # the bound approaches log p
    assert gap[50] > -0.01


def test_ais_over_codes_approaches_the_exact_log_p_and_tightens_with_steps():
    """Wu et al. (2017): AIS from the prior to p(c) p(x|c) with HMC moves; on the linear-Gaussian VAE
    (exact log p known) many steps land on log p, few steps fall below it, and the ELBO far below."""
    model, exact = linear_gaussian_vae()
    x = exact.sample((8,))
    log_p = exact.log_prob(x)
    long = ais_log_prob(model, x, steps=300, chains=64, leapfrog=5, generator=gen(5)) - log_p
    short = ais_log_prob(model, x, steps=3, chains=4, leapfrog=5, generator=gen(5)) - log_p
    assert abs(float(long.mean())) < 0.04 and float(long.abs().max()) < 0.2, long
    assert float(short.mean()) < float(long.mean()) - 0.3, (short, long)  # a lower bound, loose when short
    with torch.no_grad():
        elbo = model.log_prob(x.repeat(50, 1), generator=gen(6)).reshape(50, 8).mean(0) - log_p
    assert float(elbo.mean()) < float(long.mean()) - 0.5
    with pytest.raises(NotSupported, match="Gaussian latents"):
        ais_log_prob(AE(DataSpec((4,)), AEConfig(latent_dim=2, hidden=8)), x.float())


def test_iwae_family_log_prob_is_the_iwae_k_bound():
    torch.manual_seed(0)
    model = IWAE(DataSpec((3,)), IWAEConfig(latent_dim=2, hidden=8))
    assert model.config.objective == "iwae" and model.config.k == 5 and model.name == "iwae"
    x = torch.randn(6, 3, generator=gen(0))
    torch.testing.assert_close(model.log_prob(x, generator=gen(1)), iwae_bound(model, x, 5, gen(1)))
    assert model.objectives()[0].name == "iwae"


# ------------------------------------------------------------------ REINFORCE against closed forms
def test_reinforce_and_reparameterization_agree_with_the_analytic_gaussian_gradient():
    """d/dmu E_{z ~ N(mu, 1)}[z^2] = 2 mu."""
    n, mu0 = 200_000, 0.7
    lat = GaussianLatent(1)
    params = torch.tensor([[mu0, 0.0]], dtype=F64, requires_grad=True).expand(n, 2)
    estimates = {}
    z = lat.sample(params, 1, gen(0))[0]
    estimates["reparam"] = torch.autograd.grad(z.pow(2).sum(-1), params,
                                               torch.ones(n, dtype=F64), retain_graph=True)[0][:, 0]
    z = z.detach()
    for name, b in (("reinforce", 0.0), ("reinforce+baseline", 1 + mu0**2)):
        sur = reinforce_surrogate(lat.log_q(params, z), z.pow(2).sum(-1), b)
        assert float(sur.detach().abs().max()) == 0.0  # the surrogate adds gradient, never value
        estimates[name] = torch.autograd.grad(sur, params, torch.ones(n, dtype=F64))[0][:, 0]
    for name, g in estimates.items():
        se = float(g.std() / math.sqrt(n))
        assert abs(float(g.mean()) - 2 * mu0) < 4 * se, (name, float(g.mean()), se)
    assert estimates["reinforce+baseline"].var() < estimates["reinforce"].var()
    assert estimates["reparam"].var() < estimates["reinforce+baseline"].var()


def test_reinforce_matches_the_analytic_bernoulli_gradient_and_a_baseline_cuts_variance():
    """d/dtheta E_{z ~ Bern(sigmoid theta)}[f(z)] = p (1 - p) (f(1) - f(0))."""
    n, theta = 200_000, 0.4
    f = lambda z: (z - 0.3).pow(2).sum(-1) + 5.0  # noqa: E731  (an offset that a baseline removes)
    lat = BernoulliLatent(1)
    params = torch.full((n, 1), theta, dtype=F64, requires_grad=True)
    z = lat.sample(params, 1, gen(1))[0]
    p = math.exp(theta) / (1 + math.exp(theta))
    exact = p * (1 - p) * (0.49 - 0.09)
    ma = MovingAverageBaseline(decay=0.0)
    ma.update(f(lat.sample(params, 1, gen(2))[0]))  # fitted on independent draws
    grads = {}
    for name, b in (("none", 0.0), ("moving_average", ma(f(z)))):
        sur = reinforce_surrogate(lat.log_q(params, z), f(z), b)
        grads[name] = torch.autograd.grad(sur.sum(), params)[0][:, 0]
        se = float(grads[name].std() / math.sqrt(n))
        assert abs(float(grads[name].mean()) - exact) < 4 * se, (name, float(grads[name].mean()), exact)
    assert grads["moving_average"].var() < 0.05 * grads["none"].var()


def test_learned_baseline_regresses_an_input_dependent_signal_and_cuts_variance():
    torch.manual_seed(0)
    n = 512
    h = torch.randn(n, 3, generator=gen(0))
    signal = 4 * h[:, 0] - 2 * h[:, 1] + 10 + 0.1 * torch.randn(n, generator=gen(1))
    learned = LearnedBaseline(3, hidden=32, decay=0.0)
    learned.update(signal)
    ma_only = float((signal - learned(signal, h)).detach().pow(2).mean())  # the net starts at zero
    opt = torch.optim.Adam(learned.parameters(), lr=3e-2)
    for _ in range(150):
        opt.zero_grad()
        learned.loss(signal, h).backward()
        opt.step()
    fitted = float((signal - learned(signal, h)).detach().pow(2).mean())
    assert fitted < 0.05 * ma_only, (ma_only, fitted)


@pytest.mark.parametrize("objective,k", [("elbo", 1), ("iwae", 2)])
def test_vae_reinforce_gradient_matches_exact_enumeration(objective, k):
    """Two Bernoulli latents (4 states): the exact ELBO / E[IWAE_2] is a finite sum, so its gradient
    with respect to the encoder's logits is exact; the model's REINFORCE loss on 100,000 copies of x
    gives as many independent estimates, whose mean must match it within 4 standard errors."""
    torch.manual_seed(0)
    model = VAE(DataSpec((3,)), VAEConfig(latent_dim=2, hidden=8, latent="bernoulli", baseline="none",
                                          objective=objective, k=k)).double()
    x = torch.randn(1, 3, generator=gen(0), dtype=F64)
    states = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=F64)[:, None]  # (4, 1, 2)
    params = model.encoder_params(x).detach().requires_grad_()  # (1, 2) logits
    log_q = model.latent.log_q(params, states)[:, 0]  # (4,)
    log_lik = model.decoder_log_lik(x, model.decoder_output(states))[:, 0].detach()
    if objective == "elbo":
        exact = (log_q.exp() * log_lik).sum() - model.latent.kl(params)[0]
    else:  # E over (z1, z2) of log((w1 + w2) / 2)
        log_w = log_lik + model.latent.log_prior(states)[:, 0] - log_q
        pair = torch.logsumexp(torch.stack(torch.broadcast_tensors(log_w[:, None], log_w[None, :])), 0)
        exact = ((log_q[:, None] + log_q[None, :]).exp() * (pair - math.log(2))).sum()
    g_exact = torch.autograd.grad(exact, params)[0][0]
    n, seen = 100_000, {}
    encoder_params = model.encoder_params

    def spy(z, labels=None):  # keep the logits of the batch to read per-example gradients
        seen["p"] = encoder_params(z, labels)
        seen["p"].retain_grad()
        return seen["p"]
    model.encoder_params = spy
    model.elbo_loss(Batch(x.expand(n, 3), generator=gen(1))).value.backward()
    per_example = -seen["p"].grad * n  # (n, 2): one gradient estimate per draw
    se = per_example.std(0) / math.sqrt(n)
    assert ((per_example.mean(0) - g_exact).abs() < 4 * se).all(), (per_example.mean(0), g_exact, se)
    assert (se < 0.5 * g_exact.abs().max()).all()  # the test has the power to see a wrong gradient


# ------------------------------------------------------------------ schedules, latents, conditioning
def test_cyclical_schedule_at_known_steps():
    w = lambda t: kl_weight_schedule(t, 2.0, "cyclical", total_steps=100, cycles=4, ratio=0.5)  # noqa: E731
    assert [w(t) for t in (0, 5, 12, 13, 24, 25, 30, 99, 100, 500)] == \
        pytest.approx([0.0, 0.8, 1.92, 2.0, 2.0, 0.0, 0.8, 2.0, 2.0, 2.0])
    assert kl_weight_schedule(3, 2.0, "linear", warmup_steps=4) == 1.5
    assert kl_weight_schedule(3, 2.0, "constant", warmup_steps=4) == 2.0
    with pytest.raises(ValueError, match="kl_total_steps"):
        VAE(DataSpec((2,)), VAEConfig(kl_schedule="cyclical"))
    torch.manual_seed(0)
    model = VAE(DataSpec((2,)), VAEConfig(latent_dim=1, hidden=8, kl_schedule="cyclical", kl_total_steps=8,
                                          kl_cycles=2, kl_ratio=0.5))
    x = torch.randn(4, 2)
    betas = [model.elbo_loss(Batch(x, generator=gen(i))).logs["beta"] for i in range(6)]
    assert betas == [0.0, 0.5, 1.0, 1.0, 0.0, 0.5]


def test_discrete_latent_kls_match_monte_carlo_and_categorical_draws_are_one_hot():
    for lat, params in ((BernoulliLatent(3), torch.tensor([[0.3, -1.2, 2.0]], dtype=F64)),
                        (CategoricalLatent(2, 4), torch.randn(1, 8, generator=gen(0), dtype=F64))):
        codes = lat.sample(params, 100_000, gen(1))
        mc = (lat.log_q(params, codes) - lat.log_prior(codes)).mean()
        assert abs(float(mc) - float(lat.kl(params)[0])) < 0.02
    codes = CategoricalLatent(2, 4).sample(torch.zeros(5, 8), 3, gen(2)).reshape(3, 5, 2, 4)
    assert (codes.sum(-1) == 1).all()


def test_conditional_vae_uses_labels_and_a_no_label_entry():
    spec = DataSpec((4,), num_classes=3)
    torch.manual_seed(0)
    model = VAE(spec, VAEConfig(latent_dim=2, hidden=8))
    x = torch.randn(5, 4, generator=gen(0))
    lp0 = model.log_prob(x, condition=torch.zeros(5, dtype=torch.long))
    lp2 = model.log_prob(x, condition=torch.full((5,), 2))
    assert not torch.allclose(lp0, lp2) and torch.isfinite(model.log_prob(x)).all()
    with pytest.raises(ValueError, match="condition labels"):
        model.sample(2, condition=torch.tensor([0, 3]))
    plain = VAE(DataSpec((4,)), VAEConfig(latent_dim=2, hidden=8))
    with pytest.raises(NotSupported, match="not conditional"):
        plain.sample(2, condition=torch.zeros(2, dtype=torch.long))
    labels = model._train_labels(torch.zeros(10_000, dtype=torch.long), 10_000, gen(1))
    assert abs(float((labels == 3).float().mean()) - 0.2) < 0.02  # label dropout to "no label"


def test_architecture_follows_the_data_and_saved_net_auto_rebuilds_the_earlier_networks():
    binary, grey = DataSpec((1, 6, 6), Kind.BINARY), DataSpec((1, 6, 6), Kind.DISCRETE, levels=5)
    widths = lambda net: [m.out_features for m in net if isinstance(m, nn.Linear)]  # noqa: E731
    b = VAE(binary, VAEConfig())  # net=default: one hidden layer of 512, 32 latents
    assert not b.conv and b.latent_dim == 32 and widths(b.decoder) == [512, 36]
    assert isinstance(b.encoder[1], nn.SiLU) and widths(b.encoder) == [512, 64]
    assert VAE(grey, VAEConfig()).conv and VAE(grey, VAEConfig()).latent_dim == 16
    old = VAE(binary, VAEConfig(net="auto"))  # what a run saved before net=default holds
    assert old.conv and old.latent_dim == 16 and isinstance(old.encoder.convs[1], nn.SiLU)
    given = VAE(binary, VAEConfig(hidden=20, depth=3, activation="tanh", latent_dim=4))
    assert widths(given.decoder) == [20, 20, 20, 36] and isinstance(given.decoder[1], nn.Tanh)
    vec = VAE(DataSpec((3,)), VAEConfig(net="mlp"))
    assert widths(vec.encoder) == [256, 256, 32] and isinstance(vec.encoder[1], nn.SiLU)
    with pytest.raises(ValueError, match="depth"):
        VAE(binary, VAEConfig(depth=0))


# ------------------------------------------------------------------ ae and wae
def test_ae_samples_follow_the_gaussian_fitted_to_the_codes():
    torch.manual_seed(0)
    model = AE(DataSpec((5,)), AEConfig(latent_dim=3, hidden=16, code_momentum=0.9)).double()
    x = torch.randn(400, 5, generator=gen(0), dtype=F64) @ torch.randn(5, 5, generator=gen(1), dtype=F64)
    model.setup(x)
    codes = model.encode(x)
    torch.testing.assert_close(model.code_mean, codes.mean(0))
    torch.testing.assert_close(model.code_covariance(), torch.cov(codes.T, correction=0))
    draws = model.sample_codes(200_000, gen(2))
    torch.testing.assert_close(draws.mean(0), model.code_mean, atol=0.02 * float(codes.std()), rtol=0)
    torch.testing.assert_close(torch.cov(draws.T), model.code_covariance(), atol=0.03 * float(codes.var(0).max()), rtol=0)
    # training steps track the codes with running moments; with a frozen network they converge to them
    cov = model.code_covariance().clone()
    with torch.no_grad():
        model.code_mean.zero_()
        model.code_second.copy_(torch.eye(3, dtype=F64))
    for _ in range(300):
        model.loss(Batch(x, generator=gen(3)))
    torch.testing.assert_close(model.code_covariance(), cov)
    assert model.sample(4, generator=gen(4)).shape == (4, 5)
    with pytest.raises(NotSupported, match="density"):
        model.log_prob(x[:2])


def test_unbiased_mmd_is_zero_in_expectation_for_identical_distributions():
    values = torch.stack([mmd2_unbiased(torch.randn(20, 3, generator=gen(2 * i), dtype=F64),
                                        torch.randn(30, 3, generator=gen(2 * i + 1), dtype=F64))
                          for i in range(200)])
    se = float(values.std() / math.sqrt(len(values)))
    assert abs(float(values.mean())) < 3 * se, (float(values.mean()), se)
    shifted = torch.stack([mmd2_unbiased(torch.randn(20, 3, generator=gen(2 * i), dtype=F64) + 1.0,
                                         torch.randn(30, 3, generator=gen(2 * i + 1), dtype=F64))
                           for i in range(50)])
    assert float(shifted.mean()) > 10 * se
    a, b = torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 1.0]])  # C = 2 * 2 * s, ||a - b||^2 = 2
    torch.testing.assert_close(imq_kernel(a, b, (1.0, 2.0)), torch.tensor([[4 / 6 + 8 / 10]]))


def test_wae_loss_is_reconstruction_plus_weighted_mmd_and_samples_decode_the_prior():
    torch.manual_seed(0)
    spec = DataSpec((1, 8, 8), Kind.DISCRETE, levels=17)
    model = WAE(spec, WAEConfig(latent_dim=4, hidden=16, mmd_weight=3.0))
    x = torch.randint(0, 17, (32, 1, 8, 8), generator=gen(0)).float()
    model.setup(x)
    loss = model.loss(Batch(x, generator=gen(1)))
    assert loss.value.item() == pytest.approx(loss.logs["mse"] + 3.0 * loss.logs["mmd"], rel=1e-5)
    s = model.sample(6, generator=gen(2))
    assert s.shape == (6, 1, 8, 8) and (s == s.round()).all() and s.min() >= 0 and s.max() <= 16
    torch.testing.assert_close(model.sample_codes(3, gen(5)), torch.randn(3, 4, generator=gen(5)))
    assert model.encode(x[:3]).shape == (3, 4) and model.decode(torch.zeros(2, 4)).shape == (2, 1, 8, 8)
